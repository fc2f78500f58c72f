-- Exercises plugins/lib helpers on each test trace; the cases file holds hand-computed
-- expectations.
local trace = require("trace")
local result = require("result")

return {
  name = "lib_helpers",
  evaluate = function(t)
    local segment = trace.get(t, "metadata", "segment")
    local deep = trace.get(t, "metadata", "segment", "nope")
    local searches = trace.steps(t, "search")
    local with_results = 0
    for _, s in ipairs(searches) do
      if #trace.results(s) > 0 then with_results = with_results + 1 end
    end
    local share = result.ratio(with_results, #searches)
    if share == nil then return result.skip("no searches", { segment = segment or result.null }) end
    local r = result.scored(share, 0.5, {
      segment = segment or result.null,
      deep = deep == nil,
      clamped = { result.clamp(1.5), result.clamp(-1), result.clamp(0 / 0), result.clamp(5, 0, 10) },
    })
    return r
  end,
}
