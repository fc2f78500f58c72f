-- feedback.lua - what the trace's users said: the mean of its votes, scaled to [0, 1].
-- Exact definition in docs/metrics.md (feedback). A trace without votes is skipped (no
-- score); its actions and corrections are still counted in details.
local text = assay.text

-- Word-level edit distance between two token lists, each cut to `limit` tokens:
-- Levenshtein over whole tokens, two rows at a time.
local function edit_distance(a, b, limit)
  local n, m = math.min(#a, limit), math.min(#b, limit)
  local prev, cur = {}, {}
  for j = 0, m do prev[j] = j end
  for i = 1, n do
    cur[0] = i
    local ai = a[i]
    for j = 1, m do
      local cost = ai == b[j] and 0 or 1
      local best = prev[j - 1] + cost
      if prev[j] + 1 < best then best = prev[j] + 1 end
      if cur[j - 1] + 1 < best then best = cur[j - 1] + 1 end
      cur[j] = best
    end
    prev, cur = cur, prev
  end
  return prev[m], math.max(n, m)
end

local function vote_value(f)
  if type(f.value) ~= "number" then return nil end
  local scale = type(f.scale) == "table" and f.scale or { -1, 1 }
  local lo, hi = scale[1] or scale.min, scale[2] or scale.max
  if type(lo) ~= "number" or type(hi) ~= "number" or hi <= lo then return nil end
  local v = (f.value - lo) / (hi - lo)
  return math.max(0, math.min(1, v))
end

return {
  name = "feedback",
  description = "User feedback on the trace: the mean vote scaled to [0, 1]; actions and corrections counted.",
  params = { threshold = 0.5, max_tokens = 2000 },
  evaluate = function(trace, params)
    local counts, actions = {}, {}
    local sum, votes = 0, 0
    local correction_distance
    for _, f in ipairs(trace.feedback or {}) do
      if type(f) == "table" and type(f.type) == "string" then
        counts[f.type] = (counts[f.type] or 0) + 1
        if f.type == "vote" then
          local scaled = vote_value(f)
          if scaled then sum, votes = sum + scaled, votes + 1 end
        elseif f.type == "action" and type(f.name) == "string" then
          actions[f.name] = (actions[f.name] or 0) + 1
        elseif f.type == "correction" and type(f.text) == "string" and type(trace.output) == "string" then
          local d, len = edit_distance(text.tokens(f.text), text.tokens(trace.output), params.max_tokens)
          correction_distance = len > 0 and d / len or 0
        end
      end
    end
    local details = { votes = votes }
    if next(counts) then details.counts = counts end
    if next(actions) then details.actions = actions end
    details.correction_distance = correction_distance
    if votes == 0 then
      details.skipped = "no votes"
      return { details = details }
    end
    local score = sum / votes
    -- the mean vote on a scale of [-1, 1]: above 0 the users liked it (calibrate's
    -- feedback.vote reads its sign)
    details.vote_mean = 2 * score - 1
    return { score = score, pass = score >= params.threshold, details = details }
  end,
}
