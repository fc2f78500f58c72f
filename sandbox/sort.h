/* sort.h - table.sort for the sandbox, one that the time limit can stop; see sort.c. */
#ifndef ASSAY_SORT_H
#define ASSAY_SORT_H

#include "pattern.h"

/* Comparisons between two calls of limits->check. */
#define SORT_CHECK_STEPS 4096

/* Sets `sort` in the table at idx (the state's table library) to sort.c's, which keeps the
 * contract of Lua 5.4's table.sort and calls limits->check every SORT_CHECK_STEPS
 * comparisons. limits must outlive the state. [-0, +0, m] */
void sort_install(lua_State *L, int idx, const pattern_limits *limits);

#endif
