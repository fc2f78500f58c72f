-- kind: timeout
-- expect: evaluation exceeded the 300 ms time limit
return { name = "pcall_swallow", evaluate = function(t)
  if t.id == "after" then return 1 end
  while true do pcall(function() while true do end end) end
end }
