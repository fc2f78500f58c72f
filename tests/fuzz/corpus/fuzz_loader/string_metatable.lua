-- kind: runtime
-- expect: attempt to index a string value
return { name = "string_metatable", evaluate = function(t)
  if t.id == "after" then return 1 end
  local mt = getmetatable("")
  if type(mt) ~= "string" then return 0 end
  mt.__index = { evil = true }
  return 1
end }
