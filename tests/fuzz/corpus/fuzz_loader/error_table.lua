-- kind: runtime
-- expect: (error object is a table value)
return { name = "error_table", evaluate = function(t)
  if t.id == "after" then return 1 end
  error({ code = 1 })
end }
