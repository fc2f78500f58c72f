-- kind: timeout
-- expect: time limit
-- table.sort compares two strings in time of their length: thousands of equal 4 MB strings
-- were seconds of comparing counted as a handful of steps.
return { name = "sort_long_strings", evaluate = function(t)
  if t.id == "after" then return 1 end
  local big = ("x"):rep(4 << 20)
  local list = {}
  for i = 1, 20000 do list[i] = big end
  table.sort(list)
  return 1
end }
