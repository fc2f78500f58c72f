/* The id scan that lets a worker skip another shard's trace unparsed (host/base/jscan.c).
 * It may only say "this is the id" where cJSON parses the text into an object whose last
 * "id" is that plain string; every other text must come back unsure, for the parser to
 * judge. Each case below is checked against cJSON as well, so that the expectations are
 * not the scanner's own opinion. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../host/base/jscan.h"

/* What cJSON makes of text, parsed as the worker parses it: the last "id" if it is a string
 * of an object, else NULL (copied into out). */
static const char *cjson_id(const char *text, char *out, size_t size) {
    cJSON *root = cJSON_ParseWithLengthOpts(text, strlen(text) + 1, NULL, 1);
    const char *id = NULL;
    if (cJSON_IsObject(root)) {
        const cJSON *last = NULL;
        for (const cJSON *m = root->child; m; m = m->next)
            if (strcmp(m->string, "id") == 0) last = m;
        if (cJSON_IsString(last)) {
            strncpy(out, last->valuestring, size - 1);
            out[size - 1] = '\0';
            id = out;
        }
    }
    cJSON_Delete(root);
    return id;
}

static void expect_id(const char *text, const char *want) {
    const char *id;
    size_t len;
    char parsed[256];
    assert_int_equal(jscan_object_id(text, strlen(text), &id, &len), JSCAN_ID);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(id, want, len);
    assert_string_equal(cjson_id(text, parsed, sizeof parsed), want);
}

static void expect_unsure(const char *text) {
    const char *id;
    size_t len;
    assert_int_equal(jscan_object_id(text, strlen(text), &id, &len), JSCAN_UNSURE);
}

static void test_plain_ids_are_found(void **state) {
    (void)state;
    expect_id("{\"id\":\"a\"}", "a");
    expect_id(" \t\r\n{ \"input\" : \"q\" , \"id\" : \"dr-1\" , \"steps\" : [ ] } \n", "dr-1");
    expect_id("{\"steps\":[{\"id\":\"inner\",\"x\":[1,-2.5e+3,0,0.25,1E9,true,false,null,{}]}],\"id\":\"outer\"}", "outer");
    expect_id("{\"id\":\"\"}", "");
    expect_id("{\"id\":\"caf\xc3\xa9 \xe2\x82\xac\"}", "caf\xc3\xa9 \xe2\x82\xac"); /* UTF-8 as is */
    expect_id("{\"x\":\"a\\\"b\\\\c\\/\\b\\f\\n\\r\\t\\u00e9\",\"id\":\"t\"}", "t"); /* escapes elsewhere */
}

static void test_the_last_id_is_the_traces(void **state) {
    (void)state;
    expect_id("{\"id\":\"first\",\"id\":\"second\"}", "second");
    expect_unsure("{\"id\":\"first\",\"id\":7}");  /* the last is not a string: the parser says */
    expect_id("{\"id\":7,\"id\":\"second\"}", "second");
}

static void test_what_the_scan_leaves_to_the_parser(void **state) {
    (void)state;
    expect_unsure("{\"id\":\"a\\u0062\"}");      /* an escaped id: its value differs from its bytes */
    expect_unsure("{\"i\\u0064\":\"a\"}");       /* an escaped key might be "id" */
    expect_unsure("{\"input\":\"q\"}");          /* no id */
    expect_unsure("{}");
    expect_unsure("[{\"id\":\"a\"}]");           /* not an object */
    expect_unsure("\"id\"");
    expect_unsure("");
    expect_unsure("\xef\xbb\xbf{\"id\":\"a\"}"); /* a byte-order mark */
    expect_unsure("{\"x\":\"\\ud83d\\ude00\",\"id\":\"a\"}"); /* surrogates: cJSON checks pairs */
    expect_unsure("{\"x\":\"\\ud83d\",\"id\":\"a\"}");
}

static void test_invalid_json_is_never_an_id(void **state) {
    (void)state;
    static const char *bad[] = {
        "{\"id\":\"a\"} junk", "{\"id\":\"a\"}}", "{\"id\":\"a\",}", "{\"id\":\"a\"", "{\"id\" \"a\"}",
        "{\"id\":\"a\",\"x\":01}", "{\"id\":\"a\",\"x\":1.}", "{\"id\":\"a\",\"x\":.5}", "{\"id\":\"a\",\"x\":+1}",
        "{\"id\":\"a\",\"x\":1e}", "{\"id\":\"a\",\"x\":-}", "{\"id\":\"a\",\"x\":tru}", "{\"id\":\"a\",\"x\":nul}",
        "{\"id\":\"a\",\"x\":[1,]}", "{\"id\":\"a\",\"x\":[1 2]}", "{\"id\":\"a\",\"x\":\"\\x\"}",
        "{\"id\":\"a\",\"x\":\"\\u12g4\"}", "{\"id\":\"a\",\"x\":\"tab\there\"}", "{\"id\":\"a\",'x':1}",
        "{\"id\":\"a\",\"x\":{\"y\"}}", "{\"id\":\"a\",\"x\":NaN}", "{\"id\":\"a\"\x0c}",
    };
    char parsed[256];
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        const char *id;
        size_t len;
        /* where cJSON refuses, the scan must not find an id; the control character and the
         * form feed are ones cJSON takes and the scan refuses, which is allowed */
        if (jscan_object_id(bad[i], strlen(bad[i]), &id, &len) == JSCAN_ID)
            assert_non_null(cjson_id(bad[i], parsed, sizeof parsed));
        expect_unsure(bad[i]);
    }
}

static void test_limits_stay_under_cjsons(void **state) {
    (void)state;
    char text[4096];
    /* 40 characters of number are taken; 41 are left to the parser (cJSON reads 63) */
    snprintf(text, sizeof text, "{\"id\":\"a\",\"x\":%s}", "1234567890123456789012345678901234567890");
    expect_id(text, "a");
    snprintf(text, sizeof text, "{\"id\":\"a\",\"x\":%s}", "12345678901234567890123456789012345678901");
    expect_unsure(text);
    /* nesting: 63 levels below the top are scanned, deeper is unsure */
    size_t n = 0;
    n += (size_t)snprintf(text, sizeof text, "{\"id\":\"a\",\"x\":");
    for (int i = 0; i < 63; i++) text[n++] = '[';
    for (int i = 0; i < 63; i++) text[n++] = ']';
    strcpy(text + n, "}");
    expect_id(text, "a");
    n = (size_t)snprintf(text, sizeof text, "{\"id\":\"a\",\"x\":");
    for (int i = 0; i < 64; i++) text[n++] = '[';
    for (int i = 0; i < 64; i++) text[n++] = ']';
    strcpy(text + n, "}");
    expect_unsure(text);
}

static void test_the_scan_stays_inside_its_length(void **state) {
    (void)state;
    const char *id;
    size_t len;
    /* a valid text followed by bytes the length leaves out */
    assert_int_equal(jscan_object_id("{\"id\":\"a\"}xyz", 10, &id, &len), JSCAN_ID);
    assert_int_equal(len, 1);
    /* every prefix of a valid text is unsure, and read within its length */
    const char *whole = "{\"id\":\"abc\",\"x\":[1.5e3,\"\\u00e9\",true]}";
    for (size_t k = 0; k < strlen(whole); k++) {
        char *copy = malloc(k ? k : 1);
        memcpy(copy, whole, k);
        assert_int_equal(jscan_object_id(copy, k, &id, &len), JSCAN_UNSURE);
        free(copy);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_ids_are_found),
        cmocka_unit_test(test_the_last_id_is_the_traces),
        cmocka_unit_test(test_what_the_scan_leaves_to_the_parser),
        cmocka_unit_test(test_invalid_json_is_never_an_id),
        cmocka_unit_test(test_limits_stay_under_cjsons),
        cmocka_unit_test(test_the_scan_stays_inside_its_length),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
