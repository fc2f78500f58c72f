-- loops: does the agent repeat itself? (docs/metrics.md)
--
--   near-duplicate query pairs: i < j with Jaccard(set(T(Qi)), set(T(Qj))) >= near_duplicate
--   refetches: fetch steps whose URL key was fetched before
--   dead searches: search steps after the first that bring no result URL key not seen in an
--                  earlier search's results
--   events = near-duplicate pairs + refetches + dead searches
--   score = 1 / (1 + events);  pass = events <= max_events
local text = assay.text
local trace = require("trace")
local result = require("result")

local MAX_LISTED = 20

return {
  name = "loops",
  description = "Repeated work: near-duplicate queries, pages fetched twice, searches that found nothing new.",
  scope = "trace",
  params = { near_duplicate = 0.8, max_events = 0 },

  evaluate = function(t, params)
    local searches, fetches = trace.steps(t, "search"), trace.steps(t, "fetch")
    if #searches == 0 and #fetches == 0 then return result.skip("no search or fetch steps") end

    local queries, sets = trace.queries(t), {}
    for i, q in ipairs(queries) do sets[i] = text.Set():add_tokens(q) end
    local near, exact = {}, 0
    for i = 1, #queries - 1 do
      for j = i + 1, #queries do
        if sets[i]:jaccard(sets[j]) >= params.near_duplicate then near[#near + 1] = { i, j } end
      end
    end
    local distinct = {}
    for _, q in ipairs(queries) do distinct[table.concat(text.tokens(q), " ")] = true end
    exact = #queries - text.size(distinct)

    local fetched, refetched = {}, {}
    for _, f in ipairs(fetches) do
      if type(f.url) == "string" then
        local key = text.url_key(f.url)
        if fetched[key] then refetched[#refetched + 1] = f.url end
        fetched[key] = true
      end
    end

    local seen, dead = text.Set(), {}
    for i, s in ipairs(searches) do
      local new = 0
      for _, r in ipairs(trace.results(s)) do
        if type(r.url) == "string" then
          local key = text.url_key(r.url)
          if not seen:has(key) then new = new + 1 end
          seen:add(key)
        end
      end
      if i > 1 and new == 0 then dead[#dead + 1] = i end
    end

    local events = #near + #refetched + #dead
    local listed = {}
    for i = 1, math.min(#near, MAX_LISTED) do listed[i] = near[i] end
    return {
      score = 1 / (1 + events),
      pass = events <= params.max_events,
      details = {
        events = events,
        near_duplicate_pairs = #near,
        near_duplicates = #listed > 0 and listed or nil,
        exact_repeats = exact,
        refetches = #refetched,
        refetched_urls = #refetched > 0 and refetched or nil,
        dead_searches = #dead,
        dead_search_indices = #dead > 0 and dead or nil,
      },
    }
  end,
}
