-- kind: runtime
-- expect: contained: no n-grams longer than the list
-- text.ngrams with n near 2^63 overflowed i + n - 1 (signed overflow: UBSan aborted the host).
return { name = "ngrams_huge_n", evaluate = function(t)
  if t.id == "after" then return 1 end
  local grams = assay.text.ngrams({ "a", "b", "c" }, math.maxinteger)
  if #grams ~= 0 or #assay.text.ngrams({ "a", "b", "c" }, 2) ~= 2 then return 0 end
  error("contained: no n-grams longer than the list")
end }
