/* http.c - the HTTP client thread: libcurl's multi interface driven by a libuv loop of its
 * own (one uv_poll_t per socket, one uv_timer_t for curl's timeouts), shared by every worker.
 *
 * A request goes through: the cache (answered at once on a hit), coalescing (an identical
 * cacheable request already in flight takes the newcomer along), the spend cap, the ready
 * queue, and then the gates that decide when it may start: the adaptive in-flight cap and
 * the request and token rate buckets. A failed attempt that may succeed later (connection
 * errors, timeouts, 408, 429, 5xx) waits out its backoff, or the server's Retry-After, in the
 * delayed list and joins the ready queue again, while the run-wide retry budget lasts.
 *
 * Threads: http_submit and http_client_stats are called from other threads and touch only
 * the lock-guarded inbox and stats; everything else runs on the client's thread.
 *
 * Started at the first request: libcurl's global set-up (TLS libraries included) costs
 * 2.5 MB of resident memory and a thread, which a run of deterministic evaluators never
 * needs. What can be wrong in the configuration (the cache file) is still found when the
 * client is made. libcurl itself is opened then (curl_api.c: it is not linked), and
 * curl_global_init runs on a worker thread, once (uv_once); Debian's libcurl (7.88) is
 * built thread-safe for it (CURL_VERSION_THREADSAFE).
 */
#include "http.h"
#include "assay.h"
#include "base/hash.h"
#include "base/queue.h"
#include "curl_api.h"
#include "looper.h"

#include <cjson/cJSON.h>
#include <sqlite3.h>
#include <uv.h>

#include <math.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define HTTP_MAX_BODY_BYTES (64u << 20)
#define HTTP_MAX_BACKOFF_MS 30000u
#define HTTP_MAX_RETRY_AFTER_MS 120000u
#define HTTP_EXCERPT_BYTES 200
#define HTTP_CACHE_COMMIT_MS 200
#define HTTP_DEFAULT_OUTPUT_TOKENS 256 /* the token bucket's guess when max_tokens is unset */
#define HTTP_LEADER_BUCKETS 4096       /* coalescing table; a power of two */

typedef struct request request;
struct request {
    request *next;             /* inbox, ready queue, delayed list or a leader's followers */
    request *bucket_next;      /* leader table chain */
    http_client *c;
    sandbox_io *io;
    void (*done)(void *ctx, sandbox_io *io);
    void *ctx;
    char *url;                 /* the full URL */
    bool is_llm;
    unsigned endpoint;         /* LLM: 0 the default endpoint, i the i-th named one */
    char *key_text;            /* method, URL and body: what cache and coalescing match on */
    size_t key_len;
    uint64_t key_hash;
    request *followers;        /* identical requests answered with this one */
    bool is_leader;
    bool is_follower;          /* answered with a leader's response */
    CURL *easy;
    struct curl_slist *header_list;
    unsigned attempts;
    uint64_t due_ns;           /* when a delayed retry may go */
    uint64_t attempt_ns;       /* when the current attempt started */
    long estimated_tokens;
    long retry_after_ms;       /* from the last response, -1 none */
    bool is_over_budget;       /* the body passed the plugin's memory limit */
};

/* Charges bytes of body to the wait's budget; false when that spends it. */
static bool charge_body(sandbox_io *io, size_t bytes) {
    if (!io->budget) return true;
    return atomic_fetch_add(&io->budget->used, bytes) + bytes <= io->budget->limit;
}

static void uncharge_body(sandbox_io *io) {
    if (io->budget && io->response_body.len) atomic_fetch_sub(&io->budget->used, io->response_body.len);
}

typedef struct sockctx {
    uv_poll_t poll;
    curl_socket_t fd;
    http_client *c;
} sockctx;

struct http_client {
    http_config cfg;           /* strings owned */
    /* the LLM endpoints: 0 the default, i >= 1 the named ones; NULL auth: no key */
    char *llm_urls[1 + ASSAY_MAX_LLM_ENDPOINTS], *auth_headers[1 + ASSAY_MAX_LLM_ENDPOINTS];
    size_t endpoint_count;     /* including the default */
    char *cache_path;

    looper lp;                 /* the client's thread and loop; its lock guards inbox */
    queue inbox;               /* submitted by the workers */
    uv_timer_t curl_timer, gate_timer, commit_timer;

    CURLM *multi;
    queue ready;               /* accepted, waiting for the gates */
    request *delayed;
    request *leaders[HTTP_LEADER_BUCKETS];
    size_t outstanding;        /* submitted and not answered; owned by the thread */
    unsigned inflight;
    double cap;                /* adaptive in-flight cap in [1, max_inflight] */
    uint64_t last_decrease_ns;
    double rps_tokens, tpm_tokens;
    uint64_t buckets_ns;
    long tokens_used;
    uint64_t started;          /* requests that reached the network at least once */

    sqlite3 *db;
    sqlite3_stmt *cache_get, *cache_put;
    bool in_transaction;
    uint64_t rng;

    uv_mutex_t start_lock;     /* guards the two below */
    bool is_started;           /* libcurl, the loop and the thread are up */
    bool start_failed;         /* they could not be: every request is answered with the reason */
    char start_error[512];     /* the reason */
    const curl_api *cu;        /* libcurl's functions, once started */

    uv_mutex_t stats_lock;
    http_stats stats;          /* guarded by stats_lock; percentiles filled on demand */
    float *latencies;          /* guarded by stats_lock */
    size_t latency_count, latency_cap;
};

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double jitter(http_client *c) { /* xorshift: uniform in [0.5, 1) */
    c->rng ^= c->rng << 13, c->rng ^= c->rng >> 7, c->rng ^= c->rng << 17;
    return 0.5 + (double)(c->rng >> 11) / 9007199254740992.0 * 0.5;
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

/* ------------------------------------------------------------------------------ cache */

static bool cache_open(http_client *c, char *err, size_t errlen) {
    if (sqlite3_open_v2(c->cache_path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cache %s: %s", c->cache_path, c->db ? sqlite3_errmsg(c->db) : "cannot open");
        return false;
    }
    const char *schema = "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000;"
                         "CREATE TABLE IF NOT EXISTS http_cache(key TEXT PRIMARY KEY, request BLOB NOT NULL,"
                         " status INTEGER NOT NULL, headers BLOB, body BLOB, tokens_in INTEGER, tokens_out INTEGER,"
                         " created REAL NOT NULL)";
    if (sqlite3_exec(c->db, schema, NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(c->db, "SELECT request, status, headers, body, tokens_in, tokens_out FROM http_cache WHERE key = ?",
                           -1, &c->cache_get, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(c->db, "INSERT OR REPLACE INTO http_cache VALUES (?, ?, ?, ?, ?, ?, ?, julianday('now'))",
                           -1, &c->cache_put, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cache %s: %s", c->cache_path, sqlite3_errmsg(c->db));
        return false;
    }
    return true;
}

static void cache_commit(http_client *c) {
    if (!c->in_transaction) return;
    sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL);
    c->in_transaction = false;
}

static void on_commit_timer(uv_timer_t *t) { cache_commit(t->data); }

static void cache_key(const request *r, char out[33]) { hash_cache_key(r->key_text, r->key_len, out); }

/* Answers io from the cache; the stored request must match byte for byte. */
static bool cache_lookup(http_client *c, request *r) {
    if (!c->db) return false;
    char key[33];
    cache_key(r, key);
    sqlite3_stmt *s = c->cache_get;
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    bool hit = false;
    if (sqlite3_step(s) == SQLITE_ROW && (size_t)sqlite3_column_bytes(s, 0) == r->key_len &&
        memcmp(sqlite3_column_blob(s, 0), r->key_text, r->key_len) == 0) {
        sandbox_io *io = r->io;
        io->status = sqlite3_column_int(s, 1);
        buf_append(&io->response_headers, sqlite3_column_blob(s, 2), (size_t)sqlite3_column_bytes(s, 2));
        size_t bytes = (size_t)sqlite3_column_bytes(s, 3);
        if (charge_body(io, bytes)) { /* else fetched, and failed there, as too large */
            buf_append(&io->response_body, sqlite3_column_blob(s, 3), bytes);
            hit = !buf_failed(&io->response_body) && !buf_failed(&io->response_headers);
        } else {
            atomic_fetch_sub(&io->budget->used, bytes);
        }
        io->is_cache_hit = hit;
    }
    sqlite3_reset(s);
    return hit;
}

static void cache_store(http_client *c, const request *r, long tokens_in, long tokens_out) {
    if (!c->db) return;
    if (!c->in_transaction) {
        if (sqlite3_exec(c->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) return;
        c->in_transaction = true;
        uv_timer_start(&c->commit_timer, on_commit_timer, HTTP_CACHE_COMMIT_MS, 0);
    }
    char key[33];
    cache_key(r, key);
    const sandbox_io *io = r->io;
    sqlite3_stmt *s = c->cache_put;
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_blob(s, 2, r->key_text, (int)r->key_len, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, io->status);
    sqlite3_bind_blob(s, 4, io->response_headers.data ? io->response_headers.data : "", (int)io->response_headers.len,
                      SQLITE_STATIC);
    sqlite3_bind_blob(s, 5, io->response_body.data ? io->response_body.data : "", (int)io->response_body.len,
                      SQLITE_STATIC);
    sqlite3_bind_int64(s, 6, tokens_in);
    sqlite3_bind_int64(s, 7, tokens_out);
    sqlite3_step(s); /* a cache that cannot be written only costs a later re-request */
    sqlite3_reset(s);
}

/* ---------------------------------------------------------------------- coalescing */

static request **leader_slot(http_client *c, uint64_t hash) { return &c->leaders[hash & (HTTP_LEADER_BUCKETS - 1)]; }

static request *leader_find(http_client *c, const request *r) {
    for (request *l = *leader_slot(c, r->key_hash); l; l = l->bucket_next)
        if (l->key_hash == r->key_hash && l->key_len == r->key_len && memcmp(l->key_text, r->key_text, r->key_len) == 0)
            return l;
    return NULL;
}

static void leader_add(http_client *c, request *r) {
    request **slot = leader_slot(c, r->key_hash);
    r->bucket_next = *slot;
    *slot = r;
    r->is_leader = true;
}

static void leader_remove(http_client *c, request *r) {
    if (!r->is_leader) return;
    for (request **p = leader_slot(c, r->key_hash); *p; p = &(*p)->bucket_next)
        if (*p == r) {
            *p = r->bucket_next;
            break;
        }
    r->is_leader = false;
}

/* -------------------------------------------------------------------------- answers */

static void request_free(request *r) {
    if (r->easy) r->c->cu->easy_cleanup(r->easy);
    if (r->header_list) r->c->cu->slist_free_all(r->header_list);
    free(r->url);
    free(r->key_text);
    free(r);
}

static void stats_add(http_client *c, void (*update)(http_stats *, const void *), const void *arg) {
    uv_mutex_lock(&c->stats_lock);
    update(&c->stats, arg);
    uv_mutex_unlock(&c->stats_lock);
}

static void count_answer(http_stats *s, const void *arg) {
    const request *r = arg;
    s->requests++;
    s->cache_hits += r->io->is_cache_hit && !r->is_follower; /* followers count as coalesced */
    s->failures += r->io->error != NULL;
}

/* Hands io back to its worker; the request no longer belongs to us afterwards. */
static void deliver(http_client *c, request *r) {
    stats_add(c, count_answer, r);
    r->done(r->ctx, r->io);
    c->outstanding--;
}

static void copy_answer(const sandbox_io *from, sandbox_io *to) {
    to->status = from->status;
    buf_append(&to->response_headers, from->response_headers.data, from->response_headers.len);
    if (charge_body(to, from->response_body.len)) {
        buf_append(&to->response_body, from->response_body.data, from->response_body.len);
        if (from->error) to->error = strdup(from->error);
    } else {
        to->error = strdup("http: the responses of this call are larger than the plugin's memory limit");
    }
    to->is_cache_hit = true; /* it cost nothing: the leader paid */
    to->ms = from->ms;
}

/* Answers r and every request coalesced onto it, then frees r. */
static void answer(http_client *c, request *r) {
    leader_remove(c, r);
    for (request *f = r->followers; f;) {
        request *next = f->next;
        copy_answer(r->io, f->io);
        deliver(c, f);
        request_free(f);
        f = next;
    }
    deliver(c, r);
    request_free(r);
}

static void fail(http_client *c, request *r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail(http_client *c, request *r, const char *fmt, ...) {
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    char message[800];
    snprintf(message, sizeof message, "http: %s %s: %s", r->io->method, r->url, what);
    free(r->io->error);
    r->io->error = strdup(message);
    answer(c, r);
}

/* ------------------------------------------------------------------- the gates */

static void pump(http_client *c);

static void on_gate_timer(uv_timer_t *t) { pump(t->data); }

static void refill_buckets(http_client *c) {
    uint64_t now = now_ns();
    double seconds = (double)(now - c->buckets_ns) / 1e9;
    c->buckets_ns = now;
    if (c->cfg.rps > 0) c->rps_tokens = fmin(fmax(c->cfg.rps, 1.0), c->rps_tokens + seconds * c->cfg.rps);
    if (c->cfg.tpm > 0) c->tpm_tokens = fmin((double)c->cfg.tpm, c->tpm_tokens + seconds * (double)c->cfg.tpm / 60.0);
}

/* How long until r may start, in ms; 0 when it may start now. */
static uint64_t gate_wait_ms(http_client *c, const request *r) {
    refill_buckets(c);
    double wait_s = 0;
    if (c->cfg.rps > 0 && c->rps_tokens < 1.0) wait_s = (1.0 - c->rps_tokens) / c->cfg.rps;
    if (c->cfg.tpm > 0 && r->is_llm) {
        /* a request larger than the whole bucket goes when the bucket is full */
        double need = fmin((double)r->estimated_tokens, (double)c->cfg.tpm);
        if (c->tpm_tokens < need) wait_s = fmax(wait_s, (need - c->tpm_tokens) / ((double)c->cfg.tpm / 60.0));
    }
    return wait_s > 0 ? (uint64_t)ceil(wait_s * 1000.0) : 0;
}

static size_t write_body(char *data, size_t size, size_t n, void *userdata) {
    request *r = userdata;
    size_t bytes = size * n;
    if (r->io->response_body.len + bytes > HTTP_MAX_BODY_BYTES) return 0;
    if (!charge_body(r->io, bytes)) {
        r->is_over_budget = true;
        return 0;
    }
    buf_append(&r->io->response_body, data, bytes);
    return buf_failed(&r->io->response_body) ? 0 : bytes;
}

/* Keeps the header lines of the last response only (curl reports those of 1xx too). */
static size_t write_header(char *data, size_t size, size_t n, void *userdata) {
    request *r = userdata;
    size_t bytes = size * n;
    buf *h = &r->io->response_headers;
    if (bytes >= 5 && memcmp(data, "HTTP/", 5) == 0) {
        buf_reset(h);
        r->retry_after_ms = -1;
        return bytes;
    }
    if (bytes > 12 && strncasecmp(data, "retry-after:", 12) == 0) {
        char value[64];
        size_t len = bytes - 12 < sizeof value - 1 ? bytes - 12 : sizeof value - 1;
        memcpy(value, data + 12, len);
        value[len] = '\0';
        char *end;
        long seconds = strtol(value, &end, 10);
        if (end != value && seconds >= 0) {
            r->retry_after_ms = seconds * 1000;
        } else {
            time_t when = r->c->cu->getdate(value, NULL);
            if (when > 0) r->retry_after_ms = (long)fmax(0.0, difftime(when, time(NULL))) * 1000;
        }
    }
    if (bytes > 2 && h->len + bytes < 65536) buf_append(h, data, bytes);
    return bytes;
}

static bool attempt_start(http_client *c, request *r) {
    const curl_api *cu = c->cu;
    sandbox_io *io = r->io;
    uncharge_body(io);
    buf_reset(&io->response_body);
    buf_reset(&io->response_headers);
    r->retry_after_ms = -1;
    r->is_over_budget = false;
    if (!r->easy && !(r->easy = cu->easy_init())) return false;
    CURL *e = r->easy;
    cu->easy_reset(e);
    cu->easy_setopt(e, CURLOPT_URL, r->url);
    cu->easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    cu->easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    cu->easy_setopt(e, CURLOPT_PRIVATE, r);
    cu->easy_setopt(e, CURLOPT_WRITEFUNCTION, write_body);
    cu->easy_setopt(e, CURLOPT_WRITEDATA, r);
    cu->easy_setopt(e, CURLOPT_HEADERFUNCTION, write_header);
    cu->easy_setopt(e, CURLOPT_HEADERDATA, r);
    unsigned timeout = io->timeout_ms ? io->timeout_ms : c->cfg.timeout_ms;
    cu->easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)timeout);
    cu->easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)(timeout < 10000 ? timeout : 10000));
    cu->easy_setopt(e, CURLOPT_USERAGENT, "assay/" ASSAY_VERSION_STRING);
    if (strcmp(io->method, "GET") == 0) {
        cu->easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else if (strcmp(io->method, "HEAD") == 0) {
        cu->easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else {
        cu->easy_setopt(e, CURLOPT_POST, 1L);
        cu->easy_setopt(e, CURLOPT_POSTFIELDS, io->body.data ? io->body.data : "");
        cu->easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)io->body.len);
        if (strcmp(io->method, "POST") != 0) cu->easy_setopt(e, CURLOPT_CUSTOMREQUEST, io->method);
    }
    if (!r->header_list) {
        struct curl_slist *list = cu->slist_append(NULL, "Expect:"); /* no 100-continue round trip */
        for (size_t i = 0; list && i < io->header_count; i++) list = cu->slist_append(list, io->headers[i]);
        if (list && r->is_llm) list = cu->slist_append(list, "Content-Type: application/json");
        if (list && r->is_llm && c->auth_headers[r->endpoint])
            list = cu->slist_append(list, c->auth_headers[r->endpoint]);
        if (!list) return false;
        r->header_list = list;
    }
    cu->easy_setopt(e, CURLOPT_HTTPHEADER, r->header_list);
    r->attempts++;
    r->attempt_ns = now_ns();
    if (cu->multi_add_handle(c->multi, e) != CURLM_OK) return false;
    c->inflight++;
    uv_mutex_lock(&c->stats_lock);
    c->stats.sent++;
    if (c->inflight > c->stats.peak_inflight) c->stats.peak_inflight = c->inflight;
    uv_mutex_unlock(&c->stats_lock);
    return true;
}

/* Starts what the gates let through; arms the gate timer for the rest. */
static void pump(http_client *c) {
    uint64_t now = now_ns();
    uint64_t next_due = 0;
    for (request **p = &c->delayed; *p;) { /* retries whose backoff is over rejoin the queue */
        request *r = *p;
        if (r->due_ns <= now) {
            *p = r->next;
            queue_push(&c->ready, r);
        } else {
            if (!next_due || r->due_ns < next_due) next_due = r->due_ns;
            p = &r->next;
        }
    }
    uint64_t wait_ms = 0;
    while (!queue_is_empty(&c->ready) && c->inflight < (unsigned)c->cap) {
        request *r = c->ready.head;
        if ((wait_ms = gate_wait_ms(c, r)) > 0) break;
        queue_pop(&c->ready);
        if (r->is_llm && c->cfg.max_tokens_total > 0 && c->tokens_used >= c->cfg.max_tokens_total) {
            fail(c, r, "not sent: the spend cap of %ld tokens was reached", c->cfg.max_tokens_total);
            continue;
        }
        if (c->cfg.rps > 0) c->rps_tokens -= 1.0;
        if (c->cfg.tpm > 0 && r->is_llm) c->tpm_tokens -= (double)r->estimated_tokens;
        if (r->attempts == 0) c->started++;
        if (!attempt_start(c, r)) fail(c, r, "cannot start the request (out of memory)");
    }
    if (next_due) {
        uint64_t ms = (next_due - now + 999999) / 1000000;
        if (!wait_ms || ms < wait_ms) wait_ms = ms;
    }
    if (wait_ms) uv_timer_start(&c->gate_timer, on_gate_timer, wait_ms, 0);
}

/* ---------------------------------------------------------------- finishing attempts */

static void client_close_handles(http_client *c);

/* Closes the loop's handles once asked to stop and nothing is left to answer. */
static void maybe_stop(http_client *c) {
    uv_mutex_lock(&c->lp.lock);
    bool stopping = c->lp.is_stopping && queue_is_empty(&c->inbox);
    uv_mutex_unlock(&c->lp.lock);
    if (stopping && c->outstanding == 0 && c->multi) {
        client_close_handles(c);
        looper_close_mailbox(&c->lp);
    }
}

/* Reads usage from an LLM answer; false if the body is not a JSON object. */
static bool parse_usage(const buf *body, long *in, long *out) {
    cJSON *root = cJSON_ParseWithLength(body->data ? body->data : "", body->len);
    bool ok = cJSON_IsObject(root);
    const cJSON *usage = cJSON_GetObjectItemCaseSensitive(root, "usage");
    const cJSON *pin = cJSON_GetObjectItemCaseSensitive(usage, "prompt_tokens");
    const cJSON *pout = cJSON_GetObjectItemCaseSensitive(usage, "completion_tokens");
    if (!pin) pin = cJSON_GetObjectItemCaseSensitive(usage, "input_tokens");
    if (!pout) pout = cJSON_GetObjectItemCaseSensitive(usage, "output_tokens");
    *in = cJSON_IsNumber(pin) && pin->valuedouble > 0 ? (long)pin->valuedouble : 0;
    *out = cJSON_IsNumber(pout) && pout->valuedouble > 0 ? (long)pout->valuedouble : 0;
    cJSON_Delete(root);
    return ok;
}

static void add_latency(http_client *c, double ms) {
    uv_mutex_lock(&c->stats_lock);
    if (c->latency_count == c->latency_cap) {
        size_t cap = c->latency_cap ? c->latency_cap * 2 : 1024;
        float *grown = realloc(c->latencies, cap * sizeof *grown);
        if (grown) c->latencies = grown, c->latency_cap = cap;
    }
    if (c->latency_count < c->latency_cap) c->latencies[c->latency_count++] = (float)ms;
    uv_mutex_unlock(&c->stats_lock);
}

static bool retry_allowed(http_client *c, const request *r) {
    if (r->attempts >= c->cfg.max_attempts) return false;
    uv_mutex_lock(&c->stats_lock);
    /* the budget: retries stay under 100 + half the requests, so a failing provider is
     * not hit with five times the traffic */
    bool ok = c->stats.retries < 100 + c->started / 2;
    if (ok) c->stats.retries++;
    uv_mutex_unlock(&c->stats_lock);
    return ok;
}

static void schedule_retry(http_client *c, request *r) {
    double backoff = (double)c->cfg.backoff_base_ms * pow(2.0, (double)(r->attempts - 1)) * jitter(c);
    if (backoff > HTTP_MAX_BACKOFF_MS) backoff = HTTP_MAX_BACKOFF_MS;
    if (r->retry_after_ms >= 0) backoff = fmax(backoff, fmin((double)r->retry_after_ms, HTTP_MAX_RETRY_AFTER_MS));
    r->due_ns = now_ns() + (uint64_t)(backoff * 1e6);
    r->next = c->delayed;
    c->delayed = r;
}

/* Additive increase, multiplicative decrease: at most one halving per second, so one burst
 * of 429s from requests already in flight counts once. */
static void adapt(http_client *c, bool throttled) {
    if (throttled) {
        uint64_t now = now_ns();
        if (now - c->last_decrease_ns < 1000000000u) return;
        c->last_decrease_ns = now;
        c->cap = fmax(1.0, c->cap / 2.0);
    } else {
        c->cap = fmin((double)c->cfg.max_inflight, c->cap + 1.0 / c->cap);
    }
    uv_mutex_lock(&c->stats_lock);
    c->stats.inflight_cap = (unsigned)c->cap;
    uv_mutex_unlock(&c->stats_lock);
}

static void attempt_done(http_client *c, request *r, CURLcode result) {
    const curl_api *cu = c->cu;
    sandbox_io *io = r->io;
    cu->multi_remove_handle(c->multi, r->easy);
    c->inflight--;
    long status = 0;
    cu->easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    io->status = status;
    double ms = (double)(now_ns() - r->attempt_ns) / 1e6;
    bool retryable = result != CURLE_OK ? result != CURLE_WRITE_ERROR
                                        : status == 408 || status == 429 || (status >= 500 && status <= 599);
    long in = 0, out = 0;
    bool is_2xx = result == CURLE_OK && status >= 200 && status <= 299;
    bool is_json = r->is_llm && is_2xx && parse_usage(&io->response_body, &in, &out);
    /* a model endpoint's 200 whose body is not JSON (a proxy's error page, a cut stream) is
     * as passing as a 503: asked again; once the retries are spent it goes to the plugin,
     * whose error names the problem */
    bool is_garbage = r->is_llm && is_2xx && !is_json;
    if (status == 429) adapt(c, true);
    if (is_garbage && retry_allowed(c, r)) {
        schedule_retry(c, r);
        return;
    }
    if (retryable) {
        if (retry_allowed(c, r)) {
            schedule_retry(c, r);
            return;
        }
        char text[HTTP_EXCERPT_BYTES + 1];
        buf_excerpt(&io->response_body, text, sizeof text);
        if (result != CURLE_OK)
            fail(c, r, "%s after %u attempt%s", cu->easy_strerror(result), r->attempts, r->attempts == 1 ? "" : "s");
        else
            fail(c, r, "status %ld after %u attempt%s: %s", status, r->attempts, r->attempts == 1 ? "" : "s", text);
        return;
    }
    if (result != CURLE_OK) {
        if (r->is_over_budget)
            fail(c, r, "the responses of this call are larger than the plugin's memory limit (%zu MiB)",
                 io->budget->limit >> 20);
        else
            fail(c, r, "%s", io->response_body.len >= HTTP_MAX_BODY_BYTES ? "response larger than 64 MiB"
                                                                            : cu->easy_strerror(result));
        return;
    }
    add_latency(c, ms);
    io->ms = ms;
    if (status >= 200 && status <= 299) adapt(c, false);
    if (r->is_llm) {
        io->tokens_in = in;
        io->tokens_out = out;
        c->tokens_used += in + out;
        if (c->cfg.tpm > 0) c->tpm_tokens += (double)(r->estimated_tokens - (in + out)); /* settle the guess */
        uv_mutex_lock(&c->stats_lock);
        c->stats.tokens_in += (uint64_t)in;
        c->stats.tokens_out += (uint64_t)out;
        uv_mutex_unlock(&c->stats_lock);
    }
    /* only good answers are kept: an error or a malformed body is asked again next run */
    if (r->key_text && status >= 200 && status <= 299 && (!r->is_llm || is_json)) cache_store(c, r, in, out);
    answer(c, r);
}

static void check_multi_info(http_client *c) {
    const curl_api *cu = c->cu;
    CURLMsg *m;
    int left;
    while ((m = cu->multi_info_read(c->multi, &left))) {
        if (m->msg != CURLMSG_DONE) continue;
        CURL *easy = m->easy_handle; /* m is invalid once the handle is removed */
        CURLcode result = m->data.result;
        request *r = NULL;
        cu->easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&r);
        attempt_done(c, r, result);
    }
    pump(c);
    maybe_stop(c);
}

/* ------------------------------------------------------------- curl on the uv loop */

static void on_poll(uv_poll_t *handle, int status, int events) {
    sockctx *s = handle->data;
    int flags = 0;
    if (status < 0) flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
    int running;
    s->c->cu->multi_socket_action(s->c->multi, s->fd, flags, &running);
    check_multi_info(s->c);
}

static void on_poll_closed(uv_handle_t *handle) { free(handle->data); }

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp) {
    (void)easy;
    http_client *c = userp;
    sockctx *s = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            uv_poll_stop(&s->poll);
            uv_close((uv_handle_t *)&s->poll, on_poll_closed);
            c->cu->multi_assign(c->multi, fd, NULL);
        }
        return 0;
    }
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s) return -1;
        s->fd = fd;
        s->c = c;
        if (uv_poll_init_socket(&c->lp.loop, &s->poll, fd) != 0) {
            free(s);
            return -1;
        }
        s->poll.data = s;
        c->cu->multi_assign(c->multi, fd, s);
    }
    int events = 0;
    if (what & CURL_POLL_IN) events |= UV_READABLE;
    if (what & CURL_POLL_OUT) events |= UV_WRITABLE;
    uv_poll_start(&s->poll, events, on_poll);
    return 0;
}

static void on_curl_timer(uv_timer_t *t) {
    http_client *c = t->data;
    int running;
    c->cu->multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_multi_info(c);
}

static int on_timer_request(CURLM *multi, long timeout_ms, void *userp) {
    (void)multi;
    http_client *c = userp;
    if (timeout_ms < 0) uv_timer_stop(&c->curl_timer);
    else uv_timer_start(&c->curl_timer, on_curl_timer, (uint64_t)timeout_ms, 0); /* 0: next iteration */
    return 0;
}

/* ---------------------------------------------------------------------- new requests */

static void accept_request(http_client *c, request *r) {
    sandbox_io *io = r->io;
    r->is_llm = io->kind != SANDBOX_IO_HTTP;
    r->endpoint = r->is_llm ? io->endpoint : 0;
    const char *base = r->is_llm && r->endpoint < c->endpoint_count ? c->llm_urls[r->endpoint] : "";
    size_t n = strlen(io->url) + strlen(base ? base : "") + 1;
    r->url = r->is_llm && !base ? NULL : malloc(n);
    if (!r->url) {
        io->error = strdup(r->is_llm && !base ? "llm: no such LLM endpoint configured" : "http: out of memory");
        deliver(c, r);
        request_free(r);
        return;
    }
    snprintf(r->url, n, "%s%s", base, io->url);
    r->estimated_tokens = (long)(io->body.len / 4) + (io->max_tokens > 0 ? io->max_tokens : HTTP_DEFAULT_OUTPUT_TOKENS);
    if (io->is_cacheable) {
        buf key;
        buf_init(&key);
        buf_printf(&key, "%s %s\n", io->method, r->url);
        buf_append(&key, io->body.data, io->body.len);
        if (io->repeat) buf_printf(&key, "\nrepeat %u", io->repeat); /* the first: the key it always had */
        r->key_len = key.len;
        r->key_text = buf_failed(&key) ? NULL : buf_steal(&key);
        buf_free(&key);
        if (r->key_text) {
            r->key_hash = hash_fnv1a(HASH_SHORT_BASIS, r->key_text, r->key_len);
            if (cache_lookup(c, r)) {
                answer(c, r);
                return;
            }
            request *leader = leader_find(c, r);
            if (leader) {
                r->is_follower = true;
                r->next = leader->followers;
                leader->followers = r;
                uv_mutex_lock(&c->stats_lock);
                c->stats.coalesced++;
                uv_mutex_unlock(&c->stats_lock);
                return;
            }
            leader_add(c, r);
        }
    }
    queue_push(&c->ready, r);
}

static void client_close_handles(http_client *c) {
    cache_commit(c);
    uv_close((uv_handle_t *)&c->gate_timer, NULL);
    uv_close((uv_handle_t *)&c->commit_timer, NULL);
    c->cu->multi_cleanup(c->multi); /* may still call on_socket to drop cached connections */
    c->multi = NULL;
    uv_close((uv_handle_t *)&c->curl_timer, NULL);
}

static void on_mail(uv_async_t *handle) {
    http_client *c = handle->data;
    queue list = QUEUE_INIT(request, next);
    uv_mutex_lock(&c->lp.lock);
    queue_move_all(&list, &c->inbox);
    uv_mutex_unlock(&c->lp.lock);
    for (request *r; (r = queue_pop(&list));) {
        c->outstanding++;
        accept_request(c, r);
    }
    pump(c);
    maybe_stop(c);
}

/* ------------------------------------------------------------------------- the API */

static bool client_start(http_client *c);

void http_submit(http_client *c, sandbox_io *io, void (*done)(void *ctx, sandbox_io *io), void *ctx) {
    if (!client_start(c)) {
        char message[sizeof c->start_error + 64];
        snprintf(message, sizeof message, "http: cannot start the HTTP client: %s", c->start_error);
        io->error = strdup(message);
        done(ctx, io);
        return;
    }
    request *r = calloc(1, sizeof *r);
    if (!r) {
        io->error = strdup("http: out of memory");
        done(ctx, io);
        return;
    }
    r->c = c;
    r->io = io;
    r->done = done;
    r->ctx = ctx;
    uv_mutex_lock(&c->lp.lock);
    queue_push(&c->inbox, r);
    uv_mutex_unlock(&c->lp.lock);
    looper_wake(&c->lp);
}

static void client_destroy(http_client *c) {
    if (c->cache_get) sqlite3_finalize(c->cache_get);
    if (c->cache_put) sqlite3_finalize(c->cache_put);
    if (c->db) sqlite3_close(c->db);
    for (size_t i = 0; i < c->endpoint_count; i++) {
        free(c->llm_urls[i]);
        if (c->auth_headers[i]) memset(c->auth_headers[i], 0, strlen(c->auth_headers[i]));
        free(c->auth_headers[i]);
    }
    free(c->cache_path);
    free(c->latencies);
    free(c);
}

http_client *http_client_new(const http_config *cfg, char *err, size_t errlen) {
    http_client *c = calloc(1, sizeof *c);
    if (!c) goto oom;
    c->cfg = *cfg;
    if (!c->cfg.max_inflight) c->cfg.max_inflight = 64;
    if (!c->cfg.timeout_ms) c->cfg.timeout_ms = ASSAY_DEFAULT_HTTP_TIMEOUT_MS;
    if (!c->cfg.max_attempts) c->cfg.max_attempts = 5;
    c->cap = c->cfg.max_inflight;
    c->stats.inflight_cap = c->cfg.max_inflight;
    c->rps_tokens = fmax(1.0, c->cfg.rps);
    c->tpm_tokens = (double)c->cfg.tpm;
    c->rng = now_ns() | 1;
    c->cache_path = dup_or_null(cfg->cache_path);
    if (cfg->cache_path && !c->cache_path) goto oom;
    for (size_t i = 0; i <= cfg->endpoint_count && i <= ASSAY_MAX_LLM_ENDPOINTS; i++) {
        const char *url = i ? cfg->endpoint_urls[i - 1] : cfg->llm_url;
        const char *key = i ? cfg->endpoint_keys[i - 1] : cfg->api_key;
        c->endpoint_count++;
        if (url && !(c->llm_urls[i] = strdup(url))) goto oom;
        if (key && *key) {
            size_t n = strlen(key) + sizeof "Authorization: Bearer ";
            if (!(c->auth_headers[i] = malloc(n))) goto oom;
            snprintf(c->auth_headers[i], n, "Authorization: Bearer %s", key);
        }
    }
    /* only the copies above are kept */
    c->cfg.llm_url = c->cfg.api_key = c->cfg.cache_path = NULL;
    c->cfg.endpoint_urls = c->cfg.endpoint_keys = NULL;
    if (c->cache_path && !cache_open(c, err, errlen)) {
        client_destroy(c);
        return NULL;
    }
    if (uv_mutex_init(&c->start_lock) != 0) goto oom;
    if (uv_mutex_init(&c->stats_lock) != 0) {
        uv_mutex_destroy(&c->start_lock);
        goto oom;
    }
    return c;
oom:
    snprintf(err, errlen, "out of memory");
    if (c) client_destroy(c);
    return NULL;
}

/* libcurl, the multi handle, the loop and the thread; false with nothing left to undo. */
static bool start_thread(http_client *c) {
    const curl_api *cu = c->cu = curl_api_load(c->start_error, sizeof c->start_error);
    if (!cu) return false;
    snprintf(c->start_error, sizeof c->start_error, "out of memory, or no thread");
    if (!(c->multi = cu->multi_init())) return false;
    cu->multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    cu->multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    cu->multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_timer_request);
    cu->multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    cu->multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)c->cfg.max_inflight);
    c->inbox = QUEUE_INIT(request, next);
    c->ready = QUEUE_INIT(request, next);
    c->buckets_ns = now_ns();
    if (looper_init(&c->lp, on_mail, c) != 0) {
        cu->multi_cleanup(c->multi);
        c->multi = NULL;
        return false;
    }
    uv_timer_init(&c->lp.loop, &c->curl_timer);
    c->curl_timer.data = c;
    uv_timer_init(&c->lp.loop, &c->gate_timer);
    c->gate_timer.data = c;
    uv_timer_init(&c->lp.loop, &c->commit_timer);
    c->commit_timer.data = c;
    if (looper_start(&c->lp) != 0) {
        client_close_handles(c);
        looper_abandon(&c->lp);
        return false;
    }
    return true;
}

/* Starts the thread at the first request (see the top); false if it cannot be. */
static bool client_start(http_client *c) {
    uv_mutex_lock(&c->start_lock);
    if (!c->is_started && !c->start_failed) {
        c->is_started = start_thread(c);
        c->start_failed = !c->is_started;
    }
    bool is_started = c->is_started;
    uv_mutex_unlock(&c->start_lock);
    return is_started;
}

void http_client_free(http_client *c) {
    if (!c) return;
    if (c->is_started) looper_stop(&c->lp); /* no request can come any more: no lock needed */
    uv_mutex_destroy(&c->start_lock);
    uv_mutex_destroy(&c->stats_lock);
    client_destroy(c);
}

static int compare_floats(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

void http_client_stats(http_client *c, http_stats *out) {
    memset(out, 0, sizeof *out);
    if (!c) return;
    uv_mutex_lock(&c->stats_lock);
    *out = c->stats;
    size_t n = c->latency_count;
    float *sorted = n ? malloc(n * sizeof *sorted) : NULL;
    if (sorted) memcpy(sorted, c->latencies, n * sizeof *sorted);
    uv_mutex_unlock(&c->stats_lock);
    if (sorted) {
        qsort(sorted, n, sizeof *sorted, compare_floats);
        out->p50_ms = sorted[(n - 1) / 2]; /* nearest rank, lower median */
        out->p95_ms = sorted[(size_t)ceil(0.95 * (double)n) - 1];
        free(sorted);
    }
}
