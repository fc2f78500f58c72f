-- kind: timeout
-- expect: evaluation exceeded the 300 ms time limit
-- One string.find that backtracks for tens of seconds inside C, retried under pcall: the
-- matcher checks the limit itself, and the kill stays sticky.
return { name = "pattern_backtracking", evaluate = function(t)
  if t.id == "after" then return 1 end
  local s = ("a"):rep(600)
  for _ = 1, 10 do pcall(string.find, s, ".-.-.-b") end
  return 1
end }
