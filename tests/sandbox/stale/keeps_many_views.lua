-- Keeps untouched tables of every trace and, from the third trace on, touches those of the
-- two before it in every way a plugin can. The state reuses its trace view (the metatable of
-- the tables not built yet) from one trace to the next, each trace with a document of its
-- own: a table of an earlier trace must raise the clear error whatever touches it, and never
-- read the live trace's data or freed memory.
local kept = {}
local json = assay.json

local function try(f)
  local ok, got = pcall(f)
  if ok then return "read:" .. tostring(got) end
  return tostring(got):match("part of an earlier trace") and "refused" or tostring(got)
end

return { name = "keeps_many_views", evaluate = function(t)
  local n = #kept
  local seen = {}
  for i = math.max(1, n - 1), n do
    local old = kept[i]
    seen[#seen + 1] = table.concat({
      try(function() return #old.steps end),
      try(function() return old.steps[1] end),
      try(function() return old.metadata.segment end), -- read while its trace lived: kept
      try(function() for _ in pairs(old.metadata) do end end),
      try(function() return next(old.metadata) end),
      try(function() old.metadata.x = 1 end),
      try(function() return json.encode(old.metadata) end),
      try(function() return json.is_array(old.steps) end),
    }, " ")
  end
  kept[n + 1] = { steps = t.steps, metadata = t.metadata }
  return { score = 1, details = { seen = seen, segment = t.metadata.segment } }
end }
