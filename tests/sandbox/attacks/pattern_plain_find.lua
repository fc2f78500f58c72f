-- kind: timeout
-- expect: evaluation exceeded the 300 ms time limit
-- A plain find whose needle keeps matching its first 256 KiB at every position of an 8 MiB
-- subject: quadratic memcmp inside one C call.
return { name = "pattern_plain_find", evaluate = function(t)
  if t.id == "after" then return 1 end
  local needle = ("a"):rep(256 * 1024) .. "b"
  return string.find(("a"):rep(8 * 1024 * 1024), needle, 1, true)
end }
