/* sandbox.c - a plugin's sandbox and its Lua states: the memory cap (the allocator), the
 * time limit (the count hook), and the states' lifecycle: open (env.c builds the
 * environment, load.c loads the plugin), close, and replace after a limit kill.
 *
 * Isolation is structural: every plugin gets a state of its own (per worker), so plugins
 * cannot see each other's globals, string metatable or helper modules. Within a state the
 * environment is built by allow-list, never by removing things from a full one, and any
 * state that was stopped by a limit is thrown away and rebuilt from the plugin source.
 * Not here: running evaluate (task.c), records (record.c), threads and scheduling (host/).
 */
#include "sandbox_internal.h"
#include "state.h"

#include <lauxlib.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* ---------------------------------------------------------------------- limits */

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
    watch_stop_soon();
    return NULL;
}

static bool charge_fits(const sstate *st, size_t bytes, size_t limit) {
    return bytes <= limit && st->memory_used + st->pool.chunk_bytes <= limit - bytes;
}

/* As Lua does when its allocator refuses, a charge that does not fit is tried again after a
 * full collection: garbage of the plugin's (freed large blocks) must not fail it. */
bool sandbox_charge(lua_State *L, size_t bytes) {
    sstate *st = state_of(L);
    size_t limit = st->sb->cfg.memory_limit;
    if (limit && !charge_fits(st, bytes, limit)) {
        if (bytes <= limit) lua_gc(L, LUA_GCCOLLECT, 0);
        if (!charge_fits(st, bytes, limit)) {
            st->memory_exceeded = true; /* sticky: the hook ends the evaluation as a memory kill */
            st->refused_size = SIZE_MAX;
            lua_sethook(L, state_hook, LUA_MASKCOUNT, 1);
            watch_stop_soon();
            return false;
        }
    }
    st->memory_used += bytes;
    return true;
}

void sandbox_uncharge(lua_State *L, size_t bytes) { state_of(L)->memory_used -= bytes; }

bool sandbox_is_crowded(sandbox *sb) {
    sstate *st = sb->st;
    size_t limit = sb->cfg.memory_limit;
    if (!st || st->suspended == 0 || limit == 0 || limit <= st->memory_loaded) return false;
    size_t crowded = st->memory_loaded + (limit - st->memory_loaded) / 2;
    if (st->memory_used <= crowded) return false;
    /* what finished evaluations left is garbage, not crowding (no plugin has a finalizer:
     * setmetatable refuses __gc, so collecting here runs no Lua) */
    lua_gc(st->L, LUA_GCCOLLECT, 0);
    return st->memory_used > crowded;
}

/* Runs every SANDBOX_HOOK_INSTRUCTIONS in every coroutine of the state (new threads inherit
 * the hook), except an evaluation's coroutine on a thread that watch.c watches: that one
 * runs without a hook until a limit is passed and watch.c sets it at count 1. Once a limit
 * is passed the hook re-arms at count 1 and raises again at the next instruction, so a
 * plugin's pcall cannot swallow the kill and carry on. Hooks do not run inside C
 * functions, so the C calls that can run long (pattern matching, table.sort, regex_find)
 * call this themselves through match_limits. */
void state_hook(lua_State *L, lua_Debug *ar) {
    sstate *st = state_of(L);
    if (st->memory_exceeded) {
        lua_sethook(L, state_hook, LUA_MASKCOUNT, 1);
        watch_stop_soon();
        luaL_error(L, "memory limit exceeded");
    }
    if (st->deadline_ns && now_ns() > st->deadline_ns) {
        st->timed_out = true;
        lua_sethook(L, state_hook, LUA_MASKCOUNT, 1);
        watch_stop_soon();
        luaL_error(L, "time limit exceeded");
    }
    /* Set at count 1 for a limit that was then lifted (an allocation refused, then granted
     * after the emergency collection): back to what the coroutine runs with. */
    if (ar && lua_gethookcount(L) == 1) {
        if (watch_is_target(L)) lua_sethook(L, NULL, 0, 0);
        else lua_sethook(L, state_hook, LUA_MASKCOUNT, SANDBOX_HOOK_INSTRUCTIONS);
    }
}

void state_limits_arm(sstate *st, uint64_t used_ns) {
    if (used_ns == 0) st->printed = 0; /* a new evaluation */
    st->memory_exceeded = false;
    st->timed_out = false;
    uint64_t budget = (uint64_t)st->sb->cfg.timeout_ms * 1000000u;
    st->deadline_ns = budget ? now_ns() + (budget > used_ns ? budget - used_ns : 1) : 0;
}

void state_limits_disarm(sstate *st) { st->deadline_ns = 0; }

/* Long pattern matches, sorts and regex searches look at the limits themselves
 * (pattern.c, sort.c, regex.c): the hook cannot run inside C. */
static void limits_check_in_match(lua_State *L, void *ud) {
    (void)ud;
    state_hook(L, NULL);
}

const pattern_limits sandbox_match_limits = {limits_check_in_match, NULL};

void sandbox_check_limits(lua_State *L) { state_hook(L, NULL); }

size_t sandbox_memory_limit(lua_State *L) { return sandbox_of(L)->cfg.memory_limit; }

/* ----------------------------------------------------------- the states' lifecycle */

/* Opens a state and loads the plugin into it; on failure returns NULL and a message. */
static sstate *state_open(sandbox *sb, char *err, size_t errlen) {
    sstate *st = calloc(1, sizeof *st);
    if (!st) {
        snprintf(err, errlen, "%s: out of memory", sb->cfg.path);
        return NULL;
    }
    st->sb = sb;
    st->idle_view_ref = st->idle_co_ref = LUA_NOREF;
    lua_State *L = lua_newstate(sandbox_alloc, st);
    if (!L) {
        snprintf(err, errlen, "%s: cannot create a Lua state (out of memory)", sb->cfg.path);
        pool_destroy(&st->pool);
        free(st);
        return NULL;
    }
    *(sstate **)lua_getextraspace(L) = st;
    lua_sethook(L, state_hook, LUA_MASKCOUNT, SANDBOX_HOOK_INSTRUCTIONS);
    st->L = L;
    /* A collection cycle starts when the heap is four times what the last one kept, not
     * twice (Lua's default): an evaluation's garbage is a trace's tables and strings, and
     * marking the plugin's live modules again and again was 3.6% of a trace's instructions.
     * Allocations the limit refuses still get Lua's emergency collection first, and so do
     * charges (sandbox_charge). */
    lua_gc(L, LUA_GCINC, SANDBOX_GC_PAUSE, 0, 0);
    state_limits_arm(st, 0);
    lua_pushcfunction(L, env_build);
    int status = lua_pcall(L, 0, 0, 0);
    if (status == LUA_OK) {
        lua_pushcfunction(L, load_plugin);
        status = lua_pcall(L, 0, 0, 0);
    }
    state_limits_disarm(st);
    if (status == LUA_OK) {
        /* what the plugin's file keeps (its tables, a lexicon it loads) is not crowding */
        lua_gc(L, LUA_GCCOLLECT, 0);
        st->memory_loaded = st->memory_used;
        return st;
    }
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

void state_close(sstate *st) {
    if (!st) return;
    /* No plugin can set a finalizer (setmetatable refuses __gc, the host's metatables are
     * hidden), but if one ever ran in lua_close it would run under the time limit too. */
    state_limits_arm(st, 0);
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
    free(sb->table_json);
    free(sb);
}

const sandbox_info *sandbox_get_info(const sandbox *sb) { return &sb->info; }
const char *sandbox_table_json(const sandbox *sb) { return sb->table_json; }

/* Replaces the state after a kill: a state stopped mid-evaluation may hold half-updated
 * module data, so nothing of it is trusted for new evaluations. Evaluations suspended in
 * it keep it alive until they end (they were not the ones killed). */
void state_replace(sandbox *sb) {
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
