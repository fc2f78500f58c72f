-- assay.json.decode of 12 MB of [0,0,...]: 6 million cJSON nodes, 527 MB outside the
-- state's memory limit, before a single Lua table was built.
return { name = "json_decode_nodes", evaluate = function(t)
  if t.id == "after" then return 1 end
  local text = "[" .. ("0,"):rep(6000000) .. "0]"
  local ok, value = pcall(assay.json.decode, text)
  return 1
end }
