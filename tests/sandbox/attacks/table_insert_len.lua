-- kind: timeout
-- expect: time limit
-- table.insert at position 1 shifts #t slots in C; __len can claim 2^40 of them.
return { name = "table_insert_len", evaluate = function(t)
  if t.id == "after" then return 1 end
  table.insert(setmetatable({}, { __len = function() return 1 << 40 end }), 1, "x")
  return 1
end }
