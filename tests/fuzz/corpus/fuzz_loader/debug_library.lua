-- kind: runtime
-- expect: 'debug': the debug library is not available
return { name = "debug_library", evaluate = function(t)
  if t.id == "after" then return 1 end
  return debug.getregistry() ~= nil
end }
