-- kind: timeout
-- expect: evaluation exceeded the 300 ms time limit
return { name = "infinite_loop", evaluate = function(t)
  if t.id == "after" then return 1 end
  while true do end
end }
