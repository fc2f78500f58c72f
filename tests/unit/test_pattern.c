/* Unit tests of sandbox/pattern.c: every case gives what Lua's own string library gives
 * (results, their types and error messages, compared in two states side by side), a few
 * answers are checked by hand so the comparison itself is known to work, and every kind of
 * long match (backtracking, plain search, %b, back-references, gmatch, gsub) keeps calling
 * the limit check, so that the sandbox's time limit can stop it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>

#include "../fuzz/pattern_diff.h"

static int checks, checks_allowed;

static void count_check(lua_State *L, void *ud) {
    (void)ud;
    if (++checks > checks_allowed) luaL_error(L, "stopped by the check");
}

static const pattern_limits limits = {count_check, NULL};

typedef struct states {
    lua_State *lua_own, *ours;
} states;

static int states_setup(void **state) {
    states *s = malloc(sizeof *s);
    s->lua_own = pattern_diff_state_new(NULL);
    s->ours = pattern_diff_state_new(&limits);
    *state = s;
    return s->lua_own && s->ours ? 0 : -1;
}

static int states_teardown(void **state) {
    states *s = *state;
    lua_close(s->lua_own);
    lua_close(s->ours);
    free(s);
    return 0;
}

/* One case: mode, subject, pattern, init, plain, replacement, n. */
typedef struct pattern_case {
    int mode;
    const char *subject, *pattern;
    long long init;
    bool is_plain;
    int replacement;
    long long max_n;
} pattern_case;

enum { FIND, MATCH, GMATCH, GSUB };

static void run_case(const states *s, const pattern_case *t, char *ours, char *lua_own, size_t len) {
    pattern_diff_call c = {t->mode, t->subject, strlen(t->subject), t->pattern, strlen(t->pattern),
                           t->init, t->is_plain, t->replacement ? t->replacement : 1, t->max_n};
    checks = 0;
    checks_allowed = 1 << 20;
    pattern_diff_run(s->ours, &c, ours, len);
    pattern_diff_run(s->lua_own, &c, lua_own, len);
}

static const pattern_case cases[] = {
    /* plain and special-free find, starts from either end */
    {FIND, "hello world", "o w", 0, false, 0, 0}, {FIND, "hello", "l", -2, false, 0, 0},
    {FIND, "hello", "", 10, false, 0, 0}, {FIND, "hello", "", 6, false, 0, 0},
    {FIND, "hello", "", -100, false, 0, 0}, {FIND, "a.b", ".", 0, true, 0, 0},
    {FIND, "a+b", "+", 0, true, 0, 0}, {FIND, "aaab", "aab", 0, false, 0, 0},
    {FIND, "abc", "abcd", 0, false, 0, 0}, {FIND, "", "", 0, false, 0, 0},
    /* classes, sets, ranges, complements */
    {FIND, "x = 42;", "%d+", 0, false, 0, 0}, {MATCH, "Hello World", "%u%l+", 2, false, 0, 0},
    {MATCH, "tab\there", "%s(%S+)", 0, false, 0, 0}, {MATCH, "a-b_c9", "[%w_%-]+", 0, false, 0, 0},
    {MATCH, "]]x", "[]]+", 0, false, 0, 0}, {MATCH, "^^a", "[\\^]+", 0, false, 0, 0},
    {MATCH, "abc-def", "[^-]+$", 0, false, 0, 0}, {MATCH, "b-", "[a-]+", 0, false, 0, 0},
    {MATCH, "0x1F", "%x+", 3, false, 0, 0}, {MATCH, "a.,;b", "%p+", 0, false, 0, 0},
    {MATCH, "\x01\x02z", "%c+", 0, false, 0, 0}, {MATCH, "AbC", "%A", 0, false, 0, 0},
    {MATCH, "a%b", "%%", 0, false, 0, 0}, {MATCH, "\xe2\x82\xac" "1", "[\x80-\xff]+", 0, false, 0, 0},
    /* quantifiers, anchors, '$' in the middle */
    {MATCH, "aaa", "a-", 0, false, 0, 0}, {MATCH, "aaab", "a-b", 0, false, 0, 0},
    {MATCH, "ab", "a?b?c?", 0, false, 0, 0}, {MATCH, "xab", "^ab", 0, false, 0, 0},
    {MATCH, "xab", "^ab", 2, false, 0, 0}, {MATCH, "a$b", "a$b", 0, false, 0, 0},
    {MATCH, "ab", "b$", 0, false, 0, 0}, {FIND, "ab", "$", 0, false, 0, 0},
    {MATCH, "key = value", "^(%w+)%s*=%s*(%w+)$", 0, false, 0, 0},
    /* captures: positions, nested, back-references, %b, %f */
    {MATCH, "hello", "()ll()", 0, false, 0, 0}, {FIND, "hello", "(l)(l)", 0, false, 0, 0},
    {MATCH, "abcabc", "((a)(b)c)%1", 0, false, 0, 0}, {MATCH, "say \"hi\" now", "([\"'])(.-)%1", 0, false, 0, 0},
    {MATCH, "f(a(b)c) d", "%b()", 0, false, 0, 0}, {MATCH, "((", "%b()", 0, false, 0, 0},
    {MATCH, "\"x\"y\"", "%b\"\"", 0, false, 0, 0}, {MATCH, "THE (quick) fox", "%f[%a]%a+", 5, false, 0, 0},
    {GMATCH, "THE (quick) fox", "%f[%a]%a+", 0, false, 0, 0}, {MATCH, "end", "%f[%z]", 0, false, 0, 0},
    {MATCH, "ab", "()(()a)", 0, false, 0, 0}, {MATCH, "aa", "()%1", 0, false, 0, 0},
    /* gmatch: empty matches, anchors are plain, start position */
    {GMATCH, "one two  three", "%a+", 0, false, 0, 0}, {GMATCH, "abc", "", 0, false, 0, 0},
    {GMATCH, "a,b,,c", "([^,]*)", 0, false, 0, 0}, {GMATCH, "^a^b", "^.", 0, false, 0, 0},
    {GMATCH, "k1=v1, k2=v2", "(%w+)=(%w+)", 3, false, 0, 0}, {GMATCH, "abc", "()", -1, false, 0, 0},
    {GMATCH, "abc", "x*", 10, false, 0, 0},
    /* gsub: every kind of replacement, counts, anchors, empty matches */
    {GSUB, "hello world", "(o)", 0, false, 1, 0}, {GSUB, "abc", "%w", 0, false, 2, 0},
    {GSUB, "abc", "b", 0, false, 3, 0}, {GSUB, "abc", "(a)(b)", 0, false, 4, 0},
    {GSUB, "abc", "a", 0, false, 5, 0}, {GSUB, "abc", "a", 0, false, 6, 0},
    {GSUB, "abc", "(a)", 0, false, 6, 0}, {GSUB, "abc", "()b", 0, false, 7, 0},
    {GSUB, "a ab b c", "%w+", 0, false, 9, 0}, {GSUB, "abc", "%w", 0, false, 10, 0},
    {GSUB, "abc", "()", 0, false, 10, 0}, {GSUB, "abc", "%w", 0, false, 11, 0},
    {GSUB, "abc", "%w", 0, false, 12, 0}, {GSUB, "abc", "b", 0, false, 13, 0},
    {GSUB, "abc", "", 0, false, 8, 0}, {GSUB, "abc", "x*", 0, false, 2, 0},
    {GSUB, "aaa", "a", 0, false, 2, 2}, {GSUB, "aaa", "a", 0, false, 2, -1},
    {GSUB, "aaa", "^a", 0, false, 2, 0}, {GSUB, "hello world", "%s*$", 0, false, 8, 0},
    {GSUB, "abc", "b", 0, false, 15, 0}, {GSUB, "abc", "b", 0, false, 14, 0},
    /* malformed patterns and bad captures: the same message */
    {FIND, "abc", "%", 0, false, 0, 0}, {FIND, "abc", "[a", 0, false, 0, 0},
    {FIND, "abc", "[", 0, false, 0, 0}, {FIND, "abc", "[%", 0, false, 0, 0},
    {FIND, "abc", "[^", 0, false, 0, 0}, {FIND, "abc", "%b", 0, false, 0, 0},
    {FIND, "abc", "%ba", 0, false, 0, 0}, {FIND, "abc", "%f", 0, false, 0, 0},
    {FIND, "abc", "%fa", 0, false, 0, 0}, {FIND, "abc", "(a", 0, false, 0, 0},
    {FIND, "abc", "a)", 0, false, 0, 0}, {FIND, "abc", "%1", 0, false, 0, 0},
    {FIND, "abc", "(a%1)", 0, false, 0, 0}, {FIND, "abc", "%0", 0, false, 0, 0},
    {GSUB, "abc", "(a)", 0, false, 5, 0}, {GSUB, "abc", "a", 0, false, 4, 0},
    {MATCH, "abc", "((((((((((((((((((((((((((((((((((a)))))))))))))))))))))))))))))))))", 0, false, 0, 0},
    {MATCH, "abc", "(()", 0, false, 0, 0},
};

static void test_every_case_matches_lua(void **state) {
    const states *s = *state;
    char ours[4096], lua_own[4096];
    int differ = 0;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        run_case(s, &cases[i], ours, lua_own, sizeof ours);
        if (strcmp(ours, lua_own) != 0) {
            print_error("case %zu: string.%s(\"%s\", \"%s\")\n  Lua:  %s\n  ours: %s\n", i,
                        (const char *[]){"find", "match", "gmatch", "gsub"}[cases[i].mode], cases[i].subject,
                        cases[i].pattern, lua_own, ours);
            differ++;
        }
    }
    assert_int_equal(differ, 0);
}

/* The comparison is only worth something if the runner describes real answers. */
static void test_known_answers(void **state) {
    const states *s = *state;
    static const struct {
        pattern_case c;
        const char *expected;
    } known[] = {
        {{FIND, "hello", "l+", 0, false, 0, 0}, "ok: integer 3, integer 4"},
        {{MATCH, "key = value", "(%w+) = (%w+)", 0, false, 0, 0}, "ok: \"key\", \"value\""},
        {{GMATCH, "a1b22", "%d+", 0, false, 0, 0}, "ok: \"1\"; \"22\"; (nothing)"},
        {{GSUB, "hello world", "(o)", 0, false, 1, 0}, "ok: \"hell<o> w<o>rld\", integer 2"},
        {{GSUB, "abc", "", 0, false, 3, 0}, "ok: \"%a%b%c%\", integer 4"},
        {{MATCH, "hello", "()ll()", 0, false, 0, 0}, "ok: integer 3, integer 5"},
        {{FIND, "abc", "[a", 0, false, 0, 0}, "error: [string \"local replacements = {...\"]:19: malformed pattern (missing ']')"},
    };
    char ours[512], lua_own[512];
    for (size_t i = 0; i < sizeof known / sizeof *known; i++) {
        run_case(s, &known[i].c, ours, lua_own, sizeof ours);
        assert_string_equal(ours, known[i].expected);
        assert_string_equal(lua_own, known[i].expected);
    }
}

/* A match that would run for minutes is stopped by the check: the error surfaces from the
 * call, after a bounded number of steps. */
static void assert_stopped(const states *s, int mode, const char *subject, size_t subject_len, const char *pattern,
                           size_t pattern_len) {
    pattern_diff_call c = {mode, subject, subject_len, pattern, pattern_len, 0, false, 1, 0};
    char out[256];
    checks = 0;
    checks_allowed = 50;
    pattern_diff_run(s->ours, &c, out, sizeof out);
    if (!strstr(out, "stopped by the check")) fail_msg("string.%s(<%zu bytes>, \"%.40s\") was not stopped: %s",
                                                       (const char *[]){"find", "match", "gmatch", "gsub"}[mode],
                                                       subject_len, pattern, out);
    assert_int_equal(checks, 51);
}

static void test_long_matches_keep_checking(void **state) {
    const states *s = *state;
    size_t n = 1 << 16;
    char *as = malloc(n + 1);
    memset(as, 'a', n);
    as[n] = '\0';
    assert_stopped(s, FIND, as, 600, ".-.-.-b", 7);   /* backtracking, cubic */
    assert_stopped(s, MATCH, as, 600, "(.*)(.*)(.*)b", 13);
    assert_stopped(s, GMATCH, as, 600, "a-a-a-b", 7);
    assert_stopped(s, GSUB, as, 600, ".-.-.-b", 7);
    assert_stopped(s, FIND, as, n, "(.*)%1b", 7);      /* back-references: memcmp of long runs */
    /* a plain needle that keeps matching its first 8 KiB: quadratic memcmp */
    char *needle = malloc(8194);
    memset(needle, 'a', 8192);
    needle[8192] = 'b';
    needle[8193] = '\0';
    assert_stopped(s, FIND, as, n, needle, 8193);
    /* %b( over a long unbalanced run, tried from every position */
    memset(as, '(', n);
    assert_stopped(s, FIND, as, n, "%b()", 4);
    free(needle);
    free(as);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_answers),
        cmocka_unit_test(test_every_case_matches_lua),
        cmocka_unit_test(test_long_matches_keep_checking),
    };
    return cmocka_run_group_tests(tests, states_setup, states_teardown);
}
