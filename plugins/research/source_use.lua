-- source_use: are the pages read used, and are the cited sources ones the agent saw? (docs/metrics.md)
--
--   F = URL keys of fetch steps;  K = URL keys of the citations (strings only);
--   S = URL keys of all search results and fetches
--   fetched_cited = |F ∩ K| / |F| (undefined when F is empty)
--   unseen = citations whose key is not in S (a sign of invented sources);  unseen_share = unseen / |K|
--   score = 1 - unseen_share (skipped without citations);  pass = no unseen citation
local text = assay.text
local trace = require("trace")
local result = require("result")

return {
  name = "source_use",
  description = "Cited sources should be ones the agent found; fetched pages should be used.",
  scope = "trace",
  params = {},

  evaluate = function(t)
    local fetched, seen = text.Set(), text.Set()
    for _, s in ipairs(trace.steps(t)) do
      if s.type == "fetch" and type(s.url) == "string" then
        fetched:add(text.url_key(s.url))
        seen:add(text.url_key(s.url))
      elseif s.type == "search" then
        for _, r in ipairs(trace.results(s)) do
          if type(r.url) == "string" then seen:add(text.url_key(r.url)) end
        end
      end
    end
    local cited = text.Set()
    for _, c in ipairs(trace.is_array(t.citations) and t.citations or {}) do
      if type(c) == "string" and text.url_key(c) ~= "" then cited:add(text.url_key(c)) end
    end
    if #cited == 0 then return result.skip("no citations") end
    local unseen = {}
    for _, key in ipairs(cited:list()) do
      if not seen:has(key) then unseen[#unseen + 1] = key end
    end
    local unseen_share = #unseen / #cited
    return {
      score = 1 - unseen_share,
      pass = #unseen == 0,
      details = {
        cited = #cited,
        unseen_citations = #unseen,
        unseen = #unseen > 0 and unseen or nil,
        fetched = #fetched,
        fetched_cited = #fetched > 0 and fetched:intersection_size(cited) / #fetched or result.null,
      },
    }
  end,
}
