-- kind: timeout
-- expect: evaluation exceeded the 300 ms time limit
-- memory-mb: 96
-- A sort by `<` runs entirely inside C, where the count hook never fires: millions of
-- numbers would keep it there long past the limit, and the plugin would return normally.
return { name = "sort_without_comparator", evaluate = function(t)
  if t.id == "after" then return 1 end
  local big = {}
  for i = 1, 4096 do big[i] = (i * 7919) % 4099 end
  while #big < 4000000 do table.move(big, 1, #big, #big + 1) end -- doubled inside C
  table.sort(big)
  return 1
end }
