-- langsmith.lua - LangSmith runs (an ingest payload {post, patch}, or runs as exported)
-- to an assay trace. The document (docs/importers.md): { id, runs }, the runs of one trace
-- merged by id (a patch completes its post) and in dotted_order, the root first.
local import = require("import")

local function input_text(inputs)
  inputs = import.decode(inputs)
  if type(inputs) ~= "table" then return import.text(inputs) end
  local text = import.first_user_text(inputs.messages)
  if text then return text end
  for _, key in ipairs({ "question", "query", "input", "topic", "prompt" }) do
    if type(inputs[key]) == "string" then return inputs[key] end
  end
  return nil
end

local function output_text(outputs)
  outputs = import.decode(outputs)
  if type(outputs) ~= "table" then return import.text(outputs) end
  for _, key in ipairs({ "final_report", "output", "answer", "result", "report" }) do
    if type(outputs[key]) == "string" then return outputs[key] end
  end
  local choice = type(outputs.choices) == "table" and outputs.choices[1]
  if type(choice) == "table" and type(choice.message) == "table" then return import.text(choice.message.content) end
  local text = import.last_assistant_text(outputs.messages)
  if text then return text end
  local generations = outputs.generations
  if type(generations) == "table" and type(generations[1]) == "table" then
    local g = generations[1][1] or generations[1]
    if type(g) == "table" and type(g.text) == "string" then return g.text end
  end
  return nil
end

local function usage_of(run)
  local outputs = import.decode(run.outputs) or {}
  if type(outputs) ~= "table" then outputs = {} end
  local u = outputs.usage_metadata or outputs.usage
    or (type(outputs.llm_output) == "table" and outputs.llm_output.token_usage) or {}
  return { input_tokens = u.input_tokens or u.prompt_tokens, output_tokens = u.output_tokens or u.completion_tokens }
end

local function model_of(run)
  local extra = import.decode(run.extra) or {}
  local metadata = type(extra) == "table" and extra.metadata or {}
  local inputs = import.decode(run.inputs) or {}
  return (type(metadata) == "table" and metadata.ls_model_name) or (type(inputs) == "table" and inputs.model) or nil
end

local function add_step(steps, run, params)
  local extra = { latency_ms = import.latency_ms(run.start_time, run.end_time) }
  if run.error and run.error ~= "None" then extra.error = run.error end
  if run.run_type == "llm" then
    local step = { type = "llm", model = model_of(run), input = input_text(run.inputs), output = output_text(run.outputs),
                   usage = usage_of(run) }
    for k, v in pairs(extra) do step[k] = v end
    steps[#steps + 1] = step
  elseif run.run_type == "retriever" or (run.run_type == "tool" and import.is_search(run.name, params)) then
    local outputs = import.decode(run.outputs)
    if type(outputs) == "table" and outputs.output ~= nil and outputs.results == nil then outputs = outputs.output end
    import.search_steps(steps, run.inputs, outputs, extra)
  elseif run.run_type == "tool" and import.is_fetch(run.name, params) then
    local outputs = import.decode(run.outputs)
    if type(outputs) == "table" and outputs.output ~= nil then outputs = outputs.output end
    import.fetch_step(steps, run.inputs, outputs, extra)
  elseif run.run_type == "tool" then
    local step = { type = "tool", name = run.name, arguments = import.decode(run.inputs), result = import.decode(run.outputs) }
    for k, v in pairs(extra) do step[k] = v end
    steps[#steps + 1] = step
  end
end

local function map(doc, params)
  local trace = { id = doc.id, steps = {}, metadata = {} }
  local root
  for _, run in ipairs(doc.runs or {}) do
    local parent = run.parent_run_id
    if (parent == nil or parent == "None") and not root then root = run end
    add_step(trace.steps, run, params)
  end
  root = root or (doc.runs or {})[1] or {}
  trace.input = input_text(root.inputs)
  trace.output = output_text(root.outputs)
  trace.metadata.name = root.name
  trace.metadata.session_name = root.session_name
  local tags = import.decode(root.tags)
  if type(tags) == "table" and #tags > 0 then trace.metadata.tags = tags end
  return import.finish(trace)
end

return {
  name = "import",
  description = "LangSmith runs ({post, patch} payloads or exported runs) to an assay trace",
  params = { search_tools = "", fetch_tools = "" },
  map = map,
}
