-- q2: test fixture for the false-alarm measure of compare (tests/e2e/test_ci.sh):
-- score = metadata.q2, a draw of tests/ci/noise.py; pass = score >= 0.5.
return {
  name = "q2",
  description = "Test fixture: score = metadata.q2, pass = score >= 0.5.",
  scope = "trace",
  evaluate = function(t)
    local v = t.metadata.q2
    return { score = v, pass = v >= 0.5 }
  end,
}
