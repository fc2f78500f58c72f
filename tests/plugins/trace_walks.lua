-- The trace walks done in C (assay.trace: trace.sources, result_texts, url_keys, cited_pairs,
-- queries)
-- against the same walks written in Lua from docs/metrics.md, on the trace as the plugin
-- left it: untouched, or with parts read, built or changed first (a mode per trace id), so
-- that reading the view from C without building it sees what Lua sees.
-- details.mismatches names each walk that differs; details.walks shows what was compared.
local json, text = assay.json, assay.text
local trace = require("trace")

local function objects(v)
  local out = {}
  if type(v) ~= "table" or not json.is_array(v) then return out end
  for _, entry in ipairs(v) do
    if type(entry) == "table" and not json.is_array(entry) then out[#out + 1] = entry end
  end
  return out
end

local function str(v) return type(v) == "string" and v or "" end
local function result_text(r) return str(r.title) .. " " .. str(r.snippet) end

local function lua_sources(t)
  local fetched, found = {}, {}
  for _, step in ipairs(objects(t.steps)) do
    if step.type == "fetch" and type(step.url) == "string" then
      local key = text.url_key(step.url)
      if fetched[key] == nil then fetched[key] = str(step.content) end
    elseif step.type == "search" then
      for _, r in ipairs(objects(step.results)) do
        if type(r.url) == "string" then
          local key = text.url_key(r.url)
          if found[key] == nil then found[key] = result_text(r) end
        end
      end
    end
  end
  return fetched, found
end

local function lua_result_texts(step)
  local out = {}
  for _, r in ipairs(objects(step.results)) do out[#out + 1] = result_text(r) end
  return out
end

local function lua_url_keys(step)
  local out = {}
  for _, r in ipairs(objects(step.results)) do
    if type(r.url) == "string" then out[text.url_key(r.url)] = true end
  end
  return out
end

local function lua_cited_pairs(t)
  local citations = (type(t.citations) == "table" and json.is_array(t.citations)) and t.citations or {}
  local fetched, found = lua_sources(t)
  local function source_of(k)
    local url = citations[k]
    if type(url) ~= "string" then return nil end
    local key = text.url_key(url)
    if key == "" then return nil end
    return fetched[key] or found[key]
  end
  local cited, counts = {}, { sentences = 0, cited_sentences = 0, invalid_markers = 0 }
  local function any_text(sources)
    for _, s in pairs(sources) do
      if s:match("%S") then return true end
    end
    return false
  end
  counts.has_sources = any_text(fetched) or any_text(found)
  for _, sentence in ipairs(text.sentences(str(t.output))) do
    if not text.starts_with_marker(sentence) then
      counts.sentences = counts.sentences + 1
      local seen, claim = {}, nil
      for _, k in ipairs(text.markers(sentence)) do
        if not seen[k] then
          seen[k] = true
          if k >= 1 and k <= #citations then
            claim = claim or text.strip_markers(sentence)
            cited[#cited + 1] = { sentence = counts.sentences, claim = claim, k = k, source = source_of(k) }
          else
            counts.invalid_markers = counts.invalid_markers + 1
          end
        end
      end
      if claim then counts.cited_sentences = counts.cited_sentences + 1 end
    end
  end
  return cited, counts
end

local function lua_queries(t)
  local out = {}
  for _, step in ipairs(objects(t.steps)) do
    if step.type == "search" and type(step.query) == "string" then out[#out + 1] = step.query end
  end
  return out
end

-- The pairs as lines "sentence k claim -> source".
local function pair_lines(cited)
  local lines = {}
  for i, p in ipairs(cited) do
    lines[i] = p.sentence .. " " .. p.k .. " " .. p.claim .. " -> " .. tostring(p.source)
  end
  return table.concat(lines, "\n")
end

-- A table of strings or booleans as sorted "key=value" lines, to compare and to show.
local function exact(numbers)
  local out = {}
  for i, x in ipairs(numbers) do out[i] = string.format("%.17g", x) end
  return table.concat(out, " ")
end

local function flat(t)
  local lines = {}
  for k, v in pairs(t) do lines[#lines + 1] = tostring(k) .. "=" .. tostring(v) end
  table.sort(lines)
  return table.concat(lines, "\n")
end

-- Touches the view before the walks, by mode: 1 reads members and lists, 2 changes some,
-- 3 builds every table with pairs.
local function touch(t, mode)
  if mode == 1 then
    for _, step in ipairs(objects(t.steps)) do
      local _ = step.type, step.url
      if type(step.results) == "table" then
        for _, r in ipairs(step.results) do if type(r) == "table" and not json.is_array(r) then local _ = r.url end end
      end
    end
  elseif mode == 2 then
    if type(t.citations) == "table" and json.is_array(t.citations) and #t.citations >= 1 then
      t.citations[1] = "https://changed.example/2" -- the key of a result changed below
    end
    for i, step in ipairs(objects(t.steps)) do
      if step.type == "fetch" then step.content = "changed " .. i end
      local results = step.results
      if type(results) == "table" and json.is_array(results) then
        if type(results[1]) == "table" then results[1].title = "retitled"; results[1].url = "https://changed.example/" .. i end
        if #results >= 3 then table.remove(results, 2) end
      end
    end
  elseif mode == 3 then
    local function build(v, depth)
      if type(v) ~= "table" or depth > 6 then return end
      for _, x in pairs(v) do build(x, depth + 1) end
    end
    build(t, 0)
  end
end

return {
  name = "trace_walks",
  evaluate = function(t)
    local mode = t.mode
    if mode == nil then -- a mode per trace id, the same on every run
      mode = 0
      for i = 1, #tostring(t.id) do mode = (mode + tostring(t.id):byte(i)) % 4 end
    end
    touch(t, mode)
    local walks, mismatches = {}, {}
    local function compare(name, c, l)
      walks[#walks + 1] = name .. ":\n" .. l
      if c ~= l then mismatches[#mismatches + 1] = name end
    end
    local fetched, found = trace.sources(t)
    local lf, lfound = lua_sources(t)
    compare("fetched", flat(fetched), flat(lf))
    compare("found", flat(found), flat(lfound))
    local cited, counts = trace.cited_pairs(t)
    local lcited, lcounts = lua_cited_pairs(t)
    compare("cited_pairs", pair_lines(cited), pair_lines(lcited))
    compare("counts", flat(counts), flat(lcounts))
    compare("queries", flat(trace.queries(t)), flat(lua_queries(t)))
    for i, step in ipairs(objects(t.steps)) do
      compare("result_texts " .. i, flat(trace.result_texts(step)), flat(lua_result_texts(step)))
      compare("url_keys " .. i, flat(trace.url_keys(step)), flat(lua_url_keys(step)))
      local into = text.Set():add("kept")
      local keys = lua_url_keys(step)
      keys.kept = true
      if trace.url_keys(step, into) ~= into or flat(text.add_all({}, into)) ~= flat(keys) then
        mismatches[#mismatches + 1] = "url_keys " .. i .. " into a Set"
      end
      local docs, lua_docs = text.Set():add_document("T1 dup S2"), text.Set():add_document("T1 dup S2")
      for _, d in ipairs(lua_result_texts(step)) do lua_docs:add_document(d) end
      if trace.result_texts(step, docs) ~= docs or table.concat(docs:list(), " ") ~= table.concat(lua_docs:list(), " ")
          or exact(docs:tfidf_cosines()) ~= exact(lua_docs:tfidf_cosines()) then
        mismatches[#mismatches + 1] = "result_texts " .. i .. " as documents"
      end
    end
    return { score = #mismatches == 0 and 1 or 0, details = { mode = mode, mismatches = mismatches, walks = t.show and walks or nil } }
  end,
}
