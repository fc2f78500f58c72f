-- kind: runtime
-- expect: dofile is not available in the assay sandbox
return { name = "dofile_loadfile", evaluate = function(t)
  if t.id == "after" then return 1 end
  return dofile("/etc/passwd") ~= nil
end }
