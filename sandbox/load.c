/* load.c - loading a plugin into a fresh state, in named steps: run its chunk, read its
 * identity (name, scope, description), check its params and apply the command line's
 * overrides, hand evaluate a read-only view of them, and lock the globals. Every refusal
 * names the plugin's file. Not here: the environment the chunk runs in (env.c), running
 * evaluate (task.c).
 */
#include "sandbox_internal.h"
#include "state.h"
#include "bounded.h"

#include <lauxlib.h>

#include <stdlib.h>
#include <string.h>

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

/* Runs the plugin's chunk; leaves the table it returns on the stack. [-0, +1, e] */
static void load_chunk(lua_State *L, const sandbox_config *cfg) {
    lua_pushcfunction(L, message_with_traceback);
    int handler = lua_gettop(L);
    lua_pushfstring(L, "@%s", cfg->path);
    if (bounded_load_text(L, cfg->source, cfg->source_len, lua_tostring(L, -1), &sandbox_match_limits) != LUA_OK)
        lua_error(L);
    if (lua_pcall(L, 0, 1, handler) != LUA_OK) lua_error(L);
    if (!lua_istable(L, -1))
        luaL_error(L, cfg->is_table ? "%s: the file must return a table of settings (got %s)"
                                    : "%s: the plugin must return a table with an evaluate function (got %s)",
                   cfg->path, luaL_typename(L, -1));
    lua_replace(L, handler);
    lua_settop(L, handler);
}

/* Pushes the plugin's name (from its file name when it has none), scope and description
 * (nil when none), checking each. [-0, +3, e] */
static void load_identity(lua_State *L, int plugin, const char *path) {
    int t = lua_getfield(L, plugin, "name");
    if (t == LUA_TNIL) {
        const char *base = strrchr(path, '/');
        base = base ? base + 1 : path;
        size_t n = strlen(base);
        if (n > 4 && strcmp(base + n - 4, ".lua") == 0) n -= 4;
        lua_pop(L, 1);
        lua_pushlstring(L, base, n);
    } else if (t != LUA_TSTRING) {
        luaL_error(L, "%s: name must be a string (got %s)", path, lua_typename(L, t));
    }
    if (!name_is_valid(lua_tostring(L, -1)))
        luaL_error(L, "%s: name '%s' may only use letters, digits, '_' and '-'", path, lua_tostring(L, -1));

    t = lua_getfield(L, plugin, "scope");
    if (t == LUA_TNIL) {
        lua_pop(L, 1);
        lua_pushliteral(L, "trace");
    } else if (t != LUA_TSTRING || lua_rawlen(L, -1) == 0) {
        luaL_error(L, "%s: scope must be \"trace\" or a step type such as \"search\"", path);
    }
    t = lua_getfield(L, plugin, "description");
    if (t != LUA_TNIL && t != LUA_TSTRING)
        luaL_error(L, "%s: description must be a string (got %s)", path, lua_typename(L, t));
}

/* Pushes the plugin's params with the overrides applied. They are data shown by `assay
 * list` and set from the command line: a function or a coroutine there would silently
 * list as null. [-0, +1, e] */
static void load_params(lua_State *L, int plugin, const sandbox_config *cfg, const char *name) {
    int t = lua_getfield(L, plugin, "params");
    if (t == LUA_TNIL) {
        lua_pop(L, 1);
        lua_newtable(L);
    } else if (t != LUA_TTABLE) {
        luaL_error(L, "%s: params must be a table (got %s)", cfg->path, lua_typename(L, t));
    }
    int params = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, params)) {
        if (lua_type(L, -2) != LUA_TSTRING)
            luaL_error(L, "%s: params keys must be names (got a %s key)", cfg->path, luaL_typename(L, -2));
        int vt = lua_type(L, -1);
        if (vt != LUA_TNUMBER && vt != LUA_TSTRING && vt != LUA_TBOOLEAN && vt != LUA_TTABLE)
            luaL_error(L, "%s: param '%s' must be a number, string, boolean or table (got %s)", cfg->path,
                       lua_tostring(L, -2), lua_typename(L, vt));
        lua_pop(L, 1);
    }
    for (size_t i = 0; i < cfg->override_count; i++) {
        const sandbox_param_override *o = &cfg->overrides[i];
        int default_type = lua_getfield(L, params, o->key);
        lua_pop(L, 1);
        if (default_type == LUA_TNIL && strcmp(o->key, "repeats") == 0) default_type = LUA_TNUMBER; /* the host's */
        if (default_type == LUA_TNIL)
            luaL_error(L, "param %s.%s: the plugin has no param '%s' (see: assay list)", name, o->key, o->key);
        push_override(L, name, o, default_type);
        lua_setfield(L, params, o->key);
    }
}

/* The `repeats` param, which the host reads for every evaluator (plugin NULL: a mapper,
 * evaluated once): how many times each trace (or step) is evaluated, the record combining
 * them (task.c). [-0, +0, e] */
static unsigned load_repeats(lua_State *L, int params, const char *plugin) {
    if (!plugin || lua_getfield(L, params, "repeats") == LUA_TNIL) {
        if (plugin) lua_pop(L, 1);
        return 1;
    }
    lua_Integer n = lua_isinteger(L, -1) ? lua_tointeger(L, -1) : 0;
    if (n < 1 || n > SANDBOX_MAX_REPEATS)
        luaL_error(L, "param %s.repeats: an integer from 1 to %d was expected", plugin, SANDBOX_MAX_REPEATS);
    lua_pop(L, 1);
    return (unsigned)n;
}

/* Pushes the read-only view of the params at idx that evaluate gets: a plugin that wrote
 * into params would change them for later traces. [-0, +1, m] */
static void push_params_view(lua_State *L, int params) {
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
}

/* On the first load, keeps what `assay list` and `assay check` show: the identity at
 * name.. (name, scope, description) and the params at params as JSON. [-0, +0, e] */
static void load_keep_info(lua_State *L, sandbox *sb, int name, int params) {
    buf json;
    buf_init(&json);
    char err[160];
    int status = convert_lua_to_json(L, params, &json, err, sizeof err);
    /* an empty params table encodes as [] (see convert.c); params are a map */
    if (status == 0 && strcmp(buf_cstr(&json), "[]") == 0) buf_reset(&json), buf_puts(&json, "{}");
    sb->params_json = status == 0 && !buf_failed(&json) ? buf_steal(&json) : strdup("{}");
    buf_free(&json);
    sb->name = strdup(lua_tostring(L, name));
    sb->scope = strdup(lua_tostring(L, name + 1));
    sb->description = strdup(lua_isstring(L, name + 2) ? lua_tostring(L, name + 2) : "");
    if (!sb->name || !sb->scope || !sb->description || !sb->params_json) luaL_error(L, "not enough memory");
    sb->info = (sandbox_info){sb->name, sb->description, sb->scope, sb->params_json};
}

/* A table of settings: kept as JSON, of plain values only (a function in it is refused). */
static int load_table(lua_State *L, sandbox *sb) {
    buf b;
    buf_init(&b);
    char err[300];
    if (convert_lua_to_json(L, lua_gettop(L), &b, err, sizeof err) != 0 || buf_failed(&b)) {
        buf_free(&b);
        return luaL_error(L, "%s: the returned table cannot be read as settings: %s", sb->cfg.path, err);
    }
    sb->table_json = buf_steal(&b);
    sb->name = strdup("settings");
    sb->description = strdup("");
    sb->scope = strdup("trace");
    sb->params_json = strdup("{}");
    if (!sb->table_json || !sb->name || !sb->description || !sb->scope || !sb->params_json)
        return luaL_error(L, "not enough memory");
    sb->info = (sandbox_info){sb->name, sb->description, sb->scope, sb->params_json};
    return 0;
}

int load_plugin(lua_State *L) {
    sstate *st = state_of(L);
    sandbox *sb = st->sb;
    load_chunk(L, &sb->cfg);
    if (sb->cfg.is_table) return load_table(L, sb);
    int plugin = lua_gettop(L);
    if (sb->cfg.is_mapper) {
        if (lua_getfield(L, plugin, "map") != LUA_TFUNCTION)
            return luaL_error(L, "%s: the returned table has no map function (an importer's mapper: map = "
                                 "function(doc, params) ... return trace end)", sb->cfg.path);
    } else if (lua_getfield(L, plugin, "evaluate") != LUA_TFUNCTION) {
        return luaL_error(L, "%s: the returned table has no evaluate function (evaluate = function(trace, params, "
                             "step, index) ... end)", sb->cfg.path);
    }
    st->evaluate_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    load_identity(L, plugin, sb->cfg.path);
    int name = plugin + 1;
    load_params(L, plugin, &sb->cfg, lua_tostring(L, name));
    int params = lua_gettop(L);
    sb->repeats = load_repeats(L, params, sb->cfg.is_mapper ? NULL : lua_tostring(L, name));
    push_params_view(L, params);
    st->params_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    if (!sb->name) load_keep_info(L, sb, name, params);
    sb->is_trace_scope = strcmp(lua_tostring(L, name + 1), "trace") == 0;
    env_protect_globals(L, true);
    return 0;
}
