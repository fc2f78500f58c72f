-- kind: runtime
-- expect: params are read-only
-- pairs(params) used to return the real table behind the read-only view as its second
-- value; writing into it changed params for every later trace.
return { name = "params_pairs_writable", params = { threshold = 0.5 }, evaluate = function(t, params)
  if t.id == "after" then return params.threshold == 0.5 and 1 or 0 end
  local iter, state = pairs(params)
  rawset(state, "threshold", 99)
  state.threshold = 99
  return 1
end }
