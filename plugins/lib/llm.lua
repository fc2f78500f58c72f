-- llm: helpers for evaluators that ask a model (assay.llm).
--
--   verdict(text)        the first JSON object in a model's answer, even when the model wraps
--                        it in prose or a ```json fence; nil and a reason when there is none
--   prompt(template, v)  fills {{name}} placeholders from the table v (missing ones: "")
--   clip(text, n)        at most n bytes of text, cut at a space when one is near
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
