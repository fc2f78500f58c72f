-- Objects written as JSON (sandbox/convert.c): keys in byte order whatever order they were
-- set in, integer keys of a mixed table written as strings, keys JSON cannot hold left out;
-- small objects (up to 16 keys) and larger ones take different paths, so both sizes and the
-- sizes around the boundary are here. The cases file holds the texts, written by hand.
local json = assay.json

-- n keys "a", "b", ... set last first
local function letters(n)
  local t = {}
  for i = n, 1, -1 do t[string.char(96 + i)] = i end
  return t
end

return {
  name = "json_encode",
  evaluate = function()
    local mixed = { "x", "y", [10] = "z", b = true, [true] = 1, [1.5] = 2 }
    local big_mixed = { s = 0.5 }
    for i = 20, 1, -1 do big_mixed[i] = i end
    big_mixed[false] = "left out"
    return {
      score = 1,
      details = {
        sixteen = json.encode(letters(16)),
        seventeen = json.encode(letters(17)),
        mixed = json.encode(mixed),
        big_mixed = json.encode(big_mixed),
        nested = json.encode({ z = { y = 1, x = { c = 3, b = 2, a = {} } }, a = {} }),
        prefixes = json.encode({ ab = 1, a = 2, abc = 3, [""] = 4, b = 5 }),
      },
    }
  end,
}
