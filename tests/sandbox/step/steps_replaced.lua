-- A step-scoped plugin that sets trace.steps to a number crashed the host when the next
-- step was looked up.
return { name = "steps_replaced", scope = "search", evaluate = function(t, params, step, index)
  if t.id == "after" then return 1 end
  t.steps = 42
  return 1
end }
