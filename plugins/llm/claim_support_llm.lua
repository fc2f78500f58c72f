-- claim_support_llm: do the cited sources support the report's claims, as a model judges?
--
--   the (claim, source) pairs of citation_support (docs/metrics.md): each sentence of the output
--   that is not a reference entry, with each distinct valid marker [k] it carries, and the
--   source text of citations[k] (first fetch of its URL key, else the first search result)
--   every pair with a source is judged by the model, all pairs of a trace concurrently
--   (assay.llm.chat_all); a pair without a source is unsupported without asking
--   score = supported pairs / pairs;  pass = score >= threshold;  skipped without pairs, and
--   when the trace logged no source text at all
-- Needs --llm-url (docs/llm.md).
local text = assay.text
local trace = require("trace")
local result = require("result")
local llm = require("llm")

local SYSTEM = [[You check whether a source supports a claim. Answer with a single JSON object
and nothing else: {"supported": true or false, "reason": "<one sentence>"}]]

local USER = [[Claim:
{{claim}}

Source:
{{source}}

Does the source support the claim? Answer with the JSON object only.]]

return {
  name = "claim_support_llm",
  description = "A model judges whether each cited source supports its claim; score = supported / pairs.",
  scope = "trace",
  params = { threshold = 0.7, model = "", max_source_chars = 6000, max_pairs = 50 },

  evaluate = function(t, params)
    if type(t.output) ~= "string" then return result.skip("no output") end
    local pairs_, counts = trace.cited_pairs(t)
    local requests, judged = {}, {}
    for _, pair in ipairs(pairs_) do
      if pair.source and #requests < params.max_pairs then
        requests[#requests + 1] = {
          model = params.model ~= "" and params.model or nil,
          temperature = 0,
          max_tokens = 150,
          messages = {
            { role = "system", content = SYSTEM },
            { role = "user", content = llm.prompt(USER, {
                claim = pair.claim, source = llm.clip(pair.source, params.max_source_chars) }) },
          },
        }
        judged[#requests] = pair
      end
    end
    if #pairs_ == 0 then return result.skip("no cited claims") end
    if not counts.has_sources then return result.skip("no sources logged") end

    local verdicts, problems = llm.chat_verdicts(assay.llm.chat_all, requests, function(v)
      if type(v.supported) ~= "boolean" then return "no boolean 'supported'" end
    end)
    for i = 1, #requests do
      if not verdicts[i] then
        error(("the model gave no verdict with a boolean 'supported' for claim %d (%s)"):format(i, problems[i]), 0)
      end
      judged[i].supported = verdicts[i].supported
    end

    local supported, unsupported = 0, {}
    for _, pair in ipairs(pairs_) do
      if pair.supported then
        supported = supported + 1
      elseif #unsupported < 5 then
        unsupported[#unsupported + 1] = { claim = llm.clip(pair.claim, 200), citation = pair.k,
                                          reason = pair.source and "judged unsupported" or "no source text" }
      end
    end
    local score = supported / #pairs_
    return {
      score = score,
      pass = score >= params.threshold,
      details = { pairs = #pairs_, judged = #requests, supported = supported, unsupported = unsupported },
    }
  end,
}
