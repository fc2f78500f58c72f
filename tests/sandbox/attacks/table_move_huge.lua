-- kind: timeout
-- expect: time limit
-- table.move({}, 1, 2^33, 1, {}) copied 2^33 nils inside one C call (110 s).
return { name = "table_move_huge", evaluate = function(t)
  if t.id == "after" then return 1 end
  table.move({}, 1, 1 << 33, 1, {})
  return 1
end }
