-- kind: timeout
-- expect: evaluation exceeded the 300 ms time limit
-- The same backtracking through the other entry points: string methods on a value, gmatch
-- and gsub.
return { name = "pattern_gsub_backtracking", evaluate = function(t)
  if t.id == "after" then return 1 end
  local s = ("a"):rep(600)
  for _ in s:gmatch("(.-)(.-)(.-)b") do end
  return (s:gsub("a-a-a-b", ""))
end }
