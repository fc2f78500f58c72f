-- kind: timeout
-- expect: time limit
-- A bracket class is scanned for every subject character it is tried on: a 100,000-byte
-- set against a 1 MB subject is 10^11 steps, which were charged as 10^6.
return { name = "pattern_long_set", evaluate = function(t)
  if t.id == "after" then return 1 end
  local set = "[" .. ("a"):rep(100000) .. "b]"
  local n = 0
  for _ = 1, 100 do n = n + #(("b"):rep(1000000):match(set .. "*") or "") end
  return 1
end }
