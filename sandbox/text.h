/* text.h - the text primitives of SPEC §5, in plain C so they can be tested and fuzzed
 * without Lua. sandbox/text.c also exposes them to plugins as `assay.text`. */
#ifndef ASSAY_TEXT_H
#define ASSAY_TEXT_H

#include <stdbool.h>
#include <stddef.h>

#include "../host/buf.h"

/* Finds the next token (SPEC §5: a maximal run of ASCII letters, digits or bytes >= 0x80)
 * at or after *pos. Returns false when there is none; else sets *start, *len and moves
 * *pos past it. The token is not lowercased: see text_lower_into. */
bool text_next_token(const char *s, size_t n, size_t *pos, size_t *start, size_t *len);
/* SPEC §5's token bytes lowercased, 0 for every other byte. */
extern const unsigned char text_token_lower[256];
/* Copies n bytes into out with ASCII letters lowercased. */
void text_lower_into(char *out, const char *s, size_t n);
/* Is the (lowercase) word one of SPEC §5.6's stopwords? */
bool text_is_stopword(const char *w, size_t n);

/* URL key and domain of SPEC §5, appended to out. */
void text_url_key(const char *url, size_t n, buf *out);
void text_url_domain(const char *url, size_t n, buf *out);

/* Calls fn for each sentence of SPEC §5.4 (trimmed, non-empty). */
typedef void (*text_span_fn)(const char *s, size_t n, void *ctx);
void text_sentences(const char *s, size_t n, text_span_fn fn, void *ctx);

/* Calls fn for each citation marker "[k]" in s; k saturates at LLONG_MAX. */
typedef void (*text_marker_fn)(long long k, size_t offset, size_t len, void *ctx);
void text_markers(const char *s, size_t n, text_marker_fn fn, void *ctx);

/* Unicode characters in s: bytes that do not continue a UTF-8 sequence. */
size_t text_char_count(const char *s, size_t n);

#endif
