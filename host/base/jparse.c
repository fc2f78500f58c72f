/* jparse.c - a trace's JSON text into cJSON nodes cut from one arena.
 *
 * Why: cJSON mallocs every node, key and string, and cJSON_Delete frees them one by one. On
 * the deep-research traces of `make bench` (about 1,500 values in 12 KB) that was a sixth of
 * all the work of the five shipped evaluators: 0.33 M instructions per trace to parse and
 * 0.23 M to free, of 3.35 M. Here a trace's nodes come from a few blocks, and freeing the
 * trace frees those blocks.
 *
 * Exactness: everything downstream (the worker, the lazy trace of each plugin) was written
 * against cJSON's tree, so the tree must be the one cJSON gives. This parser takes strict
 * JSON (RFC 8259) only and gives up on anything else: white space other than the four JSON
 * allows, raw control bytes in a string, a \u escape that is not four hex digits, a number
 * that strict JSON does not allow or that is longer than cJSON reads, a byte-order mark,
 * nesting near cJSON's limit. Strict JSON is a subset of what cJSON accepts, and on it both
 * build the same nodes: the same types in the same order, the same keys, strings decoded as
 * cJSON decodes them, numbers read by strtod from the same characters with valueint
 * saturated as cJSON does, and a first child whose prev is the last. What this parser gives
 * up on the caller parses with cJSON, which decides. tests/fuzz/fuzz_jparse.c and
 * tests/unit/test_jparse.c compare the two trees.
 *
 * Strings in place: a string without escapes (all but about one in 250 of a trace's) is left
 * where it is in the text, its closing quote overwritten with the NUL that ends it, rather
 * than copied into the arena (the copies were 1.2% of a trace's instructions). So the text
 * is the tree's until it is freed, and when the parser gives up it puts the quotes back:
 * the caller hands the same text to cJSON.
 *
 * UTF-8: it also gives up on a string that is not valid UTF-8 (buf_utf8_sequence_length's
 * rules). Outside strings strict JSON is ASCII, so a tree from here means the whole text is
 * valid UTF-8, and the worker need not check every line before parsing it (a second pass
 * over the text, 2% of what a trace cost).
 */
#include "jparse.h"

#include "buf.h"

#include <limits.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include <locale.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define JPARSE_FIRST_BLOCK_MAX (1u << 20)
#define JPARSE_BLOCK (64u << 10)
#define JPARSE_MAX_NUMBER 63 /* cJSON reads at most this many characters of a number */

typedef struct jblock {
    struct jblock *next;
    size_t used, size;
    max_align_t data[];
} jblock;

struct jparse_tree {
    jblock *blocks;
};

typedef struct parser {
    unsigned char *p, *end; /* the text: strings without escapes stay in it (jparse.h) */
    jparse_tree *tree;
    size_t depth;
} parser;

/* A new block for n bytes: a further block holds about what the rest of the text needs,
 * up to JPARSE_BLOCK. */
static __attribute__((noinline)) void *take_block(parser *ps, size_t n, size_t first_size) {
    jblock *b = ps->tree->blocks;
    size_t rest = (size_t)(ps->end - ps->p);
    size_t size = !b ? first_size : rest < JPARSE_BLOCK / 2 ? 2 * rest + 1024 : JPARSE_BLOCK;
    if (size < n) size = n;
    jblock *fresh = malloc(sizeof *fresh + size);
    if (!fresh) return NULL;
    *fresh = (jblock){b, n, size};
    ps->tree->blocks = fresh;
    return fresh->data;
}

/* n bytes from the arena, aligned for a cJSON node; NULL when memory ran out. Inline:
 * every node and string takes some. */
static inline void *take(parser *ps, size_t n, size_t first_size) {
    n = (n + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);
    jblock *b = ps->tree->blocks;
    if (!b || b->size - b->used < n) return take_block(ps, n, first_size);
    void *at = (char *)b->data + b->used;
    b->used += n;
    return at;
}

static cJSON *new_node(parser *ps) {
    cJSON *node = take(ps, sizeof *node, JPARSE_BLOCK);
    if (node) memset(node, 0, sizeof *node);
    return node;
}

static void skip_space(parser *ps) {
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\n' || *ps->p == '\r' || *ps->p == '\t')) ps->p++;
}

static int hex_digit(unsigned char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if ((c | 32) >= 'a' && (c | 32) <= 'f') return (c | 32) - 'a' + 10;
    return -1;
}

/* The four hex digits at s (s + 4 <= end), or -1. */
static long hex4(const unsigned char *s, const unsigned char *end) {
    if (end - s < 4) return -1;
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int d = hex_digit(s[i]);
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

/* Decodes the escape at s (s[0] == '\\') into *out; returns the bytes read, 0 on a
 * sequence cJSON would read loosely or refuse, and on \u0000 (cJSON decides). */
static size_t unescape(const unsigned char *s, const unsigned char *end, unsigned char **out) {
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    if (end - s < 2) return 0;
    const char *simple = s[1] ? strchr(from, s[1]) : NULL;
    if (simple) {
        *(*out)++ = (unsigned char)to[simple - from];
        return 2;
    }
    if (s[1] != 'u') return 0;
    long code = hex4(s + 2, end);
    size_t used = 6;
    /* NUL: the string would end early as a C string, but not by its length (valueint) */
    if (code <= 0 || (code >= 0xDC00 && code <= 0xDFFF)) return 0;
    if (code >= 0xD800 && code <= 0xDBFF) { /* a surrogate pair: the low half must follow */
        long low = end - s >= 12 && s[6] == '\\' && s[7] == 'u' ? hex4(s + 8, end) : -1;
        if (low < 0xDC00 || low > 0xDFFF) return 0;
        code = 0x10000 + (((code & 0x3FF) << 10) | (low & 0x3FF));
        used = 12;
    }
    unsigned char *o = *out;
    if (code < 0x80) *o++ = (unsigned char)code;
    else if (code < 0x800) *o++ = (unsigned char)(0xC0 | (code >> 6)), *o++ = (unsigned char)(0x80 | (code & 0x3F));
    else if (code < 0x10000)
        *o++ = (unsigned char)(0xE0 | (code >> 12)), *o++ = (unsigned char)(0x80 | ((code >> 6) & 0x3F)),
        *o++ = (unsigned char)(0x80 | (code & 0x3F));
    else
        *o++ = (unsigned char)(0xF0 | (code >> 18)), *o++ = (unsigned char)(0x80 | ((code >> 12) & 0x3F)),
        *o++ = (unsigned char)(0x80 | ((code >> 6) & 0x3F)), *o++ = (unsigned char)(0x80 | (code & 0x3F));
    *out = o;
    return used;
}

/* 0x80 in each of the 8 bytes of w that is '"', '\\' or below 0x20, and maybe in a byte
 * after one that is (a borrow carries), never when none is. So the lowest byte marked is
 * always one of them, and on a little-endian machine it is the first in memory. */
static uint64_t special_bytes(uint64_t w) {
    const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
    uint64_t quote = w ^ (ones * '"'), backslash = w ^ (ones * '\\');
    uint64_t found = ((quote - ones) & ~quote) | ((backslash - ones) & ~backslash) | ((w - ones * 0x20) & ~w);
    return found & highs;
}

/* The first '"', '\\', control byte or byte >= 0x80 at or after q, or end: sixteen bytes
 * at a time where SSE2 is there (every x86-64; finding a string's end was a quarter of
 * parsing a trace word by word), then a word at a time. */
static const unsigned char *next_special(const unsigned char *q, const unsigned char *end) {
#if defined(__SSE2__) && defined(__GNUC__)
    for (; end - q >= 16; q += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)q);
        /* signed, a byte >= 0x80 is below 0x20 too */
        __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')), _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))),
                                   _mm_cmplt_epi8(v, _mm_set1_epi8(0x20)));
        unsigned found = (unsigned)_mm_movemask_epi8(hit);
        if (found) return q + __builtin_ctz(found);
    }
#endif
    for (uint64_t w, found; end - q >= 8; q += 8) {
        memcpy(&w, q, 8);
        if ((found = special_bytes(w) | (w & 0x8080808080808080u)) != 0) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ && defined(__GNUC__)
            return q + (__builtin_ctzll(found) >> 3);
#else
            break; /* found a byte at a time below */
#endif
        }
    }
    while (q < end && *q != '"' && *q != '\\' && *q >= 0x20 && *q < 0x80) q++;
    return q;
}

/* The string at ps->p (a '"'): in place, or decoded into the arena when it has escapes
 * (which only shorten it, so the closing quote is found first); NULL to give up. Both passes go
 * from one escape to the next a word at a time (a page's content may hold thousands of
 * "\n"), not a byte at a time after the first escape. */
static char *parse_string(parser *ps, size_t *len) {
    unsigned char *s = ps->p + 1;
    const unsigned char *stop = s;
    bool escaped = false;
    for (;;) { /* the closing quote: past the escapes, which only shorten */
        stop = next_special(stop, ps->end);
        if (stop >= ps->end || *stop < 0x20) return NULL;
        if (*stop == '"') break;
        if (*stop >= 0x80) { /* a character that must be valid UTF-8 */
            /* two bytes (é), and three with a lead byte that allows no overlong form and no
             * surrogate (’ “ —), are valid with continuation bytes alone: inline */
            size_t left = (size_t)(ps->end - stop);
            if (*stop >= 0xC2 && *stop <= 0xDF && left >= 2 && (stop[1] & 0xC0) == 0x80) {
                stop += 2;
                continue;
            }
            if (*stop >= 0xE1 && *stop <= 0xEF && *stop != 0xED && left >= 3 && (stop[1] & 0xC0) == 0x80 &&
                (stop[2] & 0xC0) == 0x80) {
                stop += 3;
                continue;
            }
            size_t n = buf_utf8_sequence_length(stop, left);
            if (!n) return NULL;
            stop += n;
            continue;
        }
        if (ps->end - stop < 2) return NULL;
        stop += 2;
        escaped = true;
    }
    if (!escaped) { /* in place: the closing quote ends it (jparse restores the quotes if it gives up) */
        s[stop - s] = '\0';
        *len = (size_t)(stop - s);
        ps->p += *len + 2;
        return (char *)s;
    }
    unsigned char *text = take(ps, (size_t)(stop - s) + 1, JPARSE_BLOCK), *o = text;
    if (!text) return NULL;
    for (const unsigned char *q = s; q < stop;) {
        const unsigned char *backslash = memchr(q, '\\', (size_t)(stop - q));
        size_t run = (size_t)((backslash ? backslash : stop) - q);
        memcpy(o, q, run);
        o += run;
        q += run;
        if (q < stop) {
            size_t used = unescape(q, stop, &o);
            if (!used) return NULL;
            q += used;
        }
    }
    *o = '\0';
    *len = (size_t)(o - text);
    ps->p += (size_t)(stop - s) + 2;
    return (char *)text;
}

static bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

/* A number in strict JSON's grammar, read as cJSON reads it. */
static bool parse_number(parser *ps, cJSON *node) {
    const unsigned char *s = ps->p, *q = s, *end = ps->end;
    bool is_integer = true;
    if (q < end && *q == '-') q++;
    if (q < end && *q == '0') q++;
    else if (q < end && *q >= '1' && *q <= '9') while (q < end && is_digit(*q)) q++;
    else return false;
    if (q < end && *q == '.') {
        is_integer = false;
        if (++q >= end || !is_digit(*q)) return false;
        while (q < end && is_digit(*q)) q++;
    }
    if (q < end && (*q == 'e' || *q == 'E')) {
        is_integer = false;
        if (++q < end && (*q == '+' || *q == '-')) q++;
        if (q >= end || !is_digit(*q)) return false;
        while (q < end && is_digit(*q)) q++;
    }
    size_t n = (size_t)(q - s);
    /* cJSON reads the run of these characters: the number must end where that run does */
    if (n > JPARSE_MAX_NUMBER || (q < end && (is_digit(*q) || *q == '+' || *q == '-' || *q == 'e' || *q == 'E' ||
                                              *q == '.')))
        return false;
    double value;
    size_t digits = n - (*s == '-');
    if (is_integer && digits <= 15) { /* exact in a double: what strtod gives */
        int64_t v = 0;
        for (const unsigned char *d = s + (*s == '-'); d < q; d++) v = v * 10 + (*d - '0');
        value = (double)(*s == '-' ? -v : v);
        if (*s == '-' && v == 0) value = -0.0;
    } else {
        char copy[JPARSE_MAX_NUMBER + 1];
        char point = localeconv()->decimal_point[0]; /* as cJSON, for strtod */
        for (size_t i = 0; i < n; i++) copy[i] = s[i] == '.' ? point : (char)s[i];
        copy[n] = '\0';
        char *after = NULL;
        value = strtod(copy, &after);
        if (after != copy + n) return false;
    }
    node->type = cJSON_Number;
    node->valuedouble = value;
    node->valueint = value >= INT_MAX ? INT_MAX : value <= (double)INT_MIN ? INT_MIN : (int)value;
    ps->p += n;
    return true;
}

static bool parse_value(parser *ps, cJSON *node);

/* The elements of an array or the members of an object, up to `close`. */
static bool parse_children(parser *ps, cJSON *node, unsigned char close) {
    if (++ps->depth >= CJSON_NESTING_LIMIT - 1) return false; /* cJSON's limit: it decides */
    ps->p++;
    skip_space(ps);
    cJSON *last = NULL;
    if (ps->p < ps->end && *ps->p == close) {
        ps->p++;
        ps->depth--;
        return true;
    }
    for (;;) {
        cJSON *child = new_node(ps);
        if (!child) return false;
        if (close == '}') {
            size_t key_len; /* a key's length has no field in cJSON's node */
            if (ps->p >= ps->end || *ps->p != '"' || !(child->string = parse_string(ps, &key_len))) return false;
            skip_space(ps);
            if (ps->p >= ps->end || *ps->p != ':') return false;
            ps->p++;
            skip_space(ps);
        }
        if (!parse_value(ps, child)) return false;
        if (last) last->next = child, child->prev = last;
        else node->child = child;
        last = child;
        skip_space(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            skip_space(ps);
            continue;
        }
        if (ps->p < ps->end && *ps->p == close) break;
        return false;
    }
    node->child->prev = last; /* cJSON keeps the last element there */
    ps->p++;
    ps->depth--;
    return true;
}

static bool literal(parser *ps, const char *word, size_t n) {
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0) return false;
    ps->p += n;
    return true;
}

static bool parse_value(parser *ps, cJSON *node) {
    if (ps->p >= ps->end) return false;
    switch (*ps->p) {
    case '{': node->type = cJSON_Object; return parse_children(ps, node, '}');
    case '[': node->type = cJSON_Array; return parse_children(ps, node, ']');
    case '"': {
        size_t n;
        node->type = cJSON_String;
        if (!(node->valuestring = parse_string(ps, &n))) return false;
        node->valueint = n <= INT_MAX ? (int)n : 0; /* its length, for readers (jparse.h) */
        return true;
    }
    case 't': node->type = cJSON_True, node->valueint = 1; return literal(ps, "true", 4);
    case 'f': node->type = cJSON_False; return literal(ps, "false", 5);
    case 'n': node->type = cJSON_NULL; return literal(ps, "null", 4);
    default: return parse_number(ps, node);
    }
}

void jparse_free(jparse_tree *tree) {
    if (!tree) return;
    for (jblock *b = tree->blocks, *next; b; b = next) {
        next = b->next;
        free(b);
    }
    free(tree);
}

cJSON *jparse(char *text, size_t len, jparse_tree **tree) {
    *tree = NULL;
    parser ps = {(unsigned char *)text, (unsigned char *)text + len, calloc(1, sizeof(jparse_tree)), 0};
    if (!ps.tree) return NULL;
    /* The first block holds a typical trace whole: its nodes (and strings with escapes) take
     * 1.3 times its text (2.1 at most in the bench corpora). Eight times, as once, held each
     * trace's unused part for as long as it waited on a judge: +17 MB with 256 in flight. */
    size_t first = len < JPARSE_FIRST_BLOCK_MAX / 2 ? 2 * len + 1024 : JPARSE_FIRST_BLOCK_MAX;
    cJSON *root = take(&ps, sizeof *root, first);
    if (root) memset(root, 0, sizeof *root);
    skip_space(&ps);
    bool ok = root && parse_value(&ps, root);
    skip_space(&ps);
    if (!ok || ps.p != ps.end) {
        jparse_free(ps.tree);
        /* Every NUL before where it stopped is a quote of ours: a NUL of the text stops the
         * parser where it stands (no token or string holds one), and a string's quote is
         * made a NUL only once the string is read whole, before the place it stopped at. So
         * the text needs no look for a NUL before parsing. */
        size_t parsed = (size_t)((char *)ps.p - text);
        for (char *q = text; (q = memchr(q, '\0', parsed - (size_t)(q - text))) != NULL;) *q++ = '"';
        return NULL;
    }
    *tree = ps.tree;
    return root;
}
