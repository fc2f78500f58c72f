-- slow: a deterministic evaluator that costs about a millisecond per trace, so that a task
-- of the Slurm test is still running when the test kills it. score = (sum of 1..n) mod 7 / 6.
return {
  name = "slow",
  description = "Spins for a fixed number of steps; the score depends on the params only.",
  scope = "trace",
  params = { steps = 300000 },

  evaluate = function(t, params)
    local sum = 0
    for i = 1, params.steps do sum = sum + i end
    return { score = (sum % 7) / 6, details = { id_length = #t.id } }
  end,
}
