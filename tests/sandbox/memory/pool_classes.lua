-- Fills the state with strings of one size, lets them go, then another size, through the
-- small-block classes (up to 912 bytes): freed blocks stay in their class's list, so the
-- pool's chunks grew to 16 times the memory limit (440 MB RSS for two 32 MiB states).
return { name = "pool_classes", evaluate = function(t)
  if t.id == "after" then return 1 end
  for _, class in ipairs({ 2, 3, 4, 6, 8, 11, 16, 24, 32, 40, 48, 57 }) do
    local len = class * 16 - 30 -- a Lua string costs about 25 bytes more than its length
    local keep = {}
    for i = 1, (12 << 20) // (class * 16) do keep[i] = ("x"):rep(len - 8) .. string.format("%08d", i) end
    keep = nil
    local churn = {}
    for i = 1, 200000 do churn[i % 1000 + 1] = {} end -- gives the collector time to free them
  end
  return 1
end }
