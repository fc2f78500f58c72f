-- kind: runtime
-- expect: contained: next sees the trace's own keys only
-- next() on a stand-in before any member is read: the keys must be the JSON object's keys,
-- never a light userdata, and a value from it can never be written back as a node.
return { name = "lazy_next_before_read", evaluate = function(t)
  if t.id == "after" then return 1 end
  local keys = {}
  for k, v in next, t.metadata do
    if type(k) ~= "string" then return 0 end
    keys[#keys + 1] = k
  end
  local k = next(t.steps[1])
  if type(k) ~= "string" then return 0 end
  if #keys ~= 2 then return 0 end
  error("contained: next sees the trace's own keys only")
end }
