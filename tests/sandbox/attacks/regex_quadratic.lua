-- kind: timeout
-- expect: evaluation exceeded the 300 ms time limit
-- A regex that glibc matches in time quadratic in the text (0.5 s over 10 KB), over 8 MB:
-- hours inside one C call with regexec. regex.c is linear and checks the limit as it goes.
return { name = "regex_quadratic", evaluate = function(t)
  if t.id == "after" then return 1 end
  local text = ("ab"):rep(4 * 1024 * 1024)
  return assay.text.regex_find("(a|b)*a(a|b){12}x", text) and 1 or 0
end }
