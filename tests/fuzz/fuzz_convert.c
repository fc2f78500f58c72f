/* fuzz_convert.c - libFuzzer target for the trace path of a worker: parse a line as JSON,
 * convert it into Lua and run an evaluator that walks every value (building the tables of
 * the lazy view, sandbox/lazy.c) and encodes the trace, in an order that depends on the
 * input, and returns parts of it as details, so that the conversion out (records as JSON)
 * is exercised too. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../sandbox/sandbox.h"

static const char walker[] =
    "local json = assay.json\n"
    "local names = { 'id', 'type', 'steps', 'query', 'url', 'a', 'b', 'x', '', '1' }\n"
    "local function walk(v, d)\n"
    "  if d > 200 then return 0 end\n"
    "  if type(v) ~= 'table' then return 1 end\n"
    "  -- members read one at a time first (an object builds them alone), then the whole\n"
    "  -- table: each must keep what the first read gave\n"
    "  local before = {}\n"
    "  if d % 2 == 0 then for i, name in ipairs(names) do before[i] = v[name] end end\n"
    "  local n = 1\n"
    "  for k, x in pairs(v) do n = n + walk(x, d + 1) end\n"
    "  for i, name in ipairs(names) do\n"
    "    if before[i] ~= nil and not rawequal(before[i], v[name]) then error('lazy view mismatch: ' .. name) end\n"
    "  end\n"
    "  return n\n"
    "end\n"
    "return { name = 'walker', evaluate = function(t)\n"
    "  -- tables are built when first touched (lazy.c): touch them in either order\n"
    "  local encode_first = #json.encode(t.id or 0) % 2 == 0\n"
    "  local ok, text\n"
    "  if encode_first then ok, text = pcall(json.encode, t) end\n"
    "  local n = walk(t, 0)\n"
    "  if not encode_first then ok, text = pcall(json.encode, t) end\n"
    "  return { score = 1 / n, label = type(t.id) == 'string' and t.id or nil,\n"
    "           details = { n = n, steps = t.steps, encoded = ok and #text or -1, meta = t.metadata } }\n"
    "end }\n";

static sandbox *sb;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    if (!sb) {
        sandbox_config c = {.path = "walker.lua", .source = walker, .source_len = sizeof walker - 1,
                            .memory_limit = 64u << 20, .timeout_ms = 1000};
        char err[512];
        if (!(sb = sandbox_new(&c, err, sizeof err))) abort();
    }
    char *text = malloc(n + 1);
    if (!text) return 0;
    memcpy(text, data, n);
    text[n] = '\0';
    const char *end;
    cJSON *trace = convert_parse_json(text, n, &end);
    if (trace) {
        record_list out;
        record_list_init(&out);
        if (sandbox_evaluate(sb, trace, "fuzz", &out, NULL)) abort(); /* no I/O: never suspends */
        if (out.count != 1 || out.jsonl.len == 0 || out.jsonl.data[out.jsonl.len - 1] != '\n') abort();
        const char *message = out.records[0].error_message;
        if (message && strstr(message, "lazy view mismatch")) abort(); /* a member changed when built whole */
        cJSON *again = cJSON_ParseWithLength(out.jsonl.data, out.jsonl.len); /* the record is JSON */
        if (!again) abort();
        cJSON_Delete(again);
        record_list_free(&out);
        cJSON_Delete(trace);
    } else if (end < text || end > text + n) {
        abort();
    }
    free(text);
    return 0;
}
