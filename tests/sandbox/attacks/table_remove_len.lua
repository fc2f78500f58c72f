-- kind: timeout
-- expect: time limit
-- table.remove(t, 1) shifts #t slots in C; __len can claim 2^40 of them.
return { name = "table_remove_len", evaluate = function(t)
  if t.id == "after" then return 1 end
  table.remove(setmetatable({}, { __len = function() return 1 << 40 end }), 1)
  return 1
end }
