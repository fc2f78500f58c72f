-- bounded: the standard functions the sandbox remakes (sandbox/bounded.c) keep Lua's
-- contract. Each case compares with a plain Lua version of the same function.
local function naive_rep(s, n, sep)
  local out = {}
  for i = 1, n do out[i] = s end
  return table.concat(out, sep or "")
end

return {
  name = "bounded",
  evaluate = function(t)
    local failed = {}
    local function same(what, got, want)
      if got ~= want then failed[#failed + 1] = what .. ": " .. tostring(got) .. " ~= " .. tostring(want) end
    end
    for _, c in ipairs({ { "ab", 1 }, { "ab", 2, "," }, { "abc", 7, "--" }, { "", 5, "x" }, { "x", 0, "y" },
                         { "xyz", 13 }, { "", 3 }, { "a", 1, "sep" }, { "q", 1000, "ZZ" }, { "ab", -3 } }) do
      same(("rep(%q, %d, %q)"):format(c[1], c[2], tostring(c[3])), string.rep(c[1], c[2], c[3]), naive_rep(c[1], math.max(c[2], 0), c[3]))
    end
    local list = { 1, 2, 3 }
    table.insert(list, 4)
    table.insert(list, 1, 0)
    same("insert", table.concat(list, ","), "0,1,2,3,4")
    same("remove first", table.remove(list, 1), 0)
    same("remove last", table.remove(list), 4)
    same("after remove", table.concat(list, ","), "1,2,3")
    same("remove past the end", table.remove(list, 4), nil)
    same("remove from empty", table.remove({}), nil)
    local moved = table.move({ 1, 2, 3, 4, 5 }, 2, 4, 1)
    same("move within, down", table.concat(moved, ","), "2,3,4,4,5")
    moved = table.move({ 1, 2, 3, 4, 5 }, 1, 3, 3)
    same("move within, up (overlapping)", table.concat(moved, ","), "1,2,1,2,3")
    local into = table.move({ 1, 2, 3 }, 1, 3, 2, { "a" })
    same("move into another", table.concat(into, ","), "a,1,2,3")
    same("insert position out of bounds", select(2, pcall(table.insert, { 1 }, 5, 2)):match("position out of bounds") ~= nil, true)
    same("insert arguments", select(2, pcall(table.insert, { 1 }, 1, 2, 3)):match("wrong number of arguments to 'insert'") ~= nil, true)
    same("move wrap around", select(2, pcall(table.move, { 1 }, 1, math.maxinteger, 2)):match("destination wrap around") ~= nil, true)
    same("move too many", select(2, pcall(table.move, { 1 }, -1, math.maxinteger, 1)):match("too many elements to move") ~= nil, true)
    local f = load("return 1 + ...")
    same("load text", f(41), 42)
    local g = load(coroutine.wrap(function() coroutine.yield("return ") coroutine.yield("'pieces'") end))
    same("load from a reader function", g(), "pieces")
    same("load's syntax error names the chunk", select(2, load("return +", "=chunk")), "chunk:1: unexpected symbol near '+'")
    local env = { x = 5 }
    same("load with an env", load("return x", "c", "t", env)(), 5)
    same("load with a long chunk", load("return " .. ("1 + "):rep(5000) .. "1")(), 5001)
    return { score = #failed == 0 and 1 or 0, details = { failed = failed } }
  end,
}
