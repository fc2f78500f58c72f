/* pattern.c - Lua 5.4's pattern matching (string.find, match, gmatch, gsub) with a step
 * budget, so that the sandbox's time limit also stops a match that backtracks.
 *
 * Why not lstrlib's own: count hooks fire between Lua instructions, never inside a C
 * function, and a pattern like ("a"):rep(600):find(".-.-.-b") backtracks inside one C call
 * for tens of seconds. These functions keep Lua's semantics and error messages (checked
 * against lstrlib by tests/unit/test_pattern.c and the fuzz_pattern target) and charge every
 * step; every PATTERN_CHECK_STEPS steps they call the sandbox's limit check, which raises.
 * Nothing here holds memory outside Lua, so a raise from the check leaks nothing. luaL_error
 * never returns; the returns after it are for readers and the static analyser.
 * Not here: the rest of the string library (Lua's own), the limits themselves (sandbox.c).
 */
#include "pattern.h"

#include <lauxlib.h>

#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* Lua's own limits (LUA_MAXCAPTURES, MAXCCALLS in lstrlib.c), so that a pattern that
 * works outside assay works inside and one that fails fails with the same message. */
#define PATTERN_MAX_CAPTURES 32
#define PATTERN_MAX_DEPTH 200

#define CAPTURE_OPEN (-1)     /* '(' seen, ')' not yet */
#define CAPTURE_POSITION (-2) /* '()': captures a position, not text */

#define SPECIALS "^$*+?.([%-"

/* One match attempt over a subject. The budget outlives attempts: it counts the whole call. */
typedef struct matcher {
    lua_State *L;
    const pattern_limits *limits;
    const char *subject, *subject_end;
    const char *pattern_end;
    size_t budget;        /* steps left before the next check */
    int depth_left;       /* recursion of match() */
    int level;            /* captures opened so far */
    struct {
        const char *start;
        ptrdiff_t len;    /* or CAPTURE_OPEN / CAPTURE_POSITION */
    } capture[PATTERN_MAX_CAPTURES];
} matcher;

/* Charges cost steps; every PATTERN_CHECK_STEPS of them the limits get a look. [-0, +0, v] */
static void matcher_spend(matcher *m, size_t cost) {
    if (cost < m->budget) {
        m->budget -= cost;
        return;
    }
    m->budget = PATTERN_CHECK_STEPS;
    m->limits->check(m->L, m->limits->ud);
}

static void matcher_init(matcher *m, lua_State *L, const char *s, size_t ls, const char *p, size_t lp) {
    m->L = L;
    m->limits = lua_touserdata(L, lua_upvalueindex(1));
    m->subject = s;
    m->subject_end = s + ls;
    m->pattern_end = p + lp;
    m->budget = PATTERN_CHECK_STEPS;
}

static void matcher_reset(matcher *m) {
    m->level = 0;
    m->depth_left = PATTERN_MAX_DEPTH;
}

/* ------------------------------------------------------------ single characters */

/* Does c belong to the class %cl (%a, %d, ... and their complements %A, %D, ...)? For any
 * other cl, %cl is cl itself. */
static bool class_matches(int c, int cl) {
    bool is_in;
    switch (tolower(cl)) {
    case 'a': is_in = isalpha(c); break;
    case 'c': is_in = iscntrl(c); break;
    case 'd': is_in = isdigit(c); break;
    case 'g': is_in = isgraph(c); break;
    case 'l': is_in = islower(c); break;
    case 'p': is_in = ispunct(c); break;
    case 's': is_in = isspace(c); break;
    case 'u': is_in = isupper(c); break;
    case 'w': is_in = isalnum(c); break;
    case 'x': is_in = isxdigit(c); break;
    case 'z': is_in = c == '\0'; break; /* deprecated since 5.2, still accepted by 5.4 */
    default: return cl == c;
    }
    return isupper(cl) ? !is_in : is_in;
}

/* Does c belong to the set [...] from open to its closing ']' (class_end checked both)? */
static bool set_matches(int c, const char *open, const char *close) {
    bool is_in = true;
    const char *p = open;
    if (p[1] == '^') {
        is_in = false;
        p++;
    }
    while (++p < close) {
        if (*p == '%') {
            p++;
            if (class_matches(c, (unsigned char)*p)) return is_in;
        } else if (p[1] == '-' && p + 2 < close) {
            p += 2;
            if ((unsigned char)p[-2] <= c && c <= (unsigned char)*p) return is_in;
        } else if ((unsigned char)*p == c) {
            return is_in;
        }
    }
    return !is_in;
}

/* The end of the single-character class that starts at p: '.', 'x', '%x' or a set. Raises on
 * a malformed one. [-0, +0, v] */
static const char *class_end(matcher *m, const char *p) {
    char c = *p++;
    if (c == '%') {
        if (p == m->pattern_end) luaL_error(m->L, "malformed pattern (ends with '%%')");
        return p + 1;
    }
    if (c == '[') {
        if (p < m->pattern_end && *p == '^') p++;
        do { /* the first character is taken as is, so "[]]" is a set holding ']' */
            if (p == m->pattern_end) luaL_error(m->L, "malformed pattern (missing ']')");
            if (*p++ == '%' && p < m->pattern_end) p++;
        } while (p == m->pattern_end || *p != ']');
        return p + 1;
    }
    return p;
}

/* Does the character at s (if any) match the class from p to ep? */
static bool single_matches(const matcher *m, const char *s, const char *p, const char *ep) {
    if (s >= m->subject_end) return false;
    int c = (unsigned char)*s;
    switch (*p) {
    case '.': return true;
    case '%': return class_matches(c, (unsigned char)p[1]);
    case '[': return set_matches(c, p, ep - 1);
    default: return (unsigned char)*p == c;
    }
}

/* ------------------------------------------------------------------------ matching */

static const char *match(matcher *m, const char *s, const char *p);

/* %bxy at p (pointing at x): a balanced run from x to its matching y. [-0, +0, v] */
static const char *match_balance(matcher *m, const char *s, const char *p) {
    if (p + 1 >= m->pattern_end) luaL_error(m->L, "malformed pattern (missing arguments to '%%b')");
    if (s >= m->subject_end || *s != p[0]) return NULL;
    const char *from = s;
    int depth = 1;
    while (++s < m->subject_end) {
        if (*s == p[1]) {
            if (--depth == 0) break;
        } else if (*s == p[0]) {
            depth++;
        }
    }
    matcher_spend(m, (size_t)(s - from) / 16);
    return s < m->subject_end ? s + 1 : NULL;
}

/* %1 .. %9: the text of an earlier, closed capture again. [-0, +0, v] */
static const char *match_back_reference(matcher *m, const char *s, int digit) {
    int i = digit - '1';
    if (i < 0 || i >= m->level || m->capture[i].len == CAPTURE_OPEN)
        return luaL_error(m->L, "invalid capture index %%%d", i + 1), NULL;
    /* a position capture's length, as size_t, is larger than any subject: never matches */
    size_t len = (size_t)m->capture[i].len;
    if ((size_t)(m->subject_end - s) < len) return NULL;
    matcher_spend(m, len / 16);
    return memcmp(m->capture[i].start, s, len) == 0 ? s + len : NULL;
}

static const char *capture_open(matcher *m, const char *s, const char *p, ptrdiff_t kind) {
    if (m->level >= PATTERN_MAX_CAPTURES) return luaL_error(m->L, "too many captures"), NULL;
    m->capture[m->level].start = s;
    m->capture[m->level].len = kind;
    m->level++;
    const char *end = match(m, s, p);
    if (!end) m->level--;
    return end;
}

static const char *capture_close(matcher *m, const char *s, const char *p) {
    int i = m->level - 1;
    while (i >= 0 && m->capture[i].len != CAPTURE_OPEN) i--;
    if (i < 0) return luaL_error(m->L, "invalid pattern capture"), NULL;
    m->capture[i].len = s - m->capture[i].start;
    const char *end = match(m, s, p);
    if (!end) m->capture[i].len = CAPTURE_OPEN;
    return end;
}

/* What matching one character against the class p..ep costs, in steps: a set [...] is
 * scanned whole, and a pattern may hold one as long as the subject. */
static size_t class_cost(const char *p, const char *ep) { return (size_t)(ep - p) / 16; }

/* x* and x+ (s past the one x+ needs): as many x as there are, then give back one at a
 * time until the rest matches. */
static const char *expand_greedy(matcher *m, const char *s, const char *p, const char *ep) {
    ptrdiff_t n = 0;
    if (ep - p > 16) { /* a long set is scanned for every character: charged as it goes */
        size_t cost = class_cost(p, ep);
        while (single_matches(m, s + n, p, ep)) n++, matcher_spend(m, cost);
    } else {
        while (single_matches(m, s + n, p, ep)) n++;
        matcher_spend(m, (size_t)n / 16);
    }
    for (; n >= 0; n--) {
        const char *end = match(m, s + n, ep + 1);
        if (end) return end;
    }
    return NULL;
}

/* x-: as few x as the rest allows. */
static const char *expand_lazy(matcher *m, const char *s, const char *p, const char *ep) {
    for (;;) {
        const char *end = match(m, s, ep + 1);
        if (end) return end;
        if (!single_matches(m, s, p, ep)) return NULL;
        matcher_spend(m, class_cost(p, ep));
        s++;
    }
}

/* Matches the pattern from p against the subject from s: the end of the match or NULL.
 * Each call is one step of the budget; recursion is bounded as in Lua. [-0, +0, v] */
static const char *match(matcher *m, const char *s, const char *p) {
    if (m->depth_left-- == 0) luaL_error(m->L, "pattern too complex");
    matcher_spend(m, 1);
    const char *end = m->pattern_end;
    for (;;) {
        if (p == end) break;
        switch (*p) {
        case '(':
            if (p + 1 < end && p[1] == ')') s = capture_open(m, s, p + 2, CAPTURE_POSITION);
            else s = capture_open(m, s, p + 1, CAPTURE_OPEN);
            goto done;
        case ')':
            s = capture_close(m, s, p + 1);
            goto done;
        case '$':
            if (p + 1 != end) break; /* a '$' anywhere else is a plain character */
            if (s != m->subject_end) s = NULL;
            goto done;
        case '%':
            if (p + 1 == end) break; /* class_end raises */
            switch (p[1]) {
            case 'b':
                s = match_balance(m, s, p + 2);
                if (!s) goto done;
                p += 4;
                continue;
            case 'f': {
                p += 2;
                if (p == end || *p != '[') luaL_error(m->L, "missing '[' after '%%f' in pattern");
                const char *ep = class_end(m, p);
                matcher_spend(m, class_cost(p, ep));
                int before = s == m->subject ? '\0' : (unsigned char)s[-1];
                int at = s < m->subject_end ? (unsigned char)*s : '\0';
                if (set_matches(before, p, ep - 1) || !set_matches(at, p, ep - 1)) {
                    s = NULL;
                    goto done;
                }
                p = ep;
                continue;
            }
            case '0': case '1': case '2': case '3': case '4':
            case '5': case '6': case '7': case '8': case '9':
                s = match_back_reference(m, s, (unsigned char)p[1]);
                if (!s) goto done;
                p += 2;
                continue;
            }
            break;
        }
        /* a single-character class, maybe with a quantifier */
        const char *ep = class_end(m, p);
        matcher_spend(m, class_cost(p, ep));
        char quantifier = ep < end ? *ep : '\0';
        if (!single_matches(m, s, p, ep)) {
            if (quantifier == '*' || quantifier == '?' || quantifier == '-') {
                p = ep + 1; /* zero repetitions are allowed */
                continue;
            }
            s = NULL;
            goto done;
        }
        switch (quantifier) {
        case '?': {
            const char *with = match(m, s + 1, ep + 1);
            if (with) {
                s = with;
                goto done;
            }
            p = ep + 1;
            continue;
        }
        case '+': s = expand_greedy(m, s + 1, p, ep); goto done;
        case '*': s = expand_greedy(m, s, p, ep); goto done;
        case '-': s = expand_lazy(m, s, p, ep); goto done;
        default:
            s++;
            p = ep;
            continue;
        }
    }
done:
    m->depth_left++;
    return s;
}

/* ------------------------------------------------------------------------ captures */

/* Pushes capture i, or the whole match s..e when the pattern has no captures and i is 0.
 * [-0, +1, v] */
static void push_capture(matcher *m, int i, const char *s, const char *e) {
    if (i >= m->level) {
        if (i != 0) {
            luaL_error(m->L, "invalid capture index %%%d", i + 1);
            return;
        }
        lua_pushlstring(m->L, s, (size_t)(e - s));
        return;
    }
    /* every capture below level was set by capture_open (the analyser cannot see that) */
    ptrdiff_t len = m->capture[i].len; // NOLINT(clang-analyzer-core.uninitialized.Assign)
    if (len == CAPTURE_OPEN) {
        luaL_error(m->L, "unfinished capture");
        return;
    }
    if (len == CAPTURE_POSITION) lua_pushinteger(m->L, (m->capture[i].start - m->subject) + 1);
    else lua_pushlstring(m->L, m->capture[i].start, (size_t)len);
}

/* Pushes every capture (the whole match if there are none and s is not NULL); returns how
 * many. [-0, +n, v] */
static int push_captures(matcher *m, const char *s, const char *e) {
    int n = m->level == 0 && s ? 1 : m->level;
    luaL_checkstack(m->L, n, "too many captures");
    for (int i = 0; i < n; i++) push_capture(m, i, s, e);
    return n;
}

/* ------------------------------------------------------------------ the functions */

/* Lua's start position: negative counts from the end, 0 and anything before the start are
 * 1. Returns it 0-based, so it may be the length (an empty match at the end) or past it. */
static size_t start_offset(lua_State *L, int arg, size_t len) {
    lua_Integer pos = luaL_optinteger(L, arg, 1);
    if (pos > 0) return (size_t)pos - 1;
    if (pos == 0 || pos < -(lua_Integer)len) return 0;
    return len + (size_t)pos;
}

static bool has_specials(const char *p, size_t lp) {
    for (size_t i = 0; i < lp; i++)
        if (p[i] != '\0' && strchr(SPECIALS, p[i])) return true;
    return false;
}

/* A plain substring search, charged like a match: a long needle that keeps matching its
 * first bytes makes the search quadratic. [-0, +0, v] */
static const char *find_plain(matcher *m, const char *s, size_t ls, const char *p, size_t lp) {
    if (lp == 0) return s;
    if (lp > ls) return NULL;
    const char *last = s + (ls - lp);
    for (const char *at = s; at <= last; at++) {
        at = memchr(at, p[0], (size_t)(last - at) + 1);
        if (!at) return NULL;
        matcher_spend(m, 1);
        size_t head = lp < 64 ? lp : 64;
        if (memcmp(at, p, head) != 0) continue;
        matcher_spend(m, lp / 16);
        if (memcmp(at + head, p + head, lp - head) == 0) return at;
    }
    return NULL;
}

/* string.find and string.match. [-(2|3|4), +n, v] */
static int find_or_match(lua_State *L, bool is_find) {
    size_t ls, lp;
    const char *s = luaL_checklstring(L, 1, &ls);
    const char *p = luaL_checklstring(L, 2, &lp);
    size_t init = start_offset(L, 3, ls);
    if (init > ls) {
        luaL_pushfail(L);
        return 1;
    }
    matcher m;
    matcher_init(&m, L, s, ls, p, lp);
    if (is_find && (lua_toboolean(L, 4) || !has_specials(p, lp))) {
        const char *at = find_plain(&m, s + init, ls - init, p, lp);
        if (at) {
            lua_pushinteger(L, (at - s) + 1);
            lua_pushinteger(L, (lua_Integer)((size_t)(at - s) + lp));
            return 2;
        }
    } else {
        bool is_anchored = lp > 0 && *p == '^';
        if (is_anchored) p++;
        const char *from = s + init;
        do {
            matcher_reset(&m);
            const char *e = match(&m, from, p);
            if (e) {
                if (!is_find) return push_captures(&m, from, e);
                lua_pushinteger(L, (from - s) + 1);
                lua_pushinteger(L, e - s);
                return push_captures(&m, NULL, NULL) + 2;
            }
        } while (from++ < m.subject_end && !is_anchored);
    }
    luaL_pushfail(L);
    return 1;
}

static int pattern_find(lua_State *L) { return find_or_match(L, true); }
static int pattern_match(lua_State *L) { return find_or_match(L, false); }

/* Where a gmatch iteration goes on from. A match may not end where the previous one did,
 * so that an empty match right after a match is skipped (Lua 5.4). */
typedef struct gmatch_state {
    size_t from;
    size_t last_end; /* SIZE_MAX: no match yet */
} gmatch_state;

/* The iterator: upvalues limits, subject, pattern, state. [-0, +n, v] */
static int gmatch_next(lua_State *L) {
    size_t ls, lp;
    const char *s = lua_tolstring(L, lua_upvalueindex(2), &ls);
    const char *p = lua_tolstring(L, lua_upvalueindex(3), &lp);
    gmatch_state *g = lua_touserdata(L, lua_upvalueindex(4));
    matcher m;
    matcher_init(&m, L, s, ls, p, lp);
    for (size_t at = g->from; at <= ls; at++) {
        matcher_reset(&m);
        const char *e = match(&m, s + at, p);
        if (e && (size_t)(e - s) != g->last_end) {
            g->from = g->last_end = (size_t)(e - s);
            return push_captures(&m, s + at, e);
        }
    }
    g->from = ls + 1; /* done: later calls return nothing at once */
    return 0;
}

/* string.gmatch(s, pattern [, init]). A '^' is a plain character here, as in Lua 5.4: an
 * anchor would stop the iteration. [-(2|3), +1, v] */
static int pattern_gmatch(lua_State *L) {
    size_t ls;
    luaL_checklstring(L, 1, &ls);
    luaL_checkstring(L, 2);
    size_t init = start_offset(L, 3, ls);
    lua_settop(L, 2);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    gmatch_state *g = lua_newuserdatauv(L, sizeof *g, 0);
    g->from = init > ls ? ls + 1 : init;
    g->last_end = SIZE_MAX;
    lua_pushcclosure(L, gmatch_next, 4);
    return 1;
}

/* Appends the replacement string (argument 3) for the match s..e: %0 the match, %1-%9 a
 * capture, %% a '%'. [-0, +0, v] */
static void add_replacement_string(matcher *m, luaL_Buffer *b, const char *s, const char *e) {
    lua_State *L = m->L;
    size_t len;
    const char *r = lua_tolstring(L, 3, &len);
    const char *r_end = r + len;
    matcher_spend(m, (len + (size_t)(e - s)) / 16); /* scanned and copied for every match */
    const char *escape;
    while ((escape = memchr(r, '%', (size_t)(r_end - r))) != NULL) {
        luaL_addlstring(b, r, (size_t)(escape - r));
        char c = escape + 1 < r_end ? escape[1] : '\0';
        if (c == '%') {
            luaL_addchar(b, '%');
        } else if (c == '0') {
            luaL_addlstring(b, s, (size_t)(e - s));
        } else if (isdigit((unsigned char)c)) {
            int i = c - '1';
            if (i >= m->level) {
                if (i != 0) luaL_error(L, "invalid capture index %%%d", i + 1);
                luaL_addlstring(b, s, (size_t)(e - s));
            } else {
                push_capture(m, i, s, e);
                luaL_addvalue(b); /* text or position, made a string */
            }
        } else {
            luaL_error(L, "invalid use of '%%' in replacement string");
        }
        r = escape + 2;
    }
    luaL_addlstring(b, r, (size_t)(r_end - r));
}

/* Appends what replaces the match s..e; returns whether it differs from the match (false
 * when a function or table gave false or nil). [-0, +0, e] */
static bool add_replacement(matcher *m, luaL_Buffer *b, const char *s, const char *e, int kind) {
    lua_State *L = m->L;
    if (kind == LUA_TFUNCTION) {
        lua_pushvalue(L, 3);
        int n = push_captures(m, s, e);
        lua_call(L, n, 1);
    } else if (kind == LUA_TTABLE) {
        push_capture(m, 0, s, e);
        lua_gettable(L, 3);
    } else {
        add_replacement_string(m, b, s, e);
        return true;
    }
    if (!lua_toboolean(L, -1)) {
        lua_pop(L, 1);
        luaL_addlstring(b, s, (size_t)(e - s));
        return false;
    }
    if (!lua_isstring(L, -1)) return luaL_error(L, "invalid replacement value (a %s)", luaL_typename(L, -1));
    luaL_addvalue(b);
    return true;
}

/* string.gsub(s, pattern, repl [, n]). [-(3|4), +2, e] */
static int pattern_gsub(lua_State *L) {
    size_t ls, lp;
    const char *src = luaL_checklstring(L, 1, &ls);
    const char *p = luaL_checklstring(L, 2, &lp);
    int kind = lua_type(L, 3);
    lua_Integer max_n = luaL_optinteger(L, 4, (lua_Integer)ls + 1);
    luaL_argexpected(L, kind == LUA_TNUMBER || kind == LUA_TSTRING || kind == LUA_TFUNCTION || kind == LUA_TTABLE,
                     3, "string/function/table");
    matcher m;
    matcher_init(&m, L, src, ls, p, lp);
    bool is_anchored = lp > 0 && *p == '^';
    if (is_anchored) p++;
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    const char *last_end = NULL;
    lua_Integer n = 0;
    bool is_changed = false;
    while (n < max_n) {
        matcher_reset(&m);
        const char *e = match(&m, src, p);
        if (e && e != last_end) {
            n++;
            is_changed = add_replacement(&m, &b, src, e, kind) || is_changed;
            src = last_end = e;
        } else if (src < m.subject_end) {
            luaL_addchar(&b, *src++);
        } else {
            break;
        }
        if (is_anchored) break;
    }
    if (is_changed) {
        luaL_addlstring(&b, src, (size_t)(m.subject_end - src));
        luaL_pushresult(&b);
    } else {
        lua_pushvalue(L, 1); /* the same string: nothing was replaced */
    }
    lua_pushinteger(L, n);
    return 2;
}

void pattern_install(lua_State *L, int idx, const pattern_limits *limits) {
    static const luaL_Reg functions[] = {
        {"find", pattern_find},
        {"match", pattern_match},
        {"gmatch", pattern_gmatch},
        {"gsub", pattern_gsub},
    };
    idx = lua_absindex(L, idx);
    for (size_t i = 0; i < sizeof functions / sizeof *functions; i++) {
        lua_pushlightuserdata(L, (void *)limits);
        lua_pushcclosure(L, functions[i].func, 1);
        lua_setfield(L, idx, functions[i].name);
    }
}
