/* state.h - what the sandbox core files (sandbox.c, env.c, load.c, task.c) share: a
 * plugin's sandbox, its Lua states and their limits. Not seen by the host modules (text.c,
 * net.c, ...), which reach the state only through sandbox_internal.h's functions.
 */
#ifndef ASSAY_SANDBOX_STATE_H
#define ASSAY_SANDBOX_STATE_H

#include <lua.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "pattern.h"
#include "pool.h"
#include "sandbox.h"
#include "sandbox_internal.h"

/* Instructions between two looks at the clock: ~5 µs of Lua, so a runaway loop is caught
 * within a few µs of its deadline while the clock costs well under 1%. */
#define SANDBOX_HOOK_INSTRUCTIONS 1000
/* The collector's pause, in percent (sandbox.c state_open). */
#define SANDBOX_GC_PAUSE 400
/* The most bytes of math.random's generator state a task saves while it waits on I/O
 * (Lua 5.4's xoshiro256** keeps 32). */
#define SANDBOX_RNG_BYTES 64

/* One Lua state of a plugin. A sandbox has one current state; after a kill it opens a fresh
 * one and retires the old: evaluations suspended in it on I/O finish there, and it is closed
 * when the last of them ends. The allocator and the hook see this struct. */
typedef struct sstate {
    sandbox *sb;
    lua_State *L;
    pool pool;             /* Lua's small blocks */
    size_t memory_used;
    size_t memory_loaded;  /* memory_used once the plugin's file had run and been collected */
    bool memory_exceeded;  /* sticky until the next run: see sandbox_hook */
    size_t refused_size;   /* the allocation refused last; see sandbox_alloc */
    bool timed_out;
    uint64_t deadline_ns;  /* monotonic; 0 = no limit running */
    int evaluate_ref, params_ref, randomseed_ref;
    /* math.random's generator state, the math library's own userdata (env.c env_keep_random):
     * the evaluations suspended in this state share it, so each saves its bytes at a wait
     * and puts them back when it resumes (task.c task_save_state), as with printed */
    void *rng;
    size_t rng_size;
    /* kept from one evaluation for the next (LUA_NOREF: none): the trace view (lazy.c) and
     * a coroutine that returned; making each anew cost ~2% of a trace */
    int idle_view_ref, idle_co_ref;
    size_t printed;        /* bytes print wrote in the running evaluation */
    unsigned suspended;    /* tasks waiting on I/O in this state */
    bool is_retired;
    sandbox_task *running; /* the task whose coroutine runs now; I/O calls attach to it */
} sstate;

struct sandbox {
    sstate *st;            /* current state; NULL when broken */
    sandbox_config cfg;
    bool is_trace_scope;
    unsigned repeats;      /* evaluations per trace (or step): the `repeats` param, 1 by default */
    bool is_broken;        /* a reload after a kill failed: every record is an error */
    char broken_message[512];
    sandbox_info info;     /* strings below are owned */
    char *name, *description, *scope, *params_json;
    char *table_json;      /* is_table: what the chunk returned */
};

static inline uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline sstate *state_of(lua_State *L) { return *(sstate **)lua_getextraspace(L); }
static inline sandbox *sandbox_of(lua_State *L) { return state_of(L)->sb; }

/* sandbox.c: the limits and the states' lifecycle. */
/* What long C loops (pattern matching, sorting, regex search, chunked loading) call to
 * look at the limits, since the count hook cannot run inside C. */
extern const pattern_limits sandbox_match_limits;
/* Arms the limits for a run with used_ns of the evaluation's time budget already spent:
 * the limit counts time running Lua, not time waiting for I/O. */
void state_limits_arm(sstate *st, uint64_t used_ns);
void state_limits_disarm(sstate *st);
/* The hook of the limits: raises once a limit is passed (see sandbox.c). */
void state_hook(lua_State *L, lua_Debug *ar);
void state_close(sstate *st);
/* Replaces the sandbox's current state after a kill (see sandbox.c). */
void state_replace(sandbox *sb);

/* watch.c: the time limit of evaluations without the count hook, on threads that have a
 * timer. watch_enter is called before an evaluation's coroutine runs: true when the
 * thread is watched and the coroutine may run without a hook; watch_leave after it. */
bool watch_enter(lua_State *co);
void watch_leave(void);
/* Whether L is the coroutine the calling thread's watch looks after now. */
bool watch_is_target(lua_State *L);
/* A limit was passed outside the hook (an allocation refused): makes the watched
 * coroutine, if any, stop at its next instruction. */
void watch_stop_soon(void);
/* The signals the calling thread's timer sent it so far (the tests look: it must stop
 * when the thread has nothing to run). */
unsigned watch_ticks(void);

/* env.c: builds the allow-listed environment in a fresh state; runs protected. */
int env_build(lua_State *L);
/* Installs the globals' metatable: withheld names raise with a reason; once strict (the
 * plugin has loaded), undefined globals and new globals raise too. [-0, +0, m] */
void env_protect_globals(lua_State *L, bool strict);

/* load.c: runs the plugin's chunk in a state env_build made and checks what it returns;
 * runs protected. Leaves evaluate and params referenced in the state and,
 * on the first load, the plugin's name, scope, description and params in the sandbox. */
int load_plugin(lua_State *L);

#endif
