-- kind: runtime
-- expect: cannot change a protected metatable
return { name = "global_metatable", evaluate = function(t)
  if t.id == "after" then return 1 end
  setmetatable(_G, nil)
  return 1
end }
