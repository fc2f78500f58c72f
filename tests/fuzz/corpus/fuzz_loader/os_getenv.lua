-- kind: runtime
-- expect: os.getenv is not available in the assay sandbox
return { name = "os_getenv", evaluate = function(t)
  if t.id == "after" then return 1 end
  return os.getenv("HOME") ~= nil
end }
