-- kind: timeout
-- expect: time limit
-- assay.json.encode of a table shared along many paths (see json_dag_details).
return { name = "json_dag_encode", evaluate = function(t)
  if t.id == "after" then return 1 end
  local x = { a = "xxxxxxxx" }
  for _ = 1, 50 do x = { l = x, r = x } end
  return #assay.json.encode(x)
end }
