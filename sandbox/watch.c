/* watch.c - the time limit of evaluations without Lua's count hook, for hosts that give
 * the sandbox a signal (sandbox_watch_enable; the CLI does, libassay's embedders may).
 *
 * Why: once a count hook is set, Lua calls luaG_traceexec before every VM instruction of
 * the hooked coroutine, whatever the count: 5.6% of a shipped trace's instructions, more in
 * a plugin's tight loop. Instead, each thread that runs evaluations gets a POSIX timer that
 * sends the signal to that thread every WATCH_TICK_MS while it runs them. The handler looks
 * at the deadline of the evaluation running on the thread and, once it has passed, sets a
 * count hook of 1 on the evaluation's coroutine: state_hook then raises as before, at the
 * next instruction. lua_sethook is the one Lua call made to be used from a signal handler
 * (lua.c does so for Ctrl-C), and the handler runs on the thread that runs the coroutine,
 * so nothing races with it.
 *
 * The handler knows one coroutine per thread: the evaluation's (watch_enter). Coroutines a
 * plugin makes itself keep the count hook (env.c), and so does loading a plugin: they are
 * rare, and a loop in them is caught by the hook. A thread that has no timer (the signal
 * is not enabled, or timer_create failed) runs every coroutine with the count hook.
 * Not here: the deadlines and the hook (sandbox.c), running evaluate (task.c).
 */
#define _GNU_SOURCE /* gettid, SIGEV_THREAD_ID's field */
#include "state.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* How often a busy thread's deadline is looked at: a runaway evaluation is stopped within
 * this of its time limit (the count hook stopped it within ~5 µs). 100 signals a second
 * per busy worker cost nothing measurable. */
#define WATCH_TICK_MS 10

/* One per thread that runs evaluations, made the first time it runs one. The handler
 * gets it through the timer's sigev_value, so it reads no thread-local storage. */
typedef struct watch_slot {
    timer_t timer;
    _Atomic(lua_State *) target;  /* the coroutine of the evaluation running; NULL between */
    volatile sig_atomic_t armed;  /* the timer is ticking */
    volatile sig_atomic_t entered; /* an evaluation began since the handler last looked */
    volatile sig_atomic_t ticks;  /* signals taken, for watch_ticks */
} watch_slot;

static atomic_int watch_signo;   /* 0: not enabled */
static pthread_key_t watch_key;  /* the thread's slot, freed when the thread ends */
static pthread_once_t watch_once = PTHREAD_ONCE_INIT;
static bool watch_key_made;
static _Thread_local watch_slot *watch_tl_slot;
static _Thread_local bool watch_tl_failed;

static void watch_arm(watch_slot *w, long ms) {
    struct itimerspec its;
    memset(&its, 0, sizeof its);
    its.it_value.tv_nsec = ms * 1000000L;
    its.it_interval = its.it_value;
    timer_settime(w->timer, 0, &its, NULL); /* async-signal-safe: the handler disarms */
    w->armed = ms != 0;
}

/* Runs on the thread the timer belongs to, between any two of its instructions. */
static void watch_signal(int signo, siginfo_t *info, void *context) {
    (void)signo, (void)context;
    watch_slot *w = info->si_code == SI_TIMER ? info->si_value.sival_ptr : NULL;
    if (!w) return;
    int saved_errno = errno;
    w->ticks++;
    lua_State *L = atomic_load_explicit(&w->target, memory_order_relaxed);
    if (L) {
        sstate *st = state_of(L);
        if (st->deadline_ns && now_ns() > st->deadline_ns) lua_sethook(L, state_hook, LUA_MASKCOUNT, 1);
    } else if (!w->entered) {
        watch_arm(w, 0); /* idle for a whole tick: no signals to a thread that waits */
    }
    w->entered = 0;
    errno = saved_errno;
}

static void watch_slot_free(void *p) {
    watch_slot *w = p;
    timer_delete(w->timer);
    free(w);
}

static void watch_make_key(void) { watch_key_made = pthread_key_create(&watch_key, watch_slot_free) == 0; }

int sandbox_watch_enable(int signo) {
    if (signo <= 0 || signo >= NSIG) return -1;
    int current = atomic_load(&watch_signo);
    if (current) return current == signo ? 0 : -1;
    pthread_once(&watch_once, watch_make_key);
    if (!watch_key_made) return -1;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = watch_signal;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(signo, &sa, NULL) != 0) return -1;
    atomic_store(&watch_signo, signo);
    return 0;
}

/* The calling thread's slot, made on first use; NULL when the signal is not enabled or the
 * thread cannot have a timer (then it keeps the count hook). */
static watch_slot *watch_slot_get(void) {
    if (watch_tl_slot) return watch_tl_slot;
    int signo = atomic_load_explicit(&watch_signo, memory_order_relaxed);
    if (!signo || watch_tl_failed) return NULL;
    watch_tl_failed = true; /* until it worked */
    watch_slot *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    atomic_init(&w->target, NULL);
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = signo;
    sev.sigev_value.sival_ptr = w;
    sev._sigev_un._tid = gettid();
    if (timer_create(CLOCK_MONOTONIC, &sev, &w->timer) != 0) {
        free(w);
        return NULL;
    }
    /* A thread inherits its maker's signal mask, and programs that take signals through
     * signalfd block them all: a blocked tick would leave a runaway evaluation running for
     * ever. The timer sends the signal to this thread alone, so unblocking it here changes
     * nothing for the rest of the program. */
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, signo);
    if (pthread_setspecific(watch_key, w) != 0 || pthread_sigmask(SIG_UNBLOCK, &mask, NULL) != 0) {
        pthread_setspecific(watch_key, NULL);
        watch_slot_free(w);
        return NULL;
    }
    watch_tl_failed = false;
    watch_tl_slot = w;
    return w;
}

bool watch_enter(lua_State *co) {
    watch_slot *w = watch_slot_get();
    if (!w) return false;
    w->entered = 1;
    atomic_store_explicit(&w->target, co, memory_order_relaxed);
    atomic_signal_fence(memory_order_seq_cst);
    if (!w->armed) watch_arm(w, WATCH_TICK_MS);
    return true;
}

void watch_leave(void) {
    watch_slot *w = watch_tl_slot;
    if (w) atomic_store_explicit(&w->target, NULL, memory_order_relaxed);
}

bool watch_is_target(lua_State *L) {
    watch_slot *w = watch_tl_slot;
    return w && atomic_load_explicit(&w->target, memory_order_relaxed) == L;
}

void watch_stop_soon(void) {
    watch_slot *w = watch_tl_slot;
    lua_State *L = w ? atomic_load_explicit(&w->target, memory_order_relaxed) : NULL;
    if (L) lua_sethook(L, state_hook, LUA_MASKCOUNT, 1);
}

unsigned watch_ticks(void) { return watch_tl_slot ? (unsigned)watch_tl_slot->ticks : 0; }
