-- kind: runtime
-- expect: os.execute is not available in the assay sandbox
return { name = "os_execute", evaluate = function(t)
  if t.id == "after" then return 1 end
  return os.execute("id") ~= nil
end }
