-- semantic_diversity: are the search queries diverse in meaning, not just in words?
--
--   Q = the query of every search step (repeats kept), n = |Q|, skipped when n < 2
--   e_i = embedding of Q_i (one batched assay.llm.embed call per trace)
--   score = 1 - mean over pairs i < j of cos(e_i, e_j), clamped to [0, 1]
--   pass = score >= threshold
-- Needs --llm-url with an embeddings endpoint (docs/llm.md).
local trace = require("trace")
local result = require("result")

local function cosine(a, b)
  local dot, na, nb = 0, 0, 0
  for i = 1, math.min(#a, #b) do
    dot = dot + a[i] * b[i]
    na = na + a[i] * a[i]
    nb = nb + b[i] * b[i]
  end
  if na == 0 or nb == 0 then return 0 end
  return dot / (math.sqrt(na) * math.sqrt(nb))
end

return {
  name = "semantic_diversity",
  description = "1 - mean pairwise cosine similarity of the search queries' embeddings.",
  scope = "trace",
  params = { threshold = 0.3, model = "" },

  evaluate = function(t, params)
    local queries = trace.queries(t)
    local n = #queries
    if n < 2 then return result.skip("fewer than 2 search queries", { n_queries = n }) end
    local answer = assay.llm.embed{ input = queries, model = params.model ~= "" and params.model or nil }
    local vectors = answer.vectors
    if #vectors ~= n then error(("asked for %d embeddings, got %d"):format(n, #vectors), 0) end

    local sum, max, pairs = 0, -1, 0
    for i = 1, n - 1 do
      for j = i + 1, n do
        local c = cosine(vectors[i], vectors[j])
        sum, pairs = sum + c, pairs + 1
        if c > max then max = c end
      end
    end
    local mean = sum / pairs
    local score = math.min(1, math.max(0, 1 - mean))
    return {
      score = score,
      pass = score >= params.threshold,
      details = { n_queries = n, mean_pairwise_cosine = mean, max_pairwise_cosine = max },
    }
  end,
}
