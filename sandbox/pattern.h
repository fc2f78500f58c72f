/* pattern.h - Lua 5.4 string patterns that can be stopped: string.find, match, gmatch and
 * gsub for the sandbox; see pattern.c. */
#ifndef ASSAY_PATTERN_H
#define ASSAY_PATTERN_H

#include <lua.h>

/* Matching steps between two calls of pattern_limits.check. */
#define PATTERN_CHECK_STEPS 4096

/* How a long match is stopped: check is called every PATTERN_CHECK_STEPS steps with the
 * state running the match, and raises a Lua error to stop it (it may also just return). */
typedef struct pattern_limits {
    void (*check)(lua_State *L, void *ud);
    void *ud;
} pattern_limits;

/* Sets find, match, gmatch and gsub in the table at idx (the state's string table) to the
 * functions of pattern.c, which behave as Lua 5.4's and call limits->check as they go.
 * limits must outlive the state. [-0, +0, m] */
void pattern_install(lua_State *L, int idx, const pattern_limits *limits);

#endif
