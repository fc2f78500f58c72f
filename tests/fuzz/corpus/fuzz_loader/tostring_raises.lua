-- kind: runtime
-- expect: tostring broke
return { name = "tostring_raises", evaluate = function(t)
  if t.id == "after" then return 1 end
  print(setmetatable({}, { __tostring = function() error("tostring broke", 0) end }))
end }
