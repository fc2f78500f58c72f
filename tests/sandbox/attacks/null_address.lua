-- kind: runtime
-- expect: contained: tostring(assay.null) is "null"
-- tostring of a light userdata printed its address: assay.null's disclosed where the
-- library is loaded (ASLR), and leaked nodes the heap.
return { name = "null_address", evaluate = function(t)
  if t.id == "after" then return 1 end
  local s = tostring(assay.null)
  if s:find("0x") or s:find("%x%x%x%x%x%x") then return 0 end
  if s ~= "null" then return 0 end
  if getmetatable(assay.null) ~= false then return 0 end
  error("contained: tostring(assay.null) is \"null\"")
end }
