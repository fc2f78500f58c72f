-- by_field: a pairwise judge without a model, for `assay pairwise` (docs/llm.md): the answer
-- whose trace has the higher metadata.<field> is better; equal values are a tie.
--   score = 1 when the first answer wins, 0 when the second does, 0.5 for a tie
-- Deterministic, so that a pipeline can be tested end to end without a model, and a
-- number the traces already carry (a human rating, a test pass count) can rank systems.
local trace = require("trace")

return {
  name = "by_field",
  description = "Pairwise: the answer whose metadata.<field> is higher wins (a tie when equal).",
  params = { field = "rating" },

  evaluate = function(t, params)
    local traces = trace.is_array(t.traces) and t.traces or {}
    local first = trace.get(traces[1], "metadata", params.field)
    local second = trace.get(traces[2], "metadata", params.field)
    if type(first) ~= "number" or type(second) ~= "number" then
      error(("both traces need a number at metadata.%s (got %s and %s)")
        :format(params.field, type(first), type(second)), 0)
    end
    local score = first > second and 1 or first < second and 0 or 0.5
    return { score = score, details = { first = first, second = second } }
  end,
}
