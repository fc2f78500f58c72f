return { name = "b_victim", evaluate = function(t)
  return { score = 1, details = { output = t.output, steps = #t.steps, lower = ("AB"):lower(),
    upper = ("ab"):upper(), token = assay.text.tokens("Hi There")[1], missing = rawget(assay, "nothing"),
    source = select(2, assay.trace.sources(t))["a.org/x"] } }
end }
