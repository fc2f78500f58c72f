/* jscan.c - a validating scan of one JSON text that finds a trace's id without building a
 * tree, so that a worker leaves another shard's or a sampled-out trace unparsed: with N
 * shards every task reads the whole input, and parsing the (N-1)/N of it that the task then
 * drops cost more than scoring its own part once N passed a handful.
 *
 * The scan may be stricter than cJSON, never looser. It answers JSCAN_ID only for a text
 * that cJSON surely parses as an object (the RFC 8259 grammar, with JSON's four whitespace
 * characters only; numbers of at most JSCAN_MAX_NUMBER characters, since cJSON reads at most
 * 63; no surrogate escapes, whose pairing cJSON checks; no byte-order mark; nesting well
 * under cJSON's limit) whose last top-level "id" member is a string without escapes: its
 * bytes are then exactly cJSON's valuestring. Anything else is JSCAN_UNSURE and the caller
 * parses, which also reports what is wrong with the text. The caller has checked that the
 * text is valid UTF-8 without NUL bytes.
 */
#include "jscan.h"

#include <stdbool.h>

#define JSCAN_MAX_DEPTH 64
#define JSCAN_MAX_NUMBER 40

typedef struct scan {
    const unsigned char *p, *end;
} scan;

static void skip_space(scan *s) {
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t')) s->p++;
}

static bool eat(scan *s, unsigned char c) {
    if (s->p >= s->end || *s->p != c) return false;
    s->p++;
    return true;
}

static int hex_digit(unsigned char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* At the opening quote: moves past the closing one. *escaped tells whether the string's
 * bytes differ from its value. Raw control characters are refused (cJSON takes them; JSON
 * does not), and so is any \u escape of a surrogate half. */
static bool scan_string(scan *s, bool *escaped) {
    *escaped = false;
    if (!eat(s, '"')) return false;
    while (s->p < s->end) {
        unsigned char c = *s->p++;
        if (c == '"') return true;
        if (c < 0x20) return false;
        if (c != '\\') continue;
        *escaped = true;
        if (s->p >= s->end) return false;
        c = *s->p++;
        if (c == 'u') {
            if (s->end - s->p < 4) return false;
            int v = 0;
            for (int i = 0; i < 4; i++) {
                int d = hex_digit(*s->p++);
                if (d < 0) return false;
                v = v * 16 + d;
            }
            if (v >= 0xD800 && v <= 0xDFFF) return false;
        } else if (c != '"' && c != '\\' && c != '/' && c != 'b' && c != 'f' && c != 'n' && c != 'r' && c != 't') {
            return false;
        }
    }
    return false;
}

static bool scan_digits(scan *s) {
    const unsigned char *start = s->p;
    while (s->p < s->end && *s->p >= '0' && *s->p <= '9') s->p++;
    return s->p > start;
}

/* -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)? */
static bool scan_number(scan *s) {
    const unsigned char *start = s->p;
    eat(s, '-');
    if (eat(s, '0')) {
        if (s->p < s->end && *s->p >= '0' && *s->p <= '9') return false;
    } else if (!scan_digits(s)) {
        return false;
    }
    if (eat(s, '.') && !scan_digits(s)) return false;
    if (eat(s, 'e') || eat(s, 'E')) {
        if (!eat(s, '+')) eat(s, '-');
        if (!scan_digits(s)) return false;
    }
    return s->p - start <= JSCAN_MAX_NUMBER;
}

static bool scan_literal(scan *s, const char *word, long len) {
    if (s->end - s->p < len) return false;
    for (long i = 0; i < len; i++)
        if (s->p[i] != (unsigned char)word[i]) return false;
    s->p += len;
    return true;
}

static bool scan_value(scan *s, int depth);

/* At '{' or '[': moves past the matching close. */
static bool scan_container(scan *s, int depth) {
    if (depth >= JSCAN_MAX_DEPTH) return false;
    bool object = *s->p == '{';
    unsigned char close = object ? '}' : ']';
    s->p++;
    skip_space(s);
    if (eat(s, close)) return true;
    for (;;) {
        if (object) {
            bool escaped;
            if (!scan_string(s, &escaped)) return false;
            skip_space(s);
            if (!eat(s, ':')) return false;
            skip_space(s);
        }
        if (!scan_value(s, depth + 1)) return false;
        skip_space(s);
        if (eat(s, close)) return true;
        if (!eat(s, ',')) return false;
        skip_space(s);
    }
}

/* At the first byte of a value (whitespace skipped): moves past it. */
static bool scan_value(scan *s, int depth) {
    if (s->p >= s->end) return false;
    bool escaped;
    switch (*s->p) {
    case '{':
    case '[': return scan_container(s, depth);
    case '"': return scan_string(s, &escaped);
    case 't': return scan_literal(s, "true", 4);
    case 'f': return scan_literal(s, "false", 5);
    case 'n': return scan_literal(s, "null", 4);
    default: return scan_number(s);
    }
}

/* One member of the top-level object, the "id" looked at on the way. */
static bool scan_member(scan *s, const char **id, size_t *id_len) {
    const unsigned char *key = s->p + 1;
    bool escaped;
    if (!scan_string(s, &escaped)) return false;
    /* an escaped key might spell "id" */
    if (escaped) return false;
    bool is_id = s->p - key == 3 && key[0] == 'i' && key[1] == 'd';
    skip_space(s);
    if (!eat(s, ':')) return false;
    skip_space(s);
    const unsigned char *value = s->p;
    if (!scan_value(s, 1)) return false;
    if (is_id) { /* the last "id" is the trace's; one that is not a plain string leaves none */
        bool plain = *value == '"' && scan_string(&(scan){value, s->p}, &escaped) && !escaped;
        *id = plain ? (const char *)value + 1 : NULL;
        *id_len = plain ? (size_t)(s->p - value) - 2 : 0;
    }
    return true;
}

jscan_answer jscan_object_id(const char *text, size_t len, const char **id, size_t *id_len) {
    scan s = {(const unsigned char *)text, (const unsigned char *)text + len};
    *id = NULL;
    *id_len = 0;
    skip_space(&s);
    if (!eat(&s, '{')) return JSCAN_UNSURE;
    skip_space(&s);
    if (!eat(&s, '}')) {
        for (;;) {
            if (!scan_member(&s, id, id_len)) return JSCAN_UNSURE;
            skip_space(&s);
            if (eat(&s, '}')) break;
            if (!eat(&s, ',')) return JSCAN_UNSURE;
            skip_space(&s);
        }
    }
    skip_space(&s);
    if (s.p != s.end || !*id) {
        *id = NULL;
        return JSCAN_UNSURE;
    }
    return JSCAN_ID;
}
