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
#include "pattern.h"
#include "pool.h"
#include "sort.h"
#include "bounded.h"
#include "../host/base/hash.h"

#include <lauxlib.h>
#include <lualib.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

/* Instructions between two looks at the clock: ~5 µs of Lua, so a runaway loop is caught
 * within a few µs of its deadline while the clock costs well under 1%. */
#define SANDBOX_HOOK_INSTRUCTIONS 1000
#define SANDBOX_MAX_MODULE_BYTES (4u << 20)
#define SANDBOX_TRACEBACK_LINES 6
/* Steps of one trace a step-scoped plugin may be killed on before the rest are not run. */
#define SANDBOX_MAX_KILLS_PER_TRACE 3
#define SANDBOX_MAX_PRINT_BYTES (64u << 10)

/* One Lua state of a plugin. A sandbox has one current state; after a kill it opens a fresh
 * one and retires the old: evaluations suspended in it on I/O finish there, and it is closed
 * when the last of them ends. The allocator and the hook see this struct. */
typedef struct sstate {
    sandbox *sb;
    lua_State *L;
    pool pool;             /* Lua's small blocks */
    size_t memory_used;
    bool memory_exceeded;  /* sticky until the next run: see sandbox_hook */
    size_t refused_size;   /* the allocation refused last; see sandbox_alloc */
    bool timed_out;
    uint64_t deadline_ns;  /* monotonic; 0 = no limit running */
    int evaluate_ref, params_ref, randomseed_ref;
    size_t printed;        /* bytes print wrote in this evaluation */
    unsigned suspended;    /* tasks waiting on I/O in this state */
    bool is_retired;
    sandbox_task *running; /* the task whose coroutine runs now; I/O calls attach to it */
} sstate;

struct sandbox {
    sstate *st;            /* current state; NULL when broken */
    sandbox_config cfg;
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

static sstate *state_of(lua_State *L) { return *(sstate **)lua_getextraspace(L); }
static sandbox *sandbox_of(lua_State *L) { return state_of(L)->sb; }

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

/* The memory cap. It counts what the state costs: blocks left to malloc as they live, and
 * the pool's chunks whole (a freed small block stays in its chunk), plus what host
 * functions charge for memory they hold outside Lua while they run (sandbox_charge). Lua
 * passes the object type in osize when ptr is NULL, so only a non-NULL ptr's osize is a
 * size. Shrinks never fail: Lua assumes they cannot. */
static void *sandbox_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    sstate *st = ud;
    size_t old = ptr ? osize : 0;
    size_t old_large = ptr && !pool_is_small(old) ? old : 0;
    if (nsize == 0) {
        pool_free(&st->pool, ptr, old);
        st->memory_used -= old_large;
        return NULL;
    }
    size_t new_large = pool_is_small(nsize) ? 0 : nsize;
    size_t used_after = st->memory_used - old_large + new_large;
    size_t limit = st->sb->cfg.memory_limit;
    if (limit) {
        if (new_large > old_large && used_after + st->pool.chunk_bytes > limit) goto refuse;
        st->pool.chunk_limit = limit > used_after ? limit - used_after : 1;
    }
    void *p = pool_realloc(&st->pool, ptr, old, nsize);
    if (!p) {
        if (limit) goto refuse;
        return NULL;
    }
    st->memory_used = used_after;
    /* Lua answers a refusal with an emergency collection and the same request again; when
     * that succeeds the plugin never saw an error, so the limit was not really hit. */
    if (st->memory_exceeded && nsize >= st->refused_size) st->memory_exceeded = false;
    return p;
refuse:
    st->memory_exceeded = true;
    st->refused_size = nsize;
    return NULL;
}

bool sandbox_charge(lua_State *L, size_t bytes) {
    sstate *st = state_of(L);
    size_t limit = st->sb->cfg.memory_limit;
    if (limit && (bytes > limit || st->memory_used + st->pool.chunk_bytes > limit - bytes)) {
        st->memory_exceeded = true; /* sticky: the hook ends the evaluation as a memory kill */
        st->refused_size = SIZE_MAX;
        return false;
    }
    st->memory_used += bytes;
    return true;
}

void sandbox_uncharge(lua_State *L, size_t bytes) { state_of(L)->memory_used -= bytes; }

/* Runs every SANDBOX_HOOK_INSTRUCTIONS in every coroutine of the state (new threads inherit
 * the hook). Once a limit is passed the hook re-arms at count 1 and raises again at the next
 * instruction, so a plugin's pcall cannot swallow the kill and carry on. Hooks do not run
 * inside C functions, so the C calls that can run long (pattern matching, table.sort,
 * regex_find) call this themselves through match_limits. */
static void sandbox_hook(lua_State *L, lua_Debug *ar) {
    (void)ar;
    sstate *st = state_of(L);
    if (st->memory_exceeded) {
        lua_sethook(L, sandbox_hook, LUA_MASKCOUNT, 1);
        luaL_error(L, "memory limit exceeded");
    }
    if (st->deadline_ns && now_ns() > st->deadline_ns) {
        st->timed_out = true;
        lua_sethook(L, sandbox_hook, LUA_MASKCOUNT, 1);
        luaL_error(L, "time limit exceeded");
    }
}

/* Arms the limits for a run with used_ns of the evaluation's time budget already spent:
 * the limit counts time running Lua, not time waiting for I/O. */
static void limits_arm(sstate *st, uint64_t used_ns) {
    if (used_ns == 0) st->printed = 0; /* a new evaluation */
    st->memory_exceeded = false;
    st->timed_out = false;
    uint64_t budget = (uint64_t)st->sb->cfg.timeout_ms * 1000000u;
    st->deadline_ns = budget ? now_ns() + (budget > used_ns ? budget - used_ns : 1) : 0;
}

static void limits_disarm(sstate *st) { st->deadline_ns = 0; }

/* Long pattern matches, sorts and regex searches look at the limits themselves
 * (pattern.c, sort.c, regex.c): the hook cannot run inside C. */
static void limits_check_in_match(lua_State *L, void *ud) {
    (void)ud;
    sandbox_hook(L, NULL);
}

static const pattern_limits match_limits = {limits_check_in_match, NULL};

void sandbox_check_limits(lua_State *L) { sandbox_hook(L, NULL); }

size_t sandbox_memory_limit(lua_State *L) { return sandbox_of(L)->cfg.memory_limit; }

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
        lazy_mark_readonly(L, -2, "rawset on the globals table while evaluating (declare the variable local; "
                                  "keep state on purpose in a local at the top of the file)");
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

/* setmetatable refusing __gc: a finalizer runs at an arbitrary later allocation, in another
 * trace's evaluation or during lua_close, outside any time budget that makes sense. */
static int sandbox_setmetatable(lua_State *L) {
    if (lua_type(L, 1) == LUA_TTABLE) lazy_fill(L, 1); /* a trace table gets its own metatable */
    if (lua_type(L, 2) == LUA_TTABLE) {
        lua_pushliteral(L, "__gc");
        if (lua_rawget(L, 2) != LUA_TNIL)
            return luaL_error(L, "__gc metamethods are not allowed in the assay sandbox");
        lua_pop(L, 1);
    }
    /* The array marker (convert.c) is hidden behind __metatable so that no plugin can
     * change it for every array; replacing it on one table stays the plugin's right. */
    if (lua_type(L, 1) == LUA_TTABLE && (lua_isnil(L, 2) || lua_istable(L, 2)) && convert_has_array_metatable(L, 1)) {
        lua_settop(L, 2);
        lua_setmetatable(L, 1);
        return 1;
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

/* print: to the host's log callback, prefixed with the plugin's name, with control bytes
 * escaped (a terminal reads stderr), and at most SANDBOX_MAX_PRINT_BYTES an evaluation: one
 * evaluation once wrote 992 MB of stderr inside its time limit. */
static int sandbox_print(lua_State *L) {
    sstate *st = state_of(L);
    sandbox *sb = st->sb;
    if (!sb->cfg.log || st->printed > SANDBOX_MAX_PRINT_BYTES) return 0;
    int n = lua_gettop(L);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = 1; i <= n; i++) {
        if (i > 1) luaL_addchar(&b, '\t');
        luaL_tolstring(L, i, NULL);
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    size_t len;
    const char *text = lua_tolstring(L, -1, &len);
    buf line;
    buf_init(&line);
    if (st->printed + len > SANDBOX_MAX_PRINT_BYTES) {
        len = SANDBOX_MAX_PRINT_BYTES - st->printed;
        buf_put_printable(&line, text, len);
        buf_printf(&line, "... [print: more than %u KiB in one evaluation; the rest is dropped]",
                   SANDBOX_MAX_PRINT_BYTES >> 10);
        st->printed = SANDBOX_MAX_PRINT_BYTES + 1;
    } else {
        buf_put_printable(&line, text, len);
        st->printed += len;
    }
    if (!buf_failed(&line)) sb->cfg.log(sb->cfg.log_ctx, sb->name ? sb->name : sb->cfg.path, buf_cstr(&line));
    buf_free(&line);
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

/* Opens lib_dir/relative for reading, walking it one component at a time so that neither
 * a directory on the way nor the file itself may be a symlink out of the lib directory, and
 * refusing what is not a regular file (a FIFO would block the worker forever, a device or
 * /proc file would be read and compiled). Returns the descriptor, -1 when there is no such
 * module (errno ENOENT or ENOTDIR), or -2 when something is there that is refused. */
static int module_open(const char *lib_dir, const char *relative) {
    int dir = open(lib_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0) return -1;
    char part[160];
    const char *p = relative;
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (n == 0 || n >= sizeof part) {
            close(dir);
            return -1;
        }
        memcpy(part, p, n);
        part[n] = '\0';
        int flags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC | (slash ? O_DIRECTORY : O_NONBLOCK);
        int fd = openat(dir, part, flags);
        if (fd < 0) {
            /* a symlink is refused (ELOOP, or ENOTDIR with O_DIRECTORY); what is not there,
             * or a file where a directory would be, is no module */
            int saved = errno;
            struct stat st;
            bool is_link = fstatat(dir, part, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode);
            close(dir);
            return is_link || (saved != ENOENT && saved != ENOTDIR) ? -2 : -1;
        }
        close(dir);
        if (!slash) {
            struct stat st;
            if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
                close(fd);
                return -2;
            }
            return fd;
        }
        dir = fd;
        p = slash + 1;
    }
}

/* Reads the whole open file fd into a Lua string on the stack and closes it; false (with
 * nothing pushed) on a read error or past SANDBOX_MAX_MODULE_BYTES. [-0, +(0|1), m] */
static bool push_file_contents(lua_State *L, int fd) {
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    size_t total = 0;
    char chunk[8192];
    ssize_t n;
    bool ok = true;
    while ((n = read(fd, chunk, sizeof chunk)) != 0) {
        if (n < 0) {
            if (errno == EINTR) continue;
            ok = false;
            break;
        }
        total += (size_t)n;
        if (total > SANDBOX_MAX_MODULE_BYTES) {
            ok = false;
            break;
        }
        luaL_addlstring(&b, chunk, (size_t)n);
    }
    close(fd);
    luaL_pushresult(&b);
    if (!ok) lua_pop(L, 1);
    return ok;
}

/* require(name): host modules ("assay", "assay.text", "assay.json", "assay.http", "assay.llm") and Lua helpers from the
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
        return luaL_error(L, "require: no host module '%s' (available: assay, assay.text, assay.json, assay.http, assay.llm)", name);
    for (size_t i = 0; i < sb->cfg.lib_dir_count; i++) {
        lua_pushfstring(L, "%s/%s.lua", sb->cfg.lib_dirs[i], name);
        char *path = (char *)lua_tostring(L, -1);
        char *relative = path + strlen(sb->cfg.lib_dirs[i]) + 1;
        for (char *p = relative; *p; p++)
            if (*p == '.' && strcmp(p, ".lua") != 0) *p = '/';
        int fd = module_open(sb->cfg.lib_dirs[i], relative);
        if (fd == -2)
            return luaL_error(L, "require: %s is not a regular file inside the lib directory (symlinks, FIFOs and "
                                 "devices are refused)", path);
        if (fd < 0) {
            lua_pop(L, 1);
            continue;
        }
        if (!push_file_contents(L, fd))
            return luaL_error(L, "require: %s could not be read (or is larger than %d MiB)", path,
                              (int)(SANDBOX_MAX_MODULE_BYTES >> 20));
        size_t len;
        const char *source = lua_tolstring(L, -1, &len);
        lua_pushfstring(L, "@%s", path);
        if (bounded_load_text(L, source, len, lua_tostring(L, -1), &match_limits) != LUA_OK) return lua_error(L);
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
    bounded_install_load(L, g, &match_limits);
    lua_getfield(L, g, "setmetatable");
    lua_pushcclosure(L, sandbox_setmetatable, 1);
    lua_setfield(L, g, "setmetatable");
    lazy_install_base(L, g);
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
    pattern_install(L, -1, &match_limits);
    library_refuse_missing(L, -1, "string");
    lua_pop(L, 1);
    lua_getfield(L, g, "table");
    sort_install(L, -1, &match_limits);
    lua_getfield(L, g, "string");
    bounded_install(L, -1, -2, &match_limits);
    lua_pop(L, 2);
    /* getmetatable("") must not hand out the shared string metatable */
    lua_pushliteral(L, "");
    lua_getmetatable(L, -1);
    lua_pushliteral(L, "string");
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 2);

    /* host modules: the global `assay`, also reachable through require */
    lua_newtable(L); /* module cache for require */
    lua_newtable(L); /* assay */
    text_open(L, &match_limits);
    lua_pushvalue(L, -1);
    lua_setfield(L, -4, "assay.text");
    lua_setfield(L, -2, "text");
    convert_open_json(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, -4, "assay.json");
    lua_setfield(L, -2, "json");
    net_open_http(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, -4, "assay.http");
    lua_setfield(L, -2, "http");
    net_open_llm(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, -4, "assay.llm");
    lua_setfield(L, -2, "llm");
    convert_push_null(L);
    lua_setfield(L, -2, "null");
    lua_pushfstring(L, "assay %s", sandbox_of(L)->cfg.host_version ? sandbox_of(L)->cfg.host_version : "?");
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

/* The iterator pairs(params) returns. It walks the table behind the view, held as its
 * upvalue and never handed to Lua, whatever table it is called with: the plugin could write
 * into that table, and so change params for every later trace. */
static int params_next(lua_State *L) {
    lua_settop(L, 2);
    if (lua_next(L, lua_upvalueindex(1))) return 2;
    lua_pushnil(L);
    return 1;
}

static int params_pairs(lua_State *L) {
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushcclosure(L, params_next, 1);
    lua_pushvalue(L, 1);
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
    if (bounded_load_text(L, cfg->source, cfg->source_len, lua_tostring(L, -1), &match_limits) != LUA_OK)
        return lua_error(L);
    if (lua_pcall(L, 0, 1, handler) != LUA_OK) return lua_error(L);
    if (!lua_istable(L, -1))
        return luaL_error(L, "%s: the plugin must return a table with an evaluate function (got %s)", cfg->path,
                          luaL_typename(L, -1));
    int plugin = lua_gettop(L);

    if (lua_getfield(L, plugin, "evaluate") != LUA_TFUNCTION)
        return luaL_error(L, "%s: the returned table has no evaluate function (evaluate = function(trace, params, "
                             "step, index) ... end)", cfg->path);
    state_of(L)->evaluate_ref = luaL_ref(L, LUA_REGISTRYINDEX);

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
    /* params are data shown by `assay list` and set from the command line: a function or a
     * coroutine there would silently list as null */
    lua_pushnil(L);
    while (lua_next(L, params)) {
        if (lua_type(L, -2) != LUA_TSTRING)
            return luaL_error(L, "%s: params keys must be names (got a %s key)", cfg->path, luaL_typename(L, -2));
        int vt = lua_type(L, -1);
        if (vt != LUA_TNUMBER && vt != LUA_TSTRING && vt != LUA_TBOOLEAN && vt != LUA_TTABLE)
            return luaL_error(L, "%s: param '%s' must be a number, string, boolean or table (got %s)", cfg->path,
                              lua_tostring(L, -2), lua_typename(L, vt));
        lua_pop(L, 1);
    }
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
    lua_pushvalue(L, params);
    lua_pushcclosure(L, params_pairs, 1);
    lua_setfield(L, -2, "__pairs");
    lua_pushliteral(L, "params");
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
    lazy_mark_readonly(L, -1, "params are read-only (copy the value into a local to change it)");
    state_of(L)->params_ref = luaL_ref(L, LUA_REGISTRYINDEX);

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
    state_of(L)->randomseed_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    globals_protect(L, true);
    return 0;
}

/* Opens a state and loads the plugin into it; on failure returns NULL and a message. */
static sstate *state_open(sandbox *sb, char *err, size_t errlen) {
    sstate *st = calloc(1, sizeof *st);
    if (!st) {
        snprintf(err, errlen, "%s: out of memory", sb->cfg.path);
        return NULL;
    }
    st->sb = sb;
    lua_State *L = lua_newstate(sandbox_alloc, st);
    if (!L) {
        snprintf(err, errlen, "%s: cannot create a Lua state (out of memory)", sb->cfg.path);
        pool_destroy(&st->pool);
        free(st);
        return NULL;
    }
    *(sstate **)lua_getextraspace(L) = st;
    lua_sethook(L, sandbox_hook, LUA_MASKCOUNT, SANDBOX_HOOK_INSTRUCTIONS);
    st->L = L;
    limits_arm(st, 0);
    lua_pushcfunction(L, environment_build);
    int status = lua_pcall(L, 0, 0, 0);
    if (status == LUA_OK) {
        lua_pushcfunction(L, plugin_load_body);
        status = lua_pcall(L, 0, 0, 0);
    }
    limits_disarm(st);
    if (status == LUA_OK) return st;
    const char *message = lua_tostring(L, -1);
    if (st->timed_out)
        snprintf(err, errlen, "%s: loading took longer than the %u ms time limit", sb->cfg.path, sb->cfg.timeout_ms);
    else if (st->memory_exceeded || status == LUA_ERRMEM)
        snprintf(err, errlen, "%s: loading exceeded the %zu MiB memory limit", sb->cfg.path,
                 sb->cfg.memory_limit >> 20);
    else
        snprintf(err, errlen, "%s", message ? message : "plugin failed to load");
    lua_close(L);
    pool_destroy(&st->pool);
    free(st);
    return NULL;
}

static void state_close(sstate *st) {
    if (!st) return;
    /* No plugin can set a finalizer (setmetatable refuses __gc, the host's metatables are
     * hidden), but if one ever ran in lua_close it would run under the time limit too. */
    limits_arm(st, 0);
    lua_close(st->L);
    pool_destroy(&st->pool);
    free(st);
}

sandbox *sandbox_new(const sandbox_config *cfg, char *err, size_t errlen) {
    sandbox *sb = calloc(1, sizeof *sb);
    if (!sb) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    sb->cfg = *cfg;
    sb->st = state_open(sb, err, errlen);
    if (!sb->st) {
        sandbox_free(sb);
        return NULL;
    }
    return sb;
}

/* Freeing a sandbox with suspended tasks is the host's bug: it must drain them first. */
void sandbox_free(sandbox *sb) {
    if (!sb) return;
    state_close(sb->st);
    free(sb->name);
    free(sb->description);
    free(sb->scope);
    free(sb->params_json);
    free(sb);
}

const sandbox_info *sandbox_get_info(const sandbox *sb) { return &sb->info; }

/* Replaces the state after a kill: a state stopped mid-evaluation may hold half-updated
 * module data, so nothing of it is trusted for new evaluations. Evaluations suspended in
 * it keep it alive until they end (they were not the ones killed). */
static void state_replace(sandbox *sb) {
    sstate *old = sb->st;
    sb->st = NULL;
    if (old->suspended) {
        old->is_retired = true;
        old->memory_exceeded = old->timed_out = false;
    } else {
        state_close(old);
    }
    char err[256];
    sb->st = state_open(sb, err, sizeof err);
    if (!sb->st) {
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

/* What one call of evaluate produced. */
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
    buf http_error;          /* the last I/O failure raised into the plugin */
    long calls, cache_hits, tokens_in, tokens_out;
} evaluation;

/* One plugin's evaluation of one trace: every matching step in turn for a step-scoped
 * plugin. It lives only while the evaluation is suspended on I/O or running. */
struct sandbox_task {
    sandbox *sb;
    sstate *st;              /* the state the current coroutine lives in */
    void *owner;
    const cJSON *trace;      /* borrowed */
    const cJSON *step;       /* the current step (step scope) */
    long index;
    sandbox_output *out;     /* borrowed */
    evaluation ev;
    lua_State *co;
    int co_ref, trace_ref;   /* registry refs in st; LUA_NOREF when unset */
    int doc_ref;             /* the trace's lazy document (lazy.c), closed with trace_ref */
    uint64_t started_ns, used_ns;
    int nargs;               /* values on co's stack for the next lua_resume */
    bool is_resuming;        /* the next run resumes after I/O instead of starting */
    sandbox_io **io;         /* the requests of the current wait, in call order */
    size_t io_count, io_cap, io_taken, io_answered;
    bool is_batch;           /* the wait answers with a list */
    sandbox_io_budget budget; /* of the current wait's responses */
    unsigned kills;          /* evaluations of this trace stopped by a limit */
    sandbox_error_kind last_kill;
};

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

/* Sets details.usage to what the evaluation's I/O cost. [-0, +0, m] */
static void add_usage(lua_State *L, int details, const evaluation *ev) {
    lua_createtable(L, 0, 4);
    lua_pushinteger(L, ev->calls);
    lua_setfield(L, -2, "calls");
    lua_pushinteger(L, ev->cache_hits);
    lua_setfield(L, -2, "cache_hits");
    lua_pushinteger(L, ev->tokens_in);
    lua_setfield(L, -2, "tokens_in");
    lua_pushinteger(L, ev->tokens_out);
    lua_setfield(L, -2, "tokens_out");
    lua_pushliteral(L, "usage");
    lua_insert(L, -2);
    lua_rawset(L, details);
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
        lazy_fill(L, r); /* a table of the trace itself, returned as it is */
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
        if (t == LUA_TNIL && ev->calls) {
            lua_pop(L, 1);
            lua_newtable(L);
            t = LUA_TTABLE;
        }
        if (t == LUA_TTABLE) {
            lazy_fill(L, -1);
            if (ev->calls) add_usage(L, lua_gettop(L), ev);
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

static void write_record(sandbox *sb, const evaluation *ev, double ms, sandbox_output *out) {
    sandbox_record *rec = sandbox_output_add(out);
    buf *b = &out->jsonl;
    size_t line_at = b->len, details_at = 0;
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
    if (ok && ev->details.len) details_at = b->len, buf_append(b, ev->details.data, ev->details.len);
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
    rec->line_at = line_at, rec->line_len = b->len - 1 - line_at;
    if (details_at) rec->details_at = details_at, rec->details_len = ev->details.len;
    rec->evaluator = sb->cfg.index;
    rec->step = ev->step;
    rec->error = ev->error;
    rec->ms = sb->cfg.record_timing ? ms : NAN; /* as the JSON line says: every form of the record agrees */
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
    buf_reset(&ev->http_error);
    free(ev->label);
    ev->label = NULL;
    ev->trace_id = trace_id;
    ev->step = step;
    ev->error = SANDBOX_OK;
    ev->has_score = false;
    ev->score = 0;
    ev->pass = -1;
    ev->calls = ev->cache_hits = ev->tokens_in = ev->tokens_out = 0;
}

static void evaluation_free(evaluation *ev) {
    evaluation_reset(ev, NULL, -1);
    buf_free(&ev->message);
    buf_free(&ev->traceback);
    buf_free(&ev->details);
    buf_free(&ev->http_error);
}

/* ------------------------------------------------------------------ I/O from Lua */

static void io_free(sandbox_io *io) {
    if (!io) return;
    free(io->method);
    free(io->url);
    for (size_t i = 0; i < io->header_count; i++) free(io->headers[i]);
    free(io->headers);
    buf_free(&io->body);
    buf_free(&io->response_headers);
    buf_free(&io->response_body);
    free(io->error);
    free(io);
}

static void task_drop_io(sandbox_task *t) {
    for (size_t i = 0; i < t->io_count; i++) io_free(t->io[i]);
    t->io_count = t->io_taken = t->io_answered = 0;
    atomic_store(&t->budget.used, 0);
}

sandbox_io *sandbox_io_begin(lua_State *L, sandbox_io_kind kind, const char *what) {
    sstate *st = state_of(L);
    sandbox_task *t = st->running;
    if (!st->sb->cfg.has_io)
        luaL_error(L, "%s: network I/O is not available in this host (no HTTP client configured)", what);
    if (kind != SANDBOX_IO_HTTP && !st->sb->cfg.has_llm)
        luaL_error(L, "%s: no LLM endpoint configured (pass --llm-url or set ASSAY_LLM_URL)", what);
    if (!t) luaL_error(L, "%s can only be called while evaluating, not while the plugin loads", what);
    /* a yield inside the plugin's own coroutine would return to its resume, not to us */
    if (L != t->co)
        luaL_error(L, "%s must be called from evaluate itself, not inside coroutine.create/wrap", what);
    if (!lua_isyieldable(L))
        luaL_error(L, "%s cannot be called here (from a function that C calls, such as a sort comparator or a gsub replacement)", what);
    if (t->io_count == t->io_cap) {
        size_t cap = t->io_cap ? t->io_cap * 2 : 4;
        sandbox_io **grown = realloc(t->io, cap * sizeof *grown);
        if (!grown) luaL_error(L, "not enough memory");
        t->io = grown;
        t->io_cap = cap;
    }
    sandbox_io *io = calloc(1, sizeof *io);
    if (!io) luaL_error(L, "not enough memory");
    io->task = t;
    io->kind = kind;
    t->budget.limit = st->sb->cfg.memory_limit ? st->sb->cfg.memory_limit : SIZE_MAX;
    io->budget = &t->budget;
    t->io[t->io_count++] = io;
    return io;
}

/* After the wait: stack has ok, value (the resume arguments). [-2, +1, e] */
static int io_continue(lua_State *L, int status, lua_KContext ctx) {
    (void)status, (void)ctx;
    if (!lua_toboolean(L, -2)) {
        sandbox_task *t = state_of(L)->running;
        buf_reset(&t->ev.http_error);
        buf_puts(&t->ev.http_error, lua_tostring(L, -1));
        return lua_error(L);
    }
    return 1;
}

int sandbox_io_wait(lua_State *L, bool is_batch) {
    sandbox_task *t = state_of(L)->running;
    t->is_batch = is_batch;
    return lua_yieldk(L, 0, 0, io_continue);
}

void sandbox_io_forget(lua_State *L) {
    sandbox_task *t = state_of(L)->running;
    if (t) task_drop_io(t);
}

void sandbox_io_check_llm(lua_State *L, const char *what) {
    const sandbox_config *cfg = &sandbox_of(L)->cfg;
    if (!cfg->has_io) luaL_error(L, "%s: network I/O is not available in this host (no HTTP client configured)", what);
    if (!cfg->has_llm) luaL_error(L, "%s: no LLM endpoint configured (pass --llm-url or set ASSAY_LLM_URL)", what);
}

const char *sandbox_io_default_model(lua_State *L) {
    const char *model = sandbox_of(L)->cfg.llm_model;
    return model && *model ? model : NULL;
}

void *sandbox_task_owner(const sandbox_task *t) { return t->owner; }

sandbox_io *sandbox_task_take_io(sandbox_task *t) {
    return t->io_taken < t->io_count ? t->io[t->io_taken++] : NULL;
}

bool sandbox_io_done(sandbox_io *io) {
    sandbox_task *t = io->task;
    return ++t->io_answered == t->io_count;
}

/* Pushes the wait's answer for the coroutine: true and the value (a list for a batch), or
 * false and the first failure's message. [-0, +2, e] */
static void push_io_answer(lua_State *L, sandbox_task *t) {
    evaluation *ev = &t->ev;
    for (size_t i = 0; i < t->io_count; i++) {
        sandbox_io *io = t->io[i];
        ev->calls++;
        ev->cache_hits += io->is_cache_hit;
        ev->tokens_in += io->tokens_in;
        ev->tokens_out += io->tokens_out;
    }
    if (t->is_batch) lua_createtable(L, (int)t->io_count, 0);
    for (size_t i = 0; i < t->io_count; i++) {
        char err[512] = "";
        if (!net_push_response(L, t->io[i], err, sizeof err)) {
            lua_pushboolean(L, 0);
            lua_pushstring(L, err);
            return;
        }
        if (t->is_batch) lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_pushboolean(L, 1);
    lua_insert(L, -2);
}

/* ------------------------------------------------------------------ running evaluate */

/* Pushes what evaluate's coroutine needs for its first resume: the function and its
 * arguments. Reseeds math.random so that a trace's numbers never depend on earlier traces.
 * [-0, +n, e] */
static int push_start(lua_State *L, sandbox_task *t) {
    sstate *st = t->st;
    lua_rawgeti(L, LUA_REGISTRYINDEX, st->randomseed_ref);
    lua_pushinteger(L, (lua_Integer)hash_trace_seed(t->ev.trace_id, t->ev.step));
    lua_call(L, 1, 0);
    lua_rawgeti(L, LUA_REGISTRYINDEX, st->evaluate_ref);
    lua_rawgeti(L, LUA_REGISTRYINDEX, t->trace_ref);
    lua_rawgeti(L, LUA_REGISTRYINDEX, st->params_ref);
    if (t->ev.step < 0) return 2;
    /* raw access: the plugin may have put a metatable on the trace in an earlier step */
    lazy_fill(L, -2);
    lua_pushliteral(L, "steps");
    if (lua_rawget(L, -3) != LUA_TTABLE)
        return luaL_error(L, "trace.steps is no longer a table (a %s): an earlier step's evaluation replaced it",
                          luaL_typename(L, -1));
    lazy_fill(L, -1);
    lua_rawgeti(L, -1, (lua_Integer)t->index + 1);
    lua_remove(L, -2);
    lua_pushinteger(L, (lua_Integer)t->index + 1);
    return 4;
}

/* The protected part of one run of the coroutine. Stack: task. Returns (through the
 * task) whether it finished, is waiting on I/O, or failed. [-1, +0, e] */
static int run_body(lua_State *L) {
    sandbox_task *t = lua_touserdata(L, 1);
    evaluation *ev = &t->ev;
    int nargs;
    if (!t->is_resuming) {
        if (t->trace_ref == LUA_NOREF) {
            t->doc_ref = lazy_push_trace(L, t->trace);
            t->trace_ref = luaL_ref(L, LUA_REGISTRYINDEX);
        }
        t->co = lua_newthread(L);
        t->co_ref = luaL_ref(L, LUA_REGISTRYINDEX);
        nargs = push_start(L, t);
        if (!lua_checkstack(t->co, nargs + 1)) return luaL_error(L, "not enough memory");
        lua_xmove(L, t->co, nargs + 1);
    } else {
        push_io_answer(L, t);
        task_drop_io(t);
        nargs = 2;
        if (!lua_checkstack(t->co, nargs)) return luaL_error(L, "not enough memory");
        lua_xmove(L, t->co, nargs);
    }
    t->is_resuming = false;
    int nresults = 0;
    int status = lua_resume(t->co, L, nargs, &nresults);
    if (status == LUA_YIELD) {
        lua_pop(t->co, nresults);
        if (t->io_count == 0) {
            ev->error = SANDBOX_ERR_RUNTIME;
            buf_puts(&ev->message, "evaluate yielded outside an assay I/O call (coroutine.yield at the top level)");
        } else {
            t->is_resuming = true;
        }
        return 0;
    }
    if (status == LUA_OK) {
        if (nresults == 0) return luaL_error(L, "evaluate returned nothing (return a table, a number or a boolean)");
        lua_pop(t->co, nresults - 1);
        lua_xmove(t->co, L, 1);
        read_result(L, ev);
        return 0;
    }
    const char *message = lua_tostring(t->co, -1);
    bool is_http = message && ev->http_error.len && strcmp(message, buf_cstr(&ev->http_error)) == 0;
    ev->error = status == LUA_ERRMEM ? SANDBOX_ERR_MEMORY : is_http ? SANDBOX_ERR_HTTP : SANDBOX_ERR_RUNTIME;
    if (message) buf_puts(&ev->message, message);
    else buf_printf(&ev->message, "(error object is a %s value)", luaL_typename(t->co, -1));
    if (!is_http) {
        luaL_traceback(L, t->co, NULL, 0);
        short_traceback(lua_tostring(L, -1), &ev->traceback);
    }
    return 0;
}

/* Lets go of the coroutine (it is collected with the state's next cycles). */
static void task_release_coroutine(sandbox_task *t) {
    if (t->co_ref != LUA_NOREF) luaL_unref(t->st->L, LUA_REGISTRYINDEX, t->co_ref);
    t->co_ref = LUA_NOREF;
    t->co = NULL;
}

/* The cJSON tree goes with the job: tables of it not yet built can no longer be. */
static void task_release_trace(sandbox_task *t) {
    lazy_doc_end(t->st->L, t->doc_ref);
    t->doc_ref = LUA_NOREF;
    if (t->trace_ref != LUA_NOREF) luaL_unref(t->st->L, LUA_REGISTRYINDEX, t->trace_ref);
    t->trace_ref = LUA_NOREF;
}

/* Classifies a failed or limited run and replaces the state when it was killed. */
static void settle_limits(sandbox_task *t, int status) {
    sstate *st = t->st;
    evaluation *ev = &t->ev;
    bool killed = st->timed_out || st->memory_exceeded || status == LUA_ERRMEM || ev->error == SANDBOX_ERR_MEMORY;
    if (status != LUA_OK && !killed) {
        ev->error = SANDBOX_ERR_RUNTIME;
        buf_reset(&ev->message);
        bool is_text = lua_type(st->L, -1) == LUA_TSTRING;
        buf_puts(&ev->message, is_text ? lua_tostring(st->L, -1) : "error while reading the result of evaluate");
    }
    lua_settop(st->L, 0);
    if (!killed) return;
    t->kills++;
    buf_reset(&ev->message);
    buf_reset(&ev->traceback);
    t->is_resuming = false;
    task_drop_io(t);
    if (st->timed_out) {
        ev->error = SANDBOX_ERR_TIMEOUT;
        buf_printf(&ev->message, "evaluation exceeded the %u ms time limit (--timeout-ms)", t->sb->cfg.timeout_ms);
    } else {
        ev->error = SANDBOX_ERR_MEMORY;
        buf_printf(&ev->message, "evaluation exceeded the %zu MiB memory limit of its Lua state (--memory-mb)",
                   t->sb->cfg.memory_limit >> 20);
    }
    t->last_kill = ev->error;
    task_release_coroutine(t);
    task_release_trace(t);
    if (st == t->sb->st) state_replace(t->sb);
    else if (st->is_retired && st->suspended == 0) state_close(st);
    t->st = t->sb->st; /* NULL when the reload failed */
}

/* Runs the current coroutine once. Returns true when it is waiting on I/O. */
static bool task_run(sandbox_task *t) {
    sstate *st = t->st;
    lua_State *L = st->L;
    lua_settop(L, 0);
    lua_pushcfunction(L, run_body);
    lua_pushlightuserdata(L, t);
    uint64_t start = now_ns();
    st->running = t;
    limits_arm(st, t->used_ns);
    int status = lua_pcall(L, 1, 0, 0);
    limits_disarm(st);
    st->running = NULL;
    t->used_ns += now_ns() - start;
    if (status == LUA_OK && !st->timed_out && !st->memory_exceeded && t->is_resuming) return true;
    settle_limits(t, status);
    return false;
}

/* The last member named key: the one the plugin's table holds when keys repeat. */
static const cJSON *last_member(const cJSON *object, const char *key) {
    const cJSON *found = NULL;
    for (const cJSON *c = object->child; c; c = c->next)
        if (c->string && strcmp(c->string, key) == 0) found = c;
    return found;
}

/* Finds the next step of the plugin's type after t->step (or the first when NULL). Steps
 * and their types are looked up as the plugin sees them, so that trace.steps[index] is the
 * step it is given even when a key repeats. */
static const cJSON *next_step(const sandbox_task *t, const cJSON *after, long *index) {
    const cJSON *step;
    if (after) {
        step = after->next;
        (*index)++;
    } else {
        const cJSON *steps = last_member(t->trace, "steps");
        step = cJSON_IsArray(steps) ? steps->child : NULL;
        *index = 0;
    }
    for (; step; step = step->next, (*index)++) {
        const cJSON *type = cJSON_IsObject(step) ? last_member(step, "type") : NULL;
        if (cJSON_IsString(type) && strcmp(type->valuestring, t->sb->scope) == 0) return step;
    }
    return NULL;
}

static void task_free(sandbox_task *t) {
    sstate *st = t->st;
    if (st) {
        task_release_coroutine(t);
        task_release_trace(t);
        if (st->is_retired && st->suspended == 0) state_close(st);
    }
    task_drop_io(t);
    free(t->io);
    evaluation_free(&t->ev);
    free(t);
}

/* Runs evaluations until one waits on I/O (returns false) or all are done (true). */
static bool task_advance(sandbox_task *t) {
    for (;;) {
        evaluation *ev = &t->ev;
        if (t->kills >= SANDBOX_MAX_KILLS_PER_TRACE) {
            /* every kill costs a new state: a trace of a million steps that each hit the
             * limit would rebuild the plugin a million times */
            ev->error = t->last_kill;
            buf_reset(&ev->message);
            buf_printf(&ev->message, "not evaluated: the plugin hit its limits on %d earlier steps of this trace",
                       SANDBOX_MAX_KILLS_PER_TRACE);
        } else if (!t->sb->is_broken && t->st) {
            if (task_run(t)) return false;
        } else {
            ev->error = SANDBOX_ERR_CONFIG;
            buf_reset(&ev->message);
            buf_puts(&ev->message, t->sb->broken_message);
        }
        write_record(t->sb, ev, (double)(now_ns() - t->started_ns) / 1e6, t->out);
        if (t->st) task_release_coroutine(t);
        if (t->ev.step < 0 || !(t->step = next_step(t, t->step, &t->index))) return true;
        evaluation_reset(ev, ev->trace_id, t->index);
        t->started_ns = now_ns();
        t->used_ns = 0;
        if (t->st != t->sb->st) { /* the state was replaced: the next step starts in the new one */
            if (t->st) {
                task_release_trace(t);
                if (t->st->is_retired && t->st->suspended == 0) state_close(t->st);
            }
            t->st = t->sb->st;
        }
    }
}

sandbox_task *sandbox_evaluate(sandbox *sb, const cJSON *trace, const char *trace_id, sandbox_output *out,
                               void *owner) {
    long index = -1;
    sandbox_task *t = calloc(1, sizeof *t);
    if (!t) {
        evaluation ev = {0};
        evaluation_reset(&ev, trace_id, -1);
        ev.error = SANDBOX_ERR_MEMORY;
        buf_puts(&ev.message, "out of memory before evaluating");
        write_record(sb, &ev, 0, out);
        evaluation_free(&ev);
        return NULL;
    }
    t->sb = sb;
    t->st = sb->st;
    t->owner = owner;
    t->trace = trace;
    t->out = out;
    t->co_ref = t->trace_ref = t->doc_ref = LUA_NOREF;
    t->started_ns = now_ns();
    if (!sb->is_trace_scope) {
        t->step = next_step(t, NULL, &index);
        if (!t->step) {
            free(t);
            return NULL;
        }
    }
    t->index = index;
    evaluation_reset(&t->ev, trace_id, index);
    if (task_advance(t)) {
        task_free(t);
        return NULL;
    }
    t->st->suspended++;
    return t;
}

bool sandbox_task_resume(sandbox_task *t) {
    t->st->suspended--;
    if (task_advance(t)) {
        task_free(t);
        return true;
    }
    t->st->suspended++;
    return false;
}
