/* text.h - the text primitives of docs/metrics.md, in plain C so they can be tested and fuzzed
 * without Lua. sandbox/text.c also exposes them to plugins as `assay.text`. */
#ifndef ASSAY_TEXT_H
#define ASSAY_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../host/base/buf.h"

/* Finds the next token (docs/metrics.md: a maximal run of ASCII letters, digits or bytes >= 0x80)
 * at or after *pos. Returns false when there is none; else sets *start, *len and moves
 * *pos past it. The token is not lowercased: see text_lower_into. */
bool text_next_token(const char *s, size_t n, size_t *pos, size_t *start, size_t *len);
/* Tokens hashed and compared a word at a time: tokens are short, and every token of every
 * text goes through here. The last word is read whole and masked, so the caller keeps
 * TEXT_SLACK readable bytes after every token it passes (an arena with room to spare).
 *
 * Hashes are never output. They index open-addressed tables (Sets, TF-IDF), so a trace or a
 * plugin that knew which tokens collide in the low bits could make every insert scan the
 * whole table (seconds inside one C call). So the hash is keyed with text_hash_key, random
 * per process (text_hash_init, called before any state opens), and ends in a full 64-bit
 * finaliser, so that without the key no set of tokens collides more than chance allows. */
#define TEXT_SLACK 8

extern uint64_t text_hash_key;
/* Draws text_hash_key from the system's random source, once per process. */
void text_hash_init(void);

static inline uint64_t text_mix(uint64_t h, uint64_t w) {
    h = (h ^ w) * 0xFF51AFD7ED558CCDu;
    return h ^ (h >> 32);
}

/* The first n bytes (0..8) of the word w, as loaded by memcpy. */
static inline uint64_t text_word_prefix(uint64_t w, size_t n) {
    /* two shifts of 4n: one of 8n would be 64 for n = 8, which C leaves undefined */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    return w & ~(~0ull >> (4 * n) >> (4 * n));
#else
    return w & ~(~0ull << (4 * n) << (4 * n));
#endif
}

/* The end of every hash below: every output bit depends on every input bit. */
static inline uint64_t text_hash_finish(uint64_t h) {
    h ^= h >> 33;
    h *= 0xC4CEB9FE1A85EC53u;
    h ^= h >> 29;
    h *= 0xFF51AFD7ED558CCDu;
    return h ^ (h >> 32);
}

/* slack: s has TEXT_SLACK readable bytes past n; else the last bytes are copied out. */
static inline uint64_t text_hash_words(const char *s, size_t n, bool slack) {
    uint64_t h = text_hash_key ^ n, w = 0;
    for (; n > 8; s += 8, n -= 8) {
        memcpy(&w, s, 8);
        h = text_mix(h, w);
    }
    if (slack) memcpy(&w, s, 8);
    else if (n) memcpy(&w, s, n); /* the same bytes where the word load puts them */
    return text_hash_finish(text_mix(h, text_word_prefix(w, n)));
}

static inline uint64_t text_hash_slack(const char *s, size_t n) { return text_hash_words(s, n, true); }

/* text_hash_words of a token of n <= 8 bytes that is in hand as the word w (its bytes as
 * memcpy loads them, zero past n): the same hash, without the bytes in memory. */
static inline uint64_t text_hash_word(uint64_t w, size_t n) { return text_hash_finish(text_mix(text_hash_key ^ n, w)); }

/* Are the n bytes at a and b equal? Both with TEXT_SLACK bytes to spare. A word at a time
 * and inline: a third of a text's tokens are longer than a word, and a call to memcmp cost
 * them more than the compare. */
static inline bool text_equal_slack(const char *a, const char *b, size_t n) {
    uint64_t x, y;
    for (; n > 8; a += 8, b += 8, n -= 8) {
        memcpy(&x, a, 8);
        memcpy(&y, b, 8);
        if (x != y) return false;
    }
    memcpy(&x, a, 8);
    memcpy(&y, b, 8);
    return text_word_prefix(x ^ y, n) == 0;
}

/* docs/metrics.md's token bytes lowercased, 0 for every other byte. */
extern const unsigned char text_token_lower[256];

/* The same test on eight bytes at once, for the loops that tokenize whole texts (a byte
 * at a time through the table cost ten instructions a byte). TEXT_WORDS says whether the
 * word functions below may be used: they count bytes from the low end of a word loaded by
 * memcpy, which is the first byte only on a little-endian machine. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ && defined(__GNUC__)
#define TEXT_WORDS 1
#else
#define TEXT_WORDS 0
#endif
#define TEXT_ONES 0x0101010101010101u
#define TEXT_HIGHS 0x8080808080808080u

/* 0x80 in each byte of x (seven-bit bytes) that lies in lo..hi: neither sum carries
 * into the next byte. */
static inline uint64_t text_bytes_in(uint64_t x, unsigned lo, unsigned hi) {
    return (x + TEXT_ONES * (0x80 - lo)) & ~(x + TEXT_ONES * (0x7F - hi)) & TEXT_HIGHS;
}

/* 0x80 in each byte of w that is a token byte: >= 0x80, an ASCII letter or digit. */
static inline uint64_t text_token_bytes(uint64_t w) {
    uint64_t x = w & ~TEXT_HIGHS;
    return (w & TEXT_HIGHS) | text_bytes_in(x, '0', '9') | text_bytes_in(x | TEXT_ONES * 0x20, 'a', 'z');
}

/* w with its ASCII capitals lowercased (bit 5 set), other bytes as they are. */
static inline uint64_t text_lower_word(uint64_t w) {
    uint64_t capitals = text_bytes_in(w & ~TEXT_HIGHS, 'A', 'Z') & ~w; /* & ~w: not a byte >= 0x80 */
    return w | capitals >> 2;
}

/* How many bytes of a word, from its first, come before the first byte marked 0x80 in m
 * (m != 0). */
static inline size_t text_bytes_before(uint64_t m) { return (size_t)__builtin_ctzll(m) >> 3; }

/* The token bytes of 64 bytes as one bit each (bit k: p[k]), for the scanner below. Why:
 * with a bit per byte, a token's start and end are each one count of zeros, where a loop
 * over the bytes (or over words of them) paid a test and a branch for every word of every
 * token, and finding tokens was a third of tokenizing a text into a Set. */
#if defined(__SSE2__)
#include <emmintrin.h>
/* Token bytes of 16 bytes: a byte >= 0x80 has its top bit already; a digit or (with bit 5
 * set) a letter is moved to the bottom of the signed range, where one compare finds it. */
static inline uint64_t text_token_mask16(const unsigned char *p) {
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
    __m128i digit = _mm_cmplt_epi8(_mm_add_epi8(v, _mm_set1_epi8((char)(0x80 - '0'))), _mm_set1_epi8((char)(0x80 + 10)));
    __m128i letter = _mm_cmplt_epi8(_mm_add_epi8(_mm_or_si128(v, _mm_set1_epi8(0x20)), _mm_set1_epi8((char)(0x80 - 'a'))),
                                    _mm_set1_epi8((char)(0x80 + 26)));
    return (uint32_t)_mm_movemask_epi8(_mm_or_si128(v, _mm_or_si128(digit, letter)));
}
static inline uint64_t text_token_mask64(const unsigned char *p) {
    return text_token_mask16(p) | text_token_mask16(p + 16) << 16 | text_token_mask16(p + 32) << 32 |
           text_token_mask16(p + 48) << 48;
}
#elif TEXT_WORDS
static inline uint64_t text_token_mask64(const unsigned char *p) {
    uint64_t mask = 0;
    for (int k = 0; k < 8; k++) {
        uint64_t w;
        memcpy(&w, p + 8 * k, 8);
        /* the 0x80 of byte j lands on bit 56 + j */
        mask |= ((text_token_bytes(w) >> 7) * 0x0102040810204080u >> 56) << (8 * k);
    }
    return mask;
}
#else
static inline uint64_t text_token_mask64(const unsigned char *p) {
    uint64_t mask = 0;
    for (int k = 0; k < 64; k++) mask |= (uint64_t)(text_token_lower[p[k]] != 0) << k;
    return mask;
}
#endif

/* Finds the tokens of a text in order, a block of 64 bytes at a time (the last block is
 * copied out and padded, so nothing past the text is read). */
typedef struct text_scan {
    const unsigned char *p;
    size_t n, base; /* mask describes p[base .. base + 64) */
    uint64_t mask;  /* the token bytes of that block not passed yet */
} text_scan;

static inline uint64_t text_scan_block(const unsigned char *p, size_t n, size_t base) {
    if (n - base >= 64) return text_token_mask64(p + base);
    unsigned char tail[64] = {0}; /* 0 is not a token byte */
    memcpy(tail, p + base, n - base);
    return text_token_mask64(tail);
}

static inline void text_scan_init(text_scan *sc, const char *s, size_t n) {
    sc->p = (const unsigned char *)s;
    sc->n = n;
    sc->base = 0;
    sc->mask = n ? text_scan_block(sc->p, n, 0) : 0;
}

/* The next token: sets *start and *len, or returns false at the end of the text. */
static inline bool text_scan_next(text_scan *sc, size_t *start, size_t *len) {
    while (!sc->mask) {
        if (sc->n - sc->base <= 64) return false;
        sc->base += 64;
        sc->mask = text_scan_block(sc->p, sc->n, sc->base);
    }
    unsigned bit = (unsigned)__builtin_ctzll(sc->mask);
    uint64_t after = ~(sc->mask >> bit); /* its first set bit ends the token */
    *start = sc->base + bit;
    if (after && bit + (unsigned)__builtin_ctzll(after) < 64) {
        unsigned end = bit + (unsigned)__builtin_ctzll(after);
        sc->mask &= ~0ull << end;
        *len = end - bit;
        return true;
    }
    /* it runs to the end of the block (which is then not the padded last one): follow it */
    for (;;) {
        if (sc->n - sc->base <= 64) { /* it ends with the text */
            sc->mask = 0;
            *len = sc->n - *start;
            return true;
        }
        sc->base += 64;
        sc->mask = text_scan_block(sc->p, sc->n, sc->base);
        if (~sc->mask) {
            unsigned end = (unsigned)__builtin_ctzll(~sc->mask);
            sc->mask &= ~0ull << end;
            *len = sc->base + end - *start;
            return true;
        }
    }
}

/* Copies the len token bytes at from to `to`, lowercased. from has `readable` bytes (>= len);
 * `to` has 7 bytes to spare past len (a word is written whole). */
static inline void text_copy_lower(unsigned char *to, const unsigned char *from, size_t len, size_t readable) {
    size_t k = 0;
#if TEXT_WORDS
    for (uint64_t w; k < len && k + 8 <= readable; k += 8) {
        memcpy(&w, from + k, 8);
        w = text_lower_word(w);
        memcpy(to + k, &w, 8);
    }
#else
    (void)readable;
#endif
    for (; k < len; k++) to[k] = text_token_lower[from[k]];
}
/* text_copy_lower, returning text_hash_slack of the bytes written: when every word of the
 * token can be read whole, each is hashed as it is lowercased rather than read again. */
static inline uint64_t text_copy_lower_hash(unsigned char *to, const unsigned char *from, size_t len, size_t readable) {
#if TEXT_WORDS
    if (len && ((len + 7) & ~(size_t)7) <= readable) {
        uint64_t h = text_hash_key ^ len, w;
        size_t k = 0;
        for (; len - k > 8; k += 8) {
            memcpy(&w, from + k, 8);
            w = text_lower_word(w);
            memcpy(to + k, &w, 8);
            h = text_mix(h, w);
        }
        memcpy(&w, from + k, 8);
        w = text_lower_word(w);
        memcpy(to + k, &w, 8);
        return text_hash_finish(text_mix(h, text_word_prefix(w, len - k)));
    }
#endif
    text_copy_lower(to, from, len, readable);
    return text_hash_slack((const char *)to, len);
}
/* Copies n bytes into out with ASCII letters lowercased. */
void text_lower_into(char *out, const char *s, size_t n);
/* Is the (lowercase) word one of the stopwords of docs/metrics.md? */
bool text_is_stopword(const char *w, size_t n);

/* The stopwords by (length, first letter), built by text_hash_init and read-only after it
 * (text.c): a token is compared with the two or three words that share both. Each word is
 * two 64-bit words of its bytes, zero past its end. */
#define TEXT_STOPWORD_MAX_LEN 10 /* "yourselves" */
typedef struct text_stopword_bucket { unsigned char first, count; } text_stopword_bucket;
extern text_stopword_bucket text_stopword_buckets[TEXT_STOPWORD_MAX_LEN + 1][26];
extern uint64_t text_stopword_words[][2];

/* text_is_stopword for a word with TEXT_SLACK readable bytes past its end, once
 * text_hash_init ran: for the loops that tokenize whole texts. Inline: it runs for every
 * token, and the call was a third of it. */
static inline bool text_is_stopword_slack(const char *w, size_t n) {
    if (n - 1 >= TEXT_STOPWORD_MAX_LEN || (unsigned char)(w[0] - 'a') >= 26) return false;
    text_stopword_bucket b = text_stopword_buckets[n][w[0] - 'a'];
    if (!b.count) return false;
    uint64_t lo, hi = 0;
    memcpy(&lo, w, 8);
    lo = text_word_prefix(lo, n < 8 ? n : 8);
    if (n > 8) {
        memcpy(&hi, w + 8, 8);
        hi = text_word_prefix(hi, n - 8);
    }
    for (unsigned i = b.first; i < (unsigned)b.first + b.count; i++)
        if (text_stopword_words[i][0] == lo && text_stopword_words[i][1] == hi) return true;
    return false;
}

/* text_is_stopword_slack of a word of n <= 8 bytes in hand as w (zero past n). */
static inline bool text_is_stopword_word(uint64_t w, size_t n) {
    unsigned first = (unsigned)(w & 0xFF) - 'a'; /* TEXT_WORDS: the first byte is the low one */
    if (n - 1 >= 8 || first >= 26) return false;
    text_stopword_bucket b = text_stopword_buckets[n][first];
    for (unsigned i = b.first; i < (unsigned)b.first + b.count; i++)
        if (text_stopword_words[i][0] == w) return true; /* [1] is 0 for words of <= 8 bytes */
    return false;
}

/* URL key and domain of docs/metrics.md, appended to out. */
void text_url_key(const char *url, size_t n, buf *out);
void text_url_domain(const char *url, size_t n, buf *out);

/* Calls fn for each sentence of docs/metrics.md (trimmed, non-empty). */
typedef void (*text_span_fn)(const char *s, size_t n, void *ctx);
void text_sentences(const char *s, size_t n, text_span_fn fn, void *ctx);

/* Calls fn for each citation marker "[k]" in s; k saturates at LLONG_MAX. */
typedef void (*text_marker_fn)(long long k, size_t offset, size_t len, void *ctx);
void text_markers(const char *s, size_t n, text_marker_fn fn, void *ctx);
/* Does s (a trimmed sentence) begin with a marker "[k]": a reference-list entry? */
bool text_starts_with_marker(const char *s, size_t n);

/* Unicode characters in s: bytes that do not continue a UTF-8 sequence. */
size_t text_char_count(const char *s, size_t n);

#endif
