-- kind: runtime
-- expect: rawset on the globals table while evaluating
-- rawset(_G, ...) went round the freeze of globals once the plugin has loaded: state that
-- then carried from one trace to the next.
return { name = "rawset_globals", evaluate = function(t)
  if t.id == "after" then return rawget(_G, "counter") == nil and 1 or 0 end
  rawset(_G, "counter", 1)
  return 1
end }
