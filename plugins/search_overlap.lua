-- search_overlap: how much do the result sets of the searches overlap? (docs/metrics.md)
--
--   U_i = set of URL keys of the results of search step i
--   total = sum |U_i|, unique = |union U_i|, skipped when total = 0
--   score = unique / total (1: no result repeated across searches);  pass = score >= threshold
local text = assay.text
local trace = require("trace")
local result = require("result")

return {
  name = "search_overlap",
  description = "Breadth of the search: share of result URLs not already returned by another search.",
  scope = "trace",
  params = { threshold = 0.5 },

  evaluate = function(t, params)
    local searches = trace.steps(t, "search")
    -- Sets: the keys stay in C, no Lua string per result
    local url_sets, total, all = {}, 0, text.Set()
    for i, step in ipairs(searches) do
      local keys = trace.url_keys(step, text.Set())
      url_sets[i] = keys
      total = total + #keys
      all:add_all(keys)
    end
    if total == 0 then
      return result.skip("no search results with URLs", { n_searches = #searches })
    end

    local unique = #all
    local domains = text.Set():add_domains(all)

    local sum, pairs = 0, 0
    for i = 1, #url_sets - 1 do
      for j = i + 1, #url_sets do
        if #url_sets[i] > 0 or #url_sets[j] > 0 then
          sum, pairs = sum + url_sets[i]:jaccard(url_sets[j]), pairs + 1
        end
      end
    end

    local score = unique / total
    return result.scored(score, params.threshold, {
      n_searches = #searches,
      total_results = total,
      unique_urls = unique,
      unique_domains = #domains,
      redundancy = 1 - score,
      mean_pairwise_jaccard = pairs > 0 and sum / pairs or result.null,
    })
  end,
}
