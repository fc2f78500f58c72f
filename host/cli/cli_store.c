/* cli_store.c - the run store: a SQLite file (default .assay/assay.db) where every
 * `assay run` records itself and its results, read back by `assay runs`, `compare` and
 * `report`.
 *
 * Writing must not slow a run: results are copied into a batch on the loop thread and
 * committed by one thread-pool task at a time, one transaction per batch, in WAL mode with
 * synchronous=NORMAL. A batch holds whole traces and results arrive in input order, so
 * after each commit the store holds every record up to a known input position; the run's
 * progress journal checkpoints only positions the store has committed, which is what lets
 * --resume leave each record in the store exactly once. A run killed at any moment leaves
 * the last committed transaction: a run row marked "running" with a prefix of its results.
 *
 * Of every trace the store keeps a digest (its metadata and step types, cli_digest.c):
 * what grouping and the report's tables read. Whole bodies, which the report's drill-down
 * shows, are kept only for the STORE_KEPT_BODIES worst traces of the run, ranked as the
 * report ranks them: storing every body wrote the whole input a second time and was two
 * thirds of the store's cost. Bodies are kept once per distinct content (table bodies,
 * keyed by a hash of the line). Results are clustered by input position and each
 * evaluator's totals are counted as they pass, so that neither writing nor reading a run
 * of millions of results depends on its trace ids. The first command to open a store of an
 * earlier schema upgrades it (store_upgrade); its schema-1 traces, which have no digests,
 * are read from their bodies.
 */
#include "cli.h"
#include "../base/buf.h"

#include <errno.h>
#include <limits.h>
#include <cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define STORE_BATCH_ROWS 4096
#define STORE_BATCH_BYTES (4u << 20)
#define STORE_BUSY_MS 10000
#define STORE_SCHEMA_VERSION "6"

/* Each evaluator's totals over its run's results, written when the run ends (NULL while it
 * runs or after a kill), so that `assay runs` and the report's trend over many runs read
 * one row per run and evaluator instead of every result. */
#define STORE_TALLY_COLUMNS \
    " records INTEGER, scored INTEGER, mean REAL, passed INTEGER, pass_n INTEGER, errors INTEGER," \
    " tokens_in INTEGER, tokens_out INTEGER, cost REAL"
/* From the results, tokens and cost come from details.usage, which an evaluation that ended
 * in an error does not keep: only a resumed run's earlier part, a merge and an upgrade are
 * counted this way (the writer counts every evaluation's tokens). */
#define STORE_TALLY(where)                                                                              \
    "UPDATE run_evaluators SET records = 0, scored = 0, mean = NULL, passed = 0, pass_n = 0, errors = 0," \
    " tokens_in = 0, tokens_out = 0, cost = NULL WHERE " where ";"                                      \
    "UPDATE run_evaluators AS e SET records = s.records, scored = s.scored, mean = s.mean,"             \
    " passed = s.passed, pass_n = s.pass_n, errors = s.errors, tokens_in = s.tokens_in,"                \
    " tokens_out = s.tokens_out, cost = s.cost FROM (SELECT run_id, evaluator,"                         \
    " COUNT(*) AS records, COUNT(score) AS scored, AVG(score) AS mean, COALESCE(SUM(pass), 0) AS passed," \
    " COUNT(pass) AS pass_n, COUNT(error_kind) AS errors,"                                               \
    " COALESCE(SUM(json_extract(details, '$.usage.tokens_in')), 0) AS tokens_in,"                        \
    " COALESCE(SUM(json_extract(details, '$.usage.tokens_out')), 0) AS tokens_out,"                      \
    " SUM(json_extract(details, '$.usage.cost')) AS cost FROM results WHERE " where                      \
    " GROUP BY run_id, evaluator) AS s WHERE e.run_id = s.run_id AND e.name = s.evaluator;"

/* Results are kept in input order, clustered by (run, input file, line, the record's place
 * among its trace's records): each new row is appended, whatever the trace ids, and one
 * b-tree serves both the inserts and every reader's "the results of run R". Schema 1 and 2
 * kept a rowid table indexed by (run_id, evaluator, trace_id, step), which takes each new
 * row at a random place once trace ids are random (UUIDs): a store of a million results
 * grew many times slower than the run. They also kept each whole record line, where only
 * its details are read. */
#define STORE_RESULTS_TABLE(name)                                                                     \
    "CREATE TABLE IF NOT EXISTS " name "("                                                            \
    "  run_id INTEGER NOT NULL, file INTEGER NOT NULL, line INTEGER NOT NULL, seq INTEGER NOT NULL,"  \
    "  trace_id TEXT, evaluator TEXT, step INTEGER, score REAL, pass INTEGER, label TEXT,"             \
    "  error_kind TEXT, error TEXT, ms REAL, grp TEXT, details TEXT,"                                  \
    "  PRIMARY KEY(run_id, file, line, seq)) WITHOUT ROWID"

static const char store_schema[] =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);"
    "INSERT OR IGNORE INTO meta VALUES('schema', '" STORE_SCHEMA_VERSION "');"
    "CREATE TABLE IF NOT EXISTS runs("
    "  id INTEGER PRIMARY KEY, label TEXT, started_at REAL NOT NULL, ended_at REAL,"
    "  status TEXT NOT NULL, command TEXT, cwd TEXT, version TEXT, output TEXT, group_by TEXT,"
    "  sample_rate REAL, sample_seed INTEGER, follow INTEGER NOT NULL DEFAULT 0, signature TEXT,"
    "  traces INTEGER, shard_index INTEGER, shard_count INTEGER, kind TEXT, document TEXT);"
    "CREATE TABLE IF NOT EXISTS run_inputs("
    "  run_id INTEGER NOT NULL, idx INTEGER NOT NULL, path TEXT, size INTEGER, hash TEXT,"
    "  PRIMARY KEY(run_id, idx));"
    "CREATE TABLE IF NOT EXISTS run_evaluators("
    "  run_id INTEGER NOT NULL, idx INTEGER NOT NULL, name TEXT NOT NULL, scope TEXT, path TEXT,"
    "  hash TEXT, params TEXT," STORE_TALLY_COLUMNS ", PRIMARY KEY(run_id, idx));"
    "CREATE TABLE IF NOT EXISTS bodies(hash INTEGER PRIMARY KEY, json TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS traces("
    "  run_id INTEGER NOT NULL, file INTEGER NOT NULL, line INTEGER NOT NULL, body INTEGER, summary TEXT,"
    "  PRIMARY KEY(run_id, file, line)) WITHOUT ROWID;"
    STORE_RESULTS_TABLE("results") ";";

/* On a store of schema 1: digests beside the bodies it holds. */
static const char store_upgrade_from_1[] = "ALTER TABLE traces ADD COLUMN summary TEXT;";

/* On a store of schema 1 or 2: its results rewritten in the clustered table, once. */
static const char store_upgrade_from_2[] =
    STORE_RESULTS_TABLE("results_3") ";"
    "INSERT INTO results_3 SELECT run_id, file, line,"
    "  ROW_NUMBER() OVER (PARTITION BY run_id, file, line ORDER BY rowid) - 1, trace_id, evaluator, step,"
    "  score, pass, label, error_kind, error, ms, grp,"
    "  CASE WHEN json_valid(record) THEN json_extract(record, '$.details') END FROM results;"
    "DROP TABLE results;"
    "ALTER TABLE results_3 RENAME TO results;";

/* On a store whose evaluators have no totals yet: their columns (store_upgrade_retally fills them). */
static const char store_upgrade_tallies[] =
    "ALTER TABLE run_evaluators ADD COLUMN records INTEGER;"
    "ALTER TABLE run_evaluators ADD COLUMN scored INTEGER;"
    "ALTER TABLE run_evaluators ADD COLUMN mean REAL;"
    "ALTER TABLE run_evaluators ADD COLUMN passed INTEGER;"
    "ALTER TABLE run_evaluators ADD COLUMN pass_n INTEGER;"
    "ALTER TABLE run_evaluators ADD COLUMN errors INTEGER;";

/* On a store of schema 3: which shard a run scored (assay run --shard), or how many shards
 * a merged run joined (shard_index NULL). */
static const char store_upgrade_shards[] =
    "ALTER TABLE runs ADD COLUMN shard_index INTEGER;"
    "ALTER TABLE runs ADD COLUMN shard_count INTEGER;";

/* On a store of schema 4: what each evaluator's calls cost (tokens, and a price's cost). */
static const char store_upgrade_usage[] =
    "ALTER TABLE run_evaluators ADD COLUMN tokens_in INTEGER;"
    "ALTER TABLE run_evaluators ADD COLUMN tokens_out INTEGER;"
    "ALTER TABLE run_evaluators ADD COLUMN cost REAL;";

/* On a store of schema 5: runs of another kind than a scoring run (assay pairwise) and the
 * document their command printed, which the report draws. */
static const char store_upgrade_documents[] =
    "ALTER TABLE runs ADD COLUMN kind TEXT;"
    "ALTER TABLE runs ADD COLUMN document TEXT;";

/* After either of the two above: the totals of the store's finished runs. */
static const char store_upgrade_retally[] = STORE_TALLY("run_id IN (SELECT id FROM runs WHERE status <> 'running')");

/* Last of every upgrade. The index finds which traces still hold a body when one leaves
 * the kept set. */
static const char store_indexes[] =
    "CREATE INDEX IF NOT EXISTS traces_by_body ON traces(body) WHERE body IS NOT NULL;"
    "UPDATE meta SET value = '" STORE_SCHEMA_VERSION "' WHERE key = 'schema'"
    " AND CAST(value AS INTEGER) < " STORE_SCHEMA_VERSION ";";

/* ------------------------------------------------------------------ shared helpers */

static int store_configure(sqlite3 *db, char *err, size_t errlen) {
    sqlite3_busy_timeout(db, STORE_BUSY_MS);
    char *message = NULL;
    if (sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", NULL, NULL, &message) != SQLITE_OK) {
        snprintf(err, errlen, "%s", message ? message : sqlite3_errmsg(db));
        sqlite3_free(message);
        return -1;
    }
    return 0;
}

static bool store_has_column(sqlite3 *db, const char *query) {
    sqlite3_stmt *st = NULL;
    bool has = sqlite3_prepare_v2(db, query, -1, &st, NULL) == SQLITE_OK;
    sqlite3_finalize(st);
    return has;
}

/* Digests of traces came with schema 2, clustered results and evaluators' totals with 3. */
static bool store_has_digests(sqlite3 *db) { return store_has_column(db, "SELECT summary FROM traces LIMIT 0"); }
static bool store_has_clustered_results(sqlite3 *db) { return store_has_column(db, "SELECT seq FROM results LIMIT 0"); }
static bool store_has_tallies(sqlite3 *db) { return store_has_column(db, "SELECT records FROM run_evaluators LIMIT 0"); }
static bool store_has_shards(sqlite3 *db) { return store_has_column(db, "SELECT shard_count FROM runs LIMIT 0"); }
static bool store_has_usage(sqlite3 *db) { return store_has_column(db, "SELECT cost FROM run_evaluators LIMIT 0"); }
static bool store_has_documents(sqlite3 *db) { return store_has_column(db, "SELECT document FROM runs LIMIT 0"); }
static bool store_is_current(sqlite3 *db) {
    return store_has_digests(db) && store_has_clustered_results(db) && store_has_tallies(db) && store_has_shards(db) &&
           store_has_usage(db) && store_has_documents(db);
}

/* Brings a writable store of an earlier schema up to this one, in one transaction. */
static int store_upgrade(sqlite3 *db, char *err, size_t errlen) {
    char *message = NULL;
    int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, &message);
    if (rc == SQLITE_OK && !store_has_digests(db)) rc = sqlite3_exec(db, store_upgrade_from_1, NULL, NULL, &message);
    if (rc == SQLITE_OK && !store_has_clustered_results(db)) rc = sqlite3_exec(db, store_upgrade_from_2, NULL, NULL, &message);
    bool is_untallied = !store_has_tallies(db) || !store_has_usage(db);
    if (rc == SQLITE_OK && !store_has_tallies(db)) rc = sqlite3_exec(db, store_upgrade_tallies, NULL, NULL, &message);
    if (rc == SQLITE_OK && !store_has_shards(db)) rc = sqlite3_exec(db, store_upgrade_shards, NULL, NULL, &message);
    if (rc == SQLITE_OK && !store_has_usage(db)) rc = sqlite3_exec(db, store_upgrade_usage, NULL, NULL, &message);
    if (rc == SQLITE_OK && !store_has_documents(db)) rc = sqlite3_exec(db, store_upgrade_documents, NULL, NULL, &message);
    if (rc == SQLITE_OK && is_untallied) rc = sqlite3_exec(db, store_upgrade_retally, NULL, NULL, &message);
    if (rc == SQLITE_OK) rc = sqlite3_exec(db, store_indexes, NULL, NULL, &message);
    if (rc == SQLITE_OK) rc = sqlite3_exec(db, "COMMIT", NULL, NULL, &message);
    else sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    if (rc != SQLITE_OK) snprintf(err, errlen, "upgrading the store: %s", message ? message : sqlite3_errmsg(db));
    sqlite3_free(message);
    return rc == SQLITE_OK ? 0 : -1;
}

/* A reader that meets a store of an earlier schema upgrades it first, which rewrites its
 * results once (schema 1 and 2). */
static int store_upgrade_for_reading(const char *path, char *err, size_t errlen) {
    char message[512] = "";
    sqlite3 *db = store_open(path, false, message, sizeof message);
    if (!db) {
        snprintf(err, errlen, "%s was written by an earlier assay and cannot be upgraded here: %s", path, message);
        return -1;
    }
    sqlite3_close(db);
    return 0;
}

sqlite3 *store_open(const char *path, bool is_readonly, char *err, size_t errlen) {
    sqlite3 *db = NULL;
    if (is_readonly) {
        struct stat st;
        if (stat(path, &st) != 0) {
            snprintf(err, errlen, "%s: no run store here (%s); `assay run` creates it, or name one with --db FILE", path,
                     strerror(errno));
            return NULL;
        }
    } else if (strcmp(path, STORE_DEFAULT_PATH) == 0 && mkdir(".assay", 0777) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create .assay/ for the run store: %s (use --db FILE or --no-db)", strerror(errno));
        return NULL;
    }
    int flags = is_readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    if (sqlite3_open_v2(path, &db, flags | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", path, db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return NULL;
    }
    char message[256] = "";
    if (!is_readonly && store_configure(db, message, sizeof message) != 0) {
        snprintf(err, errlen, "%s: %s", path, message);
        sqlite3_close(db);
        return NULL;
    }
    if (is_readonly) sqlite3_busy_timeout(db, STORE_BUSY_MS);
    char *failure = NULL;
    if (!is_readonly && sqlite3_exec(db, store_schema, NULL, NULL, &failure) != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", path, failure ? failure : sqlite3_errmsg(db));
        sqlite3_free(failure);
        sqlite3_close(db);
        return NULL;
    }
    if (!is_readonly && store_upgrade(db, message, sizeof message) != 0) {
        snprintf(err, errlen, "%s: %s", path, message);
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_stmt *st;
    if (is_readonly && sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = 'schema'", -1, &st, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "%s: not an assay run store (%s)", path, sqlite3_errmsg(db));
        sqlite3_close(db);
        return NULL;
    }
    if (is_readonly) sqlite3_finalize(st);
    if (is_readonly && !store_is_current(db)) {
        sqlite3_close(db);
        return store_upgrade_for_reading(path, err, errlen) == 0 ? store_open(path, true, err, errlen) : NULL;
    }
    return db;
}

sqlite3 *store_open_reading(const char *path) {
    char err[600];
    sqlite3 *db = store_open(path ? path : STORE_DEFAULT_PATH, true, err, sizeof err);
    if (!db) fprintf(stderr, "assay: %s\n", err);
    return db;
}

int store_tally(sqlite3 *db, int64_t run) {
    char sql[sizeof STORE_TALLY("run_id = %lld") + 64];
    snprintf(sql, sizeof sql, STORE_TALLY("run_id = %lld"), (long long)run, (long long)run);
    return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}

/* "latest", "previous", a run id, or a label (its most recent run). */
int store_resolve_run(sqlite3 *db, const char *ref, int64_t *id, char *err, size_t errlen) {
    const char *sql;
    sqlite3_stmt *st;
    char *end;
    long long number = strtoll(ref, &end, 10);
    bool is_number = *ref && !*end && number > 0;
    if (strcmp(ref, "latest") == 0) sql = "SELECT id FROM runs ORDER BY id DESC LIMIT 1";
    else if (strcmp(ref, "previous") == 0) sql = "SELECT id FROM runs ORDER BY id DESC LIMIT 1 OFFSET 1";
    else if (is_number) sql = "SELECT id FROM runs WHERE id = ?1";
    else sql = "SELECT id FROM runs WHERE label = ?1 ORDER BY id DESC LIMIT 1";
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "reading the run store: %s", sqlite3_errmsg(db));
        return -1;
    }
    if (is_number) sqlite3_bind_int64(st, 1, number);
    else sqlite3_bind_text(st, 1, ref, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) *id = sqlite3_column_int64(st, 0);
    else if (rc == SQLITE_DONE) snprintf(err, errlen, "no run '%s' in the store (see `assay runs`)", ref);
    else snprintf(err, errlen, "reading the run store: %s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : -1;
}

/* --------------------------------------------------------------------- hashing */

/* The store's content hash, "h64": 8 bytes at a time (FNV-1a byte by byte cost a tenth of
 * a second per 100 MB on the loop thread). Each little-endian 64-bit word w of the data,
 * the last one padded with zero bytes, does h = (h ^ w) * K; h ^= h >> 32, from h = 0;
 * then h ^= the length in bytes and MurmurHash3's fmix64. Not cryptographic: it tells changed inputs and
 * plugins apart, and shares identical trace bodies. */
#define H64_K 0x9E3779B97F4A7C15ull

typedef struct h64 {
    uint64_t h, length;
    unsigned char tail[8];
    size_t tail_len;
} h64;

static uint64_t h64_word(uint64_t h, const unsigned char *p) {
    uint64_t w;
    memcpy(&w, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    w = __builtin_bswap64(w); /* the words are little-endian whatever the machine */
#endif
    h = (h ^ w) * H64_K;
    return h ^ (h >> 32);
}

static void h64_add(h64 *s, const void *data, size_t len) {
    const unsigned char *p = data;
    s->length += len;
    while (s->tail_len && len) {
        s->tail[s->tail_len++] = *p++, len--;
        if (s->tail_len == 8) s->h = h64_word(s->h, s->tail), s->tail_len = 0;
    }
    for (; len >= 8; p += 8, len -= 8) s->h = h64_word(s->h, p);
    while (len--) s->tail[s->tail_len++] = *p++;
}

static uint64_t h64_end(h64 *s) {
    uint64_t h = s->h;
    if (s->tail_len) {
        memset(s->tail + s->tail_len, 0, 8 - s->tail_len);
        h = h64_word(h, s->tail);
    }
    h ^= s->length;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 33);
}

static uint64_t h64_of(const void *data, size_t len) {
    h64 s = {0};
    h64_add(&s, data, len);
    return h64_end(&s);
}

/* ----------------------------------------------------------------------- batches */

enum { ROW_TRACE, ROW_DROP_BODY, ROW_RESULT };
#define NONE SIZE_MAX

/* Strings are offsets into the batch's arena (NONE for NULL), so a batch is two
 * allocations however many rows it holds. */
typedef struct row {
    int kind;
    uint64_t file, line;
    long step;
    int has_score, pass;
    size_t seq;            /* ROW_RESULT: the record's place among its trace's records */
    double score, ms;
    assay_error_kind error;
    size_t text, text_len; /* ROW_TRACE: the line, or NONE; ROW_RESULT: its details, or NONE */
    size_t summary, summary_len;
    int64_t body_hash;     /* ROW_TRACE with a line, ROW_DROP_BODY */
    size_t trace_id, evaluator, label, error_message, group;
} row;

typedef struct batch {
    row *rows;
    size_t count, cap;
    buf arena;
    journal_position last; /* the last input line whose results are in it */
    bool has_results;
} batch;

static size_t arena_put(batch *b, const char *s, size_t n) {
    if (!s) return NONE;
    size_t at = b->arena.len;
    buf_append(&b->arena, s, n);
    buf_putc(&b->arena, '\0');
    return at;
}

static row *batch_add(batch *b) {
    if (b->count == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 256;
        row *grown = realloc(b->rows, cap * sizeof *grown);
        if (!grown) return NULL;
        b->rows = grown, b->cap = cap;
    }
    row *r = &b->rows[b->count++];
    memset(r, 0, sizeof *r);
    r->text = r->summary = r->trace_id = r->evaluator = r->label = r->error_message = r->group = NONE;
    return r;
}

static const char *arena_get(const batch *b, size_t at) { return at == NONE ? NULL : b->arena.data + at; }

/* ------------------------------------------------------------ the kept bodies */

/* A trace ranked as the report ranks its worst: most failed or errored records, then the
 * lowest mean score (a trace with no score after every one with one), then input order. */
typedef struct kept_trace {
    uint64_t file, line;
    int64_t bad;
    double mean;
    bool has_mean;
    int64_t body_hash;
} kept_trace;

static bool kept_is_worse(const kept_trace *a, const kept_trace *b) {
    if (a->bad != b->bad) return a->bad > b->bad;
    if (a->has_mean != b->has_mean) return a->has_mean;
    if (a->has_mean && a->mean != b->mean) return a->mean < b->mean;
    return a->file != b->file ? a->file < b->file : a->line < b->line;
}

/* Heap order: each entry's children are worse than it, so kept[0] is the least bad of the
 * kept traces, the one a worse trace replaces. */
static void kept_sift_down(kept_trace *h, size_t n, size_t i) {
    for (size_t child; (child = 2 * i + 1) < n; i = child) {
        if (child + 1 < n && kept_is_worse(&h[child], &h[child + 1])) child++;
        if (!kept_is_worse(&h[i], &h[child])) break;
        kept_trace t = h[i];
        h[i] = h[child], h[child] = t;
    }
}

static void kept_sift_up(kept_trace *h, size_t i) {
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!kept_is_worse(&h[parent], &h[i])) break;
        kept_trace t = h[i];
        h[i] = h[parent], h[parent] = t;
        i = parent;
    }
}

/* ----------------------------------------------------------------------- writing */

/* An evaluator's totals as the results pass by, the same as STORE_TALLY's SQL computes
 * them: a scan of a million results at the end of a run took a second. */
typedef struct tally {
    int64_t records, scored, passed, pass_n, errors, tokens_in, tokens_out;
    double sum, cost;
    bool has_cost;
} tally;

static void tally_add(tally *t, const assay_record *rec) {
    t->records++;
    t->tokens_in += rec->tokens_in, t->tokens_out += rec->tokens_out;
    if (!isnan(rec->cost)) t->cost += rec->cost, t->has_cost = true;
    if (rec->error != ASSAY_KIND_NONE) {
        t->errors++;
        return;
    }
    if (rec->has_score) t->scored++, t->sum += rec->score;
    if (rec->pass >= 0) t->pass_n++, t->passed += rec->pass;
}

struct store_writer {
    uv_loop_t *loop;
    sqlite3 *db;
    char *path;
    int64_t run_id;
    sqlite3_stmt *insert_trace, *insert_body, *insert_result, *drop_body, *forget_body;
    kept_trace kept[STORE_KEPT_BODIES]; /* a heap: kept[0] is the first to give way */
    size_t kept_count;
    batch pending, committing;
    uv_work_t work;
    bool is_committing;
    int status;                 /* SQLITE_OK, or the error that disabled the store */
    char error[256];
    journal_position committed; /* every result up to here is in the database */
    bool has_committed;
    bool is_resumed;            /* continues an earlier run row */
    store_committed_cb on_committed;
    void *ctx;
    h64 *input_hashes;          /* fingerprints of each input as read */
    size_t input_count;
    tally *tallies;             /* per evaluator, of the results queued in this process */
    size_t tally_count;
};

static void bind_text(sqlite3_stmt *st, int i, const char *s) {
    if (s) sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
    else sqlite3_bind_null(st, i);
}

static int step_reset(sqlite3_stmt *st) {
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* In the thread pool: the only place the connection is used while a run goes on. */
static void commit_batch(uv_work_t *req) {
    store_writer *w = req->data;
    const batch *b = &w->committing;
    int rc = sqlite3_exec(w->db, "BEGIN", NULL, NULL, NULL);
    for (size_t i = 0; i < b->count && rc == SQLITE_OK; i++) {
        const row *r = &b->rows[i];
        if (r->kind == ROW_TRACE) {
            if (r->text != NONE) {
                sqlite3_bind_int64(w->insert_body, 1, r->body_hash);
                sqlite3_bind_text(w->insert_body, 2, arena_get(b, r->text), (int)r->text_len, SQLITE_STATIC);
                rc = step_reset(w->insert_body);
            }
            sqlite3_bind_int64(w->insert_trace, 1, w->run_id);
            sqlite3_bind_int64(w->insert_trace, 2, (int64_t)r->file);
            sqlite3_bind_int64(w->insert_trace, 3, (int64_t)r->line);
            if (r->text != NONE) sqlite3_bind_int64(w->insert_trace, 4, r->body_hash);
            else sqlite3_bind_null(w->insert_trace, 4);
            if (r->summary != NONE)
                sqlite3_bind_text(w->insert_trace, 5, arena_get(b, r->summary), (int)r->summary_len, SQLITE_STATIC);
            else sqlite3_bind_null(w->insert_trace, 5);
            if (rc == SQLITE_OK) rc = step_reset(w->insert_trace);
            continue;
        }
        if (r->kind == ROW_DROP_BODY) { /* a worse trace took its place among the kept */
            sqlite3_bind_int64(w->drop_body, 1, w->run_id);
            sqlite3_bind_int64(w->drop_body, 2, (int64_t)r->file);
            sqlite3_bind_int64(w->drop_body, 3, (int64_t)r->line);
            rc = step_reset(w->drop_body);
            sqlite3_bind_int64(w->forget_body, 1, r->body_hash);
            if (rc == SQLITE_OK) rc = step_reset(w->forget_body);
            continue;
        }
        sqlite3_stmt *st = w->insert_result;
        sqlite3_bind_int64(st, 1, w->run_id);
        sqlite3_bind_int64(st, 2, (int64_t)r->file);
        sqlite3_bind_int64(st, 3, (int64_t)r->line);
        sqlite3_bind_int64(st, 4, (int64_t)r->seq);
        bind_text(st, 5, arena_get(b, r->trace_id));
        bind_text(st, 6, arena_get(b, r->evaluator));
        if (r->step >= 0) sqlite3_bind_int64(st, 7, r->step);
        else sqlite3_bind_null(st, 7);
        if (r->has_score && r->error == ASSAY_KIND_NONE) sqlite3_bind_double(st, 8, r->score);
        else sqlite3_bind_null(st, 8);
        if (r->pass >= 0 && r->error == ASSAY_KIND_NONE) sqlite3_bind_int(st, 9, r->pass);
        else sqlite3_bind_null(st, 9);
        bind_text(st, 10, arena_get(b, r->label));
        bind_text(st, 11, r->error == ASSAY_KIND_NONE ? NULL : assay_error_kind_name(r->error));
        bind_text(st, 12, arena_get(b, r->error_message));
        if (isnan(r->ms)) sqlite3_bind_null(st, 13);
        else sqlite3_bind_double(st, 13, r->ms);
        bind_text(st, 14, arena_get(b, r->group));
        if (r->text == NONE) sqlite3_bind_null(st, 15);
        else sqlite3_bind_text(st, 15, arena_get(b, r->text), (int)r->text_len, SQLITE_STATIC);
        rc = step_reset(st);
    }
    rc = rc == SQLITE_OK ? sqlite3_exec(w->db, "COMMIT", NULL, NULL, NULL) : rc;
    if (rc != SQLITE_OK) {
        snprintf(w->error, sizeof w->error, "%s", sqlite3_errmsg(w->db));
        sqlite3_exec(w->db, "ROLLBACK", NULL, NULL, NULL);
    }
    w->status = rc;
}

static void start_commit(store_writer *w);

static void on_committed(uv_work_t *req, int status) {
    store_writer *w = req->data;
    (void)status;
    w->is_committing = false;
    if (w->status != SQLITE_OK) {
        fprintf(stderr, "assay: run store %s: %s; the results after this point are not recorded there\n", w->path,
                w->error);
        buf_reset(&w->pending.arena);
        w->pending.count = 0;
    } else if (w->committing.has_results) {
        w->committed = w->committing.last;
        w->has_committed = true;
    }
    w->committing.count = 0;
    w->committing.has_results = false;
    buf_reset(&w->committing.arena);
    if (w->pending.count >= STORE_BATCH_ROWS || w->pending.arena.len >= STORE_BATCH_BYTES) start_commit(w);
    /* last: the bytes held here have dropped, which may be what the run's reader waits for */
    if (w->on_committed) w->on_committed(w->ctx, w->status == SQLITE_OK ? &w->committed : NULL);
}

static void start_commit(store_writer *w) {
    if (w->is_committing || w->pending.count == 0 || w->status != SQLITE_OK) return;
    batch t = w->committing; /* swap: the full batch goes out, the empty one fills */
    w->committing = w->pending;
    w->pending = t;
    w->work.data = w;
    if (uv_queue_work(w->loop, &w->work, commit_batch, on_committed) == 0) w->is_committing = true;
}

void store_writer_flush(store_writer *w) {
    if (w) start_commit(w);
}

bool store_writer_is_idle(const store_writer *w) { return !w || (!w->is_committing && w->pending.count == 0); }

size_t store_writer_pending_bytes(const store_writer *w) {
    return w ? w->pending.arena.len + w->pending.count * sizeof(row) : 0;
}

bool store_writer_has_committed(const store_writer *w, const journal_position *pos) {
    if (!w || w->status != SQLITE_OK) return true; /* a failed store no longer holds checkpoints back */
    if (!w->has_committed) return false;
    const journal_position *c = &w->committed;
    return c->file > pos->file || (c->file == pos->file && c->line >= pos->line);
}

static void added(store_writer *w) {
    if (buf_failed(&w->pending.arena)) {
        w->status = SQLITE_NOMEM;
        snprintf(w->error, sizeof w->error, "out of memory");
    }
    if (w->pending.count >= STORE_BATCH_ROWS || w->pending.arena.len >= STORE_BATCH_BYTES) start_commit(w);
}

/* Ranks the trace of result among the kept: true when its body is to be kept, with the
 * body's hash in *hash (after queueing the drop of the body it replaces). */
static bool keep_body(store_writer *w, uint64_t file, const assay_result *result, const char *text, size_t len,
                      int64_t *hash) {
    kept_trace t = {file, assay_result_line(result), 0, 0, false, 0};
    size_t scored = 0;
    double sum = 0;
    for (size_t i = 0; i < assay_result_record_count(result); i++) {
        assay_record rec;
        if (assay_result_record(result, i, &rec, sizeof rec) != ASSAY_OK) continue;
        if (rec.error != ASSAY_KIND_NONE) {
            t.bad++;
            continue;
        }
        if (rec.pass == 0) t.bad++;
        if (rec.has_score) sum += rec.score, scored++;
    }
    t.has_mean = scored > 0;
    t.mean = scored ? sum / (double)scored : 0;
    if (w->kept_count == STORE_KEPT_BODIES && !kept_is_worse(&t, &w->kept[0])) return false;
    /* one copy of each body across runs; the top bit cleared keeps it a positive integer */
    t.body_hash = (int64_t)(h64_of(text, len) >> 1);
    if (w->kept_count == STORE_KEPT_BODIES) {
        row *drop = batch_add(&w->pending);
        if (!drop) return false;
        drop->kind = ROW_DROP_BODY;
        drop->file = w->kept[0].file, drop->line = w->kept[0].line;
        drop->body_hash = w->kept[0].body_hash;
        w->kept[0] = t;
        kept_sift_down(w->kept, w->kept_count, 0);
    } else {
        w->kept[w->kept_count++] = t;
        kept_sift_up(w->kept, w->kept_count - 1);
    }
    *hash = t.body_hash;
    return true;
}

/* Fills r, a fresh row of b, with the trace of result: its digest, and its line when the
 * body is kept. */
static void store_trace_row(batch *b, row *r, uint64_t file, const assay_result *result, const char *text,
                            size_t len, bool is_kept, int64_t hash) {
    r->kind = ROW_TRACE;
    r->file = file, r->line = assay_result_line(result);
    r->summary = b->arena.len;
    if (digest_trace(text, len, &b->arena)) {
        r->summary_len = b->arena.len - r->summary;
        buf_putc(&b->arena, '\0');
    } else {
        b->arena.len = r->summary; /* not an object after all: no digest */
        r->summary = NONE;
    }
    if (is_kept) {
        r->text = arena_put(b, text, len);
        r->text_len = len;
        r->body_hash = hash;
    }
}

void store_writer_add_result(store_writer *w, uint64_t file, const assay_result *result, const char *text,
                             size_t len) {
    if (!w || w->status != SQLITE_OK) return;
    batch *b = &w->pending;
    const char *trace_id = assay_result_trace_id(result), *group = assay_result_group(result);
    if (trace_id && text) {
        int64_t hash = 0;
        bool is_kept = keep_body(w, file, result, text, len, &hash);
        row *r = batch_add(b); /* out of memory: the trace row is lost, its records are not */
        if (r) store_trace_row(b, r, file, result, text, len, is_kept, hash);
    }
    size_t count = assay_result_record_count(result);
    for (size_t i = 0; i < count; i++) {
        assay_record rec;
        if (assay_result_record(result, i, &rec, sizeof rec) != ASSAY_OK) continue;
        row *r = batch_add(b);
        if (!r) break;
        if (rec.evaluator_index < w->tally_count) tally_add(&w->tallies[rec.evaluator_index], &rec);
        r->kind = ROW_RESULT;
        r->file = file, r->line = assay_result_line(result), r->seq = i;
        r->step = rec.step;
        r->has_score = rec.has_score, r->score = rec.score, r->pass = rec.pass;
        r->error = rec.error, r->ms = rec.ms;
        r->trace_id = trace_id ? arena_put(b, trace_id, strlen(trace_id)) : NONE;
        r->evaluator = rec.evaluator ? arena_put(b, rec.evaluator, strlen(rec.evaluator)) : NONE;
        r->label = rec.label ? arena_put(b, rec.label, strlen(rec.label)) : NONE;
        r->error_message = rec.error_message ? arena_put(b, rec.error_message, strlen(rec.error_message)) : NONE;
        r->group = group ? arena_put(b, group, strlen(group)) : NONE;
        size_t details_len = 0;
        const char *details = assay_result_record_details(result, i, &details_len);
        r->text = arena_put(b, details, details_len);
        r->text_len = details_len;
    }
    b->last = (journal_position){file, assay_result_line(result), 0};
    b->has_results = true;
    added(w);
}

void store_writer_add_input(store_writer *w, size_t file, const void *data, size_t len) {
    if (!w || file >= w->input_count) return;
    h64_add(&w->input_hashes[file], data, len);
}

int64_t store_writer_run_id(const store_writer *w) { return w ? w->run_id : 0; }

static void hex64(char out[17], uint64_t h) { snprintf(out, 17, "%016llx", (unsigned long long)h); }

/* A fingerprint of a file's bytes: enough to tell that an input or a plugin changed
 * between two runs. */
static int file_hash(const char *path, char out[17]) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    char chunk[8192];
    size_t n;
    h64 h = {0};
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) h64_add(&h, chunk, n);
    fclose(f);
    hex64(out, h64_end(&h));
    return 0;
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int exec_sql(sqlite3 *db, const char *sql) { return sqlite3_exec(db, sql, NULL, NULL, NULL); }

/* The run a --resume continues: the latest unfinished one with the same signature. Its
 * records past the resumed position are removed: they will be computed again. */
static int64_t find_resumed(sqlite3 *db, const char *signature, const journal_position *from) {
    sqlite3_stmt *st;
    int64_t id = 0;
    if (sqlite3_prepare_v2(db, "SELECT id FROM runs WHERE signature = ?1 AND status <> 'done' ORDER BY id DESC LIMIT 1",
                           -1, &st, NULL) != SQLITE_OK)
        return 0;
    sqlite3_bind_text(st, 1, signature, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) id = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (!id) return 0;
    static const char *const cleanup[] = {
        "DELETE FROM results WHERE run_id = ?1 AND (file > ?2 OR (file = ?2 AND line > ?3))",
        "DELETE FROM traces WHERE run_id = ?1 AND (file > ?2 OR (file = ?2 AND line > ?3))",
        "UPDATE runs SET status = 'running', ended_at = NULL WHERE id = ?1",
        /* bodies the removed traces kept, unless another trace holds them too */
        "DELETE FROM bodies WHERE hash NOT IN (SELECT body FROM traces WHERE body IS NOT NULL)",
    };
    for (size_t i = 0; i < sizeof cleanup / sizeof *cleanup; i++) {
        if (sqlite3_prepare_v2(db, cleanup[i], -1, &st, NULL) != SQLITE_OK) return -1;
        if (sqlite3_bind_parameter_count(st) >= 1) sqlite3_bind_int64(st, 1, id);
        if (i < 2) {
            sqlite3_bind_int64(st, 2, (int64_t)from->file);
            sqlite3_bind_int64(st, 3, (int64_t)from->line);
        }
        int rc = step_reset(st);
        sqlite3_finalize(st);
        if (rc != SQLITE_OK) return -1;
    }
    return id;
}

#define STORE_INSERT_EVALUATOR \
    "INSERT INTO run_evaluators(run_id, idx, name, scope, path, hash, params) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)"

/* A row of run_evaluators, with the plugin file's hash (st: STORE_INSERT_EVALUATOR). */
static int insert_evaluator(sqlite3_stmt *st, int64_t run, size_t idx, const char *name, const char *scope,
                            const char *path, const char *params_json) {
    char hash[17];
    sqlite3_bind_int64(st, 1, run);
    sqlite3_bind_int64(st, 2, (int64_t)idx);
    bind_text(st, 3, name);
    bind_text(st, 4, scope);
    bind_text(st, 5, path);
    bind_text(st, 6, file_hash(path, hash) == 0 ? hash : NULL);
    bind_text(st, 7, params_json);
    return step_reset(st);
}

/* An evaluator's params as the store records them: for one that calls assay.llm, with the
 * run's default model as "llm.model", so that a run judged by another model shows as a
 * change of definition in compare, not as a change of the system. NULL: as they are. */
static char *recorded_params(const assay_plugin_info *info, const char *llm_model) {
    if (!llm_model || !cli_plugin_calls_llm(info->path)) return NULL;
    cJSON *params = cJSON_Parse(info->params_json);
    if (!cJSON_IsObject(params)) {
        cJSON_Delete(params);
        return NULL;
    }
    cJSON_AddStringToObject(params, "llm.model", llm_model);
    char *text = cJSON_PrintUnformatted(params);
    cJSON_Delete(params);
    return text;
}

/* A resumed run ranks the traces still to come against the bodies it kept before. */
static int kept_reload(store_writer *w) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(w->db,
                           "SELECT t.file, t.line, t.body, COUNT(CASE WHEN x.pass = 0 THEN 1 END) + COUNT(x.error_kind),"
                           " SUM(x.score), COUNT(x.score) FROM traces t JOIN results x ON x.run_id = t.run_id AND"
                           " x.file = t.file AND x.line = t.line WHERE t.run_id = ?1 AND t.body IS NOT NULL"
                           " GROUP BY t.file, t.line",
                           -1, &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_int64(st, 1, w->run_id);
    while (sqlite3_step(st) == SQLITE_ROW && w->kept_count < STORE_KEPT_BODIES) {
        kept_trace *t = &w->kept[w->kept_count++];
        t->file = (uint64_t)sqlite3_column_int64(st, 0);
        t->line = (uint64_t)sqlite3_column_int64(st, 1);
        t->body_hash = sqlite3_column_int64(st, 2);
        t->bad = sqlite3_column_int64(st, 3);
        int64_t scored = sqlite3_column_int64(st, 5);
        t->has_mean = scored > 0;
        t->mean = scored ? sqlite3_column_double(st, 4) / (double)scored : 0;
        kept_sift_up(w->kept, w->kept_count - 1);
    }
    return sqlite3_finalize(st) == SQLITE_OK ? 0 : -1;
}

/* Parameters 1 to 5 of a new run's row: its label, when it started, the command, where it
 * ran (cwd) and which assay ran it. */
static void bind_run_origin(sqlite3_stmt *st, const char *label, const char *command) {
    char cwd[PATH_MAX];
    bind_text(st, 1, label);
    sqlite3_bind_double(st, 2, now_seconds());
    bind_text(st, 3, command);
    if (getcwd(cwd, sizeof cwd)) sqlite3_bind_text(st, 4, cwd, -1, SQLITE_TRANSIENT); /* the buffer ends here */
    else sqlite3_bind_null(st, 4);
    bind_text(st, 5, assay_version());
}

static int insert_run(store_writer *w, const store_run_desc *d) {
    sqlite3 *db = w->db;
    char signature[17];
    hex64(signature, d->signature);
    if (d->resumed_from) {
        int64_t id = find_resumed(db, signature, d->resumed_from);
        if (id < 0) return -1;
        if (id) {
            w->run_id = id;
            w->is_resumed = true;
            if (kept_reload(w) != 0) return -1;
            w->committed = *d->resumed_from;
            w->has_committed = true;
            return 0;
        }
    }
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO runs(label, started_at, status, command, cwd, version, output, group_by,"
                           " sample_rate, sample_seed, follow, signature, shard_index, shard_count) VALUES(?1, ?2,"
                           " 'running', ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                           -1, &st, NULL) != SQLITE_OK)
        return -1;
    bind_run_origin(st, d->label, d->command);
    bind_text(st, 6, d->output);
    bind_text(st, 7, d->group_by);
    if (d->sample_rate < 1) {
        sqlite3_bind_double(st, 8, d->sample_rate);
        sqlite3_bind_int64(st, 9, (int64_t)d->sample_seed);
    }
    sqlite3_bind_int(st, 10, d->is_follow);
    bind_text(st, 11, signature);
    if (d->shard_count > 1) {
        sqlite3_bind_int64(st, 12, d->shard_index);
        sqlite3_bind_int64(st, 13, d->shard_count);
    }
    int rc = step_reset(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_OK) return -1;
    w->run_id = sqlite3_last_insert_rowid(db);

    if (sqlite3_prepare_v2(db, "INSERT INTO run_inputs(run_id, idx, path) VALUES(?1, ?2, ?3)", -1, &st, NULL) != SQLITE_OK)
        return -1;
    for (size_t i = 0; i < d->input_count && rc == SQLITE_OK; i++) {
        sqlite3_bind_int64(st, 1, w->run_id);
        sqlite3_bind_int64(st, 2, (int64_t)i);
        bind_text(st, 3, d->inputs[i]);
        rc = step_reset(st);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_OK ||
        sqlite3_prepare_v2(db, STORE_INSERT_EVALUATOR, -1, &st, NULL) != SQLITE_OK)
        return -1;
    for (size_t i = 0; i < assay_host_plugin_count(d->host) && rc == SQLITE_OK; i++) {
        assay_plugin_info info;
        assay_host_plugin_info(d->host, i, &info, sizeof info);
        char *params = recorded_params(&info, d->llm_model);
        rc = insert_evaluator(st, w->run_id, i, info.name, info.scope, info.path, params ? params : info.params_json);
        free(params);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_OK ? 0 : -1;
}

store_writer *store_writer_new(uv_loop_t *loop, const char *path, const store_run_desc *d, char *err, size_t errlen) {
    store_writer *w = calloc(1, sizeof *w);
    size_t evaluators = assay_host_plugin_count(d->host);
    if (!w || !(w->path = strdup(path)) || !(w->input_hashes = calloc(d->input_count + 1, sizeof(h64))) ||
        !(w->tallies = calloc(evaluators + 1, sizeof(tally)))) {
        snprintf(err, errlen, "out of memory");
        store_writer_free(w);
        return NULL;
    }
    w->loop = loop;
    w->input_count = d->input_count;
    w->tally_count = evaluators;
    w->on_committed = d->on_committed;
    w->ctx = d->ctx;
    buf_init(&w->pending.arena);
    buf_init(&w->committing.arena);
    char message[512];
    if (!(w->db = store_open(path, false, message, sizeof message))) {
        snprintf(err, errlen, "%s", message);
        store_writer_free(w);
        return NULL;
    }
    bool ok = exec_sql(w->db, "BEGIN IMMEDIATE") == SQLITE_OK && insert_run(w, d) == 0 &&
              exec_sql(w->db, "COMMIT") == SQLITE_OK;
    ok = ok &&
         sqlite3_prepare_v2(w->db, "INSERT OR IGNORE INTO bodies(hash, json) VALUES(?1, ?2)", -1, &w->insert_body, NULL) ==
             SQLITE_OK &&
         sqlite3_prepare_v2(w->db, "INSERT OR REPLACE INTO traces(run_id, file, line, body, summary) VALUES(?1, ?2, ?3, ?4, ?5)",
                            -1, &w->insert_trace, NULL) == SQLITE_OK &&
         sqlite3_prepare_v2(w->db, "UPDATE traces SET body = NULL WHERE run_id = ?1 AND file = ?2 AND line = ?3", -1,
                            &w->drop_body, NULL) == SQLITE_OK &&
         sqlite3_prepare_v2(w->db,
                            "DELETE FROM bodies WHERE hash = ?1 AND NOT EXISTS (SELECT 1 FROM traces WHERE body = ?1)",
                            -1, &w->forget_body, NULL) == SQLITE_OK &&
         sqlite3_prepare_v2(w->db,
                            "INSERT INTO results VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
                            -1, &w->insert_result, NULL) == SQLITE_OK;
    if (!ok) {
        snprintf(err, errlen, "%s: %s", path, sqlite3_errmsg(w->db));
        exec_sql(w->db, "ROLLBACK");
        store_writer_free(w);
        return NULL;
    }
    return w;
}

/* Each evaluator's totals into run_evaluators. A resumed run's earlier part was counted by
 * another process, so its totals come from its results. */
static int write_tallies(store_writer *w) {
    if (w->is_resumed) return store_tally(w->db, w->run_id) == 0 ? SQLITE_OK : SQLITE_ERROR;
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(w->db, "UPDATE run_evaluators SET records = ?3, scored = ?4, mean = ?5, passed = ?6,"
                                       " pass_n = ?7, errors = ?8, tokens_in = ?9, tokens_out = ?10, cost = ?11"
                                       " WHERE run_id = ?1 AND idx = ?2", -1, &st, NULL);
    for (size_t i = 0; rc == SQLITE_OK && i < w->tally_count; i++) {
        const tally *t = &w->tallies[i];
        sqlite3_bind_int64(st, 1, w->run_id);
        sqlite3_bind_int64(st, 2, (int64_t)i);
        sqlite3_bind_int64(st, 3, t->records);
        sqlite3_bind_int64(st, 4, t->scored);
        if (t->scored) sqlite3_bind_double(st, 5, t->sum / (double)t->scored);
        else sqlite3_bind_null(st, 5);
        sqlite3_bind_int64(st, 6, t->passed);
        sqlite3_bind_int64(st, 7, t->pass_n);
        sqlite3_bind_int64(st, 8, t->errors);
        sqlite3_bind_int64(st, 9, t->tokens_in);
        sqlite3_bind_int64(st, 10, t->tokens_out);
        if (t->has_cost) sqlite3_bind_double(st, 11, t->cost);
        else sqlite3_bind_null(st, 11);
        rc = step_reset(st);
    }
    sqlite3_finalize(st);
    return rc;
}

/* Only when no commit is in flight (the loop has run it to completion). */
int store_writer_finish(store_writer *w, const char *status) {
    if (!w) return 0;
    while (w->status == SQLITE_OK && w->pending.count) { /* the rest, on this thread: the loop is done */
        batch t = w->committing;
        w->committing = w->pending;
        w->pending = t;
        w->work.data = w;
        commit_batch(&w->work);
        w->is_committing = true;
        on_committed(&w->work, 0);
    }
    if (w->status != SQLITE_OK) return -1;
    sqlite3_stmt *st;
    int rc = exec_sql(w->db, "BEGIN IMMEDIATE");
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(w->db, "UPDATE runs SET status = ?2, ended_at = ?3, traces = (SELECT COUNT(*) FROM traces WHERE run_id = ?1)"
                                " WHERE id = ?1", -1, &st,
                                NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, w->run_id);
        bind_text(st, 2, status);
        sqlite3_bind_double(st, 3, now_seconds());
        rc = step_reset(st);
        sqlite3_finalize(st);
    }
    st = NULL;
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(w->db, "UPDATE run_inputs SET size = ?3, hash = ?4 WHERE run_id = ?1 AND idx = ?2", -1,
                                &st, NULL);
    for (size_t i = 0; rc == SQLITE_OK && i < w->input_count; i++) {
        char hash[17];
        hex64(hash, h64_end(&w->input_hashes[i]));
        sqlite3_bind_int64(st, 1, w->run_id);
        sqlite3_bind_int64(st, 2, (int64_t)i);
        sqlite3_bind_int64(st, 3, (int64_t)w->input_hashes[i].length);
        bind_text(st, 4, hash);
        rc = step_reset(st);
    }
    sqlite3_finalize(st);
    st = NULL;
    if (rc == SQLITE_OK) rc = write_tallies(w);
    rc = rc == SQLITE_OK ? exec_sql(w->db, "COMMIT") : rc;
    if (rc != SQLITE_OK) {
        snprintf(w->error, sizeof w->error, "%s", sqlite3_errmsg(w->db));
        exec_sql(w->db, "ROLLBACK");
        fprintf(stderr, "assay: run store %s: %s\n", w->path, w->error);
        return -1;
    }
    return 0;
}

void store_writer_abandon(store_writer *w) {
    if (!w) return;
    if (!w->is_resumed) {
        static const char *const forget[] = {"DELETE FROM run_inputs WHERE run_id = ?1",
                                             "DELETE FROM run_evaluators WHERE run_id = ?1", "DELETE FROM runs WHERE id = ?1"};
        for (size_t i = 0; i < 3; i++) {
            sqlite3_stmt *st;
            if (sqlite3_prepare_v2(w->db, forget[i], -1, &st, NULL) != SQLITE_OK) break;
            sqlite3_bind_int64(st, 1, w->run_id);
            step_reset(st);
            sqlite3_finalize(st);
        }
    }
    store_writer_free(w);
}

void store_writer_free(store_writer *w) {
    if (!w) return;
    sqlite3_finalize(w->insert_trace);
    sqlite3_finalize(w->insert_body);
    sqlite3_finalize(w->insert_result);
    sqlite3_finalize(w->drop_body);
    sqlite3_finalize(w->forget_body);
    if (w->db) sqlite3_close(w->db);
    free(w->pending.rows);
    free(w->committing.rows);
    buf_free(&w->pending.arena);
    buf_free(&w->committing.arena);
    free(w->input_hashes);
    free(w->tallies);
    free(w->path);
    free(w);
}

/* ------------------------------------------------- runs computed elsewhere (pairwise) */

static int insert_computed_run(sqlite3 *db, const store_computed_run *d, int64_t *run) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "INSERT INTO runs(label, started_at, ended_at, status, command, cwd, version, traces,"
                               " kind, document) VALUES(?1, ?2, ?2, 'done', ?3, ?4, ?5, ?6, ?7, ?8)", -1, &st, NULL) != SQLITE_OK)
        return SQLITE_ERROR;
    bind_run_origin(st, d->label, d->command);
    sqlite3_bind_int64(st, 6, (int64_t)d->trace_count);
    bind_text(st, 7, d->kind);
    bind_text(st, 8, d->document);
    int rc = step_reset(st);
    sqlite3_finalize(st);
    *run = sqlite3_last_insert_rowid(db);
    if (rc != SQLITE_OK || sqlite3_prepare_v2(db, "INSERT INTO run_inputs(run_id, idx, path, size, hash)"
                                                  " VALUES(?1, ?2, ?3, ?4, ?5)", -1, &st, NULL) != SQLITE_OK)
        return SQLITE_ERROR;
    for (size_t i = 0; i < d->input_count && rc == SQLITE_OK; i++) {
        char hash[17];
        struct stat info;
        sqlite3_bind_int64(st, 1, *run);
        sqlite3_bind_int64(st, 2, (int64_t)i);
        bind_text(st, 3, d->inputs[i]);
        sqlite3_bind_int64(st, 4, stat(d->inputs[i], &info) == 0 ? (int64_t)info.st_size : 0);
        bind_text(st, 5, file_hash(d->inputs[i], hash) == 0 ? hash : NULL);
        rc = step_reset(st);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_OK || sqlite3_prepare_v2(db, STORE_INSERT_EVALUATOR, -1, &st, NULL) != SQLITE_OK)
        return SQLITE_ERROR;
    for (size_t i = 0; i < d->evaluator_count && rc == SQLITE_OK; i++) {
        const store_computed_evaluator *e = &d->evaluators[i];
        rc = insert_evaluator(st, *run, i, e->name, e->scope, e->path, e->params_json);
    }
    sqlite3_finalize(st);
    return rc;
}

static int insert_computed_records(sqlite3 *db, int64_t run, const store_computed_run *d) {
    sqlite3_stmt *tr, *res;
    if (sqlite3_prepare_v2(db, "INSERT OR IGNORE INTO traces(run_id, file, line, summary) VALUES(?1, ?2, ?3, ?4)", -1,
                           &tr, NULL) != SQLITE_OK)
        return SQLITE_ERROR;
    if (sqlite3_prepare_v2(db, "INSERT INTO results(run_id, file, line, seq, trace_id, evaluator, score, pass, grp,"
                               " details) VALUES(?1, ?2, ?3, 0, ?4, ?5, ?6, ?7, ?8, ?9)", -1, &res, NULL) != SQLITE_OK) {
        sqlite3_finalize(tr);
        return SQLITE_ERROR;
    }
    int rc = SQLITE_OK;
    for (size_t i = 0; i < d->record_count && rc == SQLITE_OK; i++) {
        const store_computed_record *r = &d->records[i];
        sqlite3_bind_int64(tr, 1, run);
        sqlite3_bind_int64(tr, 2, (int64_t)r->file);
        sqlite3_bind_int64(tr, 3, (int64_t)r->line);
        bind_text(tr, 4, r->summary);
        rc = step_reset(tr);
        sqlite3_bind_int64(res, 1, run);
        sqlite3_bind_int64(res, 2, (int64_t)r->file);
        sqlite3_bind_int64(res, 3, (int64_t)r->line);
        bind_text(res, 4, r->trace_id);
        bind_text(res, 5, d->evaluators[r->evaluator].name);
        if (isnan(r->score)) sqlite3_bind_null(res, 6);
        else sqlite3_bind_double(res, 6, r->score);
        if (r->pass < 0) sqlite3_bind_null(res, 7);
        else sqlite3_bind_int(res, 7, r->pass);
        bind_text(res, 8, r->group);
        bind_text(res, 9, r->details);
        if (rc == SQLITE_OK) rc = step_reset(res);
    }
    sqlite3_finalize(tr);
    sqlite3_finalize(res);
    return rc;
}

int store_write_computed_run(const char *path, const store_computed_run *d, int64_t *run, char *err, size_t errlen) {
    sqlite3 *db = store_open(path ? path : STORE_DEFAULT_PATH, false, err, errlen);
    if (!db) return -1;
    int rc = exec_sql(db, "BEGIN IMMEDIATE");
    if (rc == SQLITE_OK) rc = insert_computed_run(db, d, run);
    if (rc == SQLITE_OK) rc = insert_computed_records(db, *run, d);
    if (rc == SQLITE_OK) rc = store_tally(db, *run) == 0 ? SQLITE_OK : SQLITE_ERROR;
    if (rc == SQLITE_OK) rc = exec_sql(db, "COMMIT");
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", path ? path : STORE_DEFAULT_PATH, sqlite3_errmsg(db));
        exec_sql(db, "ROLLBACK");
    }
    sqlite3_close(db);
    return rc == SQLITE_OK ? 0 : -1;
}
