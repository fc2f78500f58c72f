/* lazy.c - the trace a plugin sees, built in its Lua state one table at a time, when the
 * plugin first touches that table.
 *
 * Why: every plugin has a state of its own (the isolation the sandbox promises), and copying
 * the whole parsed trace into each of them cost more than parsing it. Many plugins read a
 * small part (`expect` two fields, a length check one); they now pay for what they read.
 * So a JSON object or array arrives as an empty stand-in that holds its cJSON node, under a
 * metatable (one per state, reused: see Lifetime). Reading a member of an object builds that member
 * alone and keeps it in the table (most plugins read a few fields of each step, and the
 * fields they skip are the long texts); the first assignment, length, pairs, or any read of
 * an array fills the rest (nested containers again as stand-ins), keeping the members
 * already read, and drops the metatable, so from then on it is a plain table, exactly what
 * eager conversion (convert.c) would have built. Raw access would see a part, so the
 * sandbox's next, rawget, rawset, rawlen, getmetatable and setmetatable, and every host
 * function that walks a table, fill it first (lazy_fill). assay.json.is_array answers from
 * the node without building anything.
 *
 * Lifetime: the cJSON tree belongs to the job and is freed after the evaluation, so when the
 * evaluation ends lazy_doc_end marks the trace's document dead. A stand-in a plugin kept in
 * module state and touches later raises a clear error instead of reading freed memory.
 *
 * The view (the metatable and its closures) is made once per state and reused trace after
 * trace, since making it was 2.7% of a trace over five evaluators; each trace puts a new
 * document in it. A stand-in of an earlier trace then meets the live document, but its
 * node is under its own trace's document, which no later stand-in uses as a key, so it
 * finds nothing and raises the same clear error. Evaluations interleaved in one state (one
 * waits on a judge while the next runs) each have a view: only an idle one is reused.
 *
 * The node pointer is the one thing here that Lua must never name. A stand-in keeps it under
 * a key that is its document's own userdata: Lua never sees that userdata (it lives in the
 * metatable, which __metatable hides, and in the upvalues of C closures, which need the debug
 * library to read), no raw iteration of an unbuilt stand-in is ever handed to Lua (next, and
 * the `next` that pairs returns, build the table first), and a node is looked up only under
 * the live document's key of the stand-in's own metatable. So a plugin can neither read a
 * node nor write one, nor move a stand-in of one trace into another.
 * Not here: eager conversion and JSON text (convert.c).
 */
#include "sandbox_internal.h"

#include <lauxlib.h>
#include <stdbool.h>
#include <string.h>

struct lazy_doc {
    bool is_alive;
};

/* The document hangs in the trace's metatable under lazy_doc_key; it is also the key under
 * which each stand-in of the trace holds its node (see the header). The key is in the
 * stand-in's own table rather than in a shared map that would be grown and searched for
 * every table of every trace, and filling removes it. */
static const char lazy_doc_key = 0;

/* Pushes the value of item; containers as stand-ins with the metatable at `mt` and the
 * document (their key) at `doc`. [-0, +1, m] */
static void lazy_push(lua_State *L, const cJSON *item, int mt, int doc) {
    switch (item->type & 0xFF) {
    case cJSON_Array:
    case cJSON_Object: {
        int n = 0;
        for (const cJSON *c = item->child; c; c = c->next) n++;
        bool is_array = (item->type & 0xFF) == cJSON_Array;
        /* sized now, so that filling never rehashes; one more slot for the node key */
        lua_createtable(L, is_array ? n : 0, is_array ? 1 : n + 1);
        lua_pushvalue(L, doc);
        lua_pushlightuserdata(L, (void *)item);
        lua_rawset(L, -3);
        lua_pushvalue(L, mt);
        lua_setmetatable(L, -2);
        return;
    }
    default: convert_push_json(L, item); /* a scalar */
    }
}

/* The node of the stand-in at idx, whose document is at doc; raises if the trace is gone.
 * Only the document's own key is looked at, so no value Lua could have put in the table is
 * ever taken for a node. */
static const cJSON *doc_node(lua_State *L, int doc, int idx) {
    const struct lazy_doc *d = lua_touserdata(L, doc);
    if (!d || !d->is_alive)
        luaL_error(L, "this table is part of an earlier trace, whose data is gone once its evaluation ends "
                      "(copy the values a plugin keeps from one trace to the next)");
    lua_pushvalue(L, doc);
    const cJSON *node = lua_rawget(L, idx) == LUA_TLIGHTUSERDATA ? lua_touserdata(L, -1) : NULL;
    lua_pop(L, 1);
    /* not under the live document: a stand-in of an earlier trace, kept while its state's
     * view (the same metatable) went on to later traces, each with a document of its own */
    if (!node) luaL_error(L, "this table is part of an earlier trace, whose data is gone once its evaluation ends "
                             "(copy the values a plugin keeps from one trace to the next)");
    return node;
}

/* The node of the stand-in at idx, with its metatable and document pushed; NULL with
 * nothing pushed for any other value. Raises if the stand-in's trace is gone. */
static const cJSON *standin_node(lua_State *L, int idx) {
    if (!lua_getmetatable(L, idx)) return NULL;
    if (lua_rawgetp(L, -1, &lazy_doc_key) != LUA_TUSERDATA) {
        lua_pop(L, 2);
        return NULL;
    }
    return doc_node(L, lua_gettop(L), idx);
}

/* Is the C string s the n bytes of key? Read up to s's end only; a key with a NUL in it
 * equals no member's name. Inline: keys are short, and a strnlen and a memcmp call for
 * each candidate cost more than the compare. */
static inline bool name_is(const char *s, const char *key, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != key[i] || s[i] == '\0') return false;
    return s[n] == '\0';
}

/* The member named key (n bytes, NUL-terminated: a Lua or a C string) as the filled table
 * would hold it: the last one that is not null (convert.c sets members in order and leaves
 * null out). */
static const cJSON *member(const cJSON *object, const char *key, size_t n) {
    const cJSON *found = NULL;
    for (const cJSON *c = object->child; c; c = c->next) /* the first byte rules most out at once */
        if (c->string && c->string[0] == key[0] && (c->type & 0xFF) != cJSON_NULL && name_is(c->string, key, n))
            found = c;
    return found;
}

void lazy_fill(lua_State *L, int idx) {
    idx = lua_absindex(L, idx);
    const cJSON *node = standin_node(L, idx);
    if (!node) return;
    int doc = lua_gettop(L), mt = doc - 1;
    luaL_checkstack(L, 6, "trace nested too deeply");
    lua_pushvalue(L, doc);
    lua_pushnil(L);
    lua_rawset(L, idx);
    if ((node->type & 0xFF) == cJSON_Array) {
        convert_push_array_metatable(L);
        lua_setmetatable(L, idx);
        lua_Integer i = 1;
        for (const cJSON *c = node->child; c; c = c->next) {
            lazy_push(L, c, mt, doc);
            lua_rawseti(L, idx, i++);
        }
    } else {
        lua_pushnil(L);
        lua_setmetatable(L, idx);
        /* Members read one at a time before (lazy_index) are kept, not built again: a
         * plugin may hold one of their tables, or have changed it. */
        bool has_read = false;
        lua_pushnil(L);
        if (lua_next(L, idx)) {
            lua_pop(L, 2);
            has_read = true;
        }
        int saved = 0;
        if (has_read) {
            lua_newtable(L);
            saved = lua_gettop(L);
            for (lua_pushnil(L); lua_next(L, idx);) {
                lua_pushvalue(L, -2);
                lua_insert(L, -2);
                lua_rawset(L, saved);
            }
        }
        for (const cJSON *c = node->child; c; c = c->next) {
            if (!c->string || (c->type & 0xFF) == cJSON_NULL) continue; /* as convert.c: null is absent */
            lua_pushstring(L, c->string);
            lazy_push(L, c, mt, doc);
            lua_rawset(L, idx); /* in order: the last of repeated keys wins */
        }
        if (has_read) {
            for (lua_pushnil(L); lua_next(L, saved);) {
                lua_pushvalue(L, -2);
                lua_insert(L, -2);
                lua_rawset(L, idx);
            }
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 2); /* mt, doc */
}

void lazy_check_table(lua_State *L, int arg) {
    luaL_checktype(L, arg, LUA_TTABLE);
    lazy_fill(L, arg);
}

/* ------------------------------------------------------------ the stand-ins' metamethods */

/* An object's members are built one at a time, as they are read, and kept in the table:
 * a plugin that reads `step.type` of every step does not copy every page's content into
 * its state. Anything that looks at the whole table (pairs, next, #, an assignment, a host
 * function) fills the rest first. Arrays are filled whole: their entries are stand-ins. */
static int lazy_index(lua_State *L) {
    lua_settop(L, 2);
    /* upvalues: the metatable, the document; the metamethod runs on every first read of a
     * member, so it finds them there rather than by looking up the metatable */
    const cJSON *node = doc_node(L, lua_upvalueindex(2), 1);
    if ((node->type & 0xFF) == cJSON_Object) {
        const cJSON *c = NULL;
        if (lua_type(L, 2) == LUA_TSTRING) {
            size_t n;
            const char *key = lua_tolstring(L, 2, &n);
            c = member(node, key, n);
        }
        if (!c) {
            lua_pushnil(L);
            return 1;
        }
        lazy_push(L, c, lua_upvalueindex(1), lua_upvalueindex(2));
        lua_pushvalue(L, 2);
        lua_pushvalue(L, -2);
        lua_rawset(L, 1);
        return 1;
    }
    lazy_fill(L, 1);
    lua_rawget(L, 1);
    return 1;
}

int lazy_is_array(lua_State *L, int idx, bool *is_array) {
    const cJSON *node = standin_node(L, lua_absindex(L, idx));
    if (!node) return 0;
    lua_pop(L, 2);
    *is_array = (node->type & 0xFF) == cJSON_Array;
    return 1;
}

static int lazy_newindex(lua_State *L) {
    lazy_fill(L, 1);
    lua_settop(L, 3);
    lua_rawset(L, 1);
    return 0;
}

static int lazy_len(lua_State *L) {
    lazy_fill(L, 1);
    lua_pushinteger(L, (lua_Integer)lua_rawlen(L, 1));
    return 1;
}

/* Lua's next, over a table that is built (or never was a stand-in). [-2, +(1|2), e] */
static int raw_next(lua_State *L) {
    lua_settop(L, 2);
    if (lua_next(L, 1)) return 2;
    lua_pushnil(L);
    return 1;
}

/* The sandbox's next, and the iterator pairs returns: a stand-in is built first, so the
 * document's key is never among the keys Lua sees. */
static int lazy_base_next(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    lazy_fill(L, 1);
    return raw_next(L);
}

static int lazy_pairs(lua_State *L) {
    lazy_fill(L, 1);
    lua_pushcfunction(L, lazy_base_next);
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    return 3;
}

/* Pushes a new view: the stand-ins' metatable, its __index closure holding it and (from
 * lazy_push_trace) the document. [-0, +1, m] */
static void new_view(lua_State *L) {
    lua_createtable(L, 0, 7);
    int mt = lua_gettop(L);
    static const luaL_Reg methods[] = {
        {"__newindex", lazy_newindex}, {"__len", lazy_len}, {"__pairs", lazy_pairs}, {NULL, NULL},
    };
    luaL_setfuncs(L, methods, 0);
    lua_pushboolean(L, 0);
    lua_setfield(L, mt, "__metatable");
    lua_pushvalue(L, mt);
    lua_pushboolean(L, 0); /* the document, set for each trace */
    lua_pushcclosure(L, lazy_index, 2);
    lua_setfield(L, mt, "__index");
}

int lazy_push_trace(lua_State *L, const cJSON *root, int *idle_view) {
    luaL_checkstack(L, 6, "not enough stack for the trace");
    int view_ref = *idle_view;
    if (view_ref != LUA_NOREF) {
        *idle_view = LUA_NOREF;
        lua_rawgeti(L, LUA_REGISTRYINDEX, view_ref);
    } else {
        new_view(L);
        lua_pushvalue(L, -1);
        view_ref = luaL_ref(L, LUA_REGISTRYINDEX); /* held until lazy_doc_end */
    }
    int mt = lua_gettop(L);
    struct lazy_doc *doc = lua_newuserdatauv(L, sizeof *doc, 0);
    doc->is_alive = true;
    lua_pushvalue(L, -1);
    lua_rawsetp(L, mt, &lazy_doc_key);
    lua_pushliteral(L, "__index");
    lua_rawget(L, mt);
    lua_pushvalue(L, -2);
    lua_setupvalue(L, -2, 2);
    lua_pop(L, 1);
    lazy_push(L, root, mt, lua_gettop(L));
    lua_replace(L, mt);
    lua_settop(L, mt);
    return view_ref;
}

void lazy_doc_end(lua_State *L, int view_ref, int *idle_view) {
    if (view_ref == LUA_NOREF || view_ref == LUA_REFNIL) return;
    lua_rawgeti(L, LUA_REGISTRYINDEX, view_ref);
    if (lua_rawgetp(L, -1, &lazy_doc_key) == LUA_TUSERDATA) ((struct lazy_doc *)lua_touserdata(L, -1))->is_alive = false;
    lua_pop(L, 2);
    /* kept for the state's next trace; neither way allocates (a kill ends traces this way) */
    if (*idle_view == LUA_NOREF) *idle_view = view_ref;
    else luaL_unref(L, LUA_REGISTRYINDEX, view_ref);
}

/* ------------------------------------------- reading the view from C, without building it */

/* Host functions that walk a trace for a plugin (trace.c) read it here the way the plugin
 * would see it, but take strings and numbers straight from the nodes: no stand-in is filled
 * and no Lua string made for a value the function only looks at. What a plugin may have
 * changed is read from Lua: a plain table (built, perhaps changed) through the Lua API, and
 * a member of a stand-in that has been built already when it is a table (the plugin may
 * have changed it). A scalar member built already is the node's value still: assigning to a
 * stand-in builds it whole first, so it is no stand-in any more. */

lazy_value lazy_value_at(lua_State *L, int idx) {
    idx = lua_absindex(L, idx);
    const cJSON *node = NULL;
    if (lua_type(L, idx) == LUA_TTABLE && (node = standin_node(L, idx)) != NULL) lua_pop(L, 2);
    return (lazy_value){node, idx};
}

lazy_value lazy_value_get(lua_State *L, lazy_value object, const char *key) {
    if (object.idx && !object.node) {
        if (lua_type(L, object.idx) != LUA_TTABLE) return (lazy_value){NULL, 0};
        lua_getfield(L, object.idx, key);
        return lazy_value_at(L, -1);
    }
    if (!object.node) return (lazy_value){NULL, 0};
    if (object.idx) {
        lua_pushstring(L, key);
        if (lua_rawget(L, object.idx) == LUA_TTABLE) return lazy_value_at(L, -1);
        lua_pop(L, 1);
    }
    if ((object.node->type & 0xFF) != cJSON_Object) return (lazy_value){NULL, 0};
    return (lazy_value){member(object.node, key, strlen(key)), 0};
}

const char *lazy_value_string(lua_State *L, lazy_value v, size_t *n) {
    if (v.idx) return lua_type(L, v.idx) == LUA_TSTRING ? lua_tolstring(L, v.idx, n) : NULL;
    if (!v.node || ((v.node->type & 0xFF) != cJSON_String && (v.node->type & 0xFF) != cJSON_Raw)) return NULL;
    if (!v.node->valuestring) { /* as convert_push_json */
        *n = 0;
        return "";
    }
    *n = json_string_len(v.node);
    return v.node->valuestring;
}

bool lazy_value_is_object(lua_State *L, lazy_value v) {
    if (v.node) return (v.node->type & 0xFF) == cJSON_Object;
    return v.idx && lua_type(L, v.idx) == LUA_TTABLE && !convert_is_array(L, v.idx);
}

bool lazy_value_first(lua_State *L, lazy_value array, lazy_iter *it) {
    it->i = 1;
    if (array.node) { /* an array stand-in is built by any read, so one not built is all node */
        it->next = array.node->child;
        it->nodes = true;
        return (array.node->type & 0xFF) == cJSON_Array;
    }
    it->nodes = false;
    return array.idx && convert_is_array(L, array.idx);
}

bool lazy_value_next(lua_State *L, lazy_value array, lazy_iter *it, lazy_value *entry) {
    if (it->nodes) {
        if (!it->next) return false;
        *entry = (lazy_value){it->next, 0};
        it->next = it->next->next;
        return true;
    }
    if (lua_geti(L, array.idx, it->i++) == LUA_TNIL) { /* as ipairs */
        lua_pop(L, 1);
        return false;
    }
    *entry = lazy_value_at(L, -1);
    return true;
}

/* ------------------------------------------- base functions that see tables raw */

/* The sandbox's versions of Lua's raw accessors: the same contract and messages, with a
 * stand-in filled first so that raw access sees the trace's values. (next is above.) */
static int lazy_base_rawget(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checkany(L, 2);
    lazy_fill(L, 1);
    lua_settop(L, 2);
    lua_rawget(L, 1);
    return 1;
}

/* pairs(t): Lua's own returns its own next for a table without __pairs, and that next is
 * raw: applied to a stand-in it would show the document's key and the node. So the
 * sandbox's pairs hands out the sandbox's next, and keeps Lua's contract otherwise (__pairs
 * first, its three results). */
static int lazy_base_pairs(lua_State *L) {
    luaL_checkany(L, 1);
    if (luaL_getmetafield(L, 1, "__pairs") == LUA_TNIL) {
        lua_pushcfunction(L, lazy_base_next);
        lua_pushvalue(L, 1);
        lua_pushnil(L);
        return 3;
    }
    lua_pushvalue(L, 1);
    lua_call(L, 1, 3);
    return 3;
}

/* Tables the host made read-only through their metatable (the params view, the globals
 * once the plugin has loaded): rawset must not get round that. Registry key of a table
 * mapping each to the message to raise. */
static const char readonly_key = 0;

void lazy_mark_readonly(lua_State *L, int idx, const char *message) {
    idx = lua_absindex(L, idx);
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &readonly_key) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_rawsetp(L, LUA_REGISTRYINDEX, &readonly_key);
    }
    lua_pushvalue(L, idx);
    lua_pushstring(L, message);
    lua_rawset(L, -3);
    lua_pop(L, 1);
}

static int lazy_base_rawset(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checkany(L, 2);
    luaL_checkany(L, 3);
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &readonly_key) == LUA_TTABLE) {
        lua_pushvalue(L, 1);
        if (lua_rawget(L, -2) == LUA_TSTRING) return luaL_error(L, "%s", lua_tostring(L, -1));
    }
    lua_settop(L, 3);
    lazy_fill(L, 1);
    lua_settop(L, 3);
    lua_rawset(L, 1);
    return 1;
}

static int lazy_base_rawlen(lua_State *L) {
    int t = lua_type(L, 1);
    luaL_argexpected(L, t == LUA_TTABLE || t == LUA_TSTRING, 1, "table or string");
    if (t == LUA_TTABLE) lazy_fill(L, 1);
    lua_pushinteger(L, (lua_Integer)lua_rawlen(L, 1));
    return 1;
}

static int lazy_base_getmetatable(lua_State *L) {
    luaL_checkany(L, 1);
    if (lua_type(L, 1) == LUA_TTABLE) lazy_fill(L, 1);
    if (!lua_getmetatable(L, 1)) {
        lua_pushnil(L);
        return 1;
    }
    luaL_getmetafield(L, 1, "__metatable");
    return 1;
}

/* setmetatable is the sandbox's own (sandbox.c); it calls lazy_fill itself. */
void lazy_install_base(lua_State *L, int globals) {
    static const luaL_Reg functions[] = {
        {"next", lazy_base_next},     {"pairs", lazy_base_pairs},           {"rawget", lazy_base_rawget},
        {"rawset", lazy_base_rawset},
        {"rawlen", lazy_base_rawlen}, {"getmetatable", lazy_base_getmetatable}, {NULL, NULL},
    };
    globals = lua_absindex(L, globals);
    for (const luaL_Reg *f = functions; f->name; f++) {
        lua_pushcfunction(L, f->func);
        lua_setfield(L, globals, f->name);
    }
}
