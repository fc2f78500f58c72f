-- kind: runtime
-- expect: invalid regex: back-references
-- glibc's back-references take exponential time ("(.*)(.*)(.*)(.*)(.*)\5\4\3\2\1x" does not
-- finish over 50 bytes); they are refused.
return { name = "regex_back_reference", evaluate = function(t)
  if t.id == "after" then return 1 end
  local matched, why = assay.text.regex_find("(.*)(.*)(.*)(.*)(.*)\\5\\4\\3\\2\\1x", ("a"):rep(200))
  if matched == nil then error(why) end
  return 1
end }
