-- kind: memory
-- expect: memory limit of its Lua state
return { name = "deep_recursion", evaluate = function(t)
  if t.id == "after" then return 1 end
  local function f(n) return 1 + f(n + 1) end
  return f(1)
end }
