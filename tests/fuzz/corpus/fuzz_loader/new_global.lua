-- kind: runtime
-- expect: assignment to undeclared global 'leak' while evaluating
return { name = "new_global", evaluate = function(t)
  if t.id == "after" then return 1 end
  leak = t.id
  return 1
end }
