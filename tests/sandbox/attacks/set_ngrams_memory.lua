-- kind: memory
-- expect: memory limit of its Lua state
-- S:add_ngrams makes each n-gram in the Set's own memory, in one C call: 200,000 distinct
-- tokens taken 64 at a time are 90 MB of n-grams. The Set's blocks are the state
-- allocator's, so the call is stopped at the memory limit, not left to grow.
return { name = "set_ngrams_memory", evaluate = function(t)
  if t.id == "after" then return 1 end
  local words = {}
  for i = 1, 200000 do words[i] = "w" .. i end
  local G = assay.text.Set():add_ngrams(table.concat(words, " "), 64)
  return #G
end }
