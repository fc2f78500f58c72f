-- kind: memory
-- expect: memory limit of its Lua state
return { name = "string_rep_bomb", evaluate = function(t)
  if t.id == "after" then return 1 end
  return #("x"):rep(1 << 30)
end }
