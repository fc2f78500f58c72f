/* Unit tests of sandbox/sort.c: on every input with one right answer (total orders, or
 * equal elements that cannot be told apart) it leaves what Lua's own table.sort leaves,
 * compared in two states side by side; inconsistent comparators and bad arguments raise the
 * same errors; adversarial inputs still end sorted; equal elements end in the same order on
 * every run; and a long sort without a comparator keeps calling the limit check, which
 * stops it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <lauxlib.h>
#include <lualib.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../sandbox/sort.h"

static int checks, checks_allowed;

static void count_check(lua_State *L, void *ud) {
    (void)ud;
    if (++checks > checks_allowed) luaL_error(L, "stopped by the check");
}

static const pattern_limits limits = {count_check, NULL};

/* Helpers both states run, so that only table.sort differs between them. */
static const char prelude[] =
    "function lcg(seed)\n"
    "  local x = seed\n"
    "  return function(n) x = (x * 1103515245 + 12345) % 2147483648; return x % n end\n"
    "end\n"
    "function describe(t)\n"
    "  local out = {}\n"
    "  for i = 1, #t do out[i] = tostring(t[i]) end\n"
    "  return table.concat(out, ',')\n"
    "end\n"
    "function attempt(f)\n"
    "  local ok, result = pcall(f)\n"
    "  return ok and ('ok: ' .. tostring(result)) or ('error: ' .. tostring(result))\n"
    "end\n";

typedef struct states {
    lua_State *lua_own, *ours;
} states;

static lua_State *state_new(bool is_ours) {
    lua_State *L = luaL_newstate();
    if (!L) return NULL;
    luaL_openlibs(L);
    if (is_ours) {
        lua_getglobal(L, "table");
        sort_install(L, -1, &limits);
        lua_pop(L, 1);
    }
    if (luaL_dostring(L, prelude) != LUA_OK) return NULL;
    return L;
}

static int states_setup(void **state) {
    states *s = malloc(sizeof *s);
    s->lua_own = state_new(false);
    s->ours = state_new(true);
    *state = s;
    return s->lua_own && s->ours ? 0 : -1;
}

static int states_teardown(void **state) {
    states *s = *state;
    lua_close(s->lua_own);
    lua_close(s->ours);
    free(s);
    return 0;
}

/* Runs chunk (which returns a string) and copies its answer or error into out. */
static void run(lua_State *L, const char *chunk, char *out, size_t len) {
    checks = 0;
    checks_allowed = 1 << 30;
    if (luaL_dostring(L, chunk) != LUA_OK) {
        snprintf(out, len, "chunk error: %s", lua_tostring(L, -1));
    } else {
        const char *s = lua_tostring(L, -1);
        snprintf(out, len, "%s", s ? s : "(not a string)");
    }
    lua_settop(L, 0);
}

/* Chunks that have one right answer, whatever the sorting algorithm. */
static const char *const same_as_lua[] = {
    /* random integers with repeats, sizes around the insertion-sort cut and far past it */
    "local r, out = lcg(1), {} for n = 0, 40 do local t = {} for i = 1, n do t[i] = r(10) end"
    " table.sort(t) out[#out + 1] = describe(t) end return table.concat(out, '|')",
    "local r, t = lcg(2), {} for i = 1, 5000 do t[i] = r(1000) end table.sort(t) return describe(t)",
    "local r, t = lcg(3), {} for i = 1, 3000 do t[i] = r(1 << 30) - (1 << 29) + r(100) / 7 end"
    " table.sort(t) return describe(t)",
    /* strings, and a comparator for descending order */
    "local r, t = lcg(4), {} for i = 1, 700 do t[i] = string.char(97 + r(26), 97 + r(26)) .. r(50) end"
    " table.sort(t) return describe(t)",
    "local r, t = lcg(5), {} for i = 1, 900 do t[i] = r(300) end"
    " table.sort(t, function(a, b) return a > b end) return describe(t)",
    /* records by a unique key */
    "local r, t = lcg(6), {} for i = 1, 400 do t[i] = {k = (i * 7919) % 401, v = i} end"
    " table.sort(t, function(a, b) return a.k < b.k end)"
    " local out = {} for i = 1, #t do out[i] = t[i].k .. '=' .. t[i].v end return table.concat(out, ',')",
    /* shapes that break naive pivots: sorted, reversed, all equal, organ pipe */
    "local t = {} for i = 1, 2000 do t[i] = i end table.sort(t) return describe(t)",
    "local t = {} for i = 1, 2000 do t[i] = 2001 - i end table.sort(t) return describe(t)",
    "local t = {} for i = 1, 2000 do t[i] = 5 end table.sort(t) return describe(t)",
    "local t = {} for i = 1, 2000 do t[i] = i <= 1000 and i or 2001 - i end table.sort(t) return describe(t)",
    /* __lt metamethods decide the order when there is no comparator */
    "local mt = {__lt = function(a, b) return a.v < b.v end} local r, t = lcg(7), {}"
    " for i = 1, 300 do t[i] = setmetatable({v = (i * 31) % 307}, mt) end table.sort(t)"
    " local out = {} for i = 1, #t do out[i] = t[i].v end return table.concat(out, ',')",
    /* a proxy sorted through __index, __newindex and __len */
    "local store = {9, 3, 7, 1, 8, 2, 6, 4, 5, 0, 11, 10}"
    " local proxy = setmetatable({}, {__index = store, __newindex = store, __len = function() return #store end})"
    " table.sort(proxy) return describe(store)",
    /* nothing to sort: the comparator is not even looked at */
    "return attempt(function() local t = {1} table.sort(t, 42) table.sort({}, 'x') return describe(t) end)",
    /* errors: the same message */
    "return attempt(function() table.sort(42) end)",
    "return attempt(function() table.sort({2, 1}, 42) end)",
    "return attempt(function() local t = {} for i = 1, 200 do t[i] = i % 7 end"
    " table.sort(t, function() return true end) end)",
    "return attempt(function() table.sort({3, 2, 1}, function() error('comparator broke', 0) end) end)",
    "return attempt(function() table.sort(setmetatable({}, {__index = {}})) end)",
};

static void test_sorts_as_lua_does(void **state) {
    const states *s = *state;
    static char ours[1 << 16], lua_own[1 << 16];
    int differ = 0;
    for (size_t i = 0; i < sizeof same_as_lua / sizeof *same_as_lua; i++) {
        run(s->ours, same_as_lua[i], ours, sizeof ours);
        run(s->lua_own, same_as_lua[i], lua_own, sizeof lua_own);
        if (strcmp(ours, lua_own) != 0) {
            print_error("case %zu: %s\n  Lua:  %.300s\n  ours: %.300s\n", i, same_as_lua[i], lua_own, ours);
            differ++;
        }
    }
    assert_int_equal(differ, 0);
}

/* The comparison is only worth something if the cases produce real answers. */
static void test_known_answers(void **state) {
    const states *s = *state;
    static const struct {
        const char *chunk, *expected;
    } known[] = {
        {"local t = {5, 3, 9, 1, 7, 2, 8, 6, 4, 10, 0} table.sort(t) return describe(t)", "0,1,2,3,4,5,6,7,8,9,10"},
        {"local t = {'pear', 'apple', 'fig'} table.sort(t, function(a, b) return #a < #b end) return describe(t)",
         "fig,pear,apple"},
        {"return attempt(function() table.sort(42) end)",
         "bad argument #1 to 'sort' (table expected, got number)"},
        {"return attempt(function() table.sort({2, 1}, 42) end)",
         "bad argument #2 to 'sort' (function expected, got number)"},
        {"return attempt(function() local t = {} for i = 1, 200 do t[i] = i % 7 end"
         " table.sort(t, function() return true end) end)",
         "invalid order function for sorting"},
        {"return attempt(function() table.sort({1, 'a', 2}) end)", NULL}, /* "attempt to compare ..." */
    };
    char ours[512], lua_own[512];
    for (size_t i = 0; i < sizeof known / sizeof *known; i++) {
        run(s->ours, known[i].chunk, ours, sizeof ours);
        run(s->lua_own, known[i].chunk, lua_own, sizeof lua_own);
        if (known[i].expected) {
            /* errors raised in C carry the caller's position first: compare what follows */
            size_t n = strlen(ours), m = strlen(known[i].expected);
            if (n < m || strcmp(ours + n - m, known[i].expected) != 0)
                fail_msg("case %zu: expected \"...%s\", got \"%s\"", i, known[i].expected, ours);
            assert_string_equal(ours, lua_own);
        } else {
            /* which pair is compared first differs between algorithms, so only the kind */
            assert_non_null(strstr(ours, "error: attempt to compare"));
            assert_non_null(strstr(lua_own, "error: attempt to compare"));
        }
    }
}

/* Orders that are inconsistent or that point at the ends of every range keep every index
 * inside the table: the table still holds exactly its elements (or the sort raised). */
static void test_hostile_orders_stay_inside_the_table(void **state) {
    const states *s = *state;
    static const char *const chunks[] = {
        "local r, t = lcg(8), {} for i = 1, 3000 do t[i] = i end"
        " local ok = pcall(table.sort, t, function() return r(2) == 0 end)"
        " local seen, n = {}, 0 for k, v in pairs(t) do n = n + 1 seen[v] = true end"
        " for i = 1, 3000 do if not seen[i] then return 'lost ' .. i end end"
        " return n == 3000 and 'kept' or ('size ' .. n)",
        "local t = {} for i = 1, 3000 do t[i] = i end"
        " local ok = pcall(table.sort, t, function(a, b) return a ~= b end)"
        " local seen, n = {}, 0 for k, v in pairs(t) do n = n + 1 seen[v] = true end"
        " for i = 1, 3000 do if not seen[i] then return 'lost ' .. i end end"
        " return n == 3000 and 'kept' or ('size ' .. n)",
    };
    char out[256];
    for (size_t i = 0; i < sizeof chunks / sizeof *chunks; i++) {
        run(s->ours, chunks[i], out, sizeof out);
        assert_string_equal(out, "kept");
    }
}

/* Inputs built against median-of-three quicksort still sort (through the heapsort
 * fallback) in n log n comparisons, not n^2. */
static void test_adversarial_input_sorts_in_n_log_n(void **state) {
    const states *s = *state;
    static const char chunk[] =
        "local n, t, count = 20000, {}, 0\n"
        "for i = 1, n do t[i] = (i % 2 == 1) and i or (n // 2 + i) end\n"
        "table.sort(t, function(a, b) count = count + 1 return a < b end)\n"
        "for i = 2, n do if t[i - 1] > t[i] then return 'unsorted at ' .. i end end\n"
        "return count < 40 * n and 'sorted' or ('comparisons ' .. count)";
    char out[256];
    run(s->ours, chunk, out, sizeof out);
    assert_string_equal(out, "sorted");
}

/* Stock Lua picks random pivots for big arrays; here the same input always ends in the
 * same order, equal keys included, so a score never depends on the run. */
static void test_equal_elements_end_in_the_same_order_every_time(void **state) {
    const states *s = *state;
    static const char chunk[] =
        "local function once()\n"
        "  local t = {} for i = 1, 5000 do t[i] = {k = i % 13, v = i} end\n"
        "  table.sort(t, function(a, b) return a.k < b.k end)\n"
        "  local out = {} for i = 1, #t do out[i] = t[i].v end return table.concat(out, ',')\n"
        "end\n"
        "local first = once()\n"
        "for _ = 1, 5 do if once() ~= first then return 'differs' end end\n"
        "return 'same'";
    char out[256];
    run(s->ours, chunk, out, sizeof out);
    assert_string_equal(out, "same");
}

/* The protection itself: a sort with no comparator runs entirely in C, and the check is
 * called every SORT_CHECK_STEPS comparisons; when it raises, the sort stops there. */
static void test_long_sort_keeps_checking_and_stops(void **state) {
    const states *s = *state;
    lua_State *L = s->ours;
    assert_int_equal(luaL_dostring(L, "big = {} local r = lcg(9) for i = 1, 200000 do big[i] = r(1 << 30) end"), LUA_OK);

    checks = 0;
    checks_allowed = 1 << 30;
    assert_int_equal(luaL_dostring(L, "local t = table.move(big, 1, #big, 1, {}) table.sort(t)"), LUA_OK);
    /* 200,000 elements take at least n log2(n) / 2 > 1.7 M comparisons */
    if (checks < 1700000 / SORT_CHECK_STEPS) fail_msg("only %d checks during a sort of 200,000 numbers", checks);

    checks = 0;
    checks_allowed = 3;
    assert_int_not_equal(luaL_dostring(L, "local t = table.move(big, 1, #big, 1, {}) table.sort(t)"), LUA_OK);
    assert_non_null(strstr(lua_tostring(L, -1), "stopped by the check"));
    assert_int_equal(checks, 4);
    lua_settop(L, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_answers),
        cmocka_unit_test(test_sorts_as_lua_does),
        cmocka_unit_test(test_hostile_orders_stay_inside_the_table),
        cmocka_unit_test(test_adversarial_input_sorts_in_n_log_n),
        cmocka_unit_test(test_equal_elements_end_in_the_same_order_every_time),
        cmocka_unit_test(test_long_sort_keeps_checking_and_stops),
    };
    return cmocka_run_group_tests(tests, states_setup, states_teardown);
}
