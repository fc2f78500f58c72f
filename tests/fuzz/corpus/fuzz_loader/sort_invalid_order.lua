-- kind: runtime
-- expect: invalid order function for sorting
return { name = "sort_invalid_order", evaluate = function(t)
  if t.id == "after" then return 1 end
  local list = {}
  for i = 1, 200 do list[i] = i % 7 end
  table.sort(list, function() return true end)
end }
