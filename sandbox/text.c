/* text.c - the text primitives of docs/metrics.md (tokens, stopwords, URL keys, sentences, citation
 * markers, TF-IDF cosine) and the `assay.text` module that exposes them to plugins.
 *
 * The metric logic stays in the Lua plugins; what is here is the byte-level work that is
 * slow or error-prone in Lua. Every function is deterministic: nothing depends on a Lua
 * table's hash order, so scores are identical whatever state or thread computes them.
 */
#include "text.h"
#include "regex.h"
#include "sandbox_internal.h"

#include <lauxlib.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------- plain C primitives */

/* docs/metrics.md's token bytes: ASCII letters and digits, and every byte from 0x80. A table, since
 * every byte of every text passes through here, several times per trace. */
static const unsigned char token_bytes[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0,
    0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0,
    0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
};

static inline bool is_token_byte(unsigned char c) { return token_bytes[c]; }

/* Each token byte lowercased; 0 for the bytes that end a token. One lookup per byte both
 * finds the token and lowercases it. */
const unsigned char text_token_lower[256] = {
#define R16(b) (b), (b) + 1, (b) + 2, (b) + 3, (b) + 4, (b) + 5, (b) + 6, (b) + 7, (b) + 8, (b) + 9, \
               (b) + 10, (b) + 11, (b) + 12, (b) + 13, (b) + 14, (b) + 15
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', 0, 0, 0, 0, 0, 0,
    0, 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o',
    'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 0, 0, 0, 0, 0,
    0, 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o',
    'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 0, 0, 0, 0, 0,
    R16(0x80), R16(0x90), R16(0xA0), R16(0xB0), R16(0xC0), R16(0xD0), R16(0xE0), R16(0xF0),
#undef R16
};

static inline bool is_space(unsigned char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

bool text_next_token(const char *s, size_t n, size_t *pos, size_t *start, size_t *len) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = *pos;
    while (i < n && !is_token_byte(p[i])) i++;
    if (i >= n) { *pos = n; return false; }
    size_t j = i;
    while (j < n && is_token_byte(p[j])) j++;
    *start = i;
    *len = j - i;
    *pos = j;
    return true;
}

void text_lower_into(char *out, const char *s, size_t n) {
    size_t i = 0;
#if TEXT_WORDS
    if (n >= 8) { /* a host, a word at a time (for every URL key), the last word overlapping */
        for (uint64_t w;; i += 8) {
            if (n - i < 8) i = n - 8;
            memcpy(&w, s + i, 8);
            w = text_lower_word(w);
            memcpy(out + i, &w, 8);
            if (i + 8 == n) return;
        }
    }
#endif
    for (; i < n; i++) {
        char c = s[i];
        out[i] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
    }
}

/* docs/metrics.md. */
static const char *const stopwords[] = {
    "a", "about", "above", "after", "again", "against", "all", "am", "an", "and", "any", "are",
    "as", "at", "be", "because", "been", "before", "being", "below", "between", "both", "but",
    "by", "can", "could", "did", "do", "does", "doing", "down", "during", "each", "few", "for",
    "from", "further", "had", "has", "have", "having", "he", "her", "here", "hers", "herself",
    "him", "himself", "his", "how", "i", "if", "in", "into", "is", "it", "its", "itself", "just",
    "me", "more", "most", "my", "myself", "no", "nor", "not", "now", "of", "off", "on", "once",
    "only", "or", "other", "our", "ours", "ourselves", "out", "over", "own", "same", "she",
    "should", "so", "some", "such", "than", "that", "the", "their", "theirs", "them",
    "themselves", "then", "there", "these", "they", "this", "those", "through", "to", "too",
    "under", "until", "up", "very", "was", "we", "were", "what", "when", "where", "which",
    "while", "who", "whom", "why", "will", "with", "would", "you", "your", "yours", "yourself",
    "yourselves",
};

#define STOPWORD_COUNT (sizeof stopwords / sizeof *stopwords)

/* Runs for every token of every text: built once, before any state opens (text_hash_init).
 * The test itself is inline in text.h. */
text_stopword_bucket text_stopword_buckets[TEXT_STOPWORD_MAX_LEN + 1][26];
uint64_t text_stopword_words[STOPWORD_COUNT][2];

static pthread_once_t stopword_once = PTHREAD_ONCE_INIT;

static void stopwords_index(void) {
    size_t at = 0;
    for (size_t len = 1; len <= TEXT_STOPWORD_MAX_LEN; len++)
        for (int c = 0; c < 26; c++) {
            text_stopword_buckets[len][c].first = (unsigned char)at;
            for (size_t i = 0; i < STOPWORD_COUNT; i++)
                if (strlen(stopwords[i]) == len && stopwords[i][0] == 'a' + c) {
                    char padded[16] = {0};
                    memcpy(padded, stopwords[i], len);
                    memcpy(text_stopword_words[at++], padded, sizeof padded);
                }
            text_stopword_buckets[len][c].count = (unsigned char)(at - text_stopword_buckets[len][c].first);
        }
}

uint64_t text_hash_key = 0x9E3779B97F4A7C15u;

static pthread_once_t hash_key_once = PTHREAD_ONCE_INIT;

static void hash_key_draw(void) {
    uint64_t key = 0;
    FILE *f = fopen("/dev/urandom", "rb");
    if (f) {
        if (fread(&key, sizeof key, 1, f) != 1) key = 0;
        fclose(f);
    }
    /* without a random source, the clock and an address still differ between runs */
    if (!key) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        key = ((uint64_t)ts.tv_nsec << 32) ^ (uint64_t)ts.tv_sec ^ (uint64_t)(uintptr_t)&key;
    }
    text_hash_key ^= key;
}

void text_hash_init(void) {
    pthread_once(&hash_key_once, hash_key_draw);
    pthread_once(&stopword_once, stopwords_index);
}

bool text_is_stopword(const char *w, size_t n) {
    if (n == 0 || n > TEXT_STOPWORD_MAX_LEN) return false;
    pthread_once(&stopword_once, stopwords_index);
    char padded[TEXT_STOPWORD_MAX_LEN + TEXT_SLACK] = {0}; /* the slack the word test reads */
    memcpy(padded, w, n);
    return text_is_stopword_slack(padded, n);
}

/* Splits url into the parts the key is made of. All spans point into url. */
typedef struct url_parts {
    const char *host; size_t host_len;
    const char *path; size_t path_len;
    const char *query; size_t query_len; /* without '?'; query == NULL when absent */
} url_parts;

/* A byte of a scheme after its first letter (RFC 3986): a letter, a digit, '+', '-' or '.'. */
static bool is_scheme_byte(unsigned char c) { return (c < 0x80 && text_token_lower[c]) || c == '+' || c == '-' || c == '.'; }

/* Where the part of a URL that starts at s ends: at the first '?' or '#', and with slash
 * also at the first '/' (the host), or at n. Sixteen bytes at a time with SSE2 (the last
 * sixteen read again, overlapping), else a word at a time: every trace asks for the key
 * of every result's URL, in two evaluators, and a byte at a time that was 3% of a trace. */
static inline size_t url_part_end(const char *s, size_t n, bool slash) {
    size_t i = 0;
#if defined(__SSE2__) && defined(__GNUC__)
    if (n >= 16) {
        __m128i stops = _mm_set1_epi8(slash ? '/' : '?');
        for (;; i += 16) {
            if (n - i < 16) i = n - 16; /* the last block, overlapping what was looked at */
            __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
            __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('?')), _mm_cmpeq_epi8(v, _mm_set1_epi8('#'))),
                                       _mm_cmpeq_epi8(v, stops));
            unsigned found = (unsigned)_mm_movemask_epi8(hit);
            if (found) return i + (size_t)__builtin_ctz(found);
            if (i + 16 == n) return n;
        }
    }
#endif
#if TEXT_WORDS
    if (n - i >= 8) /* i = 0: shorter than a vector, or no SSE2 */
        for (uint64_t w, x, found;; i += 8) {
            if (n - i < 8) i = n - 8;
            memcpy(&w, s + i, 8);
            x = w & ~TEXT_HIGHS;
            found = text_bytes_in(x, '?', '?') | text_bytes_in(x, '#', '#') | (slash ? text_bytes_in(x, '/', '/') : 0);
            if ((found &= ~w) != 0) return i + text_bytes_before(found); /* & ~w: not a byte >= 0x80 */
            if (i + 8 == n) return n;
        }
#endif
    while (i < n && s[i] != '?' && s[i] != '#' && !(slash && s[i] == '/')) i++;
    return i;
}

/* The scheme is a letter and scheme bytes before "://"; the fragment goes first, then the
 * host ends at the first '/' or '?', the path at the first '?'. Equivalently, in one pass:
 * the host ends at the first of '/', '?', '#', the path at the first '?' or '#' after it,
 * the query at the first '#' after that. */
static void url_split(const char *url, size_t n, url_parts *out) {
    while (n && is_space((unsigned char)url[0])) url++, n--;
    while (n && is_space((unsigned char)url[n - 1])) n--;
    uint64_t w = 0; /* "http://" and "https://" (of any case) at once: nearly every URL */
    if (n >= 8) memcpy(&w, url, 8);
    if (TEXT_WORDS && n >= 8 && (w | 0x2020202020u) == 0x2F2F3A7370747468u) {
        url += 8, n -= 8;
    } else if (TEXT_WORDS && n >= 8 && ((w | 0x20202020u) & 0xFFFFFFFFFFFFFFu) == 0x2F2F3A70747468u) {
        url += 7, n -= 7;
    } else if (n && ((url[0] | 32) >= 'a' && (url[0] | 32) <= 'z')) {
        size_t i = 1;
        while (i < n && is_scheme_byte((unsigned char)url[i])) i++;
        if (n - i >= 3 && url[i] == ':' && url[i + 1] == '/' && url[i + 2] == '/') url += i + 3, n -= i + 3;
    }
    size_t host = url_part_end(url, n, true), path = host;
    if (path < n && url[path] == '/') path += url_part_end(url + path, n - path, false);
    out->host = url;
    out->host_len = host;
    out->path = url + host;
    out->path_len = path - host;
    out->query = NULL;
    out->query_len = 0;
    if (path < n && url[path] == '?') {
        const char *q = url + path + 1, *fragment = memchr(q, '#', n - path - 1);
        out->query = q;
        out->query_len = fragment ? (size_t)(fragment - q) : n - path - 1;
    }
}

/* Appends the host lowercased, without "www." and without a ":80"/":443" port; with
 * keep_other_port false any port is dropped (the domain). */
static void url_append_host(const url_parts *u, bool keep_other_port, buf *out) {
    const char *h = u->host;
    size_t n = u->host_len;
    if (n >= 4 && (h[0] | 32) == 'w' && (h[1] | 32) == 'w' && (h[2] | 32) == 'w' && h[3] == '.')
        h += 4, n -= 4;
    const char *colon = NULL;
    for (size_t i = n; i > 0; i--) {
        if (h[i - 1] == ':') { colon = h + i - 1; break; }
        if (h[i - 1] < '0' || h[i - 1] > '9') break;
    }
    if (colon) {
        size_t port_len = n - (size_t)(colon - h) - 1;
        bool default_port = (port_len == 2 && memcmp(colon + 1, "80", 2) == 0) ||
                            (port_len == 3 && memcmp(colon + 1, "443", 3) == 0);
        if (default_port || !keep_other_port) n = (size_t)(colon - h);
    }
    if (!buf_reserve(out, n)) return;
    text_lower_into(out->data + out->len, h, n);
    out->len += n;
    out->data[out->len] = '\0';
}

void text_url_key(const char *url, size_t n, buf *out) {
    url_parts u;
    url_split(url, n, &u);
    url_append_host(&u, true, out);
    size_t path_len = u.path_len;
    if (path_len && u.path[path_len - 1] == '/') path_len--;
    buf_append(out, u.path, path_len);
    if (!u.query) return;
    bool first = true;
    const char *p = u.query, *end = u.query + u.query_len;
    while (p <= end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        size_t len = (size_t)(stop - p);
        if (!(len >= 4 && memcmp(p, "utm_", 4) == 0)) {
            buf_putc(out, first ? '?' : '&');
            buf_append(out, p, len);
            first = false;
        }
        if (!amp) break;
        p = amp + 1;
    }
}

void text_url_domain(const char *url, size_t n, buf *out) {
    url_parts u;
    url_split(url, n, &u);
    url_append_host(&u, false, out);
}

static void emit_trimmed(const char *s, size_t n, text_span_fn fn, void *ctx) {
    while (n && is_space((unsigned char)s[0])) s++, n--;
    while (n && is_space((unsigned char)s[n - 1])) n--;
    if (n) fn(s, n, ctx);
}

/* The bytes of w that may end a sentence ('\n', '.', '!', '?'), each marked 0x80. */
static inline uint64_t sentence_ends(uint64_t w) {
    uint64_t x = w & ~TEXT_HIGHS;
    return (text_bytes_in(x, '\n', '\n') | text_bytes_in(x, '!', '!') | text_bytes_in(x, '.', '.') |
            text_bytes_in(x, '?', '?')) & ~w; /* & ~w: not a byte >= 0x80 */
}

void text_sentences(const char *s, size_t n, text_span_fn fn, void *ctx) {
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
#if TEXT_WORDS
        /* the text between ends a word at a time: a report has an end every 80 bytes or so */
        for (uint64_t w, found; n - i >= 8; i += 8) {
            memcpy(&w, s + i, 8);
            if ((found = sentence_ends(w)) != 0) {
                i += text_bytes_before(found);
                break;
            }
        }
        if (i == n) break;
#endif
        char c = s[i];
        if (c == '\n') {
            emit_trimmed(s + start, i - start, fn, ctx);
            start = i + 1;
        } else if ((c == '.' || c == '!' || c == '?') && i + 1 < n && is_space((unsigned char)s[i + 1])) {
            emit_trimmed(s + start, i + 1 - start, fn, ctx);
            start = i + 1;
        }
    }
    if (start < n) emit_trimmed(s + start, n - start, fn, ctx);
}

void text_markers(const char *s, size_t n, text_marker_fn fn, void *ctx) {
    for (size_t i = 0; i < n; i++) {
        const char *open = memchr(s + i, '[', n - i);
        if (!open) return;
        i = (size_t)(open - s);
        size_t j = i + 1;
        long long k = 0;
        while (j < n && s[j] >= '0' && s[j] <= '9') {
            int d = s[j] - '0';
            k = k > (LLONG_MAX - d) / 10 ? LLONG_MAX : k * 10 + d;
            j++;
        }
        if (j > i + 1 && j < n && s[j] == ']') {
            fn(k, i, j + 1 - i, ctx);
            i = j;
        }
    }
}

size_t text_char_count(const char *s, size_t n) {
    size_t count = 0;
    for (size_t i = 0; i < n; i++) count += ((unsigned char)s[i] & 0xC0) != 0x80;
    return count;
}

/* ------------------------------------------------------------------ Lua: token lists */

/* Pushes the tokens of the string at idx: as an array, or as a set {token = true}: a new
 * table, or, for a set, the table at idx + 1 when one is given (text.content_set(s, into)
 * adds to a set without building another). [-0, +1, m] */
static int push_tokens(lua_State *L, int idx, bool content_only, bool as_set) {
    size_t n;
    const char *s = lua_type(L, idx) == LUA_TSTRING ? lua_tolstring(L, idx, &n) : (n = 0, "");
    if (as_set && tset_is(L, idx + 1)) {
        tset_add_text(L, idx + 1, s, n, content_only);
        lua_pushvalue(L, idx + 1);
        return 1;
    }
    if (as_set && !lua_isnoneornil(L, idx + 1)) {
        lazy_check_table(L, idx + 1);
        lua_pushvalue(L, idx + 1);
    } else if (as_set) {
        /* texts hold about one distinct token per twelve bytes: sized so that a set is
         * rarely rehashed while it fills */
        lua_createtable(L, 0, (int)(n / 12 < 4096 ? n / 12 : 4096));
    } else {
        lua_createtable(L, (int)(n / 6 < 8192 ? n / 6 : 8192), 0);
    }
    size_t pos = 0, start, len;
    lua_Integer i = 0;
    char small[64]; /* most tokens: lowercased here, no heap copy */
    while (text_next_token(s, n, &pos, &start, &len)) {
        if (len <= sizeof small) {
            text_lower_into(small, s + start, len);
            if (content_only && text_is_stopword(small, len)) continue;
            lua_pushlstring(L, small, len);
        } else { /* longer than any stopword */
            luaL_Buffer b;
            text_lower_into(luaL_buffinitsize(L, &b, len), s + start, len);
            luaL_pushresultsize(&b, len);
        }
        if (as_set) {
            lua_pushboolean(L, 1);
            lua_rawset(L, -3);
        } else {
            lua_rawseti(L, -2, ++i);
        }
    }
    return 1;
}

/* text.tokens(s) -> {token...}: T(s) of docs/metrics.md, repeats kept. Non-strings give {}. */
static int l_tokens(lua_State *L) { return push_tokens(L, 1, false, false); }
/* text.content_tokens(s) -> {token...}: C(s), T(s) without stopwords. */
static int l_content_tokens(lua_State *L) { return push_tokens(L, 1, true, false); }
/* text.token_set(s [, into]) -> {token = true}: set(T(s)), added to `into` when given. */
static int l_token_set(lua_State *L) { return push_tokens(L, 1, false, true); }
/* text.content_set(s [, into]) -> {token = true}: set(C(s)), added to `into` when given. */
static int l_content_set(lua_State *L) { return push_tokens(L, 1, true, true); }

/* text.is_stopword(word) -> boolean (the word is compared as given: pass it lowercased) */
static int l_is_stopword(lua_State *L) {
    size_t n;
    const char *w = luaL_checklstring(L, 1, &n);
    lua_pushboolean(L, text_is_stopword(w, n));
    return 1;
}

/* ------------------------------------------------------------------------ Lua: sets */

/* text.set(list) -> {value = true} */
static int l_set(lua_State *L) {
    lazy_check_table(L, 1);
    lua_Integer n = (lua_Integer)lua_rawlen(L, 1);
    lua_createtable(L, 0, (int)(n < INT_MAX ? n : INT_MAX));
    for (lua_Integer i = 1; i <= n; i++) {
        if (lua_rawgeti(L, 1, i) == LUA_TNIL) { lua_pop(L, 1); continue; }
        lua_pushboolean(L, 1);
        lua_rawset(L, -3);
    }
    return 1;
}

static lua_Integer set_size(lua_State *L, int idx) {
    lua_Integer count = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        count++;
    }
    return count;
}

/* Counts the keys of `small` present in `large`: the caller picks which set to walk. */
static lua_Integer set_intersection_size(lua_State *L, int small, int large) {
    lua_Integer count = 0;
    lua_pushnil(L);
    while (lua_next(L, small)) {
        lua_pop(L, 1);
        lua_pushvalue(L, -1);
        if (lua_rawget(L, large) != LUA_TNIL) count++;
        lua_pop(L, 1);
    }
    return count;
}

/* The size of the Set S, or of the table set at idx when S is NULL. */
static lua_Integer any_size(lua_State *L, const tset *S, int idx) {
    if (S) return tset_count(S);
    lazy_check_table(L, idx);
    return set_size(L, idx);
}

/* |a ∩ b| when a (at 1) or b (at 2) is a Set. */
static lua_Integer with_set_intersection(lua_State *L, const tset *a, const tset *b) {
    return a ? tset_intersection_size(L, a, b, 2) : tset_intersection_size(L, b, NULL, 1);
}

/* text.size(set) -> number of keys (or members of a Set) */
static int l_size(lua_State *L) {
    lua_pushinteger(L, any_size(L, tset_test(L, 1), 1));
    return 1;
}

/* The index of the smaller of two sets, found by walking both in step: a query against a
 * large context costs the query's size, not the context's. */
static int smaller_set(lua_State *L, int a, int b) {
    lua_pushnil(L);
    lua_pushnil(L);
    int ka = lua_gettop(L) - 1, kb = ka + 1;
    for (;;) {
        lua_pushvalue(L, ka);
        if (!lua_next(L, a)) break;
        lua_pop(L, 1);
        lua_replace(L, ka);
        lua_pushvalue(L, kb);
        if (!lua_next(L, b)) {
            a = b;
            break;
        }
        lua_pop(L, 1);
        lua_replace(L, kb);
    }
    lua_settop(L, ka - 1);
    return a;
}

/* text.intersection_size(a, b) -> |a ∩ b| */
static int l_intersection_size(lua_State *L) {
    const tset *a = tset_test(L, 1), *b = tset_test(L, 2);
    if (a || b) {
        luaL_checkany(L, 2);
        lua_pushinteger(L, with_set_intersection(L, a, b));
        return 1;
    }
    lazy_check_table(L, 1);
    lazy_check_table(L, 2);
    int small = smaller_set(L, 1, 2);
    lua_pushinteger(L, set_intersection_size(L, small, small == 1 ? 2 : 1));
    return 1;
}

/* text.jaccard(a, b) -> |a ∩ b| / |a ∪ b|, 1 when both are empty (docs/metrics.md) */
static int l_jaccard(lua_State *L) {
    const tset *a = tset_test(L, 1), *b = tset_test(L, 2);
    lua_Integer na = any_size(L, a, 1), nb = any_size(L, b, 2), inter;
    if (a || b) inter = with_set_intersection(L, a, b);
    else inter = na <= nb ? set_intersection_size(L, 1, 2) : set_intersection_size(L, 2, 1);
    lua_Integer uni = na + nb - inter;
    lua_pushnumber(L, uni == 0 ? 1.0 : (double)inter / (double)uni);
    return 1;
}

/* text.add_all(dst, src) -> dst, with every key of src set to true in dst */
static int l_add_all(lua_State *L) {
    lua_settop(L, 2);
    if (tset_is(L, 1)) {
        tset_add_all(L, 1, 2);
        lua_settop(L, 1);
        return 1;
    }
    lazy_check_table(L, 1);
    if (tset_is(L, 2)) {
        tset_into_table(L, 1, 2);
        lua_settop(L, 1);
        return 1;
    }
    lazy_check_table(L, 2);
    lua_pushnil(L);
    while (lua_next(L, 2)) {
        lua_pop(L, 1);
        lua_pushvalue(L, -1);
        lua_pushboolean(L, 1);
        lua_rawset(L, 1);
    }
    lua_settop(L, 1);
    return 1;
}

/* text.counts(list) -> {value = occurrences} */
static int l_counts(lua_State *L) {
    lazy_check_table(L, 1);
    lua_Integer n = (lua_Integer)lua_rawlen(L, 1);
    lua_newtable(L);
    for (lua_Integer i = 1; i <= n; i++) {
        if (lua_rawgeti(L, 1, i) == LUA_TNIL) { lua_pop(L, 1); continue; }
        lua_pushvalue(L, -1);
        lua_Integer c = lua_rawget(L, -3) == LUA_TNUMBER ? lua_tointeger(L, -1) : 0;
        lua_pop(L, 1);
        lua_pushinteger(L, c + 1);
        lua_rawset(L, -3);
    }
    return 1;
}

/* text.ngrams(tokens, n) -> {"w1 w2 ...", ...}: the n-grams of one token list, in order */
static int l_ngrams(lua_State *L) {
    lazy_check_table(L, 1);
    lua_Integer n = luaL_checkinteger(L, 2);
    luaL_argcheck(L, n >= 1, 2, "n must be at least 1");
    lua_Integer len = (lua_Integer)lua_rawlen(L, 1);
    if (n > len) { /* no n-gram; also keeps i + n - 1 below from overflowing */
        lua_newtable(L);
        return 1;
    }
    lua_newtable(L);
    for (lua_Integer i = 1; i + n - 1 <= len; i++) {
        if (i % 256 == 0) sandbox_check_limits(L); /* len × n appends in all */
        luaL_Buffer b;
        luaL_buffinit(L, &b);
        for (lua_Integer j = 0; j < n; j++) {
            if (j) luaL_addchar(&b, ' ');
            lua_rawgeti(L, 1, i + j);
            luaL_addvalue(&b); /* errors on non-strings, as it should */
        }
        luaL_pushresult(&b);
        lua_rawseti(L, -2, i);
    }
    return 1;
}

/* --------------------------------------------------------------- Lua: URLs and markers */

/* Pushes fn(url). A key or domain is never longer than its URL, so a Lua buffer of that
 * size holds it: no C allocation that a Lua error could leak. [-0, +1, m] */
static void push_url(lua_State *L, const char *url, size_t n, void (*fn)(const char *, size_t, buf *)) {
    luaL_Buffer lb;
    buf out;
    buf_init_fixed(&out, luaL_buffinitsize(L, &lb, n + 1), n + 1);
    fn(url, n, &out);
    if (buf_failed(&out)) luaL_error(L, "URL key longer than its URL");
    luaL_pushresultsize(&lb, out.len);
}

void text_push_url_key(lua_State *L, const char *url, size_t n) { push_url(L, url, n, text_url_key); }

static int push_url_with(lua_State *L, void (*fn)(const char *, size_t, buf *)) {
    size_t n;
    const char *url = luaL_checklstring(L, 1, &n);
    push_url(L, url, n, fn);
    return 1;
}

/* text.url_key(url) -> key of docs/metrics.md ("HTTPS://www.Ex.com/a/?utm_x=1" -> "ex.com/a") */
static int l_url_key(lua_State *L) { return push_url_with(L, text_url_key); }
/* text.domain(url) -> the host of the key, without a port */
static int l_domain(lua_State *L) { return push_url_with(L, text_url_domain); }

typedef struct lua_list_ctx { lua_State *L; lua_Integer n; } lua_list_ctx;

static void push_sentence(const char *s, size_t n, void *ctx) {
    lua_list_ctx *c = ctx;
    lua_pushlstring(c->L, s, n);
    lua_rawseti(c->L, -2, ++c->n);
}

/* text.sentences(s) -> {sentence...} (docs/metrics.md) */
static int l_sentences(lua_State *L) {
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    lua_newtable(L);
    lua_list_ctx ctx = {L, 0};
    text_sentences(s, n, push_sentence, &ctx);
    return 1;
}

static void push_marker(long long k, size_t offset, size_t len, void *ctx) {
    (void)offset, (void)len;
    lua_list_ctx *c = ctx;
    lua_pushinteger(c->L, (lua_Integer)k);
    lua_rawseti(c->L, -2, ++c->n);
}

/* text.markers(s) -> {k...}: the numbers of the "[k]" markers in order, repeats kept */
static int l_markers(lua_State *L) {
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    lua_newtable(L);
    lua_list_ctx ctx = {L, 0};
    text_markers(s, n, push_marker, &ctx);
    return 1;
}

typedef struct strip_ctx { luaL_Buffer *b; const char *s; size_t copied; } strip_ctx;

static void skip_marker(long long k, size_t offset, size_t len, void *ctx) {
    (void)k;
    strip_ctx *c = ctx;
    luaL_addlstring(c->b, c->s + c->copied, offset - c->copied);
    c->copied = offset + len;
}

void text_push_stripped(lua_State *L, const char *s, size_t n) {
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    strip_ctx ctx = {&b, s, 0};
    text_markers(s, n, skip_marker, &ctx);
    luaL_addlstring(&b, s + ctx.copied, n - ctx.copied);
    luaL_pushresult(&b);
}

/* text.strip_markers(s) -> s with every "[k]" removed */
static int l_strip_markers(lua_State *L) {
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    text_push_stripped(L, s, n);
    return 1;
}

bool text_starts_with_marker(const char *s, size_t n) {
    size_t j = 1;
    while (j < n && s[j] >= '0' && s[j] <= '9') j++;
    return n > 2 && s[0] == '[' && j > 1 && j < n && s[j] == ']';
}

/* text.starts_with_marker(s) -> boolean: s (already trimmed) begins with "[k]" */
static int l_starts_with_marker(lua_State *L) {
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    lua_pushboolean(L, text_starts_with_marker(s, n));
    return 1;
}

/* text.char_count(s) -> number of Unicode characters (invalid bytes count as one each) */
static int l_char_count(lua_State *L) {
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    lua_pushinteger(L, (lua_Integer)text_char_count(s, n));
    return 1;
}

/* text.regex_find(pattern, s) -> boolean | nil, message
 * POSIX extended regular expression, matched anywhere in s, in time linear in s (regex.c).
 * Upvalue: the limits a long search looks at. */
static int l_regex_find(lua_State *L) {
    size_t pattern_len, n;
    const char *pattern = luaL_checklstring(L, 1, &pattern_len);
    const char *s = luaL_checklstring(L, 2, &n);
    char why[128];
    if (!regex_compile(L, pattern, pattern_len, why, sizeof why)) {
        lua_pushnil(L);
        lua_pushfstring(L, "invalid regex: %s", why);
        return 2;
    }
    lua_pushboolean(L, regex_search(L, -1, s, n, lua_touserdata(L, lua_upvalueindex(1))));
    return 1;
}

/* ----------------------------------------------------------------------- Lua: TF-IDF */

/* One distinct content token of the documents; its counts are in the parallel tfidf_term. */
typedef struct term {
    uint64_t hash;
    const char *text; /* lowercased copy in the arena */
    uint32_t len;
} term;

/* Counts the tokens of s and their bytes, one table lookup per byte. */
static void count_tokens(const char *s, size_t n, size_t *tokens, size_t *bytes) {
    const unsigned char *p = (const unsigned char *)s;
    size_t t = 0, b = 0;
    bool in = false;
    for (size_t i = 0; i < n; i++) {
        bool is = text_token_lower[p[i]] != 0;
        t += is && !in;
        b += is;
        in = is;
    }
    *tokens += t, *bytes += b;
}

/* The text of docs[d] ("" when it is not a string); it stays alive in docs. */
static const char *doc_text(lua_State *L, lua_Integer d, size_t *n) {
    lua_rawgeti(L, 1, d);
    const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, n) : (*n = 0, "");
    lua_pop(L, 1); /* still referenced by docs */
    return s;
}

void tfidf_end_doc(tfidf_entry *entries, uint32_t from, uint32_t to, const tfidf_term *terms) {
    for (uint32_t e = from; e < to; e++) entries[e].count = terms[entries[e].term].count;
}

/* Sums run per document in the order its terms first appear, so the result depends on the
 * documents only. idf depends on df alone, so it is computed once per value of df. */
void tfidf_push_cosines(lua_State *L, uint32_t ndoc, const uint32_t *doc_start, const tfidf_entry *entries,
                        const tfidf_term *terms) {
    double *idf = lua_newuserdatauv(L, ((size_t)ndoc + 1) * sizeof *idf, 0);
    for (uint32_t df = 1; df <= ndoc; df++) idf[df] = log((1.0 + (double)ndoc) / (1.0 + (double)df)) + 1.0;
    double norm0 = 0.0;
    lua_createtable(L, ndoc > 1 ? (int)(ndoc - 1 < INT32_MAX ? ndoc - 1 : INT32_MAX) : 0, 0);
    /* a Set's documents were counted over many calls, each within the time limit; this
     * one call walks them all, so it looks at the limits too */
    uint32_t since_check = 0;
    for (uint32_t d = 0; d < ndoc; d++) {
        since_check += doc_start[d + 1] - doc_start[d] + 1;
        if (since_check >= 65536) {
            since_check = 0;
            sandbox_check_limits(L);
        }
        double dot = 0.0, norm2 = 0.0;
        for (uint32_t e = doc_start[d]; e < doc_start[d + 1]; e++) {
            const tfidf_term *t = &terms[entries[e].term];
            double w = (double)entries[e].count * idf[t->df];
            norm2 += w * w;
            dot += w * (double)t->count0 * idf[t->df];
        }
        if (d == 0) {
            norm0 = norm2;
            continue;
        }
        double denominator = sqrt(norm0) * sqrt(norm2);
        lua_pushnumber(L, denominator == 0.0 ? 0.0 : dot / denominator);
        lua_rawseti(L, -2, (lua_Integer)d);
    }
    lua_remove(L, -2); /* the idf table */
}

/* text.tfidf_cosines(docs) -> {cos(d1, d2), ..., cos(d1, dN)}
 * docs/metrics.md: content tokens, idf(t) = ln((1+N)/(1+df(t))) + 1, vec[t] = count × idf, cosine
 * 0 when either vector is zero. One pass hashes every token into its term and counts it per
 * document (S:add_document does the same into a Set, tset.c). All scratch memory is one Lua
 * userdata, so it counts against the memory limit and cannot leak if an allocation raises. */
/* The scratch of tfidf_cosines, carved from one userdata. */
typedef struct tfidf_index {
    uint32_t *table;         /* term index + 1 per hash slot; 0 = empty slot */
    size_t slots;
    term *terms;
    tfidf_term *counts;      /* per term */
    uint32_t nterms;
    tfidf_entry *entries;    /* each document's distinct terms, documents one after another */
    uint32_t nentries;
    uint32_t *doc_start;     /* document d's entries start at doc_start[d] */
    char *arena;             /* the terms' lowercased text */
} tfidf_index;

/* The index of the term the len bytes at the arena's free end spell, added if new. */
static uint32_t tfidf_term_of(lua_State *L, tfidf_index *ix, size_t len) {
    uint64_t h = text_hash_slack(ix->arena, len);
    size_t slots = ix->slots, slot = (size_t)h & (slots - 1);
    unsigned probes = 0;
    for (; ix->table[slot]; slot = (slot + 1) & (slots - 1)) {
        if (++probes % 64 == 0) sandbox_check_limits(L); /* see TSET_LONG_PROBE */
        const term *c = &ix->terms[ix->table[slot] - 1];
        if (c->hash == h && c->len == len && text_equal_slack(c->text, ix->arena, len)) return ix->table[slot] - 1;
    }
    ix->terms[ix->nterms] = (term){h, ix->arena, (uint32_t)len};
    ix->table[slot] = ++ix->nterms;
    ix->arena += len;
    return ix->nterms - 1;
}

/* Counts the content tokens of document d (0-based) into the index. */
static void tfidf_add_doc(lua_State *L, tfidf_index *ix, uint32_t d, const char *s, size_t n) {
    ix->doc_start[d] = ix->nentries;
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    for (unsigned tokens = 0;; tokens++) {
        /* found and lowercased into the arena in one pass; kept there only if new */
        while (i < n && !text_token_lower[p[i]]) i++;
        if (i == n) break;
        if (tokens % 4096 == 4095) sandbox_check_limits(L);
        size_t len = 0;
        for (unsigned char c; i < n && (c = text_token_lower[p[i]]); i++) ix->arena[len++] = (char)c;
        if (text_is_stopword_slack(ix->arena, len)) continue;
        uint32_t t = tfidf_term_of(L, ix, len);
        tfidf_count(ix->counts, t, d, ix->entries, &ix->nentries);
    }
    tfidf_end_doc(ix->entries, ix->doc_start[d], ix->nentries, ix->counts);
}

static int l_tfidf_cosines(lua_State *L) {
    lazy_check_table(L, 1);
    lua_Integer ndocs = (lua_Integer)lua_rawlen(L, 1);
    luaL_argcheck(L, ndocs < (lua_Integer)UINT32_MAX, 1, "too many documents");
    uint32_t ndoc = (uint32_t)ndocs;
    size_t total_tokens = 0, total_bytes = 0;
    for (lua_Integer d = 1; d <= ndocs; d++) {
        size_t n;
        const char *s = doc_text(L, d, &n);
        count_tokens(s, n, &total_tokens, &total_bytes);
    }
    luaL_argcheck(L, total_tokens < UINT32_MAX / 2, 1, "too many tokens");
    tfidf_index ix = {.slots = 16};
    while (ix.slots < 2 * total_tokens) ix.slots *= 2;
    size_t bytes = ix.slots * sizeof(uint32_t) + total_tokens * (sizeof(term) + sizeof(tfidf_term) + sizeof(tfidf_entry)) +
                   ((size_t)ndoc + 1) * sizeof(uint32_t) + total_bytes + TEXT_SLACK;
    char *scratch = lua_newuserdatauv(L, bytes, 0);
    ix.terms = (term *)scratch; /* the 8-byte aligned parts first */
    ix.counts = (tfidf_term *)(ix.terms + total_tokens);
    ix.entries = (tfidf_entry *)(ix.counts + total_tokens);
    ix.table = (uint32_t *)(ix.entries + total_tokens);
    ix.doc_start = ix.table + ix.slots;
    ix.arena = (char *)(ix.doc_start + ndoc + 1);
    memset(ix.table, 0, ix.slots * sizeof *ix.table);
    memset(ix.counts, 0, total_tokens * sizeof *ix.counts);
    for (uint32_t d = 0; d < ndoc; d++) {
        size_t n;
        const char *s = doc_text(L, (lua_Integer)d + 1, &n);
        tfidf_add_doc(L, &ix, d, s, n);
    }
    ix.doc_start[ndoc] = ix.nentries;
    tfidf_push_cosines(L, ndoc, ix.doc_start, ix.entries, ix.counts);
    return 1;
}

int text_open(lua_State *L, const pattern_limits *limits) {
    text_hash_init();
    static const luaL_Reg functions[] = {
        {"tokens", l_tokens},
        {"content_tokens", l_content_tokens},
        {"token_set", l_token_set},
        {"content_set", l_content_set},
        {"is_stopword", l_is_stopword},
        {"set", l_set},
        {"size", l_size},
        {"intersection_size", l_intersection_size},
        {"jaccard", l_jaccard},
        {"add_all", l_add_all},
        {"counts", l_counts},
        {"ngrams", l_ngrams},
        {"url_key", l_url_key},
        {"domain", l_domain},
        {"sentences", l_sentences},
        {"markers", l_markers},
        {"strip_markers", l_strip_markers},
        {"starts_with_marker", l_starts_with_marker},
        {"char_count", l_char_count},
        {"tfidf_cosines", l_tfidf_cosines},
        {"Set", tset_new},
        {NULL, NULL},
    };
    static const luaL_Reg set_methods[] = {
        {"intersection_size", l_intersection_size},
        {"jaccard", l_jaccard},
        {NULL, NULL},
    };
    tset_open(L, set_methods);
    luaL_newlib(L, functions);
    lua_pushlightuserdata(L, (void *)limits);
    lua_pushcclosure(L, l_regex_find, 1);
    lua_setfield(L, -2, "regex_find");
    return 1;
}
