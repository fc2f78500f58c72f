-- Exercises the trace view (sandbox/lazy.c): each table of the trace is built when first
-- touched, so every way of touching one first must see what a plain table would show.
-- Each check touches a table of its own first; the cases file holds the expected values.
local json = assay.json

return {
  name = "trace_view",
  evaluate = function(t)
    if t.id == "partial" then
      -- members read one at a time, then the whole object built by pairs
      local r = t.r
      local x = r.x
      x.added = true
      local dup, dn = r.dup, r.dn
      local named = { r["s\0x"] == nil, r["s"], r[""], r["sx"] == nil } -- a NUL in the name, the empty name
      local keys = {}
      for key in pairs(r) do keys[#keys + 1] = key end
      table.sort(keys)
      return {
        score = 1,
        details = {
          same_table = r.x == x, change_kept = r.x.added == true and r.x.deep == 1,
          dup = { dup, r.dup }, dn = { dn, r.dn }, keys = keys, named = named,
          absent = { r.nothing == nil, r[1] == nil, r.gone == nil },
          is_array = { json.is_array(t.arr), json.is_array(t.r), json.is_array(t.arr2), #t.arr2 },
        },
      }
    end
    if t.id == "objects" then
      -- json.objects, the walk plugins/lib/trace.lua uses, on each kind of table first
      local function ns(list)
        local out = {}
        for i, entry in ipairs(list) do out[i] = entry.n end
        return out
      end
      t.m[1].type = "b" -- a change made through the view is what objects sees
      local function by_value(list) -- values that differ only just, a duplicate key, a NUL in the key
        return { ns(json.objects(list, "type", "search")), ns(json.objects(list, "type", "")),
                 ns(json.objects(list, "type", 5)), ns(json.objects(list, "type", "fetch")),
                 ns(json.objects(list, "t\0x", "v")) }
      end
      for _ in ipairs(t.q) do end
      local plain = { { n = 1 } }
      return {
        score = 1,
        details = {
          all = ns(json.objects(t.s)),
          searches = ns(json.objects(t.s, "type", "search")),
          after_change = ns(json.objects(t.m, "type", "b")),
          same_tables = json.objects(t.f)[2] == t.f[2],
          not_arrays = { #json.objects(t.o), #json.objects("s"), #json.objects(nil), #json.objects(plain) },
          bad_key = select(2, pcall(function() return json.objects(t.s, 1, 2) end)),
          by_value = by_value(t.p), -- read from the nodes
          by_value_built = by_value(t.q), -- the same list, built first
        },
      }
    end
    local e_set = rawset(t.e, "added", 1)
    setmetatable(t.j, { __index = function() return "fallback" end })
    local pairs_keys = {}
    for key in pairs(t.g[1]) do pairs_keys[#pairs_keys + 1] = key end
    local ipairs_sum = 0
    for _, v in ipairs(t.i) do ipairs_sum = ipairs_sum + v end
    return {
      score = 1,
      details = {
        next_finds_a_key = next(t.a) ~= nil,
        rawget = rawget(t.c, "k"),
        rawlen = rawlen(t.b),
        rawset_keeps_members = e_set == t.e and t.e.m == 1 and t.e.added == 1,
        object_has_no_metatable = getmetatable(t.f) == nil,
        array_is_marked = json.is_array(t.d) and getmetatable(t.d) == "assay.array",
        own_metatable = t.j.w == 1 and t.j.other == "fallback",
        encode = json.encode(t.h),
        pairs_keys = pairs_keys,
        ipairs_sum = ipairs_sum,
        length = #t.l,
        size = assay.text.size(t.m),
        is_table = type(t.n) == "table" and tostring(t.n):sub(1, 7) == "table: ",
        concat = table.concat(t.o, "+"),
        null_in_array = t.p[2] == json.null and #t.p == 3,
        null_member_absent = t.q.gone == nil and next(t.q) == "kept",
      },
    }
  end,
}
