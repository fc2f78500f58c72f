-- source_diversity: does the research rest on many sites or on one? (docs/metrics.md)
--
--   sites = the registrable domains of every search result URL and every citation (with
--           repeats: one per URL occurrence); n = |sites|, skipped when 0
--   distinct = number of distinct sites;  top_share = count of the most frequent site / n
--   score = (1 - top_share) / (1 - 1 / n): 1 when every URL is on a site of its own, 0 when
--           all are on one (skipped when n = 1);  pass = distinct >= min_sites and
--           top_share <= max_top_share
local trace = require("trace")
local result = require("result")

return {
  name = "source_diversity",
  description = "Results and citations should come from many sites, not mostly one.",
  scope = "trace",
  params = { min_sites = 3, max_top_share = 0.5 },

  evaluate = function(t, params)
    local counts, n = {}, 0
    local function count(url)
      local site = trace.site(url)
      if site ~= "" then
        counts[site] = (counts[site] or 0) + 1
        n = n + 1
      end
    end
    for _, s in ipairs(trace.steps(t, "search")) do
      for _, r in ipairs(trace.results(s)) do
        if type(r.url) == "string" then count(r.url) end
      end
    end
    for _, c in ipairs(trace.is_array(t.citations) and t.citations or {}) do
      if type(c) == "string" then count(c) end
    end
    if n < 2 then return result.skip("fewer than 2 result or citation URLs", { urls = n }) end
    local distinct, top, top_site = 0, 0, nil
    for _, site in ipairs(result.sorted_keys(counts)) do
      distinct = distinct + 1
      if counts[site] > top then top, top_site = counts[site], site end
    end
    local top_share = top / n
    return {
      score = (1 - top_share) / (1 - 1 / n),
      pass = distinct >= params.min_sites and top_share <= params.max_top_share,
      details = { urls = n, distinct_sites = distinct, top_site = top_site, top_share = top_share },
    }
  end,
}
