-- kind: runtime
-- expect: attempt to load a binary chunk
return { name = "bytecode_string", evaluate = function(t)
  if t.id == "after" then return 1 end
  local f, err = load("\27LuaT\0\25\147\13\10\26\10\4\8\8", "x")
  if f then return 1 end
  error(err, 0)
end }
