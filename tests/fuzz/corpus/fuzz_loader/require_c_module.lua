-- kind: runtime
-- expect: module 'socket.core' not found in the plugin lib directories
return { name = "require_c_module", evaluate = function(t)
  if t.id == "after" then return 1 end
  return require("socket.core") ~= nil
end }
