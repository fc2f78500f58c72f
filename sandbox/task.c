/* task.c - running a plugin's evaluate on a trace: one task per plugin and trace, every
 * matching step in turn for a step-scoped plugin, each in a coroutine that may suspend in
 * assay.http / assay.llm (the I/O bridge below) and resume when the host hands the answers
 * back. What evaluate returns is read into a record_outcome (record.c writes it); a limit
 * kill replaces the state (sandbox.c) and is charged to the trace.
 * Not here: the environment (env.c), loading (load.c), threads and scheduling (host/).
 */
#include "sandbox_internal.h"
#include "state.h"
#include "../host/base/hash.h"

#include <lauxlib.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SANDBOX_TRACEBACK_LINES 6
/* Steps of one trace a step-scoped plugin may be killed on before the rest are not run. */
#define SANDBOX_MAX_KILLS_PER_TRACE 3

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

/* The outcomes of one trace's (or step's) repeated evaluations so far (the `repeats`
 * param), combined into one record when the last is done. */
typedef struct repeat_acc {
    unsigned n, failed;                      /* evaluations done, of which errors */
    double scores[SANDBOX_MAX_REPEATS];      /* NaN: no score */
    signed char passes[SANDBOX_MAX_REPEATS]; /* -1: no pass */
    evaluation kept;                         /* the first that did not fail, else the first */
    bool has_kept;
    long calls, cache_hits, tokens_in, tokens_out; /* of all of them */
} repeat_acc;

/* One plugin's evaluation of one trace: every matching step in turn for a step-scoped
 * plugin. It lives only while the evaluation is suspended on I/O or running. */
struct sandbox_task {
    sandbox *sb;
    sstate *st;              /* the state the current coroutine lives in */
    void *owner;
    const cJSON *trace;      /* borrowed */
    const cJSON *step;       /* the current step (step scope) */
    long index;
    record_list *out;     /* borrowed */
    evaluation ev;
    lua_State *co;
    int co_ref, trace_ref;   /* registry refs in st; LUA_NOREF when unset */
    int doc_ref;             /* the trace's lazy view (lazy.c), its document closed with trace_ref */
    uint64_t started_ns, used_ns;
    bool is_resuming;        /* the next run resumes after I/O instead of starting */
    /* while it waits on I/O, what of the state is this evaluation's own: other evaluations
     * run in the state meanwhile (task_save_state) */
    unsigned char rng_saved[SANDBOX_RNG_BYTES]; /* math.random's generator (state.h) */
    size_t printed_saved;
    sandbox_io **io;         /* the requests of the current wait, in call order */
    size_t io_count, io_cap, io_taken, io_answered;
    bool is_batch;           /* the wait answers with a list */
    sandbox_io_budget budget; /* of the current wait's responses */
    unsigned kills;          /* evaluations of this trace stopped by a limit */
    sandbox_error_kind last_kill;
    unsigned repeat;         /* 0-based: which of sb->repeats evaluations of this trace or step */
    repeat_acc acc;
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

/* What the evaluation's LLM tokens cost at the host's prices; NaN without a price or a call. */
static double usage_cost(const evaluation *ev, const sandbox_config *cfg) {
    if (!ev->calls || !(cfg->price_in > 0 || cfg->price_out > 0)) return NAN;
    return ((double)ev->tokens_in * cfg->price_in + (double)ev->tokens_out * cfg->price_out) / 1e6;
}

/* Sets details.usage to what the evaluation's I/O cost, with its price when the host was
 * given one. [-0, +0, m] */
static void add_usage(lua_State *L, int details, const evaluation *ev, const sandbox_config *cfg) {
    lua_createtable(L, 0, 5);
    double cost = usage_cost(ev, cfg);
    if (!isnan(cost)) {
        lua_pushnumber(L, cost);
        lua_setfield(L, -2, "cost");
    }
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

/* Reads what a mapper's map returned (on top of L): the trace, kept as JSON in details.
 * [-0, +0, e] */
static void read_mapped(lua_State *L, evaluation *ev) {
    if (lua_type(L, -1) != LUA_TTABLE)
        luaL_error(L, "map must return the trace as a table (got %s)", luaL_typename(L, -1));
    lazy_fill(L, -1);
    char err[160];
    if (convert_lua_to_json(L, -1, &ev->details, err, sizeof err) != 0) luaL_error(L, "the mapped trace: %s", err);
    if (ev->details.len && ev->details.data[0] != '{')
        luaL_error(L, "map must return the trace as a table with an id (got a list)");
}

/* Reads evaluate's first result (on top of L) into ev. [-0, +0, e] */
static void read_result(lua_State *L, evaluation *ev) {
    if (state_of(L)->sb->cfg.is_mapper) {
        read_mapped(L, ev);
        return;
    }
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
            ev->label = strdup(lua_tostring(L, -1));
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
            if (ev->calls) add_usage(L, lua_gettop(L), ev, &sandbox_of(L)->cfg);
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

static void write_record(sandbox *sb, const evaluation *ev, double ms, record_list *out) {
    record_outcome o = {
        .trace_id = ev->trace_id,
        .evaluator = sb->name,
        .evaluator_index = sb->cfg.index,
        .step = ev->step,
        .error = ev->error,
        .message = buf_cstr((buf *)&ev->message),
        .message_len = ev->message.len,
        .traceback = ev->traceback.data,
        .traceback_len = ev->traceback.len,
        .details = ev->details.len ? ev->details.data : NULL,
        .details_len = ev->details.len,
        .label = ev->label,
        .score = ev->score,
        .has_score = ev->has_score,
        .pass = ev->pass,
        .ms = sb->cfg.record_timing ? ms : NAN,
        .io_calls = ev->calls,
        .tokens_in = ev->tokens_in,
        .tokens_out = ev->tokens_out,
        .cost = usage_cost(ev, &sb->cfg),
    };
    record_add(out, &o);
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
        luaL_error(L, "%s: no LLM endpoint configured for this run", what);
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
    io->repeat = t->repeat;
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
    if (!cfg->has_llm) luaL_error(L, "%s: no LLM endpoint configured for this run", what);
}

const char *sandbox_io_default_model(lua_State *L) {
    const char *model = sandbox_of(L)->cfg.llm_model;
    return model && *model ? model : NULL;
}

unsigned sandbox_io_endpoint(lua_State *L, const char *name, size_t len) {
    const sandbox_config *cfg = &sandbox_of(L)->cfg;
    for (size_t i = 0; i < cfg->llm_endpoint_count; i++)
        if (strlen(cfg->llm_endpoints[i]) == len && memcmp(cfg->llm_endpoints[i], name, len) == 0) return (unsigned)i + 1;
    return 0;
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

/* Evaluations waiting on I/O share their state; what the state keeps for the evaluation
 * running in it (math.random's generator, the bytes print wrote) is saved at each wait and
 * put back at the resume, so that a trace's numbers and its print budget are its own. */
static void task_save_state(sandbox_task *t) {
    memcpy(t->rng_saved, t->st->rng, t->st->rng_size);
    t->printed_saved = t->st->printed;
}

static void task_restore_state(sandbox_task *t) {
    memcpy(t->st->rng, t->rng_saved, t->st->rng_size);
    t->st->printed = t->printed_saved;
}

/* Pushes what evaluate's coroutine needs for its first resume: the function and its
 * arguments. Reseeds math.random so that a trace's numbers never depend on earlier traces.
 * [-0, +n, e] */
static int push_start(lua_State *L, sandbox_task *t) {
    sstate *st = t->st;
    lua_rawgeti(L, LUA_REGISTRYINDEX, st->randomseed_ref);
    /* each repeat draws other numbers; the first the same as without repeats */
    uint64_t seed = hash_trace_seed(t->ev.trace_id, t->ev.step) + t->repeat * 0x9E3779B97F4A7C15ull;
    lua_pushinteger(L, (lua_Integer)seed);
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
        sstate *st = t->st;
        if (t->trace_ref == LUA_NOREF) {
            t->doc_ref = lazy_push_trace(L, t->trace, &st->idle_view_ref);
            t->trace_ref = luaL_ref(L, LUA_REGISTRYINDEX);
        }
        if (st->idle_co_ref != LUA_NOREF) { /* one that returned (task_release_coroutine) */
            t->co_ref = st->idle_co_ref;
            st->idle_co_ref = LUA_NOREF;
            lua_rawgeti(L, LUA_REGISTRYINDEX, t->co_ref);
            t->co = lua_tothread(L, -1);
            lua_pop(L, 1);
        } else {
            t->co = lua_newthread(L);
            t->co_ref = luaL_ref(L, LUA_REGISTRYINDEX);
        }
        nargs = push_start(L, t);
        if (!lua_checkstack(t->co, nargs + 1)) return luaL_error(L, "not enough memory");
        lua_xmove(L, t->co, nargs + 1);
    } else {
        task_restore_state(t);
        push_io_answer(L, t);
        task_drop_io(t);
        nargs = 2;
        if (!lua_checkstack(t->co, nargs)) return luaL_error(L, "not enough memory");
        lua_xmove(L, t->co, nargs);
    }
    t->is_resuming = false;
    /* A watched thread stops the coroutine by signal (watch.c): no hook until then. Set
     * again at each run, since a kill's hook at count 1 may have been left on it. */
    if (watch_enter(t->co)) lua_sethook(t->co, NULL, 0, 0);
    else lua_sethook(t->co, state_hook, LUA_MASKCOUNT, SANDBOX_HOOK_INSTRUCTIONS);
    int nresults = 0;
    int status = lua_resume(t->co, L, nargs, &nresults);
    watch_leave();
    if (status == LUA_YIELD) {
        lua_pop(t->co, nresults);
        if (t->io_count == 0) {
            ev->error = SANDBOX_ERR_RUNTIME;
            buf_puts(&ev->message, "evaluate yielded outside an assay I/O call (coroutine.yield at the top level)");
        } else {
            t->is_resuming = true;
            task_save_state(t);
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

/* Lets go of the coroutine. One whose function returned is as good as new (Lua resumes a
 * function pushed on its empty stack), so the state keeps one for its next evaluation; any
 * other (failed, killed, still waiting) is collected with the state's next cycles. */
static void task_release_coroutine(sandbox_task *t) {
    sstate *st = t->st;
    if (t->co_ref != LUA_NOREF) {
        if (st->idle_co_ref == LUA_NOREF && lua_status(t->co) == LUA_OK && lua_gettop(t->co) == 0)
            st->idle_co_ref = t->co_ref;
        else
            luaL_unref(st->L, LUA_REGISTRYINDEX, t->co_ref);
    }
    t->co_ref = LUA_NOREF;
    t->co = NULL;
}

/* The cJSON tree goes with the job: tables of it not yet built can no longer be. */
static void task_release_trace(sandbox_task *t) {
    lazy_doc_end(t->st->L, t->doc_ref, &t->st->idle_view_ref);
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
        buf_printf(&ev->message, "evaluation exceeded the %u ms time limit", t->sb->cfg.timeout_ms);
    } else {
        ev->error = SANDBOX_ERR_MEMORY;
        buf_printf(&ev->message, "evaluation exceeded the %zu MiB memory limit of its Lua state",
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
    state_limits_arm(st, t->used_ns);
    int status = lua_pcall(L, 1, 0, 0);
    state_limits_disarm(st);
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
    evaluation_free(&t->acc.kept);
    free(t);
}

/* After a kill replaced the state, the next evaluation starts in the new one. */
static void task_follow_state(sandbox_task *t) {
    if (t->st == t->sb->st) return;
    if (t->st) {
        task_release_trace(t);
        if (t->st->is_retired && t->st->suspended == 0) state_close(t->st);
    }
    t->st = t->sb->st;
}

/* Moves what the evaluation that just ended gave into the accumulator, leaving ev reset
 * for the next repeat. */
static void repeat_keep(sandbox_task *t) {
    repeat_acc *a = &t->acc;
    evaluation *ev = &t->ev;
    bool ok = ev->error == SANDBOX_OK;
    a->scores[a->n] = ok && ev->has_score ? ev->score : NAN;
    a->passes[a->n] = ok ? ev->pass : -1;
    a->failed += !ok;
    a->n++;
    a->calls += ev->calls, a->cache_hits += ev->cache_hits;
    a->tokens_in += ev->tokens_in, a->tokens_out += ev->tokens_out;
    if (!a->has_kept || (ok && a->kept.error != SANDBOX_OK)) { /* swap: ev takes the old kept's buffers */
        evaluation old = a->kept;
        a->kept = *ev;
        *ev = old;
        a->has_kept = true;
    }
    evaluation_reset(ev, a->kept.trace_id, a->kept.step);
}

/* JSON as record.c writes it: numbers as buf_json_number does (the form convert.c gave the
 * rest of the details). */
static void write_json(buf *b, const cJSON *x) {
    if (cJSON_IsObject(x) || cJSON_IsArray(x)) {
        bool is_object = cJSON_IsObject(x);
        buf_putc(b, is_object ? '{' : '[');
        for (const cJSON *c = x->child; c; c = c->next) {
            if (c != x->child) buf_putc(b, ',');
            if (is_object) buf_json_cstring(b, c->string), buf_putc(b, ':');
            write_json(b, c);
        }
        buf_putc(b, is_object ? '}' : ']');
    } else if (cJSON_IsNumber(x)) {
        buf_json_number(b, x->valuedouble);
    } else if (cJSON_IsString(x)) {
        buf_json_cstring(b, x->valuestring);
    } else {
        buf_puts(b, cJSON_IsTrue(x) ? "true" : cJSON_IsFalse(x) ? "false" : "null");
    }
}

static int compare_members(const void *x, const void *y) {
    return strcmp((*(cJSON *const *)x)->string, (*(cJSON *const *)y)->string);
}

/* Replaces member key of object by value, keeping the members sorted as details are. */
static void put_sorted(cJSON *object, const char *key, cJSON *value) {
    cJSON_DeleteItemFromObjectCaseSensitive(object, key);
    cJSON_AddItemToObject(object, key, value);
    size_t n = (size_t)cJSON_GetArraySize(object);
    cJSON **members = malloc(n * sizeof *members);
    if (!members) return;
    n = 0;
    for (cJSON *c = object->child; c; c = c->next) members[n++] = c;
    qsort(members, n, sizeof *members, compare_members);
    for (size_t i = 0; i < n; i++) {
        members[i]->prev = i ? members[i - 1] : members[n - 1]; /* cJSON: the head's prev is the tail */
        members[i]->next = i + 1 < n ? members[i + 1] : NULL;
    }
    object->child = members[0];
    free(members);
}

/* details.repeats of the combined record (how many, each one's score and pass, the
 * errors) and details.usage over all of them. */
static void repeat_details(const repeat_acc *a, evaluation *ev, const sandbox_config *cfg) {
    cJSON *details = ev->details.len ? cJSON_ParseWithLength(ev->details.data, ev->details.len) : cJSON_CreateObject();
    if (!cJSON_IsObject(details)) {
        cJSON_Delete(details);
        details = cJSON_CreateObject();
    }
    cJSON *r = cJSON_CreateObject(), *scores = cJSON_CreateArray(), *passes = cJSON_CreateArray();
    for (unsigned i = 0; i < a->n; i++) {
        cJSON_AddItemToArray(scores, isnan(a->scores[i]) ? cJSON_CreateNull() : cJSON_CreateNumber(a->scores[i]));
        cJSON_AddItemToArray(passes, a->passes[i] < 0 ? cJSON_CreateNull() : cJSON_CreateBool(a->passes[i]));
    }
    cJSON_AddNumberToObject(r, "errors", a->failed);
    cJSON_AddNumberToObject(r, "n", a->n);
    cJSON_AddItemToObject(r, "passes", passes);
    cJSON_AddItemToObject(r, "scores", scores);
    put_sorted(details, "repeats", r);
    if (ev->calls) {
        cJSON *u = cJSON_CreateObject();
        cJSON_AddNumberToObject(u, "cache_hits", (double)ev->cache_hits);
        cJSON_AddNumberToObject(u, "calls", (double)ev->calls);
        double cost = usage_cost(ev, cfg);
        if (!isnan(cost)) cJSON_AddNumberToObject(u, "cost", cost);
        cJSON_AddNumberToObject(u, "tokens_in", (double)ev->tokens_in);
        cJSON_AddNumberToObject(u, "tokens_out", (double)ev->tokens_out);
        put_sorted(details, "usage", u);
    }
    buf_reset(&ev->details);
    write_json(&ev->details, details);
    cJSON_Delete(details);
}

/* The record of repeated evaluations: the first that did not fail, with the mean of the
 * scores, the majority of the passes (a tie fails) and details.repeats; an error only when
 * every one failed. Usage counts all of them. */
static void repeat_combine(sandbox_task *t) {
    repeat_acc *a = &t->acc;
    evaluation *ev = &t->ev;
    evaluation spare = *ev;
    *ev = a->kept;
    a->kept = spare;
    a->has_kept = false;
    if (ev->error == SANDBOX_OK) {
        double sum = 0;
        unsigned scored = 0, passed = 0, judged = 0;
        for (unsigned i = 0; i < a->n; i++) {
            if (!isnan(a->scores[i])) sum += a->scores[i], scored++;
            if (a->passes[i] >= 0) passed += (unsigned)a->passes[i], judged++;
        }
        ev->has_score = scored > 0;
        ev->score = scored ? sum / scored : 0;
        ev->pass = judged ? 2 * passed > judged : -1;
    }
    ev->calls = a->calls, ev->cache_hits = a->cache_hits, ev->tokens_in = a->tokens_in, ev->tokens_out = a->tokens_out;
    if (ev->error == SANDBOX_OK) repeat_details(a, ev, &t->sb->cfg);
    a->n = a->failed = 0;
    a->calls = a->cache_hits = a->tokens_in = a->tokens_out = 0;
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
        if (t->sb->repeats > 1) {
            repeat_keep(t);
            if (t->st) task_release_coroutine(t);
            if (++t->repeat < t->sb->repeats) { /* the same trace (or step) again */
                t->used_ns = 0;
                task_follow_state(t);
                continue;
            }
            t->repeat = 0;
            repeat_combine(t);
        }
        write_record(t->sb, ev, (double)(now_ns() - t->started_ns) / 1e6, t->out);
        if (t->st) task_release_coroutine(t);
        if (t->ev.step < 0 || !(t->step = next_step(t, t->step, &t->index))) return true;
        evaluation_reset(ev, ev->trace_id, t->index);
        t->started_ns = now_ns();
        t->used_ns = 0;
        task_follow_state(t);
    }
}

sandbox_task *sandbox_evaluate(sandbox *sb, const cJSON *trace, const char *trace_id, record_list *out,
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
