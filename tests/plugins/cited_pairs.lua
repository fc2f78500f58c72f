-- Exercises trace.cited_pairs (plugins/lib/trace.lua); the cases file holds hand-worked pairs.
local trace = require("trace")

return {
  name = "cited_pairs",
  evaluate = function(t)
    local pairs_, counts = trace.cited_pairs(t)
    local shown = {}
    for i, p in ipairs(pairs_) do
      shown[i] = ("%d:%d:%s:%s"):format(p.sentence, p.k, p.claim, p.source or "(none)")
    end
    return { score = 1, details = { pairs = shown, sentences = counts.sentences,
                                     cited_sentences = counts.cited_sentences, invalid_markers = counts.invalid_markers } }
  end,
}
