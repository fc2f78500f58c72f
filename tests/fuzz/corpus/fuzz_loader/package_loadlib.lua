-- kind: runtime
-- expect: 'package': package is not available
return { name = "package_loadlib", evaluate = function(t)
  if t.id == "after" then return 1 end
  return package.loadlib("libc.so.6", "system") ~= nil
end }
