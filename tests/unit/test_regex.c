/* Unit tests of sandbox/regex.c: fixed cases get glibc's answer (match, no match, refused),
 * a few answers are checked by hand, what glibc cannot do in bounded time or memory is
 * refused or stays linear, and every long search keeps calling the limit check. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>

#include "../fuzz/regex_diff.h"

static int checks, checks_allowed;

static void count_check(lua_State *L, void *ud) {
    (void)ud;
    if (++checks > checks_allowed) luaL_error(L, "stopped by the check");
}

static const pattern_limits limits = {count_check, NULL};

static int state_setup(void **state) {
    *state = luaL_newstate();
    return *state ? 0 : -1;
}

static int state_teardown(void **state) {
    lua_close(*state);
    return 0;
}

static int ours(lua_State *L, const char *pattern, const char *text, char *why, size_t whylen) {
    checks = 0;
    checks_allowed = 1 << 20;
    return regex_diff_ours(L, pattern, text, &limits, why, whylen);
}

static const struct {
    const char *pattern, *text;
} cases[] = {
    {"abc", "xabcx"}, {"abd", "xabcx"}, {"^abc", "abc"}, {"^abc", "xabc"}, {"abc$", "xabc"}, {"b$", "ab\n"},
    {"a.c", "a\nc"}, {"a|b|c", "zzc"}, {"(a|bc)+d", "abcabd"}, {"(a|bc)+d", "abce"}, {"x*", ""}, {"|a", "b"},
    {"()", ""}, {"(|a)b", "b"}, {"a**", "aaa"}, {"a+?", "b"}, {"a{2}", "a"}, {"a{2}", "xaa"}, {"a{2,}", "aaa"},
    {"^a{2,3}$", "aaaa"}, {"^a{,2}$", "aa"}, {"^a{,2}$", "aaa"}, {"^a{,}$", "aaaa"}, {"^(ab){0}c$", "c"},
    {"^(ab){1,2}c$", "ababc"}, {"^x{0}y", "y"}, {"a{2}{3}", "aaaaaa"}, {"a{1,2,3}", "a"}, {"a{", "a"},
    {"a{}", "a"}, {"a{2,1}", "aa"}, {"a{x}", "a"}, {"a{1", "a"}, {"{1}", "a"}, {"*a", "a"}, {"(*a)", "a"},
    {"a|*b", "b"}, {"^*", "a"}, {"$+", "a"}, {"a)", "a)"}, {")", ")"}, {"(a", "a"}, {"a}", "a}"}, {"]", "]"},
    {"[abc]", "xbx"}, {"[^abc]", "abc"}, {"[]a]", "]"}, {"[^]a]", "]"}, {"[a-]", "-"}, {"[-a]", "-"},
    {"[a-c-e]", "d"}, {"[z-a]", "a"}, {"[--/]", "."}, {"[!--]", ","}, {"[a--]", "a"}, {"[[:alpha:]]+$", "ab1"},
    {"^[[:digit:][:space:]]+$", "1 2"}, {"[[:foo:]]", "a"}, {"[[:alpha:]-z]", "a"}, {"[a-[:alpha:]]", "a"},
    {"[[.a.]-c]", "b"}, {"[[.-.]]", "-"}, {"[[.space.]]", " "}, {"[[=a=]]", "a"}, {"[[=a=]-c]", "b"},
    {"[[:alpha:]", "a"}, {"[a", "a"}, {"[", "["}, {"[\\w]", "\\"}, {"[.]", "a"}, {"[[.].]]", "]"},
    {"[[:upper:][:lower:]]", "Q"}, {"[[:xdigit:]]", "g"}, {"[[:punct:]]", ";"}, {"[[:blank:]]", "\t"},
    {"[[:cntrl:]]", "\x01"}, {"[[:print:]]", "\x7f"}, {"[[:graph:]]", " "}, {"[\x80-\xff]", "\xc3\xa9"},
    {"\\w+", "__"}, {"\\W", "ab"}, {"\\s", "a b"}, {"\\S", "  "}, {"\\bfoo\\b", "a foo b"},
    {"\\bfoo\\b", "afoob"}, {"\\Boo", "foo"}, {"\\<bar", "foo bar"}, {"bar\\>", "barn"}, {"\\`a", "ba"},
    {"a\\'", "ba"}, {"\\b", ""}, {"\\B", ""}, {"\\.", "a"}, {"\\.", "."}, {"\\(", "("}, {"\\{", "{"},
    {"\\n", "n"}, {"a\\", "a"}, {"\\0", "0"}, {"(^a|b)c", "bc"}, {"(^a|b)c", "xac"}, {"x(a$|b)", "xa"},
    {"(a*)*b", "aaaa"}, {"(a|a)*(a|a)*b", "aaaaaaaaaaaaaaaab"}, {"((a)|b)+c", "abac"},
    {"(((((((((((((((((((((a)))))))))))))))))))))", "a"}, {"a|", "b"}, {"(|)", "x"}, {"(a|)+b", "b"},
    /* escapes inside counts, as glibc reads them (found by fuzz_regex) */
    {"a{,23}a{\\,23}", ""}, {"^a{\\,2}$", "aa"}, {"^a{1\\,2}$", "aa"}, {"^a{\\0,2}$", "a"},
    {"a{1\\}", "a"}, {"a{\\1}", "a"}, {"a{1,\\w}", "a"}, {"a{1\\", "a"},
};

static void test_every_case_matches_glibc(void **state) {
    int differ = 0;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char why[256];
        int glibc = regex_diff_glibc(cases[i].pattern, cases[i].text);
        int answer = ours(*state, cases[i].pattern, cases[i].text, why, sizeof why);
        if (glibc != answer) {
            print_error("/%s/ over \"%s\": glibc %d, ours %d %s\n", cases[i].pattern, cases[i].text, glibc, answer,
                        why);
            differ++;
        }
    }
    assert_int_equal(differ, 0);
}

static void test_known_answers(void **state) {
    char why[256];
    assert_int_equal(ours(*state, "^[0-9]{3}-[0-9]{4}$", "555-1234", why, sizeof why), REGEX_DIFF_YES);
    assert_int_equal(ours(*state, "^[0-9]{3}-[0-9]{4}$", "555-12345", why, sizeof why), REGEX_DIFF_NO);
    assert_int_equal(ours(*state, "colou?r", "my color", why, sizeof why), REGEX_DIFF_YES);
    assert_int_equal(ours(*state, "[[:foo:]]", "a", why, sizeof why), REGEX_DIFF_BAD);
    assert_string_equal(why, "invalid character class name");
    /* POSIX anchors without REG_NEWLINE: the ends of the text only (glibc also matches
     * "a$\nb" in "a\nb", when the pattern itself matches the newline; found by fuzz_regex) */
    assert_int_equal(ours(*state, "a$\nb", "a\nb", why, sizeof why), REGEX_DIFF_NO);
    assert_int_equal(ours(*state, "a\n^b", "a\nb", why, sizeof why), REGEX_DIFF_NO);
    assert_int_equal(ours(*state, "a$", "a\nb", why, sizeof why), REGEX_DIFF_NO);
    assert_int_equal(ours(*state, "a{2,1}", "aa", why, sizeof why), REGEX_DIFF_BAD);
    assert_string_equal(why, "invalid content of {} (the minimum is above the maximum)");
}

/* What makes glibc take GBs or exponential time is refused up front. */
static void test_refused_before_any_work(void **state) {
    char why[256];
    assert_int_equal(ours(*state, "(a)\\1", "aa", why, sizeof why), REGEX_DIFF_BAD);
    assert_non_null(strstr(why, "back-references"));
    assert_int_equal(ours(*state, "a{0,32767}", "a", why, sizeof why), REGEX_DIFF_BAD);
    assert_non_null(strstr(why, "too large"));
    assert_int_equal(ours(*state, "((a{0,100}){0,100}){0,100}", "a", why, sizeof why), REGEX_DIFF_BAD);
    assert_non_null(strstr(why, "too large"));
    assert_int_equal(ours(*state, "a{32768}", "a", why, sizeof why), REGEX_DIFF_BAD);
    assert_int_equal(checks, 0);
}

/* glibc needs 0.5 s for this pattern over 10 KB, and four times as long for twice the text;
 * here the steps per byte stay the same whatever the length. */
static void test_search_is_linear(void **state) {
    size_t sizes[] = {10000, 40000};
    int used[2];
    for (int k = 0; k < 2; k++) {
        char *text = malloc(sizes[k] + 1);
        unsigned seed = 7;
        for (size_t i = 0; i < sizes[k]; i++) {
            seed = seed * 1103515245u + 12345u;
            text[i] = (seed >> 16) & 1 ? 'a' : 'b';
        }
        text[sizes[k]] = '\0';
        char why[256];
        assert_int_equal(ours(*state, "(a|b)*a(a|b){12}x", text, why, sizeof why), REGEX_DIFF_NO);
        used[k] = checks;
        free(text);
    }
    /* four times the text, four times the checks (give or take one for the rounding) */
    assert_in_range(used[1], 4 * used[0] - 4, 4 * used[0] + 4);
}

/* x{0} drops code the compiler already wrote: the program must have had room for it (an
 * overflow under ASan before, found by fuzz_regex). glibc itself needs GBs for these. */
static void test_dropped_repetition_had_room(void **state) {
    char pattern[128] = "[ab]", why[256];
    for (int i = 0; i < 60; i++) strcat(pattern, "+");
    strcat(pattern, "{0}c");
    assert_int_equal(ours(*state, pattern, "xc", why, sizeof why), REGEX_DIFF_YES);
    assert_int_equal(ours(*state, pattern, "ab", why, sizeof why), REGEX_DIFF_NO);
    assert_int_equal(ours(*state, "_[(]{0}-[]$00-9]++++++++++++++++++++++++++++++++++++++++++++++++++{0}-[$]*205", "_--205",
                          why, sizeof why),
                     REGEX_DIFF_YES);
}

static void test_long_search_keeps_checking(void **state) {
    size_t n = 1 << 20;
    char *text = malloc(n + 1);
    memset(text, 'a', n);
    text[n] = '\0';
    char why[256];
    checks = 0;
    checks_allowed = 20;
    assert_int_equal(regex_diff_ours(*state, "(a|aa)*(a|aa)*(a|aa)*b", text, &limits, why, sizeof why),
                     REGEX_DIFF_SKIP);
    assert_non_null(strstr(why, "stopped by the check"));
    assert_int_equal(checks, 21);
    free(text);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_answers),
        cmocka_unit_test(test_every_case_matches_glibc),
        cmocka_unit_test(test_refused_before_any_work),
        cmocka_unit_test(test_search_is_linear),
        cmocka_unit_test(test_dropped_repetition_had_room),
        cmocka_unit_test(test_long_search_keeps_checking),
    };
    return cmocka_run_group_tests(tests, state_setup, state_teardown);
}
