/* bounded.c - the standard functions whose work runs in one C call, remade to look at the
 * sandbox's limits as they go: string.rep, table.insert, table.remove, table.move, and the
 * Lua parser behind load, require and plugin loading.
 *
 * Why: the count hook fires between Lua instructions, never inside C. Lua's own versions
 * loop in C for as long as their arguments say: string.rep("", 2^33) ran 14.7 s and
 * table.move({}, 1, 2^33, 1, {}) 110 s against a 500 ms limit, and a table whose __len
 * answers 2^40 makes insert and remove shift that many slots. The parser has no hook at
 * all, and some chunks parse in quadratic time (80,000 chained `and`s took 9.6 s). Here
 * loops call limits->check every BOUNDED_CHECK_EVERY iterations, and the parser is fed
 * BOUNDED_PIECE bytes at a time with a check before each piece. Contracts and messages are
 * Lua 5.4's. Nothing here holds memory outside Lua, so a raise from a check leaks nothing.
 * Not here: pattern matching (pattern.c), table.sort (sort.c), the limits (sandbox.c).
 */
#include "bounded.h"

#include <lauxlib.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define BOUNDED_CHECK_EVERY 4096
#define BOUNDED_PIECE 512

static const pattern_limits *limits_of(lua_State *L) { return lua_touserdata(L, lua_upvalueindex(1)); }

/* Counts one iteration; every BOUNDED_CHECK_EVERY the limits get a look. */
static void tick(lua_State *L, const pattern_limits *limits, lua_Unsigned *count) {
    if (++*count % BOUNDED_CHECK_EVERY == 0) limits->check(L, limits->ud);
}

/* ----------------------------------------------------------------------- string.rep */

/* string.rep(s, n [, sep]). An empty result is returned at once, however large n is; any
 * other is as long as the memory cap allows. The result is periodic (s, sep, s, sep, ... s),
 * so it is written by doubling what is already there: log n copies, not n. */
static int bounded_rep(lua_State *L) {
    size_t l, lsep;
    const char *s = luaL_checklstring(L, 1, &l);
    lua_Integer n = luaL_checkinteger(L, 2);
    const char *sep = luaL_optlstring(L, 3, "", &lsep);
    if (n <= 0 || l + lsep == 0) {
        lua_pushliteral(L, "");
        return 1;
    }
    if (l + lsep < l || l + lsep > (SIZE_MAX / 2) / (lua_Unsigned)n) return luaL_error(L, "resulting string too large");
    size_t unit = l + lsep, total = (size_t)n * unit - lsep;
    const pattern_limits *limits = limits_of(L);
    luaL_Buffer b;
    char *p = luaL_buffinitsize(L, &b, total);
    memcpy(p, s, l < total ? l : total);
    if (lsep && unit <= total) memcpy(p + l, sep, lsep);
    size_t filled = unit < total ? unit : total;
    while (filled < total) {
        size_t more = filled < total - filled ? filled : total - filled;
        memcpy(p + filled, p, more);
        filled += more;
        limits->check(L, limits->ud);
    }
    luaL_pushresultsize(&b, total);
    return 1;
}

/* ------------------------------------------------------------------ table functions */

/* Like ltablib's checktab: a table, or a value whose metatable has every field used. */
static void check_table(lua_State *L, int arg, const char *const *fields) {
    if (lua_type(L, arg) == LUA_TTABLE) return;
    if (lua_getmetatable(L, arg)) {
        bool has_all = true;
        for (const char *const *f = fields; *f; f++) {
            has_all = has_all && lua_getfield(L, -1, *f) != LUA_TNIL;
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
        if (has_all) return;
    }
    luaL_checktype(L, arg, LUA_TTABLE); /* raises the usual message */
}

static const char *const read_write_len[] = {"__index", "__newindex", "__len", NULL};
static const char *const read_only[] = {"__index", NULL};
static const char *const write_only[] = {"__newindex", NULL};

/* table.insert(t, [pos,] value) */
static int bounded_insert(lua_State *L) {
    check_table(L, 1, read_write_len);
    lua_Integer e = (lua_Integer)((lua_Unsigned)luaL_len(L, 1) + 1u); /* the first empty slot, wrapping as Lua's */
    lua_Integer pos;
    switch (lua_gettop(L)) {
    case 2: pos = e; break;
    case 3: {
        pos = luaL_checkinteger(L, 2);
        /* like Lua: pos in [1, e], checked as unsigned to catch negatives too */
        luaL_argcheck(L, (lua_Unsigned)pos - 1u < (lua_Unsigned)e, 2, "position out of bounds");
        const pattern_limits *limits = limits_of(L);
        lua_Unsigned count = 0;
        for (lua_Integer i = e; i > pos; i--) {
            lua_geti(L, 1, i - 1);
            lua_seti(L, 1, i);
            tick(L, limits, &count);
        }
        break;
    }
    default: return luaL_error(L, "wrong number of arguments to 'insert'");
    }
    lua_seti(L, 1, pos);
    return 0;
}

/* table.remove(t [, pos]) */
static int bounded_remove(lua_State *L) {
    check_table(L, 1, read_write_len);
    lua_Integer size = luaL_len(L, 1);
    lua_Integer pos = luaL_optinteger(L, 2, size);
    if (pos != size) /* a position given: in [1, size + 1] */
        luaL_argcheck(L, (lua_Unsigned)pos - 1u <= (lua_Unsigned)size, 2, "position out of bounds");
    lua_geti(L, 1, pos);
    const pattern_limits *limits = limits_of(L);
    lua_Unsigned count = 0;
    for (; pos < size; pos++) {
        lua_geti(L, 1, pos + 1);
        lua_seti(L, 1, pos);
        tick(L, limits, &count);
    }
    lua_pushnil(L);
    lua_seti(L, 1, pos);
    return 1;
}

/* table.move(a1, f, e, t [, a2]) */
static int bounded_move(lua_State *L) {
    lua_Integer f = luaL_checkinteger(L, 2);
    lua_Integer e = luaL_checkinteger(L, 3);
    lua_Integer t = luaL_checkinteger(L, 4);
    int tt = !lua_isnoneornil(L, 5) ? 5 : 1;
    check_table(L, 1, read_only);
    check_table(L, tt, write_only);
    if (e >= f) {
        luaL_argcheck(L, f > 0 || e < LUA_MAXINTEGER + f, 3, "too many elements to move");
        lua_Integer n = e - f + 1;
        luaL_argcheck(L, t <= LUA_MAXINTEGER - n + 1, 4, "destination wrap around");
        const pattern_limits *limits = limits_of(L);
        lua_Unsigned count = 0;
        if (t > e || t <= f || (tt != 1 && !lua_compare(L, 1, tt, LUA_OPEQ))) {
            for (lua_Integer i = 0; i < n; i++) {
                lua_geti(L, 1, f + i);
                lua_seti(L, tt, t + i);
                tick(L, limits, &count);
            }
        } else {
            for (lua_Integer i = n - 1; i >= 0; i--) {
                lua_geti(L, 1, f + i);
                lua_seti(L, tt, t + i);
                tick(L, limits, &count);
            }
        }
    }
    lua_pushvalue(L, tt);
    return 1;
}

void bounded_install(lua_State *L, int string_table, int table_table, const pattern_limits *limits) {
    string_table = lua_absindex(L, string_table);
    table_table = lua_absindex(L, table_table);
    lua_pushlightuserdata(L, (void *)limits);
    lua_pushcclosure(L, bounded_rep, 1);
    lua_setfield(L, string_table, "rep");
    static const luaL_Reg table_functions[] = {
        {"insert", bounded_insert}, {"remove", bounded_remove}, {"move", bounded_move}, {NULL, NULL}};
    for (const luaL_Reg *r = table_functions; r->name; r++) {
        lua_pushlightuserdata(L, (void *)limits);
        lua_pushcclosure(L, r->func, 1);
        lua_setfield(L, table_table, r->name);
    }
}

/* ------------------------------------------------------------------------ the parser */

typedef struct piece_reader {
    const pattern_limits *limits;
    const char *text;   /* what is left of the text being fed */
    size_t left;
    int function;       /* stack index of a reader function (load(fn)), 0 for a string */
    int slot;           /* where the function's last piece is kept alive */
} piece_reader;

/* Hands the parser at most BOUNDED_PIECE bytes, looking at the limits before each. When the
 * text is a function's, asks it for the next piece once the last is used up (as Lua's load
 * does: a string, or nil or "" at the end). Runs inside lua_load's protected call, so a
 * raise ends the load with an error status. */
static const char *piece_read(lua_State *L, void *ud, size_t *size) {
    piece_reader *r = ud;
    r->limits->check(L, r->limits->ud);
    if (r->left == 0 && r->function) {
        luaL_checkstack(L, 2, "too many nested functions");
        lua_pushvalue(L, r->function);
        lua_call(L, 0, 1);
        if (lua_isnil(L, -1)) {
            lua_pop(L, 1);
        } else if (!lua_isstring(L, -1)) {
            luaL_error(L, "reader function must return a string");
        } else {
            lua_replace(L, r->slot);
            r->text = lua_tolstring(L, r->slot, &r->left);
        }
    }
    *size = r->left < BOUNDED_PIECE ? r->left : BOUNDED_PIECE;
    const char *piece = r->text;
    r->text += *size;
    r->left -= *size;
    return *size ? piece : NULL;
}

int bounded_load_text(lua_State *L, const char *text, size_t len, const char *chunkname,
                      const pattern_limits *limits) {
    piece_reader r = {limits, text, len, 0, 0};
    return lua_load(L, piece_read, &r, chunkname, "t");
}

/* load(chunk [, chunkname [, mode [, env]]]): text chunks only (Lua does not verify
 * bytecode, and crafted bytecode is a known escape), parsed piece by piece under the limits.
 * Without env the chunk gets this state's globals, which are the sandbox's. */
static int bounded_load(lua_State *L) {
    const pattern_limits *limits = limits_of(L);
    int has_env = !lua_isnoneornil(L, 4); /* a nil env, as no env: the sandbox's globals */
    if (!lua_isnoneornil(L, 3) && strchr(luaL_checkstring(L, 3), 'b')) {
        luaL_pushfail(L);
        lua_pushliteral(L, "binary chunks are not allowed in the assay sandbox (mode must be \"t\")");
        return 2;
    }
    piece_reader r = {limits, NULL, 0, 0, 0};
    const char *chunkname;
    size_t len;
    const char *text = lua_tolstring(L, 1, &len);
    if (text) {
        chunkname = luaL_optstring(L, 2, text);
        r.text = text;
        r.left = len;
    } else {
        chunkname = luaL_optstring(L, 2, "=(load)");
        luaL_checktype(L, 1, LUA_TFUNCTION);
        r.function = 1;
    }
    lua_settop(L, 4);
    lua_pushnil(L); /* 5: the reader function's current piece */
    r.slot = 5;
    int status = lua_load(L, piece_read, &r, chunkname, "t");
    if (status != LUA_OK) {
        luaL_pushfail(L);
        lua_insert(L, -2);
        return 2;
    }
    if (has_env) {
        lua_pushvalue(L, 4);
        if (!lua_setupvalue(L, -2, 1)) lua_pop(L, 1); /* the first upvalue is _ENV */
    }
    return 1;
}

void bounded_install_load(lua_State *L, int globals, const pattern_limits *limits) {
    globals = lua_absindex(L, globals);
    lua_pushlightuserdata(L, (void *)limits);
    lua_pushcclosure(L, bounded_load, 1);
    lua_setfield(L, globals, "load");
}
