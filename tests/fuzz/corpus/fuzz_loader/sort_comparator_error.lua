-- kind: runtime
-- expect: comparator broke
return { name = "sort_comparator_error", evaluate = function(t)
  if t.id == "after" then return 1 end
  local list = {}
  for i = 1, 100 do list[i] = i end
  table.sort(list, function() error("comparator broke", 0) end)
end }
