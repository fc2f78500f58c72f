/* buf.c - growable byte buffer and JSON text emitters (see buf.h). */
#include "buf.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void buf_init(buf *b) { memset(b, 0, sizeof *b); }

void buf_init_fixed(buf *b, char *memory, size_t cap) {
    buf_init(b);
    b->data = memory;
    b->cap = cap;
    b->is_fixed = true;
    if (cap) memory[0] = '\0';
}

void buf_free(buf *b) {
    if (!b->is_fixed) free(b->data);
    buf_init(b);
}

void buf_reset(buf *b) {
    b->len = 0;
    if (b->data) b->data[0] = '\0';
}

bool buf_reserve(buf *b, size_t extra) {
    if (b->failed) return false;
    if (extra > SIZE_MAX - b->len - 1) goto fail;
    size_t need = b->len + extra + 1;
    if (need <= b->cap) return true;
    if (b->is_fixed) goto fail;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *p = realloc(b->data, cap);
    if (!p) goto fail;
    b->data = p;
    b->cap = cap;
    return true;
fail:
    b->failed = true;
    return false;
}

void buf_append(buf *b, const void *p, size_t n) {
    if (!buf_reserve(b, n)) return;
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void buf_puts(buf *b, const char *s) { buf_append(b, s, strlen(s)); }

void buf_putc(buf *b, char c) {
    if (b->len + 1 < b->cap) { /* fast path: the common case in the emitters */
        b->data[b->len++] = c;
        b->data[b->len] = '\0';
        return;
    }
    buf_append(b, &c, 1);
}

void buf_printf(buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char small[256];
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) { b->failed = true; return; }
    if ((size_t)n < sizeof small) { buf_append(b, small, (size_t)n); return; }
    if (!buf_reserve(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

const char *buf_cstr(buf *b) { return b->data ? b->data : ""; }

char *buf_steal(buf *b) {
    char *p = b->data;
    if (!p) p = calloc(1, 1);
    buf_init(b);
    return p;
}

/* Length of the valid UTF-8 sequence at s (n bytes available), or 0 if invalid. Rejects
 * overlongs, surrogates and code points above U+10FFFF, as RFC 3629 requires. */
size_t buf_utf8_sequence_length(const unsigned char *s, size_t n) {
    unsigned char c = s[0];
    if (c < 0x80) return 1;
    size_t len;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) { len = 2; cp = c & 0x1F; }
    else if (c >= 0xE0 && c <= 0xEF) { len = 3; cp = c & 0x0F; }
    else if (c >= 0xF0 && c <= 0xF4) { len = 4; cp = c & 0x07; }
    else return 0;
    if (n < len) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000)) return 0;
    if (cp >= 0xD800 && cp <= 0xDFFF) return 0;
    if (cp > 0x10FFFF) return 0;
    return len;
}

size_t buf_utf8_invalid_at(const char *text, size_t n) {
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0;
    while (i < n) {
        if (i + 8 <= n) { /* the common case: a run of ASCII without NUL, 8 bytes at a time */
            uint64_t word;
            memcpy(&word, s + i, 8);
            if (!(word & 0x8080808080808080ull) && !((word - 0x0101010101010101ull) & ~word & 0x8080808080808080ull)) {
                i += 8;
                continue;
            }
        }
        if (s[i] == 0) return i;
        size_t len = buf_utf8_sequence_length(s + i, n - i);
        if (len == 0) return i;
        i += len;
    }
    return n;
}

void buf_json_string(buf *b, const char *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    if (!buf_reserve(b, n + 2)) return;
    buf_putc(b, '"');
    size_t i = 0;
    while (i < n) {
        /* copy the longest run that needs no escaping in one go */
        size_t start = i;
        while (i < n && p[i] >= 0x20 && p[i] < 0x80 && p[i] != '"' && p[i] != '\\') i++;
        if (i > start) buf_append(b, p + start, i - start);
        if (i >= n) break;
        unsigned char c = p[i];
        if (c >= 0x80) {
            size_t len = buf_utf8_sequence_length(p + i, n - i);
            if (len) buf_append(b, p + i, len), i += len;
            else buf_puts(b, "\xEF\xBF\xBD"), i++;
            continue;
        }
        switch (c) {
        case '"': buf_puts(b, "\\\""); break;
        case '\\': buf_puts(b, "\\\\"); break;
        case '\n': buf_puts(b, "\\n"); break;
        case '\r': buf_puts(b, "\\r"); break;
        case '\t': buf_puts(b, "\\t"); break;
        case '\b': buf_puts(b, "\\b"); break;
        case '\f': buf_puts(b, "\\f"); break;
        default: {
            char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            buf_append(b, esc, sizeof esc);
        }
        }
        i++;
    }
    buf_putc(b, '"');
}

void buf_json_cstring(buf *b, const char *s) {
    if (s) buf_json_string(b, s, strlen(s));
    else buf_puts(b, "null");
}

void buf_json_number(buf *b, double d) {
    if (!isfinite(d)) { buf_puts(b, "null"); return; }
    if (d == 0) { buf_puts(b, "0"); return; } /* also folds -0 */
    if (fabs(d) < 1e17 && d == (double)(long long)d) { /* range first: the cast of 1e308 is UB */
        buf_printf(b, "%lld", (long long)d);
        return;
    }
    char tmp[32];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, d);
        if (prec == 17 || strtod(tmp, NULL) == d) break;
    }
    buf_puts(b, tmp);
}

void buf_json_integer(buf *b, long long v) { buf_printf(b, "%lld", v); }

void buf_put_printable(buf *b, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && c != '\t' && c != '\n') || c == 0x7F) buf_printf(b, "\\x%02x", c);
        else buf_putc(b, (char)c);
    }
}

void buf_excerpt(const buf *b, char *out, size_t outlen) {
    if (outlen == 0) return;
    size_t n = b->len < outlen - 1 ? b->len : outlen - 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)b->data[i];
        out[i] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
    }
    out[n] = '\0';
}
