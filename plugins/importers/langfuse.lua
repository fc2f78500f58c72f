-- langfuse.lua - a Langfuse trace export to an assay trace. The document
-- (docs/importers.md): { id, trace, observations }, observations in start order.
local import = require("import")

-- Text from a Langfuse input or output in any framework's dialect: a string, chat
-- messages, { messages }, an OpenAI Responses object, { content | output | raw | result }.
local function text_of(value, want_user)
  value = import.decode(value)
  if type(value) == "string" then return want_user and import.transcript_user_text(value) or value end
  if type(value) ~= "table" then return nil end
  local messages = value.messages or (value[1] ~= nil and value)
  if messages then
    return want_user and import.first_user_text(messages) or import.last_assistant_text(messages)
  end
  local text = import.response_text(value)
  if text then return text end
  for _, key in ipairs({ "input", "query", "question", "content", "output", "raw", "result", "answer" }) do
    local v = value[key]
    if type(v) == "string" then return v end
  end
  return nil
end

local function tool_name(o)
  local name = o.name or ""
  return (name:gsub("^running tool: ", ""))
end

local function extra_of(o)
  local extra = { latency_ms = import.latency_ms(o.startTime, o.endTime) }
  if o.level == "ERROR" then extra.error = o.statusMessage or true end
  return extra
end

local function add_step(steps, o, params)
  local extra = extra_of(o)
  if o.type == "GENERATION" then
    local usage = o.usageDetails or o.usage or {}
    local step = {
      type = "llm", model = o.model, input = text_of(o.input, true), output = text_of(o.output, false),
      usage = { input_tokens = usage.input, output_tokens = usage.output },
    }
    for k, v in pairs(extra) do step[k] = v end
    steps[#steps + 1] = step
    return
  end
  local name = tool_name(o)
  if import.is_search(name, params) or o.type == "RETRIEVER" then
    import.search_steps(steps, o.input, o.output, extra)
  elseif import.is_fetch(name, params) then
    import.fetch_step(steps, o.input, o.output, extra)
  elseif o.type == "TOOL" then
    local step = { type = "tool", name = name, arguments = import.decode(o.input), result = import.decode(o.output) }
    for k, v in pairs(extra) do step[k] = v end
    steps[#steps + 1] = step
  end
end

-- People's scores (source ANNOTATION or API, not EVAL: those are a model's) as votes: 0/1 and
-- booleans as thumbs down/up, other numbers on the smallest of [0, 1], [1, 5], [0, 10] that
-- holds them. docs/importers.md.
local function feedback_of(scores)
  local out = {}
  for _, s in ipairs(scores) do
    local human = s.source == "ANNOTATION" or s.source == "API"
    local v = s.value
    if human and type(v) == "boolean" then v = v and 1 or 0 end
    if human and type(v) == "number" then
      local vote = { type = "vote", name = s.name, at = s.timestamp, user = s.authorUserId }
      if s.dataType == "BOOLEAN" or v == 0 or v == 1 then
        vote.value = v > 0 and 1 or -1
      else
        vote.value = v
        vote.scale = (v >= 0 and v <= 1) and { 0, 1 } or (v >= 1 and v <= 5) and { 1, 5 } or { 0, 10 }
      end
      out[#out + 1] = vote
    end
    if human and type(s.comment) == "string" and s.comment ~= "" and s.name == "correction" then
      out[#out + 1] = { type = "correction", text = s.comment }
    end
  end
  if #out == 0 then return nil end
  return out
end

local function map(doc, params)
  local t = doc.trace or {}
  local trace = { id = doc.id, steps = {}, metadata = {} }
  local first_generation, last_generation
  for _, o in ipairs(doc.observations or {}) do
    if o.type == "GENERATION" then
      first_generation = first_generation or o
      last_generation = o
    end
    add_step(trace.steps, o, params)
  end
  -- the trace's own input and output, unless a framework put a serialised object there:
  -- then the first generation's user text and the last generation's answer
  local input, output = text_of(t.input, true), text_of(t.output, false)
  if not import.is_prose(input) and first_generation then input = text_of(first_generation.input, true) or input end
  if not import.is_prose(output) and last_generation then output = text_of(last_generation.output, false) or output end
  trace.input, trace.output = input, output
  trace.metadata.name = t.name
  trace.metadata.session_id = t.sessionId
  trace.metadata.user_id = t.userId
  trace.metadata.release = t.release
  trace.metadata.environment = t.environment
  if type(t.tags) == "table" and #t.tags > 0 then trace.metadata.tags = t.tags end
  if type(t.scores) == "table" and #t.scores > 0 then
    trace.metadata.langfuse_scores = t.scores
    trace.feedback = feedback_of(t.scores)
  end
  return import.finish(trace)
end

return {
  name = "import",
  description = "a Langfuse trace export {trace, observations} to an assay trace",
  params = { search_tools = "", fetch_tools = "" },
  map = map,
}
