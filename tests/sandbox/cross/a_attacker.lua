-- Tries to change what another plugin sees: the trace, the string library and metatable,
-- the host modules. Each plugin has a Lua state of its own, so none of it reaches b_victim.
return { name = "a_attacker", evaluate = function(t)
  t.output = "hacked"
  t.steps[1].results[1].title = "hacked" -- what assay.trace reads from the view, in this state
  pcall(function() assay.trace.sources = function() return {}, {} end end)
  t.steps = {}
  string.lower = function() return "pwned" end
  assay.text.tokens = function() return { "pwned" } end
  setmetatable(assay, { __index = function() return "pwned" end })
  rawset(string, "upper", function() return "pwned" end)
  return 1
end }
