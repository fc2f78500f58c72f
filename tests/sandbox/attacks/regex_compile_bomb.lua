-- kind: runtime
-- expect: invalid regex: too large once {m,n} is expanded
-- glibc's regcomp("a{0,32767}") allocates 8 GB outside the memory cap, and nested counts
-- take it minutes; regex.c refuses both before allocating anything.
return { name = "regex_compile_bomb", evaluate = function(t)
  if t.id == "after" then return 1 end
  for _, pattern in ipairs({ "((a{0,100}){0,100}){0,100}", "a{0,32767}" }) do
    local matched, why = assay.text.regex_find(pattern, "a")
    if matched == nil then error(why) end
  end
  return 1
end }
