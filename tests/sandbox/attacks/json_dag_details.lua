-- kind: runtime
-- expect: details: value encodes to more than the 2 MiB memory limit
-- memory-mb: 2
-- timeout-ms: 5000
-- A table shared along many paths is written once per path: 40 levels of {x, x} are 2^40
-- copies. Depth alone did not bound it (a 1 GiB record, 2.1 GB RSS, or an OOM kill).
return { name = "json_dag_details", evaluate = function(t)
  if t.id == "after" then return 1 end
  local x = { 1 }
  for _ = 1, 40 do x = { x, x } end
  return { score = 1, details = { dag = x } }
end }
