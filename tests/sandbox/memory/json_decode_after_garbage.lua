-- 20 MB of strings made and dropped, then assay.json.decode of 100,001 numbers (about 10 MB
-- of cJSON nodes, charged while they live) under a 32 MiB limit: the garbage is collected
-- before the charge is refused, as Lua collects before it refuses an allocation.
return { name = "json_decode_after_garbage", evaluate = function(t)
  if t.id == "after" then return 1 end
  local junk = {}
  for i = 1, 20000 do junk[i] = ("x"):rep(1000) .. i end
  junk = nil
  local value, err = assay.json.decode("[" .. ("1,"):rep(100000) .. "1]")
  return { score = value and #value == 100001 and 1 or 0, label = err }
end }
