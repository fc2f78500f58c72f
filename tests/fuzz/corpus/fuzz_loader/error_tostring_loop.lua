-- kind: runtime
-- expect: (error object is a table value)
return { name = "error_tostring_loop", evaluate = function(t)
  if t.id == "after" then return 1 end
  error(setmetatable({}, { __tostring = function() while true do end end }))
end }
