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

/* Numbers are written as the shortest of %.15g, %.16g and %.17g that reads back as the same
 * double. Formatting and reading back up to three times was a twentieth of what a trace
 * costs, so the 17 digits are made once (as %.16e would, below) and the 15- and 16-digit
 * forms are rounded from them: a dropped tail below or above half rounds the exact value
 * the same way, and only a tail of exactly half (…5 or …50, where the digits beyond the
 * 17th decide) is left to snprintf. Reading back is strtod's answer, computed without it
 * where that is exact. The result is byte for byte what the three snprintf calls and
 * strtod gave (tests/unit/test_text.c compares the two on random and edge-case doubles). */

/* The 17 significant digits of d > 0 and the decimal exponent of the first, as %.16e
 * writes them, without printf for the numbers records mostly hold (NUMBER_FAST_MIN ≤ d <
 * NUMBER_FAST_MAX): d = m·2^-shift exactly, so the digits are m·10^s / 2^shift rounded
 * half to even (glibc's %.16e is exact and rounds so too), with s ≤ 22 keeping m·10^s
 * within 128 bits. The rest go to snprintf. */
#define NUMBER_FAST_MIN 1e-5
#define NUMBER_FAST_MAX 1e15

__extension__ typedef unsigned __int128 number_u128;

static bool number_digits17_fast(double d, char digits[17], int *exp10) {
    static const uint64_t pow10[] = {1u, 10u, 100u, 1000u, 10000u, 100000u, 1000000u, 10000000u,
                                     100000000u, 1000000000u, 10000000000u, 100000000000u,
                                     1000000000000u, 10000000000000u, 100000000000000u,
                                     1000000000000000u, 10000000000000000u, 100000000000000000u,
                                     1000000000000000000u, 10000000000000000000u};
    if (!(d >= NUMBER_FAST_MIN && d < NUMBER_FAST_MAX)) return false;
    int k;
    double f = frexp(d, &k);                        /* d = f·2^k, 0.5 ≤ f < 1 */
    uint64_t m = (uint64_t)ldexp(f, 53);            /* exact: f has 53 bits */
    int shift = 53 - k;                             /* d = m / 2^shift, 3 ≤ shift ≤ 70 here */
    int e = (int)floor(log10(d));                   /* may be one off: corrected below */
    for (int tries = 0; tries < 3; tries++) {
        int s = 16 - e;
        if (s < 0 || s > 22) return false;
        number_u128 ten_s = s <= 19 ? (number_u128)pow10[s] : (number_u128)pow10[19] * pow10[s - 19];
        number_u128 product = (number_u128)m * ten_s;
        number_u128 q = product >> shift;
        if (q >= pow10[17]) { e++; continue; }
        if (q < pow10[16]) { e--; continue; }
        number_u128 rest = product - (q << shift), half = (number_u128)1 << (shift - 1);
        if (rest > half || (rest == half && (q & 1))) q++;
        if (q == pow10[17]) q = pow10[16], e++;     /* 9s carried into an 18th digit */
        uint64_t v = (uint64_t)q;
        for (int i = 16; i >= 0; i--) digits[i] = (char)('0' + v % 10), v /= 10;
        *exp10 = e;
        return true;
    }
    return false;
}

static void number_digits17(double d, char digits[17], int *exp10) {
    if (number_digits17_fast(d, digits, exp10)) return;
    char tmp[40];
    snprintf(tmp, sizeof tmp, "%.16e", d);
    const char *p = tmp;
    digits[0] = *p++;
    while (*p && (*p < '0' || *p > '9')) p++; /* the decimal point, whatever the locale's */
    for (int i = 1; i < 17; i++) digits[i] = *p++;
    p++; /* past the 'e' */
    bool negative = *p++ == '-';
    int x = 0;
    while (*p >= '0' && *p <= '9') x = x * 10 + (*p++ - '0');
    *exp10 = negative ? -x : x;
}

/* Whether p digits with exponent exp10 (of the first) read back as d > 0: strtod's
 * answer, computed as Clinger's fast path does when the digits fit in 53 bits and the
 * power of ten is exact in a double (one correctly rounded multiplication or division). */
static bool number_reads_back(const char *digits, int p, int exp10, double d, const char *text) {
    static const double exact10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                     1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    uint64_t mantissa = 0;
    for (int i = 0; i < p; i++) mantissa = mantissa * 10 + (uint64_t)(digits[i] - '0');
    int t = exp10 - (p - 1); /* the value is mantissa·10^t */
    if (mantissa <= (1ull << 53) && t >= -22 && t <= 22) {
        double v = t >= 0 ? (double)mantissa * exact10[t] : (double)mantissa / exact10[-t];
        return v == d;
    }
    return fabs(strtod(text, NULL)) == d;
}

/* digits rounded to p < 17 digits into out (exp10 moves up when 9s carry), or false when
 * the dropped tail is exactly half: then the exact value decides. */
static bool number_round(const char digits[17], int p, char out[17], int *exp10) {
    int tail = 0, half = 5;
    for (int i = p; i < 17; i++) tail = tail * 10 + (digits[i] - '0');
    for (int i = p + 1; i < 17; i++) half *= 10;
    if (tail == half) return false;
    memcpy(out, digits, (size_t)p);
    if (tail > half) {
        int i = p - 1;
        while (i >= 0 && out[i] == '9') out[i--] = '0';
        if (i >= 0) out[i]++;
        else out[0] = '1', (*exp10)++;
    }
    return true;
}

/* What "%.*g" writes for p significant digits with exponent exp10 (trailing zeros
 * dropped, '.' as the point); returns the length. */
static size_t number_format(char *out, bool negative, const char *digits, int p, int exp10) {
    int k = p; /* significant digits left once trailing zeros go */
    while (k > 1 && digits[k - 1] == '0') k--;
    char *o = out;
    if (negative) *o++ = '-';
    if (exp10 < -4 || exp10 >= p) {
        *o++ = digits[0];
        if (k > 1) *o++ = '.', memcpy(o, digits + 1, (size_t)k - 1), o += k - 1;
        int x = exp10 < 0 ? -exp10 : exp10;
        *o++ = 'e', *o++ = exp10 < 0 ? '-' : '+';
        if (x >= 100) *o++ = (char)('0' + x / 100);
        *o++ = (char)('0' + x / 10 % 10), *o++ = (char)('0' + x % 10);
    } else if (exp10 >= 0) {
        for (int i = 0; i <= exp10; i++) *o++ = i < k ? digits[i] : '0';
        if (k > exp10 + 1) *o++ = '.', memcpy(o, digits + exp10 + 1, (size_t)(k - exp10 - 1)), o += k - exp10 - 1;
    } else {
        *o++ = '0', *o++ = '.';
        for (int i = 0; i < -exp10 - 1; i++) *o++ = '0';
        memcpy(o, digits, (size_t)k), o += k;
    }
    *o = '\0';
    return (size_t)(o - out);
}

void buf_json_number(buf *b, double d) {
    if (!isfinite(d)) { buf_puts(b, "null"); return; }
    if (d == 0) { buf_puts(b, "0"); return; } /* also folds -0 */
    if (fabs(d) < 1e17 && d == (double)(long long)d) { /* range first: the cast of 1e308 is UB */
        buf_json_integer(b, (long long)d);
        return;
    }
    char digits17[17], digits[17], tmp[40];
    int exp17;
    number_digits17(fabs(d), digits17, &exp17);
    for (int p = 15; p <= 16; p++) {
        int exp10 = exp17;
        if (number_round(digits17, p, digits, &exp10)) {
            number_format(tmp, d < 0, digits, p, exp10);
            if (number_reads_back(digits, p, exp10, fabs(d), tmp)) {
                buf_puts(b, tmp);
                return;
            }
        } else {
            snprintf(tmp, sizeof tmp, "%.*g", p, d);
            if (strtod(tmp, NULL) == d) {
                buf_puts(b, tmp);
                return;
            }
        }
    }
    number_format(tmp, d < 0, digits17, 17, exp17);
    buf_puts(b, tmp);
}

void buf_json_integer(buf *b, long long v) {
    char tmp[24], *o = tmp + sizeof tmp;
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
    do *--o = (char)('0' + u % 10); while (u /= 10);
    if (v < 0) *--o = '-';
    buf_append(b, o, (size_t)(tmp + sizeof tmp - o));
}

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
