/* regex_diff.h - asks one question ("does this POSIX extended regex match anywhere in this
 * text?") of glibc's regcomp/regexec and of regex.c, for tests/unit/test_regex.c (fixed
 * cases) and tests/fuzz/fuzz_regex.c (any input). */
#ifndef ASSAY_REGEX_DIFF_H
#define ASSAY_REGEX_DIFF_H

#include <lauxlib.h>
#include <regex.h>
#include <stdio.h>
#include <string.h>

#include "../../sandbox/regex.h"

enum { REGEX_DIFF_NO = 0, REGEX_DIFF_YES = 1, REGEX_DIFF_BAD = -1, REGEX_DIFF_SKIP = -2 };

/* glibc's answer; both strings are C strings. */
static int regex_diff_glibc(const char *pattern, const char *text) {
    regex_t re;
    int rc = regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB);
    if (rc == REG_ESPACE) return REGEX_DIFF_SKIP;
    if (rc != 0) return REGEX_DIFF_BAD;
    rc = regexec(&re, text, 0, NULL, 0);
    regfree(&re);
    return rc == 0 ? REGEX_DIFF_YES : REGEX_DIFF_NO;
}

/* In a protected call: pattern, text, limits -> true | false | nil, why. */
static int regex_diff_call(lua_State *L) {
    size_t pattern_len, n;
    const char *pattern = lua_tolstring(L, 1, &pattern_len);
    const char *text = lua_tolstring(L, 2, &n);
    const pattern_limits *limits = lua_touserdata(L, 3);
    char why[128];
    if (!regex_compile(L, pattern, pattern_len, why, sizeof why)) {
        lua_pushnil(L);
        lua_pushstring(L, why);
        return 2;
    }
    lua_pushboolean(L, regex_search(L, -1, text, n, limits));
    return 1;
}

/* regex.c's answer; why gets the reason for a refusal or the error a check raised. */
static int regex_diff_ours(lua_State *L, const char *pattern, const char *text, const pattern_limits *limits,
                           char *why, size_t whylen) {
    lua_settop(L, 0);
    lua_pushcfunction(L, regex_diff_call);
    lua_pushstring(L, pattern);
    lua_pushstring(L, text);
    lua_pushlightuserdata(L, (void *)limits);
    why[0] = '\0';
    int answer;
    if (lua_pcall(L, 3, 2, 0) != LUA_OK) {
        snprintf(why, whylen, "%s", lua_tostring(L, -1));
        answer = REGEX_DIFF_SKIP;
    } else if (lua_isnil(L, -2)) {
        snprintf(why, whylen, "%s", lua_tostring(L, -1));
        answer = REGEX_DIFF_BAD;
    } else {
        answer = lua_toboolean(L, -2) ? REGEX_DIFF_YES : REGEX_DIFF_NO;
    }
    lua_settop(L, 0);
    return answer;
}

#endif
