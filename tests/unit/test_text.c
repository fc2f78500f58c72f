/* Unit tests of the text primitives of docs/metrics.md (sandbox/text.c) and the JSON emitters
 * (host/base/buf.c). Expected values are worked out by hand from the definitions of docs/metrics.md. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../host/base/buf.h"
#include "../../sandbox/text.h"

static void assert_url_key(const char *url, const char *expected) {
    buf b;
    buf_init(&b);
    text_url_key(url, strlen(url), &b);
    assert_string_equal(buf_cstr(&b), expected);
    buf_free(&b);
}

static void assert_domain(const char *url, const char *expected) {
    buf b;
    buf_init(&b);
    text_url_domain(url, strlen(url), &b);
    assert_string_equal(buf_cstr(&b), expected);
    buf_free(&b);
}

static void test_url_key_matches_spec_example(void **state) {
    (void)state;
    assert_url_key("HTTPS://www.Example.com/a/?utm_source=x#top", "example.com/a");
    assert_url_key("http://example.com/a", "example.com/a");
}

static void test_url_key_normalisation_rules(void **state) {
    (void)state;
    assert_url_key("  https://example.com/  ", "example.com");          /* trim, trailing / */
    assert_url_key("ftp://Example.COM/Path/File", "example.com/Path/File"); /* path case kept */
    assert_url_key("https://example.com:443/x", "example.com/x");
    assert_url_key("http://example.com:80/x", "example.com/x");
    assert_url_key("http://example.com:8080/x", "example.com:8080/x");  /* other ports stay */
    assert_url_key("https://e.com/p?a=1&utm_medium=m&b=2", "e.com/p?a=1&b=2");
    assert_url_key("https://e.com/p/?utm_a=1&utm_b=2", "e.com/p");
    assert_url_key("https://e.com/p#frag?x=1", "e.com/p");               /* fragment first */
    assert_url_key("example.com/a/", "example.com/a");                    /* no scheme */
    assert_url_key("https://www.e.com//", "e.com/");                      /* only one / dropped */
    assert_url_key("", "");
}

static void test_domain_is_host_of_key_without_port(void **state) {
    (void)state;
    assert_domain("https://www.Example.com:8443/a?b", "example.com");
    assert_domain("example.org", "example.org");
}

/* docs/metrics.md's URL key (or, with domain, its domain) followed step by step, a byte at
 * a time, into out (room for n + 1 bytes): the reference the fast split is compared with. */
static bool spec_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }
static bool spec_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

static size_t spec_url_key(const char *u, size_t n, char *out, bool domain) {
    while (n && spec_space(u[0])) u++, n--; /* trim */
    while (n && spec_space(u[n - 1])) n--;
    size_t i = 0; /* a scheme: a letter, then letters, digits, + - . up to "://" */
    if (n && spec_alpha(u[0])) {
        i = 1;
        while (i < n && (spec_alpha(u[i]) || (u[i] >= '0' && u[i] <= '9') || u[i] == '+' || u[i] == '-' || u[i] == '.')) i++;
        if (i + 3 <= n && memcmp(u + i, "://", 3) == 0) u += i + 3, n -= i + 3;
    }
    for (i = 0; i < n; i++) /* the fragment */
        if (u[i] == '#') n = i;
    size_t host = 0;
    while (host < n && u[host] != '/' && u[host] != '?') host++;
    const char *h = u;
    size_t hn = host;
    if (hn >= 4 && (h[0] == 'w' || h[0] == 'W') && (h[1] == 'w' || h[1] == 'W') && (h[2] == 'w' || h[2] == 'W') && h[3] == '.')
        h += 4, hn -= 4;
    size_t colon = hn; /* a port: ':' and digits at the end of the host */
    while (colon > 0 && h[colon - 1] >= '0' && h[colon - 1] <= '9') colon--;
    if (colon > 0 && h[colon - 1] == ':') {
        size_t port = hn - colon;
        if (domain || (port == 2 && memcmp(h + colon, "80", 2) == 0) || (port == 3 && memcmp(h + colon, "443", 3) == 0))
            hn = colon - 1;
    }
    size_t len = 0;
    for (i = 0; i < hn; i++) out[len++] = h[i] >= 'A' && h[i] <= 'Z' ? (char)(h[i] + 32) : h[i];
    if (domain) return len;
    size_t path = host;
    while (path < n && u[path] != '?') path++;
    size_t path_end = path > host && u[path - 1] == '/' ? path - 1 : path;
    for (i = host; i < path_end; i++) out[len++] = u[i];
    bool first = true;
    for (size_t p = path + 1; p <= n && path < n;) { /* the parameters, without utm_ ones */
        size_t amp = p;
        while (amp < n && u[amp] != '&') amp++;
        if (!(amp - p >= 4 && memcmp(u + p, "utm_", 4) == 0)) {
            out[len++] = first ? '?' : '&';
            memcpy(out + len, u + p, amp - p);
            len += amp - p;
            first = false;
        }
        p = amp + 1;
    }
    return len;
}

/* The key and domain of random URLs made of the pieces that matter (schemes of either
 * case, "www.", ports, every separator, utm_ parameters, white space, UTF-8), each in a
 * block of exactly its size for AddressSanitizer, equal the reference's. */
static void test_url_keys_of_random_urls_follow_the_definition(void **state) {
    (void)state;
    static const char *const pieces[] = {"http", "HTTPS", "hTtP", "https://", "http:", "\x1a", "\x0f", "s3+x.y-z", "://", ":/", "www.", "WWW.", "wWw", ":80", ":443",
                                         ":8080", ":", "/", "//", "?", "#", "&", "utm_", "utm", "a=1", "Ex", "ample",
                                         ".COM", "0", " ", "\t", "\xc3\xa9", "\xff", "@", "%2F", "abcdefghijklmnop"};
    uint64_t x = 0x2545F4914F6CDD1Du;
    char url[256], want[300], got_key[300];
    for (int round = 0; round < 200000; round++) {
        size_t n = 0;
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        for (int k = (int)(x % 12); k >= 0; k--) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            const char *piece = pieces[(x >> 11) % (sizeof pieces / sizeof *pieces)];
            size_t len = strlen(piece);
            memcpy(url + n, piece, len);
            n += len;
        }
        for (int domain = 0; domain < 2; domain++) {
            char *copy = malloc(n ? n : 1);
            assert_non_null(copy);
            memcpy(copy, url, n);
            buf b;
            buf_init_fixed(&b, got_key, n + 1);
            (domain ? text_url_domain : text_url_key)(copy, n, &b);
            free(copy);
            assert_false(buf_failed(&b)); /* never longer than the URL */
            size_t want_len = spec_url_key(url, n, want, domain);
            if (b.len != want_len || memcmp(got_key, want, want_len) != 0)
                fail_msg("%s of \"%.*s\": \"%.*s\", want \"%.*s\"", domain ? "domain" : "key", (int)n, url, (int)b.len,
                         got_key, (int)want_len, want);
        }
    }
}

typedef struct collected { char items[16][64]; int n; } collected;

static void collect_span(const char *s, size_t n, void *ctx) {
    collected *c = ctx;
    if (c->n < 16) snprintf(c->items[c->n++], 64, "%.*s", (int)n, s);
}

static void test_sentences_split_after_punctuation_and_at_newlines(void **state) {
    (void)state;
    const char *r = "One. Two!Three? Four\nFive.\n\n  [1] Ref: https://a.b/c.d  \nv1.2 ok";
    collected c = {.n = 0};
    text_sentences(r, strlen(r), collect_span, &c);
    assert_int_equal(c.n, 6);
    assert_string_equal(c.items[0], "One.");
    assert_string_equal(c.items[1], "Two!Three?"); /* "!" not followed by whitespace */
    assert_string_equal(c.items[2], "Four");
    assert_string_equal(c.items[3], "Five.");
    assert_string_equal(c.items[4], "[1] Ref: https://a.b/c.d");
    assert_string_equal(c.items[5], "v1.2 ok");
}

static void test_sentences_keep_dot_without_following_space(void **state) {
    (void)state;
    const char *r = "v1.2 is out. Done";
    collected c = {.n = 0};
    text_sentences(r, strlen(r), collect_span, &c);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.items[0], "v1.2 is out.");
    assert_string_equal(c.items[1], "Done");
}

/* Spans as offsets into the text, for comparing two splitters. */
typedef struct spans { const char *base; size_t at[400][2]; int n; } spans;

static void collect_offsets(const char *s, size_t n, void *ctx) {
    spans *sp = ctx;
    assert_true(sp->n < 400);
    sp->at[sp->n][0] = (size_t)(s - sp->base);
    sp->at[sp->n++][1] = n;
}

static bool ascii_space(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

/* docs/metrics.md, a byte at a time: split after . ! ? followed by white space and at every
 * newline; trim; drop the empty ones. */
static void reference_sentences(const char *s, size_t n, spans *sp) {
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        bool end = i == n || s[i] == '\n';
        bool after = i < n && (s[i] == '.' || s[i] == '!' || s[i] == '?') && i + 1 < n && ascii_space(s[i + 1]);
        if (!end && !after) continue;
        size_t a = start, b = after ? i + 1 : i;
        while (a < b && ascii_space(s[a])) a++;
        while (b > a && ascii_space(s[b - 1])) b--;
        if (b > a) collect_offsets(s + a, b - a, sp);
        start = i + 1;
    }
}

static void reference_markers(const char *s, size_t n, spans *sp) {
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '[') continue;
        size_t j = i + 1;
        while (j < n && s[j] >= '0' && s[j] <= '9') j++;
        if (j > i + 1 && j < n && s[j] == ']') {
            collect_offsets(s + i, j + 1 - i, sp);
            i = j;
        }
    }
}

static void collect_marker_offsets(long long k, size_t offset, size_t len, void *ctx) {
    (void)k;
    spans *sp = ctx;
    collect_offsets(sp->base + offset, len, sp);
}

/* The word-at-a-time splitter and the memchr marker scan against the definitions, on
 * random texts made of the bytes that matter (ends, spaces, brackets, digits) and of bytes
 * >= 0x80 that equal an end once their high bit is dropped (0x8A, 0xAE, 0xA1, 0xBF). */
static void test_sentences_and_markers_match_the_definition(void **state) {
    (void)state;
    static const char alphabet[] = {'.', '!', '?', '\n', ' ', '\t', '\r', '[', ']', '1', '2', 'a', 'b',
                                    'Z', (char)0x8A, (char)0xAE, (char)0xA1, (char)0xBF, '\0'};
    uint64_t x = 0x9E3779B97F4A7C15u;
    char text[300];
    for (int round = 0; round < 8000; round++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        size_t n = (size_t)(x % 300);
        for (size_t i = 0; i < n; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            text[i] = (x >> 40) % 3 ? alphabet[(x >> 8) % sizeof alphabet] : (char)('c' + (x >> 20) % 20);
        }
        for (size_t from = 0; from < 9 && from <= n; from++) { /* every alignment of the words */
            static spans want, got;
            want = (spans){.base = text + from}, got = (spans){.base = text + from};
            reference_sentences(text + from, n - from, &want);
            text_sentences(text + from, n - from, collect_offsets, &got);
            assert_int_equal(got.n, want.n);
            assert_memory_equal(got.at, want.at, sizeof want.at[0] * (size_t)want.n);
            want = (spans){.base = text + from}, got = (spans){.base = text + from};
            reference_markers(text + from, n - from, &want);
            text_markers(text + from, n - from, collect_marker_offsets, &got);
            assert_int_equal(got.n, want.n);
            assert_memory_equal(got.at, want.at, sizeof want.at[0] * (size_t)want.n);
        }
    }
}

typedef struct markers { long long k[8]; int n; } markers;

static void collect_marker(long long k, size_t offset, size_t len, void *ctx) {
    (void)offset, (void)len;
    markers *m = ctx;
    if (m->n < 8) m->k[m->n++] = k;
}

static void test_markers_are_bracketed_decimal_integers(void **state) {
    (void)state;
    const char *s = "a [1][2] b [x] [] [3a] [04] [1, 2] [99999999999999999999999]";
    markers m = {.n = 0};
    text_markers(s, strlen(s), collect_marker, &m);
    assert_int_equal(m.n, 4);
    assert_int_equal(m.k[0], 1);
    assert_int_equal(m.k[1], 2);
    assert_int_equal(m.k[2], 4);
    assert_true(m.k[3] == 9223372036854775807LL); /* saturates, stays out of range */
}

static void test_tokens_split_on_ascii_punctuation_and_keep_utf8_words(void **state) {
    (void)state;
    const char *s = "Héllo, WORLD-2024 naïve_x 東京";
    const char *expected[] = {"Héllo", "WORLD", "2024", "naïve", "x", "東京"};
    size_t pos = 0, start, len;
    for (size_t i = 0; i < 6; i++) {
        assert_true(text_next_token(s, strlen(s), &pos, &start, &len));
        assert_int_equal(len, strlen(expected[i]));
        assert_memory_equal(s + start, expected[i], len);
    }
    assert_false(text_next_token(s, strlen(s), &pos, &start, &len));
    char lower[8];
    text_lower_into(lower, "WoRLD", 5);
    assert_memory_equal(lower, "world", 5);
}

/* The one-lookup table Sets tokenize with must agree with docs/metrics.md, byte by byte: ASCII
 * letters (lowercased), ASCII digits and every byte from 0x80 are token bytes. */
static void test_token_lower_table_is_spec_token_bytes_lowercased(void **state) {
    (void)state;
    for (int c = 0; c < 256; c++) {
        bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        bool token = letter || (c >= '0' && c <= '9') || c >= 0x80;
        int want = token ? (c >= 'A' && c <= 'Z' ? c + 32 : c) : 0;
        assert_int_equal(text_token_lower[c], want);
    }
}

/* The word-at-a-time test and lowercasing Sets tokenize with (text.h) must agree with the
 * table for every byte value at every position of a word, whatever its neighbours are. */
static void test_token_words_agree_with_table(void **state) {
    (void)state;
#if TEXT_WORDS
    static const unsigned char fillers[] = {0x00, ' ', 'A', 'z', '9', 0x7F, 0x80, 0xFF, '@', '['};
    for (size_t f = 0; f < sizeof fillers; f++)
        for (int pos = 0; pos < 8; pos++)
            for (int c = 0; c < 256; c++) {
                unsigned char bytes[8], lowered[8];
                memset(bytes, fillers[f], 8);
                bytes[pos] = (unsigned char)c;
                uint64_t w, marks = 0;
                memcpy(&w, bytes, 8);
                uint64_t lower = text_lower_word(w), found = text_token_bytes(w);
                memcpy(lowered, &lower, 8);
                for (int k = 0; k < 8; k++) {
                    unsigned char want = text_token_lower[bytes[k]];
                    assert_int_equal(lowered[k], want ? want : bytes[k]); /* other bytes as they are */
                    if (want) marks |= 0x80ull << (8 * k);
                }
                assert_true(found == marks);
                if (found) assert_int_equal(text_bytes_before(found), __builtin_ctzll(marks) / 8);
            }
#else
    skip(); /* a big-endian machine tokenizes a byte at a time */
#endif
}

/* docs/metrics.md's token byte, written out again here: the scanner below is checked
 * against the definition, not against the table it could share a mistake with. */
static bool spec_token_byte(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

/* The 64-byte masks the scanner finds tokens with: every byte value at every position, in
 * blocks of every byte the tokenizer treats differently. */
static void test_token_mask_marks_exactly_the_token_bytes(void **state) {
    (void)state;
    static const unsigned char fillers[] = {0x00, ' ', 'A', 'z', '9', 0x7F, 0x80, 0xFF, '@', '[', '/', ':', '`', '{'};
    unsigned char block[64];
    for (size_t f = 0; f < sizeof fillers; f++)
        for (int pos = 0; pos < 64; pos++)
            for (int c = 0; c < 256; c++) {
                memset(block, fillers[f], sizeof block);
                block[pos] = (unsigned char)c;
                uint64_t want = 0;
                for (int k = 0; k < 64; k++) want |= (uint64_t)spec_token_byte(block[k]) << k;
                assert_true(text_token_mask64(block) == want);
            }
}

/* The scanner gives the tokens of the definition at any length and alignment: random texts
 * (each in a block of exactly its size, so that AddressSanitizer sees any read past the
 * end), tokens across one and several 64-byte blocks, texts that are one token. The copy
 * lowercases exactly the token's bytes. */
static void check_scan(const unsigned char *text, size_t n) {
    unsigned char *s = malloc(n ? n : 1);
    assert_non_null(s);
    memcpy(s, text, n);
    text_scan scan;
    text_scan_init(&scan, (const char *)s, n);
    size_t i = 0, start, len;
    while (text_scan_next(&scan, &start, &len)) {
        while (i < n && !spec_token_byte(s[i])) i++;
        assert_true(i < n);
        size_t j = i;
        while (j < n && spec_token_byte(s[j])) j++;
        assert_int_equal(start, i);
        assert_int_equal(len, j - i);
        unsigned char out[600 + 8];
        assert_true(len <= 600);
        memset(out, 0xEE, sizeof out);
        text_copy_lower(out, s + start, len, n - start);
        for (size_t k = 0; k < len; k++) {
            unsigned char c = s[start + k];
            assert_int_equal(out[k], c >= 'A' && c <= 'Z' ? c + 32 : c);
        }
        i = j;
    }
    while (i < n && !spec_token_byte(s[i])) i++;
    assert_int_equal(i, n); /* no token left out */
    free(s);
}

static void test_token_scan_finds_the_tokens_of_the_definition(void **state) {
    (void)state;
    unsigned char text[600];
    uint64_t x = 0x9E3779B97F4A7C15u;
    static const unsigned char alphabet[] = " ,.-\n\t\"[]0Aa9zZ_@`{\x7f\x80\xc3\xa9\xff";
    for (int round = 0; round < 20000; round++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        size_t n = (size_t)(x % 300);
        unsigned spaces = (unsigned)(x >> 40) % 8; /* 0: long tokens, 7: mostly gaps */
        for (size_t k = 0; k < n; k++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            unsigned r = (unsigned)(x >> 20);
            text[k] = r % 8 < spaces ? alphabet[r / 8 % 9] : alphabet[9 + r / 8 % (sizeof alphabet - 10)];
        }
        check_scan(text, n);
    }
    /* one token of every length from 0 to 200, alone and between separators */
    for (size_t n = 0; n <= 200; n++) {
        memset(text, 'Q', n);
        check_scan(text, n);
        text[0] = ' ';
        if (n > 1) text[n - 1] = '.';
        check_scan(text, n);
    }
    /* a token ending exactly at each block edge, and one starting there */
    for (size_t edge = 60; edge <= 200; edge++) {
        memset(text, ' ', 260);
        memset(text + 10, 'b', edge - 10);
        memset(text + edge + 1, 'C', 50);
        check_scan(text, 260);
        check_scan(text, edge);
        check_scan(text, edge + 1);
    }
}

static void test_stopwords_are_exactly_spec_list(void **state) {
    (void)state;
    assert_true(text_is_stopword("the", 3));
    assert_true(text_is_stopword("yourselves", 10));
    assert_true(text_is_stopword("a", 1));
    assert_true(text_is_stopword("whom", 4));
    assert_false(text_is_stopword("The", 3)); /* callers lowercase first */
    assert_false(text_is_stopword("coral", 5));
    assert_false(text_is_stopword("", 0));
    assert_false(text_is_stopword("also", 4)); /* common, but not in §5.6 */
}

/* The word-at-a-time test the tokenizing loops use answers as text_is_stopword does, with
 * any bytes after the word: every stopword, every one-byte change, every prefix and every
 * one-letter extension of one. */
static void test_stopword_slack_agrees(void **state) {
    (void)state;
    (void)text_is_stopword("a", 1); /* builds the index (text_hash_init would also draw the key) */
    static const char *const words[] = {"a", "i", "the", "whom", "yourself", "ourselves", "yourselves",
                                        "themselves", "because", "between", "coral", "t", "thei"};
    for (size_t w = 0; w < sizeof words / sizeof *words; w++) {
        size_t n = strlen(words[w]);
        for (int fill = 0; fill < 2; fill++) {
            char word[32];
            memset(word, fill ? 'e' : 0x7f, sizeof word); /* slack: letters that could extend it, or junk */
            memcpy(word, words[w], n);
            for (size_t len = 1; len <= n + 1 && len < 24; len++)
                assert_int_equal(text_is_stopword_slack(word, len), text_is_stopword(word, len));
            for (size_t at = 0; at < n; at++) {
                char saved = word[at];
                for (char c = 'a'; c <= 'z'; c++) {
                    word[at] = c;
                    assert_int_equal(text_is_stopword_slack(word, n), text_is_stopword(word, n));
                }
                word[at] = saved;
            }
        }
    }
    assert_true(text_is_stopword_slack("yourselves\0\0\0\0\0\0\0\0", 10));
    assert_false(text_is_stopword_slack("yourselvez\0\0\0\0\0\0\0\0", 10));
    assert_false(text_is_stopword_slack("\0\0\0\0\0\0\0\0", 0));
}

/* The stopwords as docs/metrics.md lists them, read from the document itself: the inline
 * test must agree with the definition, not only with the function it was derived from. */
static size_t spec_stopwords(char words[200][16]) {
    FILE *f = fopen("docs/metrics.md", "r");
    assert_non_null(f);
    char line[256];
    size_t count = 0;
    bool in_section = false;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "## ", 3) == 0) {
            if (in_section) break;
            in_section = strcmp(line, "## Stopwords\n") == 0;
            continue;
        }
        if (!in_section) continue;
        for (char *w = strtok(line, " \n"); w; w = strtok(NULL, " \n")) {
            assert_true(count < 200 && strlen(w) < 16);
            snprintf(words[count++], 16, "%s", w);
        }
    }
    fclose(f);
    return count;
}

static bool in_list(char words[200][16], size_t count, const char *w, size_t n) {
    for (size_t i = 0; i < count; i++)
        if (strlen(words[i]) == n && memcmp(words[i], w, n) == 0) return true;
    return false;
}

/* Every word of up to three letters, and every listed word changed in one letter, cut or
 * extended by one, with slack bytes after it that could extend it or not. */
static void test_stopword_slack_is_the_documented_list(void **state) {
    (void)state;
    (void)text_is_stopword("a", 1); /* builds the index; text_hash_init would draw the hash key too early for a later test */
    static char words[200][16];
    size_t count = spec_stopwords(words);
    assert_int_equal(count, 126);
    char w[32];
    for (int fill = 0; fill < 2; fill++) {
        memset(w, fill ? 's' : 0, sizeof w);
        for (int a = 'a'; a <= 'z'; a++)
            for (int b = 'a' - 1; b <= 'z'; b++)
                for (int c = 'a' - 1; c <= 'z'; c++) {
                    size_t n = 1;
                    w[0] = (char)a;
                    if (b >= 'a') w[n++] = (char)b;
                    if (b >= 'a' && c >= 'a') w[n++] = (char)c;
                    assert_int_equal(text_is_stopword_slack(w, n), in_list(words, count, w, n));
                    memset(w, fill ? 's' : 0, sizeof w);
                }
        for (size_t i = 0; i < count; i++) {
            size_t n = strlen(words[i]);
            memset(w, fill ? 's' : 0, sizeof w);
            memcpy(w, words[i], n);
            assert_true(text_is_stopword_slack(w, n));
            for (size_t len = 1; len <= n + 1; len++)
                assert_int_equal(text_is_stopword_slack(w, len), in_list(words, count, w, len));
            for (size_t at = 0; at < n; at++) {
                char saved = w[at];
                for (char ch = 'a'; ch <= 'z'; ch++) {
                    w[at] = ch;
                    assert_int_equal(text_is_stopword_slack(w, n), in_list(words, count, w, n));
                }
                w[at] = saved;
            }
        }
    }
}

static void test_char_count_counts_code_points(void **state) {
    (void)state;
    assert_int_equal(text_char_count("héllo", strlen("héllo")), 5);
    assert_int_equal(text_char_count("東京", strlen("東京")), 2);
    assert_int_equal(text_char_count("\xff\xfe", 2), 2); /* invalid bytes count once each */
}

static void assert_number_text(double d, const char *expected) {
    buf b;
    buf_init(&b);
    buf_json_number(&b, d);
    assert_string_equal(buf_cstr(&b), expected);
    buf_free(&b);
}

static void test_numbers_print_shortest_round_trip(void **state) {
    (void)state;
    assert_number_text(0.1, "0.1");
    assert_number_text(1.0 / 3.0, "0.3333333333333333");
    assert_number_text(2.0 / 3.0, "0.6666666666666666");
    assert_number_text(1, "1");
    assert_number_text(-0.0, "0");
    assert_number_text(1e300, "1e+300");
    assert_number_text(123456789012345678.0, "1.2345678901234568e+17");
    assert_number_text(0.30000000000000004, "0.30000000000000004");
    double nan = strtod("nan", NULL);
    assert_number_text(nan, "null");
    for (double d = 1e-7; d < 1; d *= 1.37) {
        buf b;
        buf_init(&b);
        buf_json_number(&b, d);
        assert_true(strtod(buf_cstr(&b), NULL) == d);
        buf_free(&b);
    }
}

/* The definition buf_json_number must keep, written the slow way: the shortest of %.15g,
 * %.16g and %.17g that reads back as d, integers as %lld. */
static void reference_number(double d, char *out, size_t n) {
    if (!isfinite(d)) { snprintf(out, n, "null"); return; }
    if (d == 0) { snprintf(out, n, "0"); return; }
    if (fabs(d) < 1e17 && d == (double)(long long)d) { snprintf(out, n, "%lld", (long long)d); return; }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(out, n, "%.*g", prec, d);
        if (prec == 17 || strtod(out, NULL) == d) break;
    }
}

static void assert_number_as_reference(double d) {
    char want[64];
    reference_number(d, want, sizeof want);
    buf b;
    buf_init(&b);
    buf_json_number(&b, d);
    if (strcmp(buf_cstr(&b), want) != 0) fail_msg("%.17g: wrote %s, the definition gives %s", d, buf_cstr(&b), want);
    buf_free(&b);
}

/* Random bit patterns (every exponent), random fractions, values beside powers of ten
 * (where %g changes style and 9s carry), halves of the last digits (the ties left to
 * snprintf) and the integers around 2^53 and 1e17. */
static void test_numbers_equal_the_three_precision_definition(void **state) {
    (void)state;
    uint64_t x = 0x9E3779B97F4A7C15u;
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        double d;
        memcpy(&d, &x, sizeof d);
        assert_number_as_reference(d);
        assert_number_as_reference((double)(x >> 11) / 9007199254740992.0); /* [0, 1) */
        assert_number_as_reference((double)(x >> 11) / 9007199254740992.0 * 100 - 50);
    }
    for (int e = -320; e <= 308; e++) {
        double p = pow(10, e);
        assert_number_as_reference(p);
        assert_number_as_reference(nextafter(p, 0));
        assert_number_as_reference(nextafter(p, INFINITY));
        assert_number_as_reference(-p * 1.5);
        assert_number_as_reference(p * 9.9999999999999995);
        assert_number_as_reference(p * 1.00000000000000005);
        assert_number_as_reference(p * 0.12345678901234565);
        assert_number_as_reference(p * 0.1234567890123455);
    }
    for (long long v = -5; v <= 5; v++) {
        assert_number_as_reference(9007199254740992.0 + (double)v * 2);
        assert_number_as_reference(1e17 + (double)v * 16);
        assert_number_as_reference((double)v + 0.5);
        assert_number_as_reference((double)v / 3);
    }
    /* where the digits are made without printf (buf.c: 1e-5 to 1e15): scores, means and
     * ratios of small counts, ties of the 17th digit (n + odd/8 above 1e14 has 18 digits,
     * the last a 5: rounded half to even), and the range's ends */
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        assert_number_as_reference(pow(10, -5 + 20 * (double)(x >> 11) / 9007199254740992.0));
        assert_number_as_reference((double)(x % 1000) / (double)(1 + (x >> 20) % 999));
        assert_number_as_reference(1e14 + (double)((x >> 24) % 40000000000000u) + (double)(2 * (x % 4) + 1) / 8);
    }
    for (double d = 1e-5; d < 1e15; d = nextafter(d * 1.001, INFINITY)) assert_number_as_reference(d);
    assert_number_as_reference(nextafter(1e-5, 0));
    assert_number_as_reference(nextafter(1e15, 0));
    assert_number_as_reference(DBL_MAX);
    assert_number_as_reference(DBL_MIN);
    assert_number_as_reference(4.9406564584124654e-324);
    assert_number_as_reference(-LLONG_MAX);
}

static void test_strings_are_escaped_and_invalid_utf8_replaced(void **state) {
    (void)state;
    buf b;
    buf_init(&b);
    const char raw[] = "a\"b\\c\n\x01\xc3\xa9\xff\xed\xa0\x80z";
    buf_json_string(&b, raw, sizeof raw - 1);
    assert_string_equal(buf_cstr(&b), "\"a\\\"b\\\\c\\n\\u0001\xc3\xa9\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdz\"");
    buf_free(&b);
}

/* Tokens chosen to collide in the low bits of the hash (as a hostile trace or plugin would,
 * by brute force against a hash it knows) must not collide once the process has drawn its
 * key: open-addressed Sets and TF-IDF tables index by those bits. */
static void test_token_hash_is_keyed_per_process(void **state) {
    (void)state;
    uint64_t known_key = text_hash_key; /* what an attacker could compute offline */
    enum { N = 400 };
    static char tokens[N][8 + TEXT_SLACK];
    uint64_t x = 88172645463325252u;
    for (int found = 0; found < N;) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        char *t = tokens[found];
        for (int i = 0; i < 8; i++) t[i] = (char)('a' + (x >> (5 * i)) % 26);
        if ((text_hash_slack(t, 8) & 0xFFFF) == 0) found++;
    }
    text_hash_init();
    assert_true(text_hash_key != known_key);
    static unsigned char bucket[1 << 16];
    unsigned most = 0;
    for (int i = 0; i < N; i++) {
        unsigned b = (unsigned)(text_hash_slack(tokens[i], 8) & 0xFFFF);
        if (++bucket[b] > most) most = bucket[b];
    }
    /* 400 tokens over 65,536 buckets: more than 6 in one is chance below 1e-12 */
    assert_true(most <= 6);
}

static void test_fixed_buffer_refuses_to_grow(void **state) {
    (void)state;
    char memory[4];
    buf b;
    buf_init_fixed(&b, memory, sizeof memory);
    buf_puts(&b, "abc");
    assert_false(buf_failed(&b));
    buf_puts(&b, "d");
    assert_true(buf_failed(&b));
    buf_free(&b); /* must not free stack memory */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_key_matches_spec_example),
        cmocka_unit_test(test_url_key_normalisation_rules),
        cmocka_unit_test(test_domain_is_host_of_key_without_port),
        cmocka_unit_test(test_url_keys_of_random_urls_follow_the_definition),
        cmocka_unit_test(test_sentences_split_after_punctuation_and_at_newlines),
        cmocka_unit_test(test_sentences_keep_dot_without_following_space),
        cmocka_unit_test(test_sentences_and_markers_match_the_definition),
        cmocka_unit_test(test_markers_are_bracketed_decimal_integers),
        cmocka_unit_test(test_tokens_split_on_ascii_punctuation_and_keep_utf8_words),
        cmocka_unit_test(test_token_lower_table_is_spec_token_bytes_lowercased),
        cmocka_unit_test(test_token_words_agree_with_table),
        cmocka_unit_test(test_token_mask_marks_exactly_the_token_bytes),
        cmocka_unit_test(test_token_scan_finds_the_tokens_of_the_definition),
        cmocka_unit_test(test_stopwords_are_exactly_spec_list),
        cmocka_unit_test(test_stopword_slack_agrees),
        cmocka_unit_test(test_stopword_slack_is_the_documented_list),
        cmocka_unit_test(test_char_count_counts_code_points),
        cmocka_unit_test(test_numbers_print_shortest_round_trip),
        cmocka_unit_test(test_numbers_equal_the_three_precision_definition),
        cmocka_unit_test(test_strings_are_escaped_and_invalid_utf8_replaced),
        cmocka_unit_test(test_token_hash_is_keyed_per_process),
        cmocka_unit_test(test_fixed_buffer_refuses_to_grow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
