-- kind: timeout
-- expect: evaluation exceeded the 300 ms time limit
return { name = "coroutine_yield_loop", evaluate = function(t)
  if t.id == "after" then return 1 end
  local step = coroutine.wrap(function() while true do coroutine.yield() end end)
  while true do step() end
end }
