-- kind: runtime
-- expect: contained: the iterator walks params only
-- The iterator of pairs(params), called on another table, must still walk params (it holds
-- the real table itself and never hands it out): so it cannot be used to read a stand-in raw.
return { name = "params_pairs_iterator", params = { a = 1 }, evaluate = function(t, params)
  if t.id == "after" then return 1 end
  local iter = pairs(params)
  local k, v = iter(t.metadata, nil)
  if k ~= "a" or v ~= 1 or iter(t.metadata, "a") ~= nil then return 0 end
  error("contained: the iterator walks params only")
end }
