-- kind: runtime
-- expect: os.remove is not available in the assay sandbox
return { name = "os_remove", evaluate = function(t)
  if t.id == "after" then return 1 end
  return os.remove("/tmp/x") ~= nil
end }
