-- search_latency: a step-scoped evaluator (scope = "search"): one record per search step.
-- evaluate(trace, params, step, index) gets the step and its 1-based index in trace.steps;
-- the record's "step" field is the 0-based index.
return {
  name = "search_latency",
  description = "Each search step should answer within max_ms.",
  scope = "search",
  params = { max_ms = 500 },

  evaluate = function(t, params, step, index)
    local ms = step.latency_ms
    if type(ms) ~= "number" then return { details = { skipped = "no latency_ms" } } end
    return { pass = ms <= params.max_ms, details = { latency_ms = ms, step_index = index } }
  end,
}
