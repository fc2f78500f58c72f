/* cli_digest.c - what the run store keeps of every trace: its metadata object and the
 * type of each step, as {"metadata":…,"step_types":[…]}. That is all that `compare
 * --group-by` and the report's segment and step-type tables read; whole bodies are kept
 * only for the worst traces (cli_store.c).
 *
 * The tokens are copied from the raw line instead of parsing it a second time on the loop
 * thread: the line reaches here only after the worker parsed it and accepted it as a JSON
 * object, so a scanner that skips values by their brackets is enough. It still checks every
 * bound, and says no rather than guess when the line is not what it expects. Keys repeat as
 * plugins see them: the last one wins.
 */
#include "cli.h"
#include "../base/hash.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct span {
    const char *at;
    size_t len;
} span;

typedef struct scan {
    const char *p, *end;
} scan;

/* Whitespace as cJSON, the parser that accepted the line, reads it: any byte up to ' '. */
static bool is_space(char c) { return (unsigned char)c <= ' '; }

static void scan_space(scan *s) {
    while (s->p < s->end && is_space(*s->p)) s->p++;
}

/* At a '"': moves past the closing quote. Most of a trace's bytes are inside strings, so
 * the closing quote is looked for with memchr; a quote preceded by an odd number of
 * backslashes is escaped and the search goes on. */
static bool scan_string(scan *s) {
    const char *content = s->p + 1, *from = content;
    for (;;) {
        const char *quote = memchr(from, '"', (size_t)(s->end - from));
        if (!quote) return false;
        const char *run = quote;
        while (run > content && run[-1] == '\\') run--;
        if ((quote - run) % 2 == 0) {
            s->p = quote + 1;
            return true;
        }
        from = quote + 1;
    }
}

static bool is_structural(char c) { return c == '"' || c == '{' || c == '}' || c == '[' || c == ']'; }

static bool ends_literal(char c) {
    return c == ',' || c == ']' || c == '}' || is_space(c);
}

/* Moves past one value and returns its span. Containers are skipped by counting their
 * brackets outside strings: no recursion, whatever the nesting. */
static bool scan_value(scan *s, span *out) {
    scan_space(s);
    const char *start = s->p;
    if (s->p >= s->end) return false;
    if (*s->p == '"') {
        if (!scan_string(s)) return false;
    } else if (*s->p == '{' || *s->p == '[') {
        size_t depth = 0;
        do {
            while (s->p < s->end && !is_structural(*s->p)) s->p++;
            if (s->p >= s->end) return false;
            char c = *s->p;
            if (c == '"') {
                if (!scan_string(s)) return false;
                continue;
            }
            if (c == '{' || c == '[') depth++;
            else depth--; /* '}' or ']' */
            s->p++;
        } while (depth);
    } else {
        while (s->p < s->end && !ends_literal(*s->p)) s->p++;
        if (s->p == start) return false;
    }
    *out = (span){start, (size_t)(s->p - start)};
    return true;
}

/* The bytes a JSON string token (quotes included) stands for, one at a time: escapes
 * decoded, \u escapes (surrogate pairs too) as UTF-8, as cJSON decodes keys, whose names
 * plugins see: a key ends at a \u0000. */
typedef struct key_reader {
    const char *p, *end;
    unsigned char pending[4];
    int pending_at, pending_len;
} key_reader;

static key_reader key_reader_of(span key) { return (key_reader){key.at + 1, key.at + key.len - 1, {0}, 0, 0}; }

/* Four hex digits; as in cJSON, anything else reads as 0. */
static long hex4(key_reader *r) {
    if (r->end - r->p < 4) return -1;
    long v = 0;
    for (int i = 0; i < 4; i++) {
        char h = *r->p++;
        int d = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10 : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
        if (d < 0) {
            r->p += 3 - i;
            return 0;
        }
        v = v * 16 + d;
    }
    return v;
}

/* The next byte, or -1 at the end (or at an escape that cannot be read). */
static int key_next(key_reader *r) {
    if (r->pending_at < r->pending_len) return r->pending[r->pending_at++];
    if (r->p >= r->end) return -1;
    char c = *r->p++;
    if (c != '\\') return (unsigned char)c;
    if (r->p >= r->end) return -1;
    char e = *r->p++;
    switch (e) {
    case 'b': return '\b';
    case 'f': return '\f';
    case 'n': return '\n';
    case 'r': return '\r';
    case 't': return '\t';
    case 'u': break;
    default: return (unsigned char)e; /* \" \\ \/ */
    }
    long v = hex4(r);
    if (v >= 0xD800 && v <= 0xDBFF) { /* a surrogate pair */
        if (r->end - r->p < 6 || r->p[0] != '\\' || r->p[1] != 'u') return -1;
        r->p += 2;
        long low = hex4(r);
        if (low < 0xDC00 || low > 0xDFFF) return -1;
        v = 0x10000 + ((v - 0xD800) << 10) + (low - 0xDC00);
    }
    if (v <= 0) { /* cJSON's keys are C strings: a \u0000 ends them */
        r->p = r->end;
        return -1;
    }
    r->pending_at = 1;
    if (v < 0x80) r->pending_len = 1, r->pending[0] = (unsigned char)v;
    else if (v < 0x800) r->pending_len = 2, r->pending[0] = (unsigned char)(0xC0 | v >> 6);
    else if (v < 0x10000) r->pending_len = 3, r->pending[0] = (unsigned char)(0xE0 | v >> 12);
    else r->pending_len = 4, r->pending[0] = (unsigned char)(0xF0 | v >> 18);
    for (int i = 1; i < r->pending_len; i++)
        r->pending[i] = (unsigned char)(0x80 | ((v >> (6 * (r->pending_len - 1 - i))) & 0x3F));
    return r->pending[0];
}

/* Is the JSON string token `key` the name `name`? */
static bool key_is(span key, const char *name) {
    key_reader r = key_reader_of(key);
    for (int c; (c = key_next(&r)) >= 0; name++)
        if (c != (unsigned char)*name) return false;
    return *name == '\0';
}

static bool keys_equal(span a, span b) {
    key_reader x = key_reader_of(a), y = key_reader_of(b);
    for (;;) {
        int c = key_next(&x), d = key_next(&y);
        if (c != d) return false;
        if (c < 0) return true;
    }
}

static uint64_t key_hash(span key) {
    key_reader r = key_reader_of(key);
    uint64_t h = HASH_FNV_BASIS;
    for (int c; (c = key_next(&r)) >= 0;) h = (h ^ (unsigned)c) * HASH_FNV_PRIME;
    return h;
}

/* Walks the members of the object starting at s->p; for each calls member(key, value). */
typedef void (*member_fn)(void *ctx, span key, span value);

static bool scan_object(scan *s, member_fn member, void *ctx) {
    scan_space(s);
    if (s->p >= s->end || *s->p != '{') return false;
    s->p++;
    scan_space(s);
    if (s->p < s->end && *s->p == '}') {
        s->p++;
        return true;
    }
    for (;;) {
        span key, value;
        scan_space(s);
        if (s->p >= s->end || *s->p != '"' || !scan_value(s, &key)) return false;
        scan_space(s);
        if (s->p >= s->end || *s->p != ':') return false;
        s->p++;
        if (!scan_value(s, &value)) return false;
        member(ctx, key, value);
        scan_space(s);
        if (s->p >= s->end) return false;
        if (*s->p == '}') {
            s->p++;
            return true;
        }
        if (*s->p++ != ',') return false;
    }
}

typedef struct top_fields {
    span metadata, steps;
} top_fields;

static void top_member(void *ctx, span key, span value) {
    top_fields *t = ctx;
    if (key_is(key, "metadata")) t->metadata = value;
    else if (key_is(key, "steps")) t->steps = value;
}

static void type_member(void *ctx, span key, span value) {
    span *type = ctx;
    if (key_is(key, "type")) *type = value;
}

/* The members of one object, in order. */
typedef struct member {
    span key, value;
    uint64_t hash;          /* of the decoded key */
    bool is_shadowed; /* a later member has the same key */
} member;

typedef struct members {
    member *v;
    size_t n, cap;
    bool has_failed;
} members;

static void collect_member(void *ctx, span key, span value) {
    members *m = ctx;
    if (m->n == m->cap) {
        size_t cap = m->cap ? 2 * m->cap : 16;
        member *grown = realloc(m->v, cap * sizeof *grown);
        if (!grown) {
            m->has_failed = true;
            return;
        }
        m->v = grown, m->cap = cap;
    }
    m->v[m->n++] = (member){key, value, key_hash(key), false};
}

typedef struct keyed {
    uint64_t hash;
    size_t at; /* the member's position */
} keyed;

static int by_hash_then_position(const void *a, const void *b) {
    const keyed *x = a, *y = b;
    if (x->hash != y->hash) return x->hash < y->hash ? -1 : 1;
    return x->at < y->at ? -1 : x->at > y->at;
}

/* Marks every member that a later one with the same key shadows: sorted by key hash, only
 * members of equal hash are compared. */
static bool mark_shadowed(members *m) {
    keyed *order = malloc((m->n ? m->n : 1) * sizeof *order);
    if (!order) return false;
    for (size_t i = 0; i < m->n; i++) order[i] = (keyed){m->v[i].hash, i};
    qsort(order, m->n, sizeof *order, by_hash_then_position);
    for (size_t a = 0; a < m->n; a++)
        for (size_t b = a + 1; b < m->n && order[b].hash == order[a].hash; b++)
            if (keys_equal(m->v[order[a].at].key, m->v[order[b].at].key)) {
                m->v[order[a].at].is_shadowed = true;
                break;
            }
    free(order);
    return true;
}

/* Appends the object `object` with each key once, the last of repeated keys: what plugins
 * see, where SQLite's json_extract would take the first. Nested objects are copied as they
 * are (grouping reads top-level metadata fields only). */
static bool write_last_wins(span object, buf *out) {
    scan s = {object.at, object.at + object.len};
    members m = {NULL, 0, 0, false};
    bool ok = scan_object(&s, collect_member, &m) && !m.has_failed && mark_shadowed(&m);
    bool has_repeats = false;
    for (size_t i = 0; ok && i < m.n; i++) has_repeats |= m.v[i].is_shadowed;
    if (ok && !has_repeats) {
        buf_append(out, object.at, object.len);
    } else if (ok) {
        buf_putc(out, '{');
        bool is_first = true;
        for (size_t i = 0; i < m.n; i++) {
            if (m.v[i].is_shadowed) continue;
            if (!is_first) buf_putc(out, ',');
            is_first = false;
            buf_append(out, m.v[i].key.at, m.v[i].key.len);
            buf_putc(out, ':');
            buf_append(out, m.v[i].value.at, m.v[i].value.len);
        }
        buf_putc(out, '}');
    }
    free(m.v);
    return ok;
}

bool digest_trace(const char *line, size_t len, buf *out) {
    scan s = {line, line + len};
    top_fields top = {{NULL, 0}, {NULL, 0}};
    if (!scan_object(&s, top_member, &top)) return false;
    buf_puts(out, "{\"metadata\":");
    if (top.metadata.at && *top.metadata.at == '{') {
        if (!write_last_wins(top.metadata, out)) return false;
    } else {
        buf_puts(out, "null");
    }
    buf_puts(out, ",\"step_types\":[");
    if (top.steps.at && *top.steps.at == '[') {
        /* one entry per step, so that step i of a record is entry i: null for a step
         * that is not an object or has no string type */
        scan steps = {top.steps.at + 1, top.steps.at + top.steps.len - 1};
        bool is_first = true;
        for (;;) {
            scan_space(&steps);
            if (steps.p >= steps.end) break;
            span type = {NULL, 0};
            span step;
            if (*steps.p == '{') {
                if (!scan_object(&steps, type_member, &type)) return false;
            } else if (!scan_value(&steps, &step)) {
                return false;
            }
            if (!is_first) buf_putc(out, ',');
            is_first = false;
            if (type.at && *type.at == '"') buf_append(out, type.at, type.len);
            else buf_puts(out, "null");
            scan_space(&steps);
            if (steps.p < steps.end && *steps.p == ',') steps.p++;
        }
    }
    buf_puts(out, "]}");
    return !buf_failed(out);
}
