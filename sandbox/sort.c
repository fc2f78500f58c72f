/* sort.c - table.sort for the sandbox: Lua 5.4's contract (in place, through the table's
 * metamethods, by the comparator or by `<`, "invalid order function for sorting" when an
 * order is seen to be inconsistent), with the sandbox's limit check called as it goes.
 *
 * Why not ltablib's own: the count hook fires between Lua instructions, never inside a C
 * function, and a sort without a comparator over the millions of numbers that fit in the
 * memory cap runs for seconds inside one C call. Here every SORT_CHECK_STEPS comparisons call
 * limits->check, which raises to stop the sort; a comparison of two long strings counts one
 * step per 64 bytes, since it reads them whole (two equal 1 MB strings cost 1 MB a compare).
 *
 * The algorithm is an introsort: quicksort with a median-of-three pivot, insertion sort for
 * short ranges, heapsort when the quicksort goes too deep. It never picks a random pivot
 * (stock Lua does for big arrays, from the clock), so the order it leaves equal elements in
 * is the same on every run and thread. Every index it touches stays inside 1..#t whatever
 * the comparator answers. Nothing here holds memory outside Lua: a raise leaks nothing.
 * Not here: the limits themselves (sandbox.c).
 */
#include "sort.h"

#include <lauxlib.h>

#include <limits.h>
#include <stdbool.h>

/* Ranges this short are sorted by insertion. */
#define SORT_SHORT 8

typedef struct sort_run {
    lua_State *L;
    bool has_comparator; /* at stack index 2; the table is at 1 */
    unsigned steps;
    const pattern_limits *limits;
} sort_run;

/* Is the value at a less than the value at b (absolute stack indices)? Calls the
 * comparator or `<`, either of which may raise. [-0, +0, e] */
static bool sort_less(sort_run *r, int a, int b) {
    lua_State *L = r->L;
    /* two strings compare in time of their length: long equal strings are charged for it */
    unsigned cost = 1;
    if (lua_type(L, a) == LUA_TSTRING && lua_type(L, b) == LUA_TSTRING) {
        size_t la = lua_rawlen(L, a), lb = lua_rawlen(L, b), n = la < lb ? la : lb;
        cost += n > 64u * SORT_CHECK_STEPS ? SORT_CHECK_STEPS : (unsigned)(n / 64);
    }
    r->steps += cost;
    if (r->steps >= SORT_CHECK_STEPS) {
        r->steps = 0;
        r->limits->check(L, r->limits->ud);
    }
    if (!r->has_comparator) return lua_compare(L, a, b, LUA_OPLT);
    lua_pushvalue(L, 2);
    lua_pushvalue(L, a);
    lua_pushvalue(L, b);
    lua_call(L, 2, 1);
    bool is_less = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return is_less;
}

/* t[i] onto the stack. [-0, +1, e] */
static int sort_push(sort_run *r, lua_Integer i) {
    lua_geti(r->L, 1, i);
    return lua_gettop(r->L);
}

/* t[i] = the value on top, popped. [-1, +0, e] */
static void sort_store(sort_run *r, lua_Integer i) { lua_seti(r->L, 1, i); }

static void sort_swap(sort_run *r, lua_Integer i, lua_Integer j) {
    sort_push(r, i);
    sort_push(r, j);
    sort_store(r, i);
    sort_store(r, j);
}

/* Puts t[i] and t[j] in order: swaps them when t[j] < t[i]. */
static void sort_order_pair(sort_run *r, lua_Integer i, lua_Integer j) {
    int a = sort_push(r, i);
    int b = sort_push(r, j);
    if (sort_less(r, b, a)) {
        sort_store(r, i);
        sort_store(r, j);
    } else {
        lua_pop(r->L, 2);
    }
}

static void sort_by_insertion(sort_run *r, lua_Integer lo, lua_Integer hi) {
    for (lua_Integer i = lo + 1; i <= hi; i++) {
        int x = sort_push(r, i);
        lua_Integer j = i;
        for (; j > lo; j--) {
            int before = sort_push(r, j - 1);
            if (!sort_less(r, x, before)) {
                lua_pop(r->L, 1);
                break;
            }
            sort_store(r, j);
        }
        sort_store(r, j);
    }
}

/* Heapsort's sift-down of the heap t[lo .. lo+n-1], 0-based node `root`. */
static void sort_sift_down(sort_run *r, lua_Integer lo, lua_Integer root, lua_Integer n) {
    int x = sort_push(r, lo + root);
    for (lua_Integer child; (child = 2 * root + 1) < n; root = child) {
        int bigger = sort_push(r, lo + child);
        if (child + 1 < n) {
            int right = sort_push(r, lo + child + 1);
            if (sort_less(r, bigger, right)) {
                lua_remove(r->L, bigger);
                child++;
            } else {
                lua_pop(r->L, 1);
            }
        }
        if (!sort_less(r, x, lua_gettop(r->L))) {
            lua_pop(r->L, 1);
            break;
        }
        sort_store(r, lo + root);
    }
    sort_store(r, lo + root);
}

/* The fallback that keeps the worst case at n log n comparisons. */
static void sort_by_heap(sort_run *r, lua_Integer lo, lua_Integer hi) {
    lua_Integer n = hi - lo + 1;
    for (lua_Integer start = n / 2 - 1; start >= 0; start--) sort_sift_down(r, lo, start, n);
    for (lua_Integer end = n - 1; end > 0; end--) {
        sort_swap(r, lo, lo + end);
        sort_sift_down(r, lo, 0, end);
    }
}

static int sort_invalid_order(lua_State *L) { return luaL_error(L, "invalid order function for sorting"); }

/* Partitions t[lo..hi] (more than SORT_SHORT long) around a median-of-three pivot and
 * returns where the pivot ends. After the median step t[lo] <= pivot and t[hi-1] is the
 * pivot, so for a consistent order each scan stops inside the range; a scan that would
 * pass those sentinels proves the order inconsistent and raises. */
static lua_Integer sort_partition(sort_run *r, lua_Integer lo, lua_Integer hi) {
    lua_State *L = r->L;
    lua_Integer mid = lo + (hi - lo) / 2;
    sort_order_pair(r, lo, mid);
    sort_order_pair(r, mid, hi);
    sort_order_pair(r, lo, mid);
    sort_swap(r, mid, hi - 1);
    int pivot = sort_push(r, hi - 1);
    lua_Integer i = lo, j = hi - 1;
    for (;;) {
        for (;;) {
            int at_i = sort_push(r, ++i);
            if (!sort_less(r, at_i, pivot)) break;
            if (i == hi - 1) sort_invalid_order(L);
            lua_pop(L, 1);
        }
        for (;;) {
            int at_j = sort_push(r, --j);
            if (!sort_less(r, pivot, at_j)) break;
            if (j < i) sort_invalid_order(L);
            lua_pop(L, 1);
        }
        if (j < i) {
            lua_pop(L, 2);
            break;
        }
        sort_store(r, i); /* t[i] = old t[j] */
        sort_store(r, j); /* t[j] = old t[i] */
    }
    lua_pop(L, 1); /* the pivot */
    sort_swap(r, hi - 1, i);
    return i;
}

/* Sorts t[lo..hi]: recurses into the shorter side, loops on the longer, so the C stack
 * holds at most log2(n) frames; depth_left runs out only on adversarial input. */
static void sort_range(sort_run *r, lua_Integer lo, lua_Integer hi, int depth_left) {
    while (hi - lo + 1 > SORT_SHORT) {
        if (depth_left-- == 0) {
            sort_by_heap(r, lo, hi);
            return;
        }
        lua_Integer p = sort_partition(r, lo, hi);
        if (p - lo < hi - p) {
            sort_range(r, lo, p - 1, depth_left);
            lo = p + 1;
        } else {
            sort_range(r, p + 1, hi, depth_left);
            hi = p - 1;
        }
    }
    sort_by_insertion(r, lo, hi);
}

/* Like ltablib's checktab for reading, writing and length: a table, or a value whose
 * metatable gives all three of __index, __newindex and __len. */
static void sort_check_table(lua_State *L) {
    if (lua_type(L, 1) == LUA_TTABLE) return;
    if (lua_getmetatable(L, 1)) {
        bool has_all = true;
        static const char *const needed[] = {"__index", "__newindex", "__len"};
        for (int k = 0; k < 3 && has_all; k++) {
            has_all = lua_getfield(L, -1, needed[k]) != LUA_TNIL;
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
        if (has_all) return;
    }
    luaL_checktype(L, 1, LUA_TTABLE);
}

static int sort_lua(lua_State *L) {
    sort_check_table(L);
    lua_Integer n = luaL_len(L, 1);
    if (n > 1) {
        luaL_argcheck(L, n < INT_MAX, 1, "array too big");
        if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TFUNCTION);
        lua_settop(L, 2);
        sort_run r = {L, !lua_isnil(L, 2), 0, lua_touserdata(L, lua_upvalueindex(1))};
        int depth = 0;
        for (lua_Integer m = n; m > 1; m >>= 1) depth += 2;
        sort_range(&r, 1, n, depth);
    }
    return 0;
}

void sort_install(lua_State *L, int idx, const pattern_limits *limits) {
    idx = lua_absindex(L, idx);
    lua_pushlightuserdata(L, (void *)limits);
    lua_pushcclosure(L, sort_lua, 1);
    lua_setfield(L, idx, "sort");
}
