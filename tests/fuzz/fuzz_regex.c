/* fuzz_regex.c - differential libFuzzer target for regex.c: any pattern and text (split at
 * the first NUL) must get glibc's answer: a match, no match, or a refused pattern. Not
 * compared: patterns regex.c refuses on purpose (back-references, too large after {m,n}),
 * patterns that are costly for glibc's compiler, and searches past ~1 M steps; glibc would take as long as it takes. */
#include <stdint.h>
#include <stdlib.h>

#include "regex_diff.h"

#define CHECKS_ALLOWED 256

static int checks;

static void count_check(lua_State *L, void *ud) {
    (void)ud;
    if (++checks > CHECKS_ALLOWED) luaL_error(L, "regex_diff: budget");
}

static const pattern_limits limits = {count_check, NULL};

/* What makes glibc's compiler take seconds and GBs: counts of 100 and more (a{0,32767}),
 * and many repetitions, which it copies into each other ("a+++++++++++++++++++{9}" takes
 * over 2 GB). */
static bool is_costly_for_glibc(const char *p) {
    int repetitions = 0;
    for (int digits = 0; *p; p++) {
        digits = *p >= '0' && *p <= '9' ? digits + 1 : 0;
        repetitions += *p == '*' || *p == '+' || *p == '?' || *p == '{';
        if (digits >= 3 || repetitions > 6) return true;
    }
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    static lua_State *L;
    if (!L && !(L = luaL_newstate())) abort();
    if (n > 512) return 0; /* glibc is slow on long inputs; that is the point */
    char *input = malloc(n + 2);
    if (!input) return 0;
    memcpy(input, data, n);
    input[n] = input[n + 1] = '\0';
    const char *pattern = input;
    const char *text = input + strlen(input) + 1; /* after the first NUL, or empty */
    if (text > input + n) text = input + n + 1;
    char why[256];
    checks = 0;
    int ours = regex_diff_ours(L, pattern, text, &limits, why, sizeof why);
    bool is_refused_on_purpose = ours == REGEX_DIFF_BAD && (strstr(why, "back-references") || strstr(why, "too large"));
    /* glibc lets ^ and $ match next to a newline the pattern itself matches ("a$\nb" finds
     * "a\nb"); POSIX, and regex.c, anchor them to the ends of the text only */
    bool is_glibc_newline_quirk = strchr(text, '\n') && strpbrk(pattern, "^$");
    if (ours != REGEX_DIFF_SKIP && !is_refused_on_purpose && !is_glibc_newline_quirk && !is_costly_for_glibc(pattern)) {
        int glibc = regex_diff_glibc(pattern, text);
        if (glibc != REGEX_DIFF_SKIP && glibc != ours) {
            fprintf(stderr, "regex.c differs from glibc on /%s/ over \"%s\": glibc %d, ours %d (%s)\n", pattern, text,
                    glibc, ours, why);
            abort();
        }
    }
    lua_gc(L, LUA_GCCOLLECT);
    free(input);
    return 0;
}
