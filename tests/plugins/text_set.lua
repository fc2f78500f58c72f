-- Exercises assay.text.Set on fixed strings; tests/plugins/text_set.jsonl holds the
-- hand-computed expectations.
local text = assay.text
local result = require("result")

return {
  name = "text_set",
  evaluate = function()
    local phrase = "The Reef, the REEF; coral-reef 9am"
    local S = text.Set():add_tokens(phrase)   -- T: the reef the reef coral reef 9am
    local C = text.Set():add_content(phrase)  -- C: reef reef coral reef 9am
    local exact = text.Set():add("Reef"):add("reef"):add("Reef"):add("")
    local coral_sea = text.token_set("coral sea") -- a table set
    local d = {
      tokens = S:list(),
      content = C:list(),
      sizes = { #S, S:size(), text.size(S), #text.Set() },
      exact = exact:list(),
      has = { S:has("reef"), S:has("Reef"), S:has("sea"), S:has(1), exact:has("") },
      inter = { S:intersection_size(C), text.intersection_size(C, S), S:intersection_size(coral_sea),
                text.intersection_size(coral_sea, S), text.Set():intersection_size(S) },
      jaccard = { C:jaccard(S), text.jaccard(coral_sea, C), text.Set():jaccard(text.Set()), S:jaccard(S) },
      union = text.Set():add_all(C):add_all(coral_sea):add_all(C):list(),
      into_table = result.sorted_keys(text.add_all({}, S)),
      utf8 = text.Set():add_tokens("Café CAFÉ café"):list(),
      long = text.Set():add_tokens(("x"):rep(9) .. " " .. ("x"):rep(17) .. " " .. ("x"):rep(9)
                                   .. " " .. ("x"):rep(8)):list(),
      shown = { tostring(S), getmetatable(S) },
    }
    local into = text.content_set("a sea of reefs", C) -- adds sea, reefs to C
    d.into = { into == C, #C, C:has("sea"), C:has("of") }
    local grown = text.Set()
    for i = 1, 1000 do grown:add_tokens("w" .. i .. " W" .. i % 7) end
    d.grown = { #grown, grown:has("w1000"), grown:has("w0"), grown:list()[1001] }
    -- documents: d3 is not a string (an empty document); "the lagoon" joins the Set only
    local texts = { "Reef fish", "fish REEF reef", 42, "coral, reef" }
    local docs = text.Set()
    docs:add_document(texts[1]):add_content("the lagoon"):add_document(texts[2])
    docs:add_document(texts[3]):add_document(texts[4])
    d.documents = {
      members = docs:list(),
      cosines = docs:tfidf_cosines(),
      same_as_list = text.tfidf_cosines(texts),
      none = { #text.Set():tfidf_cosines(), #text.Set():add_document("reef"):tfidf_cosines() },
    }
    local ok, message = pcall(function() S:add(1) end)
    d.add_number = { ok, message }
    ok, message = pcall(function() S:add_all({ [1] = true }) end)
    d.add_all_number = { ok, message }
    ok, message = pcall(function() text.intersection_size(S, 7) end)
    d.not_a_set = { ok, message }
    -- the bytes beside each range of token bytes: / : @ [ ` {, and tokens across words
    d.edges = text.Set():add_tokens("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 Zürich@Home [Q]x{y}z`a/9:"):list()
    local keys = text.Set():add("www.Example.com/a"):add("example.com:8080/b"):add("sub.example.com/c?x=1")
    keys:add(""):add("WWW.example.com")
    local own = text.Set():add("www.a.org/x")
    d.domains = {
      from_set = text.Set():add_domains(keys):list(),
      from_table = text.Set():add_domains({ ["https://news.bbc.co.uk:443/x"] = true }):list(),
      itself = own:add_domains(own):list(),
    }
    ok, message = pcall(function() text.Set():add_domains({ [1] = true }) end)
    d.domains.number = { ok, message }
    local grams = text.Set()
    local _, c1 = grams:add_ngrams("The reef, the REEF; coral", 2) -- T: the reef the reef coral
    local same, c2 = grams:add_ngrams("one", 2)
    local _, c3 = text.Set():add_ngrams(42, 1)
    d.ngrams = { list = grams:list(), counts = { c1, c2, c3 }, same = same == grams,
                 trigrams = text.Set():add_ngrams("a b c d", 3):list() }
    ok, message = pcall(function() grams:add_ngrams("a b", 65) end)
    d.ngrams.too_long = { ok, message }
    -- a token in a word's reach mid-text, and the same token at the end of a text, where
    -- fewer than eight bytes are left (two code paths, one member)
    d.paths = {
      tokens = text.Set():add_tokens("alpha ALPHA abcdefgh beta abcdefgh Abcdefgh alpha"):list(),
      across = text.Set():add_tokens("x alpha"):add_tokens("alpha beta"):add_tokens("Beta"):list(),
      content = text.Set():add_content("the reef of the"):list(),
      cosine = text.Set():add_document("reef fish reef"):add_document("fish reef"):tfidf_cosines(),
    }
    return { score = 1, details = d }
  end,
}
