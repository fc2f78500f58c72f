-- result.lua: building evaluator results (docs/plugins.md, docs/metrics.md).
local M = {}

-- JSON null inside details (a nil value would drop the key instead).
M.null = assay.null

-- The record of an evaluator that does not apply: score and pass null, details.skipped set.
function M.skip(reason, details)
  details = details or {}
  details.skipped = reason
  return { details = details }
end

-- x limited to [lo, hi] (default [0, 1]); NaN becomes lo, so a 0/0 never leaks out as a score.
function M.clamp(x, lo, hi)
  lo, hi = lo or 0, hi or 1
  if x ~= x or x < lo then return lo end
  if x > hi then return hi end
  return x
end

-- The usual record: the score clamped to [0, 1], pass when it reaches the threshold.
function M.scored(score, threshold, details)
  score = M.clamp(score)
  return { score = score, pass = score >= threshold, details = details }
end

-- n / total as a score, or nil when total is 0 (the metric does not apply).
function M.ratio(n, total)
  if total == 0 then return nil end
  return M.clamp(n / total)
end

-- Arithmetic mean of a list of numbers, summed in order (nil for an empty list).
function M.mean(values)
  if #values == 0 then return nil end
  local sum = 0
  for _, v in ipairs(values) do sum = sum + v end
  return sum / #values
end

-- Keys of a table in sorted order: iterate with this when the order can change a result
-- (pairs order differs between Lua states, so float sums over pairs are not reproducible).
function M.sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b)
    if type(a) == type(b) then return a < b end
    return type(a) < type(b)
  end)
  return keys
end

return M
