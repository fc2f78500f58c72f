-- otlp.lua - OTLP/JSON spans (OpenTelemetry GenAI and OpenInference attributes, told
-- apart per span) to an assay trace. The document (docs/importers.md): { id, spans }, the
-- spans of one trace in start order, each { span_id, parent_span_id, name, start_ms,
-- end_ms, status, attributes, events, resource }, attributes unflattened.
local import = require("import")

-- What a span is: "agent", "llm", "tool", "retrieval" or nil, from gen_ai.operation.name,
-- else openinference.span.kind.
local function kind_of(a)
  local op = a["gen_ai.operation.name"]
  if op == "chat" or op == "text_completion" or op == "generate_content" then return "llm" end
  if op == "execute_tool" then return "tool" end
  if op == "retrieval" then return "retrieval" end
  if op == "invoke_agent" or op == "create_agent" or op == "invoke_workflow" then return "agent" end
  local oi = a["openinference.span.kind"]
  if oi == "LLM" then return "llm" end
  if oi == "TOOL" then return "tool" end
  if oi == "RETRIEVER" then return "retrieval" end
  if oi == "AGENT" or oi == "CHAIN" then return "agent" end
  return nil
end

local function input_messages(a)
  return import.decode(a["gen_ai.input.messages"]) or a["llm.input_messages"] or import.decode(a["gen_ai.prompt"])
end

local function output_messages(a)
  return import.decode(a["gen_ai.output.messages"]) or a["llm.output_messages"] or import.decode(a["gen_ai.completion"])
end

-- The user's text of a span: its input messages' first user text, else input.value.
local function input_text(a)
  local text = import.first_user_text(input_messages(a))
  if text then return text end
  local value = import.decode(a["input.value"])
  if type(value) == "table" then return import.first_user_text(value.messages or value) or import.text(value) end
  return value
end

local function output_text(a)
  local messages = output_messages(a)
  local text = import.last_assistant_text(messages) or import.text(messages)
  if text then return text end
  local value = import.decode(a["output.value"])
  if type(value) == "table" then return import.last_assistant_text(value.messages or value) or import.text(value) end
  return value
end

local function step_extra(span)
  local extra = {}
  if type(span.start_ms) == "number" and type(span.end_ms) == "number" then
    extra.latency_ms = math.floor((span.end_ms - span.start_ms) * 1000 + 0.5) / 1000
  end
  if span.status and span.status.code == "error" then extra.error = span.status.message or true end
  return extra
end

local function retrieval_results(a)
  local docs = a["retrieval.documents"] or import.decode(a["gen_ai.retrieval.documents"])
  local results = {}
  for _, d in ipairs(docs or {}) do
    local doc = d["document"] or d
    local metadata = import.decode(doc["document.metadata"] or doc.metadata) or {}
    if type(metadata) ~= "table" then metadata = {} end
    local id = doc["document.id"] or doc.id
    local url = metadata.url or metadata.source or metadata.link
      or (type(id) == "string" and id:match("^https?://") and id)
    if url then
      results[#results + 1] = { url = url, title = metadata.title, snippet = doc["document.content"] or doc.content }
    end
  end
  return results
end

local function add_llm_step(steps, span, a)
  steps[#steps + 1] = {
    type = "llm",
    model = a["gen_ai.request.model"] or a["gen_ai.response.model"] or a["llm.model_name"],
    input = input_text(a),
    output = output_text(a),
    usage = {
      input_tokens = a["gen_ai.usage.input_tokens"] or a["llm.token_count.prompt"],
      output_tokens = a["gen_ai.usage.output_tokens"] or a["llm.token_count.completion"],
    },
  }
  for k, v in pairs(step_extra(span)) do steps[#steps][k] = v end
end

local function add_tool_step(steps, span, a, params)
  local name = a["gen_ai.tool.name"] or a["tool.name"] or span.name
  local args = a["gen_ai.tool.call.arguments"] or a["tool.parameters"] or a["input.value"] or a.input
  local result = a["gen_ai.tool.call.result"] or a["output.value"] or a.output
  if import.is_search(name, params) then
    import.search_steps(steps, args, result, step_extra(span))
  elseif import.is_fetch(name, params) then
    import.fetch_step(steps, args, result, step_extra(span))
  else
    steps[#steps + 1] = { type = "tool", name = name, arguments = import.decode(args), result = import.decode(result) }
    for k, v in pairs(step_extra(span)) do steps[#steps][k] = v end
  end
end

local function map(doc, params)
  local trace = { id = doc.id, steps = {}, metadata = {} }
  local root, first_llm, last_llm
  for _, span in ipairs(doc.spans or {}) do
    local a = span.attributes or {}
    local kind = kind_of(a)
    if not span.parent_span_id and not root then root = span end
    if kind == "llm" then
      first_llm = first_llm or a
      last_llm = a
      add_llm_step(trace.steps, span, a)
    elseif kind == "tool" then
      add_tool_step(trace.steps, span, a, params)
    elseif kind == "retrieval" then
      local query = a["gen_ai.retrieval.query.text"] or import.text(a["input.value"]) or ""
      local step = { type = "search", query = query, results = retrieval_results(a) }
      for k, v in pairs(step_extra(span)) do step[k] = v end
      trace.steps[#trace.steps + 1] = step
    end
  end
  local ra = root and root.attributes or {}
  trace.input = input_text(ra) or (first_llm and input_text(first_llm))
  trace.output = output_text(ra) or (last_llm and output_text(last_llm))
  local resource = root and root.resource or {}
  trace.metadata["service.name"] = resource["service.name"]
  trace.metadata.session_id = ra["session.id"] or ra["gen_ai.conversation.id"]
  trace.metadata.user_id = ra["user.id"]
  trace.metadata.root_span = root and root.name
  return import.finish(trace)
end

return {
  name = "import",
  description = "OTLP/JSON spans (OTel GenAI and OpenInference) to an assay trace",
  params = { search_tools = "", fetch_tools = "" },
  map = map,
}
