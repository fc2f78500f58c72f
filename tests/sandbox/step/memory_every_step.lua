-- A step-scoped plugin that exhausts its memory on every step: each kill rebuilt the state,
-- once per step (a trace of a million steps, a million rebuilds).
return { name = "memory_every_step", scope = "search", evaluate = function(t, params, step, index)
  if t.id == "after" then return 1 end
  local hog = {}
  for i = 1, 1e9 do hog[i] = i end
  return 1
end }
