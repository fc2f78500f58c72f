/* fuzz_set.c - libFuzzer target for assay.text.Set (sandbox/tset.c): the input, split at
 * its first '|', becomes two texts, and a plugin builds Sets and {token = true} tables of
 * both (tokens and content tokens, grown one token at a time and all at once) and checks
 * that every size, intersection, Jaccard, union and member list agrees. The tables are the
 * reference: a Set that loses, repeats or confuses a token (a hash or a masked compare
 * gone wrong) aborts. A Set's documents (S:add_document) must give exactly the cosines of
 * text.tfidf_cosines over the same texts, and S:add_ngrams the n-grams text.ngrams lists. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../sandbox/sandbox.h"

static const char checker[] =
    "local text = assay.text\n"
    "local function sorted(keys) table.sort(keys) return table.concat(keys, '\\0') end\n"
    "local function same(set, tbl, what)\n"
    "  local keys = {}\n"
    "  for k in pairs(tbl) do keys[#keys + 1] = k; if not set:has(k) then error('set mismatch: ' .. what .. ' lacks a member') end end\n"
    "  if #set ~= #keys or text.size(set) ~= #keys then error('set mismatch: ' .. what .. ' size') end\n"
    "  if sorted(set:list()) ~= sorted(keys) then error('set mismatch: ' .. what .. ' list') end\n"
    "end\n"
    "return { name = 'sets', evaluate = function(t)\n"
    "  local a, b = t.a, t.b\n"
    "  for _, content in ipairs({ false, true }) do\n"
    "    local add = content and 'add_content' or 'add_tokens'\n"
    "    local make = content and text.content_set or text.token_set\n"
    "    local A, B, ta, tb = text.Set()[add](text.Set(), a), text.Set()[add](text.Set(), b), make(a), make(b)\n"
    "    same(A, ta, 'a') same(B, tb, 'b')\n"
    "    local one = text.Set()\n"
    "    for _, w in ipairs(content and text.content_tokens(a) or text.tokens(a)) do one:add(w) end\n"
    "    same(one, ta, 'one by one')\n"
    "    if A:intersection_size(B) ~= text.intersection_size(ta, tb) or B:intersection_size(ta) ~= text.intersection_size(ta, tb) then\n"
    "      error('set mismatch: intersection') end\n"
    "    if A:jaccard(B) ~= text.jaccard(ta, tb) then error('set mismatch: jaccard') end\n"
    "    same(text.Set():add_all(A):add_all(tb), text.add_all(text.add_all({}, ta), tb), 'union')\n"
    "  end\n"
    "  local texts, D = { a, b, a .. ' ' .. b, b, '' }, text.Set()\n"
    "  for _, s in ipairs(texts) do D:add_document(s) end\n"
    "  local x, y = D:tfidf_cosines(), text.tfidf_cosines(texts)\n"
    "  if #x ~= #y or #x ~= #texts - 1 then error('set mismatch: tfidf count') end\n"
    "  for i = 1, #x do if x[i] ~= y[i] then error('set mismatch: tfidf') end end\n"
    "  same(D, text.content_set(a .. ' ' .. b), 'documents')\n"
    "  for n = 1, 3 do\n"
    "    local G, count = text.Set():add_ngrams(b, n)\n"
    "    local list = text.ngrams(text.tokens(b), n)\n"
    "    if count ~= #list then error('set mismatch: ngram count') end\n"
    "    same(G, text.set(list), 'ngrams')\n"
    "  end\n"
    "  return 1\n"
    "end }\n";

static sandbox *sb;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    if (!sb) {
        sandbox_config c = {.path = "sets.lua", .source = checker, .source_len = sizeof checker - 1,
                            .memory_limit = 256u << 20, .timeout_ms = 5000};
        char err[512];
        if (!(sb = sandbox_new(&c, err, sizeof err))) abort();
    }
    char *text = malloc(n + 1);
    if (!text) return 0;
    memcpy(text, data, n);
    text[n] = '\0';
    char *bar = memchr(text, '|', n);
    cJSON *trace = cJSON_CreateObject();
    cJSON_AddStringToObject(trace, "id", "fuzz");
    if (bar) *bar = '\0';
    cJSON_AddStringToObject(trace, "a", text);
    cJSON_AddStringToObject(trace, "b", bar ? bar + 1 : "");
    record_list out;
    record_list_init(&out);
    if (sandbox_evaluate(sb, trace, "fuzz", &out, NULL)) abort(); /* no I/O: never suspends */
    if (out.count != 1) abort();
    const char *message = out.records[0].error_message;
    if (message && strstr(message, "set mismatch")) abort();
    record_list_free(&out);
    cJSON_Delete(trace);
    free(text);
    return 0;
}
