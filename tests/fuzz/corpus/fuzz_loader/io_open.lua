-- kind: runtime
-- expect: 'io': file access is not available
return { name = "io_open", evaluate = function(t)
  if t.id == "after" then return 1 end
  return io.open("/etc/passwd") ~= nil
end }
