-- kind: runtime
-- expect: collectgarbage("stop") is not allowed
return { name = "collectgarbage_stop", evaluate = function(t)
  if t.id == "after" then return 1 end
  collectgarbage("stop")
  return 1
end }
