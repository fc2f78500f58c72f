-- kind: runtime
-- expect: contained: an empty string.rep returns at once
-- string.rep("", 2^33) looped 2^33 times inside one C call (14.7 s against 500 ms), out of
-- reach of the count hook, and then returned a score.
return { name = "string_rep_empty", evaluate = function(t)
  if t.id == "after" then return 1 end
  local s = ("").rep("", 1 << 33) .. string.rep("", 1 << 33, "")
  if #s ~= 0 then return 0 end
  error("contained: an empty string.rep returns at once")
end }
