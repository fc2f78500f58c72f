/* fuzz_pattern.c - differential libFuzzer target for pattern.c: any pattern, subject,
 * start, replacement and count through string.find/match/gmatch/gsub must give exactly what
 * Lua's own string library gives (results, their types, error messages). A call that runs
 * past ~1 M steps is stopped by the budget check and not compared: that is the point of
 * pattern.c, and lstrlib would backtrack for as long as it takes. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "pattern_diff.h"

#define CHECKS_ALLOWED 256 /* times PATTERN_CHECK_STEPS */

static int checks;

static void count_check(lua_State *L, void *ud) {
    (void)ud;
    if (++checks > CHECKS_ALLOWED) luaL_error(L, "pattern_diff: budget");
}

static const pattern_limits limits = {count_check, NULL};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    static lua_State *lua_own, *ours;
    static char expected[8192], got[8192];
    if (!lua_own) {
        lua_own = pattern_diff_state_new(NULL);
        ours = pattern_diff_state_new(&limits);
        if (!lua_own || !ours) abort();
    }
    if (n < 5) return 0;
    size_t pattern_len = data[4] % (n - 5 + 1);
    size_t subject_len = n - 5 - pattern_len;
    if (subject_len > 4096) subject_len = 4096;
    pattern_diff_call c = {
        .mode = data[0] & 3,
        .is_plain = data[0] & 4,
        .init = data[0] & 8 ? (int8_t)data[2] : 0,
        .max_n = data[0] & 16 ? (int8_t)data[3] : 0,
        .replacement = data[1] % 14 + 1,
        .pattern = (const char *)data + 5,
        .pattern_len = pattern_len,
        .subject = (const char *)data + 5 + pattern_len,
        .subject_len = subject_len,
    };
    checks = 0;
    pattern_diff_run(ours, &c, got, sizeof got);
    if (strstr(got, "pattern_diff: budget")) return 0;
    pattern_diff_run(lua_own, &c, expected, sizeof expected);
    if (strcmp(expected, got) != 0) {
        fprintf(stderr, "pattern.c differs from Lua\n  Lua:  %s\n  ours: %s\n", expected, got);
        abort();
    }
    lua_gc(ours, LUA_GCCOLLECT);
    lua_gc(lua_own, LUA_GCCOLLECT);
    return 0;
}
