-- step_novelty: does each search bring something new? (docs/metrics.md)
--
--   for the search step at index i: U = its result URL keys, C = set(C(title .. " " .. snippet))
--   over its results; seen URLs = keys of earlier searches' results and earlier fetches;
--   seen tokens = content tokens of earlier results' titles and snippets and earlier fetches'
--   content
--   url_novelty = |U \ seen URLs| / |U|;  token_novelty = |C \ seen tokens| / |C| (each
--   undefined when its set is empty)
--   score = mean of the defined ones (skipped when neither is);  pass = score >= threshold
local text = assay.text
local trace = require("trace")
local result = require("result")

return {
  name = "step_novelty",
  description = "Each search should find URLs and words that no earlier step had.",
  scope = "search",
  params = { threshold = 0.5 },

  evaluate = function(t, params, step, index)
    local seen_urls, seen_tokens = text.Set(), text.Set()
    for i = 1, index - 1 do
      local s = t.steps[i]
      if trace.is_object(s) and s.type == "search" then
        for _, r in ipairs(trace.results(s)) do
          if type(r.url) == "string" then seen_urls:add(text.url_key(r.url)) end
          seen_tokens:add_content(trace.result_text(r))
        end
      elseif trace.is_object(s) and s.type == "fetch" then
        if type(s.url) == "string" then seen_urls:add(text.url_key(s.url)) end
        seen_tokens:add_content(trace.text(s.content))
      end
    end
    local urls, tokens = text.Set(), text.Set()
    for _, r in ipairs(trace.results(step)) do
      if type(r.url) == "string" then urls:add(text.url_key(r.url)) end
      tokens:add_content(trace.result_text(r))
    end
    local url_novelty = #urls > 0 and (#urls - urls:intersection_size(seen_urls)) / #urls or nil
    local token_novelty = #tokens > 0 and (#tokens - tokens:intersection_size(seen_tokens)) / #tokens or nil
    local defined = {}
    if url_novelty then defined[#defined + 1] = url_novelty end
    if token_novelty then defined[#defined + 1] = token_novelty end
    if #defined == 0 then return result.skip("no results") end
    local score = result.mean(defined)
    return result.scored(score, params.threshold, {
      url_novelty = url_novelty or result.null,
      token_novelty = token_novelty or result.null,
      new_urls = url_novelty and #urls - urls:intersection_size(seen_urls) or 0,
    })
  end,
}
