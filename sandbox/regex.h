/* regex.h - POSIX extended regular expressions matched in linear time, for
 * assay.text.regex_find; see regex.c. */
#ifndef ASSAY_REGEX_H
#define ASSAY_REGEX_H

#include <stdbool.h>
#include <stddef.h>

#include "pattern.h"

/* Instructions a compiled regex may have once {m,n} is expanded. */
#define REGEX_MAX_PROGRAM 16384

/* Compiles pattern and pushes it as a userdata (allocated by the state, so its memory cap
 * counts it). A bad pattern pushes nothing and returns false with the reason in err.
 * [-0, +(0|1), m] */
bool regex_compile(lua_State *L, const char *pattern, size_t len, char *err, size_t errlen);

/* Does the compiled regex at idx match anywhere in s? limits->check is called every
 * PATTERN_CHECK_STEPS steps of the simulation. [-0, +0, v] */
bool regex_search(lua_State *L, int idx, const char *s, size_t n, const pattern_limits *limits);

#endif
