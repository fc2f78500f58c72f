-- relevance: does every search query stay on the research prompt, directly or by following
-- what earlier results said? (docs/metrics.md)
--
--   P = set(C(input)); walk the steps with a context K, initially P
--   search: rel(q) = |Q ∩ K| / |Q| with Q = set(C(q)), scored before its own results join K;
--           then C(title .. " " .. snippet) of each result joins K
--   fetch:  C(content) joins K
--   score = mean rel;  pass = no query with rel < min_relevance
--   result_relevance = mean TF-IDF cosine of each result's text against the input
local text = assay.text
local trace = require("trace")
local result = require("result")

return {
  name = "relevance",
  description = "Search queries and results should stay on the research prompt (or follow up on earlier results).",
  scope = "trace",
  params = { min_relevance = 0.5 },

  evaluate = function(t, params)
    local input = trace.text(t.input)
    -- K, whose documents (the input, then each result's text) are also the TF-IDF's
    local context = text.Set():add_document(input)
    local prompt = text.Set():add_all(context) -- P
    local per_query, prompt_overlap = {}, {}

    for _, step in ipairs(trace.steps(t)) do
      if step.type == "search" then
        if type(step.query) == "string" then
          local q = text.Set():add_content(step.query)
          local size = #q
          per_query[#per_query + 1] = size > 0 and q:intersection_size(context) / size or 0
          prompt_overlap[#prompt_overlap + 1] = size > 0 and q:intersection_size(prompt) / size or 0
        end
        trace.result_texts(step, context) -- each result's text joins K, as a document
      elseif step.type == "fetch" then
        context:add_content(step.content)
      end
    end
    if #per_query == 0 then return result.skip("no search queries") end

    local off_topic = 0
    for _, rel in ipairs(per_query) do
      if rel < params.min_relevance then off_topic = off_topic + 1 end
    end
    local result_relevance = result.null
    local cosines = context:tfidf_cosines()
    if #cosines > 0 then result_relevance = result.mean(cosines) end

    return {
      score = result.mean(per_query),
      pass = off_topic == 0,
      details = {
        per_query = per_query,
        off_topic_queries = off_topic,
        prompt_overlap = result.mean(prompt_overlap),
        result_relevance = result_relevance,
      },
    }
  end,
}
