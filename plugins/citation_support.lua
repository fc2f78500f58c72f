-- citation_support: do the report's citations support its claims? (docs/metrics.md)
--
--   sentences of the output; one starting with a marker "[k]" is a reference-list entry
--   source(k) = content of the first fetch of citations[k]'s URL key, else title .. " " ..
--               snippet of the first search result with that key, else none
--   for each (sentence, k) with 1 <= k <= #citations (each distinct k once per sentence):
--     claim = C(sentence without markers)
--     support = |set(claim) ∩ set(T(source))| / |set(claim)| (1 for an empty claim, 0 without source)
--   score = supported pairs / pairs;  pass = score >= threshold and no invalid markers
local text = assay.text
local trace = require("trace")
local result = require("result")

-- Distinct markers of a sentence, in order of first appearance.
local function distinct_markers(sentence)
  local seen, out = {}, {}
  for _, k in ipairs(text.markers(sentence)) do
    if not seen[k] then
      seen[k] = true
      out[#out + 1] = k
    end
  end
  return out
end

return {
  name = "citation_support",
  description = "Each cited claim should share most of its content words with the cited source.",
  scope = "trace",
  params = { min_support = 0.6, threshold = 0.7 },

  evaluate = function(t, params)
    if type(t.output) ~= "string" then return result.skip("no output") end
    local citations = trace.is_array(t.citations) and t.citations or {}
    local fetched, found = trace.sources(t)

    local source_tokens = {} -- k -> set(T(source)) or false when k has no source
    local function source_of(k)
      if source_tokens[k] == nil then
        local url = citations[k]
        local source
        if type(url) == "string" then
          local key = text.url_key(url)
          if key ~= "" then source = fetched[key] or found[key] end
        end
        source_tokens[k] = source and text.Set():add_tokens(source) or false
      end
      return source_tokens[k]
    end

    local pairs_, supported, invalid, cited, claims = 0, 0, 0, 0, 0
    local missing = {}
    for _, sentence in ipairs(text.sentences(t.output)) do
      if not text.starts_with_marker(sentence) then
        claims = claims + 1
        local claim, claim_size
        local has_valid = false
        for _, k in ipairs(distinct_markers(sentence)) do
          if k >= 1 and k <= #citations then
            has_valid = true
            pairs_ = pairs_ + 1
            if claim == nil then
              claim = text.Set():add_content(text.strip_markers(sentence))
              claim_size = #claim
            end
            local source = source_of(k)
            local support
            if not source then
              missing[k] = true
              support = 0
            elseif claim_size == 0 then
              support = 1
            else
              support = claim:intersection_size(source) / claim_size
            end
            if support >= params.min_support then supported = supported + 1 end
          else
            invalid = invalid + 1
          end
        end
        if has_valid then cited = cited + 1 end
      end
    end

    if pairs_ == 0 then
      return result.skip("no citation markers pointing into citations",
        { invalid_markers = invalid, sentences = claims })
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
        cited_sentences = cited,
        sentences = claims,
      },
    }
  end,
}
