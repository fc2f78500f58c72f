-- anthropic.lua - an Anthropic Messages API response with the web_search / web_fetch
-- server tools to an assay trace. The document (docs/importers.md): { id, response,
-- request? }. Each server_tool_use is a search or fetch step with its result block's URLs;
-- a text block's citations become a [k] marker after it, with the URLs as citations.
local import = require("import")

local function map(doc, params)
  local r = doc.response or {}
  local trace = { id = doc.id, steps = {}, metadata = { model = r.model } }
  local uses, texts, inserts = {}, {}, {}
  for _, block in ipairs(r.content or {}) do
    if block.type == "server_tool_use" or block.type == "tool_use" then
      uses[block.id or (#uses + 1)] = block
    elseif block.type == "web_search_tool_result" then
      local use = uses[block.tool_use_id] or {}
      local results, err = {}, nil
      if type(block.content) == "table" and block.content.type == "web_search_tool_result_error" then
        err = block.content.error_code or true
      end
      for _, res in ipairs(type(block.content) == "table" and block.content or {}) do
        if type(res) == "table" and type(res.url) == "string" then results[#results + 1] = { url = res.url, title = res.title } end
      end
      local input = type(use.input) == "table" and use.input or {}
      trace.steps[#trace.steps + 1] = { type = "search", query = input.query or "", results = results, error = err }
    elseif block.type == "web_fetch_tool_result" then
      local c = type(block.content) == "table" and block.content or {}
      local inner = type(c.content) == "table" and c.content or {}
      local source = type(inner.source) == "table" and inner.source or {}
      trace.steps[#trace.steps + 1] = { type = "fetch", url = c.url, content = source.data or import.text(inner) }
    elseif block.type == "text" and type(block.text) == "string" then
      local base = 0
      for _, t in ipairs(texts) do base = base + #t end
      texts[#texts + 1] = block.text
      for _, c in ipairs(block.citations or {}) do
        if type(c) == "table" and type(c.url) == "string" then inserts[#inserts + 1] = { at = base + #block.text, url = c.url } end
      end
    end
  end
  local text = #texts > 0 and table.concat(texts) or nil
  if text and #inserts > 0 then text, trace.citations = import.insert_markers(text, inserts) end
  trace.output = text
  local request = doc.request or {}
  trace.input = import.first_user_text(request.messages)
  local usage = r.usage or {}
  import.llm_step(trace.steps, r.model, text, usage.input_tokens, usage.output_tokens)
  return import.finish(trace)
end

return { name = "import", description = "an Anthropic Messages response (web search and fetch) to an assay trace",
  params = { search_tools = "", fetch_tools = "" }, map = map }
