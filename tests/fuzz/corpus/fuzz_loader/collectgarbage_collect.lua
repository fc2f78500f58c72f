-- kind: runtime
-- expect: collectgarbage("collect") is not allowed in the assay sandbox
return { name = "collectgarbage_collect", evaluate = function(t)
  if t.id == "after" then return 1 end
  collectgarbage("collect")
  return 1
end }
