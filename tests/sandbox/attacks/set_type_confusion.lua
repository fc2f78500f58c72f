-- kind: runtime
-- expect: contained: only Sets are taken for Sets
-- A Set is told from other values by its size and a field that points at itself, not by
-- its metatable. Everything else a plugin can hand a Set method as the Set (assay.null, a
-- light userdata; a coroutine; a table that reads through to a Set; a function; a string)
-- must be refused with an error, never read as a Set.
return { name = "set_type_confusion", evaluate = function(t)
  if t.id == "after" then return 1 end
  local S = assay.text.Set():add_tokens("coral reef")
  local fakes = { assay.null, coroutine.create(function() end), setmetatable({}, { __index = S }), print,
                  { self = S }, "coral", 42 }
  local methods = { "list", "size", "has", "add", "add_tokens", "add_content", "add_document", "tfidf_cosines",
                    "add_all", "add_domains", "add_ngrams" }
  for _, fake in ipairs(fakes) do
    for _, name in ipairs(methods) do
      if pcall(S[name], fake, "x", 2) then error("a fake was taken for a Set by " .. name) end
    end
  end
  if #S ~= 2 then return 0 end
  error("contained: only Sets are taken for Sets")
end }
