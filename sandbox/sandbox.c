/* sandbox.c - the lifecycle of one plugin's Lua state: allow-listed environment, memory
 * cap, time limit, plugin loading, and running `evaluate` for a trace.
 *
 * Isolation is structural: every plugin gets a state of its own (per worker), so plugins
 * cannot see each other's globals, string metatable or helper modules. Within a state the
 * environment is built by allow-list, never by removing things from a full one, and any
 * state that was stopped by a limit is thrown away and rebuilt from the plugin source.
 * Not here: threads and scheduling (host/worker.c), the text module (text.c), JSON (convert.c).
 */
#include "sandbox.h"
#include "sandbox_internal.h"
#include "../host/assay.h"

#include <lauxlib.h>
#include <lualib.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Instructions between two looks at the clock: ~5 µs of Lua, so a runaway loop is caught
 * within a few µs of its deadline while the clock costs well under 1%. */
#define SANDBOX_HOOK_INSTRUCTIONS 1000
#define SANDBOX_MAX_MODULE_BYTES (4u << 20)
#define SANDBOX_TRACEBACK_LINES 6

struct sandbox {
    lua_State *L;
    const sandbox_config *cfg_borrowed;
    sandbox_config cfg;
    size_t memory_used;
    bool memory_exceeded;  /* sticky until the next evaluation: see sandbox_hook */
    size_t refused_size;   /* the allocation refused last; see sandbox_alloc */
    bool timed_out;
    uint64_t deadline_ns;  /* monotonic; 0 = no limit running */
    int evaluate_ref, params_ref, randomseed_ref;
    bool is_trace_scope;
    bool is_broken;        /* a reload after a kill failed: every record is an error */
    char broken_message[512];
    sandbox_info info;     /* strings below are owned */
    char *name, *description, *scope, *params_json;
};

const char *sandbox_error_kind_name(sandbox_error_kind kind) {
    switch (kind) {
    case SANDBOX_OK: return "ok";
    case SANDBOX_ERR_RUNTIME: return "runtime";
    case SANDBOX_ERR_TIMEOUT: return "timeout";
    case SANDBOX_ERR_MEMORY: return "memory";
    case SANDBOX_ERR_HTTP: return "http";
    case SANDBOX_ERR_INPUT: return "input";
    case SANDBOX_ERR_CONFIG: return "config";
    }
    return "runtime";
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static sandbox *sandbox_of(lua_State *L) { return *(sandbox **)lua_getextraspace(L); }

/* ============================================================== output record storage */

void sandbox_output_init(sandbox_output *out) { memset(out, 0, sizeof *out); }

void sandbox_output_free(sandbox_output *out) {
    for (size_t i = 0; i < out->count; i++) {
        free(out->records[i].label);
        free(out->records[i].error_message);
    }
    free(out->records);
    buf_free(&out->jsonl);
    sandbox_output_init(out);
}

sandbox_record *sandbox_output_add(sandbox_output *out) {
    if (out->count == out->cap) {
        size_t cap = out->cap ? out->cap * 2 : 8;
        sandbox_record *grown = realloc(out->records, cap * sizeof *grown);
        if (!grown) return NULL;
        out->records = grown;
        out->cap = cap;
    }
    sandbox_record *r = &out->records[out->count++];
    memset(r, 0, sizeof *r);
    r->step = -1;
    r->pass = -1;
    return r;
}

/* ====================================================================== limits */

/* The memory cap. Lua passes the object type in osize when ptr is NULL, so only a non-NULL
 * ptr's osize is a size (counting it otherwise under-reports by ~6%). Shrinks never fail:
 * Lua assumes they cannot. */
static void *sandbox_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    sandbox *sb = ud;
    size_t old = ptr ? osize : 0;
    if (nsize == 0) {
        free(ptr);
        sb->memory_used -= old;
        return NULL;
    }
    if (sb->cfg.memory_limit && nsize > old && sb->memory_used - old + nsize > sb->cfg.memory_limit) {
        sb->memory_exceeded = true;
        sb->refused_size = nsize;
        return NULL;
    }
    void *p = realloc(ptr, nsize);
    if (!p) return NULL;
    sb->memory_used = sb->memory_used - old + nsize;
    /* Lua answers a refusal with an emergency collection and the same request again; when
     * that succeeds the plugin never saw an error, so the limit was not really hit. */
    if (sb->memory_exceeded && nsize >= sb->refused_size) sb->memory_exceeded = false;
    return p;
}

/* Runs every SANDBOX_HOOK_INSTRUCTIONS in every coroutine of the state (new threads inherit
 * the hook). Once a limit is passed the hook re-arms at count 1 and raises again at the next
 * instruction, so a plugin's pcall cannot swallow the kill and carry on. Hooks do not run
 * inside C functions: a long C call (a pattern match) ends before the kill lands. */
static void sandbox_hook(lua_State *L, lua_Debug *ar) {
    (void)ar;
    sandbox *sb = sandbox_of(L);
    if (sb->memory_exceeded) {
        lua_sethook(L, sandbox_hook, LUA_MASKCOUNT, 1);
        luaL_error(L, "memory limit exceeded");
    }
    if (sb->deadline_ns && now_ns() > sb->deadline_ns) {
        sb->timed_out = true;
        lua_sethook(L, sandbox_hook, LUA_MASKCOUNT, 1);
        luaL_error(L, "time limit exceeded");
    }
}

static void limits_arm(sandbox *sb) {
    sb->memory_exceeded = false;
    sb->timed_out = false;
    sb->deadline_ns = sb->cfg.timeout_ms ? now_ns() + (uint64_t)sb->cfg.timeout_ms * 1000000u : 0;
}

static void limits_disarm(sandbox *sb) { sb->deadline_ns = 0; }

/* =========================================================== the environment (allow-list) */

/* Names a plugin may try that the sandbox withholds, with what to say instead of "nil". */
static const struct { const char *name; const char *why; } withheld_globals[] = {
    {"io", "file access is not available in the assay sandbox"},
    {"debug", "the debug library is not available in the assay sandbox"},
    {"package", "package is not available in the assay sandbox; use require for plugins/lib helpers"},
    {"dofile", "dofile is not available in the assay sandbox; use require for plugins/lib helpers"},
    {"loadfile", "loadfile is not available in the assay sandbox; use require for plugins/lib helpers"},
    {"loadstring", "loadstring does not exist in Lua 5.4; use load (text chunks only)"},
    {"setfenv", "setfenv does not exist in Lua 5.4"},
    {"getfenv", "getfenv does not exist in Lua 5.4"},
};

/* __index of the globals table. [-2, +1, e] */
static int globals_index(lua_State *L) {
    const char *name = lua_tostring(L, 2);
    if (name) {
        for (size_t i = 0; i < sizeof withheld_globals / sizeof *withheld_globals; i++)
            if (strcmp(name, withheld_globals[i].name) == 0)
                return luaL_error(L, "'%s': %s", name, withheld_globals[i].why);
    }
    if (lua_toboolean(L, lua_upvalueindex(1)))
        return luaL_error(L, "undefined global '%s' (a typo, or a local declared out of scope?)",
                          name ? name : "?");
    lua_pushnil(L);
    return 1;
}

/* __newindex of the globals table once the plugin has loaded: a global written while
 * evaluating would carry state from one trace to the next, and make scores depend on which
 * worker saw which trace before. [-3, +0, e] */
static int globals_newindex(lua_State *L) {
    const char *name = lua_tostring(L, 2);
    return luaL_error(L,
                      "assignment to undeclared global '%s' while evaluating (declare it local; "
                      "keep state on purpose in a local at the top of the file)",
                      name ? name : "?");
}

/* Installs the globals metatable; strict once the plugin has loaded. [-0, +0, m] */
static void globals_protect(lua_State *L, bool strict) {
    lua_pushglobaltable(L);
    lua_createtable(L, 0, 3);
    lua_pushboolean(L, strict);
    lua_pushcclosure(L, globals_index, 1);
    lua_setfield(L, -2, "__index");
    if (strict) {
        lua_pushcfunction(L, globals_newindex);
        lua_setfield(L, -2, "__newindex");
    }
    lua_pushliteral(L, "locked");
    lua_setfield(L, -2, "__metatable"); /* setmetatable(_G, nil) must not lift this */
    lua_setmetatable(L, -2);
    lua_pop(L, 1);
}

/* __index of a library table: a clear refusal for the functions left out. [-2, +1, e] */
static int library_withheld(lua_State *L) {
    const char *library = lua_tostring(L, lua_upvalueindex(1));
    const char *name = lua_tostring(L, 2);
    return luaL_error(L, "%s.%s is not available in the assay sandbox", library, name ? name : "?");
}

static void library_refuse_missing(lua_State *L, int table, const char *library) {
    table = lua_absindex(L, table);
    lua_createtable(L, 0, 2);
    lua_pushstring(L, library);
    lua_pushcclosure(L, library_withheld, 1);
    lua_setfield(L, -2, "__index");
    lua_pushliteral(L, "locked");
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, table);
}

/* load(chunk [, chunkname [, mode [, env]]]) with the mode forced to "t": Lua does not
 * verify bytecode, and crafted bytecode is a known escape (Debian 12's 5.4.4 still segfaults
 * on some corrupted binary chunks). Without env the chunk gets this state's globals, which
 * are the sandbox's. [-(1|2|3|4), +(1|2), -] */
static int sandbox_load(lua_State *L) {
    lua_settop(L, 4);
    if (!lua_isnil(L, 3) && strchr(luaL_checkstring(L, 3), 'b')) {
        luaL_pushfail(L);
        lua_pushliteral(L, "binary chunks are not allowed in the assay sandbox (mode must be \"t\")");
        return 2;
    }
    lua_pushliteral(L, "t");
    lua_replace(L, 3);
    lua_pushvalue(L, lua_upvalueindex(1)); /* the original load */
    lua_insert(L, 1);
    bool has_env = !lua_isnoneornil(L, 5);
    if (!has_env) lua_settop(L, 4); /* an explicit nil env would give the chunk no globals */
    lua_call(L, has_env ? 4 : 3, LUA_MULTRET);
    return lua_gettop(L);
}

/* setmetatable refusing __gc: a finalizer runs at an arbitrary later allocation, in another
 * trace's evaluation or during lua_close, outside any time budget that makes sense. */
static int sandbox_setmetatable(lua_State *L) {
    if (lua_type(L, 2) == LUA_TTABLE) {
        lua_pushliteral(L, "__gc");
        if (lua_rawget(L, 2) != LUA_TNIL)
            return luaL_error(L, "__gc metamethods are not allowed in the assay sandbox");
        lua_pop(L, 1);
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    return 1;
}

/* collectgarbage: only "count". Forcing collections is a timing side channel and a known
 * ingredient of parser use-after-free bugs (CVE-2025-49844); the host manages the GC. */
static int sandbox_collectgarbage(lua_State *L) {
    const char *option = luaL_optstring(L, 1, "collect");
    if (strcmp(option, "count") != 0)
        return luaL_error(L, "collectgarbage(\"%s\") is not allowed in the assay sandbox (only \"count\")", option);
    int kb = lua_gc(L, LUA_GCCOUNT);
    int bytes = lua_gc(L, LUA_GCCOUNTB);
    lua_pushnumber(L, (lua_Number)kb + (lua_Number)bytes / 1024.0);
    return 1;
}

/* print: to the host's log callback, prefixed with the plugin's name. */
static int sandbox_print(lua_State *L) {
    sandbox *sb = sandbox_of(L);
    int n = lua_gettop(L);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = 1; i <= n; i++) {
        if (i > 1) luaL_addchar(&b, '\t');
        luaL_tolstring(L, i, NULL);
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    if (sb->cfg.log) sb->cfg.log(sb->cfg.log_ctx, sb->name ? sb->name : sb->cfg.path, lua_tostring(L, -1));
    return 0;
}

/* ------------------------------------------------------------------------ require */

static bool module_name_is_valid(const char *name) {
    if (!*name || *name == '.') return false;
    for (const char *p = name; *p; p++) {
        bool ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                  *p == '_' || (*p == '.' && p[1] != '.' && p[1] != '\0');
        if (!ok) return false;
    }
    return strlen(name) <= 128;
}

/* Reads a whole file into a Lua string on the stack, or returns false. [-0, +(0|1), m] */
static bool push_file_contents(lua_State *L, const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    size_t total = 0;
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0 && total <= SANDBOX_MAX_MODULE_BYTES) {
        luaL_addlstring(&b, chunk, n);
        total += n;
    }
    bool ok = !ferror(f) && total <= SANDBOX_MAX_MODULE_BYTES;
    fclose(f);
    luaL_pushresult(&b);
    if (!ok) lua_pop(L, 1);
    return ok;
}

/* require(name): host modules ("assay", "assay.text", "assay.json") and Lua helpers from the
 * configured lib directories only. Names are dotted identifiers, so "../x" and "/etc/x"
 * cannot name a file; C modules do not exist here. Helpers are loaded as text, run with
 * this state's globals, and cached. [-1, +1, e] */
static int sandbox_require(lua_State *L) {
    sandbox *sb = sandbox_of(L);
    const char *name = luaL_checkstring(L, 1);
    lua_settop(L, 1);
    lua_getfield(L, LUA_REGISTRYINDEX, "assay.modules"); /* 2: cache */
    lua_pushvalue(L, 1);
    if (lua_rawget(L, 2) != LUA_TNIL) return 1;
    lua_pop(L, 1);
    if (!module_name_is_valid(name))
        return luaL_error(L, "require: invalid module name '%s' (use dotted names such as "
                             "\"util\" or \"text.metrics\" for files in plugins/lib)", name);
    if (strncmp(name, "assay", 5) == 0 && (name[5] == '\0' || name[5] == '.'))
        return luaL_error(L, "require: no host module '%s' (available: assay, assay.text, assay.json)", name);
    for (size_t i = 0; i < sb->cfg.lib_dir_count; i++) {
        lua_pushfstring(L, "%s/%s.lua", sb->cfg.lib_dirs[i], name);
        char *path = (char *)lua_tostring(L, -1);
        for (char *p = path + strlen(sb->cfg.lib_dirs[i]) + 1; *p; p++)
            if (*p == '.' && strcmp(p, ".lua") != 0) *p = '/';
        if (!push_file_contents(L, path)) {
            lua_pop(L, 1);
            continue;
        }
        size_t len;
        const char *source = lua_tolstring(L, -1, &len);
        lua_pushfstring(L, "@%s", path);
        if (luaL_loadbufferx(L, source, len, lua_tostring(L, -1), "t") != LUA_OK) return lua_error(L);
        lua_pushvalue(L, 1);
        lua_call(L, 1, 1);
        if (lua_isnil(L, -1)) {
            lua_pop(L, 1);
            lua_pushboolean(L, 1);
        }
        lua_pushvalue(L, 1);
        lua_pushvalue(L, -2);
        lua_rawset(L, 2);
        return 1;
    }
    return luaL_error(L, "require: module '%s' not found in the plugin lib directories", name);
}

/* Copies the named fields of the table at -1 into a new table. [-0, +1, m] */
static void copy_fields(lua_State *L, const char *const *names) {
    int from = lua_gettop(L);
    lua_newtable(L);
    for (; *names; names++) {
        lua_getfield(L, from, *names);
        lua_setfield(L, -2, *names);
    }
}

/* Builds the environment in a fresh state. Runs protected. [-0, +0, m] */
static int environment_build(lua_State *L) {
    static const struct { const char *name; lua_CFunction open; } allowed[] = {
        {LUA_GNAME, luaopen_base},       {LUA_STRLIBNAME, luaopen_string},
        {LUA_TABLIBNAME, luaopen_table}, {LUA_MATHLIBNAME, luaopen_math},
        {LUA_UTF8LIBNAME, luaopen_utf8}, {LUA_COLIBNAME, luaopen_coroutine},
    };
    for (size_t i = 0; i < sizeof allowed / sizeof *allowed; i++) {
        luaL_requiref(L, allowed[i].name, allowed[i].open, 1);
        lua_pop(L, 1);
    }
    convert_init_state(L);
    /* os: the clock and calendar functions only, never getenv (API keys live there) */
    luaL_requiref(L, LUA_OSLIBNAME, luaopen_os, 0);
    static const char *const os_allowed[] = {"time", "clock", "date", "difftime", NULL};
    copy_fields(L, os_allowed);
    library_refuse_missing(L, -1, "os");
    lua_setglobal(L, "os");
    lua_pop(L, 1);

    lua_pushglobaltable(L);
    int g = lua_gettop(L);
    lua_pushnil(L);
    lua_setfield(L, g, "dofile");
    lua_pushnil(L);
    lua_setfield(L, g, "loadfile");
    lua_getfield(L, g, "load");
    lua_pushcclosure(L, sandbox_load, 1);
    lua_setfield(L, g, "load");
    lua_getfield(L, g, "setmetatable");
    lua_pushcclosure(L, sandbox_setmetatable, 1);
    lua_setfield(L, g, "setmetatable");
    lua_pushcfunction(L, sandbox_collectgarbage);
    lua_setfield(L, g, "collectgarbage");
    lua_pushcfunction(L, sandbox_print);
    lua_setfield(L, g, "print");
    lua_pushnil(L);
    lua_setfield(L, g, "warn"); /* would write to the host's stderr once switched on */
    lua_pushcfunction(L, sandbox_require);
    lua_setfield(L, g, "require");

    lua_getfield(L, g, "string");
    lua_pushnil(L);
    lua_setfield(L, -2, "dump");
    library_refuse_missing(L, -1, "string");
    lua_pop(L, 1);
    /* getmetatable("") must not hand out the shared string metatable */
    lua_pushliteral(L, "");
    lua_getmetatable(L, -1);
    lua_pushliteral(L, "string");
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 2);

    /* host modules: the global `assay`, also reachable through require */
    lua_newtable(L); /* module cache for require */
    lua_newtable(L); /* assay */
    text_open(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, -4, "assay.text");
    lua_setfield(L, -2, "text");
    convert_open_json(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, -4, "assay.json");
    lua_setfield(L, -2, "json");
    convert_push_null(L);
    lua_setfield(L, -2, "null");
    lua_pushliteral(L, "assay " ASSAY_VERSION_STRING);
    lua_setfield(L, -2, "version");
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "assay");
    lua_setfield(L, g, "assay");
    lua_setfield(L, LUA_REGISTRYINDEX, "assay.modules");

    globals_protect(L, false);
    lua_pop(L, 1);
    return 0;
}

/* ============================================================= loading the plugin */

/* Message handler: the error text plus a short Lua-only traceback. [-1, +1, m] */
static int message_with_traceback(lua_State *L) {
    const char *message = lua_tostring(L, 1);
    if (!message) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) return 1;
        message = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    luaL_traceback(L, L, message, 1);
    return 1;
}

static char *dup_string(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

static bool name_is_valid(const char *name) {
    if (!*name) return false;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-'))
            return false;
    return true;
}

/* Types an override's text the way its default is typed. [-0, +1, e] */
static void push_override(lua_State *L, const char *plugin, const sandbox_param_override *o, int default_type) {
    switch (default_type) {
    case LUA_TNUMBER: {
        if (!lua_stringtonumber(L, o->value))
            luaL_error(L, "param %s.%s: '%s' is not a number", plugin, o->key, o->value);
        return;
    }
    case LUA_TBOOLEAN:
        if (strcmp(o->value, "true") == 0) lua_pushboolean(L, 1);
        else if (strcmp(o->value, "false") == 0) lua_pushboolean(L, 0);
        else luaL_error(L, "param %s.%s: '%s' is not true or false", plugin, o->key, o->value);
        return;
    case LUA_TSTRING: lua_pushstring(L, o->value); return;
    default: luaL_error(L, "param %s.%s cannot be set from the command line (it is a %s)", plugin, o->key,
                        lua_typename(L, default_type));
    }
}

static int params_newindex(lua_State *L) {
    return luaL_error(L, "params are read-only (copy the value into a local to change it)");
}

static int params_next(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 2);
    if (lua_next(L, 1)) return 2;
    lua_pushnil(L);
    return 1;
}

/* pairs(params) walks the real table behind the read-only view. */
static int params_pairs(lua_State *L) {
    lua_pushcfunction(L, params_next);
    if (!lua_getmetatable(L, 1)) return luaL_error(L, "params view without metatable");
    lua_getfield(L, -1, "__index");
    lua_remove(L, -2);
    lua_pushnil(L);
    return 3;
}

/* Runs the plugin chunk and checks the table it returns. Runs protected, with the plugin
 * path and source as light userdata args. On success leaves refs in sb. [-0, +0, e] */
static int plugin_load_body(lua_State *L) {
    sandbox *sb = sandbox_of(L);
    const sandbox_config *cfg = &sb->cfg;
    lua_pushcfunction(L, message_with_traceback);
    int handler = lua_gettop(L);
    lua_pushfstring(L, "@%s", cfg->path);
    if (luaL_loadbufferx(L, cfg->source, cfg->source_len, lua_tostring(L, -1), "t") != LUA_OK) return lua_error(L);
    if (lua_pcall(L, 0, 1, handler) != LUA_OK) return lua_error(L);
    if (!lua_istable(L, -1))
        return luaL_error(L, "%s: the plugin must return a table with an evaluate function (got %s)", cfg->path,
                          luaL_typename(L, -1));
    int plugin = lua_gettop(L);

    if (lua_getfield(L, plugin, "evaluate") != LUA_TFUNCTION)
        return luaL_error(L, "%s: the returned table has no evaluate function (evaluate = function(trace, params, "
                             "step, index) ... end)", cfg->path);
    sb->evaluate_ref = luaL_ref(L, LUA_REGISTRYINDEX);

    int t = lua_getfield(L, plugin, "name");
    if (t == LUA_TNIL) {
        const char *base = strrchr(cfg->path, '/');
        base = base ? base + 1 : cfg->path;
        size_t n = strlen(base);
        if (n > 4 && strcmp(base + n - 4, ".lua") == 0) n -= 4;
        lua_pop(L, 1);
        lua_pushlstring(L, base, n);
    } else if (t != LUA_TSTRING) {
        return luaL_error(L, "%s: name must be a string (got %s)", cfg->path, lua_typename(L, t));
    }
    if (!name_is_valid(lua_tostring(L, -1)))
        return luaL_error(L, "%s: name '%s' may only use letters, digits, '_' and '-'", cfg->path, lua_tostring(L, -1));
    int name_index = lua_gettop(L);

    t = lua_getfield(L, plugin, "scope");
    if (t == LUA_TNIL) {
        lua_pop(L, 1);
        lua_pushliteral(L, "trace");
    } else if (t != LUA_TSTRING || lua_rawlen(L, -1) == 0) {
        return luaL_error(L, "%s: scope must be \"trace\" or a step type such as \"search\"", cfg->path);
    }
    int scope_index = lua_gettop(L);

    t = lua_getfield(L, plugin, "description");
    if (t != LUA_TNIL && t != LUA_TSTRING)
        return luaL_error(L, "%s: description must be a string (got %s)", cfg->path, lua_typename(L, t));
    int description_index = lua_gettop(L);

    t = lua_getfield(L, plugin, "params");
    if (t == LUA_TNIL) {
        lua_pop(L, 1);
        lua_newtable(L);
    } else if (t != LUA_TTABLE) {
        return luaL_error(L, "%s: params must be a table (got %s)", cfg->path, lua_typename(L, t));
    }
    int params = lua_gettop(L);
    const char *name = lua_tostring(L, name_index);
    for (size_t i = 0; i < cfg->override_count; i++) {
        const sandbox_param_override *o = &cfg->overrides[i];
        int default_type = lua_getfield(L, params, o->key);
        lua_pop(L, 1);
        if (default_type == LUA_TNIL)
            return luaL_error(L, "param %s.%s: the plugin has no param '%s' (see: assay list)", name, o->key, o->key);
        push_override(L, name, o, default_type);
        lua_setfield(L, params, o->key);
    }

    /* read-only view: a plugin that wrote into params would change them for later traces */
    lua_newtable(L);
    lua_createtable(L, 0, 4);
    lua_pushvalue(L, params);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, params_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_pushcfunction(L, params_pairs);
    lua_setfield(L, -2, "__pairs");
    lua_pushliteral(L, "params");
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
    sb->params_ref = luaL_ref(L, LUA_REGISTRYINDEX);

    if (!sb->name) { /* first load: record what list/check show */
        buf json;
        buf_init(&json);
        char err[160];
        int status = convert_lua_to_json(L, params, &json, err, sizeof err);
        /* an empty params table encodes as [] (see convert.c); params are a map */
        if (status == 0 && strcmp(buf_cstr(&json), "[]") == 0) buf_reset(&json), buf_puts(&json, "{}");
        sb->params_json = status == 0 && !buf_failed(&json) ? buf_steal(&json) : dup_string("{}");
        buf_free(&json);
        sb->name = dup_string(name);
        sb->scope = dup_string(lua_tostring(L, scope_index));
        sb->description = dup_string(lua_isstring(L, description_index) ? lua_tostring(L, description_index) : "");
        if (!sb->name || !sb->scope || !sb->description || !sb->params_json)
            return luaL_error(L, "not enough memory");
        sb->info = (sandbox_info){sb->name, sb->description, sb->scope, sb->params_json};
    }
    sb->is_trace_scope = strcmp(lua_tostring(L, scope_index), "trace") == 0;

    lua_getglobal(L, "math");
    lua_getfield(L, -1, "randomseed");
    sb->randomseed_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    globals_protect(L, true);
    return 0;
}

/* Opens a state and loads the plugin into it; on failure leaves no state and a message. */
static bool state_open(sandbox *sb, char *err, size_t errlen) {
    sb->memory_used = 0;
    lua_State *L = lua_newstate(sandbox_alloc, sb);
    if (!L) {
        snprintf(err, errlen, "%s: cannot create a Lua state (out of memory)", sb->cfg.path);
        return false;
    }
    *(sandbox **)lua_getextraspace(L) = sb;
    lua_sethook(L, sandbox_hook, LUA_MASKCOUNT, SANDBOX_HOOK_INSTRUCTIONS);
    sb->L = L;
    limits_arm(sb);
    lua_pushcfunction(L, environment_build);
    int status = lua_pcall(L, 0, 0, 0);
    if (status == LUA_OK) {
        lua_pushcfunction(L, plugin_load_body);
        status = lua_pcall(L, 0, 0, 0);
    }
    limits_disarm(sb);
    if (status == LUA_OK) return true;
    const char *message = lua_tostring(L, -1);
    if (sb->timed_out)
        snprintf(err, errlen, "%s: loading took longer than the %u ms time limit", sb->cfg.path, sb->cfg.timeout_ms);
    else if (sb->memory_exceeded || status == LUA_ERRMEM)
        snprintf(err, errlen, "%s: loading exceeded the %zu MiB memory limit", sb->cfg.path,
                 sb->cfg.memory_limit >> 20);
    else
        snprintf(err, errlen, "%s", message ? message : "plugin failed to load");
    lua_close(L);
    sb->L = NULL;
    return false;
}

static void state_close(sandbox *sb) {
    if (!sb->L) return;
    lua_close(sb->L);
    sb->L = NULL;
}

sandbox *sandbox_new(const sandbox_config *cfg, char *err, size_t errlen) {
    sandbox *sb = calloc(1, sizeof *sb);
    if (!sb) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    sb->cfg = *cfg;
    if (!state_open(sb, err, errlen)) {
        sandbox_free(sb);
        return NULL;
    }
    return sb;
}

void sandbox_free(sandbox *sb) {
    if (!sb) return;
    state_close(sb);
    free(sb->name);
    free(sb->description);
    free(sb->scope);
    free(sb->params_json);
    free(sb);
}

const sandbox_info *sandbox_get_info(const sandbox *sb) { return &sb->info; }


/* Rebuilds the state after a kill: a state stopped mid-evaluation may hold half-updated
 * module data, so nothing of it is trusted. */
static void state_rebuild(sandbox *sb) {
    state_close(sb);
    char err[256];
    if (!state_open(sb, err, sizeof err)) {
        sb->is_broken = true;
        snprintf(sb->broken_message, sizeof sb->broken_message, "plugin could not be reloaded after a limit: %s", err);
    }
}

/* ======================================================================= evaluation */

/* Writes the common head of a record: {"trace_id":…,"evaluator":…,"step":… */
static void record_head(buf *b, const char *trace_id, const char *evaluator, long step) {
    buf_puts(b, "{\"trace_id\":");
    buf_json_cstring(b, trace_id);
    buf_puts(b, ",\"evaluator\":");
    buf_json_cstring(b, evaluator);
    buf_puts(b, ",\"step\":");
    if (step < 0) buf_puts(b, "null");
    else buf_printf(b, "%ld", step);
}

/* What one call of evaluate produced, filled inside the protected region. */
typedef struct evaluation {
    const char *trace_id;
    long step;               /* 0-based step index, -1 for trace scope */
    sandbox_error_kind error;
    buf message;             /* error message */
    buf traceback;
    buf details;             /* JSON, empty = null */
    char *label;
    double score;
    bool has_score;
    signed char pass;
} evaluation;

static uint64_t seed_for(const char *trace_id, long step) {
    uint64_t h = 1469598103934665603u; /* FNV-1a: a stable seed per (trace, step) */
    for (const unsigned char *p = (const unsigned char *)trace_id; *p; p++) h = (h ^ *p) * 1099511628211u;
    return h ^ (uint64_t)(step + 1) * 0x9E3779B97F4A7C15u;
}

/* Keeps the Lua frames of a traceback, at most SANDBOX_TRACEBACK_LINES. */
static void short_traceback(const char *full, buf *out) {
    const char *p = strstr(full, "stack traceback:");
    if (!p) return;
    p = strchr(p, '\n');
    int kept = 0;
    while (p && *p && kept < SANDBOX_TRACEBACK_LINES) {
        p++;
        while (*p == '\t') p++;
        const char *end = strchr(p, '\n');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n && strncmp(p, "[C]", 3) != 0 && strncmp(p, "(...tail calls...)", 18) != 0) {
            if (kept++) buf_putc(out, '\n');
            buf_append(out, p, n);
        }
        p = end;
    }
}

/* Reads evaluate's first result (on top of L) into ev. [-0, +0, e] */
static void read_result(lua_State *L, evaluation *ev) {
    int r = lua_gettop(L);
    switch (lua_type(L, r)) {
    case LUA_TNUMBER:
        ev->score = lua_tonumber(L, r);
        ev->has_score = true;
        break;
    case LUA_TBOOLEAN: ev->pass = (signed char)lua_toboolean(L, r); break;
    case LUA_TTABLE: {
        int t = (lua_pushliteral(L, "score"), lua_rawget(L, r));
        if (t == LUA_TNUMBER) ev->score = lua_tonumber(L, -1), ev->has_score = true;
        else if (t != LUA_TNIL) luaL_error(L, "evaluate returned score of type %s (a number in [0, 1] or nil)", lua_typename(L, t));
        t = (lua_pushliteral(L, "pass"), lua_rawget(L, r));
        if (t == LUA_TBOOLEAN) ev->pass = (signed char)lua_toboolean(L, -1);
        else if (t != LUA_TNIL) luaL_error(L, "evaluate returned pass of type %s (a boolean or nil)", lua_typename(L, t));
        t = (lua_pushliteral(L, "label"), lua_rawget(L, r));
        if (t == LUA_TSTRING || t == LUA_TNUMBER) {
            ev->label = dup_string(lua_tostring(L, -1));
            if (!ev->label) luaL_error(L, "not enough memory");
        } else if (t != LUA_TNIL) {
            luaL_error(L, "evaluate returned label of type %s (a string or nil)", lua_typename(L, t));
        }
        t = (lua_pushliteral(L, "details"), lua_rawget(L, r));
        if (t == LUA_TTABLE) {
            char err[160];
            if (convert_lua_to_json(L, -1, &ev->details, err, sizeof err) != 0) luaL_error(L, "details: %s", err);
            if (strcmp(buf_cstr(&ev->details), "[]") == 0) buf_reset(&ev->details), buf_puts(&ev->details, "{}");
        } else if (t != LUA_TNIL) {
            luaL_error(L, "evaluate returned details of type %s (a table or nil)", lua_typename(L, t));
        }
        lua_settop(L, r);
        break;
    }
    default:
        luaL_error(L, "evaluate must return a table, a number or a boolean (got %s)", luaL_typename(L, r));
    }
    if (ev->has_score && !(ev->score >= 0.0 && ev->score <= 1.0))
        luaL_error(L, "evaluate returned score %f; a score must be a number in [0, 1] or nil", ev->score);
}

/* The protected part of one evaluation. Stack on entry: trace, index|nil, evaluation*.
 * Runs evaluate in a fresh coroutine so that a later I/O layer can suspend it (SPEC §3); a
 * yield that reaches us now did not come from the host. Raw access only: the plugin may
 * have put a metatable on the trace while evaluating an earlier step. [-3, +0, e] */
static int evaluate_body(lua_State *L) {
    sandbox *sb = sandbox_of(L);
    evaluation *ev = lua_touserdata(L, 3);
    if (ev->step >= 0) {
        lua_pushliteral(L, "steps");
        lua_rawget(L, 1);
        lua_rawgeti(L, -1, lua_tointeger(L, 2));
        lua_remove(L, -2); /* stack: trace, index, ev, step */
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, sb->randomseed_ref);
    lua_pushinteger(L, (lua_Integer)seed_for(ev->trace_id, ev->step));
    lua_call(L, 1, 0);

    lua_State *co = lua_newthread(L);
    int co_index = lua_gettop(L);
    int nargs = ev->step >= 0 ? 4 : 2;
    lua_rawgeti(L, LUA_REGISTRYINDEX, sb->evaluate_ref);
    lua_pushvalue(L, 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, sb->params_ref);
    if (ev->step >= 0) {
        lua_pushvalue(L, 4);
        lua_pushvalue(L, 2);
    }
    lua_xmove(L, co, nargs + 1);
    int nresults = 0;
    int status = lua_resume(co, L, nargs, &nresults);
    if (status == LUA_OK) {
        if (nresults == 0) luaL_error(L, "evaluate returned nothing (return a table, a number or a boolean)");
        lua_pop(co, nresults - 1);
        lua_xmove(co, L, 1);
        read_result(L, ev);
        return 0;
    }
    if (status == LUA_YIELD) {
        ev->error = SANDBOX_ERR_RUNTIME;
        buf_puts(&ev->message, "evaluate yielded outside an assay I/O call (coroutine.yield at the top level)");
        return 0;
    }
    ev->error = status == LUA_ERRMEM ? SANDBOX_ERR_MEMORY : SANDBOX_ERR_RUNTIME;
    const char *message = lua_tostring(co, -1);
    if (message) buf_puts(&ev->message, message);
    else buf_printf(&ev->message, "(error object is a %s value)", luaL_typename(co, -1));
    luaL_traceback(L, co, NULL, 0);
    short_traceback(lua_tostring(L, -1), &ev->traceback);
    lua_settop(L, co_index - 1);
    return 0;
}

static void write_record(sandbox *sb, const evaluation *ev, double ms, sandbox_output *out) {
    sandbox_record *rec = sandbox_output_add(out);
    buf *b = &out->jsonl;
    record_head(b, ev->trace_id, sb->name, ev->step);
    bool ok = ev->error == SANDBOX_OK;
    buf_puts(b, ",\"score\":");
    if (ok && ev->has_score) buf_json_number(b, ev->score);
    else buf_puts(b, "null");
    buf_puts(b, ",\"pass\":");
    buf_puts(b, !ok || ev->pass < 0 ? "null" : ev->pass ? "true" : "false");
    buf_puts(b, ",\"label\":");
    buf_json_cstring(b, ok ? ev->label : NULL);
    buf_puts(b, ",\"details\":");
    if (ok && ev->details.len) buf_append(b, ev->details.data, ev->details.len);
    else buf_puts(b, "null");
    buf_puts(b, ",\"error\":");
    if (ok) {
        buf_puts(b, "null");
    } else {
        buf_puts(b, "{\"kind\":");
        buf_json_cstring(b, sandbox_error_kind_name(ev->error));
        buf_puts(b, ",\"message\":");
        buf_json_string(b, buf_cstr((buf *)&ev->message), ev->message.len);
        if (ev->traceback.len) {
            buf_puts(b, ",\"traceback\":");
            buf_json_string(b, ev->traceback.data, ev->traceback.len);
        }
        buf_putc(b, '}');
    }
    buf_puts(b, ",\"ms\":");
    if (sb->cfg.record_timing) buf_json_number(b, round(ms * 1000.0) / 1000.0);
    else buf_puts(b, "null");
    buf_puts(b, "}\n");
    if (!rec) return;
    rec->step = ev->step;
    rec->error = ev->error;
    rec->ms = ms;
    if (ok) {
        rec->has_score = ev->has_score;
        rec->score = ev->score;
        rec->pass = ev->pass;
        rec->label = ev->label ? dup_string(ev->label) : NULL;
    } else {
        rec->error_message = dup_string(buf_cstr((buf *)&ev->message));
    }
}

static void evaluation_reset(evaluation *ev, const char *trace_id, long step) {
    buf_reset(&ev->message);
    buf_reset(&ev->traceback);
    buf_reset(&ev->details);
    free(ev->label);
    ev->label = NULL;
    ev->trace_id = trace_id;
    ev->step = step;
    ev->error = SANDBOX_OK;
    ev->has_score = false;
    ev->score = 0;
    ev->pass = -1;
}

/* Classifies a failed or limited evaluation and rebuilds the state when it was killed.
 * Returns true when the state was rebuilt (the trace must be pushed again). */
static bool settle_limits(sandbox *sb, int status, evaluation *ev) {
    bool killed = sb->timed_out || sb->memory_exceeded || status == LUA_ERRMEM || ev->error == SANDBOX_ERR_MEMORY;
    if (status != LUA_OK && !killed) {
        ev->error = SANDBOX_ERR_RUNTIME;
        buf_reset(&ev->message);
        bool is_text = lua_type(sb->L, -1) == LUA_TSTRING;
        buf_puts(&ev->message, is_text ? lua_tostring(sb->L, -1) : "error while reading the result of evaluate");
    }
    if (!killed) return false;
    buf_reset(&ev->message);
    buf_reset(&ev->traceback);
    if (sb->timed_out) {
        ev->error = SANDBOX_ERR_TIMEOUT;
        buf_printf(&ev->message, "evaluation exceeded the %u ms time limit (--timeout-ms)", sb->cfg.timeout_ms);
    } else {
        ev->error = SANDBOX_ERR_MEMORY;
        buf_printf(&ev->message, "evaluation exceeded the %zu MiB memory limit of its Lua state (--memory-mb)",
                   sb->cfg.memory_limit >> 20);
    }
    state_rebuild(sb);
    return true;
}

/* Pushes the trace as a Lua table at index 1 of an empty stack; false on failure. */
static bool push_trace(sandbox *sb, const cJSON *trace, evaluation *ev) {
    lua_settop(sb->L, 0);
    limits_arm(sb);
    int status = convert_pcall_push_json(sb->L, trace);
    limits_disarm(sb);
    if (status == LUA_OK) return true;
    settle_limits(sb, status, ev);
    return false;
}

static void write_broken(sandbox *sb, const char *trace_id, sandbox_output *out) {
    evaluation ev = {0};
    evaluation_reset(&ev, trace_id, -1);
    ev.error = SANDBOX_ERR_CONFIG;
    buf_puts(&ev.message, sb->broken_message);
    write_record(sb, &ev, 0, out);
    evaluation_reset(&ev, NULL, -1);
    buf_free(&ev.message), buf_free(&ev.traceback), buf_free(&ev.details);
}

/* Evaluates one trace-or-step; returns false if the state was rebuilt. */
static bool evaluate_one(sandbox *sb, evaluation *ev, lua_Integer index, sandbox_output *out) {
    lua_State *L = sb->L;
    lua_settop(L, 1); /* the trace stays at 1 for the next step */
    lua_pushcfunction(L, evaluate_body);
    lua_pushvalue(L, 1);
    if (index > 0) lua_pushinteger(L, index);
    else lua_pushnil(L);
    lua_pushlightuserdata(L, ev);
    uint64_t start = now_ns();
    limits_arm(sb);
    int status = lua_pcall(L, 3, 0, 0);
    limits_disarm(sb);
    double ms = (double)(now_ns() - start) / 1e6;
    bool rebuilt = settle_limits(sb, status, ev);
    write_record(sb, ev, ms, out);
    return !rebuilt;
}

void sandbox_evaluate(sandbox *sb, const cJSON *trace, const char *trace_id, sandbox_output *out) {
    if (sb->is_broken) {
        write_broken(sb, trace_id, out);
        return;
    }
    evaluation ev = {0};
    evaluation_reset(&ev, trace_id, -1);
    if (sb->is_trace_scope) {
        if (push_trace(sb, trace, &ev)) evaluate_one(sb, &ev, 0, out);
        else write_record(sb, &ev, 0, out);
    } else {
        const cJSON *steps = cJSON_GetObjectItemCaseSensitive(trace, "steps");
        bool pushed = false;
        long i = 0;
        for (const cJSON *step = cJSON_IsArray(steps) ? steps->child : NULL; step; step = step->next, i++) {
            const cJSON *type = cJSON_GetObjectItemCaseSensitive(step, "type");
            if (!cJSON_IsObject(step) || !cJSON_IsString(type) || strcmp(type->valuestring, sb->scope) != 0) continue;
            evaluation_reset(&ev, trace_id, i);
            if (sb->is_broken) {
                ev.error = SANDBOX_ERR_CONFIG;
                buf_puts(&ev.message, sb->broken_message);
                write_record(sb, &ev, 0, out);
                continue;
            }
            if (!pushed && !(pushed = push_trace(sb, trace, &ev))) {
                write_record(sb, &ev, 0, out);
                continue;
            }
            pushed = evaluate_one(sb, &ev, (lua_Integer)i + 1, out);
        }
    }
    if (sb->L) lua_settop(sb->L, 0);
    evaluation_reset(&ev, NULL, -1);
    buf_free(&ev.message);
    buf_free(&ev.traceback);
    buf_free(&ev.details);
}
