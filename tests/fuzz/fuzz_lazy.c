/* fuzz_lazy.c - libFuzzer target for the lazy trace view (sandbox/lazy.c) attacked from
 * inside a plugin.
 *
 * The input is a script of operations, then a newline, then a JSON trace. A fixed plugin
 * interprets the script against the trace: reads members, walks with pairs/next/ipairs
 * (including the iterators pairs returns, called on other tables), assigns values it found
 * or kept, takes lengths, raw accessors, metatables, JSON encoding, host functions that
 * walk tables, and keeps tables in module state. Each input is evaluated on two traces
 * parsed apart, so that tables kept from the first are touched after its tree is freed.
 *
 * It fails (aborts) on any memory error (ASan, UBSan), on a light userdata other than
 * assay.null or an address reaching the plugin (a node pointer), and on a record that is
 * not one JSON line. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../sandbox/sandbox.h"

static const char plugin[] =
    "local json, text = assay.json, assay.text\n"
    "local keys = { 'id', 'steps', 'metadata', 'query', 'results', 'url', 'a', 'b', 1, 2, 3, '', 'type', 'x', 0, -1 }\n"
    "local kept, found = {}, {}\n"
    "local function check(v, where)\n"
    "  if type(v) == 'userdata' and v ~= assay.null then error('LEAK: a light userdata from ' .. where) end\n"
    "  if type(v) == 'string' and v:find('userdata: 0x', 1, true) then error('LEAK: an address from ' .. where) end\n"
    "  return v\n"
    "end\n"
    "local function walk_with(iter, tab, limit)\n"
    "  local k, v, n = nil, nil, 0\n"
    "  repeat\n"
    "    k, v = iter(tab, k)\n"
    "    check(k, 'a key'); check(v, 'a value')\n"
    "    if v ~= nil then found[n % 8 + 1] = v; n = n + 1 end\n"
    "  until k == nil or n > limit\n"
    "end\n"
    "return { name = 'lazy_fuzz', params = { p = 1, q = { 'x' } }, evaluate = function(t, params)\n"
    "  if t.first then kept, found = {}, {} end\n"
    "  local cur, stack = t, {}\n"
    "  local ops = t.ops or ''\n"
    "  local stale_reads = 0\n"
    "  for i = 1, #ops - 1, 2 do\n"
    "    local b = tonumber(ops:sub(i, i + 1), 16) or 0\n"
    "    local op, arg = b % 16, b // 16\n"
    "    local key = keys[arg + 1]\n"
    "    local ok, err = pcall(function()\n"
    "      if op == 0 then local v = check(cur[key], 'index'); if type(v) == 'table' then stack[#stack + 1] = cur; cur = v end\n"
    "      elseif op == 1 then cur = table.remove(stack) or t\n"
    "      elseif op == 2 then walk_with(next, cur, 64)\n"
    "      elseif op == 3 then local iter = (arg % 2 == 0) and pairs(t) or pairs(params); walk_with(iter, cur, 64)\n"
    "      elseif op == 4 then local _ = #cur\n"
    "      elseif op == 5 then local v = ({ found[arg % 8 + 1], kept[arg % 4 + 1], assay.null, {}, cur, t, 7, 'x' })[arg % 8 + 1]; cur[key] = v\n"
    "      elseif op == 6 then kept[arg % 4 + 1] = cur\n"
    "      elseif op == 7 then local v = kept[arg % 4 + 1]; if v then cur = v end\n"
    "      elseif op == 8 then check(rawget(cur, key), 'rawget'); rawset(cur, key, found[arg % 8 + 1] or 1); local _ = rawlen(cur)\n"
    "      elseif op == 9 then check(getmetatable(cur), 'getmetatable'); if arg % 2 == 0 then setmetatable(cur, nil) else setmetatable(cur, { __index = function(_, k) if k == 'x' then return 1 end end }) end\n"
    "      elseif op == 10 then check(json.encode(cur), 'encode'); local _ = json.is_array(cur); for _, v in ipairs(json.objects(cur, arg % 2 == 0 and 'type' or nil, key)) do check(v, 'objects'); found[arg % 8 + 1] = v end\n"
    "        if arg % 2 == 0 then -- json.objects by a key, against the same in Lua\n"
    "          local got, want = json.objects(cur, 'type', key), {}\n"
    "          if json.is_array(cur) then for _, v in ipairs(cur) do if type(v) == 'table' and not json.is_array(v) and v.type == key then want[#want + 1] = v end end end\n"
    "          if #got ~= #want then error('MISMATCH: json.objects kept ' .. #got .. ', Lua ' .. #want) end\n"
    "          for j = 1, #want do if got[j] ~= want[j] then error('MISMATCH: json.objects entry ' .. j) end end\n"
    "        end\n"
    "      elseif op == 11 then for _, v in ipairs(cur) do check(v, 'ipairs'); found[arg % 8 + 1] = v end\n"
    "      elseif op == 12 then local s = text.token_set(cur); local _ = text.size(s) + text.size(cur)\n"
    "        local f, g = assay.trace.sources(cur); walk_with(next, f, 64); walk_with(next, g, 64)\n"
    "        walk_with(next, assay.trace.result_texts(cur), 64); walk_with(next, assay.trace.url_keys(cur), 64)\n"
    "        walk_with(next, assay.trace.url_keys(cur, text.Set()):list(), 64); local _ = #text.Set():add_domains(cur)\n"
    "        local _ = assay.trace.result_texts(cur, text.Set():add_document('a')):tfidf_cosines()\n"
    "        local pairs_, counts = assay.trace.cited_pairs(cur); walk_with(next, pairs_, 64); walk_with(next, counts, 64)\n"
    "        walk_with(next, assay.trace.queries(cur), 64)\n"
    "      elseif op == 13 then local _ = table.concat(cur, ','); table.insert(cur, 1); table.unpack(cur, 1, 4)\n"
    "      elseif op == 14 then check(tostring(cur), 'tostring'); check(tostring(found[arg % 8 + 1]), 'tostring')\n"
    "      else local v = kept[arg % 4 + 1]; if v then local _ = v[key]; local _ = #v; for _ in pairs(v) do end end\n"
    "      end\n"
    "    end)\n"
    "    if not ok and (tostring(err):find('LEAK', 1, true) or tostring(err):find('MISMATCH', 1, true)) then error(err, 0) end\n"
    "  end\n"
    "  return { score = 1, details = { depth = #stack } }\n"
    "end }\n";

static sandbox *sb;

/* Evaluates the trace text once, with "first" and "ops" members added; aborts on a leak or
 * a record that is not one JSON line. */
static void evaluate_once(const char *json, size_t n, const char *ops_hex, bool is_first) {
    const char *end;
    cJSON *trace = convert_parse_json(json, n, &end);
    if (!trace) return;
    if (!cJSON_IsObject(trace)) {
        cJSON *wrapper = cJSON_CreateObject();
        cJSON_AddItemToObject(wrapper, "doc", trace);
        trace = wrapper;
    }
    cJSON_DeleteItemFromObject(trace, "first");
    cJSON_DeleteItemFromObject(trace, "ops");
    cJSON_AddBoolToObject(trace, "first", is_first);
    cJSON_AddStringToObject(trace, "ops", ops_hex);
    record_list out;
    record_list_init(&out);
    if (sandbox_evaluate(sb, trace, "fuzz", &out, NULL)) abort(); /* no I/O: never suspends */
    if (out.count != 1 || out.jsonl.len == 0 || out.jsonl.data[out.jsonl.len - 1] != '\n') abort();
    const char *message = out.records[0].error_message;
    if (message && strstr(message, "LEAK")) {
        fprintf(stderr, "%s\n", message);
        abort();
    }
    cJSON *again = cJSON_ParseWithLength(out.jsonl.data, out.jsonl.len);
    if (!again) abort();
    cJSON_Delete(again);
    record_list_free(&out);
    cJSON_Delete(trace);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    if (!sb) {
        sandbox_config c = {.path = "lazy_fuzz.lua", .source = plugin, .source_len = sizeof plugin - 1,
                            .memory_limit = 64u << 20, .timeout_ms = 250};
        char err[512];
        if (!(sb = sandbox_new(&c, err, sizeof err))) {
            fprintf(stderr, "%s\n", err);
            abort();
        }
    }
    const uint8_t *newline = memchr(data, '\n', n);
    size_t ops_len = newline ? (size_t)(newline - data) : n;
    if (ops_len > 512) ops_len = 512;
    const uint8_t *json = newline ? newline + 1 : data + n;
    size_t json_len = (size_t)(data + n - json);
    char *ops_hex = malloc(2 * ops_len + 1);
    char *text = malloc(json_len + 1);
    if (!ops_hex || !text) abort();
    for (size_t i = 0; i < ops_len; i++) snprintf(ops_hex + 2 * i, 3, "%02x", data[i]);
    ops_hex[2 * ops_len] = '\0';
    memcpy(text, json, json_len);
    text[json_len] = '\0';
    if (json_len == 0) {
        static const char fallback[] = "{\"id\":\"a\",\"steps\":[{\"type\":\"search\",\"query\":\"q\",\"results\":[{\"url\":\"u\"}]}],\"metadata\":{\"a\":{\"b\":[1,2]}}}";
        evaluate_once(fallback, sizeof fallback - 1, ops_hex, true);
        evaluate_once(fallback, sizeof fallback - 1, ops_hex, false);
    } else {
        evaluate_once(text, json_len, ops_hex, true);
        evaluate_once(text, json_len, ops_hex, false);
    }
    free(ops_hex);
    free(text);
    return 0;
}
