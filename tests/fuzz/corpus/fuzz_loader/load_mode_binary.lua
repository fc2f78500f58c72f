-- kind: runtime
-- expect: binary chunks are not allowed in the assay sandbox
return { name = "load_mode_binary", evaluate = function(t)
  if t.id == "after" then return 1 end
  local f, err = load("return 1", "x", "bt")
  if f then return 1 end
  error(err, 0)
end }
