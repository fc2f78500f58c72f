/* bench_c.c - the five shipped evaluators of docs/metrics.md written straight in C, with no
 * host: one thread, one pass per trace. It is the anchor row of `make bench` ("the same work
 * without a host costs this much"), checked value for value against assay's records by
 * scripts/bench_python.py --same.
 *
 * Written the way a careful C programmer would for speed, not as assay does it: each text is
 * tokenised once per trace into 64-bit token hashes (the stopword test done then), sets are
 * open-addressing tables of those hashes, and everything a trace needs (cJSON's nodes too,
 * through its allocation hooks) comes from one arena emptied after the trace. Equal hashes are
 * taken for equal tokens: with 64-bit hashes a collision among a trace's few thousand tokens
 * has a probability near 1e-13.
 *
 *   usage: bench_c TRACES.jsonl > records.jsonl
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdarg.h>
#include <regex.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

/* ------------------------------------------------------------------------ the arena */

typedef struct block { struct block *next; size_t used, size; max_align_t data[]; } block;
static block *arena_head;

static void *arena_alloc(size_t n) {
    n = (n + 15) & ~(size_t)15;
    if (!arena_head || arena_head->used + n > arena_head->size) {
        size_t size = n > (1 << 20) ? n : (1 << 20);
        block *b = malloc(sizeof *b + size);
        if (!b) abort();
        *b = (block){arena_head, 0, size};
        arena_head = b;
    }
    void *p = (char *)arena_head->data + arena_head->used;
    arena_head->used += n;
    return p;
}

/* Keeps the first block (the common case fits it) and frees the rest. */
static void arena_reset(void) {
    while (arena_head && arena_head->next) {
        block *next = arena_head->next;
        free(arena_head);
        arena_head = next;
    }
    if (arena_head) arena_head->used = 0;
}

static void *cjson_alloc(size_t n) { return arena_alloc(n); }
static void cjson_free(void *p) { (void)p; }

/* ----------------------------------------------------------------------- tokens */

static bool is_token_byte(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}
/* token_byte[c]: c as it enters a token's hash (an ASCII letter lowercased), 0 outside tokens */
static unsigned char token_byte[256];
static bool is_space(unsigned char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

/* A token is its FNV-1a hash (ASCII letters lowercased) with the low bit set for a stopword. */
#define STOP 1u
static uint64_t stop_table[512]; /* the stopwords' hashes, open addressing */

static uint64_t hash_word(const char *s, size_t n) {
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        h = (h ^ (c >= 'A' && c <= 'Z' ? c | 32 : c)) * 1099511628211ull;
    }
    h &= ~(uint64_t)STOP;
    return h ? h : 2;
}

static bool is_stop(uint64_t h) {
    for (size_t i = (h >> 7) & 511;; i = (i + 1) & 511) {
        if (stop_table[i] == h) return true;
        if (!stop_table[i]) return false;
    }
}

static void tables_init(void) {
    for (int c = 0; c < 256; c++)
        token_byte[c] = is_token_byte((unsigned char)c) ? (unsigned char)(c >= 'A' && c <= 'Z' ? c | 32 : c) : 0;
}

static void stopwords_init(void) {
    static const char words[] =
        "a about above after again against all am an and any are as at be because been before being below between "
        "both but by can could did do does doing down during each few for from further had has have having he her "
        "here hers herself him himself his how i if in into is it its itself just me more most my myself no nor not "
        "now of off on once only or other our ours ourselves out over own same she should so some such than that "
        "the their theirs them themselves then there these they this those through to too under until up very was "
        "we were what when where which while who whom why will with would you your yours yourself yourselves";
    for (const char *p = words; *p;) {
        size_t n = strcspn(p, " ");
        uint64_t h = hash_word(p, n);
        size_t i = (h >> 7) & 511;
        while (stop_table[i]) i = (i + 1) & 511;
        stop_table[i] = h;
        p += n + (p[n] == ' ');
    }
}

typedef struct tokens { uint64_t *v; size_t n; } tokens;

static tokens tokenize(const char *s, size_t n) {
    tokens t = {arena_alloc((n / 2 + 1) * sizeof *t.v), 0};
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    for (;;) {
        while (p < end && !token_byte[*p]) p++;
        if (p == end) return t;
        uint64_t h = 14695981039346656037ull;
        do h = (h ^ token_byte[*p++]) * 1099511628211ull;
        while (p < end && token_byte[*p]);
        h &= ~(uint64_t)STOP;
        h = h ? h : 2;
        t.v[t.n++] = h | (is_stop(h) ? STOP : 0);
    }
}

/* ------------------------------------------------------------------------- sets */

typedef struct set { uint64_t *slot; size_t mask, size; } set;

static set set_new(size_t expected) {
    size_t cap = 16;
    while (cap < 2 * expected) cap *= 2;
    set s = {arena_alloc(cap * sizeof *s.slot), cap - 1, 0};
    memset(s.slot, 0, cap * sizeof *s.slot);
    return s;
}

static size_t slot_of(const set *s, uint64_t v) {
    size_t i = (size_t)(v ^ (v >> 29)) & s->mask;
    while (s->slot[i] && s->slot[i] != v) i = (i + 1) & s->mask;
    return i;
}

static bool set_has(const set *s, uint64_t v) { return s->slot[slot_of(s, v)] == v; }

static bool set_add(set *s, uint64_t v) {
    if (2 * (s->size + 1) > s->mask + 1) {
        set grown = set_new(s->size + 1);
        for (size_t i = 0; i <= s->mask; i++)
            if (s->slot[i]) grown.slot[slot_of(&grown, s->slot[i])] = s->slot[i], grown.size++;
        *s = grown;
    }
    size_t i = slot_of(s, v);
    if (s->slot[i]) return false;
    s->slot[i] = v;
    s->size++;
    return true;
}

static void set_add_tokens(set *s, tokens t, bool content_only) {
    for (size_t i = 0; i < t.n; i++)
        if (!content_only || !(t.v[i] & STOP)) set_add(s, t.v[i]);
}

static size_t intersection(const set *a, const set *b) {
    if (a->size > b->size) { const set *x = a; a = b; b = x; }
    size_t n = 0;
    for (size_t i = 0; i <= a->mask; i++) n += a->slot[i] && set_has(b, a->slot[i]);
    return n;
}

static double jaccard(const set *a, const set *b) {
    size_t both = intersection(a, b), any = a->size + b->size - both;
    return any ? (double)both / (double)any : 1.0;
}

/* ------------------------------------------------------------------ URL keys */

typedef struct url { uint64_t key, domain; bool is_empty; } url;

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return (h & ~(uint64_t)STOP) | 2;
}

static bool is_scheme(const char *s, size_t n) {
    bool ok = n > 0 && (s[0] | 32) >= 'a' && (s[0] | 32) <= 'z';
    for (size_t i = 1; ok && i < n; i++)
        ok = ((s[i] | 32) >= 'a' && (s[i] | 32) <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '+' ||
             s[i] == '-' || s[i] == '.';
    return ok;
}

/* Trims s, drops its scheme and fragment and a leading "www." of the host; *host_len: the
 * host's length, *port_at: where its ":port" starts (the host's length when none). */
static const char *url_host(const char **s, size_t *n, size_t *host_len, size_t *port_at, size_t *rest) {
    const char *p = *s;
    size_t len = *n;
    while (len && is_space((unsigned char)*p)) p++, len--;
    while (len && is_space((unsigned char)p[len - 1])) len--;
    for (size_t i = 0; i + 2 < len && p[i] != '/' && p[i] != '?' && p[i] != '#'; i++) {
        if (p[i] != ':' || p[i + 1] != '/' || p[i + 2] != '/') continue;
        if (is_scheme(p, i)) p += i + 3, len -= i + 3;
        break;
    }
    const char *hash = memchr(p, '#', len);
    if (hash) len = (size_t)(hash - p);
    size_t h = 0;
    while (h < len && p[h] != '/' && p[h] != '?') h++;
    *s = p, *n = len, *rest = h;
    const char *host = p;
    if (h >= 4 && (host[0] | 32) == 'w' && (host[1] | 32) == 'w' && (host[2] | 32) == 'w' && host[3] == '.')
        host += 4, h -= 4;
    *host_len = *port_at = h;
    for (size_t i = h; i > 0; i--) {
        if (host[i - 1] == ':') { *port_at = i - 1; break; }
        if (host[i - 1] < '0' || host[i - 1] > '9') break;
    }
    return host;
}

static size_t put_lower(char *out, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] | 32) : s[i];
    return n;
}

/* The key and the domain of a URL (docs/metrics.md), hashed. The domain is taken from the
 * key, as the evaluators do (so "www.www.x.com" has the domain "x.com"). */
static url url_of(const char *s, size_t n) {
    size_t host_len, port_at, h;
    const char *host = url_host(&s, &n, &host_len, &port_at, &h);
    char *key = arena_alloc(n + 2);
    size_t k = put_lower(key, host, port_at);
    url u;
    const char *port = host + port_at + 1;
    size_t port_len = port_at < host_len ? host_len - port_at - 1 : 0;
    bool default_port = (port_len == 2 && !memcmp(port, "80", 2)) || (port_len == 3 && !memcmp(port, "443", 3));
    if (port_at < host_len && !default_port)
        for (size_t i = port_at; i < host_len; i++) key[k++] = host[i]; /* another port stays */
    const char *q = memchr(s + h, '?', n - h);
    size_t path_len = (q ? (size_t)(q - s) : n) - h;
    if (path_len && s[h + path_len - 1] == '/') path_len--;
    memcpy(key + k, s + h, path_len), k += path_len;
    bool first = true;
    for (const char *p = q ? q + 1 : NULL, *end = s + n; p && p <= end;) {
        const char *amp = memchr(p, '&', (size_t)(end - p)), *stop = amp ? amp : end;
        if (!((size_t)(stop - p) >= 4 && !memcmp(p, "utm_", 4))) {
            key[k++] = first ? '?' : '&';
            memcpy(key + k, p, (size_t)(stop - p)), k += (size_t)(stop - p);
            first = false;
        }
        p = amp ? amp + 1 : NULL;
    }
    u.key = hash_bytes(key, k);
    u.is_empty = k == 0;
    const char *d = key;
    size_t dn = k;
    host = url_host(&d, &dn, &host_len, &port_at, &h);
    char *domain = arena_alloc(port_at + 1);
    u.domain = hash_bytes(domain, put_lower(domain, host, port_at));
    return u;
}

/* -------------------------------------------------------------- the trace, once */

typedef struct result { bool has_url; url u; tokens text; bool has_text; } result;
typedef struct step {
    enum { OTHER, SEARCH, FETCH } type;
    bool has_query, has_url, has_content_text;
    tokens query, content; /* content: a fetch's */
    url u;
    result *results;
    size_t result_count;
} step;
typedef struct trace {
    const cJSON *root;
    const char *id;
    step *steps;
    size_t step_count;
    tokens input;
} trace;

static const char *str(const cJSON *o, const char *name, size_t *n) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!cJSON_IsString(v)) return NULL;
    *n = strlen(v->valuestring);
    return v->valuestring;
}

static bool has_nonspace(const char *s, size_t n) {
    for (size_t i = 0; s && i < n; i++)
        if (!is_space((unsigned char)s[i])) return true;
    return false;
}

/* Tokenises every text the five metrics read, once. */
static void read_trace(trace *t, const cJSON *root) {
    size_t n;
    const char *s;
    t->root = root;
    t->id = str(root, "id", &n);
    t->input = (s = str(root, "input", &n)) ? tokenize(s, n) : (tokens){0};
    const cJSON *steps = cJSON_GetObjectItemCaseSensitive(root, "steps"), *x;
    t->step_count = 0;
    t->steps = arena_alloc((size_t)(cJSON_IsArray(steps) ? cJSON_GetArraySize(steps) : 0) * sizeof *t->steps + 1);
    cJSON_ArrayForEach(x, (cJSON_IsArray(steps) ? steps : NULL)) {
        if (!cJSON_IsObject(x)) continue;
        step *st = &t->steps[t->step_count++];
        memset(st, 0, sizeof *st);
        const char *type = (s = str(x, "type", &n)) ? s : "";
        if (strcmp(type, "search") == 0) {
            st->type = SEARCH;
            if ((s = str(x, "query", &n))) st->has_query = true, st->query = tokenize(s, n);
            const cJSON *results = cJSON_GetObjectItemCaseSensitive(x, "results"), *r;
            st->results = arena_alloc((size_t)(cJSON_IsArray(results) ? cJSON_GetArraySize(results) : 0) * sizeof(result) + 1);
            cJSON_ArrayForEach(r, (cJSON_IsArray(results) ? results : NULL)) {
                if (!cJSON_IsObject(r)) continue;
                result *res = &st->results[st->result_count++];
                memset(res, 0, sizeof *res);
                size_t tn = 0, sn = 0;
                const char *title = str(r, "title", &tn), *snippet = str(r, "snippet", &sn);
                tokens a = title ? tokenize(title, tn) : (tokens){0}, b = snippet ? tokenize(snippet, sn) : (tokens){0};
                res->text = (tokens){arena_alloc((a.n + b.n + 1) * sizeof(uint64_t)), a.n + b.n};
                if (a.n) memcpy(res->text.v, a.v, a.n * sizeof(uint64_t));
                if (b.n) memcpy(res->text.v + a.n, b.v, b.n * sizeof(uint64_t));
                res->has_text = has_nonspace(title, tn) || has_nonspace(snippet, sn);
                if ((s = str(r, "url", &n))) res->has_url = true, res->u = url_of(s, n);
            }
        } else if (strcmp(type, "fetch") == 0) {
            st->type = FETCH;
            if ((s = str(x, "content", &n))) st->content = tokenize(s, n), st->has_content_text = has_nonspace(s, n);
            if ((s = str(x, "url", &n))) st->has_url = true, st->u = url_of(s, n);
        }
    }
}

/* ---------------------------------------------------------------------- output */

typedef struct out { char *data; size_t len, cap; } out;
static out o;

static void put(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void put(const char *fmt, ...) {
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(o.data + o.len, o.cap - o.len, fmt, ap);
        va_end(ap);
        if (o.len + (size_t)n < o.cap) {
            o.len += (size_t)n;
            return;
        }
        o.cap = 2 * (o.cap + (size_t)n);
        if (!(o.data = realloc(o.data, o.cap))) abort();
    }
}

static void put_number(double x) {
    if (isnan(x)) put("null");
    else if (x == floor(x) && fabs(x) < 1e15) put("%.0f", x);
    else { /* the shortest text that reads back as x, as assay writes numbers */
        char text[32];
        for (int digits = 15; digits <= 17; digits++) {
            snprintf(text, sizeof text, "%.*g", digits, x);
            if (strtod(text, NULL) == x) break;
        }
        put("%s", text);
    }
}

/* A JSON string, escaped as assay writes it: \" \\ \b \f \n \r \t, other controls \u00XX. */
static void put_string(const char *s) {
    put("\"");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        const char *e = c == '"' ? "\\\"" : c == '\\' ? "\\\\" : c == '\b' ? "\\b" : c == '\f' ? "\\f"
                      : c == '\n' ? "\\n" : c == '\r' ? "\\r" : c == '\t' ? "\\t" : NULL;
        if (e) put("%s", e);
        else if (c < 0x20) put("\\u%04x", c);
        else put("%c", c);
    }
    put("\"");
}

static void begin(const trace *t, const char *evaluator) {
    put("{\"trace_id\":");
    put_string(t->id);
    put(",\"evaluator\":\"%s\",\"step\":null,", evaluator);
}

static void scored(double score, bool pass) {
    put("\"score\":");
    put_number(score);
    put(",\"pass\":%s,\"label\":null,\"details\":{", pass ? "true" : "false");
}

static void skipped(const trace *t, const char *evaluator, const char *reason, const char *details) {
    begin(t, evaluator);
    put("\"score\":null,\"pass\":null,\"label\":null,\"details\":{%s%s\"skipped\":\"%s\"},\"error\":null,\"ms\":null}\n",
        details, *details ? "," : "", reason);
}

static void end(void) { put("},\"error\":null,\"ms\":null}\n"); }

/* ---------------------------------------------------------------- the metrics */

static void query_diversity(const trace *t) {
    size_t n = 0, bigrams = 0;
    for (size_t i = 0; i < t->step_count; i++) n += t->steps[i].type == SEARCH && t->steps[i].has_query;
    if (n < 2) {
        char d[40];
        snprintf(d, sizeof d, "\"n_queries\":%zu", n);
        return skipped(t, "query_diversity", "fewer than 2 search queries", d);
    }
    set *sets = arena_alloc(n * sizeof *sets), distinct = set_new(64);
    size_t q = 0;
    for (size_t i = 0; i < t->step_count; i++) {
        const step *st = &t->steps[i];
        if (st->type != SEARCH || !st->has_query) continue;
        sets[q] = set_new(st->query.n);
        set_add_tokens(&sets[q++], st->query, false);
        for (size_t k = 1; k < st->query.n; k++, bigrams++)
            set_add(&distinct, ((st->query.v[k - 1] * 0x9E3779B97F4A7C15ull) ^ st->query.v[k]) | 2);
    }
    double sum = 0, max = 0;
    size_t pairs = 0, near = 0;
    for (size_t i = 0; i + 1 < n; i++)
        for (size_t j = i + 1; j < n; j++, pairs++) {
            double sim = jaccard(&sets[i], &sets[j]);
            sum += sim;
            max = sim > max ? sim : max;
            near += sim >= 0.8;
        }
    double mean = sum / (double)pairs, score = 1 - mean;
    begin(t, "query_diversity");
    scored(score, score >= 0.5);
    put("\"distinct_2\":");
    put_number(bigrams ? (double)distinct.size / (double)bigrams : NAN);
    put(",\"max_pairwise_jaccard\":");
    put_number(max);
    put(",\"mean_pairwise_jaccard\":");
    put_number(mean);
    put(",\"n_queries\":%zu,\"near_duplicate_pairs\":%zu", n, near);
    end();
}

static void search_overlap(const trace *t) {
    size_t searches = 0, total = 0;
    for (size_t i = 0; i < t->step_count; i++) searches += t->steps[i].type == SEARCH;
    set *sets = arena_alloc((searches + 1) * sizeof *sets), all = set_new(64), domains = set_new(16);
    size_t k = 0;
    for (size_t i = 0; i < t->step_count; i++) {
        const step *st = &t->steps[i];
        if (st->type != SEARCH) continue;
        set *s = &sets[k++];
        *s = set_new(st->result_count);
        for (size_t r = 0; r < st->result_count; r++) {
            if (!st->results[r].has_url) continue;
            const url *u = &st->results[r].u;
            set_add(s, u->key);
            if (set_add(&all, u->key)) set_add(&domains, u->domain);
        }
        total += s->size;
    }
    if (total == 0) {
        char d[40];
        snprintf(d, sizeof d, "\"n_searches\":%zu", searches);
        return skipped(t, "search_overlap", "no search results with URLs", d);
    }
    double sum = 0;
    size_t pairs = 0;
    for (size_t i = 0; i + 1 < searches; i++)
        for (size_t j = i + 1; j < searches; j++)
            if (sets[i].size || sets[j].size) sum += jaccard(&sets[i], &sets[j]), pairs++;
    double score = (double)all.size / (double)total;
    begin(t, "search_overlap");
    scored(score, score >= 0.5);
    put("\"mean_pairwise_jaccard\":");
    put_number(pairs ? sum / (double)pairs : NAN);
    put(",\"n_searches\":%zu,\"redundancy\":", searches);
    put_number(1 - score);
    put(",\"total_results\":%zu,\"unique_domains\":%zu,\"unique_urls\":%zu", total, domains.size, all.size);
    end();
}

/* A document's content tokens with their counts (distinct tokens, any order). */
typedef struct doc { uint64_t *token; double *count; size_t n; double norm; } doc;

static doc doc_of(tokens t) {
    set seen = set_new(t.n);
    doc d = {arena_alloc((t.n + 1) * sizeof(uint64_t)), arena_alloc((t.n + 1) * sizeof(double)), 0, 0};
    size_t *where = arena_alloc((2 * (seen.mask + 1)) * sizeof(size_t));
    for (size_t i = 0; i < t.n; i++) {
        if (t.v[i] & STOP) continue;
        size_t s = slot_of(&seen, t.v[i]);
        if (!seen.slot[s]) seen.slot[s] = t.v[i], seen.size++, where[s] = d.n, d.token[d.n] = t.v[i], d.count[d.n++] = 0;
        d.count[where[s]] += 1;
    }
    return d;
}

/* The mean cosine of vec(input) with vec(each result document), TF-IDF as docs/metrics.md. */
static double result_relevance(const trace *t, size_t results) {
    doc *docs = arena_alloc((results + 1) * sizeof *docs);
    size_t n = 0;
    docs[n++] = doc_of(t->input);
    for (size_t i = 0; i < t->step_count; i++)
        for (size_t r = 0; t->steps[i].type == SEARCH && r < t->steps[i].result_count; r++)
            docs[n++] = doc_of(t->steps[i].results[r].text);
    size_t distinct = 0;
    for (size_t d = 0; d < n; d++) distinct += docs[d].n;
    set df_keys = set_new(distinct);
    double *df = arena_alloc((df_keys.mask + 1) * sizeof *df);
    for (size_t d = 0; d < n; d++)
        for (size_t k = 0; k < docs[d].n; k++) {
            size_t s = slot_of(&df_keys, docs[d].token[k]);
            if (!df_keys.slot[s]) df_keys.slot[s] = docs[d].token[k], df_keys.size++, df[s] = 0;
            df[s] += 1;
        }
    /* weights in place: count x idf, and each document's norm */
    for (size_t d = 0; d < n; d++) {
        double sq = 0;
        for (size_t k = 0; k < docs[d].n; k++) {
            double idf = log((1.0 + (double)n) / (1.0 + df[slot_of(&df_keys, docs[d].token[k])])) + 1.0;
            docs[d].count[k] *= idf;
            sq += docs[d].count[k] * docs[d].count[k];
        }
        docs[d].norm = sqrt(sq);
    }
    set first = set_new(docs[0].n);
    double *w0 = arena_alloc((first.mask + 1) * sizeof *w0);
    for (size_t k = 0; k < docs[0].n; k++) {
        size_t s = slot_of(&first, docs[0].token[k]);
        first.slot[s] = docs[0].token[k], first.size++, w0[s] = docs[0].count[k];
    }
    double sum = 0;
    for (size_t d = 1; d < n; d++) {
        double dot = 0;
        for (size_t k = 0; k < docs[d].n; k++) {
            size_t s = slot_of(&first, docs[d].token[k]);
            if (first.slot[s]) dot += docs[d].count[k] * w0[s];
        }
        double denominator = docs[0].norm * docs[d].norm;
        sum += denominator > 0 ? dot / denominator : 0;
    }
    return sum / (double)(n - 1);
}

static void relevance(const trace *t) {
    set prompt = set_new(t->input.n), context = set_new(4 * t->input.n + 64);
    set_add_tokens(&prompt, t->input, true);
    set_add_tokens(&context, t->input, true);
    size_t queries = 0, results = 0, off_topic = 0;
    for (size_t i = 0; i < t->step_count; i++) queries += t->steps[i].type == SEARCH && t->steps[i].has_query;
    double *rel = arena_alloc((queries + 1) * sizeof *rel), overlap = 0, sum = 0;
    size_t q = 0;
    for (size_t i = 0; i < t->step_count; i++) {
        const step *st = &t->steps[i];
        if (st->type == SEARCH) {
            if (st->has_query) {
                set words = set_new(st->query.n);
                set_add_tokens(&words, st->query, true);
                rel[q] = words.size ? (double)intersection(&words, &context) / (double)words.size : 0;
                overlap += words.size ? (double)intersection(&words, &prompt) / (double)words.size : 0;
                sum += rel[q], off_topic += rel[q] < 0.5, q++;
            }
            for (size_t r = 0; r < st->result_count; r++, results++) set_add_tokens(&context, st->results[r].text, true);
        } else if (st->type == FETCH) {
            set_add_tokens(&context, st->content, true);
        }
    }
    if (queries == 0) return skipped(t, "relevance", "no search queries", "");
    begin(t, "relevance");
    scored(sum / (double)queries, off_topic == 0);
    put("\"off_topic_queries\":%zu,\"per_query\":[", off_topic);
    for (size_t k = 0; k < queries; k++) {
        if (k) put(",");
        put_number(rel[k]);
    }
    put("],\"prompt_overlap\":");
    put_number(overlap / (double)queries);
    put(",\"result_relevance\":");
    put_number(results ? result_relevance(t, results) : NAN);
    end();
}

/* citation_support: the sources by URL key (the first fetch, else the first search result). */
typedef struct source { uint64_t key; const tokens *text; bool has_text; set words; bool has_words; } source;
typedef struct sources { source *v; size_t n; } sources;

static bool has_key(const sources *ss, uint64_t key) {
    for (size_t i = 0; i < ss->n; i++)
        if (ss->v[i].key == key) return true;
    return false;
}

static source *source_for(sources *fetched, sources *found, uint64_t key) {
    for (size_t i = 0; i < fetched->n; i++)
        if (fetched->v[i].key == key) return &fetched->v[i];
    for (size_t i = 0; i < found->n; i++)
        if (found->v[i].key == key) return &found->v[i];
    return NULL;
}

static bool starts_with_marker(const char *s, size_t n) {
    size_t j = 1;
    while (j < n && s[j] >= '0' && s[j] <= '9') j++;
    return n > 2 && s[0] == '[' && j > 1 && j < n && s[j] == ']';
}

/* The next marker "[k]" at or after *i: its k (capped), its span; false when none is left. */
static bool next_marker(const char *s, size_t n, size_t *i, long long *k, size_t *at, size_t *len) {
    for (; *i < n; (*i)++) {
        if (s[*i] != '[') continue;
        size_t j = *i + 1;
        long long v = 0;
        while (j < n && s[j] >= '0' && s[j] <= '9') v = v > (1LL << 58) ? (1LL << 60) : v * 10 + (s[j] - '0'), j++;
        if (j > *i + 1 && j < n && s[j] == ']') {
            *k = v, *at = *i, *len = j + 1 - *i, *i = j + 1;
            return true;
        }
    }
    return false;
}

typedef struct cite_counts { size_t pairs, supported, invalid, missing, cited, sentences; } cite_counts;

static void cite_sentence(const char *s, size_t n, const url *cites, size_t ncites, sources *fetched, sources *found,
                          bool *missing, cite_counts *c) {
    while (n && is_space((unsigned char)*s)) s++, n--;
    while (n && is_space((unsigned char)s[n - 1])) n--;
    if (!n || starts_with_marker(s, n)) return;
    c->sentences++;
    size_t i = 0, at, len;
    long long k;
    bool *seen = arena_alloc(ncites + 1), any = false;
    memset(seen, 0, ncites + 1);
    set claim = {0};
    while (next_marker(s, n, &i, &k, &at, &len)) {
        if (k < 1 || (unsigned long long)k > ncites) {
            /* distinct invalid k per sentence: the values are rare, a scan will do */
            bool again = false;
            size_t i2 = 0, at2, len2;
            long long k2;
            while (next_marker(s, n, &i2, &k2, &at2, &len2) && at2 < at) again |= k2 == k;
            c->invalid += !again;
            continue;
        }
        if (seen[k]) continue;
        seen[k] = true;
        if (!any) { /* the claim: the sentence without its markers */
            char *stripped = arena_alloc(n + 1);
            size_t m = 0, copied = 0, i3 = 0, at3, len3;
            long long k3;
            while (next_marker(s, n, &i3, &k3, &at3, &len3)) {
                memcpy(stripped + m, s + copied, at3 - copied), m += at3 - copied;
                copied = at3 + len3;
            }
            memcpy(stripped + m, s + copied, n - copied), m += n - copied;
            tokens words = tokenize(stripped, m);
            claim = set_new(words.n);
            set_add_tokens(&claim, words, true);
            any = true;
        }
        c->pairs++;
        source *src = cites[k - 1].is_empty ? NULL : source_for(fetched, found, cites[k - 1].key);
        double support;
        if (!src) missing[k] = true, support = 0;
        else if (claim.size == 0) support = 1;
        else {
            if (!src->has_words) {
                src->words = set_new(src->text->n);
                set_add_tokens(&src->words, *src->text, false);
                src->has_words = true;
            }
            support = (double)intersection(&claim, &src->words) / (double)claim.size;
        }
        c->supported += support >= 0.6;
    }
    c->cited += any;
}

static void citation_support(const trace *t) {
    size_t n;
    const char *output = str(t->root, "output", &n);
    if (!output) return skipped(t, "citation_support", "no output", "");
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(t->root, "citations"), *x;
    size_t ncites = 0;
    url *cites = arena_alloc(((size_t)(cJSON_IsArray(list) ? cJSON_GetArraySize(list) : 0) + 1) * sizeof *cites);
    cJSON_ArrayForEach(x, (cJSON_IsArray(list) ? list : NULL)) {
        cites[ncites++] = cJSON_IsString(x) ? url_of(x->valuestring, strlen(x->valuestring)) : (url){.is_empty = true};
    }
    size_t total = 0;
    for (size_t i = 0; i < t->step_count; i++) total += 1 + t->steps[i].result_count;
    sources fetched = {arena_alloc(total * sizeof(source) + 1), 0}, found = {arena_alloc(total * sizeof(source) + 1), 0};
    bool has_sources = false;
    for (size_t i = 0; i < t->step_count; i++) {
        const step *st = &t->steps[i];
        if (st->type == FETCH && st->has_url && !has_key(&fetched, st->u.key)) {
            fetched.v[fetched.n++] = (source){st->u.key, &st->content, st->has_content_text, {0}, false};
            has_sources |= st->has_content_text;
        }
        for (size_t r = 0; st->type == SEARCH && r < st->result_count; r++) {
            const result *res = &st->results[r];
            if (!res->has_url || has_key(&found, res->u.key)) continue;
            found.v[found.n++] = (source){res->u.key, &res->text, res->has_text, {0}, false};
            has_sources |= res->has_text;
        }
    }
    cite_counts c = {0};
    bool *missing = arena_alloc(ncites + 1);
    memset(missing, 0, ncites + 1);
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = output[i];
        if (ch == '\n' || ((ch == '.' || ch == '!' || ch == '?') && i + 1 < n && is_space((unsigned char)output[i + 1]))) {
            size_t stop = ch == '\n' ? i : i + 1;
            cite_sentence(output + start, stop - start, cites, ncites, &fetched, &found, missing, &c);
            start = i + 1;
        }
    }
    if (start < n) cite_sentence(output + start, n - start, cites, ncites, &fetched, &found, missing, &c);
    for (size_t k = 1; k <= ncites; k++) c.missing += missing[k];
    char d[96];
    if (c.pairs == 0) {
        snprintf(d, sizeof d, "\"invalid_markers\":%zu,\"sentences\":%zu", c.invalid, c.sentences);
        return skipped(t, "citation_support", "no citation markers pointing into citations", d);
    }
    if (!has_sources) {
        snprintf(d, sizeof d, "\"invalid_markers\":%zu,\"pairs\":%zu", c.invalid, c.pairs);
        return skipped(t, "citation_support", "no sources logged", d);
    }
    double score = (double)c.supported / (double)c.pairs;
    begin(t, "citation_support");
    scored(score, score >= 0.7 && c.invalid == 0);
    put("\"cited_sentences\":%zu,\"invalid_markers\":%zu,\"missing_sources\":%zu,\"pairs\":%zu,\"sentences\":%zu,"
        "\"supported\":%zu", c.cited, c.invalid, c.missing, c.pairs, c.sentences, c.supported);
    end();
}

static bool all_occur(const cJSON *list, const char *output, bool want) {
    const cJSON *x;
    cJSON_ArrayForEach(x, list) {
        if (cJSON_IsString(x) && (strstr(output, x->valuestring) != NULL) != want) return false;
    }
    return true;
}

static void expect(const trace *t) {
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(t->root, "expected"), *v;
    if (!cJSON_IsObject(e)) return skipped(t, "expect", "no expected object", "");
    size_t n = 0;
    const char *output = str(t->root, "output", &n);
    if (!output) output = "";
    const char *failed[6];
    size_t checks = 0, nfailed = 0;
    char regex_error[128] = "";
#define CHECK(name, ok) (checks++, (ok) ? (void)0 : (void)(failed[nfailed++] = (name)))
    if (cJSON_IsString(v = cJSON_GetObjectItemCaseSensitive(e, "equals"))) CHECK("equals", strcmp(output, v->valuestring) == 0);
    if (cJSON_IsArray(v = cJSON_GetObjectItemCaseSensitive(e, "contains"))) CHECK("contains", all_occur(v, output, true));
    if (cJSON_IsArray(v = cJSON_GetObjectItemCaseSensitive(e, "not_contains")))
        CHECK("not_contains", all_occur(v, output, false));
    if (cJSON_IsString(v = cJSON_GetObjectItemCaseSensitive(e, "regex"))) {
        regex_t re;
        int rc = regcomp(&re, v->valuestring, REG_EXTENDED | REG_NOSUB);
        if (rc) regerror(rc, &re, regex_error, sizeof regex_error);
        CHECK("regex", rc == 0 && regexec(&re, output, 0, NULL, 0) == 0);
        if (!rc) regfree(&re);
    }
    v = cJSON_GetObjectItemCaseSensitive(e, "max_chars");
    if (cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble) && fabs(v->valuedouble) < 9e15) {
        size_t chars = 0;
        for (size_t i = 0; i < n; i++) chars += ((unsigned char)output[i] & 0xC0) != 0x80;
        CHECK("max_chars", (double)chars <= v->valuedouble);
    }
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "json"))) {
        const char *end = NULL;
        cJSON *parsed = cJSON_ParseWithOpts(output, &end, 1);
        CHECK("json", parsed != NULL);
    }
#undef CHECK
    if (checks == 0) return skipped(t, "expect", "expected has none of the known checks", "");
    begin(t, "expect");
    scored((double)(checks - nfailed) / (double)checks, nfailed == 0);
    put("\"checks\":%zu,\"failed\":[", checks);
    for (size_t i = 0; i < nfailed; i++) put("%s\"%s\"", i ? "," : "", failed[i]);
    put("]");
    if (*regex_error) put(",\"regex_error\":\"%s\"", regex_error);
    end();
}

int main(int argc, char **argv) {
    FILE *f = argc == 2 ? fopen(argv[1], "rb") : NULL;
    if (!f) {
        fprintf(stderr, "usage: %s TRACES.jsonl\n", argv[0]);
        return 2;
    }
    tables_init();
    stopwords_init();
    cJSON_Hooks hooks = {cjson_alloc, cjson_free};
    cJSON_InitHooks(&hooks);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
        cJSON *root = cJSON_ParseWithLength(line, (size_t)n);
        /* what assay refuses as input (not an object, an id that is not a string) it reports
         * as an input error, which is not a metric: the reference leaves the line out */
        if (cJSON_IsObject(root) && cJSON_IsString(cJSON_GetObjectItemCaseSensitive(root, "id"))) {
            trace t;
            read_trace(&t, root);
            citation_support(&t);
            expect(&t);
            query_diversity(&t);
            relevance(&t);
            search_overlap(&t);
        }
        arena_reset();
        if (o.len > (1 << 16)) fwrite(o.data, 1, o.len, stdout), o.len = 0;
    }
    fwrite(o.data, 1, o.len, stdout);
    free(line);
    free(o.data);
    fclose(f);
    return 0;
}
