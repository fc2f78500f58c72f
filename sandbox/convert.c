/* convert.c - JSON <-> Lua values, and the `assay.json` module.
 *
 * Traces arrive as cJSON trees and become plain Lua tables; records leave as JSON text.
 * Every conversion checks the Lua stack and bounds its depth, so hostile input can raise a
 * Lua error (caught by the caller's protected call) but never overflow the C stack.
 */
#include "sandbox_internal.h"

#include <lauxlib.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CONVERT_MAX_DEPTH 64

static const char convert_null_sentinel = 0;
/* registry key of the metatable marking tables that came from JSON arrays */
static const char convert_array_key = 0;

/* tostring of a light userdata: assay.null is the only one a plugin ever holds, and its
 * address would tell where the library is loaded. */
static int light_tostring(lua_State *L) {
    if (convert_is_null(L, 1)) lua_pushliteral(L, "null");
    else lua_pushliteral(L, "userdata");
    return 1;
}

void convert_init_state(lua_State *L) {
    /* The array marker is attached by the host to every array it builds: a plugin that could
     * reach it could add __gc, __index or __len to all of them, so __metatable hides it
     * (getmetatable answers "assay.array"). */
    lua_createtable(L, 0, 2);
    lua_pushliteral(L, "assay.array");
    lua_setfield(L, -2, "__name");
    lua_pushliteral(L, "assay.array");
    lua_setfield(L, -2, "__metatable");
    lua_rawsetp(L, LUA_REGISTRYINDEX, &convert_array_key);
    /* one metatable for every light userdata of the state */
    convert_push_null(L);
    lua_createtable(L, 0, 3);
    lua_pushcfunction(L, light_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
    lua_pop(L, 1);
}

void convert_push_array_metatable(lua_State *L) { lua_rawgetp(L, LUA_REGISTRYINDEX, &convert_array_key); }

int convert_has_array_metatable(lua_State *L, int idx) {
    if (!lua_getmetatable(L, idx)) return 0;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &convert_array_key);
    int same = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    return same;
}

int convert_is_array(lua_State *L, int idx) {
    if (!lua_istable(L, idx)) return 0;
    bool is_array;
    if (lazy_is_array(L, idx, &is_array)) return is_array; /* known without building it */
    return convert_has_array_metatable(L, idx);
}

void convert_push_null(lua_State *L) { lua_pushlightuserdata(L, (void *)&convert_null_sentinel); }

int convert_is_null(lua_State *L, int idx) {
    return lua_islightuserdata(L, idx) && lua_touserdata(L, idx) == &convert_null_sentinel;
}

/* Integral doubles within 2^53 become Lua integers so that `#steps`, counts and ids read
 * naturally in plugins; everything else stays a float. */
static void push_number(lua_State *L, double d) {
    if (d == floor(d) && fabs(d) <= 9007199254740992.0) lua_pushinteger(L, (lua_Integer)d);
    else lua_pushnumber(L, d);
}

void convert_push_json(lua_State *L, const cJSON *item) {
    luaL_checkstack(L, 3, "JSON nested too deeply");
    switch (item->type & 0xFF) {
    case cJSON_False: lua_pushboolean(L, 0); break;
    case cJSON_True: lua_pushboolean(L, 1); break;
    case cJSON_NULL: convert_push_null(L); break;
    case cJSON_Number: push_number(L, item->valuedouble); break;
    case cJSON_String:
    case cJSON_Raw:
        if (item->valuestring) lua_pushlstring(L, item->valuestring, json_string_len(item));
        else lua_pushliteral(L, "");
        break;
    case cJSON_Array: {
        int n = 0;
        for (const cJSON *c = item->child; c; c = c->next) n++;
        lua_createtable(L, n, 0);
        if (lua_rawgetp(L, LUA_REGISTRYINDEX, &convert_array_key) == LUA_TTABLE) lua_setmetatable(L, -2);
        else lua_pop(L, 1);
        lua_Integer i = 1;
        for (const cJSON *c = item->child; c; c = c->next) {
            convert_push_json(L, c);
            lua_rawseti(L, -2, i++);
        }
        break;
    }
    case cJSON_Object: {
        int n = 0;
        for (const cJSON *c = item->child; c; c = c->next) n++;
        lua_createtable(L, 0, n);
        for (const cJSON *c = item->child; c; c = c->next) {
            if (!c->string || (c->type & 0xFF) == cJSON_NULL) continue;
            convert_push_json(L, c);
            lua_setfield(L, -2, c->string);
        }
        break;
    }
    default: lua_pushnil(L);
    }
}

/* ------------------------------------------------------------------------ Lua -> JSON */

typedef struct key_entry {
    const char *text;
    size_t len;
    lua_Integer integer; /* the key itself when is_integer */
    int is_integer;
    int slot;            /* a small object's: where its value is on the stack */
    char number[24];     /* integer keys of a mixed table, printed */
} key_entry;

/* Integer keys point into their own entry, which qsort moves: resolve them here. */
static const char *key_text(const key_entry *e) { return e->is_integer ? e->number : e->text; }

static int compare_keys(const void *a, const void *b) {
    const key_entry *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(key_text(x), key_text(y), n);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* One encoding: where it goes and what it may cost. A table reachable along many paths (a
 * DAG: t = {x, x} with x = {y, y}, ...) is written once per path, so depth alone does not
 * bound the output: 64 levels of sharing are 2^64 copies. The output is capped at the
 * state's memory limit, and the limits get a look every CONVERT_CHECK_TABLES tables. */
typedef struct encoder {
    buf *b;
    size_t start, max_len;
    unsigned tables;
    char *err;
    size_t errlen;
} encoder;

#define CONVERT_CHECK_TABLES 256

static int to_json(lua_State *L, int idx, encoder *e, int depth);

/* A table is an array when its keys are exactly 1..n. Empty tables are arrays: in plugins
 * an empty list ("no failed checks") is far more common than an empty map. */
static int table_is_array(lua_State *L, int idx, lua_Integer *out_n, size_t *out_count) {
    lua_Integer count = 0, max = 0;
    int is_array = 1;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        count++;
        if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1) { is_array = 0; continue; }
        if (lua_tointeger(L, -1) > max) max = lua_tointeger(L, -1);
    }
    *out_n = max;
    *out_count = (size_t)count;
    return is_array && max == count;
}

/* An object of up to this many keys (a record's details, nearly always) is written with its
 * keys in a C array and its values kept on the Lua stack as the table is walked; a larger
 * one has its keys in a userdata and each value looked up again by its key. Why: the
 * userdata, and a key string found again and a lookup per member, were most of what
 * writing a record cost (6% of a trace over the five shipped evaluators). */
#define CONVERT_SMALL_OBJECT 16

static int object_to_json(lua_State *L, int idx, size_t count, encoder *enc, int depth) {
    buf *b = enc->b;
    bool small = count <= CONVERT_SMALL_OBJECT;
    /* a C array cannot leak when a Lua error (out of memory) jumps out; a userdata is the
     * collector's */
    key_entry on_stack[CONVERT_SMALL_OBJECT];
    key_entry *keys = small ? on_stack : lua_newuserdatauv(L, count * sizeof *keys, 0);
    int base = lua_gettop(L);
    if (small) luaL_checkstack(L, (int)count + 4, "JSON nested too deeply");
    size_t n = 0;
    lua_pushnil(L);
    while (lua_next(L, idx) && n < count) {
        key_entry *e = &keys[n];
        if (lua_type(L, -2) == LUA_TSTRING) {
            /* the string stays alive: it is a key of a table we do not modify */
            e->text = lua_tolstring(L, -2, &e->len);
            e->is_integer = 0;
        } else if (lua_isinteger(L, -2)) {
            e->integer = lua_tointeger(L, -2);
            e->len = (size_t)snprintf(e->number, sizeof e->number, "%lld", (long long)e->integer);
            e->is_integer = 1;
        } else {
            lua_pop(L, 1);
            continue; /* keys JSON cannot hold (booleans, tables, floats) are left out */
        }
        if (small) {
            e->slot = lua_gettop(L) - 1; /* the value stays, under the key */
            lua_insert(L, -2);
        } else {
            lua_pop(L, 1);
        }
        n++;
    }
    if (small) { /* a few keys: insertion sort, without qsort's calls through a pointer */
        for (size_t i = 1; i < n; i++) {
            key_entry e = keys[i];
            size_t k = i;
            for (; k > 0 && compare_keys(&keys[k - 1], &e) > 0; k--) keys[k] = keys[k - 1];
            keys[k] = e;
        }
    } else {
        qsort(keys, n, sizeof *keys, compare_keys);
    }
    buf_putc(b, '{');
    int status = 0;
    for (size_t i = 0; i < n && status == 0; i++) {
        if (i) buf_putc(b, ',');
        buf_json_string(b, key_text(&keys[i]), keys[i].len);
        buf_putc(b, ':');
        if (small) {
            status = to_json(L, keys[i].slot, enc, depth + 1);
            continue;
        }
        if (keys[i].is_integer) lua_pushinteger(L, keys[i].integer);
        else lua_pushlstring(L, keys[i].text, keys[i].len);
        lua_rawget(L, idx);
        status = to_json(L, lua_gettop(L), enc, depth + 1);
        lua_pop(L, 1);
    }
    buf_putc(b, '}');
    lua_settop(L, small ? base : base - 1);
    return status;
}

static int to_json(lua_State *L, int idx, encoder *e, int depth) {
    buf *b = e->b;
    switch (lua_type(L, idx)) {
    case LUA_TNIL: buf_puts(b, "null"); return 0;
    case LUA_TBOOLEAN: buf_puts(b, lua_toboolean(L, idx) ? "true" : "false"); return 0;
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx)) buf_json_integer(b, (long long)lua_tointeger(L, idx));
        else buf_json_number(b, lua_tonumber(L, idx));
        return 0;
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        buf_json_string(b, s, len);
        return 0;
    }
    case LUA_TTABLE: break;
    default: buf_puts(b, "null"); return 0; /* functions, userdata (assay.null), threads */
    }
    if (depth >= CONVERT_MAX_DEPTH) {
        snprintf(e->err, e->errlen, "value nested deeper than %d levels (a table that contains itself?)",
                 CONVERT_MAX_DEPTH);
        return -1;
    }
    if (b->len - e->start > e->max_len) {
        snprintf(e->err, e->errlen, "value encodes to more than the %zu MiB memory limit (a table "
                 "shared many times over?)", e->max_len >> 20);
        return -1;
    }
    if (++e->tables % CONVERT_CHECK_TABLES == 0) sandbox_check_limits(L);
    luaL_checkstack(L, 6, "JSON nested too deeply");
    lazy_fill(L, idx);
    lua_Integer n;
    size_t count;
    bool is_array = table_is_array(L, idx, &n, &count);
    if (!is_array && convert_is_array(L, idx) && count == 0) is_array = true, n = 0;
    if (!is_array) return object_to_json(L, idx, count, e, depth);
    buf_putc(b, '[');
    for (lua_Integer i = 1; i <= n; i++) {
        if (i > 1) buf_putc(b, ',');
        lua_rawgeti(L, idx, i);
        int status = to_json(L, lua_gettop(L), e, depth + 1);
        lua_pop(L, 1);
        if (status) return status;
    }
    buf_putc(b, ']');
    return 0;
}

int convert_lua_to_json(lua_State *L, int idx, buf *b, char *err, size_t errlen) {
    size_t limit = sandbox_memory_limit(L);
    encoder e = {b, b->len, limit ? limit : SIZE_MAX / 2, 0, err, errlen};
    return to_json(L, lua_absindex(L, idx), &e, 0);
}

/* ------------------------------------------------------------------- protected helpers */

static int push_json_body(lua_State *L) {
    convert_push_json(L, lua_touserdata(L, 1));
    return 1;
}

int convert_pcall_push_json(lua_State *L, const cJSON *item) {
    lua_pushcfunction(L, push_json_body);
    lua_pushlightuserdata(L, (void *)item);
    return lua_pcall(L, 1, 1, 0);
}

/* ------------------------------------------------------------------ assay.json module */

cJSON *convert_parse_json(const char *text, size_t len, const char **error_at) {
    const char *nul = memchr(text, '\0', len);
    if (nul) { /* JSON text has no raw NUL; cJSON would stop there and accept a prefix */
        *error_at = nul;
        return NULL;
    }
    const char *end = NULL;
    /* len + 1 takes in the terminating NUL: with require_null_terminated cJSON then refuses
     * trailing garbage such as `{"id":"a"} junk`, which plain parsing accepts */
    cJSON *root = cJSON_ParseWithLengthOpts(text, len + 1, &end, 1);
    *error_at = root ? NULL : (end && end >= text && end <= text + len ? end : text);
    return root;
}

/* assay.json.is_array(value) -> boolean: the table came from a JSON array */
static int json_is_array(lua_State *L) {
    lua_pushboolean(L, convert_is_array(L, 1));
    return 1;
}

/* Is the value at idx a JSON object: a table that did not come from a JSON array? */
static bool is_object(lua_State *L, int idx) { return lua_istable(L, idx) && !convert_is_array(L, idx); }

/* The size to make json.objects' answer for the list at 1: its length, up to 64. Why: an
 * answer grown one entry at a time is rehashed at every power of two, and that was a
 * third of what json.objects cost; the cap bounds what a list of a few matches among
 * millions of entries takes before it is filled. */
static int objects_size_hint(lua_State *L) {
    lazy_value list = lazy_value_at(L, 1);
    size_t n = 0;
    if (list.node)
        for (const cJSON *c = list.node->child; c && n < 64; c = c->next) n++;
    else
        n = lua_rawlen(L, 1) < 64 ? lua_rawlen(L, 1) : 64;
    return (int)n;
}

/* json.objects(list, key, value) for a string value, on the table at 4: each entry's key is
 * read through the view without building it (lazy.c's lazy_value_*, which read what Lua
 * would), so an entry left out makes no table and its value no Lua string: of a trace's
 * steps, trace.steps(t, "search") keeps half. A kept entry is pushed as the plugin would
 * read it. */
static int objects_by_string(lua_State *L) {
    const char *key = lua_tostring(L, 2);
    size_t value_len, len;
    const char *value = lua_tolstring(L, 3, &value_len), *got;
    lazy_value list = lazy_value_at(L, 1), entry;
    lazy_iter it;
    if (!lazy_value_first(L, list, &it)) return 1;
    int base = lua_gettop(L);
    lua_Integer n = 0;
    for (lua_Integer i = 1; lazy_value_next(L, list, &it, &entry); i++) { /* as ipairs */
        if (i % 4096 == 0) sandbox_check_limits(L); /* a trace may hold millions */
        if (lazy_value_is_object(L, entry) && (got = lazy_value_string(L, lazy_value_get(L, entry, key), &len)) &&
            len == value_len && memcmp(got, value, len) == 0) {
            if (entry.idx) lua_pushvalue(L, entry.idx);
            else lua_geti(L, 1, i);
            lua_rawseti(L, 4, ++n);
        }
        lua_settop(L, base);
    }
    return 1;
}

/* assay.json.objects(list [, key, value]) -> {entry...}: the entries of a JSON array that are
 * objects, in order ({} when list is not an array); with key, only those whose entry[key] ==
 * value. plugins/lib/trace.lua walks steps and results with it: one call into C per list
 * rather than a Lua call and a C call per entry. [-(1|3), +1, e] */
static int json_objects(lua_State *L) {
    lua_settop(L, 3);
    bool has_key = !lua_isnoneornil(L, 2);
    if (has_key && lua_type(L, 2) != LUA_TSTRING)
        return luaL_error(L, "assay.json.objects: the key must be a string, not %s", luaL_typename(L, 2));
    bool is_array = convert_is_array(L, 1);
    lua_createtable(L, is_array ? objects_size_hint(L) : 0, 0);
    if (!is_array) return 1;
    size_t key_len;
    if (has_key && lua_type(L, 3) == LUA_TSTRING && strlen(lua_tolstring(L, 2, &key_len)) == key_len)
        return objects_by_string(L); /* (a key with a NUL in it goes the Lua way) */
    lua_Integer n = 0;
    for (lua_Integer i = 1; lua_geti(L, 1, i) != LUA_TNIL; i++) { /* as ipairs: up to the first nil */
        if (i % 4096 == 0) sandbox_check_limits(L); /* a trace may hold millions */
        bool keep = is_object(L, -1);
        if (keep && has_key) {
            lua_pushvalue(L, 2);
            lua_gettable(L, -2);
            keep = lua_compare(L, -1, 3, LUA_OPEQ);
            lua_pop(L, 1);
        }
        if (keep) lua_rawseti(L, 4, ++n);
        else lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return 1;
}

size_t convert_parse_cost(const char *text, size_t len) {
    /* a value ends at ',' or closes a container, or is the last one: counting those bounds
     * the nodes; bytes inside strings are skipped */
    size_t values = 1;
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (in_string) {
            if (c == '\\') i++;
            else if (c == '"') in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == ',' || c == '[' || c == '{') {
            values++;
        }
    }
    /* a node and malloc's overhead for it and for its strings; the strings themselves are
     * at most the text */
    size_t per_value = sizeof(cJSON) + 32;
    return values > (SIZE_MAX - len) / per_value ? SIZE_MAX : values * per_value + len;
}

/* assay.json.decode(text) -> value | nil, message   [-1, +1|2, m]
 * A parse failure is a value, not an error: judges return malformed JSON often enough that
 * plugins should branch on it without pcall. The cJSON tree lives outside Lua, so what it
 * can cost is counted against the state's memory limit while it exists: 12 MB of [0,0,...]
 * made 527 MB of nodes. */
static int json_decode(lua_State *L) {
    size_t len;
    const char *text = luaL_checklstring(L, 1, &len);
    size_t cost = convert_parse_cost(text, len);
    if (!sandbox_charge(L, cost))
        return luaL_error(L, "assay.json.decode: parsing %zu bytes of JSON would pass the memory limit", len);
    const char *end = NULL;
    cJSON *root = convert_parse_json(text, len, &end);
    if (!root) {
        sandbox_uncharge(L, cost);
        lua_pushnil(L);
        lua_pushfstring(L, "invalid JSON at byte %d", (int)(end - text) + 1);
        return 2;
    }
    int status = convert_pcall_push_json(L, root);
    cJSON_Delete(root);
    sandbox_uncharge(L, cost);
    if (status != LUA_OK) return lua_error(L);
    return 1;
}

typedef struct encode_job {
    buf out;
    char err[160];
    int status;
} encode_job;

static int json_encode_body(lua_State *L) {
    encode_job *job = lua_touserdata(L, 2);
    job->status = convert_lua_to_json(L, 1, &job->out, job->err, sizeof job->err);
    return 0;
}

/* assay.json.encode(value) -> text   [-1, +1, e]
 * Objects get sorted keys; an empty table encodes as []. */
static int json_encode(lua_State *L) {
    luaL_checkany(L, 1);
    lua_settop(L, 1);
    encode_job job;
    buf_init(&job.out);
    job.status = 0;
    job.err[0] = '\0';
    lua_pushcfunction(L, json_encode_body);
    lua_pushvalue(L, 1);
    lua_pushlightuserdata(L, &job);
    int status = lua_pcall(L, 2, 0, 0);
    int out_of_memory = buf_failed(&job.out);
    if (status == LUA_OK && job.status == 0 && !out_of_memory) {
        lua_pushlstring(L, buf_cstr(&job.out), job.out.len);
        buf_free(&job.out);
        return 1;
    }
    buf_free(&job.out);
    if (status != LUA_OK) return lua_error(L);
    if (out_of_memory) return luaL_error(L, "not enough memory");
    return luaL_error(L, "assay.json.encode: %s", job.err);
}

int convert_open_json(lua_State *L) {
    static const luaL_Reg functions[] = {
        {"decode", json_decode},
        {"encode", json_encode},
        {"is_array", json_is_array},
        {"objects", json_objects},
        {NULL, NULL},
    };
    luaL_newlib(L, functions);
    convert_push_null(L);
    lua_setfield(L, -2, "null");
    return 1;
}
