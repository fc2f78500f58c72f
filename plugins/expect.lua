-- expect: deterministic checks on the output from the trace's `expected` object (docs/metrics.md).
--
--   equals (string), contains (array: each must occur), not_contains (array: none may occur),
--   regex (POSIX extended, must match somewhere), max_chars (at most this many characters),
--   json (true: output must parse as JSON). Each present key is one check.
--   score = passed checks / checks;  pass = all passed
local text = assay.text
local trace = require("trace")
local result = require("result")

local function occurs(output, needle)
  return string.find(output, needle, 1, true) ~= nil
end

-- The strings of an array (other entries ignored), or nil when v is not an array.
local function strings(v)
  if not trace.is_array(v) then return nil end
  local out = {}
  for _, s in ipairs(v) do
    if type(s) == "string" then out[#out + 1] = s end
  end
  return out
end

return {
  name = "expect",
  description = "Deterministic checks from the trace's expected object: equals, contains, regex, length, JSON.",
  scope = "trace",

  evaluate = function(t)
    local e = t.expected
    if not trace.is_object(e) then return result.skip("no expected object") end
    local output = trace.text(t.output)
    local checks, failed, details = 0, {}, {}

    local function check(name, ok)
      checks = checks + 1
      if not ok then failed[#failed + 1] = name end
    end

    if type(e.equals) == "string" then check("equals", output == e.equals) end
    local contains = strings(e.contains)
    if contains then
      local ok = true
      for _, s in ipairs(contains) do ok = ok and occurs(output, s) end
      check("contains", ok)
    end
    local not_contains = strings(e.not_contains)
    if not_contains then
      local ok = true
      for _, s in ipairs(not_contains) do ok = ok and not occurs(output, s) end
      check("not_contains", ok)
    end
    if type(e.regex) == "string" then
      local matched, err = text.regex_find(e.regex, output)
      if err then details.regex_error = err end
      check("regex", matched == true)
    end
    if math.type(e.max_chars) == "integer" then check("max_chars", text.char_count(output) <= e.max_chars) end
    if e.json == true then
      local _, err = assay.json.decode(output)
      check("json", err == nil)
    end

    if checks == 0 then return result.skip("expected has none of the known checks") end
    details.failed = failed
    details.checks = checks
    return { score = (checks - #failed) / checks, pass = #failed == 0, details = details }
  end,
}
