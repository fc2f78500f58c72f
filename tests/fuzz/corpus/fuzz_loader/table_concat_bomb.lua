-- kind: memory
-- expect: memory limit of its Lua state
return { name = "table_concat_bomb", evaluate = function(t)
  if t.id == "after" then return 1 end
  local parts = {}
  for i = 1, 1e9 do parts[i] = ("y"):rep(1 << 16) end
  return #table.concat(parts)
end }
