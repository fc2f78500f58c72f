-- kind: runtime
-- expect: __gc metamethods are not allowed in the assay sandbox
return { name = "gc_metamethod", evaluate = function(t)
  if t.id == "after" then return 1 end
  setmetatable({}, { __gc = function() while true do end end })
  return 1
end }
