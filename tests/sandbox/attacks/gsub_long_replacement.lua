-- kind: timeout
-- expect: time limit
-- gsub scans the replacement string for every match: an empty pattern matches a million
-- times, each scanning 1 MB of "%0" that adds nothing to the result.
return { name = "gsub_long_replacement", evaluate = function(t)
  if t.id == "after" then return 1 end
  local s = ("x"):rep(1000000):gsub("", ("%0"):rep(500000))
  return 1
end }
