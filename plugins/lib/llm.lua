-- llm: helpers for evaluators that ask a model (assay.llm).
--
--   verdict(text)        the first JSON object in a model's answer, even when the model wraps
--                        it in prose or a ```json fence; nil and a reason when there is none
--   prompt(template, v)  fills {{name}} placeholders from the table v (missing ones: "")
--   clip(text, n)        at most n bytes of text, cut at a space when one is near
--   chat_verdicts(chat_all, requests, check)
--                        asks the model every request with chat_all (assay.llm.chat_all: named
--                        by the plugin, so that `assay run` sees it needs an endpoint), reads
--                        each answer's verdict; check(verdict) returns nil when it is usable, else
--                        why not. An answer without a usable verdict is asked once more, with
--                        the answer and the problem added to the conversation (models fix a
--                        slip when told of it). Returns verdicts[i] (nil when still unusable),
--                        problems[i] (why, with the answer's start), answers[i] (the last)
--                        and how many were asked again.
local M = {}

-- The balanced {...} starting at position i of s (braces inside JSON strings ignored).
local function balanced_object(s, i)
  local depth, in_string, escaped = 0, false, false
  for j = i, #s do
    local c = s:sub(j, j)
    if in_string then
      if escaped then escaped = false
      elseif c == "\\" then escaped = true
      elseif c == '"' then in_string = false end
    elseif c == '"' then in_string = true
    elseif c == "{" then depth = depth + 1
    elseif c == "}" then
      depth = depth - 1
      if depth == 0 then return s:sub(i, j) end
    end
  end
  return nil
end

function M.verdict(text)
  if type(text) ~= "string" then return nil, "the answer is not text" end
  local start = 1
  while true do
    local i = text:find("{", start, true)
    if not i then return nil, "no JSON object in the answer" end
    local candidate = balanced_object(text, i)
    if candidate then
      local ok, value = pcall(assay.json.decode, candidate)
      if ok and type(value) == "table" and not assay.json.is_array(value) then return value end
    end
    start = i + 1
  end
end

-- The verdict of an answer's text, or nil and why not.
local function usable(text, check)
  local verdict, why = M.verdict(text)
  if verdict then why = check(verdict) end
  if why then return nil, why end
  return verdict
end

-- The request again, with the unusable answer and the problem told to the model.
local function follow_up(request, text, why)
  local again = {}
  for k, v in pairs(request) do again[k] = v end
  again.messages = {}
  for i, m in ipairs(request.messages) do again.messages[i] = m end
  again.messages[#again.messages + 1] = { role = "assistant", content = type(text) == "string" and text or "" }
  again.messages[#again.messages + 1] = { role = "user", content =
    "Your answer could not be used: " .. why .. ". Answer again with the JSON object only." }
  return again
end

function M.chat_verdicts(chat_all, requests, check)
  local answers = chat_all(requests)
  local verdicts, problems, again, where = {}, {}, {}, {}
  for i, answer in ipairs(answers) do
    local verdict, why = usable(answer.text, check)
    verdicts[i] = verdict
    if not verdict then
      again[#again + 1] = follow_up(requests[i], answer.text, why)
      where[#again] = i
    end
  end
  if #again > 0 then
    for k, answer in ipairs(chat_all(again)) do
      local i = where[k]
      local verdict, why = usable(answer.text, check)
      verdicts[i], answers[i] = verdict, answer
      if not verdict then problems[i] = ("%s, asked twice: %s"):format(why, M.clip(answer.text, 200)) end
    end
  end
  return verdicts, problems, answers, #again
end

function M.prompt(template, values)
  return (template:gsub("{{(%w+)}}", function(name)
    local v = values[name]
    return v == nil and "" or tostring(v)
  end))
end

function M.clip(text, n)
  if type(text) ~= "string" then return "" end
  if #text <= n then return text end
  local cut = text:sub(1, n)
  local space = cut:find(" [^ ]*$")
  if space and space > n * 0.8 then cut = cut:sub(1, space - 1) end
  return cut .. " …"
end

return M
