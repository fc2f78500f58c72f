-- kind: runtime
-- expect: attempt to index a string value
-- getmetatable of a JSON array handed out the marker the host attaches to every array it
-- builds; a __gc written into it ran in later traces and in lua_close, outside any limit.
return { name = "array_metatable_gc", evaluate = function(t)
  if t.id == "after" then return 1 end
  local mt = getmetatable(t.steps)
  if type(mt) == "table" then
    mt.__gc = function() while true do end end
    mt.__len = function() return 1e9 end
    return 0
  end
  mt.__gc = function() while true do end end
  return 1
end }
