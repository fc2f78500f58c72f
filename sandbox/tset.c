/* tset.c - assay.text.Set: token sets kept in C.
 *
 * Why: a set as a Lua table {token = true} makes every token a Lua string (hashed and
 * interned) and a table slot, and that was the largest single cost of the shipped
 * evaluators after the Lua interpreter itself. A Set keeps its tokens as bytes in one
 * arena with a 64-bit hash each, in an open-addressed index; tokenizing a text into a Set
 * creates no Lua value at all, and intersections compare hashes first and bytes after, so
 * results are exact, never probabilistic.
 *
 * Memory: the index, the entries and the bytes start inside the Set's own userdata; once
 * they outgrow it, each (and a document's counts) is a Lua userdata hanging from the Set as
 * a user value, replaced by a bigger one when full. So every byte counts against the
 * state's memory limit, an allocation that fails raises Lua's own memory error, and nothing
 * can leak when it does: the old block stays until the collector frees it.
 *
 * Order: entries are kept in the order their tokens were first added, so list() and
 * everything computed from a Set is the same on every run and in every state.
 *
 * Documents: S:add_document(s) adds C(s) like add_content and also counts it, per member,
 * as the next document of a TF-IDF (text.c's tfidf_term and tfidf_entry); S:tfidf_cosines()
 * then gives what text.tfidf_cosines gives for the same documents. Why: relevance grows its
 * context from the same texts it scores with TF-IDF, and tokenizing them once for both
 * saved a fifth of what relevance costs. The counts are kept only once a document is added.
 *
 * Made in place: URL keys and domains (S:add_domains, and trace.c's walks through
 * tset_url_key_entry) and n-grams (S:add_ngrams) are written straight into the arena, so
 * that search_overlap, citation_support and query_diversity make no Lua string for them.
 * Not here: tokens, stopwords and the table-set functions (text.c).
 */
#include "sandbox_internal.h"
#include "text.h"

#include <lauxlib.h>
#include <stdint.h>
#include <string.h>

#define TSET_META "assay.text.Set"

typedef struct tset_entry {
    uint64_t hash;
    uint32_t at, len; /* the token's bytes: bytes[at .. at + len) */
} tset_entry;

typedef struct tset {
    struct tset *self;    /* the Set's own address: set_at tells a Set by it */
    uint32_t *index;      /* index_cap slots, a power of two: entry number + 1, 0 = empty */
    tset_entry *entries;  /* count used of entries_cap, in the order first added */
    char *bytes;          /* bytes_len used of bytes_cap */
    uint32_t count, entries_cap, index_cap;
    size_t bytes_len, bytes_cap;
    /* the documents, once one is added: */
    tfidf_term *terms;    /* per entry, terms_cap of them (zero past those counted) */
    tfidf_entry *doc_entries; /* doc_entries_len used of doc_entries_cap */
    uint32_t *doc_start;  /* ndoc + 1 used of doc_start_cap: document d is doc_entries[doc_start[d] ..] */
    uint32_t terms_cap, doc_entries_len, doc_entries_cap, ndoc, doc_start_cap;
} tset;

/* A new Set's first blocks are inside its own userdata: most Sets (a query's, a claim's)
 * never outgrow them, and a block of its own is one more allocation and one more object to
 * collect (making the first blocks was 4% of a trace's instructions). Past them, each
 * block is a user value. */
#define TSET_INLINE_ENTRIES 16
typedef struct tset_inline {
    tset S; /* first: the userdata is the tset */
    uint32_t index[2 * TSET_INLINE_ENTRIES];
    tset_entry entries[TSET_INLINE_ENTRIES];
    char bytes[256 + TEXT_SLACK];
} tset_inline;

enum { UV_INDEX = 1, UV_ENTRIES, UV_BYTES, UV_TERMS, UV_DOC_ENTRIES, UV_DOC_START, UV_COUNT = UV_DOC_START };

/* Tokens are hashed and compared a word at a time (text.h), so every arena keeps
 * TSET_SLACK bytes past its end. */
#define TSET_SLACK TEXT_SLACK

/* luaL_testudata in two calls into Lua where it makes four (2% of a trace: the evaluators
 * call Set methods some 200 times a trace): a Set is the one full userdata of its size
 * whose first field points at itself. Plugins reach no other userdata of that size (a
 * Set's blocks are user values only C code can see), and a light userdata has no size.
 * tests/sandbox/attacks/set_type_confusion.lua hands every method what is not a Set. */
static tset *set_at(lua_State *L, int idx) {
    tset *S = lua_touserdata(L, idx);
    if (!S || lua_rawlen(L, idx) != sizeof(tset_inline)) return NULL;
    return S->self == S ? S : NULL;
}

tset *tset_check(lua_State *L, int idx) {
    tset *S = set_at(L, idx);
    if (!S) luaL_typeerror(L, idx, TSET_META);
    return S;
}

bool tset_is(lua_State *L, int idx) { return set_at(L, idx) != NULL; }

const tset *tset_test(lua_State *L, int idx) { return set_at(L, idx); }

lua_Integer tset_count(const tset *S) { return S->count; }

/* A new block of `size` bytes as user value uv of the Set at idx, `keep` bytes of old
 * copied into it. [-0, +0, m] */
static void *grow_block(lua_State *L, int idx, int uv, const void *old, size_t keep, size_t size) {
    void *block = lua_newuserdatauv(L, size, 0);
    if (keep) memcpy(block, old, keep);
    lua_setiuservalue(L, idx, uv);
    return block;
}

static size_t next_pow2(size_t n) {
    size_t c = 16;
    while (c < n) c *= 2;
    return c;
}

/* Probes past which a lookup looks at the limits: the index is at most half full and the
 * hash keyed (text.h), so a lookup this long means tokens chosen to collide. */
#define TSET_LONG_PROBE 64

/* The slot of the token: the one holding it, or the empty one where it goes. `slack`: s
 * has TSET_SLACK readable bytes past n (it is in an arena). */
static __attribute__((noinline, cold)) void long_probe(lua_State *L) { sandbox_check_limits(L); }

/* Inlined: it runs once per token, and a call that saves registers for the rare limit
 * check cost a third of it. */
static inline uint32_t *find_slot(lua_State *L, const tset *S, uint64_t h, const char *s, size_t n, bool slack) {
    uint32_t mask = S->index_cap - 1, probes = 0;
    for (uint32_t slot = (uint32_t)h & mask;; slot = (slot + 1) & mask) {
        if (++probes % TSET_LONG_PROBE == 0) long_probe(L);
        uint32_t e = S->index[slot];
        if (!e) return &S->index[slot];
        const tset_entry *en = &S->entries[e - 1];
        if (en->hash == h && en->len == n &&
            (slack ? text_equal_slack(S->bytes + en->at, s, n) : memcmp(S->bytes + en->at, s, n) == 0))
            return &S->index[slot];
    }
}

/* Room for `more` entries and `more_bytes` bytes (and the slack), so that an add never
 * fails halfway. */
static void reserve_slow(lua_State *L, int idx, tset *S, size_t more, size_t more_bytes) {
    idx = lua_absindex(L, idx);
    /* offsets and counts are 32-bit; the index has twice the entries' slots */
    if ((size_t)S->count + more > UINT32_MAX / 4 || S->bytes_len + more_bytes > UINT32_MAX - 2 * TSET_SLACK ||
        ((size_t)S->count + more) * 2 > SIZE_MAX / (2 * sizeof *S->entries))
        luaL_error(L, "assay.text.Set: too many tokens");
    size_t need = S->count + more;
    if (need > S->entries_cap) {
        size_t cap = next_pow2(need > 2 * (size_t)S->entries_cap ? need : 2 * (size_t)S->entries_cap);
        S->entries = grow_block(L, idx, UV_ENTRIES, S->entries, S->count * sizeof *S->entries, cap * sizeof *S->entries);
        S->entries_cap = (uint32_t)cap;
    }
    if (2 * need > S->index_cap) { /* at most half full: probes stay short */
        size_t cap = next_pow2(2 * need > 2 * (size_t)S->index_cap ? 2 * need : 2 * (size_t)S->index_cap);
        S->index = grow_block(L, idx, UV_INDEX, NULL, 0, cap * sizeof *S->index);
        S->index_cap = (uint32_t)cap;
        memset(S->index, 0, cap * sizeof *S->index);
        for (uint32_t e = 0; e < S->count; e++) {
            const tset_entry *en = &S->entries[e];
            *find_slot(L, S, en->hash, S->bytes + en->at, en->len, true) = e + 1;
        }
    }
    if (S->bytes_len + more_bytes + TSET_SLACK > S->bytes_cap) {
        size_t want = S->bytes_len + more_bytes + TSET_SLACK, cap = 2 * S->bytes_cap;
        cap = next_pow2(want > cap ? want : cap);
        S->bytes = grow_block(L, idx, UV_BYTES, S->bytes, S->bytes_len, cap);
        S->bytes_cap = cap;
    }
}

static inline void reserve(lua_State *L, int idx, tset *S, size_t more, size_t more_bytes) {
    size_t need = (size_t)S->count + more;
    if (need > S->entries_cap || 2 * need > S->index_cap || S->bytes_len + more_bytes + TSET_SLACK > S->bytes_cap)
        reserve_slow(L, idx, S, more, more_bytes);
}

/* Adds the len bytes at the free end of S's arena, written there by the caller, unless S
 * holds them already. Room must have been reserved. Returns the member's entry number. */
static inline __attribute__((always_inline)) uint32_t add_tail_hashed(lua_State *L, tset *S, size_t len, uint64_t h) {
    const char *s = S->bytes + S->bytes_len;
    uint32_t *slot = find_slot(L, S, h, s, len, true);
    if (*slot) return *slot - 1;
    S->entries[S->count] = (tset_entry){h, (uint32_t)S->bytes_len, (uint32_t)len};
    *slot = ++S->count;
    S->bytes_len += len;
    return S->count - 1;
}
static inline __attribute__((always_inline)) uint32_t add_tail(lua_State *L, tset *S, size_t len) {
    return add_tail_hashed(L, S, len, text_hash_slack(S->bytes + S->bytes_len, len));
}

/* Room for entry e's counts and for one more document entry. */
static __attribute__((noinline)) void grow_counts(lua_State *L, int idx, tset *S, uint32_t e) {
    if (e >= S->terms_cap) { /* members added since the counts last grew have none yet */
        size_t cap = S->entries_cap, keep = (size_t)S->terms_cap * sizeof *S->terms;
        S->terms = grow_block(L, idx, UV_TERMS, S->terms, keep, cap * sizeof *S->terms);
        memset((char *)S->terms + keep, 0, cap * sizeof *S->terms - keep);
        S->terms_cap = (uint32_t)cap;
    }
    if (S->doc_entries_len == S->doc_entries_cap) {
        size_t cap = next_pow2(2 * (size_t)S->doc_entries_cap);
        S->doc_entries = grow_block(L, idx, UV_DOC_ENTRIES, S->doc_entries, S->doc_entries_len * sizeof *S->doc_entries,
                                    cap * sizeof *S->doc_entries);
        S->doc_entries_cap = (uint32_t)cap;
    }
}

/* Counts entry e once more in the document being added (number S->ndoc). Inlined: it runs
 * for every token of every document. */
static inline __attribute__((always_inline)) void count_in_document(lua_State *L, int idx, tset *S, uint32_t e) {
    if (e >= S->terms_cap || S->doc_entries_len == S->doc_entries_cap) grow_counts(L, idx, S, e);
    tfidf_count(S->terms, e, S->ndoc, S->doc_entries, &S->doc_entries_len);
}

/* Adds one string as it is. s must not point into S. */
static void add_one(lua_State *L, int idx, tset *S, const char *s, size_t n) {
    reserve(L, idx, S, 1, n);
    if (n) memcpy(S->bytes + S->bytes_len, s, n);
    add_tail(L, S, n);
}

static bool contains(lua_State *L, const tset *S, const char *s, size_t n) {
    if (S->count == 0) return false;
    return *find_slot(L, S, text_hash_words(s, n, false), s, n, false) != 0;
}

/* ------------------------------------------------------------- what text.c calls */

/* Adds set(T(s)), or set(C(s)) when content_only; is_document: s is counted as the next
 * document too (see the top). */
static void add_text(lua_State *L, int idx, tset *S, const char *s, size_t n, bool content_only, bool is_document) {
    /* texts hold about one distinct token per twelve bytes; capped, so that a long text of
     * few distinct words does not reserve memory it never uses */
    size_t guess = n / 12 < 4096 ? n / 12 + 1 : 4096; /* and about 8 bytes each */
    reserve(L, idx, S, guess, 8 * guess);
    /* the room reserved, as locals: the test per token then reads no field of S */
    uint32_t count_end = S->entries_cap < S->index_cap / 2 ? S->entries_cap : S->index_cap / 2;
    size_t bytes_end = S->bytes_cap - TSET_SLACK;
    const unsigned char *p = (const unsigned char *)s;
    text_scan scan;
    text_scan_init(&scan, s, n);
    size_t start, len;
    for (unsigned tokens = 0; text_scan_next(&scan, &start, &len); tokens++) {
        if (tokens % 4096 == 4095) sandbox_check_limits(L); /* a text may hold millions */
        if (S->count >= count_end || len > bytes_end - S->bytes_len) {
            reserve(L, idx, S, 1, len);
            count_end = S->entries_cap < S->index_cap / 2 ? S->entries_cap : S->index_cap / 2;
            bytes_end = S->bytes_cap - TSET_SLACK;
        }
#if TEXT_WORDS
        if (len <= 8 && n - start >= 8) {
            /* Most tokens fit a word: lowercased, tested, hashed and compared in a register,
             * and written to the arena only when new (a third less work than the bytes). */
            uint64_t w;
            memcpy(&w, p + start, 8);
            w = text_word_prefix(text_lower_word(w), len);
            if (content_only && text_is_stopword_word(w, len)) continue;
            uint64_t h = text_hash_word(w, len), word[2] = {w, 0}; /* find_slot reads 8 bytes past */
            uint32_t *slot = find_slot(L, S, h, (const char *)word, len, true), e;
            if (*slot) {
                e = *slot - 1;
            } else {
                memcpy(S->bytes + S->bytes_len, &w, 8); /* the arena has TSET_SLACK to spare */
                e = S->count;
                S->entries[e] = (tset_entry){h, (uint32_t)S->bytes_len, (uint32_t)len};
                *slot = ++S->count;
                S->bytes_len += len;
            }
            if (is_document) count_in_document(L, idx, S, e);
            continue;
        }
#endif
        /* lowercased straight into the free end of the arena; kept there only if new */
        unsigned char *to = (unsigned char *)S->bytes + S->bytes_len;
        uint64_t h = text_copy_lower_hash(to, p + start, len, n - start);
        if (content_only && text_is_stopword_slack((const char *)to, len)) continue;
        uint32_t e = add_tail_hashed(L, S, len, h);
        if (is_document) count_in_document(L, idx, S, e);
    }
}

void tset_add_text(lua_State *L, int idx, const char *s, size_t n, bool content_only) {
    add_text(L, idx, tset_check(L, idx), s, n, content_only, false);
}

static lua_Integer tset_size(lua_State *L, int idx) { return tset_check(L, idx)->count; }

/* How many string keys of the table at t the Set S holds. */
static lua_Integer table_in_set(lua_State *L, int t, const tset *S) {
    lua_Integer count = 0;
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING) continue;
        size_t n;
        const char *s = lua_tolstring(L, -1, &n);
        count += contains(L, S, s, n);
    }
    return count;
}

lua_Integer tset_intersection_size(lua_State *L, const tset *A, const tset *B, int t) {
    if (!B) {
        lazy_check_table(L, t);
        return table_in_set(L, lua_absindex(L, t), A);
    }
    if (A->count > B->count) { const tset *x = A; A = B, B = x; } /* walk the smaller */
    lua_Integer count = 0;
    if (B->count == 0) return 0;
    for (uint32_t e = 0; e < A->count; e++) {
        const tset_entry *en = &A->entries[e];
        count += *find_slot(L, B, en->hash, A->bytes + en->at, en->len, true) != 0;
    }
    return count;
}

/* Calls add for each key of the table set at t (absolute); a key that is not a string is
 * an error. Looks at the limits every 4,096 keys, as the walks over a Set's members do. */
static void add_table_keys(lua_State *L, int dst, tset *D, int t,
                           void (*add)(lua_State *L, int idx, tset *S, const char *s, size_t n)) {
    lazy_check_table(L, t);
    lua_pushnil(L);
    for (unsigned keys = 1; lua_next(L, t); keys++) {
        if (keys % 4096 == 0) sandbox_check_limits(L);
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "assay.text.Set: a set holds strings, this key is %s", luaL_typename(L, -1));
        size_t n;
        const char *s = lua_tolstring(L, -1, &n);
        add(L, dst, D, s, n);
    }
}

void tset_add_all(lua_State *L, int dst, int src) {
    dst = lua_absindex(L, dst), src = lua_absindex(L, src);
    tset *D = tset_check(L, dst);
    if (tset_is(L, src)) {
        const tset *S = tset_check(L, src);
        if (S == D) return;
        reserve(L, dst, D, S->count, S->bytes_len);
        for (uint32_t e = 0; e < S->count; e++) {
            const tset_entry *en = &S->entries[e];
            memcpy(D->bytes + D->bytes_len, S->bytes + en->at, en->len);
            add_tail(L, D, en->len);
        }
        return;
    }
    add_table_keys(L, dst, D, src, add_one);
}

void tset_into_table(lua_State *L, int table, int src) {
    table = lua_absindex(L, table);
    const tset *S = tset_check(L, src);
    for (uint32_t e = 0; e < S->count; e++) {
        lua_pushlstring(L, S->bytes + S->entries[e].at, S->entries[e].len);
        lua_pushboolean(L, 1);
        lua_rawset(L, table);
    }
}

/* Makes fn(url) (text_url_key or text_url_domain) at the free end of the arena and
 * returns its length: a key or domain is never longer than its URL. url may point into
 * S's arena only when the room is reserved already (m_add_domains). */
static size_t url_part_at_end(lua_State *L, int idx, tset *S, const char *url, size_t n,
                              void (*fn)(const char *, size_t, buf *)) {
    if (n > UINT32_MAX / 2) luaL_error(L, "assay.text.Set: URL too long");
    reserve(L, idx, S, 1, n + 1);
    buf out;
    buf_init_fixed(&out, S->bytes + S->bytes_len, n + 1);
    fn(url, n, &out);
    if (buf_failed(&out)) luaL_error(L, "URL key longer than its URL");
    return out.len;
}

/* Adds fn(url) as one member. */
static void add_url_part(lua_State *L, int idx, tset *S, const char *url, size_t n,
                         void (*fn)(const char *, size_t, buf *)) {
    add_tail(L, S, url_part_at_end(L, idx, S, url, n, fn));
}

lua_Integer tset_url_key_entry(lua_State *L, int idx, const char *url, size_t n, bool add) {
    tset *S = tset_check(L, idx);
    size_t len = url_part_at_end(L, idx, S, url, n, text_url_key);
    if (add) return add_tail(L, S, len);
    const char *key = S->bytes + S->bytes_len;
    uint32_t e = *find_slot(L, S, text_hash_slack(key, len), key, len, true);
    return (lua_Integer)e - 1;
}

void tset_add_url_key(lua_State *L, int idx, const char *url, size_t n) { tset_url_key_entry(L, idx, url, n, true); }

size_t tset_member_len(const tset *S, lua_Integer e) { return S->entries[e].len; }

static void add_domain(lua_State *L, int idx, tset *S, const char *url, size_t n) {
    add_url_part(L, idx, S, url, n, text_url_domain);
}

/* --------------------------------------------------------------------- methods */

static const char tset_meta_key; /* its address keys the metatable in the registry */

/* text.Set() -> an empty Set */
int tset_new(lua_State *L) {
    tset_inline *in = lua_newuserdatauv(L, sizeof *in, UV_COUNT);
    memset(in, 0, sizeof *in);
    in->S.self = &in->S;
    in->S.index = in->index;
    in->S.index_cap = 2 * TSET_INLINE_ENTRIES;
    in->S.entries = in->entries;
    in->S.entries_cap = TSET_INLINE_ENTRIES;
    in->S.bytes = in->bytes;
    in->S.bytes_cap = sizeof in->bytes;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &tset_meta_key); /* luaL_setmetatable hashes the name */
    lua_setmetatable(L, -2);
    return 1;
}

/* S:add_tokens(s), S:add_content(s) -> S: adds set(T(s)) or set(C(s)); a non-string adds
 * nothing, as text.tokens gives {} */
static int add_text_method(lua_State *L, bool content_only) {
    tset_check(L, 1);
    size_t n = 0;
    const char *s = lua_type(L, 2) == LUA_TSTRING ? lua_tolstring(L, 2, &n) : "";
    tset_add_text(L, 1, s, n, content_only);
    lua_settop(L, 1);
    return 1;
}

static int m_add_tokens(lua_State *L) { return add_text_method(L, false); }

static int m_add_content(lua_State *L) { return add_text_method(L, true); }

/* Adds the texts parts[0 .. nparts) as one document: set(C(s)) of their concatenation with
 * a space between each two (a space ends a token, so it is their tokens in turn). */
static void add_document_parts(lua_State *L, int idx, tset *S, const char *const *parts, const size_t *lens,
                               int nparts) {
    size_t n = 0;
    for (int i = 0; i < nparts; i++) n += lens[i] + 1;
    /* A document must be counted whole. What can stop it halfway is the memory or time
     * limit, and a kill replaces the state, Set and all; the one error a plugin could catch
     * (too many tokens for 32-bit counts) is raised here, before anything is counted. A
     * text of n bytes holds at most n / 2 + 1 tokens. */
    if ((size_t)S->count + n / 2 + 1 > UINT32_MAX / 4 || (size_t)S->doc_entries_len + n / 2 + 1 > UINT32_MAX / 4 ||
        S->bytes_len + n + TSET_SLACK > UINT32_MAX - 2 * TSET_SLACK)
        luaL_error(L, "assay.text.Set: too many tokens");
    if (S->ndoc + 2 > S->doc_start_cap) {
        if (S->ndoc > UINT32_MAX / 4) luaL_error(L, "assay.text.Set: too many documents");
        size_t cap = next_pow2((size_t)S->ndoc + 2);
        S->doc_start = grow_block(L, idx, UV_DOC_START, S->doc_start,
                                  (S->ndoc + (S->doc_start_cap > 0)) * sizeof *S->doc_start, cap * sizeof *S->doc_start);
        S->doc_start_cap = (uint32_t)cap;
        if (S->ndoc == 0) S->doc_start[0] = 0;
    }
    for (int i = 0; i < nparts; i++) add_text(L, idx, S, parts[i], lens[i], true, true);
    tfidf_end_doc(S->doc_entries, S->doc_start[S->ndoc], S->doc_entries_len, S->terms);
    S->doc_start[++S->ndoc] = S->doc_entries_len;
}

void tset_add_document(lua_State *L, int idx, const char *const *parts, const size_t *lens, int nparts) {
    idx = lua_absindex(L, idx);
    add_document_parts(L, idx, tset_check(L, idx), parts, lens, nparts);
}

/* S:add_document(s) -> S: adds set(C(s)) and counts s as the next document for
 * S:tfidf_cosines() (a non-string is an empty document) */
static int m_add_document(lua_State *L) {
    size_t n = 0;
    const char *s = lua_type(L, 2) == LUA_TSTRING ? lua_tolstring(L, 2, &n) : "";
    tset_add_document(L, 1, &s, &n, 1);
    lua_settop(L, 1);
    return 1;
}

/* S:tfidf_cosines() -> {cos(d1, d2), ..., cos(d1, dN)} over the documents added with
 * S:add_document: text.tfidf_cosines of the same texts */
static int m_tfidf_cosines(lua_State *L) {
    const tset *S = tset_check(L, 1);
    static const uint32_t none[1] = {0};
    tfidf_push_cosines(L, S->ndoc, S->doc_start ? S->doc_start : none, S->doc_entries, S->terms);
    return 1;
}

/* The longest n of S:add_ngrams: its last n tokens are kept on the C stack. */
#define TSET_MAX_NGRAM 64

/* Adds the n-gram that ends with the token at ring[last % n]: the n tokens lowercased and
 * joined by single spaces, made in the arena. */
static void add_ngram(lua_State *L, tset *S, const char *s, const size_t (*ring)[2], size_t last, size_t n) {
    size_t total = n - 1;
    for (size_t j = 0; j < n; j++) total += ring[(last - j) % n][1];
    if (total > 4096) sandbox_check_limits(L); /* n long tokens: much copying for one call */
    reserve(L, 1, S, 1, total);
    char *to = S->bytes + S->bytes_len;
    for (size_t j = n; j-- > 0;) {
        const size_t *t = ring[(last - j) % n];
        text_lower_into(to, s + t[0], t[1]);
        to += t[1];
        if (j) *to++ = ' ';
    }
    add_tail(L, S, total);
}

/* S:add_ngrams(s, n) -> S, count: adds the n-grams of T(s) (n consecutive tokens joined by
 * spaces, what text.ngrams(text.tokens(s), n) lists), count = how many s has, repeats
 * counted; a non-string has none. 1 <= n <= 64. Why: query_diversity's distinct-2 made a
 * Lua string of every token and every bigram of every query. */
static int m_add_ngrams(lua_State *L) {
    tset *S = tset_check(L, 1);
    size_t len = 0;
    const char *s = lua_type(L, 2) == LUA_TSTRING ? lua_tolstring(L, 2, &len) : "";
    lua_Integer n = luaL_checkinteger(L, 3);
    luaL_argcheck(L, n >= 1 && n <= TSET_MAX_NGRAM, 3, "n must be 1 to 64");
    size_t ring[TSET_MAX_NGRAM][2], tokens = 0, pos = 0, start, toklen;
    while (text_next_token(s, len, &pos, &start, &toklen)) {
        ring[tokens % (size_t)n][0] = start, ring[tokens % (size_t)n][1] = toklen;
        if (++tokens % 4096 == 0) sandbox_check_limits(L);
        if (tokens >= (size_t)n) add_ngram(L, S, s, (const size_t (*)[2])ring, tokens - 1, (size_t)n);
    }
    lua_settop(L, 1);
    lua_pushinteger(L, tokens >= (size_t)n ? (lua_Integer)(tokens - (size_t)n + 1) : 0);
    return 2;
}

/* S:add(value) -> S: adds one string exactly as given (no lowercasing, no tokenizing) */
static int m_add(lua_State *L) {
    tset *S = tset_check(L, 1);
    luaL_checktype(L, 2, LUA_TSTRING);
    size_t n;
    const char *s = lua_tolstring(L, 2, &n);
    add_one(L, 1, S, s, n);
    lua_settop(L, 1);
    return 1;
}

/* S:add_all(other) -> S: adds every member of another Set or the keys of a table set */
static int m_add_all(lua_State *L) {
    tset_check(L, 1);
    tset_add_all(L, 1, 2);
    lua_settop(L, 1);
    return 1;
}

/* S:add_domains(other) -> S: adds text.domain(m) for every member m of another Set or key
 * of a table set (search_overlap counts the domains of its URL keys this way, with no Lua
 * string per key) */
static int m_add_domains(lua_State *L) {
    tset *D = tset_check(L, 1);
    lua_settop(L, 2);
    const tset *S = tset_test(L, 2);
    if (S) {
        /* No domain is longer than its member, so with this room D never moves below:
         * S's members stay where they are even when S is D. */
        uint32_t count = S->count;
        reserve(L, 1, D, count, S->bytes_len + 1);
        for (uint32_t e = 0; e < count; e++) {
            if (e % 4096 == 4095) sandbox_check_limits(L);
            add_domain(L, 1, D, S->bytes + S->entries[e].at, S->entries[e].len);
        }
        lua_settop(L, 1);
        return 1;
    }
    add_table_keys(L, 1, D, 2, add_domain);
    lua_settop(L, 1);
    return 1;
}

/* S:has(value) -> boolean */
static int m_has(lua_State *L) {
    const tset *S = tset_check(L, 1);
    size_t n;
    const char *s = lua_type(L, 2) == LUA_TSTRING ? lua_tolstring(L, 2, &n) : NULL;
    lua_pushboolean(L, s && contains(L, S, s, n));
    return 1;
}

/* #S, S:size() -> members */
static int m_size(lua_State *L) {
    lua_pushinteger(L, tset_size(L, 1));
    return 1;
}

/* S:list() -> {member...} in the order first added */
static int m_list(lua_State *L) {
    const tset *S = tset_check(L, 1);
    lua_createtable(L, (int)(S->count < INT32_MAX ? S->count : INT32_MAX), 0);
    for (uint32_t e = 0; e < S->count; e++) {
        lua_pushlstring(L, S->bytes + S->entries[e].at, S->entries[e].len);
        lua_rawseti(L, -2, (lua_Integer)e + 1);
    }
    return 1;
}

static int m_tostring(lua_State *L) {
    lua_pushfstring(L, "assay.text.Set (%d members)", (int)tset_size(L, 1));
    return 1;
}

void tset_open(lua_State *L, const luaL_Reg *shared) {
    static const luaL_Reg methods[] = {
        {"add_tokens", m_add_tokens},
        {"add_content", m_add_content},
        {"add_document", m_add_document},
        {"tfidf_cosines", m_tfidf_cosines},
        {"add", m_add},
        {"add_all", m_add_all},
        {"add_domains", m_add_domains},
        {"add_ngrams", m_add_ngrams},
        {"has", m_has},
        {"size", m_size},
        {"list", m_list},
        {NULL, NULL},
    };
    luaL_newmetatable(L, TSET_META);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &tset_meta_key);
    luaL_newlib(L, methods);
    luaL_setfuncs(L, shared, 0); /* S:jaccard(other) is text.jaccard(S, other), and so on */
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, m_size);
    lua_setfield(L, -2, "__len");
    lua_pushcfunction(L, m_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushliteral(L, TSET_META); /* getmetatable(S) gives this name, not the table */
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 1);
}
