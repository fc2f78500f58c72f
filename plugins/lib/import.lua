-- import.lua - what the importers' mappers (plugins/importers/) share: telling a search
-- tool from a page read by its name, reading search results in the shapes search APIs
-- return, the text of a message in any dialect, and a report's reference list.
-- docs/importers.md describes each rule; a mapper of your own may require("import") too.
local json = assay.json

local M = {}

-- Tool names (lowercase, Lua patterns anchored at both ends) that are web searches and page
-- reads. A mapper's params search_tools / fetch_tools (comma-separated) add to them.
M.SEARCH_TOOLS = { ".*search.*", "tavily.*", "serper.*", "google.*", "bing.*", "brave.*", "exa.*",
  "duckduckgo.*", "ddg.*", "serpapi.*", "perplexity.*", "you_com.*" }
M.FETCH_TOOLS = { "fetch.*", ".*_fetch", "scrape.*", ".*scrape.*", "visit.*", "read_url", "read_page",
  "browse.*", "open_page", "open_url", "web_fetch", "crawl.*", "get_page.*", "jina.*", "firecrawl.*" }

local function split(list)
  local out = {}
  for item in string.gmatch(list or "", "[^,%s]+") do out[#out + 1] = item end
  return out
end

local function matches_any(name, patterns, extra)
  if type(name) ~= "string" then return false end
  name = name:lower()
  for _, p in ipairs(split(extra)) do
    if name == p:lower() or name:match("^" .. p:lower() .. "$") then return true end
  end
  for _, p in ipairs(patterns) do
    if name:match("^" .. p .. "$") then return true end
  end
  return false
end

-- Is a tool of this name a web search / a page read? Page reads win ties ("search_and_fetch"
-- counts as a search only when no fetch pattern matches it).
function M.is_fetch(name, params)
  return matches_any(name, M.FETCH_TOOLS, params and params.fetch_tools)
end

function M.is_search(name, params)
  return not M.is_fetch(name, params) and matches_any(name, M.SEARCH_TOOLS, params and params.search_tools)
end

-- A value that may be JSON text: the decoded value, else the value itself.
-- JSON text inside JSON text (some exporters encode twice) is decoded again.
function M.decode(v)
  for _ = 1, 2 do
    if type(v) ~= "string" then return v end
    local first = v:match("^%s*(.)")
    if first ~= "{" and first ~= "[" and first ~= '"' then return v end
    local ok, decoded = pcall(json.decode, v)
    if not ok or decoded == nil then return v end
    v = decoded
  end
  return v
end

-- Text that is a readable sentence, not a serialised object (a Python repr, JSON).
function M.is_prose(s)
  return type(s) == "string" and s:match("%S") ~= nil and not s:match("^%s*[%[{]")
end

-- The text of a message content in any common dialect: a string; a list of parts
-- {type = "text", text | content}; OTel GenAI parts; {content = ...}; OpenInference
-- {["message.content"] | ["message.contents"]}.
function M.text(content)
  content = M.decode(content)
  if type(content) == "string" then return content end
  if type(content) ~= "table" then return nil end
  if type(content.text) == "string" then return content.text end
  if type(content.content) == "string" then return content.content end
  if type(content["message.content"]) == "string" then return content["message.content"] end
  local parts = content.parts or content["message.contents"] or content
  local out = {}
  for _, part in ipairs(parts) do
    if type(part) == "string" then
      out[#out + 1] = part
    elseif type(part) == "table" then
      local kind = part.type or part["message_content.type"]
      local text = part.text or part["message_content.text"] or (kind == "text" and part.content)
      if type(text) == "string" and (kind == nil or kind == "text" or kind == "output_text" or kind == "input_text") then
        out[#out + 1] = text
      end
    end
  end
  if #out == 0 then return nil end
  return table.concat(out, "\n")
end

-- The text of an OpenAI Responses object (output[] items of type "message"), or nil.
function M.response_text(response)
  response = M.decode(response)
  if type(response) ~= "table" or type(response.output) ~= "table" then return nil end
  local out = {}
  for _, item in ipairs(response.output) do
    if type(item) == "table" and item.type == "message" then out[#out + 1] = M.text(item.content) end
  end
  if #out == 0 then return nil end
  return table.concat(out, "\n")
end

-- The role of a message in any dialect.
function M.role(message)
  if type(message) ~= "table" then return nil end
  local role = message.role or message["message.role"] or message.type
  if role == "human" then return "user" end
  if role == "ai" then return "assistant" end
  return role
end

-- A message given as a Python repr ("role='user' content='...' name=None ..."), as some
-- frameworks log them, as a table; other values as they are.
local function message_of(m)
  if type(m) ~= "string" then return m end
  local role = m:match("^role='(%w+)'")
  if not role then return m end
  local content = m:match("content='(.-)' %w+=") or m:match('content="(.-)" %w+=')
  return { role = role, content = content and content:gsub("\\n", "\n") }
end

-- The user's text of a "role: text" transcript ("user: What is ...\nassistant: ...").
function M.transcript_user_text(s)
  if type(s) ~= "string" then return nil end
  local text = ("\n" .. s):match("\nuser: (.-)\n%a+: ") or ("\n" .. s):match("\nuser: (.*)$")
  return text
end

-- The first text of a user message in a list; the last text of an assistant message.
function M.first_user_text(messages)
  if type(messages) ~= "table" then return nil end
  for _, m in ipairs(messages) do
    m = message_of(m)
    if M.role(m) == "user" then
      local text = M.text(m.content or m.parts or m)
      if text then return text end
    end
  end
  return nil
end

function M.last_assistant_text(messages)
  if type(messages) ~= "table" then return nil end
  for i = #messages, 1, -1 do
    local m = message_of(messages[i])
    if M.role(m) == "assistant" then
      local text = M.text(m.content or m.parts or m)
      if text and text ~= "" then return text end
    end
  end
  return nil
end

-- The queries of a search call's arguments: query | q | queries[] | search_query, or the
-- arguments themselves when they are text.
function M.queries(args)
  args = M.decode(args)
  if type(args) == "string" then return { args } end
  if type(args) ~= "table" then return {} end
  local q = args.query or args.q or args.search_query or args.search or args.input or args.keywords
  if type(q) == "string" then return { q } end
  local list = args.queries or args.search_queries or (type(q) == "table" and q)
  local out = {}
  for _, item in ipairs(list or {}) do
    if type(item) == "string" then out[#out + 1] = item
    elseif type(item) == "table" and type(item.query) == "string" then out[#out + 1] = item.query end
  end
  return out
end

-- The URL a page read was given.
function M.url(args)
  args = M.decode(args)
  if type(args) == "string" then return args:match("https?://[^%s\"'<>]+") end
  if type(args) ~= "table" then return nil end
  local url = args.url or args.link or args.href or args.uri or args.page or args.website
  if type(url) == "string" then return url end
  if type(args.urls) == "table" and type(args.urls[1]) == "string" then return args.urls[1] end
  return nil
end

local function result_of(item)
  if type(item) ~= "table" then return nil end
  local url = item.url or item.link or item.href or item.uri or item.source
  if type(url) ~= "string" and type(item.metadata) == "table" then
    url = item.metadata.url or item.metadata.source or item.metadata.link
  end
  if type(url) ~= "string" and type(item.web) == "table" then url = item.web.uri end
  if type(url) ~= "string" then return nil end
  local title = item.title or item.name or (type(item.metadata) == "table" and item.metadata.title)
    or (type(item.web) == "table" and item.web.title)
  local snippet = item.snippet or item.content or item.description or item.body or item.text
    or item.page_content or item["document.content"]
  return {
    url = url,
    title = type(title) == "string" and title or nil,
    snippet = type(snippet) == "string" and snippet or nil,
  }
end

local function results_of_list(list)
  local out = {}
  for _, item in ipairs(list) do
    local r = result_of(item)
    if r then out[#out + 1] = r end
  end
  return out
end

-- Markdown "[title](url)" links, one result each; LangChain's DuckDuckGo text
-- ("snippet: ..., title: ..., link: ..."); else every bare URL.
local function results_of_text(text)
  local out = {}
  for snippet, title, link in text:gmatch("snippet: (.-), title: (.-), link: (https?://[^%],%s]+)") do
    out[#out + 1] = { url = link, title = title, snippet = snippet }
  end
  if #out > 0 then return out end
  for title, url in text:gmatch("%[([^%]]*)%]%((https?://[^%)%s]+)%)") do
    out[#out + 1] = { url = url, title = title }
  end
  if #out > 0 then return out end
  local seen = {}
  for url in text:gmatch("https?://[^%s\"'<>%)%]]+") do
    url = url:gsub("[%.,;:]+$", "")
    if not seen[url] then
      seen[url] = true
      out[#out + 1] = { url = url }
    end
  end
  return out
end

-- Search results from a tool's output in the shapes search APIs return: Tavily/Exa
-- results[], Serper organic[], SerpAPI organic_results[], Brave web.results[], Bing
-- webPages.value[], a plain list (DuckDuckGo's {title, href, body}), documents[]
-- ({page_content, metadata}), or text (Markdown links, LangChain DuckDuckGo, bare URLs).
function M.results(output)
  output = M.decode(output)
  if type(output) == "string" then return results_of_text(output) end
  if type(output) ~= "table" then return {} end
  local list = output.results or output.organic or output.organic_results or output.documents
    or output.items or output.data
    or (type(output.web) == "table" and output.web.results)
    or (type(output.webPages) == "table" and output.webPages.value)
  if type(list) == "table" then return results_of_list(list) end
  if output[1] ~= nil then return results_of_list(output) end
  local text = M.text(output)
  if text then return results_of_text(text) end
  return {}
end

-- A report's reference list: lines "[k] ... URL", "[k]: URL" or "k. ... URL" after the
-- last heading that names sources or references; nil when there is none.
function M.reference_list(output)
  if type(output) ~= "string" then return nil end
  local cites = {}
  for k, url in output:gmatch("\n%s*%[(%d+)%][:%s]?[^\n]-(https?://[^%s%)%]>]+)") do
    cites[tonumber(k)] = url:gsub("[%.,;]+$", "")
  end
  local list, k = {}, 1
  while cites[k] do
    list[k] = cites[k]
    k = k + 1
  end
  if #list == 0 then return nil end
  return list
end

-- Milliseconds between two ISO 8601 times of the same day or days apart ("2025-06-11T14:01:32.598Z").
local function epoch_ms(iso)
  if type(iso) ~= "string" then return nil end
  local y, mo, d, h, mi, s = iso:match("^(%d+)-(%d+)-(%d+)[T ](%d+):(%d+):([%d%.]+)")
  if not y then return nil end
  local days = os.time({ year = tonumber(y), month = tonumber(mo), day = tonumber(d), hour = 12 }) // 86400
  return ((days * 24 + tonumber(h)) * 60 + tonumber(mi)) * 60000 + tonumber(s) * 1000
end

function M.latency_ms(start_time, end_time)
  local a, b = epoch_ms(start_time), epoch_ms(end_time)
  if a and b and b >= a then return math.floor((b - a) * 1000 + 0.5) / 1000 end
  return nil
end

-- A search step for each query, with the results of the tool's output; a fetch step.
function M.search_steps(steps, args, output, extra)
  local results = M.results(output)
  local queries = M.queries(args)
  if #queries == 0 then queries = { "" } end
  for _, q in ipairs(queries) do
    local step = { type = "search", query = q, results = results }
    for k, v in pairs(extra or {}) do step[k] = v end
    steps[#steps + 1] = step
  end
end

-- The model call a provider's response records, as an llm step with its usage: only when
-- the response says what it used (input_tokens).
function M.llm_step(steps, model, output, input_tokens, output_tokens)
  if not input_tokens then return end
  steps[#steps + 1] = { type = "llm", model = model, output = output,
    usage = { input_tokens = input_tokens, output_tokens = output_tokens } }
end

function M.fetch_step(steps, args, output, extra)
  local content = M.text(output) or (type(output) == "string" and output) or nil
  if type(output) == "table" and not content then content = json.encode(output) end
  local step = { type = "fetch", url = M.url(args), content = content }
  for k, v in pairs(extra or {}) do step[k] = v end
  steps[#steps + 1] = step
end

-- A tool call of an assistant message in any dialect, as name, arguments, id: OpenAI
-- {id, function = {name, arguments}}, inspect {id, function = name, arguments}, Anthropic
-- {type = "tool_use", id, name, input}.
local function call_of(c)
  if type(c) ~= "table" then return nil end
  if type(c["function"]) == "table" then return c["function"].name, c["function"].arguments, c.id end
  if type(c["function"]) == "string" then return c["function"], c.arguments, c.id end
  if c.type == "tool_use" or c.type == "tool_call" then return c.name, c.input or c.arguments, c.id end
  return nil
end

-- "Using tool NAME with arguments: {...}" (agents that call tools in text, MiroFlow's log).
local function text_call(text)
  if type(text) ~= "string" then return nil end
  local name, args = text:match("[Uu]sing tool ([%w_%-%.]+) with arguments:%s*(%b{})")
  return name, args
end

local function add_tool_step(steps, name, args, result, params, err)
  local extra = err and { error = err } or nil
  if M.is_search(name, params) then
    M.search_steps(steps, args, result, extra)
  elseif M.is_fetch(name, params) then
    M.fetch_step(steps, args, result, extra)
  else
    steps[#steps + 1] = { type = "tool", name = name, arguments = M.decode(args), result = M.decode(result), error = err }
  end
end

-- Steps from a message list: each tool call paired with its result (by tool_call_id, else
-- the next tool message) becomes a search, fetch or tool step; each assistant turn that
-- answers in text an llm step (model when the message says).
function M.steps_from_messages(messages, params, model)
  local steps, pending, by_id = {}, {}, {}
  local function flush(call, result, err)
    add_tool_step(steps, call.name, call.args, result, params, err)
  end
  for _, m in ipairs(messages or {}) do
    m = message_of(m)
    local role = M.role(m)
    if role == "assistant" then
      local calls = m.tool_calls or {}
      if type(m.content) == "table" then
        for _, part in ipairs(m.content) do
          if type(part) == "table" and part.type == "tool_use" then calls[#calls + 1] = part end
        end
      end
      for _, c in ipairs(calls) do
        local name, args, id = call_of(c)
        if name then
          local call = { name = name, args = args, id = id }
          pending[#pending + 1] = call
          if id then by_id[id] = call end
        end
      end
      local text = M.text(m.content)
      local name, args
      if #calls == 0 then name, args = text_call(text) end
      if name then pending[#pending + 1] = { name = name, args = args } end
      if text and text:match("%S") and not text:match("^%s*[Uu]sing tool ") then
        steps[#steps + 1] = { type = "llm", model = m.model or model, output = text }
      end
    elseif role == "tool" or role == "function" then
      local call = (m.tool_call_id and by_id[m.tool_call_id]) or pending[1]
      if call then
        for i, p in ipairs(pending) do
          if p == call then table.remove(pending, i) break end
        end
        local err = type(m.error) == "table" and (m.error.message or m.error.type) or m.error
        flush(call, m.content, err)
      end
    end
  end
  for _, call in ipairs(pending) do flush(call, nil) end -- calls whose result never came
  return steps
end

-- Inserts citation markers into text: inserts is a list of {at = byte offset (0-based,
-- the marker goes before the byte at it), url}; each distinct URL gets the next k, in the
-- order of the text. Returns the text and the citations list.
function M.insert_markers(text, inserts)
  table.sort(inserts, function(a, b) return a.at < b.at end)
  local citations, index_of, out, from = {}, {}, {}, 1
  for _, ins in ipairs(inserts) do
    local k = index_of[ins.url]
    if not k then
      citations[#citations + 1] = ins.url
      k = #citations
      index_of[ins.url] = k
    end
    local at = math.max(from, math.min(ins.at + 1, #text + 1))
    out[#out + 1] = text:sub(from, at - 1)
    out[#out + 1] = "[" .. k .. "]"
    from = at
  end
  out[#out + 1] = text:sub(from)
  return table.concat(out), citations
end

-- The byte offset of a character offset (providers count characters).
function M.byte_offset(text, chars)
  if type(chars) ~= "number" then return #text end
  return (utf8.offset(text, math.floor(chars) + 1) or (#text + 1)) - 1
end

-- A trace ready to return: output's reference list as citations when the format had none,
-- and no empty metadata (an empty table would be written as a list).
function M.finish(trace)
  if not trace.citations and type(trace.output) == "string" then trace.citations = M.reference_list(trace.output) end
  if trace.metadata and next(trace.metadata) == nil then trace.metadata = nil end
  if trace.steps and #trace.steps == 0 then trace.steps = nil end
  return trace
end

return M
