-- kind: runtime
-- expect: require: invalid module name '../../../etc/passwd'
return { name = "require_parent_path", evaluate = function(t)
  if t.id == "after" then return 1 end
  return require("../../../etc/passwd") ~= nil
end }
