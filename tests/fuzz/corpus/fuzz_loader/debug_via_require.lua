-- kind: runtime
-- expect: require: no host module
return { name = "debug_via_require", evaluate = function(t)
  if t.id == "after" then return 1 end
  return require("assay.debug") ~= nil
end }
