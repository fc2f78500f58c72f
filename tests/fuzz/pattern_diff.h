/* pattern_diff.h - runs one string.find/match/gmatch/gsub call in two Lua states, one with
 * Lua's own string library and one with pattern.c's functions installed, and describes each
 * outcome (results with their types, or the error message) as text to compare. Shared by
 * tests/unit/test_pattern.c (fixed cases) and tests/fuzz/fuzz_pattern.c (any input). */
#ifndef ASSAY_PATTERN_DIFF_H
#define ASSAY_PATTERN_DIFF_H

#include <lauxlib.h>
#include <lualib.h>
#include <stdbool.h>
#include <string.h>

#include "../../sandbox/pattern.h"

/* The call, in Lua so that both states run exactly the same code around the functions. */
static const char pattern_diff_runner[] =
    "local replacements = {\n"
    "  '<%1>', '%0%0', '%%', 'x%2', '%', '%9', '[%1|%0]', '',\n"
    "  {a = 'A', ab = 7, [1] = 'one', b = false, c = {}},\n"
    "  function(...) return select('#', ...) .. ':' .. tostring((...)) end,\n"
    "  function() return nil end,\n"
    "  function(c) return c == 'a' and {} or nil end,\n"
    "  42, '%a',\n"
    "}\n"
    "local function describe(...)\n"
    "  if select('#', ...) == 0 then return '(nothing)' end\n"
    "  local out = {}\n"
    "  for i = 1, select('#', ...) do\n"
    "    local v = select(i, ...)\n"
    "    out[#out + 1] = type(v) == 'string' and string.format('%q', v) or (math.type(v) or type(v)) .. ' ' .. tostring(v)\n"
    "  end\n"
    "  return table.concat(out, ', ')\n"
    "end\n"
    "local function call(mode, s, p, init, plain, replacement, n)\n"
    "  if mode == 0 then return describe(string.find(s, p, init, plain)) end\n"
    "  if mode == 1 then return describe(string.match(s, p, init)) end\n"
    "  if mode == 2 then\n"
    "    local it, out = string.gmatch(s, p, init), {}\n"
    "    for _ = 1, 300 do\n"
    "      local r = table.pack(it())\n"
    "      out[#out + 1] = describe(table.unpack(r, 1, r.n))\n"
    "      if r[1] == nil then break end\n"
    "    end\n"
    "    return table.concat(out, '; ')\n"
    "  end\n"
    "  return describe(string.gsub(s, p, replacements[replacement], n))\n"
    "end\n"
    "return function(...)\n"
    "  local ok, result = pcall(call, ...)\n"
    "  return (ok and 'ok: ' or 'error: ') .. tostring(result)\n"
    "end\n";

typedef struct pattern_diff_call {
    int mode; /* 0 find, 1 match, 2 gmatch, 3 gsub */
    const char *subject;
    size_t subject_len;
    const char *pattern;
    size_t pattern_len;
    long long init; /* 0: not given */
    bool is_plain;
    int replacement; /* 1..14 in the runner's list */
    long long max_n; /* 0: not given */
} pattern_diff_call;

/* A state with the standard libraries and the runner at the top of the registry's
 * "pattern_diff" field; limits NULL keeps Lua's own functions. */
static lua_State *pattern_diff_state_new(const pattern_limits *limits) {
    lua_State *L = luaL_newstate();
    if (!L) return NULL;
    luaL_openlibs(L);
    if (limits) {
        lua_getglobal(L, "string");
        pattern_install(L, -1, limits);
        lua_pop(L, 1);
    }
    if (luaL_dostring(L, pattern_diff_runner) != LUA_OK) {
        lua_close(L);
        return NULL;
    }
    lua_setfield(L, LUA_REGISTRYINDEX, "pattern_diff");
    return L;
}

/* Runs the call; the description is copied to out (truncated to outlen). */
static void pattern_diff_run(lua_State *L, const pattern_diff_call *c, char *out, size_t outlen) {
    lua_getfield(L, LUA_REGISTRYINDEX, "pattern_diff");
    lua_pushinteger(L, c->mode);
    lua_pushlstring(L, c->subject, c->subject_len);
    lua_pushlstring(L, c->pattern, c->pattern_len);
    if (c->init) lua_pushinteger(L, c->init);
    else lua_pushnil(L);
    lua_pushboolean(L, c->is_plain);
    lua_pushinteger(L, c->replacement);
    if (c->max_n) lua_pushinteger(L, c->max_n);
    else lua_pushnil(L);
    const char *text = lua_pcall(L, 7, 1, 0) == LUA_OK ? lua_tostring(L, -1) : "runner failed";
    size_t n = strlen(text ? text : "");
    if (n >= outlen) n = outlen - 1;
    memcpy(out, text ? text : "", n);
    out[n] = '\0';
    lua_settop(L, 0);
}

#endif
