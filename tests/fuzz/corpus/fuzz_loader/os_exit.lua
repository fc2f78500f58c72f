-- kind: runtime
-- expect: os.exit is not available in the assay sandbox
return { name = "os_exit", evaluate = function(t)
  if t.id == "after" then return 1 end
  os.exit(1)
end }
