-- breadth_depth: how many directions did the research take, and did it follow up? (docs/metrics.md)
--
--   Q = the queries in order (n = |Q|, skipped when n < 2); sets Ai = set(C(Qi))
--   breadth = the number of clusters of Q: single-link, i and j linked when
--             Jaccard(Ai, Aj) >= cluster_jaccard
--   depth = the share of queries after the first with a content word that no earlier query
--           had but an earlier step's results (titles, snippets) or fetched content did
--   score = (min(breadth / target_breadth, 1) + depth) / 2;  pass = score >= threshold
local text = assay.text
local trace = require("trace")
local result = require("result")

local function find(parent, i)
  while parent[i] ~= i do i = parent[i] end
  return i
end

return {
  name = "breadth_depth",
  description = "Breadth: query clusters; depth: follow-up queries built on words the results brought.",
  scope = "trace",
  params = { cluster_jaccard = 0.3, target_breadth = 3, threshold = 0.5 },

  evaluate = function(t, params)
    local queries = trace.queries(t)
    local n = #queries
    if n < 2 then return result.skip("fewer than 2 search queries", { n_queries = n }) end
    local sets, parent = {}, {}
    for i, q in ipairs(queries) do sets[i], parent[i] = text.Set():add_content(q), i end
    for i = 1, n - 1 do
      for j = i + 1, n do
        if sets[i]:jaccard(sets[j]) >= params.cluster_jaccard then parent[find(parent, j)] = find(parent, i) end
      end
    end
    local roots = {}
    for i = 1, n do roots[find(parent, i)] = true end
    local breadth = text.size(roots)

    -- depth: walk the steps in order, keeping the words of earlier queries and of what came back
    local asked, learned, followups, qi = text.Set(), text.Set(), 0, 0
    for _, s in ipairs(trace.steps(t)) do
      if s.type == "search" and type(s.query) == "string" then
        qi = qi + 1
        if qi > 1 then
          for _, word in ipairs(text.content_tokens(s.query)) do
            if not asked:has(word) and learned:has(word) then
              followups = followups + 1
              break
            end
          end
        end
        asked:add_content(s.query)
        for _, r in ipairs(trace.results(s)) do learned:add_content(trace.result_text(r)) end
      elseif s.type == "fetch" then
        learned:add_content(trace.text(s.content))
      end
    end
    local depth = followups / (n - 1)
    local score = (math.min(breadth / params.target_breadth, 1) + depth) / 2
    return result.scored(score, params.threshold, { n_queries = n, breadth = breadth, depth = depth, followups = followups })
  end,
}
