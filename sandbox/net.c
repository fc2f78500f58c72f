/* net.c - the assay.http and assay.llm modules: turning a plugin's request table into a
 * sandbox_io the host performs, and the host's response back into Lua values.
 *
 * Every function here validates all of its arguments before it begins a request, so a bad
 * call raises a plain Lua error naming the field and nothing is sent. The network itself,
 * retries, caching, rate limits and the API key belong to the host (host/http.c): a plugin
 * never sees the key and cannot choose where it is sent.
 */
#include "sandbox_internal.h"

#include <lauxlib.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define NET_EXCERPT_BYTES 200

static char *dup_lua_string(lua_State *L, int idx) {
    size_t n;
    const char *s = lua_tolstring(L, idx, &n);
    char *p = malloc(n + 1);
    if (!p) luaL_error(L, "not enough memory");
    memcpy(p, s, n + 1);
    return p;
}

/* Reads field name of the table at t, which must have one of the given type or be nil.
 * [-0, +1, e] */
static int field(lua_State *L, int t, const char *what, const char *name, int type) {
    int got = lua_getfield(L, t, name);
    if (got != LUA_TNIL && got != type)
        luaL_error(L, "%s: field '%s' must be a %s (got %s)", what, name, lua_typename(L, type), lua_typename(L, got));
    if (got == LUA_TTABLE) lazy_fill(L, -1); /* read raw below: a trace table is built first */
    return got;
}

static bool header_text_is_valid(const char *s) {
    for (; *s; s++)
        if (*s == '\r' || *s == '\n') return false;
    return true;
}

/* ------------------------------------------------------------------------- assay.http */

/* Checks one request table at t and stores what it asks for on the stack as a fresh table
 * {method, url, body, headers(list of lines), timeout_ms, cache}: the checked copy that
 * begin_http reads, so that nothing the plugin does between validation and yield matters.
 * [-0, +1, e] */
static void check_http(lua_State *L, int t, const char *what) {
    t = lua_absindex(L, t);
    lazy_check_table(L, t);
    lua_createtable(L, 0, 6);
    int req = lua_gettop(L);

    if (field(L, t, what, "url", LUA_TSTRING) == LUA_TNIL) luaL_error(L, "%s: field 'url' is required", what);
    const char *url = lua_tostring(L, -1);
    if (strncasecmp(url, "http://", 7) != 0 && strncasecmp(url, "https://", 8) != 0)
        luaL_error(L, "%s: url must start with http:// or https:// (got '%s')", what, url);
    if (!header_text_is_valid(url)) luaL_error(L, "%s: url contains a line break", what);
    lua_setfield(L, req, "url");

    int body_type = lua_getfield(L, t, "body");
    bool is_json = false;
    if (body_type == LUA_TTABLE) {
        buf json;
        buf_init(&json);
        char err[160];
        if (convert_lua_to_json(L, -1, &json, err, sizeof err) != 0 || buf_failed(&json)) {
            buf_free(&json);
            luaL_error(L, "%s: body: %s", what, err);
        }
        lua_pushlstring(L, json.data ? json.data : "", json.len);
        buf_free(&json);
        lua_remove(L, -2);
        is_json = true;
    } else if (body_type != LUA_TNIL && body_type != LUA_TSTRING) {
        luaL_error(L, "%s: field 'body' must be a string or a table (got %s)", what, lua_typename(L, body_type));
    }
    bool has_body = body_type != LUA_TNIL;
    lua_setfield(L, req, "body");

    if (field(L, t, what, "method", LUA_TSTRING) == LUA_TNIL) {
        lua_pop(L, 1);
        lua_pushstring(L, has_body ? "POST" : "GET");
    }
    static const char *const methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"};
    bool known = false;
    for (size_t i = 0; i < sizeof methods / sizeof *methods; i++) known |= strcmp(lua_tostring(L, -1), methods[i]) == 0;
    if (!known) luaL_error(L, "%s: method '%s' is not one of GET, POST, PUT, PATCH, DELETE, HEAD", what, lua_tostring(L, -1));
    lua_setfield(L, req, "method");

    lua_newtable(L); /* header lines */
    int lines = lua_gettop(L);
    lua_Integer n = 0;
    if (is_json) {
        lua_pushliteral(L, "Content-Type: application/json");
        lua_rawseti(L, lines, ++n);
    }
    if (field(L, t, what, "headers", LUA_TTABLE) == LUA_TTABLE) {
        int h = lua_gettop(L);
        lua_pushnil(L);
        while (lua_next(L, h)) {
            if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
                luaL_error(L, "%s: headers must map header names to strings", what);
            const char *name = lua_tostring(L, -2), *value = lua_tostring(L, -1);
            if (!*name || strchr(name, ':') || !header_text_is_valid(name) || !header_text_is_valid(value))
                luaL_error(L, "%s: header '%s' has an invalid name or value", what, name);
            lua_pushfstring(L, "%s: %s", name, value);
            lua_rawseti(L, lines, ++n);
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
    lua_setfield(L, req, "headers");

    if (field(L, t, what, "timeout_ms", LUA_TNUMBER) == LUA_TNUMBER) {
        lua_Integer ms = 0;
        if (!lua_isinteger(L, -1) || (ms = lua_tointeger(L, -1)) <= 0 || ms > 3600000)
            luaL_error(L, "%s: timeout_ms must be a whole number of milliseconds in 1..3600000", what);
    }
    lua_setfield(L, req, "timeout_ms");
    if (field(L, t, what, "cache", LUA_TBOOLEAN) == LUA_TNIL) {
        lua_pop(L, 1);
        lua_pushboolean(L, 0);
    }
    lua_setfield(L, req, "cache");
}

/* Begins the request described by a checked table at req. [-0, +0, e] */
static void begin_checked(lua_State *L, int req, sandbox_io_kind kind, const char *what) {
    req = lua_absindex(L, req);
    sandbox_io *io = sandbox_io_begin(L, kind, what);
    lua_getfield(L, req, "method");
    io->method = dup_lua_string(L, -1);
    lua_getfield(L, req, "url");
    io->url = dup_lua_string(L, -1);
    if (lua_getfield(L, req, "body") == LUA_TSTRING) {
        size_t n;
        const char *body = lua_tolstring(L, -1, &n);
        buf_append(&io->body, body, n);
        if (buf_failed(&io->body)) luaL_error(L, "not enough memory");
    }
    lua_getfield(L, req, "headers");
    size_t count = (size_t)lua_rawlen(L, -1);
    if (count) {
        io->headers = calloc(count, sizeof *io->headers);
        if (!io->headers) luaL_error(L, "not enough memory");
        for (size_t i = 0; i < count; i++) {
            lua_rawgeti(L, -1, (lua_Integer)i + 1);
            io->headers[io->header_count++] = dup_lua_string(L, -1);
            lua_pop(L, 1);
        }
    }
    lua_getfield(L, req, "timeout_ms");
    io->timeout_ms = (unsigned)lua_tointeger(L, -1);
    lua_getfield(L, req, "cache");
    io->is_cacheable = lua_toboolean(L, -1);
    lua_getfield(L, req, "max_tokens");
    io->max_tokens = (long)lua_tointeger(L, -1);
    lua_getfield(L, req, "endpoint");
    io->endpoint = (unsigned)lua_tointeger(L, -1);
    lua_pop(L, 8);
}

/* assay.http.request{method=, url=, headers=, body=, timeout_ms=, cache=}
 *   -> {status=, headers=, body=}. [-1, +1, e] */
static int http_request(lua_State *L) {
    sandbox_io_forget(L);
    check_http(L, 1, "assay.http.request");
    begin_checked(L, -1, SANDBOX_IO_HTTP, "assay.http.request");
    return sandbox_io_wait(L, false);
}

/* Checks every request of the list at 1 with check, then begins them all: a bad entry
 * raises before anything is sent. [-0, +1, e] */
static void begin_all(lua_State *L, void (*check)(lua_State *, int, const char *), sandbox_io_kind kind,
                      const char *what) {
    lazy_check_table(L, 1);
    lua_Integer n = (lua_Integer)lua_rawlen(L, 1);
    lua_createtable(L, (int)n, 0);
    int checked = lua_gettop(L);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, 1, i);
        char at[96];
        snprintf(at, sizeof at, "%s: request %lld", what, (long long)i);
        check(L, -1, at);
        lua_rawseti(L, checked, i);
        lua_pop(L, 1);
    }
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, checked, i);
        begin_checked(L, -1, kind, what);
        lua_pop(L, 1);
    }
}

/* assay.http.request_all{req, req, ...} -> {response, response, ...}, all in flight at once. */
static int http_request_all(lua_State *L) {
    sandbox_io_forget(L);
    if (lua_istable(L, 1) && (lazy_fill(L, 1), lua_rawlen(L, 1) == 0)) return lua_newtable(L), 1;
    begin_all(L, check_http, SANDBOX_IO_HTTP, "assay.http.request_all");
    return sandbox_io_wait(L, true);
}

int net_open_http(lua_State *L) {
    static const luaL_Reg functions[] = {{"request", http_request}, {"request_all", http_request_all}, {NULL, NULL}};
    luaL_newlib(L, functions);
    return 1;
}

/* -------------------------------------------------------------------------- assay.llm */

/* The model a request asks and where: field model, else the configured default; the
 * endpoint named by field endpoint, or by a model "MODEL@NAME" whose NAME is a configured
 * endpoint (MODEL is then what is sent; any other '@' is part of the model's name), else 0,
 * the default. Leaves the two fields on the stack, where the model's text lives, and returns
 * what is wrong, or NULL. Raises nothing of its own after reading them. [-0, +2, e] */
typedef struct model_choice {
    const char *model; /* NULL: none */
    size_t len;
    unsigned endpoint;
} model_choice;

static const char *read_model(lua_State *L, int t, model_choice *m) {
    int top = lua_gettop(L);
    bool has_model = lua_getfield(L, t, "model") == LUA_TSTRING, has_endpoint = lua_getfield(L, t, "endpoint") == LUA_TSTRING;
    if (!has_model && !lua_isnil(L, top + 1)) return "field 'model' must be a string";
    if (!has_endpoint && !lua_isnil(L, top + 2)) return "field 'endpoint' must be a string";
    m->model = has_model ? lua_tolstring(L, top + 1, &m->len) : sandbox_io_default_model(L);
    if (m->model && !has_model) m->len = strlen(m->model);
    m->endpoint = 0;
    if (has_endpoint && !(m->endpoint = sandbox_io_endpoint(L, lua_tostring(L, top + 2), lua_rawlen(L, top + 2))))
        return "field 'endpoint' names no endpoint configured for this run (--llm-endpoint NAME=URL)";
    const char *at = NULL;
    for (size_t i = 0; m->model && i < m->len; i++)
        if (m->model[i] == '@') at = m->model + i;
    if (!has_endpoint && at && (m->endpoint = sandbox_io_endpoint(L, at + 1, m->len - (size_t)(at + 1 - m->model))))
        m->len = (size_t)(at - m->model);
    return m->model ? NULL : "no model (pass model=, or configure a default model for the run)";
}

static void append_model(buf *body, const model_choice *m) {
    buf_puts(body, ",\"model\":");
    buf_json_string(body, m->model, m->len);
}

/* Checks a chat request and stores a checked request table (as check_http makes) whose
 * body is the OpenAI-compatible JSON. Keys are written in a fixed order so that identical
 * calls give identical bodies, which is what the cache keys on. [-0, +1, e] */
/* A request table for an OpenAI-compatible endpoint: POST path with body (consumed), no
 * extra headers, answers cached. Leaves it on the stack for the caller to add to. */
static void push_cached_post(lua_State *L, const char *path, buf *body) {
    lua_createtable(L, 0, 7);
    lua_pushliteral(L, "POST");
    lua_setfield(L, -2, "method");
    lua_pushstring(L, path);
    lua_setfield(L, -2, "url");
    lua_pushlstring(L, body->data ? body->data : "", body->len);
    buf_free(body);
    lua_setfield(L, -2, "body");
    lua_newtable(L);
    lua_setfield(L, -2, "headers");
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "cache");
}

static void check_chat(lua_State *L, int t, const char *what) {
    t = lua_absindex(L, t);
    lazy_check_table(L, t);
    /* Every field is read and checked before the body exists: an error raised meanwhile (a
     * wrong type, a request table's own metamethod) then leaks nothing, however often a
     * plugin catches it and asks again. */
    int base = lua_gettop(L);
    if (field(L, t, what, "messages", LUA_TTABLE) == LUA_TNIL) goto need_messages; /* base + 1 */
    lua_Integer n = (lua_Integer)lua_rawlen(L, base + 1);
    if (n == 0) goto need_messages;
    for (lua_Integer i = 1; i <= n; i++) {
        if (lua_rawgeti(L, base + 1, i) != LUA_TTABLE) goto need_messages;
        bool ok = lua_getfield(L, -1, "role") == LUA_TSTRING && lua_getfield(L, -2, "content") == LUA_TSTRING;
        if (!ok) goto need_messages;
        lua_pop(L, 3);
    }
    bool has_temperature = field(L, t, what, "temperature", LUA_TNUMBER) == LUA_TNUMBER; /* base + 2 */
    lua_Integer max_tokens = 0;
    if (field(L, t, what, "max_tokens", LUA_TNUMBER) == LUA_TNUMBER && /* base + 3 */
        (!lua_isinteger(L, base + 3) || (max_tokens = lua_tointeger(L, base + 3)) <= 0))
        luaL_error(L, "%s: max_tokens must be a positive integer", what);
    int rf = lua_getfield(L, t, "response_format"); /* base + 4 */
    if (rf != LUA_TNIL && rf != LUA_TSTRING && rf != LUA_TTABLE)
        luaL_error(L, "%s: response_format must be a string or a table", what);
    model_choice m;
    const char *problem = read_model(L, t, &m); /* base + 5, base + 6 */
    if (problem) luaL_error(L, "%s: %s", what, problem);

    buf body;
    buf_init(&body);
    char err[160];
    buf_puts(&body, "{\"messages\":");
    if (convert_lua_to_json(L, base + 1, &body, err, sizeof err) != 0) goto bad_json;
    append_model(&body, &m);
    if (has_temperature) {
        buf_puts(&body, ",\"temperature\":");
        buf_json_number(&body, lua_tonumber(L, base + 2));
    }
    if (max_tokens) buf_printf(&body, ",\"max_tokens\":%lld", (long long)max_tokens);
    if (rf == LUA_TSTRING) { /* shorthand: "json_object" */
        buf_puts(&body, ",\"response_format\":{\"type\":");
        buf_json_cstring(&body, lua_tostring(L, base + 4));
        buf_putc(&body, '}');
    } else if (rf == LUA_TTABLE) {
        buf_puts(&body, ",\"response_format\":");
        if (convert_lua_to_json(L, base + 4, &body, err, sizeof err) != 0) goto bad_json;
    }
    buf_putc(&body, '}');
    if (buf_failed(&body)) {
        buf_free(&body);
        luaL_error(L, "not enough memory");
    }
    lua_settop(L, base);
    push_cached_post(L, "/chat/completions", &body);
    lua_pushinteger(L, max_tokens);
    lua_setfield(L, -2, "max_tokens");
    lua_pushinteger(L, m.endpoint);
    lua_setfield(L, -2, "endpoint");
    return;
need_messages:
    luaL_error(L, "%s: messages must be a non-empty list of {role = \"...\", content = \"...\"}", what);
    return;
bad_json:
    buf_free(&body);
    luaL_error(L, "%s: %s", what, err);
}

/* assay.llm.chat{messages=, model=, temperature=, response_format=, max_tokens=}
 *   -> {text=, model=, finish_reason=, usage = {input_tokens=, output_tokens=}} */
static int llm_chat(lua_State *L) {
    sandbox_io_forget(L);
    sandbox_io_check_llm(L, "assay.llm.chat");
    check_chat(L, 1, "assay.llm.chat");
    begin_checked(L, -1, SANDBOX_IO_CHAT, "assay.llm.chat");
    return sandbox_io_wait(L, false);
}

/* assay.llm.chat_all{request, request, ...} -> {answer, answer, ...}, concurrently. */
static int llm_chat_all(lua_State *L) {
    sandbox_io_forget(L);
    sandbox_io_check_llm(L, "assay.llm.chat_all");
    if (lua_istable(L, 1) && (lazy_fill(L, 1), lua_rawlen(L, 1) == 0)) return lua_newtable(L), 1;
    begin_all(L, check_chat, SANDBOX_IO_CHAT, "assay.llm.chat_all");
    return sandbox_io_wait(L, true);
}

/* assay.llm.embed{input = string | {string...}, model=} -> {vectors = {{...}, ...}, usage=} */
static int llm_embed(lua_State *L) {
    const char *what = "assay.llm.embed";
    sandbox_io_forget(L);
    sandbox_io_check_llm(L, what);
    lazy_check_table(L, 1);
    buf body;
    buf_init(&body);
    char err[160];
    int t = lua_getfield(L, 1, "input");
    bool ok = t == LUA_TSTRING;
    if (t == LUA_TTABLE) {
        lazy_fill(L, -1);
        lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
        ok = n > 0;
        for (lua_Integer i = 1; ok && i <= n; i++) {
            ok = lua_rawgeti(L, -1, i) == LUA_TSTRING;
            lua_pop(L, 1);
        }
    }
    if (!ok) luaL_error(L, "%s: input must be a string or a non-empty list of strings", what);
    int input = lua_gettop(L);
    model_choice m;
    const char *problem = read_model(L, 1, &m); /* before the body: see check_chat */
    if (problem) luaL_error(L, "%s: %s", what, problem);
    buf_puts(&body, "{\"input\":");
    if (convert_lua_to_json(L, input, &body, err, sizeof err) != 0) {
        buf_free(&body);
        luaL_error(L, "%s: %s", what, err);
    }
    append_model(&body, &m);
    buf_putc(&body, '}');
    if (buf_failed(&body)) {
        buf_free(&body);
        luaL_error(L, "not enough memory");
    }
    lua_settop(L, 1);
    push_cached_post(L, "/embeddings", &body);
    lua_pushinteger(L, m.endpoint);
    lua_setfield(L, -2, "endpoint");
    begin_checked(L, -1, SANDBOX_IO_EMBED, what);
    return sandbox_io_wait(L, false);
}

int net_open_llm(lua_State *L) {
    static const luaL_Reg functions[] = {
        {"chat", llm_chat}, {"chat_all", llm_chat_all}, {"embed", llm_embed}, {NULL, NULL}};
    luaL_newlib(L, functions);
    return 1;
}

/* ----------------------------------------------------------------- answers into Lua */

/* Header lines "Name: value\r\n" into a table keyed by lowercased name. [-0, +1, m] */
static void push_headers(lua_State *L, const buf *raw) {
    lua_newtable(L);
    const char *p = raw->data, *end = raw->data ? raw->data + raw->len : NULL;
    while (p && p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *line_end = eol ? eol : end;
        const char *colon = memchr(p, ':', (size_t)(line_end - p));
        if (colon && colon > p) {
            luaL_Buffer name;
            luaL_buffinit(L, &name);
            for (const char *c = p; c < colon; c++) luaL_addchar(&name, (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c));
            luaL_pushresult(&name);
            const char *v = colon + 1, *ve = line_end;
            while (v < ve && (*v == ' ' || *v == '\t')) v++;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ')) ve--;
            lua_pushlstring(L, v, (size_t)(ve - v));
            lua_rawset(L, -3);
        }
        p = eol ? eol + 1 : end;
    }
}

static void push_usage(lua_State *L, const sandbox_io *io) {
    lua_createtable(L, 0, 2);
    lua_pushinteger(L, io->tokens_in);
    lua_setfield(L, -2, "input_tokens");
    lua_pushinteger(L, io->tokens_out);
    lua_setfield(L, -2, "output_tokens");
}

/* Pushes the chat answer of an OpenAI-style completion; NULL, or what is wrong with it. */
static const char *push_chat(lua_State *L, const cJSON *root, const sandbox_io *io) {
    const cJSON *choices = cJSON_GetObjectItemCaseSensitive(root, "choices");
    const cJSON *first = cJSON_IsArray(choices) ? choices->child : NULL;
    const cJSON *message = cJSON_GetObjectItemCaseSensitive(first, "message");
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(message, "content");
    if (!cJSON_IsString(content)) return "the response has no choices[1].message.content string";
    lua_createtable(L, 0, 4);
    lua_pushstring(L, content->valuestring);
    lua_setfield(L, -2, "text");
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (cJSON_IsString(model)) lua_pushstring(L, model->valuestring), lua_setfield(L, -2, "model");
    const cJSON *finish = cJSON_GetObjectItemCaseSensitive(first, "finish_reason");
    if (cJSON_IsString(finish)) lua_pushstring(L, finish->valuestring), lua_setfield(L, -2, "finish_reason");
    push_usage(L, io);
    lua_setfield(L, -2, "usage");
    return NULL;
}

/* Pushes the vectors of an OpenAI-style embeddings answer, each at its "index"; NULL, or
 * what is wrong with it (checked whole before anything is pushed). */
static const char *push_embeddings(lua_State *L, const cJSON *root, const sandbox_io *io) {
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(root, "data");
    int n = cJSON_GetArraySize(data);
    if (!cJSON_IsArray(data) || n == 0) return "the response has no data list";
    int i = 0;
    for (const cJSON *item = data->child; item; item = item->next, i++) {
        const cJSON *index = cJSON_GetObjectItemCaseSensitive(item, "index");
        const cJSON *embedding = cJSON_GetObjectItemCaseSensitive(item, "embedding");
        int at = cJSON_IsNumber(index) ? (int)index->valuedouble : i;
        if (!cJSON_IsArray(embedding) || at < 0 || at >= n) return "an embedding in data is not a list of numbers";
        for (const cJSON *x = embedding->child; x; x = x->next)
            if (!cJSON_IsNumber(x)) return "an embedding in data is not a list of numbers";
    }
    lua_createtable(L, 0, 2);
    lua_createtable(L, n, 0);
    i = 0;
    for (const cJSON *item = data->child; item; item = item->next, i++) {
        const cJSON *index = cJSON_GetObjectItemCaseSensitive(item, "index");
        const cJSON *embedding = cJSON_GetObjectItemCaseSensitive(item, "embedding");
        lua_createtable(L, cJSON_GetArraySize(embedding), 0);
        lua_Integer k = 0;
        for (const cJSON *x = embedding->child; x; x = x->next) {
            lua_pushnumber(L, x->valuedouble);
            lua_rawseti(L, -2, ++k);
        }
        lua_rawseti(L, -2, (cJSON_IsNumber(index) ? (lua_Integer)index->valuedouble : i) + 1);
    }
    lua_setfield(L, -2, "vectors");
    push_usage(L, io);
    lua_setfield(L, -2, "usage");
    return NULL;
}

/* A memory error while pushing leaks the parsed cJSON tree; the evaluation fails anyway and
 * the state is rebuilt, and keeping the tree in a Lua userdata would cost every call. */
bool net_push_response(lua_State *L, const sandbox_io *io, char *err, size_t errlen) {
    char text[NET_EXCERPT_BYTES + 1];
    if (io->error) {
        snprintf(err, errlen, "%s", io->error);
        return false;
    }
    if (io->kind == SANDBOX_IO_HTTP) {
        lua_createtable(L, 0, 3);
        lua_pushinteger(L, io->status);
        lua_setfield(L, -2, "status");
        push_headers(L, &io->response_headers);
        lua_setfield(L, -2, "headers");
        lua_pushlstring(L, io->response_body.data ? io->response_body.data : "", io->response_body.len);
        lua_setfield(L, -2, "body");
        return true;
    }
    if (io->status < 200 || io->status > 299) {
        buf_excerpt(&io->response_body, text, sizeof text);
        snprintf(err, errlen, "http: POST %s: status %ld: %s", io->url, io->status, text);
        return false;
    }
    cJSON *root = cJSON_ParseWithLength(io->response_body.data ? io->response_body.data : "", io->response_body.len);
    const char *problem = !cJSON_IsObject(root)            ? "the response is not a JSON object"
                          : io->kind == SANDBOX_IO_CHAT ? push_chat(L, root, io)
                                                        : push_embeddings(L, root, io);
    cJSON_Delete(root);
    if (problem) {
        buf_excerpt(&io->response_body, text, sizeof text);
        snprintf(err, errlen, "http: POST %s: malformed response (%s): %s", io->url, problem, text);
        return false;
    }
    return true;
}
