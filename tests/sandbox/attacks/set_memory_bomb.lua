-- kind: memory
-- expect: memory limit of its Lua state
-- A Set keeps its tokens in C, in blocks the state's allocator counts: growing one past the
-- limit must stop the plugin like any other allocation, and a pcall cannot catch it.
return { name = "set_memory_bomb", evaluate = function(t)
  if t.id == "after" then return 1 end
  local s = assay.text.Set()
  local words = {}
  for i = 1, 4096 do words[i] = "w" .. i end
  local chunk = table.concat(words, " ")
  for round = 1, 1e9 do
    pcall(s.add_tokens, s, chunk:gsub("w", "r" .. round .. "x"))
  end
  return #s
end }
