-- kind: timeout
-- expect: evaluation exceeded the 300 ms time limit
return { name = "coroutine_wrap_loop", evaluate = function(t)
  if t.id == "after" then return 1 end
  local spin = coroutine.wrap(function() while true do end end)
  spin()
end }
