-- Keeps a table of one trace that it never touches, and touches it while scoring the next:
-- the trace's data is gone by then (sandbox/lazy.c), so this must raise a clear error, not
-- read freed memory; built tables stay readable.
local untouched, built
return { name = "keeps_trace_table", evaluate = function(t)
  if untouched then
    local n = built.n -- built while its trace lived: a plain table, still fine
    local ok, err = pcall(function() return untouched.anything end)
    return { score = 1, details = { built = n, untouched_ok = ok, message = tostring(err) } }
  end
  untouched, built = t.steps, t.metadata
  local _ = built.n
  return 1
end }
