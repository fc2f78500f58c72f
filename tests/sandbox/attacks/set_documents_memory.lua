-- kind: memory
-- expect: memory limit of its Lua state
-- A Set's documents keep their counts in C: the same 1,000 words added as a document again
-- and again grow no member, only the per-document counts (8 KB a document). Those blocks
-- are the state allocator's too, so the plugin is stopped at the memory limit, not left to
-- grow until the time limit.
return { name = "set_documents_memory", evaluate = function(t)
  if t.id == "after" then return 1 end
  local words = {}
  for i = 1, 1000 do words[i] = "w" .. i end
  local page = table.concat(words, " ")
  local D = assay.text.Set()
  for _ = 1, 1e9 do D:add_document(page) end
  return 0
end }
