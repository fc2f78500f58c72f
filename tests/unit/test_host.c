/* Tests of the public API (host/assay.h): delivery order, input errors, close, misuse. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../host/assay.h"

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
    if (assay_result_record(r, 0, &rec) == ASSAY_OK && rec.error_message)
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

static void test_results_arrive_in_submission_order_with_many_workers(void **state) {
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    collected c = {0};
    assay_options *o = options(4);
    assay_host *h;
    assay_error err;
    assert_int_equal(assay_host_new(&h, &loop, o, on_result, &c, &err), ASSAY_OK);
    assay_options_free(o);
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

static void test_input_errors_name_source_and_line(void **state) {
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    collected c = {0};
    assay_options *o = options(1);
    assay_host *h;
    assert_int_equal(assay_host_new(&h, &loop, o, on_result, &c, NULL), ASSAY_OK);
    assay_options_free(o);
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
    assay_options_free(o);
    assay_options_free(NULL);
    assert_string_equal(assay_strerror(ASSAY_ECONFIG), "configuration error");
    assert_string_equal(assay_error_kind_name(ASSAY_KIND_TIMEOUT), "timeout");
    assert_string_equal(assay_version(), ASSAY_VERSION_STRING);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_results_arrive_in_submission_order_with_many_workers),
        cmocka_unit_test(test_input_errors_name_source_and_line),
        cmocka_unit_test(test_host_creation_reports_configuration_errors),
        cmocka_unit_test(test_options_reject_malformed_values),
    };
    return cmocka_run_group_tests(tests, write_plugins, remove_plugins);
}
