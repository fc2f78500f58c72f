-- kind: runtime
-- expect: string.dump is not available in the assay sandbox
return { name = "string_dump", evaluate = function(t)
  if t.id == "after" then return 1 end
  return #string.dump(function() end) > 0
end }
