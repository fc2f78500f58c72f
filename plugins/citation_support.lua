-- citation_support: do the report's citations support its claims? (docs/metrics.md)
--
--   sentences of the output; one starting with a marker "[k]" is a reference-list entry
--   source(k) = content of the first fetch of citations[k]'s URL key, else title .. " " ..
--               snippet of the first search result with that key, else none
--   for each (sentence, k) with 1 <= k <= #citations (each distinct k once per sentence):
--     claim = C(sentence without markers)
--     support = |set(claim) ∩ set(T(source))| / |set(claim)| (1 for an empty claim, 0 without source)
--   score = supported pairs / pairs;  pass = score >= threshold and no invalid markers
--   skipped without pairs, and when the trace logged no source text at all
local text = assay.text
local trace = require("trace")
local result = require("result")

return {
  name = "citation_support",
  description = "Each cited claim should share most of its content words with the cited source.",
  scope = "trace",
  params = { min_support = 0.6, threshold = 0.7 },

  evaluate = function(t, params)
    if type(t.output) ~= "string" then return result.skip("no output") end
    local cited, counts = trace.cited_pairs(t)
    local claims, sources = {}, {} -- Sets: one per claim sentence, one per cited source
    local supported, missing = 0, {}
    for _, pair in ipairs(cited) do
      local claim = claims[pair.sentence]
      if not claim then
        claim = text.Set():add_content(pair.claim)
        claims[pair.sentence] = claim
      end
      local support
      if not pair.source then
        missing[pair.k] = true
        support = 0
      elseif #claim == 0 then
        support = 1
      else
        local source = sources[pair.k]
        if not source then
          source = text.Set():add_tokens(pair.source)
          sources[pair.k] = source
        end
        support = claim:intersection_size(source) / #claim
      end
      if support >= params.min_support then supported = supported + 1 end
    end
    local pairs_, invalid = #cited, counts.invalid_markers

    if pairs_ == 0 then
      return result.skip("no citation markers pointing into citations",
        { invalid_markers = invalid, sentences = counts.sentences })
    end
    if not counts.has_sources then
      return result.skip("no sources logged", { pairs = pairs_, invalid_markers = invalid })
    end
    local score = supported / pairs_
    return {
      score = score,
      pass = score >= params.threshold and invalid == 0,
      details = {
        pairs = pairs_,
        supported = supported,
        invalid_markers = invalid,
        missing_sources = text.size(missing),
        cited_sentences = counts.cited_sentences,
        sentences = counts.sentences,
      },
    }
  end,
}
