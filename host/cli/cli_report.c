/* cli_report.c - `assay report [RUN] -o FILE.html`: one self-contained HTML page about a
 * run, read from the run store; `assay report A B` the page comparing two runs.
 *
 * The C side gathers the numbers with SQL into one JSON document (the run, per-evaluator
 * histograms and pass rates, a segment x evaluator table, the trend of each evaluator's
 * mean over the runs in the store, the worst traces with their bodies and records) and
 * embeds it in the page; report_page (below) draws it with inline SVG. Nothing is loaded
 * from the network. Long strings of trace bodies are cut to REPORT_MAX_TEXT characters
 * so that a report stays small whatever the traces hold.
 */
#include "cli.h"
#include "../base/buf.h"

#include <cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define REPORT_WORST 25
#define REPORT_ERROR_MESSAGES 5 /* per evaluator, in the errors panel */
#define REPORT_TREND_RUNS 30
#define REPORT_MAX_TEXT 2000
#define REPORT_MAX_SEGMENTS 30
#define REPORT_STR_(x) #x
#define REPORT_STR(x) REPORT_STR_(x) /* a number into SQL text */
/* Where a trace's metadata is read from: its digest, or in a store of schema 1 its body. */
#define REPORT_TRACE_JSON \
    "CASE WHEN t.summary IS NOT NULL THEN t.summary WHEN json_valid(b.json) THEN b.json ELSE '{}' END"
/* the run store keeps the bodies of the worst it ranks, as this file ranks them */
_Static_assert(REPORT_WORST <= STORE_KEPT_BODIES, "the report shows bodies the store does not keep");

extern const char report_page_head[], report_page_tail[];

typedef struct report {
    sqlite3 *db;
    int64_t run;
    const char *error;
} report;

static sqlite3_stmt *prepare(report *r, const char *sql) {
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(r->db, sql, -1, &st, NULL) != SQLITE_OK) {
        r->error = sqlite3_errmsg(r->db);
        return NULL;
    }
    sqlite3_bind_int64(st, 1, r->run);
    return st;
}

/* A column as JSON: numbers stay numbers, NULL is null. */
static cJSON *column_json(sqlite3_stmt *st, int col) {
    switch (sqlite3_column_type(st, col)) {
    case SQLITE_INTEGER: return cJSON_CreateNumber((double)sqlite3_column_int64(st, col));
    case SQLITE_FLOAT: return cJSON_CreateNumber(sqlite3_column_double(st, col));
    case SQLITE_NULL: return cJSON_CreateNull();
    default: return cJSON_CreateString((const char *)sqlite3_column_text(st, col));
    }
}

/* Each row as an object with these keys. */
static cJSON *rows(report *r, const char *sql, const char *const *keys, const char *text_param) {
    cJSON *out = cJSON_CreateArray();
    sqlite3_stmt *st = prepare(r, sql);
    if (!st) return out;
    if (text_param) sqlite3_bind_text(st, 2, text_param, -1, SQLITE_STATIC);
    while (sqlite3_step(st) == SQLITE_ROW) {
        cJSON *o = cJSON_CreateObject();
        for (int i = 0; keys[i]; i++) cJSON_AddItemToObject(o, keys[i], column_json(st, i));
        cJSON_AddItemToArray(out, o);
    }
    sqlite3_finalize(st);
    return out;
}

/* Cuts long strings inside a trace body, in place. */
static void cut_strings(cJSON *item) {
    for (cJSON *c = item; c; c = c->next) {
        if (cJSON_IsString(c) && strlen(c->valuestring) > REPORT_MAX_TEXT) {
            size_t n = REPORT_MAX_TEXT;
            while (n && ((unsigned char)c->valuestring[n] & 0xC0) == 0x80) n--; /* a whole UTF-8 character */
            strcpy(c->valuestring + n, "…");
        }
        if (c->child) cut_strings(c->child);
    }
}

static cJSON *parse_or_string(const char *text) {
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    return j ? j : text ? cJSON_CreateString(text) : cJSON_CreateNull();
}

/* The metadata field to split by: the one asked for, the run's --group-by, or the text
 * field with the fewest distinct values (2 to REPORT_MAX_SEGMENTS) in this run. */
static char *segment_field(report *r, const char *asked) {
    if (asked) return strdup(strncmp(asked, "metadata.", 9) == 0 ? asked + 9 : asked);
    static const char *const sql[] = {
        "SELECT group_by FROM runs WHERE id = ?1 AND group_by IS NOT NULL",
        "SELECT key FROM traces t LEFT JOIN bodies b ON b.hash = t.body,"
        " json_each(" REPORT_TRACE_JSON ", '$.metadata')"
        " WHERE t.run_id = ?1 AND json_each.type = 'text' GROUP BY key"
        " HAVING COUNT(DISTINCT value) BETWEEN 2 AND " REPORT_STR(REPORT_MAX_SEGMENTS) " ORDER BY COUNT(DISTINCT value), key LIMIT 1",
    };
    char *field = NULL;
    for (size_t i = 0; i < 2 && !field; i++) {
        sqlite3_stmt *st = prepare(r, sql[i]);
        if (st && sqlite3_step(st) == SQLITE_ROW) {
            const char *s = (const char *)sqlite3_column_text(st, 0);
            if (s) field = strdup(strncmp(s, "metadata.", 9) == 0 ? s + 9 : s);
        }
        sqlite3_finalize(st);
    }
    return field;
}

/* An evaluator's scores counted in ten bins of 0.1. */
static cJSON *score_histogram(report *r, const char *evaluator) {
    cJSON *hist = cJSON_CreateArray();
    int counts[10] = {0};
    sqlite3_stmt *st = prepare(r, "SELECT MIN(CAST(score * 10 AS INTEGER), 9), COUNT(*) FROM results"
                                  " WHERE run_id = ?1 AND evaluator = ?2 AND score IS NOT NULL GROUP BY 1");
    if (st) {
        sqlite3_bind_text(st, 2, evaluator, -1, SQLITE_STATIC);
        while (sqlite3_step(st) == SQLITE_ROW) {
            int bin = sqlite3_column_int(st, 0);
            if (bin >= 0 && bin < 10) counts[bin] = sqlite3_column_int(st, 1);
        }
        sqlite3_finalize(st);
    }
    for (int i = 0; i < 10; i++) cJSON_AddItemToArray(hist, cJSON_CreateNumber(counts[i]));
    return hist;
}

/* The records of the trace at w's file and line, details parsed. */
static cJSON *trace_records(report *r, const cJSON *w) {
    static const char *const record_keys[] = {"evaluator", "step", "score", "pass", "label", "error_kind",
                                              "error", "details", NULL};
    sqlite3_stmt *st = prepare(r, "SELECT evaluator, step, score, pass, label, error_kind, error,"
                                  " details FROM results WHERE run_id = ?1 AND file = ?2 AND line = ?3 ORDER BY seq");
    cJSON *records = cJSON_CreateArray();
    if (!st) return records;
    sqlite3_bind_int64(st, 2, (int64_t)cJSON_GetObjectItem(w, "file")->valuedouble);
    sqlite3_bind_int64(st, 3, (int64_t)cJSON_GetObjectItem(w, "line")->valuedouble);
    while (sqlite3_step(st) == SQLITE_ROW) {
        cJSON *o = cJSON_CreateObject();
        for (int i = 0; record_keys[i]; i++) {
            cJSON *v = column_json(st, i);
            if (i == 7 && cJSON_IsString(v)) {
                cJSON *details = parse_or_string(v->valuestring);
                cJSON_Delete(v);
                v = details;
            }
            cJSON_AddItemToObject(o, record_keys[i], v);
        }
        cJSON_AddItemToArray(records, o);
    }
    sqlite3_finalize(st);
    return records;
}

/* The run and its inputs. */
static void gather_run(report *r, cJSON *data) {
    static const char *const run_keys[] = {"id", "label", "started_at", "ended_at", "status", "command", "traces",
                                           "sample_rate", "sample_seed", "group_by", "version", NULL};
    cJSON *run = rows(r, "SELECT id, label, started_at, ended_at, status, command, traces, sample_rate, sample_seed,"
                         " group_by, version FROM runs WHERE id = ?1", run_keys, NULL);
    cJSON_AddItemToObject(data, "run", cJSON_DetachItemFromArray(run, 0));
    cJSON_Delete(run);
    static const char *const input_keys[] = {"path", "size", "hash", NULL};
    cJSON_AddItemToObject(data, "inputs",
                          rows(r, "SELECT path, size, hash FROM run_inputs WHERE run_id = ?1 ORDER BY idx", input_keys,
                               NULL));
}

/* A run of another kind (assay pairwise) keeps the document its command printed: the page
 * draws it as that command's own section, under the key of its kind. */
static void gather_document(report *r, cJSON *data) {
    sqlite3_stmt *st = prepare(r, "SELECT kind, document FROM runs WHERE id = ?1 AND kind IS NOT NULL");
    if (st && sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 1)) {
        cJSON *doc = cJSON_Parse((const char *)sqlite3_column_text(st, 1));
        if (doc) cJSON_AddItemToObject(data, (const char *)sqlite3_column_text(st, 0), doc);
    }
    sqlite3_finalize(st);
}

/* The evaluators with their totals, score histograms and figures per step type. */
static void gather_evaluators(report *r, cJSON *data) {
    static const char *const evaluator_keys[] = {"name", "scope", "hash", "params", "records", "scored", "mean",
                                                 "passed", "pass_n", "errors", "traces", "tokens_in", "tokens_out",
                                                 "cost", NULL};
    cJSON *evaluators = rows(r,
                             "SELECT e.name, e.scope, e.hash, e.params, COUNT(x.run_id), COUNT(x.score), AVG(x.score),"
                             " SUM(x.pass), COUNT(x.pass), COUNT(x.error_kind), COUNT(DISTINCT x.trace_id),"
                             " e.tokens_in, e.tokens_out, e.cost"
                             " FROM run_evaluators e LEFT JOIN results x ON x.run_id = e.run_id AND x.evaluator = e.name"
                             " WHERE e.run_id = ?1 GROUP BY e.idx ORDER BY e.idx",
                             evaluator_keys, NULL);
    cJSON *e;
    cJSON_ArrayForEach(e, evaluators) {
        cJSON *params = cJSON_GetObjectItem(e, "params");
        if (cJSON_IsString(params)) cJSON_ReplaceItemInObject(e, "params", parse_or_string(params->valuestring));
        cJSON_AddItemToObject(e, "histogram", score_histogram(r, cJSON_GetObjectItem(e, "name")->valuestring));
        static const char *const step_keys[] = {"type", "records", "mean", "passed", "pass_n", NULL};
        cJSON_AddItemToObject(e, "by_step_type",
                              rows(r,
                                   "SELECT COALESCE(json_extract(t.summary, '$.step_types[' || x.step || ']'),"
                                   " CASE WHEN t.summary IS NULL AND json_valid(b.json) THEN json_extract(b.json, '$.steps['"
                                   " || x.step || '].type') END, '?'), COUNT(*), AVG(x.score), SUM(x.pass), COUNT(x.pass)"
                                   " FROM results x JOIN traces t ON t.run_id = x.run_id AND t.file = x.file AND"
                                   " t.line = x.line LEFT JOIN bodies b ON b.hash = t.body WHERE x.run_id = ?1 AND"
                                   " x.evaluator = ?2 AND x.step IS NOT NULL GROUP BY 1 ORDER BY 1",
                                   step_keys, cJSON_GetObjectItem(e, "name")->valuestring));
    }
    cJSON_AddItemToObject(data, "evaluators", evaluators);

}

/* The records split by a metadata field (segment_field). */
static void gather_segments(report *r, cJSON *data, const char *asked_field) {
    char *field = segment_field(r, asked_field);
    if (field) {
        char *path = cli_group_path(field);
        static const char *const segment_keys[] = {"segment", "evaluator", "records", "mean", "passed", "pass_n", NULL};
        cJSON *segments = rows(r,
                               /* each trace's segment read once, not once per record */
                               "WITH seg AS MATERIALIZED (SELECT t.file, t.line, COALESCE(CAST(json_extract("
                               REPORT_TRACE_JSON ", ?2) AS TEXT), '(none)') AS s FROM traces t LEFT JOIN bodies b"
                               " ON b.hash = t.body WHERE t.run_id = ?1)"
                               " SELECT seg.s, x.evaluator, COUNT(*), AVG(x.score), SUM(x.pass), COUNT(x.pass)"
                               " FROM results x JOIN seg ON seg.file = x.file AND seg.line = x.line WHERE x.run_id = ?1"
                               " GROUP BY 1, 2 ORDER BY 1, 2",
                               segment_keys, path);
        cJSON *seg = cJSON_AddObjectToObject(data, "segments");
        cJSON_AddStringToObject(seg, "field", field);
        cJSON_AddBoolToObject(seg, "is_chosen", asked_field != NULL);
        cJSON_AddItemToObject(seg, "cells", segments);
        free(path);
        free(field);
    }

}

/* The run's inputs as one text, "hash,hash,…" in their order; NULL when a hash is unknown
 * (a run killed before the end of its input, a store from before hashes). */
static char *input_fingerprint(report *r) {
    sqlite3_stmt *st = prepare(r, "SELECT COUNT(*), COUNT(hash), group_concat(hash, ',') FROM (SELECT hash FROM"
                                  " run_inputs WHERE run_id = ?1 ORDER BY idx)");
    char *f = NULL;
    if (st && sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) > 0 &&
        sqlite3_column_int(st, 0) == sqlite3_column_int(st, 1))
        f = strdup((const char *)sqlite3_column_text(st, 2));
    sqlite3_finalize(st);
    return f;
}

/* Each evaluator's mean and pass rate over the recent runs on the same input: a trend over
 * other inputs would move with the traces, not with the system. When the run's input is
 * unknown the trend takes every recent run and says it is mixed. */
static void gather_trend(report *r, cJSON *data) {
    static const char *const trend_keys[] = {"run", "label", "started_at", "evaluator", "mean", "passed", "pass_n",
                                             NULL};
    char *fingerprint = input_fingerprint(r);
    cJSON *about = cJSON_AddObjectToObject(data, "trend_inputs");
    cJSON_AddBoolToObject(about, "is_same", fingerprint != NULL);
    if (fingerprint) cJSON_AddStringToObject(about, "fingerprint", fingerprint);
    cJSON_AddItemToObject(
        data, "trend",
        /* the totals of runs that ended; the results only of runs without them (running, killed) */
        rows(r,
             "WITH fp AS (SELECT run_id, group_concat(hash, ',') AS f FROM (SELECT run_id, hash FROM run_inputs"
             "  ORDER BY run_id, idx) GROUP BY run_id),"
             " recent AS (SELECT id FROM runs WHERE id <= ?1 AND (?2 IS NULL OR id IN (SELECT run_id FROM fp WHERE f = ?2))"
             "  ORDER BY id DESC LIMIT " REPORT_STR(REPORT_TREND_RUNS) "),"
             " names AS (SELECT name FROM run_evaluators WHERE run_id = ?1),"
             " tallied AS (SELECT DISTINCT run_id FROM run_evaluators WHERE run_id IN recent AND records IS NOT NULL"
             "  EXCEPT SELECT run_id FROM run_evaluators WHERE run_id IN recent AND records IS NULL)"
             " SELECT e.run_id, r.label, r.started_at, e.name, e.mean, e.passed, e.pass_n FROM run_evaluators e"
             " JOIN runs r ON r.id = e.run_id WHERE e.run_id IN tallied AND e.name IN names AND e.records > 0"
             " UNION ALL"
             " SELECT x.run_id, r.label, r.started_at, x.evaluator, AVG(x.score), SUM(x.pass), COUNT(x.pass)"
             " FROM results x JOIN runs r ON r.id = x.run_id WHERE x.run_id IN recent AND x.run_id NOT IN tallied"
             " AND x.evaluator IN names GROUP BY x.run_id, x.evaluator"
             " ORDER BY 1, 4",
             trend_keys, fingerprint));
    free(fingerprint);
}

/* Each evaluator's most frequent error messages, so that a run full of them says why. */
static void gather_errors(report *r, cJSON *data) {
    static const char *const error_keys[] = {"evaluator", "kind", "message", "count", NULL};
    cJSON_AddItemToObject(data, "errors",
        rows(r,
             "SELECT evaluator, kind, message, n FROM (SELECT evaluator, error_kind AS kind, error AS message,"
             "  COUNT(*) AS n, ROW_NUMBER() OVER (PARTITION BY evaluator ORDER BY COUNT(*) DESC, MIN(file * 4294967296 + line))"
             "  AS rank"
             "  FROM results WHERE run_id = ?1 AND error_kind IS NOT NULL GROUP BY evaluator, error_kind, error)"
             " WHERE rank <= " REPORT_STR(REPORT_ERROR_MESSAGES) " ORDER BY evaluator IS NULL, evaluator, rank",
             error_keys, NULL));

}

/* The traces with the most failed or errored records, then the lowest mean score, with
 * their bodies and records. */
static void gather_worst(report *r, cJSON *data) {
    /* worst: most failed or errored records, then lowest mean score */
    static const char *const worst_keys[] = {"trace_id", "file", "line", "failed", "errors", "mean", "body", NULL};
    cJSON *worst = rows(r,
                        /* the bodies looked up for the few ranked first, not for every trace */
                        "SELECT w.trace_id, w.file, w.line, w.failed, w.errors, w.mean,"
                        " (SELECT b.json FROM traces t JOIN bodies b ON b.hash = t.body WHERE t.run_id = ?1"
                        "  AND t.file = w.file AND t.line = w.line)"
                        " FROM (SELECT x.trace_id, x.file, x.line, COUNT(CASE WHEN x.pass = 0 THEN 1 END) AS failed,"
                        "  COUNT(x.error_kind) AS errors, AVG(x.score) AS mean"
                        "  FROM results x WHERE x.run_id = ?1 AND x.trace_id IS NOT NULL GROUP BY x.file, x.line"
                        "  ORDER BY 4 + 5 DESC, 6 ASC NULLS LAST, x.file, x.line LIMIT " REPORT_STR(REPORT_WORST) ") w"
                        " ORDER BY w.failed + w.errors DESC, w.mean ASC NULLS LAST, w.file, w.line",
                        worst_keys, NULL);
    cJSON *w;
    cJSON_ArrayForEach(w, worst) {
        cJSON *body = cJSON_GetObjectItem(w, "body");
        cJSON *parsed = cJSON_IsString(body) ? cJSON_Parse(body->valuestring) : NULL;
        if (parsed) cut_strings(parsed);
        cJSON_ReplaceItemInObject(w, "body", parsed ? parsed : cJSON_CreateNull());
        cJSON_AddItemToObject(w, "records", trace_records(r, w));
    }
    cJSON_AddItemToObject(data, "worst", worst);
}

static cJSON *gather(report *r, const char *asked_field) {
    cJSON *data = cJSON_CreateObject();
    gather_run(r, data);
    gather_document(r, data);
    gather_evaluators(r, data);
    gather_segments(r, data, asked_field);
    gather_trend(r, data);
    gather_errors(r, data);
    gather_worst(r, data);
    return data;
}

/* One side of a trace on the A/B page: its input and output when the run kept its body
 * (the store keeps the bodies of each run's worst traces only), and its records. */
static cJSON *trace_side(report *r, int64_t run, const char *trace_id) {
    static const char *const record_keys[] = {"evaluator", "step", "score", "pass", "label", "error_kind",
                                              "error", "details", NULL};
    r->run = run;
    cJSON *side = cJSON_CreateObject();
    cJSON *records = rows(r, "SELECT evaluator, step, score, pass, label, error_kind, error, details FROM results"
                             " WHERE run_id = ?1 AND trace_id = ?2 ORDER BY seq", record_keys, trace_id);
    cJSON *x;
    cJSON_ArrayForEach(x, records) {
        cJSON *details = cJSON_GetObjectItem(x, "details");
        if (cJSON_IsString(details)) cJSON_ReplaceItemInObject(x, "details", parse_or_string(details->valuestring));
    }
    cJSON *body = NULL;
    sqlite3_stmt *st = prepare(r, "SELECT b.json FROM results x JOIN traces t ON t.run_id = x.run_id AND t.file = x.file"
                                  " AND t.line = x.line JOIN bodies b ON b.hash = t.body WHERE x.run_id = ?1 AND"
                                  " x.trace_id = ?2 LIMIT 1");
    if (st) {
        sqlite3_bind_text(st, 2, trace_id, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW) body = cJSON_Parse((const char *)sqlite3_column_text(st, 0));
        sqlite3_finalize(st);
    }
    cJSON_AddBoolToObject(side, "is_kept", body != NULL);
    static const char *const shown[] = {"input", "output", "metadata", NULL};
    for (int i = 0; body && shown[i]; i++) {
        cJSON *v = cJSON_DetachItemFromObject(body, shown[i]);
        if (v) cut_strings(v), cJSON_AddItemToObject(side, shown[i], v);
    }
    cJSON_Delete(body);
    cJSON_AddItemToObject(side, "records", records);
    return side;
}

/* The A/B page's data: compare's JSON as it prints it, the trend up to B, and both sides of
 * every trace among the most regressed. */
static cJSON *gather_ab(report *r, const cli_options *o, const char *a, const char *b, int *status, char *err,
                        size_t errlen) {
    cJSON *cmp = compare_json(r->db, o, a, b, status, err, errlen);
    if (!cmp) return NULL;
    int64_t run_a = (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetObjectItem(cmp, "a"), "id"));
    int64_t run_b = (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetObjectItem(cmp, "b"), "id"));
    cJSON *data = cJSON_CreateObject();
    cJSON_AddItemToObject(data, "compare", cmp);
    r->run = run_b;
    gather_trend(r, data);
    cJSON *traces = cJSON_AddArrayToObject(data, "traces"), *e, *w;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(cmp, "evaluators")) {
        cJSON_ArrayForEach(w, cJSON_GetObjectItem(e, "regressed_most")) {
            const char *id = cJSON_GetStringValue(cJSON_GetObjectItem(w, "trace_id"));
            bool is_there = false;
            cJSON *t;
            cJSON_ArrayForEach(t, traces) is_there |= strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(t, "trace_id")), id) == 0;
            if (is_there) continue;
            t = cJSON_CreateObject();
            cJSON_AddStringToObject(t, "trace_id", id);
            cJSON_AddItemToObject(t, "a", trace_side(r, run_a, id));
            cJSON_AddItemToObject(t, "b", trace_side(r, run_b, id));
            cJSON_AddItemToArray(traces, t);
        }
    }
    r->run = run_b;
    return data;
}

/* The page: the template with the data in its middle. */
static int write_page(const char *path, const char *json) {
    FILE *out = fopen(path, "w");
    if (!out) {
        fprintf(stderr, "assay: report: %s: %s\n", path, strerror(errno));
        return CLI_EXIT_IO;
    }
    fputs(report_page_head, out);
    /* The JSON sits in a script element: "</script" would end it and "<!--" would open a
     * comment that swallows the closing tag, so no '<', '>' or '&' appears raw. They can
     * only be inside JSON strings, where the \u escapes mean the same characters. */
    for (const char *p = json; *p; p++) {
        if (*p == '<') fputs("\\u003c", out);
        else if (*p == '>') fputs("\\u003e", out);
        else if (*p == '&') fputs("\\u0026", out);
        else fputc(*p, out);
    }
    fputs(report_page_tail, out);
    if ((ferror(out) | fclose(out)) != 0) {
        fprintf(stderr, "assay: report: %s: %s\n", path, strerror(errno));
        return CLI_EXIT_IO;
    }
    return CLI_EXIT_OK;
}

/* The data of one run's page (with a calibration section for --label); NULL with *status. */
static cJSON *gather_one(report *r, const cli_options *o, const char *which, int *status, char *err, size_t errlen) {
    if (store_resolve_run(r->db, which, &r->run, err, errlen) != 0) {
        *status = CLI_EXIT_USAGE;
        return NULL;
    }
    cJSON *data = gather(r, o->group_by);
    if (o->label) { /* a calibration section against an outcome (docs/metrics.md) */
        char why[600];
        cJSON *calibration = calibration_json(r->db, r->run, o->label, o->group_by, why, sizeof why);
        if (!calibration) {
            snprintf(err, errlen, "--label %s: %s", o->label, why);
            cJSON_Delete(data);
            *status = CLI_EXIT_USAGE;
            return NULL;
        }
        cJSON_AddItemToObject(data, "calibration", calibration);
    }
    return data;
}

int cli_report(cli_options *o, int argc, char **argv) {
    bool has_compare_options = o->gate_count || o->is_strict || o->min_delta > 0 || o->correction;
    if (argc > 2 || !o->output || (argc == 2 && o->label) || (argc < 2 && has_compare_options)) {
        fprintf(stderr, "assay: usage: assay report [RUN] -o FILE.html [--group-by FIELD] [--label OUTCOME] [--db FILE]\n"
                        "       assay report A B -o FILE.html [--group-by FIELD] [--gate G]... [--strict] [compare's options]\n"
                        "  RUN, A, B: a run id, a label, `latest` (default) or `previous`\n");
        return CLI_EXIT_USAGE;
    }
    char err[1200];
    report r = {0};
    if (!(r.db = store_open_reading(o->db))) return CLI_EXIT_USAGE;
    int status = CLI_EXIT_OK;
    cJSON *data = argc == 2 ? gather_ab(&r, o, argv[0], argv[1], &status, err, sizeof err)
                            : gather_one(&r, o, argc ? argv[0] : "latest", &status, err, sizeof err);
    if (!data) {
        fprintf(stderr, "assay: report: %s\n", err);
        sqlite3_close(r.db);
        return status;
    }
    char *json = r.error ? NULL : cJSON_PrintUnformatted(data);
    cJSON_Delete(data);
    if (!json) {
        fprintf(stderr, "assay: report: %s\n", r.error ? r.error : "out of memory");
        sqlite3_close(r.db);
        return CLI_EXIT_IO;
    }
    sqlite3_close(r.db);
    status = write_page(o->output, json);
    free(json);
    if (status) return status;
    if (argc == 2) fprintf(stderr, "assay: report of %s vs %s written to %s\n", argv[0], argv[1], o->output);
    else fprintf(stderr, "assay: report of run %lld written to %s\n", (long long)r.run, o->output);
    return CLI_EXIT_OK;
}
