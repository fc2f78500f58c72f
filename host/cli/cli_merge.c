/* cli_merge.c - `assay merge`: joins the shards of one run (assay run --shard I/N) into
 * what a single process would have made of the whole input.
 *
 * Stores: `assay merge --db DEST SHARD.db...` finds the sharded run in each store, checks
 * that they are the N shards of one run (the same shard count, evaluators with the same
 * file hashes and params, the same input fingerprints, sample and grouping; every index
 * once; every shard finished) and copies their results, digests and kept bodies into a new
 * run of DEST, which then keeps the bodies of the STORE_KEPT_BODIES worst traces overall
 * (each shard kept its own worst, so the worst overall are among them).
 *
 * Outputs: `assay merge -o OUT --input TRACES... SHARD.jsonl...` interleaves the shards'
 * records into input order, byte for byte the single run's output. Records carry no input
 * position, so the input is read again: a line's records are in the shard of its trace id
 * (the input-error record of a line that is not a trace, in the shard of its line number).
 * Lines that share a trace id may fall in one shard next to each other; their records are
 * told apart by the order records come in: evaluator by evaluator, a trace-scope one once,
 * a step-scope one by rising step. A record that goes back starts the next line's.
 */
#include "cli.h"
#include "../base/buf.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------------------ stores */

/* One shard's run, as its store describes it. */
typedef struct merge_shard {
    const char *path;
    int64_t run;
    long long index, count;
    char *status, *label;
    char *settings; /* evaluators, inputs, sample, grouping: equal for every shard of a run */
    double started, ended;
} merge_shard;

static char *column_dup(sqlite3_stmt *st, int i) {
    const unsigned char *s = sqlite3_column_text(st, i);
    return strdup(s ? (const char *)s : "");
}

/* The run's settings as one text, so that shards compare with strcmp. Evaluator paths are
 * left out (a task may see the plugins at another path); their hashes are in. */
static char *shard_settings(sqlite3 *db, int64_t run) {
    static const char sql[] =
        "SELECT 'evaluators ' || COALESCE((SELECT group_concat(name || ' ' || COALESCE(hash, '?') || ' ' ||"
        " COALESCE(params, '{}'), '; ') FROM (SELECT * FROM run_evaluators WHERE run_id = ?1 ORDER BY idx)), '') ||"
        " char(10) || 'inputs ' || COALESCE((SELECT group_concat(COALESCE(size, '?') || ' bytes, hash ' ||"
        " COALESCE(hash, '?'), '; ') FROM (SELECT * FROM run_inputs WHERE run_id = ?1 ORDER BY idx)), '') ||"
        " char(10) || 'sample ' || COALESCE(sample_rate, 1) || ' seed ' || COALESCE(sample_seed, 0) ||"
        " char(10) || 'group-by ' || COALESCE(group_by, '-') FROM runs WHERE id = ?1";
    sqlite3_stmt *st;
    char *text = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) return NULL;
    sqlite3_bind_int64(st, 1, run);
    if (sqlite3_step(st) == SQLITE_ROW) text = column_dup(st, 0);
    sqlite3_finalize(st);
    return text;
}

/* Reads the latest sharded run of s->path; 0, or -1 with a message printed. */
static int shard_read(merge_shard *s) {
    char err[600];
    sqlite3 *db = store_open(s->path, true, err, sizeof err);
    if (!db) {
        fprintf(stderr, "assay: merge: %s\n", err);
        return -1;
    }
    sqlite3_stmt *st;
    int rc = -1;
    if (sqlite3_prepare_v2(db,
                           "SELECT id, shard_index, shard_count, status, COALESCE(label, ''), started_at,"
                           " COALESCE(ended_at, started_at) FROM runs WHERE shard_index IS NOT NULL"
                           " ORDER BY id DESC LIMIT 1",
                           -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        s->run = sqlite3_column_int64(st, 0);
        s->index = sqlite3_column_int64(st, 1);
        s->count = sqlite3_column_int64(st, 2);
        s->status = column_dup(st, 3);
        s->label = column_dup(st, 4);
        s->started = sqlite3_column_double(st, 5);
        s->ended = sqlite3_column_double(st, 6);
        s->settings = shard_settings(db, s->run);
        rc = s->status && s->label && s->settings ? 0 : -1;
        if (rc) fprintf(stderr, "assay: merge: %s: out of memory\n", s->path);
    } else {
        fprintf(stderr, "assay: merge: %s holds no sharded run (one made by assay run --shard I/N)\n", s->path);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}

/* The first line where two settings texts differ, for the message. */
static void print_difference(const char *a, const char *b) {
    while (*a && *b) {
        size_t la = strcspn(a, "\n"), lb = strcspn(b, "\n");
        if (la != lb || memcmp(a, b, la) != 0) {
            fprintf(stderr, "  %.*s\n  %.*s\n", (int)la, a, (int)lb, b);
            return;
        }
        a += la + (a[la] == '\n');
        b += lb + (b[lb] == '\n');
    }
}

/* Every shard finished, of one run, each index once: 0, or -1 with the reasons printed. */
static int shards_check(const merge_shard *s, size_t n) {
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(s[i].status, "done") != 0) {
            fprintf(stderr, "assay: merge: %s: shard %lld/%lld did not finish (status %s); rerun its task, with "
                            "--resume to keep what it did\n", s[i].path, s[i].index, s[i].count, s[i].status);
            rc = -1;
        }
        if (s[i].count != s[0].count) {
            fprintf(stderr, "assay: merge: %s is shard %lld of %lld, but %s is of %lld: not shards of one run\n",
                    s[i].path, s[i].index, s[i].count, s[0].path, s[0].count);
            return -1;
        }
        if (strcmp(s[i].settings, s[0].settings) != 0) {
            fprintf(stderr, "assay: merge: %s and %s were run with other settings:\n", s[0].path, s[i].path);
            print_difference(s[0].settings, s[i].settings);
            return -1;
        }
        for (size_t j = 0; j < i; j++)
            if (s[j].index == s[i].index) {
                fprintf(stderr, "assay: merge: %s and %s are both shard %lld/%lld (a shard given twice?)\n", s[j].path,
                        s[i].path, s[i].index, s[i].count);
                rc = -1;
            }
    }
    buf missing;
    buf_init(&missing);
    size_t missing_count = 0;
    for (long long k = 0; k < s[0].count && rc == 0; k++) {
        bool found = false;
        for (size_t i = 0; i < n && !found; i++) found = s[i].index == k;
        if (!found && missing_count++ < 20) buf_printf(&missing, "%s%lld", missing.len ? ", " : "", k);
    }
    if (missing_count) {
        fprintf(stderr, "assay: merge: %zu of %lld shards missing: %s%s\n", missing_count, s[0].count,
                buf_cstr(&missing), missing_count > 20 ? ", …" : "");
        rc = -1;
    }
    buf_free(&missing);
    return rc;
}

/* Runs sql with ?1 = a and ?2 = b (where it has them); SQLITE_DONE or the error code. */
static int exec_bound(sqlite3 *db, const char *sql, int64_t a, int64_t b) {
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK) return rc;
    if (sqlite3_bind_parameter_count(st) >= 1) sqlite3_bind_int64(st, 1, a);
    if (sqlite3_bind_parameter_count(st) >= 2) sqlite3_bind_int64(st, 2, b);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    }
    sqlite3_finalize(st);
    return rc;
}

static int exec_text(sqlite3 *db, const char *sql, const char *text) {
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK) return rc;
    sqlite3_bind_text(st, 1, text, -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc;
}

/* The merged run's row, its inputs and evaluators, from the first shard (attached as
 * "shard"); status 'merging' until the last shard is in. */
static int64_t insert_merged_run(sqlite3 *db, const merge_shard *s, size_t n, const cli_options *o) {
    double started = s[0].started, ended = s[0].ended;
    for (size_t i = 1; i < n; i++) {
        if (s[i].started < started) started = s[i].started;
        if (s[i].ended > ended) ended = s[i].ended;
    }
    char cwd[PATH_MAX];
    const char *label = o->label ? o->label : *s[0].label ? s[0].label : NULL;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO runs(label, started_at, ended_at, status, command, cwd, version, group_by,"
                           " sample_rate, sample_seed, follow, shard_count) SELECT ?1, ?2, ?3, 'merging', ?4, ?5, ?6,"
                           " group_by, sample_rate, sample_seed, 0, shard_count FROM shard.runs WHERE id = ?7",
                           -1, &st, NULL) != SQLITE_OK)
        return -1;
    if (label) sqlite3_bind_text(st, 1, label, -1, SQLITE_TRANSIENT);
    sqlite3_bind_double(st, 2, started);
    sqlite3_bind_double(st, 3, ended);
    sqlite3_bind_text(st, 4, o->command, -1, SQLITE_TRANSIENT);
    if (getcwd(cwd, sizeof cwd)) sqlite3_bind_text(st, 5, cwd, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 6, assay_version(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 7, s[0].run);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) return -1;
    int64_t id = sqlite3_last_insert_rowid(db);
    if (exec_bound(db, "INSERT INTO run_inputs(run_id, idx, path, size, hash) SELECT ?1, idx, path, size, hash"
                       " FROM shard.run_inputs WHERE run_id = ?2", id, s[0].run) != SQLITE_DONE ||
        exec_bound(db, "INSERT INTO run_evaluators(run_id, idx, name, scope, path, hash, params) SELECT ?1, idx, name,"
                       " scope, path, hash, params FROM shard.run_evaluators WHERE run_id = ?2", id, s[0].run) != SQLITE_DONE)
        return -1;
    return id;
}

/* One shard's results, digests and kept bodies into run `into`. */
static int copy_shard(sqlite3 *db, int64_t into, int64_t from) {
    static const char *const copies[] = {
        "INSERT INTO results(run_id, file, line, seq, trace_id, evaluator, step, score, pass, label, error_kind, error,"
        " ms, grp, details) SELECT ?1, file, line, seq, trace_id, evaluator, step, score, pass, label, error_kind,"
        " error, ms, grp, details FROM shard.results WHERE run_id = ?2",
        "INSERT INTO traces(run_id, file, line, body, summary) SELECT ?1, file, line, body, summary FROM shard.traces"
        " WHERE run_id = ?2",
        "INSERT OR IGNORE INTO bodies(hash, json) SELECT hash, json FROM shard.bodies WHERE hash IN"
        " (SELECT body FROM shard.traces WHERE run_id = ?2 AND body IS NOT NULL) AND ?1 > 0",
    };
    for (size_t i = 0; i < sizeof copies / sizeof *copies; i++)
        if (exec_bound(db, copies[i], into, from) != SQLITE_DONE) return -1;
    return 0;
}

/* The merged run keeps the bodies of its worst traces only, ranked as the store ranks them
 * (cli_store.c: most failed or errored records, then the lowest mean, then input order). */
static int keep_worst_bodies(sqlite3 *db, int64_t run) {
    static const char sql[] =
        "UPDATE traces SET body = NULL WHERE run_id = ?1 AND body IS NOT NULL AND (file, line) NOT IN ("
        " SELECT t.file, t.line FROM traces t LEFT JOIN results x ON x.run_id = t.run_id AND x.file = t.file AND"
        " x.line = t.line WHERE t.run_id = ?1 AND t.body IS NOT NULL GROUP BY t.file, t.line ORDER BY"
        " COUNT(CASE WHEN x.pass = 0 THEN 1 END) + COUNT(x.error_kind) DESC, COUNT(x.score) = 0, AVG(x.score),"
        " t.file, t.line LIMIT ?2)";
    if (exec_bound(db, sql, run, STORE_KEPT_BODIES) != SQLITE_DONE) return -1;
    return exec_bound(db, "DELETE FROM bodies WHERE hash NOT IN (SELECT body FROM traces WHERE body IS NOT NULL)", 0,
                      0) == SQLITE_DONE ? 0 : -1;
}

/* Removes what a failed merge wrote of run `run`. */
static void drop_run(sqlite3 *db, int64_t run) {
    exec_bound(db, "ROLLBACK", 0, 0);
    static const char *const drops[] = {
        "DELETE FROM results WHERE run_id = ?1", "DELETE FROM traces WHERE run_id = ?1",
        "DELETE FROM run_inputs WHERE run_id = ?1", "DELETE FROM run_evaluators WHERE run_id = ?1",
        "DELETE FROM runs WHERE id = ?1",
        "DELETE FROM bodies WHERE hash NOT IN (SELECT body FROM traces WHERE body IS NOT NULL) AND ?1 > 0",
    };
    for (size_t i = 0; i < sizeof drops / sizeof *drops; i++) exec_bound(db, drops[i], run, 0);
}

/* Copies the checked shards into a new run of o->db. Each shard goes in a transaction of
 * its own (a store cannot be attached inside one), under status 'merging'. */
static int merge_into(sqlite3 *db, const merge_shard *s, size_t n, const cli_options *o) {
    int64_t run = 0;
    const char *failed = NULL;
    for (size_t i = 0; i < n && !failed; i++) {
        if (exec_text(db, "ATTACH ?1 AS shard", s[i].path) != SQLITE_DONE || exec_bound(db, "BEGIN IMMEDIATE", 0, 0) != SQLITE_DONE) {
            failed = s[i].path;
            break;
        }
        if (i == 0 && (run = insert_merged_run(db, s, n, o)) < 0) failed = s[i].path;
        if (!failed && copy_shard(db, run, s[i].run) != 0) failed = s[i].path;
        if (!failed && exec_bound(db, "COMMIT", 0, 0) != SQLITE_DONE) failed = s[i].path;
        if (failed) fprintf(stderr, "assay: merge: %s: %s\n", failed, sqlite3_errmsg(db));
        exec_bound(db, "ROLLBACK", 0, 0);
        exec_bound(db, "DETACH shard", 0, 0);
    }
    if (!failed && (exec_bound(db, "BEGIN IMMEDIATE", 0, 0) != SQLITE_DONE || store_tally(db, run) != 0 ||
                    keep_worst_bodies(db, run) != 0 ||
                    exec_bound(db, "UPDATE runs SET status = 'done', traces = (SELECT COUNT(*) FROM traces WHERE"
                                   " run_id = ?1) WHERE id = ?1", run, 0) != SQLITE_DONE ||
                    exec_bound(db, "COMMIT", 0, 0) != SQLITE_DONE)) {
        fprintf(stderr, "assay: merge: %s: %s\n", o->db, sqlite3_errmsg(db));
        failed = o->db;
    }
    if (failed && run > 0) drop_run(db, run);
    if (failed) return CLI_EXIT_IO;
    fprintf(stderr, "merged %zu shards into run %lld of %s\n", n, (long long)run, o->db);
    return CLI_EXIT_OK;
}

static int merge_stores(const cli_options *o, char **paths, size_t n) {
    merge_shard *s = calloc(n, sizeof *s);
    if (!s) return CLI_EXIT_IO;
    int rc = CLI_EXIT_OK;
    for (size_t i = 0; i < n; i++) {
        s[i].path = paths[i];
        if (shard_read(&s[i]) != 0) rc = CLI_EXIT_USAGE;
    }
    if (rc == CLI_EXIT_OK && shards_check(s, n) != 0) rc = CLI_EXIT_USAGE;
    char err[600];
    sqlite3 *db = rc == CLI_EXIT_OK ? store_open(o->db, false, err, sizeof err) : NULL;
    if (rc == CLI_EXIT_OK && !db) {
        fprintf(stderr, "assay: merge: %s\n", err);
        rc = CLI_EXIT_IO;
    }
    if (db) rc = merge_into(db, s, n, o);
    sqlite3_close(db);
    for (size_t i = 0; i < n; i++) free(s[i].status), free(s[i].label), free(s[i].settings);
    free(s);
    return rc;
}

/* ----------------------------------------------------------------------- outputs */

/* A shard's output file, read a record at a time. */
typedef struct shard_out {
    const char *path;
    FILE *f;
    char *line;          /* the record at the head, with its newline; owned */
    size_t cap;
    ssize_t len;         /* -1 at the end */
    char *trace_id;      /* the head's, NULL for an input error; owned */
    char *evaluator;     /* the head's; owned */
    double step;         /* the head's, -1 for a trace-scope record */
    long long error_line; /* an input error's line, else -1 */
    long long index;     /* which shard it is, -1 until known */
} shard_out;

/* Reads the next record; 0, or -1 with a message when it is not a record. */
static int shard_next(shard_out *s, uint64_t record_no) {
    free(s->trace_id);
    free(s->evaluator);
    s->trace_id = s->evaluator = NULL;
    s->error_line = -1;
    s->len = getline(&s->line, &s->cap, s->f);
    if (s->len < 0) return 0;
    cJSON *rec = cJSON_ParseWithLength(s->line, (size_t)s->len);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(rec, "trace_id");
    const cJSON *line = cJSON_GetObjectItemCaseSensitive(rec, "line");
    int rc = 0;
    const cJSON *evaluator = cJSON_GetObjectItemCaseSensitive(rec, "evaluator");
    const cJSON *step = cJSON_GetObjectItemCaseSensitive(rec, "step");
    if (cJSON_IsString(id) && cJSON_IsString(evaluator)) {
        s->trace_id = strdup(id->valuestring);
        s->evaluator = strdup(evaluator->valuestring);
        s->step = cJSON_IsNumber(step) ? step->valuedouble : -1;
        if (!s->trace_id || !s->evaluator) rc = -1;
    } else if (cJSON_IsNull(id) && cJSON_IsNumber(line)) {
        s->error_line = (long long)line->valuedouble;
    } else {
        fprintf(stderr, "assay: merge: %s:%llu: not a record of assay run\n", s->path, (unsigned long long)record_no);
        rc = -1;
    }
    cJSON_Delete(rec);
    return rc;
}

/* The trace id of an input line, as the workers take it (the last "id" member), or NULL. */
static char *line_trace_id(const char *text, size_t len) {
    cJSON *trace = cJSON_ParseWithLength(text, len);
    const cJSON *id = NULL;
    for (const cJSON *m = cJSON_IsObject(trace) ? trace->child : NULL; m; m = m->next)
        if (m->string && strcmp(m->string, "id") == 0) id = m;
    char *copy = cJSON_IsString(id) ? strdup(id->valuestring) : NULL;
    cJSON_Delete(trace);
    return copy;
}

static int write_record(FILE *out, const shard_out *s) {
    return fwrite(s->line, 1, (size_t)s->len, out) == (size_t)s->len ? 0 : -1;
}

/* Which shard each output is, from its first record; each index once. */
static int outputs_identify(shard_out *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (s[i].len < 0) continue; /* empty: takes an index no other has */
        s[i].index = s[i].trace_id ? (long long)assay_shard_of(s[i].trace_id, (unsigned)n)
                                   : s[i].error_line % (long long)n;
        for (size_t j = 0; j < i; j++)
            if (s[j].index == s[i].index) {
                fprintf(stderr, "assay: merge: %s and %s both hold shard %lld of %zu (a shard given twice, or not "
                                "%zu shards?)\n", s[j].path, s[i].path, s[i].index, n, n);
                return -1;
            }
    }
    for (size_t i = 0; i < n; i++)
        for (long long k = 0; s[i].index < 0 && k < (long long)n; k++) {
            bool taken = false;
            for (size_t j = 0; j < n && !taken; j++) taken = s[j].index == k;
            if (!taken) s[i].index = k;
        }
    return 0;
}

/* The evaluators of the line whose records are being taken, in the order they came. */
typedef struct seen_list {
    char **names;
    size_t count, cap;
    double last_step;
} seen_list;

static void seen_reset(seen_list *l) {
    for (size_t i = 0; i < l->count; i++) free(l->names[i]);
    l->count = 0;
}

/* Whether s's head record belongs to the same line as the records taken before it. */
static bool seen_continues(seen_list *l, const shard_out *s) {
    if (l->count && strcmp(l->names[l->count - 1], s->evaluator) == 0) /* the same evaluator: a later step */
        return s->step >= 0 && s->step > l->last_step;
    for (size_t i = 0; i + 1 < l->count; i++)
        if (strcmp(l->names[i], s->evaluator) == 0) return false; /* back to an earlier evaluator */
    return true;
}

static int seen_add(seen_list *l, const shard_out *s) {
    l->last_step = s->step;
    if (l->count && strcmp(l->names[l->count - 1], s->evaluator) == 0) return 0;
    if (l->count == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        char **names = realloc(l->names, cap * sizeof *names);
        if (!names) return -1;
        l->names = names;
        l->cap = cap;
    }
    return (l->names[l->count] = strdup(s->evaluator)) ? (l->count++, 0) : -1;
}

/* Writes the records of every line of one input, taken from the shards in input order. */
static int interleave_input(const char *input, shard_out **by_index, size_t n, FILE *out, uint64_t *records) {
    FILE *in = fopen(input, "rb");
    if (!in) {
        fprintf(stderr, "assay: merge: %s: %s\n", input, strerror(errno));
        return CLI_EXIT_IO;
    }
    char *text = NULL;
    size_t cap = 0;
    ssize_t len;
    int rc = CLI_EXIT_OK;
    seen_list seen = {0};
    for (uint64_t line_no = 1; rc == CLI_EXIT_OK && (len = getline(&text, &cap, in)) >= 0; line_no++) {
        if (len > 0 && text[len - 1] == '\n') len--;
        if (strspn(text, " \t\r") >= (size_t)len) continue; /* blank lines are not traces (reader.c) */
        shard_out *e = by_index[line_no % n];
        if (e->len >= 0 && !e->trace_id && e->error_line == (long long)line_no) { /* this line was an input error */
            if (write_record(out, e) != 0 || shard_next(e, ++*records) != 0) rc = CLI_EXIT_IO;
            continue;
        }
        char *id = line_trace_id(text, (size_t)len);
        if (!id) {
            fprintf(stderr, "assay: merge: %s:%llu is not a trace, but no shard reports it: the shards were not run "
                            "on this input\n", input, (unsigned long long)line_no);
            rc = CLI_EXIT_USAGE;
            break;
        }
        shard_out *s = by_index[assay_shard_of(id, (unsigned)n)];
        seen_reset(&seen);
        while (rc == CLI_EXIT_OK && s->len >= 0 && s->trace_id && strcmp(s->trace_id, id) == 0 &&
               seen_continues(&seen, s))
            if (seen_add(&seen, s) != 0 || write_record(out, s) != 0 || shard_next(s, ++*records) != 0) rc = CLI_EXIT_IO;
        free(id);
    }
    free(text);
    seen_reset(&seen);
    free(seen.names);
    if (ferror(in)) {
        fprintf(stderr, "assay: merge: %s: read error\n", input);
        rc = CLI_EXIT_IO;
    }
    fclose(in);
    return rc;
}

static int merge_outputs(const cli_options *o, char **paths, size_t n) {
    if (!o->merge_input_count) {
        fprintf(stderr, "assay: merge -o: name the input the shards scored (--input FILE, once per file): records "
                        "carry no line numbers, so the input gives their order\n");
        return CLI_EXIT_USAGE;
    }
    shard_out *s = calloc(n, sizeof *s);
    shard_out **by_index = calloc(n, sizeof *by_index);
    int rc = s && by_index ? CLI_EXIT_OK : CLI_EXIT_IO;
    uint64_t records = 0;
    for (size_t i = 0; i < n && rc == CLI_EXIT_OK; i++) {
        s[i].path = paths[i];
        s[i].index = -1;
        s[i].len = -1;
        if (!(s[i].f = fopen(paths[i], "rb"))) {
            fprintf(stderr, "assay: merge: %s: %s\n", paths[i], strerror(errno));
            rc = CLI_EXIT_IO;
        } else if (shard_next(&s[i], 1) != 0) {
            rc = CLI_EXIT_USAGE;
        }
    }
    if (rc == CLI_EXIT_OK && outputs_identify(s, n) != 0) rc = CLI_EXIT_USAGE;
    for (size_t i = 0; i < n && rc == CLI_EXIT_OK; i++) by_index[s[i].index] = &s[i];
    FILE *out = NULL;
    if (rc == CLI_EXIT_OK && !(out = strcmp(o->output, "-") == 0 ? stdout : fopen(o->output, "wb"))) {
        fprintf(stderr, "assay: merge: %s: %s\n", o->output, strerror(errno));
        rc = CLI_EXIT_IO;
    }
    for (size_t k = 0; k < o->merge_input_count && rc == CLI_EXIT_OK; k++)
        rc = interleave_input(o->merge_inputs[k], by_index, n, out, &records);
    for (size_t i = 0; i < n && rc == CLI_EXIT_OK; i++)
        if (s[i].len >= 0) {
            fprintf(stderr, "assay: merge: %s has records past the end of the input (trace %s): not a shard of this "
                            "input\n", s[i].path, s[i].trace_id ? s[i].trace_id : "(an input error)");
            rc = CLI_EXIT_USAGE;
        }
    if (out && (out == stdout ? fflush(out) : fclose(out)) != 0 && rc == CLI_EXIT_OK) rc = CLI_EXIT_IO;
    if (rc == CLI_EXIT_OK) fprintf(stderr, "merged %zu shard outputs into %s\n", n, o->output);
    for (size_t i = 0; s && i < n; i++) {
        if (s[i].f) fclose(s[i].f);
        free(s[i].line);
        free(s[i].trace_id);
        free(s[i].evaluator);
    }
    free(s);
    free(by_index);
    return rc;
}

/* ------------------------------------------------------------------------- entry */

int cli_merge(cli_options *o, int argc, char **argv) {
    if (argc < 1) {
        fprintf(stderr, "assay: merge: name the shards: SHARD.db... (with --db DEST) or SHARD.jsonl... (with -o OUT)\n");
        return CLI_EXIT_USAGE;
    }
    if ((o->output != NULL) == o->has_db) {
        fprintf(stderr, "assay: merge: give either --db DEST (to join the shards' stores) or -o OUT (their outputs)\n");
        return CLI_EXIT_USAGE;
    }
    if ((size_t)argc > ASSAY_MAX_SHARDS) {
        fprintf(stderr, "assay: merge: at most %d shards\n", ASSAY_MAX_SHARDS);
        return CLI_EXIT_USAGE;
    }
    return o->output ? merge_outputs(o, argv, (size_t)argc) : merge_stores(o, argv, (size_t)argc);
}
