-- query_diversity: are the agent's search queries diverse, or rephrasings of one? (docs/metrics.md)
--
--   Q = the query of every search step (repeats kept), n = |Q|, skipped when n < 2
--   sim(i, j) = Jaccard(set(T(Qi)), set(T(Qj)))
--   score = 1 - mean of sim over all pairs i < j;  pass = score >= threshold, and (when
--   max_near_duplicates >= 0) no more than max_near_duplicates pairs with sim >= near_duplicate
local text = assay.text
local trace = require("trace")
local result = require("result")

return {
  name = "query_diversity",
  description = "Search queries should explore different ground: 1 - mean pairwise Jaccard of query token sets.",
  scope = "trace",
  params = { threshold = 0.5, near_duplicate = 0.8, max_near_duplicates = -1 },

  evaluate = function(t, params)
    local queries = trace.queries(t)
    local n = #queries
    if n < 2 then return result.skip("fewer than 2 search queries", { n_queries = n }) end

    local sets, bigrams, total_bigrams = {}, text.Set(), 0
    for i, query in ipairs(queries) do
      sets[i] = text.Set():add_tokens(query)
      local _, count = bigrams:add_ngrams(query, 2) -- within one query only
      total_bigrams = total_bigrams + count
    end

    local sum, max, near_duplicates, pairs = 0, 0, 0, 0
    for i = 1, n - 1 do
      for j = i + 1, n do
        local sim = sets[i]:jaccard(sets[j])
        sum, pairs = sum + sim, pairs + 1
        if sim > max then max = sim end
        if sim >= params.near_duplicate then near_duplicates = near_duplicates + 1 end
      end
    end
    local mean = sum / pairs
    local scored = result.scored(1 - mean, params.threshold, {
      n_queries = n,
      mean_pairwise_jaccard = mean,
      max_pairwise_jaccard = max,
      near_duplicate_pairs = near_duplicates,
      distinct_2 = total_bigrams > 0 and #bigrams / total_bigrams or result.null,
    })
    -- near-duplicate pairs predict wrong answers better than the mean does: an optional
    -- pass rule (-1, the default, leaves it off)
    if params.max_near_duplicates >= 0 and near_duplicates > params.max_near_duplicates then scored.pass = false end
    return scored
  end,
}
