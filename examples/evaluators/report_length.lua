-- report_length: is the report long enough to be useful but short enough to read?
-- A custom evaluator to copy: run it with
--   build/assay run -e examples/evaluators/report_length.lua examples/traces/deep-research.jsonl
--
--   words = number of tokens in the output (docs/metrics.md tokens)
--   score = 1 inside [min_words, max_words], falling linearly to 0 at 0 words and at 2 × max_words
local text = assay.text
local trace = require("trace")   -- helpers from plugins/lib: safe field access
local result = require("result")

return {
  name = "report_length",
  description = "Report length in words, scored against a target range.",
  scope = "trace",
  params = { min_words = 150, max_words = 1500 },

  evaluate = function(t, params)
    local output = trace.text(t.output)
    if output == "" then return result.skip("no output") end
    local words = #text.tokens(output)
    local score
    if words < params.min_words then
      score = words / params.min_words
    elseif words <= params.max_words then
      score = 1
    else
      score = math.max(0, 1 - (words - params.max_words) / params.max_words)
    end
    return {
      score = score,
      pass = score == 1,
      label = words < params.min_words and "short" or words > params.max_words and "long" or "ok",
      details = { words = words, sections = select(2, output:gsub("\n#+ ", "")) },
    }
  end,
}
