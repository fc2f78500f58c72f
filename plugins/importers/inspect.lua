-- inspect.lua - an inspect_ai sample (from a .json log or a .eval zip) to an assay trace.
-- The document (docs/importers.md): { id = "task:sample:epoch", eval, results, sample }.
local import = require("import")

local function input_of(sample)
  if type(sample.input) == "string" then return sample.input end
  return import.first_user_text(sample.input)
end

local function output_of(sample)
  local output = sample.output
  local choice = type(output) == "table" and type(output.choices) == "table" and output.choices[1]
  if type(choice) == "table" and type(choice.message) == "table" then return import.text(choice.message.content) end
  return import.last_assistant_text(sample.messages)
end

-- Steps from the sample's events when it has them (model calls with usage, tool calls with
-- their results), else from its messages.
local function steps_of(sample, params)
  local events = sample.events
  if type(events) ~= "table" or #events == 0 then
    local model = type(sample.output) == "table" and sample.output.model or nil
    return import.steps_from_messages(sample.messages, params, model)
  end
  local steps = {}
  for _, e in ipairs(events) do
    if e.event == "model" then
      local out = type(e.output) == "table" and e.output or {}
      local usage = out.usage or {}
      local choice = type(out.choices) == "table" and out.choices[1] or {}
      steps[#steps + 1] = {
        type = "llm", model = e.model or out.model,
        input = import.first_user_text(e.input),
        output = type(choice.message) == "table" and import.text(choice.message.content) or nil,
        usage = { input_tokens = usage.input_tokens, output_tokens = usage.output_tokens },
      }
    elseif e.event == "tool" then
      local err = type(e.error) == "table" and (e.error.message or e.error.type) or e.error
      local extra = err and { error = err } or nil
      if import.is_search(e["function"], params) then
        import.search_steps(steps, e.arguments, e.result, extra)
      elseif import.is_fetch(e["function"], params) then
        import.fetch_step(steps, e.arguments, e.result, extra)
      else
        steps[#steps + 1] = { type = "tool", name = e["function"], arguments = e.arguments, result = e.result, error = err }
      end
    end
  end
  return steps
end

local function map(doc, params)
  local sample, eval = doc.sample or {}, doc.eval or {}
  local metadata = {}
  if type(sample.metadata) == "table" then
    for k, v in pairs(sample.metadata) do metadata[k] = v end
  end
  metadata.task = eval.task
  metadata.model = eval.model
  metadata.target = sample.target
  if type(sample.scores) == "table" and next(sample.scores) then metadata.inspect_scores = sample.scores end
  return import.finish({
    id = doc.id,
    input = input_of(sample),
    output = output_of(sample),
    steps = steps_of(sample, params),
    metadata = metadata,
  })
end

return {
  name = "import",
  description = "an inspect_ai sample (.json or .eval log) to an assay trace",
  params = { search_tools = "", fetch_tools = "" },
  map = map,
}
