-- fixed: scores each trace with a number written in its metadata, so that the store tests
-- know every score by hand. params.field names the metadata key; pass = score >= 0.5; the
-- value "boom" raises an error.
return {
  name = "fixed",
  description = "Test fixture: score = metadata[field], pass = score >= 0.5.",
  scope = "trace",
  params = { field = "a" },
  evaluate = function(t, params)
    local v = t.metadata and t.metadata[params.field]
    if v == "boom" then error("boom") end
    if type(v) ~= "number" then return { score = nil, pass = nil, details = { skipped = "no " .. params.field } } end
    return { score = v, pass = v >= 0.5, details = { field = params.field, value = v } }
  end,
}
