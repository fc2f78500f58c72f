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
  return json.objects(v)
end

-- The steps of the trace whose type is step_type (all object steps when step_type is nil).
function M.steps(trace, step_type)
  if step_type == nil then return json.objects(trace.steps) end
  return json.objects(trace.steps, "type", step_type)
end

-- The query of every search step whose query is a string, in order, repeats kept (in C).
M.queries = assay.trace.queries

-- The results of a search step that are objects.
function M.results(step)
  return M.objects(step.results)
end

-- "title snippet" of a search result, the text docs/metrics.md scores results by.
function M.result_text(result)
  return M.text(result.title) .. " " .. M.text(result.snippet)
end

-- The walks below are done in C (assay.trace, sandbox/trace.c): they read three members of
-- every search result, which cost more in Lua than all the rest of citation_support.

-- "title snippet" of each result of a search step that is an object, in order;
-- result_texts(step, S) adds each to the assay.text.Set S as a document (S:add_document)
-- instead and returns S.
M.result_texts = assay.trace.result_texts

-- The URL keys of the results of a search step that have a URL, as a set {key = true};
-- url_keys(step, S) adds them to the assay.text.Set S instead and returns S.
M.url_keys = assay.trace.url_keys

-- Source texts by URL key (docs/metrics.md): fetched page contents, and "title snippet" of search
-- results; the first of each kind wins. Returns the two tables: fetched, found.
M.sources = assay.trace.sources

-- The (claim, citation) pairs of a report (docs/metrics.md, citation_support): every sentence
-- of the output that is not a reference-list entry ("[3] Title: https://..."), with each
-- distinct marker [k] it carries, in order, for k in 1..#citations. Returns the pairs, each
-- {sentence = its claim sentence's number, claim = the sentence without markers, k = k,
-- source = the source text of citations[k] (first fetch of its URL key, else the first search
-- result's "title snippet") or nil}, and the counts {sentences = claim sentences,
-- cited_sentences = those with a pair, invalid_markers = distinct (sentence, k) with k
-- outside 1..#citations, has_sources = whether the trace logged any source text at all (a
-- fetch's content, a result's title or snippet) that is not blank: without any, a citation
-- cannot be checked, which is not the same as unsupported}. Done in C as well.
M.cited_pairs = assay.trace.cited_pairs

-- The registrable domain of a URL (docs/metrics.md): the last two labels of its domain, the
-- last three when the top-level label has two letters and the one before it is a common
-- second level (bbc.co.uk); an IP address as it is; "" for no URL.
local SECOND_LEVEL = { co = true, com = true, org = true, net = true, ac = true, gov = true, edu = true }

function M.site(url)
  local domain = assay.text.domain(M.text(url))
  if domain == "" or domain:match("^[%d%.]+$") or domain:find(":", 1, true) then return domain end
  local labels = {}
  for label in domain:gmatch("[^%.]+") do labels[#labels + 1] = label end
  local n = #labels
  if n >= 3 and #labels[n] == 2 and SECOND_LEVEL[labels[n - 1]] then
    return labels[n - 2] .. "." .. labels[n - 1] .. "." .. labels[n]
  end
  if n >= 2 then return labels[n - 1] .. "." .. labels[n] end
  return domain
end

return M
