/* Tests of the public API (host/assay.h): delivery order, input errors, close, misuse. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <pthread.h>
#include <unistd.h>

#include <uv.h>

#include "../../host/assay.h"
#include "../../host/curl_api.h"

typedef struct collected {
    char *ids[512];
    size_t count;
    size_t records;
    int closed;
    char last_error[256];
} collected;

static void on_result(assay_host *h, const assay_result *r, void *ctx) {
    (void)ctx;
    collected *c = assay_host_user_data(h);
    const char *id = assay_result_trace_id(r);
    c->ids[c->count++] = strdup(id ? id : "(input error)");
    c->records += assay_result_record_count(r);
    assay_record rec;
    if (assay_result_record(r, 0, &rec, sizeof rec) == ASSAY_OK && rec.error_message)
        snprintf(c->last_error, sizeof c->last_error, "%s", rec.error_message);
}

static void on_closed(assay_host *h, void *user_data) {
    (void)h;
    ((collected *)user_data)->closed++;
}

static char plugin_dir[64];

static int write_plugins(void **state) {
    (void)state;
    snprintf(plugin_dir, sizeof plugin_dir, "/tmp/assay-test-host-XXXXXX");
    if (!mkdtemp(plugin_dir)) return -1;
    char path[128];
    snprintf(path, sizeof path, "%s/slow.lua", plugin_dir);
    FILE *f = fopen(path, "w");
    /* uneven work so that traces finish out of order on several workers */
    fputs("return { name = 'slow', evaluate = function(t)\n"
          "  local n = tonumber(t.id) or 0\n"
          "  local x = 0 for i = 1, ((n * 7919) % 13) * 20000 do x = x + i end\n"
          "  return { score = (n % 10) / 10 } end }\n", f);
    fclose(f);
    return 0;
}

static int remove_plugins(void **state) {
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", plugin_dir);
    return system(cmd);
}

static assay_options *options(unsigned workers) {
    assay_options *o = assay_options_new();
    assert_int_equal(assay_options_add_plugin_path(o, plugin_dir), ASSAY_OK);
    assert_int_equal(assay_options_set_workers(o, workers), ASSAY_OK);
    return o;
}

/* A host with the test plugins and `workers` workers on a new loop, its results collected
 * in c: the set-up most tests share. */
static assay_host *host_on_loop(uv_loop_t *loop, collected *c, unsigned workers) {
    uv_loop_init(loop);
    assay_options *o = options(workers);
    assay_host *h;
    assert_int_equal(assay_host_new(&h, loop, o, on_result, c, NULL), ASSAY_OK);
    assay_options_free(o);
    return h;
}

static void test_results_arrive_in_submission_order_with_many_workers(void **state) {
    (void)state;
    uv_loop_t loop;
    collected c = {0};
    assay_host *h = host_on_loop(&loop, &c, 4);
    assert_int_equal(assay_host_worker_count(h), 4); /* the host says how many it started */
    for (int i = 0; i < 300; i++) {
        char json[64];
        int n = snprintf(json, sizeof json, "{\"id\":\"%d\"}", i);
        if (i == 150) assert_int_equal(assay_host_submit(h, "{bad", 4, "mem", 151, NULL), ASSAY_OK);
        else assert_int_equal(assay_host_submit(h, json, (size_t)n, "mem", (uint64_t)i + 1, NULL), ASSAY_OK);
    }
    assert_int_equal(assay_host_pending(h), 300);
    assay_host_close(h, NULL);
    assert_int_equal(assay_host_submit(h, "{}", 2, NULL, 0, NULL), ASSAY_ECLOSED);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(c.count, 300);
    for (int i = 0; i < 300; i++) {
        char expected[16];
        snprintf(expected, sizeof expected, "%d", i);
        assert_string_equal(c.ids[i], i == 150 ? "(input error)" : expected);
        free(c.ids[i]);
    }
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* Setters that take a count take 0 for the default (before, 0 was refused as invalid). */
static void test_setters_take_zero_for_the_default(void **state) {
    (void)state;
    assay_options *o = assay_options_new();
    assert_int_equal(assay_options_set_http_retry(o, 0, 0, 0), ASSAY_OK);
    assert_int_equal(assay_options_set_http_limits(o, 0, 0, 0, 0), ASSAY_OK);
    assert_int_equal(assay_options_set_workers(o, 0), ASSAY_OK);
    assert_int_equal(assay_options_set_http_retry(o, 0, 101, 0), ASSAY_EINVAL); /* past the bound still is */
    assert_int_equal(assay_options_set_http_limits(o, 65537, 0, 0, 0), ASSAY_EINVAL);
    assay_options_free(o);
}

static void test_input_errors_name_source_and_line(void **state) {
    (void)state;
    uv_loop_t loop;
    collected c = {0};
    assay_host *h = host_on_loop(&loop, &c, 1);
    assay_host_submit(h, "{\"id\": 3}", 9, "traces.jsonl", 42, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    assay_host_close(h, on_closed);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(c.count, 1);
    assert_string_equal(c.last_error, "traces.jsonl:42: field \"id\" must be a string, this is a number");
    assert_int_equal(c.closed, 1);
    free(c.ids[0]);
    uv_loop_close(&loop);
}

/* A worker's result (the doorbell) and the close (the mailbox) both waiting when the loop
 * polls, the doorbell first: the first callback delivers the result and finishes closing,
 * the second, in the same turn, must not finish it again (libuv asserted on closing the
 * doorbell twice). The first turn registers both with the loop, so that they come back in
 * the order they were signalled; the sleep lets the worker finish before the close. */
static void test_results_and_the_close_in_one_loop_turn(void **state) {
    (void)state;
    uv_loop_t loop;
    collected c = {0};
    assay_host *h = host_on_loop(&loop, &c, 1);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(assay_host_submit(h, "{\"id\": \"1\"}", 11, "t.jsonl", 1, NULL), ASSAY_OK);
    uv_sleep(300);
    assert_int_equal(assay_host_close(h, on_closed), ASSAY_OK);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(c.count, 1);
    assert_string_equal(c.ids[0], "1");
    assert_int_equal(c.closed, 1);
    free(c.ids[0]);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_host_creation_reports_configuration_errors(void **state) {
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    assay_host *h = (assay_host *)1;
    assay_error err;
    assay_options *o = options(2);
    assay_options_set_param(o, "slow.nope=1");
    assert_int_equal(assay_host_new(&h, &loop, o, NULL, NULL, &err), ASSAY_ECONFIG);
    assert_null(h);
    assert_string_equal(err.message, "param slow.nope: the plugin has no param 'nope' (see: assay list)");
    assay_options_free(o);

    o = options(2);
    assay_options_set_param(o, "other.x=1");
    assert_int_equal(assay_host_new(&h, &loop, o, NULL, NULL, &err), ASSAY_ECONFIG);
    assert_string_equal(err.message, "param other.x: no plugin named 'other' (loaded: slow)");
    assay_options_free(o);

    o = assay_options_new();
    assay_options_add_plugin_path(o, "/nonexistent/plugin.lua");
    assert_int_equal(assay_host_new(&h, &loop, o, NULL, NULL, &err), ASSAY_ECONFIG);
    assert_string_equal(err.message, "/nonexistent/plugin.lua: No such file or directory");
    assay_options_free(o);

    o = assay_options_new();
    assert_int_equal(assay_host_new(&h, &loop, o, NULL, NULL, &err), ASSAY_ECONFIG);
    assay_options_free(o);
    assert_int_equal(assay_host_new(NULL, &loop, NULL, NULL, NULL, NULL), ASSAY_EINVAL);
    /* a failed creation leaves nothing on the loop */
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_options_reject_malformed_values(void **state) {
    (void)state;
    assay_options *o = assay_options_new();
    assert_int_equal(assay_options_set_param(o, "noequals"), ASSAY_EINVAL);
    assert_int_equal(assay_options_set_param(o, "nodot=1"), ASSAY_EINVAL);
    assert_int_equal(assay_options_set_param(o, ".key=1"), ASSAY_EINVAL);
    assert_int_equal(assay_options_set_param(o, "a.=1"), ASSAY_EINVAL);
    assert_int_equal(assay_options_set_param(o, "a.b=x=y"), ASSAY_OK);
    assert_int_equal(assay_options_set_workers(o, 100000), ASSAY_EINVAL);
    assert_int_equal(assay_options_set_group_by(o, "metadata."), ASSAY_EINVAL);
    assert_int_equal(assay_options_add_plugin_path(o, NULL), ASSAY_EINVAL);
    assert_int_equal(assay_options_set_workers(NULL, 1), ASSAY_EINVAL);
    /* named LLM endpoints: a name of 1..32 of [A-Za-z0-9_-], an http(s) URL, distinct, at most 8 */
    assert_int_equal(assay_options_add_llm_endpoint(o, "", "http://x/v1", NULL), ASSAY_EINVAL);
    assert_int_equal(assay_options_add_llm_endpoint(o, "a b", "http://x/v1", NULL), ASSAY_EINVAL);
    assert_int_equal(assay_options_add_llm_endpoint(o, "a@b", "http://x/v1", NULL), ASSAY_EINVAL);
    assert_int_equal(assay_options_add_llm_endpoint(o, "ok", "ftp://x/v1", NULL), ASSAY_EINVAL);
    assert_int_equal(assay_options_add_llm_endpoint(o, "ok", NULL, NULL), ASSAY_EINVAL);
    assert_int_equal(assay_options_add_llm_endpoint(o, "e-0", "http://x/v1", NULL), ASSAY_OK);
    assert_int_equal(assay_options_add_llm_endpoint(o, "e-0", "http://y/v1", NULL), ASSAY_EINVAL);
    char name[16];
    for (int i = 1; i < ASSAY_MAX_LLM_ENDPOINTS; i++) {
        snprintf(name, sizeof name, "e-%d", i);
        assert_int_equal(assay_options_add_llm_endpoint(o, name, "https://x/v1/", i % 2 ? "key" : NULL), ASSAY_OK);
    }
    assert_int_equal(assay_options_add_llm_endpoint(o, "ninth", "http://y/v1", NULL), ASSAY_EINVAL);
    assay_options_free(o);
    assay_options_free(NULL);
    assert_string_equal(assay_strerror(ASSAY_ECONFIG), "configuration error");
    assert_string_equal(assay_error_kind_name(ASSAY_KIND_TIMEOUT), "timeout");
    assert_string_equal(assay_version(), ASSAY_VERSION_STRING);
}

/* ------------------------------------------------------------------- hot reload */

typedef struct labels {
    char label[1024][8];
    size_t count;
} labels;

static void on_labelled(assay_host *h, const assay_result *r, void *ctx) {
    (void)ctx;
    labels *l = assay_host_user_data(h);
    assay_record rec;
    assert_int_equal(assay_result_record(r, 0, &rec, sizeof rec), ASSAY_OK);
    snprintf(l->label[l->count++], sizeof l->label[0], "%s", rec.label ? rec.label : rec.error_message);
}

/* Writes dir/name.lua. */
static void write_plugin(const char *dir, const char *name, const char *body) {
    char path[160];
    snprintf(path, sizeof path, "%s/%s.lua", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(body, f);
    fclose(f);
}

static void write_version(const char *dir, const char *body) { write_plugin(dir, "ver", body); }

#define VERSION_PLUGIN(v) \
    "return { name = 'ver', params = { spin = 3000 }, evaluate = function(t, p)\n" \
    "  local x = 0 for i = 1, p.spin do x = x + i end\n" \
    "  return { label = '" v "' } end }\n"

static void test_reload_swaps_plugins_and_keeps_traces_in_flight(void **state) {
    (void)state;
    char dir[64];
    snprintf(dir, sizeof dir, "/tmp/assay-test-reload-XXXXXX");
    assert_non_null(mkdtemp(dir));
    write_version(dir, VERSION_PLUGIN("v1"));
    uv_loop_t loop;
    uv_loop_init(&loop);
    labels l = {0};
    assay_options *o = assay_options_new();
    assay_options_add_plugin_path(o, dir);
    assay_options_set_workers(o, 3);
    assay_options_set_param(o, "ver.spin=20000"); /* also proves the host kept its own copy */
    assay_host *h;
    assay_error err;
    assert_int_equal(assay_host_new(&h, &loop, o, on_labelled, &l, &err), ASSAY_OK);
    assay_options_free(o);
    for (int i = 0; i < 300; i++) assert_int_equal(assay_host_submit(h, "{\"id\":\"a\"}", 10, NULL, 0, NULL), ASSAY_OK);

    /* a broken file is refused and the loaded plugins stay */
    write_version(dir, "return { name = 'ver',\n evaluate = 42 }\n");
    assert_int_equal(assay_host_reload(h, &err), ASSAY_ECONFIG);
    assert_non_null(strstr(err.message, "ver.lua"));
    for (int i = 0; i < 100; i++) assert_int_equal(assay_host_submit(h, "{\"id\":\"b\"}", 10, NULL, 0, NULL), ASSAY_OK);

    write_version(dir, VERSION_PLUGIN("v2"));
    assert_int_equal(assay_host_reload(h, &err), ASSAY_OK);
    assert_true(assay_host_pending(h) > 0); /* the swap happened with traces in flight */
    for (int i = 0; i < 300; i++) assert_int_equal(assay_host_submit(h, "{\"id\":\"c\"}", 10, NULL, 0, NULL), ASSAY_OK);
    assert_int_equal(assay_host_close(h, NULL), ASSAY_OK);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(l.count, 700);
    for (size_t i = 0; i < 700; i++) assert_string_equal(l.label[i], i < 400 ? "v1" : "v2");
    assert_int_equal(uv_loop_close(&loop), 0);
    char cmd[96];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* ------------------------------------------------------------------ thread mode */

typedef struct threaded {
    size_t count;      /* touched only on the host's thread */
    pthread_t callback_thread;
    int on_one_thread;
    int close_from_callback;
    int closed;
} threaded;

static void on_threaded(assay_host *h, const assay_result *r, void *ctx) {
    (void)r, (void)ctx;
    threaded *t = assay_host_user_data(h);
    if (t->count++ == 0) {
        t->callback_thread = pthread_self();
        t->close_from_callback = assay_host_close(h, NULL);
    }
    if (!pthread_equal(t->callback_thread, pthread_self())) t->on_one_thread = 0;
}

static void on_threaded_closed(assay_host *h, void *user_data) {
    (void)h;
    ((threaded *)user_data)->closed++;
}

static void *submitter(void *arg) {
    assay_host *h = arg;
    for (int i = 0; i < 250; i++) {
        char json[48];
        int n = snprintf(json, sizeof json, "{\"id\":\"%d\"}", i);
        if (assay_host_submit(h, json, (size_t)n, NULL, 0, NULL) != ASSAY_OK) return (void *)1;
    }
    return NULL;
}

static void test_thread_mode_takes_submissions_from_any_thread(void **state) {
    (void)state;
    threaded t = {.on_one_thread = 1};
    assay_options *o = options(2);
    assay_host *h;
    assay_error err;
    assert_int_equal(assay_host_new(&h, NULL, o, on_threaded, &t, &err), ASSAY_OK);
    assay_options_free(o);
    pthread_t threads[4];
    for (int i = 0; i < 4; i++) assert_int_equal(pthread_create(&threads[i], NULL, submitter, h), 0);
    for (int i = 0; i < 4; i++) {
        void *failed;
        pthread_join(threads[i], &failed);
        assert_null(failed);
    }
    assert_int_equal(assay_host_plugin_count(h), 1);
    assert_int_equal(assay_host_close(h, on_threaded_closed), ASSAY_OK);
    /* close returned: everything was delivered, on the host's own thread */
    assert_int_equal(t.count, 1000);
    assert_int_equal(t.closed, 1);
    assert_true(t.on_one_thread);
    assert_false(pthread_equal(t.callback_thread, pthread_self()));
    assert_int_equal(t.close_from_callback, ASSAY_EINVAL);
}

/* ------------------------------------------------------------- reused jobs */

typedef struct wave {
    char *jsonl[64];
    size_t records[64];
    size_t count;
} wave;

static void on_wave(assay_host *h, const assay_result *r, void *ctx) {
    (void)ctx;
    wave *w = assay_host_user_data(h);
    size_t n;
    const char *text = assay_result_jsonl(r, &n);
    w->records[w->count] = assay_result_record_count(r);
    w->jsonl[w->count++] = strndup(text, n);
}

static void submit_padded(assay_host *h, int id, size_t pad, uint64_t line) {
    size_t cap = pad + 64;
    char *json = malloc(cap);
    assert_non_null(json);
    int n = snprintf(json, cap, "{\"id\":\"%d\",\"pad\":\"", id);
    memset(json + n, 'x', pad);
    memcpy(json + n + pad, "\"}", 3);
    assert_int_equal(assay_host_submit(h, json, (size_t)n + pad + 2, "w.jsonl", line, NULL), ASSAY_OK);
    free(json);
}

/* The host keeps delivered jobs, with their record lists' memory, for the next traces: a
 * short trace after long ones or after a record too large to keep, an input error after
 * records, a long line, must each come back with their own single record and nothing of
 * the last. */
static void test_a_reused_job_carries_nothing_of_its_last_trace(void **state) {
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    wave w = {0};
    assay_options *o = options(1);
    assay_host *h;
    assert_int_equal(assay_host_new(&h, &loop, o, on_wave, &w, NULL), ASSAY_OK);
    assay_options_free(o);
    for (int i = 1; i <= 20; i++) submit_padded(h, i, 20000, (uint64_t)i);
    /* a record past the 64 KiB a spare keeps: its list is freed, not kept */
    static char big_id[70000 + 16];
    memcpy(big_id, "{\"id\":\"", 7);
    memset(big_id + 7, 'y', 70000);
    memcpy(big_id + 7 + 70000, "\"}", 3);
    assert_int_equal(assay_host_submit(h, big_id, strlen(big_id), "w.jsonl", 100, NULL), ASSAY_OK);
    while (w.count < 21) uv_run(&loop, UV_RUN_ONCE); /* delivered: their jobs are spares now */
    assert_true(strlen(w.jsonl[20]) > 70000);
    const char *second[] = {"{\"id\":\"21\"}", "{bad", NULL, "{\"id\":\"24\"}",
                            "{\"id\":\"25\",\"x\":\"a\\u0000b\"}", "{\"id\":\"26\"}"};
    for (int i = 0; i < 6; i++) {
        if (!second[i]) submit_padded(h, 21 + i, 100000, 21 + (uint64_t)i);
        else assert_int_equal(assay_host_submit(h, second[i], strlen(second[i]), "w.jsonl", 21 + (uint64_t)i, NULL), ASSAY_OK);
    }
    assay_host_close(h, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(w.count, 27);
    for (size_t i = 0; i < w.count; i++) assert_int_equal(w.records[i], 1);
    const char *expected[] = {"\"trace_id\":\"21\"", "w.jsonl:22: not valid JSON", "\"trace_id\":\"23\"",
                              "\"trace_id\":\"24\"", "w.jsonl:25: contains \\\\u0000", "\"trace_id\":\"26\""};
    for (int i = 0; i < 6; i++) {
        const char *got = w.jsonl[21 + i];
        if (!strstr(got, expected[i])) fail_msg("result %d: %s lacks %s", 21 + i, got, expected[i]);
        assert_null(strstr(got, "xxxx"));
        assert_null(strstr(got, "yyyy"));
        assert_int_equal(strchr(got, '\n') - got + 1, (long)strlen(got)); /* one line */
    }
    assert_non_null(strstr(w.jsonl[21], "\"score\":0.1"));
    assert_non_null(strstr(w.jsonl[26], "\"score\":0.6"));
    for (size_t i = 0; i < w.count; i++) free(w.jsonl[i]);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* -------------------------------------------------------------- a record's spans */

typedef struct spans {
    char lines[4][256], details[4][64];
    size_t count;
    char jsonl[1024];
} spans;

static void copy_span(char *to, size_t cap, const char *s, size_t n) {
    assert_true(n < cap);
    memcpy(to, s, n);
    to[n] = '\0';
}

static void on_spans(assay_host *h, const assay_result *r, void *ctx) {
    (void)ctx;
    spans *s = assay_host_user_data(h);
    size_t n;
    const char *all = assay_result_jsonl(r, &n);
    copy_span(s->jsonl, sizeof s->jsonl, all, n);
    s->count = assay_result_record_count(r);
    for (size_t i = 0; i < s->count && i < 4; i++) {
        const char *line = assay_result_record_jsonl(r, i, &n);
        assert_non_null(line);
        copy_span(s->lines[i], sizeof s->lines[i], line, n);
        const char *details = assay_result_record_details(r, i, &n);
        if (details) copy_span(s->details[i], sizeof s->details[i], details, n);
        else strcpy(s->details[i], "(none)");
    }
    assert_null(assay_result_record_jsonl(r, s->count, &n));
    assert_null(assay_result_record_details(r, s->count, &n));
}

/* Three plugins, so that the records of the second and third are moved from their own
 * buffers into the result's: each record's line and details must still be its own. */
static void test_each_record_has_its_line_and_details(void **state) {
    (void)state;
    char dir[64] = "/tmp/assay-test-spans-XXXXXX", path[128];
    assert_non_null(mkdtemp(dir));
    static const char *const plugins[][2] = {
        {"a", "return { name = 'a', evaluate = function() return { score = 1, details = { n = 1 } } end }"},
        {"b", "return { name = 'b', evaluate = function() return 0.5 end }"},
        {"c", "return { name = 'c', evaluate = function() return { pass = true, details = { s = 'x' } } end }"},
    };
    for (int i = 0; i < 3; i++) write_plugin(dir, plugins[i][0], plugins[i][1]);
    uv_loop_t loop;
    uv_loop_init(&loop);
    assay_options *o = assay_options_new();
    assert_int_equal(assay_options_add_plugin_path(o, dir), ASSAY_OK);
    assert_int_equal(assay_options_set_record_timing(o, 0), ASSAY_OK);
    spans s;
    memset(&s, 0, sizeof s);
    assay_host *h;
    assert_int_equal(assay_host_new(&h, &loop, o, on_spans, &s, NULL), ASSAY_OK);
    assay_options_free(o);
    assert_int_equal(assay_host_submit(h, "{\"id\":\"t1\"}", 11, NULL, 1, NULL), ASSAY_OK);
    assay_host_close(h, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(s.count, 3);
    assert_string_equal(s.lines[0], "{\"trace_id\":\"t1\",\"evaluator\":\"a\",\"step\":null,\"score\":1,\"pass\":null,"
                                    "\"label\":null,\"details\":{\"n\":1},\"error\":null,\"ms\":null}");
    assert_string_equal(s.lines[1], "{\"trace_id\":\"t1\",\"evaluator\":\"b\",\"step\":null,\"score\":0.5,\"pass\":null,"
                                    "\"label\":null,\"details\":null,\"error\":null,\"ms\":null}");
    assert_string_equal(s.lines[2], "{\"trace_id\":\"t1\",\"evaluator\":\"c\",\"step\":null,\"score\":null,\"pass\":true,"
                                    "\"label\":null,\"details\":{\"s\":\"x\"},\"error\":null,\"ms\":null}");
    char joined[1024];
    snprintf(joined, sizeof joined, "%s\n%s\n%s\n", s.lines[0], s.lines[1], s.lines[2]);
    assert_string_equal(s.jsonl, joined);
    assert_string_equal(s.details[0], "{\"n\":1}");
    assert_string_equal(s.details[1], "(none)");
    assert_string_equal(s.details[2], "{\"s\":\"x\"}");

    assert_int_equal(uv_loop_close(&loop), 0);

    /* an input error: one record, its line, no details */
    uv_loop_init(&loop);
    o = assay_options_new();
    assert_int_equal(assay_options_add_plugin_path(o, dir), ASSAY_OK);
    memset(&s, 0, sizeof s);
    assert_int_equal(assay_host_new(&h, &loop, o, on_spans, &s, NULL), ASSAY_OK);
    assay_options_free(o);
    assert_int_equal(assay_host_submit(h, "{bad", 4, "in.jsonl", 9, NULL), ASSAY_OK);
    assay_host_close(h, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(s.count, 1);
    static const char head[] = "{\"trace_id\":null,\"evaluator\":null,\"line\":9,\"file\":\"in.jsonl\",\"error\":";
    assert_true(strncmp(s.lines[0], head, sizeof head - 1) == 0);
    assert_int_equal(strlen(s.lines[0]) + 1, strlen(s.jsonl));
    assert_string_equal(s.details[0], "(none)");
    assert_int_equal(uv_loop_close(&loop), 0);
    snprintf(path, sizeof path, "rm -rf %s", dir);
    assert_int_equal(system(path), 0);
}

/* ------------------------------------------------------------------ shared traces */

typedef struct one_by_one {
    char jsonl[8][1024];
    size_t count;
    int delivered;
} one_by_one;

static void on_one(assay_host *h, const assay_result *r, void *ctx) {
    (void)ctx;
    one_by_one *o = assay_host_user_data(h);
    size_t n;
    const char *all = assay_result_jsonl(r, &n);
    assert_true(o->count < 8);
    copy_span(o->jsonl[o->count++], sizeof o->jsonl[0], all, n);
    o->delivered = 1;
}

/* Submits each trace alone and waits for it, as a service does; returns how many traces
 * the host shared among its workers. */
static uint64_t score_one_by_one(const char *dir, unsigned workers, const char *const *traces, size_t count,
                                 one_by_one *out) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    assay_options *o = assay_options_new();
    assert_int_equal(assay_options_add_plugin_path(o, dir), ASSAY_OK);
    assert_int_equal(assay_options_set_workers(o, workers), ASSAY_OK);
    assert_int_equal(assay_options_set_record_timing(o, 0), ASSAY_OK);
    memset(out, 0, sizeof *out);
    assay_host *h;
    assert_int_equal(assay_host_new(&h, &loop, o, on_one, out, NULL), ASSAY_OK);
    assay_options_free(o);
    for (size_t i = 0; i < count; i++) {
        out->delivered = 0;
        assert_int_equal(assay_host_submit(h, traces[i], strlen(traces[i]), "mem", i + 1, NULL), ASSAY_OK);
        while (!out->delivered) uv_run(&loop, UV_RUN_ONCE);
    }
    uint64_t shared = assay_host_shared(h);
    assay_host_close(h, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    return shared;
}

/* A trace submitted to an idle host runs its plugins on every idle worker at once: the
 * records must be exactly those of one worker, in plugin order, input errors and raised
 * errors included. */
static void test_idle_workers_share_a_trace_and_keep_plugin_order(void **state) {
    (void)state;
    char dir[64] = "/tmp/assay-test-share-XXXXXX", path[128];
    assert_non_null(mkdtemp(dir));
    static const char *const plugins[][2] = {
        {"a_slow", "return { name = 'a_slow', evaluate = function(t)\n"
                   "  local x = 0 for i = 1, 300000 do x = x + i % 7 end\n"
                   "  return { score = 0.25, details = { x = x, steps = #t.steps } } end }"},
        {"b_fast", "return { name = 'b_fast', evaluate = function(t) return { pass = t.steps[1] ~= nil } end }"},
        {"c_raises", "return { name = 'c_raises', evaluate = function(t)\n"
                     "  if t.id == 'boom' then error('no such thing') end return 1 end }"},
        {"d_steps", "return { name = 'd_steps', scope = 'search', evaluate = function(t, p, step, i)\n"
                    "  return { score = i / 10, label = step.query } end }"},
    };
    for (int i = 0; i < 4; i++) write_plugin(dir, plugins[i][0], plugins[i][1]);
    static const char *const traces[] = {
        ("{\"id\":\"t1\",\"steps\":[{\"type\":\"search\",\"query\":\"q1\"},{\"type\":\"fetch\"},"
         "{\"type\":\"search\",\"query\":\"q2\"}]}"), /* one string: parenthesized for clang */
        "{\"id\":\"boom\",\"steps\":[]}",
        "{not json",
        "{\"id\":\"t3\",\"steps\":[{\"type\":\"search\",\"query\":\"only\"}]}",
    };
    one_by_one alone, shared2, shared4;
    assert_int_equal(score_one_by_one(dir, 1, traces, 4, &alone), 0);
    /* the line that is not JSON is never shared: it has no plugins to run */
    assert_int_equal(score_one_by_one(dir, 2, traces, 4, &shared2), 3);
    assert_int_equal(score_one_by_one(dir, 4, traces, 4, &shared4), 3);
    assert_int_equal(alone.count, 4);
    assert_int_equal(shared2.count, 4);
    assert_int_equal(shared4.count, 4);
    assert_string_equal(alone.jsonl[0],
        "{\"trace_id\":\"t1\",\"evaluator\":\"a_slow\",\"step\":null,\"score\":0.25,\"pass\":null,\"label\":null,"
        "\"details\":{\"steps\":3,\"x\":899998},\"error\":null,\"ms\":null}\n"
        "{\"trace_id\":\"t1\",\"evaluator\":\"b_fast\",\"step\":null,\"score\":null,\"pass\":true,\"label\":null,"
        "\"details\":null,\"error\":null,\"ms\":null}\n"
        "{\"trace_id\":\"t1\",\"evaluator\":\"c_raises\",\"step\":null,\"score\":1,\"pass\":null,\"label\":null,"
        "\"details\":null,\"error\":null,\"ms\":null}\n"
        "{\"trace_id\":\"t1\",\"evaluator\":\"d_steps\",\"step\":0,\"score\":0.1,\"pass\":null,\"label\":\"q1\","
        "\"details\":null,\"error\":null,\"ms\":null}\n"
        "{\"trace_id\":\"t1\",\"evaluator\":\"d_steps\",\"step\":2,\"score\":0.3,\"pass\":null,\"label\":\"q2\","
        "\"details\":null,\"error\":null,\"ms\":null}\n");
    assert_non_null(strstr(alone.jsonl[1], "\"evaluator\":\"c_raises\",\"step\":null,\"score\":null,\"pass\":null,"
                                           "\"label\":null,\"details\":null,\"error\":{\"kind\":\"runtime\""));
    for (int i = 0; i < 4; i++) {
        assert_string_equal(shared2.jsonl[i], alone.jsonl[i]);
        assert_string_equal(shared4.jsonl[i], alone.jsonl[i]);
    }
    snprintf(path, sizeof path, "rm -rf %s", dir);
    assert_int_equal(system(path), 0);
}

/* Idle workers claim a shared trace's plugins slowest first (measured as they run): the
 * records stay those of one worker, in plugin order, when the slowest plugin is the last
 * one loaded. */
static void test_shared_traces_claimed_slowest_first_keep_plugin_order(void **state) {
    (void)state;
    char dir[64] = "/tmp/assay-test-order-XXXXXX", path[128];
    assert_non_null(mkdtemp(dir));
    static const char *const plugins[][2] = {
        {"a_fast", "return { name = 'a_fast', evaluate = function(t) return { score = 0.5, label = t.id } end }"},
        {"b_mid", "return { name = 'b_mid', evaluate = function(t)\n"
                  "  local x = 0 for i = 1, 20000 do x = x + i % 3 end return { details = { x = x } } end }"},
        {"z_slow", "return { name = 'z_slow', evaluate = function(t)\n"
                   "  local x = 0 for i = 1, 200000 do x = x + i % 5 end return { details = { x = x } } end }"},
    };
    for (int i = 0; i < 3; i++) write_plugin(dir, plugins[i][0], plugins[i][1]);
    static const char *const traces[] = {"{\"id\":\"o1\"}", "{\"id\":\"o2\"}", "{\"id\":\"o3\"}",
                                         "{\"id\":\"o4\"}", "{\"id\":\"o5\"}", "{\"id\":\"o6\"}"};
    one_by_one alone, shared;
    assert_int_equal(score_one_by_one(dir, 1, traces, 6, &alone), 0);
    assert_int_equal(score_one_by_one(dir, 3, traces, 6, &shared), 6);
    assert_string_equal(alone.jsonl[5],
        "{\"trace_id\":\"o6\",\"evaluator\":\"a_fast\",\"step\":null,\"score\":0.5,\"pass\":null,\"label\":\"o6\","
        "\"details\":null,\"error\":null,\"ms\":null}\n"
        "{\"trace_id\":\"o6\",\"evaluator\":\"b_mid\",\"step\":null,\"score\":null,\"pass\":null,\"label\":null,"
        "\"details\":{\"x\":20001},\"error\":null,\"ms\":null}\n"
        "{\"trace_id\":\"o6\",\"evaluator\":\"z_slow\",\"step\":null,\"score\":null,\"pass\":null,\"label\":null,"
        "\"details\":{\"x\":400000},\"error\":null,\"ms\":null}\n");
    for (int i = 0; i < 6; i++) assert_string_equal(shared.jsonl[i], alone.jsonl[i]);
    snprintf(path, sizeof path, "rm -rf %s", dir);
    assert_int_equal(system(path), 0);
}

/* ------------------------------------------------------------------------ misuse */

static void test_misuse_is_refused_not_crashed(void **state) {
    (void)state;
    assert_int_equal(assay_host_submit(NULL, "{}", 2, NULL, 0, NULL), ASSAY_EINVAL);
    assert_int_equal(assay_host_submit_input_error(NULL, NULL, 0, "x", NULL), ASSAY_EINVAL);
    assert_int_equal(assay_host_reload(NULL, NULL), ASSAY_EINVAL);
    assert_int_equal(assay_host_close(NULL, NULL), ASSAY_EINVAL);
    assert_int_equal(assay_host_pending(NULL), 0);
    assert_int_equal(assay_host_plugin_count(NULL), 0);
    assert_null(assay_host_user_data(NULL));
    assert_null(assay_result_trace_id(NULL));
    assert_int_equal(assay_result_record_count(NULL), 0);
    assert_null(assay_result_jsonl(NULL, NULL));
    assert_null(assay_result_record_jsonl(NULL, 0, NULL));
    assert_null(assay_result_record_details(NULL, 0, NULL));
    assay_io_stats stats;
    assay_host_io_stats(NULL, &stats, sizeof stats);
    assert_int_equal(stats.requests, 0);

    uv_loop_t loop;
    collected c = {0};
    assay_host *h = host_on_loop(&loop, &c, 1);
    assert_int_equal(assay_host_submit(h, NULL, 3, NULL, 0, NULL), ASSAY_EINVAL);
    assert_int_equal(assay_host_submit_input_error(h, NULL, 0, NULL, NULL), ASSAY_EINVAL);
    assay_plugin_info info;
    assert_int_equal(assay_host_plugin_info(h, 1, &info, sizeof info), ASSAY_EINVAL);
    assert_int_equal(assay_host_plugin_info(h, 0, NULL, sizeof info), ASSAY_EINVAL);
    assert_int_equal(assay_host_plugin_info(h, 0, &info, sizeof info), ASSAY_OK);
    assert_string_equal(info.name, "slow");
    /* a program built against an older assay.h passes a smaller struct: the fields it knows
     * are filled, the bytes past them are not touched */
    unsigned char older[sizeof info + 16];
    memset(older, 0xAB, sizeof older);
    size_t known = offsetof(assay_plugin_info, scope);
    assert_int_equal(assay_host_plugin_info(h, 0, (assay_plugin_info *)(void *)older, known), ASSAY_OK);
    assert_string_equal(((assay_plugin_info *)(void *)older)->name, "slow");
    for (size_t i = known; i < sizeof older; i++) assert_int_equal(older[i], 0xAB);
    /* one built against a newer assay.h passes a larger one: the fields this library does
     * not know read as zero */
    memset(older, 0xAB, sizeof older);
    assert_int_equal(assay_host_plugin_info(h, 0, (assay_plugin_info *)(void *)older, sizeof older), ASSAY_OK);
    for (size_t i = sizeof info; i < sizeof older; i++) assert_int_equal(older[i], 0);
    assert_int_equal(assay_host_plugin_info(h, 0, &info, 0), ASSAY_EINVAL);
    /* an empty submission is an input error record, not a crash */
    assert_int_equal(assay_host_submit(h, NULL, 0, NULL, 7, NULL), ASSAY_OK);
    assert_int_equal(assay_host_close(h, on_closed), ASSAY_OK);
    /* the documented guard: until on_closed fires, more closes and submissions are refused */
    assert_int_equal(assay_host_close(h, on_closed), ASSAY_ECLOSED);
    assert_int_equal(assay_host_submit(h, "{}", 2, NULL, 0, NULL), ASSAY_ECLOSED);
    assert_int_equal(assay_host_submit_input_error(h, NULL, 0, "x", NULL), ASSAY_ECLOSED);
    assert_int_equal(assay_host_reload(h, NULL), ASSAY_ECLOSED);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(c.closed, 1);
    assert_int_equal(c.count, 1);
    assert_string_equal(c.ids[0], "(input error)");
    free(c.ids[0]);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* The threads of this process, from /proc. */
static int thread_count(void) {
    DIR *d = opendir("/proc/self/task");
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

/* Runs one trace through a one-worker host on its own loop; returns the threads counted
 * while the host was still up, after the result came. */
static int threads_while_running(const char *plugin, collected *c) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    assay_options *o = assay_options_new();
    assert_int_equal(assay_options_add_plugin_path(o, plugin), ASSAY_OK);
    assert_int_equal(assay_options_set_workers(o, 1), ASSAY_OK);
    assert_int_equal(assay_options_set_http_retry(o, 5000, 1, 0), ASSAY_OK);
    assay_host *h;
    assay_error err;
    assert_int_equal(assay_host_new(&h, &loop, o, on_result, c, &err), ASSAY_OK);
    assay_options_free(o);
    assert_int_equal(assay_host_submit(h, "{\"id\":\"1\"}", 10, "mem", 1, NULL), ASSAY_OK);
    while (c->count == 0) uv_run(&loop, UV_RUN_ONCE);
    int threads = thread_count();
    assay_host_close(h, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    free(c->ids[0]);
    return threads;
}

/* The HTTP client (libcurl's TLS set-up, 2.5 MB resident, and a thread) starts with the
 * first request: a host whose plugins make none runs its workers only. */
/* Whether a libcurl is in this process's memory map. */
static bool libcurl_is_mapped(void) {
    FILE *f = fopen("/proc/self/maps", "r");
    assert_non_null(f);
    char line[512];
    bool found = false;
    while (!found && fgets(line, sizeof line, f)) found = strstr(line, "/libcurl") != NULL;
    fclose(f);
    return found;
}

/* The three ways opening libcurl ends: a name that opens nothing (the first dlerror is
 * kept, the next name tried), a library that is not libcurl, and libcurl itself. */
static void test_libcurl_is_opened_by_name_or_says_why_not(void **state) {
    (void)state;
    curl_api api;
    char err[512] = "";
    const char *none[] = {"libassay-no-such-library.so.9"};
    assert_false(curl_api_open(none, 1, &api, err, sizeof err));
    assert_non_null(strstr(err, "libcurl could not be loaded (libassay-no-such-library.so.9"));
    assert_non_null(strstr(err, "apt-get install libcurl4"));
    const char *not_curl[] = {"libassay-no-such-library.so.9", "libm.so.6"};
    assert_false(curl_api_open(not_curl, 2, &api, err, sizeof err));
    assert_string_equal(err, "libm.so.6 has no curl_global_init (not libcurl, or too old a one)");
    const char *curl[] = {"libassay-no-such-library.so.9", "libcurl.so.4"};
    memset(&api, 0, sizeof api);
    assert_true(curl_api_open(curl, 2, &api, err, sizeof err));
    assert_non_null(api.multi_assign); /* the last one looked up */
    assert_string_equal(api.easy_strerror(CURLE_COULDNT_CONNECT), "Couldn't connect to server");
}

static void test_http_client_starts_with_the_first_request(void **state) {
    (void)state;
    char quiet[128], caller[128];
    snprintf(quiet, sizeof quiet, "%s/quiet.lua", plugin_dir);
    snprintf(caller, sizeof caller, "%s/caller.lua", plugin_dir);
    FILE *f = fopen(quiet, "w");
    fputs("return { name = 'quiet', evaluate = function(t) return 1 end }\n", f);
    fclose(f);
    f = fopen(caller, "w");
    /* port 1 on loopback: refused at once */
    fputs("return { name = 'caller', evaluate = function(t)\n"
          "  assay.http.request{ url = 'http://127.0.0.1:1/' }\n"
          "  return 1 end }\n", f);
    fclose(f);
    int before = thread_count();
    collected c = {0};
    assert_int_equal(threads_while_running(quiet, &c), before + 1); /* the worker */
    assert_string_equal(c.last_error, "");
    assert_false(libcurl_is_mapped()); /* not even opened (host/curl_api.c) */
    collected d = {0};
    assert_int_equal(threads_while_running(caller, &d), before + 2); /* the worker and the client */
    assert_non_null(strstr(d.last_error, "127.0.0.1:1")); /* asked, and answered with the failure */
    assert_int_equal(thread_count(), before);
    assert_true(libcurl_is_mapped());
    remove(quiet);
    remove(caller);
}

/* The responder of docs/embedding.md: answers every chat, leaves the rest to the network. */
static int responder(void *ctx, assay_request *request) {
    (void)ctx;
    if (assay_request_get_kind(request) != ASSAY_REQUEST_CHAT) return 0; /* to the network */
    const char *answer = "{\"choices\":[{\"message\":{\"content\":\"{\\\"score\\\": 5}\"}}]}";
    assay_request_reply(request, 200, answer, strlen(answer));
    return 1;
}

typedef struct gateway {
    _Atomic int chats, https;
    int wrong; /* requests that were not what the plugin asked, or not from its trace */
} gateway;

/* Answers chats from the request itself and fails every http request. */
static int checking_responder(void *ctx, assay_request *request) {
    gateway *g = ctx;
    const char *trace = assay_request_submit_ctx(request);
    size_t len;
    const char *body = assay_request_body(request, &len);
    if (!trace || strcmp(trace, "the trace") != 0 || strlen(body) != len) g->wrong++;
    if (assay_request_get_kind(request) == ASSAY_REQUEST_HTTP) {
        g->https++;
        if (strcmp(assay_request_url(request), "http://127.0.0.1:1/x") || strcmp(assay_request_method(request), "GET"))
            g->wrong++;
        assay_request_fail(request, "gateway says no");
        return 1;
    }
    g->chats++;
    /* no model configured: the request asks for "responder" */
    if (strcmp(assay_request_url(request), "/chat/completions") || !strstr(body, "\"model\":\"responder\"") ||
        !strstr(body, "how warm is it"))
        g->wrong++;
    const char *answer = "{\"choices\":[{\"message\":{\"content\":\"warm\"}}]}";
    assay_request_reply(request, 200, answer, strlen(answer));
    return 1;
}

/* Answers every request with 3 MB: more than a plugin under a 2 MiB limit may hold. */
static int flooding_responder(void *ctx, assay_request *request) {
    size_t n = 3u << 20;
    char *body = malloc(n);
    assert_non_null(body);
    memset(body, 'x', n);
    *(int *)ctx = assay_request_reply(request, 200, body, n);
    free(body);
    return 1;
}

static void run_with_responder(const char *dir, assay_responder_cb cb, void *ctx, unsigned memory_mb, one_by_one *out) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    assay_options *o = assay_options_new();
    assert_int_equal(assay_options_add_plugin_path(o, dir), ASSAY_OK);
    assert_int_equal(assay_options_set_workers(o, 1), ASSAY_OK);
    assert_int_equal(assay_options_set_record_timing(o, 0), ASSAY_OK);
    assert_int_equal(assay_options_set_http_retry(o, 2000, 1, 0), ASSAY_OK);
    assert_int_equal(assay_options_set_responder(o, cb, ctx), ASSAY_OK);
    assert_int_equal(assay_options_set_memory_mb(o, memory_mb), ASSAY_OK);
    memset(out, 0, sizeof *out);
    assay_host *h;
    assert_int_equal(assay_host_new(&h, &loop, o, on_one, out, NULL), ASSAY_OK);
    assay_options_free(o);
    const char *trace = "{\"id\":\"t\",\"q\":\"how warm is it\"}";
    assert_int_equal(assay_host_submit(h, trace, strlen(trace), "mem", 1, "the trace"), ASSAY_OK);
    assay_host_close(h, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    assert_int_equal(out->count, 1);
}

/* A responder answers plugins' requests before the network, with no LLM endpoint set; what
 * it declines goes to the network (port 1 on loopback: refused at once). */
static void test_a_responder_answers_requests_before_the_network(void **state) {
    (void)state;
    char dir[] = "/tmp/assay-test-responder-XXXXXX";
    assert_non_null(mkdtemp(dir));
    write_plugin(dir, "asks", "return { name = 'asks', evaluate = function(t)\n"
                              "  local a = assay.llm.chat{ messages = { { role = 'user', content = t.q } } }\n"
                              "  local ok, err = pcall(assay.http.request, { url = 'http://127.0.0.1:1/x' })\n"
                              "  return { label = a.text .. ' | ' .. (ok and 'ok' or err) } end }\n");
    one_by_one out;
    run_with_responder(dir, responder, NULL, 0, &out);
    assert_non_null(strstr(out.jsonl[0], "\"label\":\"{\\\"score\\\": 5} | http: GET http://127.0.0.1:1/x: "));
    gateway g = {0};
    run_with_responder(dir, checking_responder, &g, 0, &out);
    assert_non_null(strstr(out.jsonl[0], "\"label\":\"warm | gateway says no\""));
    assert_int_equal(g.chats, 1);
    assert_int_equal(g.https, 1);
    assert_int_equal(g.wrong, 0);
    /* an answer counts against the plugin's memory limit, as one from the network does */
    int status = -1;
    run_with_responder(dir, flooding_responder, &status, 2, &out);
    assert_int_equal(status, ASSAY_OK);
    assert_non_null(strstr(out.jsonl[0], "\"kind\":\"http\",\"message\":\"http: the responses of this call are larger "
                                         "than the plugin's memory limit (2 MiB)\""));
    char cmd[96];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_results_arrive_in_submission_order_with_many_workers),
        cmocka_unit_test(test_setters_take_zero_for_the_default),
        cmocka_unit_test(test_input_errors_name_source_and_line),
        cmocka_unit_test(test_results_and_the_close_in_one_loop_turn),
        cmocka_unit_test(test_host_creation_reports_configuration_errors),
        cmocka_unit_test(test_options_reject_malformed_values),
        cmocka_unit_test(test_reload_swaps_plugins_and_keeps_traces_in_flight),
        cmocka_unit_test(test_thread_mode_takes_submissions_from_any_thread),
        cmocka_unit_test(test_each_record_has_its_line_and_details),
        cmocka_unit_test(test_a_reused_job_carries_nothing_of_its_last_trace),
        cmocka_unit_test(test_idle_workers_share_a_trace_and_keep_plugin_order),
        cmocka_unit_test(test_shared_traces_claimed_slowest_first_keep_plugin_order),
        cmocka_unit_test(test_misuse_is_refused_not_crashed),
        cmocka_unit_test(test_http_client_starts_with_the_first_request),
        cmocka_unit_test(test_a_responder_answers_requests_before_the_network),
        cmocka_unit_test(test_libcurl_is_opened_by_name_or_says_why_not),
    };
    return cmocka_run_group_tests(tests, write_plugins, remove_plugins);
}
