-- kind: timeout
-- expect: time limit
-- The parser runs without the count hook, and chained `and`s parse in quadratic time
-- (80,000 terms: 9.6 s); load now feeds it pieces and looks at the clock between them.
return { name = "load_quadratic_parse", evaluate = function(t)
  if t.id == "after" then return 1 end
  local f = load("return " .. ("a and "):rep(200000) .. "a")
  return 1
end }
