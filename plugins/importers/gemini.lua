-- gemini.lua - a Gemini generateContent response with Google Search grounding to an assay
-- trace. The document (docs/importers.md): { id, response, request? }. Each of
-- webSearchQueries is a search step (the grounding chunks cannot be told apart by query:
-- they are the results of the last one); groundingSupports become [k] markers at their
-- segment's endIndex (a byte offset), with the chunks' URIs as citations.
local import = require("import")

local function map(doc, params)
  local r = doc.response or {}
  local candidate = type(r.candidates) == "table" and r.candidates[1] or {}
  local trace = { id = doc.id, steps = {}, metadata = { model = r.modelVersion } }
  local text = type(candidate.content) == "table" and import.text(candidate.content.parts) or nil
  local g = type(candidate.groundingMetadata) == "table" and candidate.groundingMetadata or {}
  local chunks = {}
  for _, c in ipairs(g.groundingChunks or {}) do
    local web = type(c) == "table" and c.web or {}
    chunks[#chunks + 1] = { url = web.uri, title = web.title }
  end
  local queries = g.webSearchQueries or {}
  for i, q in ipairs(queries) do
    trace.steps[#trace.steps + 1] = { type = "search", query = q, results = i == #queries and chunks or {} }
  end
  local inserts = {}
  for _, s in ipairs(g.groundingSupports or {}) do
    local seg = type(s.segment) == "table" and s.segment or {}
    for _, ci in ipairs(s.groundingChunkIndices or {}) do
      local chunk = chunks[ci + 1]
      if chunk and chunk.url and text then inserts[#inserts + 1] = { at = math.min(seg.endIndex or #text, #text), url = chunk.url } end
    end
  end
  if text and #inserts > 0 then text, trace.citations = import.insert_markers(text, inserts) end
  trace.output = text
  local request = doc.request or {}
  local contents = type(request.contents) == "table" and request.contents or {}
  for _, c in ipairs(contents) do
    if c.role == "user" or c.role == nil then
      trace.input = import.text(c.parts)
      break
    end
  end
  local usage = r.usageMetadata or {}
  import.llm_step(trace.steps, r.modelVersion, text, usage.promptTokenCount, usage.candidatesTokenCount)
  return import.finish(trace)
end

return { name = "import", description = "a Gemini response with Google Search grounding to an assay trace",
  params = { search_tools = "", fetch_tools = "" }, map = map }
