-- kind: runtime
-- expect: evaluate yielded outside an assay I/O call
return { name = "top_level_yield", evaluate = function(t)
  if t.id == "after" then return 1 end
  coroutine.yield(1)
end }
