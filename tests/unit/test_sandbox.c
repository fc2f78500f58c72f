/* Unit tests of the sandbox (sandbox/sandbox.c): limits, the allow-listed environment,
 * plugin loading errors and the shape of the records it writes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pthread.h>
#include <signal.h>
#include <time.h>

#include <lua.h>

#include "../../sandbox/sandbox.h"
#include "../../sandbox/state.h"

static const char *const lib_dirs[] = {"plugins/lib"};

/* 200 ms, but 5 s for the memory bombs and the stack overflow: on a loaded machine under
 * ASan, filling 16 MiB or the stack can take longer than 200 ms, and then the kill is a
 * timeout. */
static unsigned config_timeout_ms = 200;

static sandbox_config config_for(const char *source) {
    sandbox_config c;
    memset(&c, 0, sizeof c);
    c.path = "test_plugin.lua";
    c.source = source;
    c.source_len = strlen(source);
    c.lib_dirs = lib_dirs;
    c.lib_dir_count = 1;
    c.memory_limit = 16u << 20;
    c.timeout_ms = config_timeout_ms;
    c.record_timing = false;
    return c;
}

static sandbox *load(const char *source) {
    sandbox_config c = config_for(source); /* copied by the sandbox; its strings are borrowed */
    char err[512];
    sandbox *sb = sandbox_new(&c, err, sizeof err);
    if (!sb) fail_msg("plugin failed to load: %s", err);
    return sb;
}

static void unload(sandbox *sb) { sandbox_free(sb); }

static char *load_error(const char *source) {
    sandbox_config c = config_for(source);
    char err[512];
    sandbox *sb = sandbox_new(&c, err, sizeof err);
    if (sb) {
        sandbox_free(sb);
        return NULL;
    }
    return strdup(err);
}

/* Evaluates trace_json and returns the records' JSON lines (caller frees). */
static char *evaluate(sandbox *sb, const char *trace_json) {
    cJSON *trace = cJSON_Parse(trace_json);
    assert_non_null(trace);
    const cJSON *id = cJSON_GetObjectItem(trace, "id");
    record_list out;
    record_list_init(&out);
    assert_null(sandbox_evaluate(sb, trace, id->valuestring, &out, NULL)); /* no I/O: finishes at once */
    char *text = strdup(buf_cstr(&out.jsonl));
    record_list_free(&out);
    cJSON_Delete(trace);
    return text;
}

static void assert_contains(const char *haystack, const char *needle) {
    if (!strstr(haystack, needle)) fail_msg("expected to find\n  %s\nin\n  %s", needle, haystack);
}

#define LOOPER "return { evaluate = function(t) if t.id == 'bad' then %s end return 1 end }"

static void check_killed_then_healthy(const char *body, const char *kind) {
    char source[512];
    snprintf(source, sizeof source, LOOPER, body);
    config_timeout_ms = strcmp(kind, "memory") == 0 ? 5000 : 200;
    sandbox *sb = load(source);
    config_timeout_ms = 200;
    char *bad = evaluate(sb, "{\"id\":\"bad\"}");
    char expected[64];
    snprintf(expected, sizeof expected, "\"error\":{\"kind\":\"%s\"", kind);
    assert_contains(bad, expected);
    assert_contains(bad, "\"score\":null");
    char *good = evaluate(sb, "{\"id\":\"good\"}");
    assert_contains(good, "\"score\":1,");
    assert_contains(good, "\"error\":null");
    free(bad), free(good);
    unload(sb);
}

static void test_infinite_loop_gets_timeout_record_and_state_recovers(void **s) {
    (void)s;
    check_killed_then_healthy("while true do end", "timeout");
}

static void test_pcall_cannot_swallow_the_timeout(void **s) {
    (void)s;
    check_killed_then_healthy("for i = 1, 1e12 do pcall(function() while true do end end) end", "timeout");
}

static void test_coroutine_loop_gets_timeout(void **s) {
    (void)s;
    check_killed_then_healthy("local co = coroutine.wrap(function() while true do coroutine.yield() end end) "
                              "while true do co() end", "timeout");
}

static void test_allocation_bomb_gets_memory_record_and_state_recovers(void **s) {
    (void)s;
    check_killed_then_healthy("local t = {} for i = 1, 1e9 do t[i] = {i, i, i} end", "memory");
}

static void test_string_rep_bomb_gets_memory_record(void **s) {
    (void)s;
    check_killed_then_healthy("local x = string.rep('x', 1 << 30)", "memory");
}

static void test_caught_memory_error_in_a_loop_is_still_killed(void **s) {
    (void)s;
    check_killed_then_healthy("for i = 1, 1e9 do pcall(string.rep, 'x', 1 << 30) end", "memory");
}

static void test_unbounded_recursion_is_a_runtime_error(void **s) {
    (void)s;
    config_timeout_ms = 5000; /* the stack fills in well under that, even loaded, under ASan */
    sandbox *sb = load("local function f(n) return f(n + 1) + 1 end\n"
                       "return { evaluate = function(t) return f(1) end }");
    config_timeout_ms = 200;
    char *out = evaluate(sb, "{\"id\":\"x\"}");
    assert_true(strstr(out, "stack overflow") || strstr(out, "\"kind\":\"memory\""));
    free(out);
    out = evaluate(sb, "{\"id\":\"y\"}");
    assert_contains(out, "\"error\":{");
    free(out);
    unload(sb);
}

static void test_runtime_error_names_file_line_and_traceback(void **s) {
    (void)s;
    sandbox *sb = load("local function helper(x)\n  return x.a.b\nend\n"
                       "return { evaluate = function(t) return helper({}) end }");
    char *out = evaluate(sb, "{\"id\":\"x\"}");
    assert_contains(out, "\"kind\":\"runtime\",\"message\":\"test_plugin.lua:2: attempt to index a nil value");
    assert_contains(out, "\"traceback\":\"test_plugin.lua:2: in ");
    free(out);
    unload(sb);
}

static void test_error_with_table_value_does_not_run_its_metamethods(void **s) {
    (void)s;
    sandbox *sb = load("return { evaluate = function(t) error(setmetatable({}, {__tostring = function() "
                       "while true do end end})) end }");
    char *out = evaluate(sb, "{\"id\":\"x\"}");
    assert_contains(out, "(error object is a table value)");
    free(out);
    unload(sb);
}

static void check_refused(const char *expression, const char *message) {
    char source[512];
    snprintf(source, sizeof source, "return { evaluate = function(t) local v = %s return 1 end }", expression);
    sandbox *sb = load(source);
    char *out = evaluate(sb, "{\"id\":\"x\"}");
    assert_contains(out, "\"kind\":\"runtime\"");
    assert_contains(out, message);
    free(out);
    unload(sb);
}

static void test_withheld_libraries_are_refused_with_a_clear_message(void **s) {
    (void)s;
    check_refused("io.open('/etc/passwd')", "'io': file access is not available");
    check_refused("debug.getinfo(1)", "'debug': the debug library is not available");
    check_refused("package.loadlib('x', 'y')", "'package': package is not available");
    check_refused("dofile('/etc/passwd')", "'dofile': dofile is not available");
    check_refused("os.execute('true')", "os.execute is not available");
    check_refused("os.getenv('HOME')", "os.getenv is not available");
    check_refused("os.exit(1)", "os.exit is not available");
    check_refused("os.remove('/tmp/x')", "os.remove is not available");
    check_refused("string.dump(print)", "string.dump is not available");
    check_refused("('x'):dump()", "string.dump is not available");
    check_refused("collectgarbage('collect')", "collectgarbage(\\\"collect\\\") is not allowed");
}

static void test_require_only_loads_helpers_by_dotted_name(void **s) {
    (void)s;
    check_refused("require('../etc/passwd')", "invalid module name '../etc/passwd'");
    check_refused("require('/etc/passwd')", "invalid module name '/etc/passwd'");
    check_refused("require('no_such_module')", "module 'no_such_module' not found");
    check_refused("require('assay.io')", "no host module 'assay.io'");
    sandbox *sb = load("local tr = require('trace') local text = require('assay.text')\n"
                       "return { evaluate = function(t) return { label = tr.text(t.input) .. text.url_key('http://www.A.com/') } end }");
    char *out = evaluate(sb, "{\"id\":\"x\",\"input\":\"ok:\"}");
    assert_contains(out, "\"label\":\"ok:a.com\"");
    free(out);
    unload(sb);
}

static void test_bytecode_is_refused_by_load(void **s) {
    (void)s;
    sandbox *sb = load("return { evaluate = function(t)\n"
                       "  local f1, e1 = load('\\27LuaT\\0\\25\\147\\r\\n\\26\\n')\n"
                       "  local f2, e2 = load('return 1', 'x', 'b')\n"
                       "  local f3 = load('return 1', 'x', 'bt')\n"
                       "  local f4 = load('return 2')\n"
                       "  return { label = tostring(e1) .. ' | ' .. tostring(e2) .. ' | ' .. tostring(f3) .. ' | ' .. f4() }\n"
                       "end }");
    char *out = evaluate(sb, "{\"id\":\"x\"}");
    assert_contains(out, "attempt to load a binary chunk");
    assert_contains(out, "binary chunks are not allowed in the assay sandbox");
    assert_contains(out, "| nil | 2");
    free(out);
    unload(sb);
}

static void test_loaded_chunks_see_the_sandbox_not_a_hidden_global_table(void **s) {
    (void)s;
    sandbox *sb = load("return { evaluate = function(t) local f = load('return io') "
                       "local ok, err = pcall(f) return { label = tostring(ok) .. ' ' .. err } end }");
    char *out = evaluate(sb, "{\"id\":\"x\"}");
    assert_contains(out, "false");
    assert_contains(out, "file access is not available");
    free(out);
    unload(sb);
}

static void test_string_metatable_and_globals_are_protected(void **s) {
    (void)s;
    sandbox *sb = load("return { evaluate = function(t)\n"
                       "  local a = getmetatable('')\n"
                       "  local ok = pcall(setmetatable, _G, nil)\n"
                       "  local ok2, e2 = pcall(setmetatable, {}, {__gc = function() end})\n"
                       "  return { label = tostring(a) .. ' ' .. tostring(ok) .. ' ' .. tostring(ok2) .. ' ' .. e2 }\n"
                       "end }");
    char *out = evaluate(sb, "{\"id\":\"x\"}");
    assert_contains(out, "\"label\":\"string false false ");
    assert_contains(out, "__gc metamethods are not allowed");
    free(out);
    unload(sb);
}

static void test_globals_written_while_evaluating_are_refused(void **s) {
    (void)s;
    sandbox *sb = load("count = 0\nlocal kept = 0\n"
                       "return { evaluate = function(t) kept = kept + 1\n"
                       "  if t.id == 'leak' then leaked = true end\n"
                       "  if t.id == 'typo' then return undefined_thing end\n"
                       "  return { label = tostring(kept) } end }");
    char *a = evaluate(sb, "{\"id\":\"a\"}");
    char *leak = evaluate(sb, "{\"id\":\"leak\"}");
    char *typo = evaluate(sb, "{\"id\":\"typo\"}");
    char *b = evaluate(sb, "{\"id\":\"b\"}");
    assert_contains(a, "\"label\":\"1\"");
    assert_contains(leak, "assignment to undeclared global 'leaked'");
    assert_contains(typo, "undefined global 'undefined_thing'");
    assert_contains(b, "\"label\":\"4\""); /* upvalues are the way to keep state on purpose */
    free(a), free(leak), free(typo), free(b);
    unload(sb);
}

static void test_params_are_read_only_and_overrides_are_typed(void **s) {
    (void)s;
    const char *src = "return { name = 'p', params = { threshold = 0.5, mode = 'x', strict = false },\n"
                      "  evaluate = function(t, params)\n"
                      "    local ok = pcall(function() params.threshold = 1 end)\n"
                      "    local keys = {} for k in pairs(params) do keys[#keys + 1] = k end table.sort(keys)\n"
                      "    return { score = params.threshold, pass = params.strict,\n"
                      "             label = tostring(ok) .. ' ' .. params.mode .. ' ' .. table.concat(keys, ',') } end }";
    sandbox_param_override overrides[] = {{"threshold", "0.25"}, {"mode", "y"}, {"strict", "true"}};
    sandbox_config c = config_for(src);
    c.overrides = overrides;
    c.override_count = 3;
    char err[512];
    sandbox *sb = sandbox_new(&c, err, sizeof err);
    assert_non_null(sb);
    assert_string_equal(sandbox_get_info(sb)->params_json, "{\"mode\":\"y\",\"strict\":true,\"threshold\":0.25}");
    char *out = evaluate(sb, "{\"id\":\"x\"}");
    assert_contains(out, "\"score\":0.25,\"pass\":true,\"label\":\"false y mode,strict,threshold\"");
    free(out);
    sandbox_free(sb);

    sandbox_param_override bad[] = {{"threshold", "high"}};
    c.overrides = bad;
    c.override_count = 1;
    assert_null(sandbox_new(&c, err, sizeof err));
    assert_contains(err, "param p.threshold: 'high' is not a number");
    sandbox_param_override unknown[] = {{"nope", "1"}};
    c.overrides = unknown;
    assert_null(sandbox_new(&c, err, sizeof err));
    assert_contains(err, "param p.nope: the plugin has no param 'nope'");
}

static void test_load_errors_name_the_file_and_line(void **s) {
    (void)s;
    char *e;
    e = load_error("return {\n evaluate = function(t) return 1 end,,\n}");
    assert_non_null(e);
    assert_contains(e, "test_plugin.lua:2:");
    free(e);
    e = load_error("return { name = 'x' }");
    assert_contains(e, "has no evaluate function");
    free(e);
    e = load_error("return 42");
    assert_contains(e, "must return a table");
    free(e);
    e = load_error("local x = nil\nx.y = 1\nreturn {}");
    assert_contains(e, "test_plugin.lua:2: attempt to index a nil value");
    free(e);
    e = load_error("return { name = 'a.b', evaluate = function() end }");
    assert_contains(e, "may only use letters");
    free(e);
    e = load_error("while true do end");
    assert_contains(e, "loading took longer than the 200 ms time limit");
    free(e);
}

static void test_result_shapes_and_sorted_details(void **s) {
    (void)s;
    sandbox *sb = load("return { name = 'shape', evaluate = function(t)\n"
                       "  if t.id == 'n' then return 0.25 end\n"
                       "  if t.id == 'b' then return false end\n"
                       "  if t.id == 'bad' then return { score = 1.5 } end\n"
                       "  if t.id == 'none' then return end\n"
                       "  if t.id == 'cycle' then local d = {} d.self = d return { details = d } end\n"
                       "  return { score = 1, label = 'L', details = { zeta = 1, alpha = {}, mid = { 3, 2.5, assay.null }, [7] = 'x' } }\n"
                       "end }");
    char *n = evaluate(sb, "{\"id\":\"n\"}");
    char *b = evaluate(sb, "{\"id\":\"b\"}");
    char *bad = evaluate(sb, "{\"id\":\"bad\"}");
    char *none = evaluate(sb, "{\"id\":\"none\"}");
    char *cycle = evaluate(sb, "{\"id\":\"cycle\"}");
    char *full = evaluate(sb, "{\"id\":\"full\"}");
    assert_string_equal(n, "{\"trace_id\":\"n\",\"evaluator\":\"shape\",\"step\":null,\"score\":0.25,\"pass\":null,"
                           "\"label\":null,\"details\":null,\"error\":null,\"ms\":null}\n");
    assert_contains(b, "\"score\":null,\"pass\":false,");
    assert_contains(bad, "score 1.5; a score must be a number in [0, 1]");
    assert_contains(none, "evaluate returned nothing");
    assert_contains(cycle, "nested deeper than 64 levels");
    assert_contains(full, "\"details\":{\"7\":\"x\",\"alpha\":[],\"mid\":[3,2.5,null],\"zeta\":1}");
    free(n), free(b), free(bad), free(none), free(cycle), free(full);
    unload(sb);
}

static void test_step_scope_runs_once_per_matching_step(void **s) {
    (void)s;
    sandbox *sb = load("return { name = 'q', scope = 'search', evaluate = function(t, p, step, index)\n"
                       "  assert(t.steps[index] == step) return { label = step.query .. '@' .. index } end }");
    char *out = evaluate(sb, "{\"id\":\"x\",\"steps\":[{\"type\":\"search\",\"query\":\"a\"},{\"type\":\"fetch\"},"
                             "7,{\"type\":\"search\",\"query\":\"b\"}]}");
    assert_contains(out, "\"step\":0,\"score\":null,\"pass\":null,\"label\":\"a@1\"");
    assert_contains(out, "\"step\":3,\"score\":null,\"pass\":null,\"label\":\"b@4\"");
    int lines = 0;
    for (const char *p = out; *p; p++) lines += *p == '\n';
    assert_int_equal(lines, 2);
    free(out);
    unload(sb);
}

static void test_random_numbers_depend_on_the_trace_not_the_state(void **s) {
    (void)s;
    const char *src = "return { evaluate = function(t) return { label = tostring(math.random(1, 1000000)) } end }";
    sandbox *a = load(src), *b = load(src);
    char *first = evaluate(a, "{\"id\":\"z\"}");
    char *other = evaluate(a, "{\"id\":\"y\"}");
    char *again = evaluate(b, "{\"id\":\"z\"}");
    assert_string_equal(first, again);
    assert_string_not_equal(first, other);
    free(first), free(other), free(again);
    unload(a), unload(b);
}

/* The host seeds with the library's own randomseed, taken before the plugin's code ran. */
static void test_a_plugin_replacing_randomseed_does_not_change_the_seeding(void **s) {
    (void)s;
    const char *draw = "evaluate = function(t) return { label = tostring(math.random(1, 1000000)) } end }";
    char plain[256], replaced[256];
    snprintf(plain, sizeof plain, "return { %s", draw);
    snprintf(replaced, sizeof replaced, "math.randomseed = function() end return { %s", draw);
    sandbox *a = load(plain), *b = load(replaced);
    char *first = evaluate(a, "{\"id\":\"z\"}");
    char *second = evaluate(b, "{\"id\":\"z\"}");
    char *third = evaluate(b, "{\"id\":\"y\"}");
    assert_string_equal(first, second);
    assert_string_not_equal(second, third);
    free(first), free(second), free(third);
    unload(a), unload(b);
}

static void test_json_arrays_are_marked_and_nulls_kept_in_arrays(void **s) {
    (void)s;
    sandbox *sb = load("return { evaluate = function(t)\n"
                       "  local j = assay.json\n"
                       "  return { label = tostring(j.is_array(t.a)) .. tostring(j.is_array(t.o)) .. #t.a .. tostring(t.n)\n"
                       "    .. j.encode(t.e) .. j.encode(t.o) .. tostring(t.a[2] == assay.null)\n"
                       "    .. tostring(j.decode('{\"x\":1} junk')) } end }");
    char *out = evaluate(sb, "{\"id\":\"x\",\"a\":[1,null,3],\"o\":{},\"e\":[],\"n\":null}");
    assert_contains(out, "\"label\":\"truefalse3nil[][]truenil\"");
    free(out);
    unload(sb);
}


/* ------------------------------------------------------------ suspended evaluations */

/* A plugin that asks for t.url, or loops forever when the trace says so. */
#define FETCHER                                                                                   \
    "return { evaluate = function(t)\n"                                                             \
    "  if t.loop then while true do end end\n"                                                    \
    "  local ok, r = pcall(assay.http.request, { url = t.url })\n"                                 \
    "  if not ok then if t.rethrow then error('plugin: ' .. r, 0) end return { score = 0, label = r } end\n" \
    "  return { score = 1, label = r.body, details = { status = r.status } }\n"                    \
    "end }"

static sandbox *load_io(const char *source) {
    sandbox_config c = config_for(source);
    c.has_io = true;
    char err[512];
    sandbox *sb = sandbox_new(&c, err, sizeof err);
    if (!sb) fail_msg("plugin failed to load: %s", err);
    return sb;
}

typedef struct pending_eval {
    cJSON *trace;
    record_list out;
    sandbox_task *task;
} pending_eval;

static void start_eval(sandbox *sb, pending_eval *p, const char *json) {
    p->trace = cJSON_Parse(json);
    assert_non_null(p->trace);
    record_list_init(&p->out);
    p->task = sandbox_evaluate(sb, p->trace, cJSON_GetObjectItem(p->trace, "id")->valuestring, &p->out, p);
}

/* Answers the task's one request with body (or fails it with error), then resumes it. */
static void answer(pending_eval *p, const char *url, const char *body, const char *error) {
    sandbox_io *io = sandbox_task_take_io(p->task);
    assert_non_null(io);
    assert_string_equal(io->url, url);
    assert_null(sandbox_task_take_io(p->task));
    if (error) io->error = strdup(error);
    io->status = 200;
    if (body) buf_puts(&io->response_body, body);
    assert_true(sandbox_io_done(io));
    assert_true(sandbox_task_resume(p->task));
    p->task = NULL;
}

static void end_eval(pending_eval *p) {
    record_list_free(&p->out);
    cJSON_Delete(p->trace);
}

static void test_io_suspends_and_resumes_with_the_response(void **state) {
    (void)state;
    sandbox *sb = load_io(FETCHER);
    pending_eval a, b;
    start_eval(sb, &a, "{\"id\":\"a\",\"url\":\"http://x/a\"}");
    start_eval(sb, &b, "{\"id\":\"b\",\"url\":\"http://x/b\"}");
    assert_non_null(a.task); /* both wait at once in the same state */
    assert_non_null(b.task);
    assert_int_equal(a.out.count, 0);
    answer(&b, "http://x/b", "bee", NULL); /* answers may come in any order */
    answer(&a, "http://x/a", "ay", NULL);
    assert_contains(buf_cstr(&a.out.jsonl), "\"score\":1,\"pass\":null,\"label\":\"ay\",\"details\":{\"status\":200,"
                                            "\"usage\":{\"cache_hits\":0,\"calls\":1,\"tokens_in\":0,\"tokens_out\":0}}");
    assert_contains(buf_cstr(&b.out.jsonl), "\"label\":\"bee\"");
    end_eval(&a);
    end_eval(&b);
    sandbox_free(sb);
}

static void test_io_errors_are_http_records_unless_the_plugin_handles_them(void **state) {
    (void)state;
    sandbox *sb = load_io(FETCHER);
    pending_eval caught, rethrown;
    start_eval(sb, &caught, "{\"id\":\"c\",\"url\":\"http://x/c\"}");
    start_eval(sb, &rethrown, "{\"id\":\"r\",\"url\":\"http://x/r\",\"rethrow\":true}");
    answer(&caught, "http://x/c", NULL, "http: GET http://x/c: refused");
    answer(&rethrown, "http://x/r", NULL, "http: GET http://x/r: refused");
    assert_contains(buf_cstr(&caught.out.jsonl), "\"score\":0,\"pass\":null,\"label\":\"http: GET http://x/c: refused\"");
    /* a different error raised after catching one is the plugin's own: runtime */
    assert_contains(buf_cstr(&rethrown.out.jsonl), "\"error\":{\"kind\":\"runtime\",\"message\":\"plugin: http: GET http://x/r: refused\"");
    end_eval(&caught);
    end_eval(&rethrown);

    sandbox *raw = load_io("return { evaluate = function(t) return assay.http.request{ url = 'http://x/' }.status end }");
    pending_eval p;
    start_eval(raw, &p, "{\"id\":\"p\"}");
    answer(&p, "http://x/", NULL, "http: GET http://x/: status 503 after 5 attempts: busy");
    assert_contains(buf_cstr(&p.out.jsonl), "\"error\":{\"kind\":\"http\",\"message\":\"http: GET http://x/: status 503 after 5 attempts: busy\"}");
    end_eval(&p);
    sandbox_free(raw);
    sandbox_free(sb);
}

/* Evaluations waiting at once share their state's generator: each draws after its wait what
 * it would have drawn with no other evaluation in between (a plugin without I/O's second draw). */
static void test_random_numbers_after_a_wait_are_the_traces_own(void **state) {
    (void)state;
    sandbox *plain = load("return { evaluate = function(t) local a = math.random(1, 1000000)\n"
                          "  return { label = a .. ' ' .. math.random(1, 1000000) } end }");
    sandbox *sb = load_io("return { evaluate = function(t) local a = math.random(1, 1000000)\n"
                          "  assay.http.request{ url = 'http://x/' .. t.id }\n"
                          "  return { label = a .. ' ' .. math.random(1, 1000000) } end }");
    pending_eval a, b, c;
    start_eval(sb, &a, "{\"id\":\"a\"}");
    start_eval(sb, &b, "{\"id\":\"b\"}");
    start_eval(sb, &c, "{\"id\":\"c\"}");
    answer(&c, "http://x/c", "", NULL);
    answer(&a, "http://x/a", "", NULL);
    answer(&b, "http://x/b", "", NULL);
    pending_eval *each[] = {&a, &b, &c};
    for (int i = 0; i < 3; i++) {
        char trace[32];
        snprintf(trace, sizeof trace, "{\"id\":\"%c\"}", 'a' + i);
        char *expected = evaluate(plain, trace);
        const char *label = strstr(expected, "\"label\":");
        assert_non_null(label);
        char want[64];
        size_t n = (size_t)(strchr(label + 9, '"') - label + 1);
        assert_true(n < sizeof want);
        memcpy(want, label, n);
        want[n] = '\0';
        assert_contains(buf_cstr(&each[i]->out.jsonl), want);
        free(expected);
        end_eval(each[i]);
    }
    unload(plain);
    sandbox_free(sb);
}

static void count_logged(void *ctx, const char *plugin, const char *message) {
    (void)plugin;
    *(size_t *)ctx += strlen(message);
}

/* print's 64 KiB are per evaluation: another evaluation starting while one waits does not
 * give the waiting one a fresh budget (nor spend its own on it). */
static void test_the_print_budget_is_the_evaluations_own_across_waits(void **state) {
    (void)state;
    size_t logged = 0;
    sandbox_config c = config_for("return { evaluate = function(t)\n"
                                  "  print(('x'):rep(t.before))\n"
                                  "  if t.url then assay.http.request{ url = t.url } end\n"
                                  "  print(('y'):rep(t.after)) return 1 end }");
    c.has_io = true;
    c.log = count_logged;
    c.log_ctx = &logged;
    char err[512];
    sandbox *sb = sandbox_new(&c, err, sizeof err);
    if (!sb) fail_msg("plugin failed to load: %s", err);
    pending_eval big, small;
    start_eval(sb, &big, "{\"id\":\"b\",\"url\":\"http://x/b\",\"before\":40000,\"after\":40000}");
    start_eval(sb, &small, "{\"id\":\"s\",\"url\":\"http://x/s\",\"before\":10,\"after\":10}");
    answer(&big, "http://x/b", "", NULL);
    answer(&small, "http://x/s", "", NULL);
    /* big: 40,000 + the 25,536 left of 65,536 + the cut's note; small: its 20 bytes */
    size_t note = strlen("... [print: more than 64 KiB in one evaluation; the rest is dropped]");
    assert_int_equal(logged, 65536 + note + 20);
    end_eval(&big);
    end_eval(&small);
    sandbox_free(sb);
}

/* Crowded: evaluations waiting on I/O hold over half of what the loaded plugin leaves of the
 * state's memory limit, their garbage not counted. Each evaluation here holds 5 MB across
 * its wait; the limit is 16 MiB. */
static void test_a_state_is_crowded_by_what_waiting_evaluations_hold(void **state) {
    (void)state;
    sandbox *sb = load_io("return { evaluate = function(t)\n"
                          "  local held = string.rep('x', 5000000)\n"
                          "  assay.http.request{ url = 'http://x/' .. t.id }\n"
                          "  return #held > 0 end }");
    assert_false(sandbox_is_crowded(sb)); /* nothing waits */
    pending_eval a, b;
    start_eval(sb, &a, "{\"id\":\"a\"}");
    assert_false(sandbox_is_crowded(sb)); /* 5 MB of 16 */
    start_eval(sb, &b, "{\"id\":\"b\"}");
    assert_true(sandbox_is_crowded(sb)); /* 10 MB */
    answer(&a, "http://x/a", "", NULL);
    assert_false(sandbox_is_crowded(sb)); /* a's 5 MB are garbage now */
    answer(&b, "http://x/b", "", NULL);
    assert_false(sandbox_is_crowded(sb));
    end_eval(&a);
    end_eval(&b);
    sandbox_free(sb);

    /* memory a plugin keeps on purpose, with nothing waiting, crowds nothing */
    sandbox *keeper = load_io("local kept = {}\n"
                              "for i = 1, 3 do kept[i] = string.rep(tostring(i), 3000000) end\n"
                              "return { evaluate = function(t) return { label = tostring(#kept[1] + #kept[2] + #kept[3]) } end }");
    char *out = evaluate(keeper, "{\"id\":\"k\"}");
    assert_contains(out, "\"label\":\"9000000\"");
    assert_false(sandbox_is_crowded(keeper));
    free(out);
    sandbox_free(keeper);

    /* with 9 MB kept by the file, half of the ~7.5 MB left: two waiting with 1 MB each are
     * not crowding, four are */
    sandbox *lexicon = load_io("local kept = {}\n"
                               "for i = 1, 3 do kept[i] = string.rep(tostring(i), 3000000) end\n"
                               "return { evaluate = function(t)\n"
                               "  local held = string.rep('x', 1000000)\n"
                               "  assay.http.request{ url = 'http://x/' .. t.id }\n"
                               "  return #held + #kept[1] > 0 end }");
    pending_eval w[4];
    const char *ids[] = {"{\"id\":\"1\"}", "{\"id\":\"2\"}", "{\"id\":\"3\"}", "{\"id\":\"4\"}"};
    for (int i = 0; i < 4; i++) {
        start_eval(lexicon, &w[i], ids[i]);
        if (i == 1) assert_false(sandbox_is_crowded(lexicon));
    }
    assert_true(sandbox_is_crowded(lexicon));
    for (int i = 0; i < 4; i++) {
        char url[32];
        snprintf(url, sizeof url, "http://x/%d", i + 1);
        answer(&w[i], url, "", NULL);
        end_eval(&w[i]);
    }
    sandbox_free(lexicon);
}

/* A kill replaces the state; evaluations suspended in the old one still finish there, and
 * the old state is closed after the last of them (ASan checks that nothing leaks). */
static void test_a_kill_leaves_suspended_evaluations_of_other_traces_alone(void **state) {
    (void)state;
    sandbox *sb = load_io(FETCHER);
    pending_eval waiting, looping, later;
    start_eval(sb, &waiting, "{\"id\":\"w\",\"url\":\"http://x/w\"}");
    assert_non_null(waiting.task);
    start_eval(sb, &looping, "{\"id\":\"l\",\"loop\":true}");
    assert_null(looping.task);
    assert_contains(buf_cstr(&looping.out.jsonl), "\"kind\":\"timeout\"");
    start_eval(sb, &later, "{\"id\":\"n\",\"url\":\"http://x/n\"}");
    answer(&waiting, "http://x/w", "old state", NULL);
    answer(&later, "http://x/n", "new state", NULL);
    assert_contains(buf_cstr(&waiting.out.jsonl), "\"score\":1,\"pass\":null,\"label\":\"old state\"");
    assert_contains(buf_cstr(&later.out.jsonl), "\"label\":\"new state\"");
    end_eval(&waiting);
    end_eval(&looping);
    end_eval(&later);
    sandbox_free(sb);
}

static void test_io_is_refused_where_it_cannot_work(void **state) {
    (void)state;
    sandbox *no_io = load("return { evaluate = function(t) return assay.http.request{ url = 'http://x/' }.status end }");
    char *out = evaluate(no_io, "{\"id\":\"a\"}");
    assert_contains(out, "network I/O is not available in this host");
    free(out);
    unload(no_io);
    sandbox *sb = load_io("return { evaluate = function(t)\n"
                          "  if t.bad == 'url' then assay.http.request{ url = 'file:///etc/passwd' } end\n"
                          "  if t.bad == 'sort' then table.sort({2, 1}, function(a, b) assay.http.request{ url = 'http://x/' } return a < b end) end\n"
                          "  if t.bad == 'header' then assay.http.request{ url = 'http://x/', headers = { ['X-A'] = 'a\\r\\nB: c' } } end\n"
                          "  if t.bad == 'yield' then coroutine.yield(1) end\n"
                          "  return 1 end }");
    out = evaluate(sb, "{\"id\":\"u\",\"bad\":\"url\"}");
    assert_contains(out, "url must start with http:// or https:// (got 'file:///etc/passwd')");
    free(out);
    out = evaluate(sb, "{\"id\":\"s\",\"bad\":\"sort\"}");
    assert_contains(out, "cannot be called here (from a function that C calls, such as a sort comparator or a gsub replacement)");
    free(out);
    out = evaluate(sb, "{\"id\":\"h\",\"bad\":\"header\"}");
    assert_contains(out, "header 'X-A' has an invalid name or value");
    free(out);
    out = evaluate(sb, "{\"id\":\"y\",\"bad\":\"yield\"}");
    assert_contains(out, "evaluate yielded outside an assay I/O call");
    free(out);
    sandbox_free(sb);
}

/* An evaluation suspended on I/O is not the plugin's to resume: its coroutine would run in
 * another evaluation with neither its own time limit nor (watched) any hook. */
static void test_evaluate_coroutines_cannot_be_resumed_by_the_plugin(void **state) {
    (void)state;
    sandbox *sb = load_io("local stash = {}\n"
                          "return { evaluate = function(t)\n"
                          "  if t.id == 'w' then\n"
                          "    stash.co = coroutine.running()\n"
                          "    assay.http.request{ url = 'http://x/w' }\n"
                          "    while true do end\n"
                          "  end\n"
                          "  if t.id == 'c' then coroutine.close(stash.co) end\n"
                          "  local ok, err = coroutine.resume(stash.co)\n"
                          "  return { score = 1, label = tostring(err) }\n"
                          "end }");
    pending_eval waiting, resuming, closing;
    start_eval(sb, &waiting, "{\"id\":\"w\"}");
    assert_non_null(waiting.task);
    start_eval(sb, &resuming, "{\"id\":\"r\"}");
    assert_null(resuming.task);
    assert_contains(buf_cstr(&resuming.out.jsonl),
                    "coroutine.resume: only coroutines made with coroutine.create can be resumed or closed");
    start_eval(sb, &closing, "{\"id\":\"c\"}");
    assert_contains(buf_cstr(&closing.out.jsonl), "coroutine.close: only coroutines made with");
    /* the plugin's own still work: made, resumed, closed */
    char *out = evaluate(sb, "{\"id\":\"o\",\"x\":1}");
    free(out);
    answer(&waiting, "http://x/w", "body", NULL);
    assert_contains(buf_cstr(&waiting.out.jsonl), "\"kind\":\"timeout\"");
    end_eval(&waiting);
    end_eval(&resuming);
    end_eval(&closing);
    sandbox_free(sb);
    sb = load("return { evaluate = function(t)\n"
              "  local co = coroutine.create(function(a) local b = coroutine.yield(a + 1) return b * 2 end)\n"
              "  local _, x = coroutine.resume(co, 1)\n"
              "  local _, y = coroutine.resume(co, 10)\n"
              "  local pending = coroutine.create(function() coroutine.yield() end)\n"
              "  coroutine.resume(pending)\n"
              "  return { score = 1, details = { sum = x + y }, label = tostring(coroutine.close(pending)) .. ' ' .. coroutine.status(pending) }\n"
              "end }");
    out = evaluate(sb, "{\"id\":\"p\"}");
    assert_contains(out, "\"score\":1,\"pass\":null,\"label\":\"true dead\",\"details\":{\"sum\":22}");
    free(out);
    unload(sb);
}

/* ---- the time limit by signal (watch.c): the tests above run again with it enabled */

static bool watch_enabled;

/* probe(): the hook mask of the coroutine that calls it, as a number. */
static int probe_hook(lua_State *L) {
    lua_pushinteger(L, lua_gethookmask(L));
    return 1;
}

static void test_evaluations_run_without_the_count_hook_only_when_watched(void **s) {
    (void)s;
    sandbox *sb = load("return { evaluate = function(t)\n"
                       "  local own = coroutine.wrap(function() return probe() end)\n"
                       "  local made = coroutine.create(function() return probe() end)\n"
                       "  local _, in_made = coroutine.resume(made)\n"
                       "  return { score = 1, details = { evaluate = probe(), wrap = own(), create = in_made } }\n"
                       "end }");
    lua_State *L = sb->st->L; /* a host function of the test's, put in the globals raw */
    lua_pushglobaltable(L);
    lua_pushliteral(L, "probe"); /* raw: the strict globals refuse new names */
    lua_pushcfunction(L, probe_hook);
    lua_rawset(L, -3);
    lua_pop(L, 1);
    char *out = evaluate(sb, "{\"id\":\"x\"}");
    char expected[128];
    /* the plugin's own coroutines keep the hook either way; evaluate's has none when watched */
    snprintf(expected, sizeof expected, "\"details\":{\"create\":%d,\"evaluate\":%d,\"wrap\":%d}", LUA_MASKCOUNT,
             watch_enabled ? 0 : LUA_MASKCOUNT, LUA_MASKCOUNT);
    assert_contains(out, expected);
    free(out);
    unload(sb);
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {} /* a tick interrupts it: sleep the rest */
}

static void test_the_watch_ticks_while_evaluating_and_stops_when_idle(void **s) {
    (void)s;
    unsigned before = watch_ticks();
    check_killed_then_healthy("while true do end", "timeout"); /* 200 ms of evaluating */
    unsigned during = watch_ticks() - before;
    assert_true(during >= 5); /* a tick every 10 ms: 20 expected, fewer on a loaded machine */
    sleep_ms(50); /* the first idle tick disarms the timer */
    unsigned idle_start = watch_ticks();
    sleep_ms(100);
    assert_int_equal(watch_ticks(), idle_start);
}

/* A thread made with the signal blocked (a program that reads signals through signalfd
 * blocks them all, and threads inherit the mask) still stops a runaway evaluation. */
static void *loop_on_a_thread(void *arg) {
    (void)arg;
    check_killed_then_healthy("while true do end", "timeout");
    return NULL;
}

static void test_a_thread_that_blocks_the_signal_still_stops_runaways(void **s) {
    (void)s;
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGRTMIN + 1);
    assert_int_equal(pthread_sigmask(SIG_BLOCK, &block, &old), 0);
    pthread_t thread;
    int made = pthread_create(&thread, NULL, loop_on_a_thread, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    assert_int_equal(made, 0);
    assert_int_equal(pthread_join(thread, NULL), 0);
}

/* Run twice: with Lua's count hook, then with the time limit by signal (as the CLI runs). */
static const struct CMUnitTest limit_tests[] = {
    cmocka_unit_test(test_infinite_loop_gets_timeout_record_and_state_recovers),
    cmocka_unit_test(test_pcall_cannot_swallow_the_timeout),
    cmocka_unit_test(test_coroutine_loop_gets_timeout),
    cmocka_unit_test(test_allocation_bomb_gets_memory_record_and_state_recovers),
    cmocka_unit_test(test_string_rep_bomb_gets_memory_record),
    cmocka_unit_test(test_caught_memory_error_in_a_loop_is_still_killed),
    cmocka_unit_test(test_unbounded_recursion_is_a_runtime_error),
    cmocka_unit_test(test_random_numbers_after_a_wait_are_the_traces_own),
    cmocka_unit_test(test_the_print_budget_is_the_evaluations_own_across_waits),
    cmocka_unit_test(test_a_state_is_crowded_by_what_waiting_evaluations_hold),
    cmocka_unit_test(test_a_kill_leaves_suspended_evaluations_of_other_traces_alone),
    cmocka_unit_test(test_evaluate_coroutines_cannot_be_resumed_by_the_plugin),
    cmocka_unit_test(test_evaluations_run_without_the_count_hook_only_when_watched),
};

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_runtime_error_names_file_line_and_traceback),
        cmocka_unit_test(test_error_with_table_value_does_not_run_its_metamethods),
        cmocka_unit_test(test_withheld_libraries_are_refused_with_a_clear_message),
        cmocka_unit_test(test_require_only_loads_helpers_by_dotted_name),
        cmocka_unit_test(test_bytecode_is_refused_by_load),
        cmocka_unit_test(test_loaded_chunks_see_the_sandbox_not_a_hidden_global_table),
        cmocka_unit_test(test_string_metatable_and_globals_are_protected),
        cmocka_unit_test(test_globals_written_while_evaluating_are_refused),
        cmocka_unit_test(test_params_are_read_only_and_overrides_are_typed),
        cmocka_unit_test(test_load_errors_name_the_file_and_line),
        cmocka_unit_test(test_result_shapes_and_sorted_details),
        cmocka_unit_test(test_step_scope_runs_once_per_matching_step),
        cmocka_unit_test(test_random_numbers_depend_on_the_trace_not_the_state),
        cmocka_unit_test(test_a_plugin_replacing_randomseed_does_not_change_the_seeding),
        cmocka_unit_test(test_json_arrays_are_marked_and_nulls_kept_in_arrays),
        cmocka_unit_test(test_io_suspends_and_resumes_with_the_response),
        cmocka_unit_test(test_io_errors_are_http_records_unless_the_plugin_handles_them),
        cmocka_unit_test(test_io_is_refused_where_it_cannot_work),
    };
    int failed = cmocka_run_group_tests_name("sandbox", tests, NULL, NULL);
    failed += cmocka_run_group_tests_name("limits, count hook", limit_tests, NULL, NULL);
    /* out of range and a second, different signal are refused; the same one again is not */
    if (sandbox_watch_enable(0) != -1 || sandbox_watch_enable(100000) != -1 || sandbox_watch_enable(SIGRTMIN + 1) != 0 ||
        sandbox_watch_enable(SIGRTMIN + 2) != -1 || sandbox_watch_enable(SIGRTMIN + 1) != 0) {
        fprintf(stderr, "sandbox_watch_enable: unexpected answers\n");
        return failed + 1;
    }
    watch_enabled = true;
    failed += cmocka_run_group_tests_name("limits, time limit by signal", limit_tests, NULL, NULL);
    const struct CMUnitTest watch_only[] = {
        cmocka_unit_test(test_the_watch_ticks_while_evaluating_and_stops_when_idle),
        cmocka_unit_test(test_a_thread_that_blocks_the_signal_still_stops_runaways),
    };
    failed += cmocka_run_group_tests_name("the watch's timer", watch_only, NULL, NULL);
    return failed;
}
