-- kind: timeout
-- expect: evaluation exceeded the 300 ms time limit
return { name = "sort_comparator_loop", evaluate = function(t)
  if t.id == "after" then return 1 end
  table.sort({3, 2, 1}, function() while true do end end)
end }
