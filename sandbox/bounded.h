/* bounded.h - standard functions remade to look at the sandbox's limits; see bounded.c. */
#ifndef ASSAY_BOUNDED_H
#define ASSAY_BOUNDED_H

#include <lua.h>
#include <stddef.h>

#include "pattern.h"

/* Replaces string.rep in the string table and table.insert, remove and move in the table
 * table (absolute or relative indices). [-0, +0, m] */
void bounded_install(lua_State *L, int string_table, int table_table, const pattern_limits *limits);
/* Sets load in the table at globals: text only, parsed under the limits. [-0, +0, m] */
void bounded_install_load(lua_State *L, int globals, const pattern_limits *limits);
/* lua_load of a text chunk (mode "t"), parsed piece by piece with the limits looked at
 * before each piece. [-0, +1, -] */
int bounded_load_text(lua_State *L, const char *text, size_t len, const char *chunkname,
                      const pattern_limits *limits);

#endif
