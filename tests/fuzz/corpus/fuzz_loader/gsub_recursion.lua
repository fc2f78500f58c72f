-- kind: runtime
-- expect: stack overflow
return { name = "gsub_recursion", evaluate = function(t)
  if t.id == "after" then return 1 end
  local function g(s) return (s:gsub(".", g)) end
  return g(("a"):rep(100))
end }
