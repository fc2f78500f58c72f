-- kind: runtime
-- expect: evaluate returned score of type
return { name = "return_metatable_trap", evaluate = function(t)
  if t.id == "after" then return 1 end
  return setmetatable({ score = "high" }, { __index = function() while true do end end })
end }
