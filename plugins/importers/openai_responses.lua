-- openai_responses.lua - an OpenAI Responses API response (a deep-research model with the
-- web_search tool) to an assay trace. The document (docs/importers.md): { id, response,
-- request? }. Each web_search_call's search action is a search step (its sources, when the
-- request included them, are the results), open_page a fetch; url_citation annotations
-- become [k] markers at their end_index, with the URLs as citations.
local import = require("import")

local function add_call(steps, item)
  local action = type(item.action) == "table" and item.action or {}
  local extra = item.status == "failed" and { error = "web_search_call failed" } or {}
  if action.type == "search" then
    local results = {}
    for _, src in ipairs(action.sources or {}) do
      if type(src) == "table" and type(src.url) == "string" then results[#results + 1] = { url = src.url, title = src.title } end
    end
    local queries = action.queries or { action.query or "" }
    for _, q in ipairs(queries) do
      local step = { type = "search", query = q, results = results }
      for k, v in pairs(extra) do step[k] = v end
      steps[#steps + 1] = step
    end
  elseif action.type == "open_page" or action.type == "find" then
    local step = { type = "fetch", url = action.url }
    for k, v in pairs(extra) do step[k] = v end
    steps[#steps + 1] = step
  end
end

local function map(doc, params)
  local r = doc.response or {}
  local trace = { id = doc.id, steps = {}, metadata = { model = r.model } }
  local text, inserts = nil, {}
  for _, item in ipairs(r.output or {}) do
    if item.type == "web_search_call" then
      add_call(trace.steps, item)
    elseif item.type == "message" then
      for _, part in ipairs(item.content or {}) do
        if part.type == "output_text" and type(part.text) == "string" then
          local base = text and (#text + 1) or 0
          text = text and (text .. "\n" .. part.text) or part.text
          for _, a in ipairs(part.annotations or {}) do
            if a.type == "url_citation" and type(a.url) == "string" then
              inserts[#inserts + 1] = { at = base + import.byte_offset(part.text, a.end_index), url = a.url }
            end
          end
        end
      end
    end
  end
  if text and #inserts > 0 then text, trace.citations = import.insert_markers(text, inserts) end
  trace.output = text
  local request = doc.request or {}
  trace.input = type(request.input) == "string" and request.input or import.first_user_text(request.input)
  local usage = r.usage or {}
  import.llm_step(trace.steps, r.model, text, usage.input_tokens, usage.output_tokens)
  return import.finish(trace)
end

return { name = "import", description = "an OpenAI Responses API response to an assay trace",
  params = { search_tools = "", fetch_tools = "" }, map = map }
