-- kind: timeout
-- expect: time limit
-- memory-mb: 96
-- max-seconds: 5
-- assay.trace's walks run in C, where the time limit's hook cannot stop them: a results list
-- of a million entries, each a 20 KB URL to key, was a minute inside one call. The walk
-- looks at the limits as it goes.
return { name = "trace_walk_long", evaluate = function(t)
  if t.id == "after" then return 1 end
  local results = t.steps[1].results -- a JSON array, built: now a table the plugin may grow
  local r = { url = "https://example.org/" .. string.rep("a", 20000) }
  for i = 1, 1000000 do results[i] = r end
  assay.trace.sources(t)
  return 0
end }
