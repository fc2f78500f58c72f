-- kind: runtime
-- expect: contained: no hidden key, no node pointer
-- The iterator pairs() returns, applied to a table of the trace not yet built, must not show
-- the stand-in's hidden key and node: with them a plugin pointed the view at the previous
-- trace's freed tree (heap-use-after-free) or at assay.null (a global-buffer-overflow).
local kept -- a node of the previous trace, if one ever leaked
return { name = "lazy_hidden_node_key", evaluate = function(t)
  if t.id == "after" then return 1 end
  local seen = 0
  -- pairs of a stand-in, of a plain table (Lua's own pairs hands out its raw next for a
  -- table without __pairs: fuzz_lazy found it), and of a table whose metatable was removed
  local plain = setmetatable({}, nil)
  for _, next_of_pairs in ipairs({ (pairs({})), (pairs(plain)), (pairs(t)) }) do
  for _, standin in ipairs({ t.steps, t.metadata }) do
    local k, v = nil, nil
    repeat
      k, v = next_of_pairs(standin, k)
      if type(k) == "userdata" and k ~= assay.null or type(v) == "userdata" and v ~= assay.null then
        seen = seen + 1
        rawset(standin, k, kept or assay.null) -- the old attack: swap the node, then read it
        standin[k] = kept or assay.null
        local _ = #standin
        kept = v
      end
    until k == nil
  end
  end
  if seen > 0 then return 0 end
  error("contained: no hidden key, no node pointer")
end }
