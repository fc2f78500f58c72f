/* regex.c - POSIX extended regular expressions for assay.text.regex_find: a compiler to a
 * small NFA program and a Thompson simulation whose time is linear in the subject (times
 * the program size), charged to the same step budget as pattern.c.
 *
 * Why not regcomp/regexec: the pattern comes from plugins or even from the trace (`expect`
 * checks), and glibc's matcher is quadratic in the subject for plain patterns
 * ("(a|b)*a(a|b){12}x" takes 0.5 s on 10 KB), exponential with back-references, and
 * regcomp("a{0,32767}") allocates 8 GB outside the Lua allocator. Syntax and answers follow
 * glibc's regcomp(REG_EXTENDED) in the C locale, GNU escapes included (\w \s \b \< ...),
 * checked against it by tests/unit/test_regex.c and the fuzz_regex target. One exception:
 * back-references are refused, since no linear-time matcher can have them.
 * Only a yes/no answer is needed (REG_NOSUB), so there are no submatches to track.
 */
#include "regex.h"

#include <lauxlib.h>

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define REGEX_MAX_DEPTH 200  /* nested groups: the compiler recurses on them */
#define REGEX_DUP_MAX 32767  /* glibc's RE_DUP_MAX: the largest count in {m,n} */
#define REGEX_NAME_MAX 32    /* glibc's limit for [:name:], [.x.], [=x=] */
#define REPEAT_FOREVER (-1)

enum { OP_BYTE, OP_ANY, OP_SET, OP_SPLIT, OP_JUMP, OP_ASSERT, OP_MATCH };
enum { AT_START, AT_END, AT_WORD_EDGE, AT_NOT_WORD_EDGE, AT_WORD_START, AT_WORD_END };

/* Jumps are relative to the instruction, so a fragment of code can be moved or copied
 * whole (that is how x*, x? and x{m,n} are built). */
typedef struct inst {
    uint8_t op;
    uint8_t arg;  /* OP_BYTE: the byte; OP_ASSERT: AT_* */
    int32_t x, y; /* OP_JUMP: x; OP_SPLIT: x and y; OP_SET: x is the set's index */
} inst;

typedef uint8_t byte_set[32];

/* The compiled program and the simulation's scratch space, in one userdata. */
typedef struct regex_program {
    size_t len, set_count;
    inst *code;
    byte_set *sets;
    int32_t *now, *next, *stack; /* threads at this byte, at the next one, to visit */
    size_t *mark;                /* position + 1 at which an instruction was last added */
} regex_program;

/* The compiler runs twice over the pattern: once counting (code == NULL) to size the
 * userdata and to find every error before anything is allocated, once writing. */
typedef struct compiler {
    const char *p, *end;
    inst *code;
    byte_set *sets;
    size_t len, set_count;
    size_t peak_len; /* x{0} drops code already written: the code array needs the peak */
    int depth;
    const char *error;
} compiler;

static void grown(compiler *c) {
    if (c->len > c->peak_len) c->peak_len = c->len;
}

static bool fail(compiler *c, const char *why) {
    c->error = why;
    return false;
}

static bool too_large(compiler *c) {
    return fail(c, "too large once {m,n} is expanded (the limit is 16384 steps)");
}

static bool emit(compiler *c, uint8_t op, uint8_t arg, int32_t x, int32_t y) {
    if (c->len >= REGEX_MAX_PROGRAM) return too_large(c);
    if (c->code) c->code[c->len] = (inst){op, arg, x, y};
    c->len++;
    grown(c);
    return true;
}

/* Inserts an instruction before the fragment that starts at `at`. */
static bool insert(compiler *c, size_t at, uint8_t op, int32_t x, int32_t y) {
    if (c->len >= REGEX_MAX_PROGRAM) return too_large(c);
    if (c->code) {
        memmove(c->code + at + 1, c->code + at, (c->len - at) * sizeof *c->code);
        c->code[at] = (inst){op, 0, x, y};
    }
    c->len++;
    grown(c);
    return true;
}

static bool emit_copy(compiler *c, size_t from, size_t n) {
    if (n > REGEX_MAX_PROGRAM - c->len) return too_large(c);
    if (c->code) memcpy(c->code + c->len, c->code + from, n * sizeof *c->code);
    c->len += n;
    grown(c);
    return true;
}

static bool emit_set(compiler *c, const byte_set set) {
    if (c->sets) memcpy(c->sets[c->set_count], set, sizeof(byte_set));
    return emit(c, OP_SET, 0, (int32_t)c->set_count++, 0);
}

/* -------------------------------------------------------------------- repetition */

/* x*: SPLIT(x, out) x JUMP(split) out */
static bool repeat_star(compiler *c, size_t start) {
    if (!insert(c, start, OP_SPLIT, 1, 0)) return false;
    size_t jump = c->len;
    if (!emit(c, OP_JUMP, 0, (int32_t)start - (int32_t)jump, 0)) return false;
    if (c->code) c->code[start].y = (int32_t)(c->len - start);
    return true;
}

/* x+: x SPLIT(x, out) out */
static bool repeat_plus(compiler *c, size_t start) {
    return emit(c, OP_SPLIT, 0, (int32_t)start - (int32_t)c->len, 1);
}

/* x?: SPLIT(x, out) x out */
static bool repeat_optional(compiler *c, size_t start) {
    if (!insert(c, start, OP_SPLIT, 1, 0)) return false;
    if (c->code) c->code[start].y = (int32_t)(c->len - start);
    return true;
}

/* x{min,max}: min copies, then max - min optional ones (or a star for no max). */
static bool repeat_count(compiler *c, size_t start, long min, long max) {
    size_t n = c->len - start;
    if (max == 0) {
        c->len = start; /* x{0} matches the empty string */
        return true;
    }
    size_t copies = (size_t)(max == REPEAT_FOREVER ? min + 1 : max);
    if (copies * (n + 2) > REGEX_MAX_PROGRAM) return too_large(c);
    if (min == 0 && max == REPEAT_FOREVER) return repeat_star(c, start);
    size_t from = start;
    if (min == 0) {
        if (!repeat_optional(c, start)) return false;
        from = start + 1;
    }
    for (long i = 1; i < min; i++)
        if (!emit_copy(c, from, n)) return false;
    if (max == REPEAT_FOREVER) {
        size_t last = c->len;
        return emit_copy(c, from, n) && repeat_star(c, last);
    }
    for (long i = min > 1 ? min : 1; i < max; i++)
        if (!emit(c, OP_SPLIT, 0, 1, (int32_t)n + 1) || !emit_copy(c, from, n)) return false;
    return true;
}

/* A number in {m,n} up to the ',' or '}' that ends it (*ended_by, 0 at the end of the
 * pattern), consumed: -1 when there are no digits, -2 for anything else, capped past
 * REGEX_DUP_MAX. As in glibc, an escaped byte is read as that byte unless it is an escape
 * of its own (\1-\9, \w, \b, ...): "\," ends a count, "\0" is a digit. */
static long read_count(compiler *c, char *ended_by) {
    long value = -1;
    *ended_by = 0;
    while (c->p < c->end) {
        char ch = *c->p++;
        bool is_plain = true;
        if (ch == '\\') {
            if (c->p == c->end) return -2;
            ch = *c->p++;
            is_plain = !strchr("123456789wWsSbB<>`'", ch);
            if (ch == ',') {
                *ended_by = ',';
                return value;
            }
        } else if (ch == ',' || ch == '}') {
            *ended_by = ch;
            return value;
        }
        if (value != -2 && is_plain && isdigit((unsigned char)ch)) {
            long digit = ch - '0';
            value = value < 0 ? digit : value * 10 + digit;
            if (value > REGEX_DUP_MAX) value = REGEX_DUP_MAX + 1;
        } else {
            value = -2;
        }
    }
    return -2;
}

/* After '{': m}, m,}, m,n} or ,n} (GNU). */
static bool parse_count(compiler *c, long *min, long *max) {
    char ended_by;
    *min = read_count(c, &ended_by);
    if (*min == -1 && ended_by == ',') *min = 0;
    else if (*min == -1) return fail(c, "invalid content of {} (a count is missing)");
    if (ended_by == ',') *max = read_count(c, &ended_by);
    else *max = *min;
    if (ended_by == 0) return fail(c, "unmatched { (a count has no closing })");
    if (*min == -2 || *max == -2) return fail(c, "invalid content of {} (counts are digits)");
    if (ended_by != '}') return fail(c, "invalid content of {} (more than two counts)");
    if (*max != REPEAT_FOREVER && *min > *max) return fail(c, "invalid content of {} (the minimum is above the maximum)");
    if ((*max == REPEAT_FOREVER ? *min : *max) > REGEX_DUP_MAX) return fail(c, "a count in {} is above 32767");
    return true;
}

/* ------------------------------------------------------------- bracket expressions */

typedef struct element {
    enum { ELEMENT_BYTE, ELEMENT_EQUIVALENT, ELEMENT_CLASS } kind;
    unsigned char byte;
    int (*is_in_class)(int);
} element;

static int is_word(int c) { return isalnum(c) || c == '_'; }

static int (*class_named(const char *name, size_t len))(int) {
    static const struct { const char *name; int (*is_in)(int); } classes[] = {
        {"alpha", isalpha}, {"upper", isupper}, {"lower", islower}, {"digit", isdigit},
        {"xdigit", isxdigit}, {"space", isspace}, {"print", isprint}, {"punct", ispunct},
        {"graph", isgraph}, {"cntrl", iscntrl}, {"blank", isblank}, {"alnum", isalnum},
    };
    for (size_t i = 0; i < sizeof classes / sizeof *classes; i++)
        if (strlen(classes[i].name) == len && memcmp(classes[i].name, name, len) == 0) return classes[i].is_in;
    return NULL;
}

static void set_add(byte_set set, unsigned char b) { set[b >> 3] |= (uint8_t)(1u << (b & 7)); }

static void set_add_class(byte_set set, int (*is_in)(int), bool is_negated) {
    for (int b = 0; b < 256; b++)
        if (!is_in(b) == is_negated) set_add(set, (unsigned char)b);
}

/* One element of a bracket expression: a byte, [.x.], [=x=] or [:class:]. A '-' that is
 * not first, last or the end of a range is an error, as in glibc. */
static bool parse_element(compiler *c, element *e, bool may_be_hyphen) {
    const char *p = c->p;
    if (*p == '[' && p + 1 < c->end && (p[1] == '.' || p[1] == '=' || p[1] == ':')) {
        char delimiter = p[1];
        const char *name = p + 2;
        size_t len = 0;
        for (;; len++) {
            if (len >= REGEX_NAME_MAX || name + len + 1 >= c->end) return fail(c, "unmatched [, [:, [. or [=");
            if (name[len] == delimiter && name[len + 1] == ']') break;
        }
        c->p = name + len + 2;
        if (delimiter == ':') {
            e->kind = ELEMENT_CLASS;
            e->is_in_class = class_named(name, len);
            return e->is_in_class ? true : fail(c, "invalid character class name");
        }
        if (len != 1) return fail(c, "invalid collation character (only single bytes in the C locale)");
        e->kind = delimiter == '=' ? ELEMENT_EQUIVALENT : ELEMENT_BYTE;
        e->byte = (unsigned char)name[0];
        return true;
    }
    if (*p == '-' && !may_be_hyphen && !(p + 1 < c->end && p[1] == ']')) return fail(c, "invalid range end");
    e->kind = ELEMENT_BYTE;
    e->byte = (unsigned char)*p;
    c->p++;
    return true;
}

/* After '[': a list of elements and ranges up to ']' (a first ']' is a member). */
static bool parse_bracket(compiler *c) {
    byte_set set = {0};
    bool is_negated = c->p < c->end && *c->p == '^';
    if (is_negated) c->p++;
    for (bool is_first = true;; is_first = false) {
        if (c->p == c->end) return fail(c, "unmatched [ (no closing ])");
        if (*c->p == ']' && !is_first) break;
        element low;
        if (!parse_element(c, &low, is_first)) return false;
        bool is_range = c->p + 1 < c->end && *c->p == '-' && c->p[1] != ']';
        if (is_range && low.kind != ELEMENT_BYTE) return fail(c, "invalid range end (a class cannot bound a range)");
        if (low.kind == ELEMENT_CLASS) {
            set_add_class(set, low.is_in_class, false);
            continue;
        }
        if (!is_range) {
            set_add(set, low.byte);
            continue;
        }
        c->p++;
        element high;
        if (!parse_element(c, &high, true)) return false;
        if (high.kind != ELEMENT_BYTE) return fail(c, "invalid range end (a class cannot bound a range)");
        if (high.byte < low.byte) return fail(c, "invalid range end (it comes before the start)");
        for (int b = low.byte; b <= high.byte; b++) set_add(set, (unsigned char)b);
    }
    c->p++;
    if (is_negated)
        for (size_t i = 0; i < sizeof set; i++) set[i] = (uint8_t)~set[i];
    return emit_set(c, set);
}

/* ------------------------------------------------------------------------- syntax */

static bool parse_alternation(compiler *c);

/* After '\': a GNU class or assertion, a refused back-reference, or the byte itself. */
static bool parse_escape(compiler *c, bool *can_repeat) {
    if (c->p == c->end) return fail(c, "trailing backslash");
    char ch = *c->p++;
    byte_set set = {0};
    switch (ch) {
    case '1': case '2': case '3': case '4': case '5': case '6': case '7': case '8': case '9':
        return fail(c, "back-references (\\1 to \\9) are not supported: they need exponential time");
    case 'w': case 'W':
        set_add_class(set, is_word, ch == 'W');
        return emit_set(c, set);
    case 's': case 'S':
        set_add_class(set, isspace, ch == 'S');
        return emit_set(c, set);
    case 'b': *can_repeat = false; return emit(c, OP_ASSERT, AT_WORD_EDGE, 0, 0);
    case 'B': *can_repeat = false; return emit(c, OP_ASSERT, AT_NOT_WORD_EDGE, 0, 0);
    case '<': *can_repeat = false; return emit(c, OP_ASSERT, AT_WORD_START, 0, 0);
    case '>': *can_repeat = false; return emit(c, OP_ASSERT, AT_WORD_END, 0, 0);
    case '`': *can_repeat = false; return emit(c, OP_ASSERT, AT_START, 0, 0);
    case '\'': *can_repeat = false; return emit(c, OP_ASSERT, AT_END, 0, 0);
    default: return emit(c, OP_BYTE, (uint8_t)ch, 0, 0);
    }
}

/* One atom. Anchors and other assertions cannot take a repetition. */
static bool parse_atom(compiler *c, bool *can_repeat) {
    *can_repeat = true;
    char ch = *c->p++;
    switch (ch) {
    case '(':
        if (++c->depth > REGEX_MAX_DEPTH) return fail(c, "groups nested more than 200 deep");
        if (!parse_alternation(c)) return false;
        if (c->p == c->end) return fail(c, "unmatched ( (no closing ))");
        c->p++;
        c->depth--;
        return true;
    case '*': case '+': case '?': case '{':
        return fail(c, "invalid preceding regular expression (nothing to repeat)");
    case '^': *can_repeat = false; return emit(c, OP_ASSERT, AT_START, 0, 0);
    case '$': *can_repeat = false; return emit(c, OP_ASSERT, AT_END, 0, 0);
    case '.': return emit(c, OP_ANY, 0, 0, 0);
    case '[': return parse_bracket(c);
    case '\\': return parse_escape(c, can_repeat);
    default: return emit(c, OP_BYTE, (uint8_t)ch, 0, 0); /* ')' outside a group too */
    }
}

/* An atom and its repetitions (x*, x+?, x{2}{3} all stack). */
static bool parse_piece(compiler *c) {
    size_t start = c->len;
    bool can_repeat;
    if (!parse_atom(c, &can_repeat)) return false;
    while (c->p < c->end && (*c->p == '*' || *c->p == '+' || *c->p == '?' || *c->p == '{')) {
        if (!can_repeat) return fail(c, "invalid preceding regular expression (an anchor cannot repeat)");
        char q = *c->p++;
        bool ok;
        if (q == '*') ok = repeat_star(c, start);
        else if (q == '+') ok = repeat_plus(c, start);
        else if (q == '?') ok = repeat_optional(c, start);
        else {
            long min, max;
            ok = parse_count(c, &min, &max) && repeat_count(c, start, min, max);
        }
        if (!ok) return false;
    }
    return true;
}

static bool parse_branch(compiler *c) {
    while (c->p < c->end && *c->p != '|' && !(*c->p == ')' && c->depth > 0))
        if (!parse_piece(c)) return false;
    return true;
}

/* a|b|c: SPLIT(a, rest) a JUMP(out) rest... Empty alternatives match the empty string. */
static bool parse_alternation(compiler *c) {
    size_t start = c->len;
    if (!parse_branch(c)) return false;
    while (c->p < c->end && *c->p == '|') {
        c->p++;
        if (!insert(c, start, OP_SPLIT, 1, 0)) return false;
        size_t jump = c->len;
        if (!emit(c, OP_JUMP, 0, 0, 0)) return false;
        if (c->code) c->code[start].y = (int32_t)(c->len - start);
        if (!parse_branch(c)) return false;
        if (c->code) c->code[jump].x = (int32_t)(c->len - jump);
    }
    return true;
}

static bool compile(compiler *c, const char *pattern, size_t len) {
    c->p = pattern;
    c->end = pattern + len;
    c->len = c->set_count = c->peak_len = 0;
    c->depth = 0;
    return parse_alternation(c) && emit(c, OP_MATCH, 0, 0, 0);
}

bool regex_compile(lua_State *L, const char *pattern, size_t len, char *err, size_t errlen) {
    compiler c = {0};
    if (!compile(&c, pattern, len)) {
        snprintf(err, errlen, "%s", c.error);
        return false;
    }
    size_t n = c.len, peak = c.peak_len;
    size_t bytes = sizeof(regex_program) + peak * sizeof(inst) + n * (3 * sizeof(int32_t) + sizeof(size_t)) +
                   c.set_count * sizeof(byte_set);
    regex_program *r = lua_newuserdatauv(L, bytes, 0);
    /* size_t first, so that every array is aligned */
    r->mark = (size_t *)(r + 1);
    r->code = (inst *)(r->mark + n);
    r->now = (int32_t *)(r->code + peak);
    r->next = r->now + n;
    r->stack = r->next + n;
    r->sets = (byte_set *)(r->stack + n);
    r->len = n;
    r->set_count = c.set_count;
    c.code = r->code;
    c.sets = r->sets;
    compile(&c, pattern, len); /* the same input: cannot fail now */
    return true;
}

/* ------------------------------------------------------------------------ search */

typedef struct search {
    regex_program *r;
    const unsigned char *s;
    size_t n;
    lua_State *L;
    const pattern_limits *limits;
    size_t budget;
} search;

static void search_spend(search *q) {
    if (--q->budget) return;
    q->budget = PATTERN_CHECK_STEPS;
    q->limits->check(q->L, q->limits->ud);
}

static bool holds(const search *q, int at, size_t pos) {
    bool is_word_before = pos > 0 && is_word(q->s[pos - 1]);
    bool is_word_after = pos < q->n && is_word(q->s[pos]);
    switch (at) {
    case AT_START: return pos == 0;
    case AT_END: return pos == q->n;
    case AT_WORD_EDGE: return is_word_before != is_word_after;
    case AT_NOT_WORD_EDGE: return is_word_before == is_word_after;
    case AT_WORD_START: return !is_word_before && is_word_after;
    default: return is_word_before && !is_word_after;
    }
}

/* Adds the thread at pc for position pos to list, following jumps, splits and assertions
 * there; each instruction at most once per position. Returns true on reaching MATCH. */
static bool add_thread(search *q, int32_t *list, size_t *count, int32_t pc, size_t pos) {
    regex_program *r = q->r;
    size_t mark = pos + 1;
    if (r->mark[pc] == mark) return false;
    r->mark[pc] = mark;
    size_t top = 0;
    r->stack[top++] = pc;
    while (top > 0) {
        search_spend(q);
        int32_t at = r->stack[--top];
        const inst *in = &r->code[at];
        int32_t to[2];
        int targets = 0;
        switch (in->op) {
        case OP_MATCH: return true;
        case OP_JUMP: to[targets++] = at + in->x; break;
        case OP_SPLIT: to[targets++] = at + in->y; to[targets++] = at + in->x; break;
        case OP_ASSERT:
            if (holds(q, in->arg, pos)) to[targets++] = at + 1;
            break;
        default: list[(*count)++] = at;
        }
        for (int i = 0; i < targets; i++) {
            if (r->mark[to[i]] == mark) continue;
            r->mark[to[i]] = mark;
            r->stack[top++] = to[i];
        }
    }
    return false;
}

bool regex_search(lua_State *L, int idx, const char *s, size_t n, const pattern_limits *limits) {
    search q = {lua_touserdata(L, idx), (const unsigned char *)s, n, L, limits, PATTERN_CHECK_STEPS};
    regex_program *r = q.r;
    memset(r->mark, 0, r->len * sizeof *r->mark);
    int32_t *now = r->now, *next = r->next;
    size_t now_count = 0;
    for (size_t pos = 0;; pos++) {
        if (add_thread(&q, now, &now_count, 0, pos)) return true; /* a match may start anywhere */
        if (pos == n) return false;
        unsigned char b = q.s[pos];
        size_t next_count = 0;
        for (size_t i = 0; i < now_count; i++) {
            search_spend(&q);
            const inst *in = &r->code[now[i]];
            bool is_taken = in->op == OP_ANY || (in->op == OP_BYTE && in->arg == b) ||
                            (in->op == OP_SET && (r->sets[in->x][b >> 3] >> (b & 7) & 1));
            if (is_taken && add_thread(&q, next, &next_count, now[i] + 1, pos + 1)) return true;
        }
        int32_t *swap = now;
        now = next;
        next = swap;
        now_count = next_count;
    }
}
