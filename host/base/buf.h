/* buf.h - growable byte buffer and JSON text emitters.
 *
 * A leaf utility shared by host/ and sandbox/: it knows nothing of Lua or libuv.
 * Allocation failure is sticky: once a grow fails, `failed` is set, further appends are
 * ignored and the caller checks `buf_failed()` once at the end instead of after every call.
 */
#ifndef ASSAY_BUF_H
#define ASSAY_BUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct buf {
    char *data;     /* owned; NUL-terminated when len > 0 or after buf_cstr() */
    size_t len;
    size_t cap;
    bool failed;
    bool is_fixed;  /* memory borrowed from the caller: never reallocated, overflow fails */
} buf;

void buf_init(buf *b);
/* Wraps caller-owned memory of cap bytes; buf_free leaves it alone. */
void buf_init_fixed(buf *b, char *memory, size_t cap);
void buf_free(buf *b);
void buf_reset(buf *b);                      /* len = 0, keeps capacity */
bool buf_reserve(buf *b, size_t extra);
void buf_append(buf *b, const void *p, size_t n);
void buf_puts(buf *b, const char *s);
/* buf_puts of a string literal, its length known when compiling (no strlen) */
#define buf_lit(b, lit) buf_append((b), "" lit "", sizeof(lit) - 1)
void buf_putc(buf *b, char c);
void buf_printf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *buf_cstr(buf *b);
/* The first bytes of b (at most outlen - 1) as one printable line: control bytes become
 * spaces. For error messages that quote a response body. */
void buf_excerpt(const buf *b, char *out, size_t outlen);                /* never NULL; "" for an empty buffer */
char *buf_steal(buf *b);                     /* caller frees; buffer becomes empty */
/* Appends n bytes of s for a terminal: control bytes other than tab and newline (escape
 * sequences could move the cursor, retitle the window or hide text) become \xNN. */
void buf_put_printable(buf *b, const char *s, size_t n);
static inline bool buf_failed(const buf *b) { return b->failed; }

/* Length of the valid UTF-8 sequence at s (n bytes available), or 0 if it is not one
 * (overlong forms, surrogates and code points past U+10FFFF are not). */
size_t buf_utf8_sequence_length(const unsigned char *s, size_t n);
/* The offset of the first NUL byte or invalid UTF-8 sequence in text, or n when there is
 * none: the one UTF-8 validator (the JSON writer and the exports replace what it refuses). */
size_t buf_utf8_invalid_at(const char *text, size_t n);

/* JSON emitters. Strings are escaped per RFC 8259; invalid UTF-8 becomes U+FFFD so that
 * every line we write is valid JSON whatever a plugin or a trace put in a string. */
void buf_json_string(buf *b, const char *s, size_t n);
void buf_json_cstring(buf *b, const char *s); /* NULL writes null */
/* Shortest text that parses back to the same double; NaN and infinities write null
 * because JSON cannot represent them. */
void buf_json_number(buf *b, double d);
void buf_json_integer(buf *b, long long v);

#endif
