/* env.c - the environment a plugin runs in, built by allow-list in every fresh state: the
 * Lua libraries it keeps (and the functions withheld from them, with the reason a plugin
 * is told), the sandbox's own print, collectgarbage, setmetatable and require, and the
 * host modules. Each list exists once, here: the runtime refusals, require's "available:"
 * message and the static scan of `assay check` (sandbox_withheld) all read it.
 * Not here: the limits and the states' lifecycle (sandbox.c), the plugin's own table
 * (load.c).
 */
#include "sandbox_internal.h"
#include "state.h"
#include "bounded.h"
#include "sort.h"

#include <lauxlib.h>
#include <lualib.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SANDBOX_MAX_MODULE_BYTES (4u << 20)
#define SANDBOX_MAX_PRINT_BYTES (64u << 10)

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
    {"warn", "warn is not available in the assay sandbox; use print"},
};

/* The functions of os a plugin keeps: the clock and calendar, never getenv (API keys live
 * there), execute, remove or exit. */
static const char *const os_allowed[] = {"time", "clock", "date", "difftime", NULL};

/* The host modules: fields of the global `assay`, each also found by require under its
 * full name. */
static int open_text(lua_State *L) { return text_open(L, &sandbox_match_limits); }
static const struct { const char *name; const char *field; lua_CFunction open; } host_modules[] = {
    {"assay.text", "text", open_text},
    {"assay.json", "json", convert_open_json},
    {"assay.trace", "trace", trace_open},
    {"assay.http", "http", net_open_http},
    {"assay.llm", "llm", net_open_llm},
};

static bool in_list(const char *const *list, const char *name) {
    for (; *list; list++)
        if (strcmp(*list, name) == 0) return true;
    return false;
}

const char *sandbox_withheld(const char *global, const char *field) {
    for (size_t i = 0; i < sizeof withheld_globals / sizeof *withheld_globals; i++)
        if (strcmp(global, withheld_globals[i].name) == 0) return withheld_globals[i].why;
    if (!field) return NULL;
    if (strcmp(global, "os") == 0 && !in_list(os_allowed, field))
        return "only os.time, os.clock, os.date and os.difftime are available in the assay sandbox";
    if (strcmp(global, "string") == 0 && strcmp(field, "dump") == 0)
        return "string.dump is not available in the assay sandbox (no bytecode)";
    return NULL;
}

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

void env_protect_globals(lua_State *L, bool strict) {
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

/* require(name): the host modules (host_modules) and Lua helpers from the configured lib
 * directories only. Names are dotted identifiers, so "../x" and "/etc/x"
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
    if (strncmp(name, "assay", 5) == 0 && (name[5] == '\0' || name[5] == '.')) {
        luaL_Buffer b;
        luaL_buffinit(L, &b);
        luaL_addstring(&b, "assay");
        for (size_t i = 0; i < sizeof host_modules / sizeof *host_modules; i++)
            luaL_addstring(&b, ", "), luaL_addstring(&b, host_modules[i].name);
        luaL_pushresult(&b);
        return luaL_error(L, "require: no host module '%s' (available: %s)", name, lua_tostring(L, -1));
    }
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
        if (bounded_load_text(L, source, len, lua_tostring(L, -1), &sandbox_match_limits) != LUA_OK) return lua_error(L);
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

/* The coroutine library, made to fit the time limit. A coroutine inherits its maker's hook,
 * and an evaluation's own may run without one (watch.c), which stops that coroutine only:
 * so coroutine.create and coroutine.wrap give the new one the count hook, and
 * coroutine.resume and coroutine.close take only coroutines made so. An evaluation's own
 * coroutine (coroutine.running()) suspended on I/O could otherwise be resumed from another
 * evaluation, and run there with no hook and no watch. The plugin-made ones are the keys of
 * a weak table in the registry. */
static const char env_coroutines_key = 'c';

/* Marks the thread at -1 as the plugin's and hooks it. [-0, +0, m] */
static void coroutine_adopt(lua_State *L) {
    lua_State *co = lua_tothread(L, -1);
    if (!co) return;
    lua_sethook(co, state_hook, LUA_MASKCOUNT, SANDBOX_HOOK_INSTRUCTIONS);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &env_coroutines_key);
    lua_pushvalue(L, -2);
    lua_pushboolean(L, 1);
    lua_rawset(L, -3);
    lua_pop(L, 1);
}

static int env_coroutine_create(lua_State *L) { /* upvalue 1: Lua's */
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    coroutine_adopt(L);
    return 1;
}

static int env_coroutine_wrap(lua_State *L) { /* upvalue 1: Lua's */
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    if (lua_getupvalue(L, -1, 1)) { /* the wrapper's coroutine */
        coroutine_adopt(L);
        lua_pop(L, 1);
    }
    return 1;
}

/* coroutine.resume and coroutine.close: upvalue 1 is Lua's, upvalue 2 its name. */
static int env_coroutine_guarded(lua_State *L) {
    if (lua_type(L, 1) == LUA_TTHREAD) {
        lua_rawgetp(L, LUA_REGISTRYINDEX, &env_coroutines_key);
        lua_pushvalue(L, 1);
        bool is_plugins = lua_rawget(L, -2) != LUA_TNIL;
        lua_pop(L, 2);
        if (!is_plugins)
            return luaL_error(L, "coroutine.%s: only coroutines made with coroutine.create can be resumed or closed "
                                 "(not evaluate's own)", lua_tostring(L, lua_upvalueindex(2)));
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

static void env_wrap_coroutines(lua_State *L) {
    lua_newtable(L);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &env_coroutines_key);
    lua_getglobal(L, "coroutine");
    lua_getfield(L, -1, "create");
    lua_pushcclosure(L, env_coroutine_create, 1);
    lua_setfield(L, -2, "create");
    lua_getfield(L, -1, "wrap");
    lua_pushcclosure(L, env_coroutine_wrap, 1);
    lua_setfield(L, -2, "wrap");
    static const char *const guarded[] = {"resume", "close"};
    for (size_t i = 0; i < sizeof guarded / sizeof *guarded; i++) {
        lua_getfield(L, -1, guarded[i]);
        lua_pushstring(L, guarded[i]);
        lua_pushcclosure(L, env_coroutine_guarded, 2);
        lua_setfield(L, -2, guarded[i]);
    }
    lua_pop(L, 1);
}

/* The Lua libraries a plugin keeps, and what is taken out of them. [-0, +0, m] */
static void env_open_libraries(lua_State *L) {
    static const struct { const char *name; lua_CFunction open; } allowed[] = {
        {LUA_GNAME, luaopen_base},       {LUA_STRLIBNAME, luaopen_string},
        {LUA_TABLIBNAME, luaopen_table}, {LUA_MATHLIBNAME, luaopen_math},
        {LUA_UTF8LIBNAME, luaopen_utf8}, {LUA_COLIBNAME, luaopen_coroutine},
    };
    for (size_t i = 0; i < sizeof allowed / sizeof *allowed; i++) {
        luaL_requiref(L, allowed[i].name, allowed[i].open, 1);
        lua_pop(L, 1);
    }
    env_wrap_coroutines(L);
    convert_init_state(L);
    luaL_requiref(L, LUA_OSLIBNAME, luaopen_os, 0);
    copy_fields(L, os_allowed);
    library_refuse_missing(L, -1, "os");
    lua_setglobal(L, "os");
    lua_pop(L, 1);

    lua_getglobal(L, "string");
    lua_pushnil(L);
    lua_setfield(L, -2, "dump");
    pattern_install(L, -1, &sandbox_match_limits);
    library_refuse_missing(L, -1, "string");
    lua_pop(L, 1);
    lua_getglobal(L, "table");
    sort_install(L, -1, &sandbox_match_limits);
    lua_getglobal(L, "string");
    bounded_install(L, -1, -2, &sandbox_match_limits);
    lua_pop(L, 2);
    /* getmetatable("") must not hand out the shared string metatable */
    lua_pushliteral(L, "");
    lua_getmetatable(L, -1);
    lua_pushliteral(L, "string");
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 2);
}

/* The base functions the sandbox replaces or removes, in the globals table at g. [-0, +0, m] */
static void env_replace_base(lua_State *L, int g) {
    for (size_t i = 0; i < sizeof withheld_globals / sizeof *withheld_globals; i++) {
        lua_pushnil(L);
        lua_setfield(L, g, withheld_globals[i].name);
    }
    bounded_install_load(L, g, &sandbox_match_limits);
    lua_getfield(L, g, "setmetatable");
    lua_pushcclosure(L, sandbox_setmetatable, 1);
    lua_setfield(L, g, "setmetatable");
    lazy_install_base(L, g);
    lua_pushcfunction(L, sandbox_collectgarbage);
    lua_setfield(L, g, "collectgarbage");
    lua_pushcfunction(L, sandbox_print);
    lua_setfield(L, g, "print");
    lua_pushcfunction(L, sandbox_require);
    lua_setfield(L, g, "require");
}

/* The global `assay` and require's cache of the host modules. [-0, +0, m] */
static void env_open_host_modules(lua_State *L) {
    lua_newtable(L); /* require's module cache */
    lua_newtable(L); /* assay */
    for (size_t i = 0; i < sizeof host_modules / sizeof *host_modules; i++) {
        host_modules[i].open(L);
        lua_pushvalue(L, -1);
        lua_setfield(L, -4, host_modules[i].name);
        lua_setfield(L, -2, host_modules[i].field);
    }
    convert_push_null(L);
    lua_setfield(L, -2, "null");
    const char *version = sandbox_of(L)->cfg.host_version;
    lua_pushfstring(L, "assay %s", version ? version : "?");
    lua_setfield(L, -2, "version");
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "assay");
    lua_setglobal(L, "assay");
    lua_setfield(L, LUA_REGISTRYINDEX, "assay.modules");
}

/* Keeps what the host needs of math.random, taken before any plugin code runs (a plugin
 * that replaces math.randomseed does not change how its evaluations are seeded): the
 * original randomseed, which task.c calls with each evaluation's seed, and the generator's
 * state, which random and randomseed share as their upvalue. Evaluations suspended on I/O
 * share the state's generator; task.c saves and restores its bytes around each wait so
 * that a trace's numbers never depend on which evaluations ran meanwhile. [-0, +0, e] */
static void env_keep_random(lua_State *L) {
    sstate *st = state_of(L);
    lua_getglobal(L, "math");
    lua_getfield(L, -1, "randomseed");
    st->randomseed_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_getfield(L, -1, "random");
    if (!lua_getupvalue(L, -1, 1) || lua_type(L, -1) != LUA_TUSERDATA || lua_rawlen(L, -1) > SANDBOX_RNG_BYTES)
        luaL_error(L, "this Lua's math.random keeps its generator in a form assay does not know");
    st->rng = lua_touserdata(L, -1);
    st->rng_size = lua_rawlen(L, -1);
    luaL_ref(L, LUA_REGISTRYINDEX); /* the state's for its life, whatever the plugin does to math */
    lua_pop(L, 2);
}

int env_build(lua_State *L) {
    env_open_libraries(L);
    env_keep_random(L);
    lua_pushglobaltable(L);
    env_replace_base(L, lua_gettop(L));
    lua_pop(L, 1);
    env_open_host_modules(L);
    env_protect_globals(L, false);
    return 0;
}
