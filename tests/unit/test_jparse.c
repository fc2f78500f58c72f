/* The arena parser a worker reads traces with (host/base/jparse.c). It may give up on a
 * text (the worker then parses it with cJSON), but a tree it gives must be cJSON's tree, node
 * for node (tests/fuzz/jparse_diff.h). Here: strict JSON of every shape takes the fast path
 * and equals cJSON's tree; what cJSON reads loosely or refuses is given up; every trace the
 * project ships and generates takes the fast path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>

#include "../fuzz/jparse_diff.h"

static int diff(const char *text) { return jparse_diff(text, strlen(text)); }

static void test_strict_json_takes_the_fast_path_and_equals_cjson(void **state) {
    (void)state;
    static const char *const cases[] = {
        "{}", "[]", "0", "-0", "1", "-1", "123456789012345", "1234567890123456", "12345678901234567890",
        "0.5", "-0.5", "1e3", "1E+3", "1e-3", "2.5e-308", "1e400", "-1e400", "1e-400", "2147483647", "2147483648",
        "-2147483648", "-2147483649", "0.1", "3.141592653589793238462643383279", "true", "false", "null",
        "\"\"", "\"a\"", "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\"\\u0041\\u00e9\\u20ac\\ud83d\\ude00\"",
        "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 raw UTF-8\"", " \t\r\n{ \"a\" : [ 1 , 2 ] } \n", "{\"a\":1,\"a\":2}", "{\"\":{\"\":[]}}",
        "[[[[[[[[[[1]]]]]]]]]]", "[1,[2,[3,{\"x\":[4]}]],\"s\",null]",
        "{\"id\":\"t1\",\"steps\":[{\"type\":\"search\",\"query\":\"q\",\"results\":[{\"url\":\"u\",\"title\":\"t\"}]}]}",
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        if (diff(cases[i]) != JPARSE_DIFF_SAME) fail_msg("case %zu: %s", i, cases[i]);
    }
}

/* Strings are scanned 16 bytes at a time (SSE2), then 8: an escape, a quote, a control
 * byte, DEL and UTF-8 bytes (>= 0x80, valid or not) at every place in and around two blocks. */
static void test_strings_across_word_boundaries(void **state) {
    (void)state;
    static const char *const specials[] = {"\\n", "\\\"", "\\u00e9", "\xc3\xa9", "\x01", "\x1f", "\x7f", "\xff", " "};
    /* a raw control byte and invalid UTF-8 are given up on (cJSON decides); the rest is taken */
    static const bool given_up[] = {false, false, false, false, true, true, false, true, false};
    static const char letters[] = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    char text[128];
    for (size_t k = 0; k < sizeof specials / sizeof *specials; k++)
        for (int before = 0; before <= 40; before++)
            for (int after = 0; after <= 20; after += 5) {
                int n = snprintf(text, sizeof text, "[\"%.*s%s%.*s\"]", before, letters, specials[k], after, letters);
                int answer = jparse_diff(text, (size_t)n);
                if (answer != (given_up[k] ? JPARSE_DIFF_GAVE_UP : JPARSE_DIFF_SAME)) fail_msg("%zu/%d: %s", k, before, text);
            }
}

/* Every lead byte from 0x80 with continuation bytes that are and are not ones, at the end
 * of a string and before more text: taken exactly when the sequence is valid UTF-8 (two-
 * and most three-byte characters are checked inline, the rest by buf_utf8_sequence_length). */
static void test_utf8_sequences_in_strings(void **state) {
    (void)state;
    static const unsigned char seconds[] = {0x7F, 0x80, 0x9F, 0xA0, 0xBF, 0xC0, 'a', '"'};
    int taken = 0;
    for (int lead = 0x80; lead <= 0xFF; lead++)
        for (size_t a = 0; a < sizeof seconds; a++)
            for (size_t b = 0; b < sizeof seconds; b++)
                for (int tail = 0; tail < 4; tail++) {
                    char text[32];
                    unsigned char seq[4] = {(unsigned char)lead, seconds[a], seconds[b], tail % 2 ? 0x80 : 'b'};
                    int n = snprintf(text, sizeof text, "[\"x%c%c%c%c%s\"]", seq[0], seq[1], seq[2], seq[3],
                                     tail / 2 ? "abcdefghijklmnopqrstu" : "");
                    int answer = jparse_diff(text, (size_t)n);
                    /* inside the quotes, the text is valid exactly when every sequence is */
                    size_t inner = (size_t)n - 3, at = 2;
                    bool valid = true;
                    while (at < inner + 1 && valid) {
                        size_t len = buf_utf8_sequence_length((const unsigned char *)text + at, inner + 1 - at);
                        if (!len) valid = false;
                        at += len;
                    }
                    bool has_quote = memchr(seq, '"', 4) != NULL; /* ends the string early: not JSON */
                    if (has_quote) continue;
                    taken += answer == JPARSE_DIFF_SAME;
                    if (answer != (valid ? JPARSE_DIFF_SAME : JPARSE_DIFF_GAVE_UP))
                        fail_msg("%02x %02x %02x %02x tail %d: answer %d, valid %d", seq[0], seq[1], seq[2], seq[3], tail,
                                 answer, valid);
                }
    assert_true(taken > 500); /* valid ones of two, three and four bytes were among them */
}

static void test_loose_or_invalid_text_is_given_up(void **state) {
    (void)state;
    static const char *const cases[] = {
        "", " ", "{", "[1,]", "{\"a\":}", "{\"a\" 1}", "[1 2]", "{,}", "01", "+1", ".5", "1.", "1e", "1e+", "-",
        "--1", "0x10", "1.5.5", "1-2", "[1-2]", "NaN", "Infinity", "tru", "nul", "True", "\"abc", "\"\\x\"",
        "\"\\u12\"", "\"\\uZZZZ\"", "\"\\ud83d\"", "\"\\ude00\"", "\"\\ud83d\\u0041\"", "\"a\x01" "b\"", "\x0b{}",
        "{}\x0c", "\xef\xbb\xbf{}", "{} x", "{}{}", "1234567890123456789012345678901234567890123456789012345678901234",
        "{'a':1}", "[\"a\"\"b\"]",
        /* strings that are not valid UTF-8 (the worker then reports the line): a stray byte,
         * an overlong form, a surrogate, a sequence cut short, beyond U+10FFFF, in a key */
        "\"caf\xc3\xa9 \xff\"", "[\"\xc0\xaf\"]", "\"\xed\xa0\x80\"", "\"abc\xc3\"", "\"\xf4\x90\x80\x80\"",
        "{\"k\xe2\x82\":1}", "\"abcdefgh\x80\"",
        /* an escaped NUL, which would end the C string early (the worker refuses such a
         * line; a string's length in valueint would not be the C string's) */
        "\"\\u0000x\"", "{\"a\\u0000\":1}", "[\"ok\",\"x\\u0000\"]",
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        if (diff(cases[i]) != JPARSE_DIFF_GAVE_UP) fail_msg("case %zu: %s", i, cases[i]);
    }
}

/* Strings without escapes stay in the text, their closing quotes overwritten; giving up
 * after many of them, at any place, must hand the text back as it was (jparse_diff compares
 * it byte for byte), since the worker then gives it to cJSON. */
static void test_giving_up_late_puts_the_text_back(void **state) {
    (void)state;
    static const char *const cases[] = {
        "{\"a\":\"b\",\"c\":[\"d\",\"e\\n\",\"\"],\"f\":\"g\"} x",
        "{\"a\":\"b\",\"c\":[\"d\",\"e\\n\",\"\"],\"f\":\"g\",}",
        "[\"a\",\"b\",\"c\",\"d\",01]",
        "{\"id\":\"t\",\"steps\":[{\"query\":\"q\",\"x\":tru}]}",
        "[\"a\",\"b\",\"c\",\"\\uZZZZ\"]",
        "[\"a\",\"b\",\"c\xff\"]",
        "{\"a\":\"b\"\"c\":1}",
        "[\"a\",\"b\",\"c\"",
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        if (diff(cases[i]) != JPARSE_DIFF_GAVE_UP) fail_msg("case %zu: %s", i, cases[i]);
    }
}

/* A NUL of the text stops the parser where it stands (no token or string holds one), and
 * giving up then turns back only the NULs before that place (the quotes it ended strings
 * with): the text's own NUL stays, wherever it is. */
static void test_a_nul_in_the_text_is_given_up_on_and_kept(void **state) {
    (void)state;
    static const char a[] = "[\"a\",\"b\",\"c\0d\"]", b[] = "[\"a\",\"b\",\0\"c\"]", c[] = "{\"a\":\"b\"}\0",
                      d[] = "\0{\"a\":\"b\"}", e[] = "{\"a\":\"b\",\"c\":1\0}", f[] = "{\"a\":\"b\",\"c\0\":1}",
                      g[] = "[\"a\",\"b\\n\",\"c\",tr\0e]";
    const struct { const char *text; size_t n; } cases[] = {
        {a, sizeof a - 1}, {b, sizeof b - 1}, {c, sizeof c - 1}, {d, sizeof d - 1},
        {e, sizeof e - 1}, {f, sizeof f - 1}, {g, sizeof g - 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        if (jparse_diff(cases[i].text, cases[i].n) != JPARSE_DIFF_GAVE_UP) fail_msg("case %zu", i);
}

/* Which strings stay in the text: those without escapes; one with escapes is decoded into
 * the arena, so the text is never rewritten except at closing quotes. */
static void test_strings_without_escapes_stay_in_the_text(void **state) {
    (void)state;
    char text[] = "{\"key\":\"plain\",\"esc\":\"a\\nb\",\"\":\"\"}";
    size_t n = strlen(text);
    jparse_tree *tree;
    cJSON *root = jparse(text, n, &tree);
    assert_non_null(root);
    const cJSON *plain = root->child, *esc = plain->next, *empty = esc->next;
    assert_string_equal(plain->string, "key");
    assert_string_equal(plain->valuestring, "plain");
    assert_string_equal(esc->valuestring, "a\nb");
    assert_string_equal(empty->string, "");
    assert_true(plain->string == text + 2 && plain->valuestring == text + 8);
    assert_true(esc->string == text + 16);
    assert_true(esc->valuestring < text || esc->valuestring >= text + n); /* the arena */
    assert_true(empty->string == text + 29 && empty->valuestring == text + 32);
    /* the closing quotes of the strings in place are NULs now; every other byte is as it was
     * (the escaped string's quote at 26 too) */
    const char *before = "{\"key\":\"plain\",\"esc\":\"a\\nb\",\"\":\"\"}";
    for (size_t i = 0; i < n; i++) {
        bool ends_one = i == 5 || i == 13 || i == 19 || i == 29 || i == 32;
        if (text[i] != (ends_one ? '\0' : before[i])) fail_msg("byte %zu", i);
    }
    jparse_free(tree);
}

static void test_nesting_near_cjsons_limit_is_given_up(void **state) {
    (void)state;
    char text[2 * CJSON_NESTING_LIMIT + 8];
    for (int depth = CJSON_NESTING_LIMIT - 3; depth <= CJSON_NESTING_LIMIT + 1; depth++) {
        memset(text, '[', (size_t)depth);
        memset(text + depth, ']', (size_t)depth);
        text[2 * depth] = '\0';
        int answer = diff(text);
        if (depth <= CJSON_NESTING_LIMIT - 2) assert_int_equal(answer, JPARSE_DIFF_SAME);
        else assert_int_equal(answer, JPARSE_DIFF_GAVE_UP);
    }
}

/* Every line of a JSONL file takes the fast path and equals cJSON's tree. */
static void check_file(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) fail_msg("%s: cannot open", path);
    char *line = NULL;
    size_t cap = 0, count = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
        while (n > 0 && line[n - 1] == '\n') line[--n] = '\0';
        if (n == 0 || line[0] == '#') continue;
        if (jparse_diff(line, (size_t)n) != JPARSE_DIFF_SAME) fail_msg("%s: line %zu", path, count + 1);
        count++;
    }
    free(line);
    fclose(f);
    assert_true(count > 0);
}

static void test_the_shipped_traces_take_the_fast_path(void **state) {
    (void)state;
    check_file("examples/traces/deep-research.jsonl");
    check_file("tests/bench/corpus.jsonl");
    check_file("tests/plugins/citation_support.jsonl");
    check_file("tests/plugins/relevance.jsonl");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strict_json_takes_the_fast_path_and_equals_cjson),
        cmocka_unit_test(test_strings_across_word_boundaries),
        cmocka_unit_test(test_utf8_sequences_in_strings),
        cmocka_unit_test(test_loose_or_invalid_text_is_given_up),
        cmocka_unit_test(test_giving_up_late_puts_the_text_back),
        cmocka_unit_test(test_a_nul_in_the_text_is_given_up_on_and_kept),
        cmocka_unit_test(test_strings_without_escapes_stay_in_the_text),
        cmocka_unit_test(test_nesting_near_cjsons_limit_is_given_up),
        cmocka_unit_test(test_the_shipped_traces_take_the_fast_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
