-- trace.lua: read traces the way docs/metrics.md asks, so that evaluators never fail on shape.
-- A field of the wrong type counts as absent: texts become "", lists become {}, and list
-- entries that are not JSON objects are skipped.
local json = assay.json

local M = {}

-- Is v a JSON object (a table that did not come from a JSON array)?
function M.is_object(v)
  return type(v) == "table" and not json.is_array(v)
end

-- Is v a JSON array?
function M.is_array(v)
  return type(v) == "table" and json.is_array(v)
end

-- v if it is a string, else "".
function M.text(v)
  return type(v) == "string" and v or ""
end

-- The value at a path of object keys, or nil as soon as one is missing or not an object:
-- get(t, "metadata", "segment") never raises, whatever the trace looks like.
function M.get(v, ...)
  for i = 1, select("#", ...) do
    if not M.is_object(v) then return nil end
    v = v[select(i, ...)]
  end
  return v
end

-- The entries of v that are JSON objects, in order; {} when v is not an array.
function M.objects(v)
  local out = {}
  if not M.is_array(v) then return out end
  for _, entry in ipairs(v) do
    if M.is_object(entry) then out[#out + 1] = entry end
  end
  return out
end

-- The steps of the trace whose type is step_type (all object steps when step_type is nil).
function M.steps(trace, step_type)
  local out = {}
  for _, step in ipairs(M.objects(trace.steps)) do
    if step_type == nil or step.type == step_type then out[#out + 1] = step end
  end
  return out
end

-- The query of every search step whose query is a string, in order, repeats kept.
function M.queries(trace)
  local out = {}
  for _, step in ipairs(M.steps(trace, "search")) do
    if type(step.query) == "string" then out[#out + 1] = step.query end
  end
  return out
end

-- The results of a search step that are objects.
function M.results(step)
  return M.objects(step.results)
end

-- "title snippet" of a search result, the text docs/metrics.md scores results by.
function M.result_text(result)
  return M.text(result.title) .. " " .. M.text(result.snippet)
end

-- Source texts by URL key (docs/metrics.md): fetched page contents, and "title snippet" of search
-- results; the first of each kind wins. Returns the two tables: fetched, found.
function M.sources(trace)
  local fetched, found = {}, {}
  for _, step in ipairs(M.steps(trace)) do
    if step.type == "fetch" and type(step.url) == "string" then
      local key = assay.text.url_key(step.url)
      if fetched[key] == nil then fetched[key] = M.text(step.content) end
    elseif step.type == "search" then
      for _, r in ipairs(M.results(step)) do
        if type(r.url) == "string" then
          local key = assay.text.url_key(r.url)
          if found[key] == nil then found[key] = M.result_text(r) end
        end
      end
    end
  end
  return fetched, found
end

return M
