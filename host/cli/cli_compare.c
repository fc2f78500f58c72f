/* cli_compare.c - `assay runs` and `assay compare A B`: reading the run store.
 *
 * compare pairs the records of the two runs by (trace id, evaluator, step), keeping the
 * first record of a trace id that occurs twice in a run and leaving out records with
 * errors. Per evaluator it reports the change of the mean score and of the pass rate with
 * a 95% confidence interval from a paired bootstrap (COMPARE_RESAMPLES resamples of the
 * pairs, percentile interval, a fixed seed so that the same store gives the same
 * numbers), and flags a regression or an improvement only when the interval excludes 0
 * and there are at least COMPARE_MIN_PAIRS pairs. The win rate counts the pairs where B
 * scored higher, equal, lower (pass when there is no score).
 */
#include "cli.h"
#include "../base/buf.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define COMPARE_RESAMPLES 2000
#define COMPARE_MIN_PAIRS 5
#define COMPARE_WORST 5
#define COMPARE_TIE 1e-9
#define COMPARE_MAX_GROUPS 50

/* ------------------------------------------------------------------------ assay runs */

static void format_time(double t, char *out, size_t len) {
    time_t secs = (time_t)t;
    struct tm tm;
    if (t <= 0 || !localtime_r(&secs, &tm) || !strftime(out, len, "%Y-%m-%d %H:%M", &tm)) snprintf(out, len, "-");
}

static const char *text_or(sqlite3_stmt *st, int col, const char *fallback) {
    const unsigned char *s = sqlite3_column_text(st, col);
    return s ? (const char *)s : fallback;
}

/* One line per evaluator: records, mean score, pass rate, errors. */
static void print_run_evaluators(sqlite3 *db, int64_t run, const char *indent) {
    sqlite3_stmt *st;
    /* the totals written when the run ended; a run still running (or killed) is counted */
    static const char tallied[] = "SELECT name, records, mean, CAST(passed AS REAL) / pass_n, errors FROM run_evaluators"
                                  " WHERE run_id = ?1 AND records > 0 ORDER BY idx";
    static const char counted[] = "SELECT x.evaluator, COUNT(*), AVG(x.score), AVG(x.pass), COUNT(x.error_kind)"
                                  " FROM results x LEFT JOIN run_evaluators e ON e.run_id = x.run_id AND"
                                  " e.name = x.evaluator WHERE x.run_id = ?1 AND x.evaluator IS NOT NULL"
                                  " GROUP BY x.evaluator ORDER BY MIN(e.idx)";
    bool is_tallied = false;
    if (sqlite3_prepare_v2(db, "SELECT COUNT(*) = 0 FROM run_evaluators WHERE run_id = ?1 AND records IS NULL", -1, &st,
                           NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, run);
        is_tallied = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
    }
    if (sqlite3_prepare_v2(db, is_tallied ? tallied : counted, -1, &st, NULL) != SQLITE_OK) return;
    sqlite3_bind_int64(st, 1, run);
    while (sqlite3_step(st) == SQLITE_ROW) {
        char mean[16] = "-", pass[16] = "-";
        if (sqlite3_column_type(st, 2) != SQLITE_NULL) snprintf(mean, sizeof mean, "%.3f", sqlite3_column_double(st, 2));
        if (sqlite3_column_type(st, 3) != SQLITE_NULL)
            snprintf(pass, sizeof pass, "%.1f%%", 100 * sqlite3_column_double(st, 3));
        printf("%s%-24s %8lld %7s %7s %7lld\n", indent, text_or(st, 0, "?"), sqlite3_column_int64(st, 1), mean, pass,
               sqlite3_column_int64(st, 4));
    }
    sqlite3_finalize(st);
}

int cli_runs(cli_options *o, int argc, char **argv) {
    long limit = 20;
    char *end = NULL;
    if (argc > 1 || (argc == 1 && ((limit = strtol(argv[0], &end, 10)) <= 0 || *end))) {
        fprintf(stderr, "assay: usage: assay runs [N] [--db FILE]   (the N latest runs, default 20)\n");
        return CLI_EXIT_USAGE;
    }
    sqlite3 *db = store_open_reading(o->db);
    if (!db) return CLI_EXIT_USAGE;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db,
                           "SELECT id, label, started_at, ended_at, status, traces, sample_rate, sample_seed, command,"
                           " (SELECT COUNT(*) FROM traces t WHERE t.run_id = runs.id)"
                           " FROM runs ORDER BY id DESC LIMIT ?1",
                           -1, &st, NULL) != SQLITE_OK) {
        fprintf(stderr, "assay: reading the run store: %s\n", sqlite3_errmsg(db));
        sqlite3_close(db);
        return CLI_EXIT_IO;
    }
    sqlite3_bind_int64(st, 1, limit);
    int shown = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        char started[32];
        format_time(sqlite3_column_double(st, 2), started, sizeof started);
        const char *status = text_or(st, 4, "?");
        /* a run that never finished: killed, or still going */
        long long traces = sqlite3_column_type(st, 5) == SQLITE_NULL ? sqlite3_column_int64(st, 9)
                                                                     : sqlite3_column_int64(st, 5);
        printf("%srun %lld  %s  %s  %s  %lld traces", shown ? "\n" : "", sqlite3_column_int64(st, 0),
               text_or(st, 1, "(no label)"), started, status, traces);
        if (sqlite3_column_type(st, 6) != SQLITE_NULL)
            printf("  sample %g seed %lld", sqlite3_column_double(st, 6), sqlite3_column_int64(st, 7));
        printf("\n  %s\n", text_or(st, 8, ""));
        printf("    %-24s %8s %7s %7s %7s\n", "evaluator", "records", "mean", "pass", "errors");
        print_run_evaluators(db, sqlite3_column_int64(st, 0), "    ");
        shown++;
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    if (!shown) printf("no runs recorded in %s yet\n", o->db ? o->db : STORE_DEFAULT_PATH);
    return CLI_EXIT_OK;
}

/* ---------------------------------------------------------------------- statistics */

typedef struct interval {
    size_t n;
    double mean, lo, hi;
} interval;

static uint64_t splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static int compare_doubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The mean of d and its paired-bootstrap 95% percentile interval. */
static interval bootstrap(const double *d, size_t n) {
    interval iv = {n, 0, 0, 0};
    if (!n) return iv;
    double sum = 0;
    for (size_t i = 0; i < n; i++) sum += d[i];
    iv.mean = sum / (double)n;
    double *means = malloc(COMPARE_RESAMPLES * sizeof *means);
    if (!means) {
        iv.lo = iv.hi = iv.mean;
        return iv;
    }
    uint64_t state = 20261123;
    for (size_t b = 0; b < COMPARE_RESAMPLES; b++) {
        double s = 0;
        /* two indices in [0, n) from each 64 random bits, 32 each, without a division
         * (n < 2^32 pairs); two sums, so that the additions do not wait on each other */
        double s2 = 0;
        size_t i = 0;
        for (; i + 1 < n; i += 2) {
            uint64_t x = splitmix64(&state);
            s += d[(size_t)(((x >> 32) * (uint64_t)n) >> 32)];
            s2 += d[(size_t)(((x & 0xFFFFFFFFu) * (uint64_t)n) >> 32)];
        }
        if (i < n) s += d[(size_t)(((splitmix64(&state) >> 32) * (uint64_t)n) >> 32)];
        means[b] = (s + s2) / (double)n;
    }
    qsort(means, COMPARE_RESAMPLES, sizeof *means, compare_doubles);
    iv.lo = means[(size_t)(0.025 * COMPARE_RESAMPLES)];
    iv.hi = means[(size_t)(0.975 * COMPARE_RESAMPLES) - 1];
    free(means);
    return iv;
}

/* -1 regression, 1 improvement, 0 neither. Rounding noise is no change. */
static int verdict_of(const interval *iv) {
    if (iv->n < COMPARE_MIN_PAIRS) return 0;
    if (iv->hi < -COMPARE_TIE) return -1;
    if (iv->lo > COMPARE_TIE) return 1;
    return 0;
}

/* ------------------------------------------------------------------------- pairing */

typedef struct pair {
    char *trace_id, *group, *details;
    long step;
    bool has_scores, has_passes;
    double a, b;
    int pass_a, pass_b;
} pair;

typedef struct pairs {
    pair *v;
    size_t n, cap;
    size_t only_a, only_b, errors_a, errors_b;
} pairs;

static void pairs_free(pairs *p) {
    for (size_t i = 0; i < p->n; i++) free(p->v[i].trace_id), free(p->v[i].group), free(p->v[i].details);
    free(p->v);
    memset(p, 0, sizeof *p);
}

static char *column_dup(sqlite3_stmt *st, int col) {
    const unsigned char *s = sqlite3_column_text(st, col);
    return s ? strdup((const char *)s) : NULL;
}

/* sql's count for run ?1 and evaluator ?2 */
static int64_t count_of(sqlite3 *db, const char *sql, int64_t run, const char *evaluator) {
    sqlite3_stmt *st;
    int64_t n = 0;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) return 0;
    sqlite3_bind_int64(st, 1, run);
    sqlite3_bind_text(st, 2, evaluator, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

/* The records of evaluator in runs a and b, paired by trace id and step. group_path is a
 * JSON path into B's trace body, or NULL. */
static int load_pairs(sqlite3 *db, int64_t a, int64_t b, const char *evaluator, const char *group_path, pairs *out,
                      char *err, size_t errlen) {
    /* the other columns come from the row with the MIN: the trace id's first line (lines
     * of one file stay below 2^32) */
    static const char sql[] =
        "WITH ra AS (SELECT trace_id, step, score, pass, MIN(file * 4294967296 + line) FROM results"
        "            WHERE run_id = ?1 AND evaluator = ?3 AND trace_id IS NOT NULL AND error_kind IS NULL"
        "            GROUP BY trace_id, step),"
        "     rb AS (SELECT trace_id, step, score, pass, file, line, details, MIN(file * 4294967296 + line) FROM results"
        "            WHERE run_id = ?2 AND evaluator = ?3 AND trace_id IS NOT NULL AND error_kind IS NULL"
        "            GROUP BY trace_id, step)"
        " SELECT rb.trace_id, rb.step, ra.score, rb.score, ra.pass, rb.pass,"
        "  CASE WHEN ?4 IS NULL THEN NULL ELSE (SELECT json_extract(CASE WHEN t.summary IS NOT NULL THEN t.summary"
        "   WHEN json_valid(b.json) THEN b.json ELSE '{}' END, ?4) FROM traces t LEFT JOIN bodies b ON b.hash = t.body"
        "   WHERE t.run_id = ?2 AND t.file = rb.file AND t.line = rb.line) END,"
        "  rb.details, ra.trace_id IS NULL, (SELECT COUNT(*) FROM ra)"
        " FROM rb LEFT JOIN ra ON ra.trace_id = rb.trace_id AND ra.step IS rb.step ORDER BY rb.file, rb.line, rb.step";
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "reading the run store: %s", sqlite3_errmsg(db));
        return -1;
    }
    sqlite3_bind_int64(st, 1, a);
    sqlite3_bind_int64(st, 2, b);
    sqlite3_bind_text(st, 3, evaluator, -1, SQLITE_STATIC);
    if (group_path) sqlite3_bind_text(st, 4, group_path, -1, SQLITE_STATIC);
    int rc;
    size_t in_a = 0; /* how many of A's traces (and steps) there are, paired or not */
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        in_a = (size_t)sqlite3_column_int64(st, 9);
        if (sqlite3_column_int(st, 8)) { /* in B only */
            out->only_b++;
            continue;
        }
        if (out->n == out->cap) {
            size_t cap = out->cap ? 2 * out->cap : 256;
            pair *grown = realloc(out->v, cap * sizeof *grown);
            if (!grown) break;
            out->v = grown, out->cap = cap;
        }
        pair *p = &out->v[out->n++];
        memset(p, 0, sizeof *p);
        p->trace_id = column_dup(st, 0);
        p->step = sqlite3_column_type(st, 1) == SQLITE_NULL ? -1 : (long)sqlite3_column_int64(st, 1);
        p->has_scores = sqlite3_column_type(st, 2) != SQLITE_NULL && sqlite3_column_type(st, 3) != SQLITE_NULL;
        p->a = sqlite3_column_double(st, 2), p->b = sqlite3_column_double(st, 3);
        p->has_passes = sqlite3_column_type(st, 4) != SQLITE_NULL && sqlite3_column_type(st, 5) != SQLITE_NULL;
        p->pass_a = sqlite3_column_int(st, 4), p->pass_b = sqlite3_column_int(st, 5);
        if (group_path) p->group = sqlite3_column_type(st, 6) == SQLITE_NULL ? strdup("(none)") : column_dup(st, 6);
        p->details = column_dup(st, 7);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        snprintf(err, errlen, "reading the run store: %s", sqlite3_errmsg(db));
        return -1;
    }
    static const char in_a_only[] = /* when B has none, the query above gave no row to count them in */
        "SELECT COUNT(*) FROM (SELECT 1 FROM results WHERE run_id = ?1 AND evaluator = ?2"
        " AND trace_id IS NOT NULL AND error_kind IS NULL GROUP BY trace_id, step)";
    if (out->n == 0 && out->only_b == 0) in_a = (size_t)count_of(db, in_a_only, a, evaluator);
    out->only_a = in_a > out->n ? in_a - out->n : 0;
    /* the run's totals when it has them, else a count of its results */
    static const char errors[] = "SELECT COALESCE((SELECT errors FROM run_evaluators WHERE run_id = ?1"
                                 " AND name = ?2), (SELECT COUNT(*) FROM results WHERE run_id = ?1 AND evaluator = ?2"
                                 " AND error_kind IS NOT NULL))";
    out->errors_a = (size_t)count_of(db, errors, a, evaluator);
    out->errors_b = (size_t)count_of(db, errors, b, evaluator);
    return 0;
}

/* --------------------------------------------------------------------------- compare */

typedef struct outcome {
    interval mean, pass;
    double mean_a, mean_b, pass_a, pass_b;
    size_t wins, ties, losses;
    int verdict; /* -1 regression, 1 improvement, 0 none */
} outcome;

/* Over the pairs whose group is `group` (all when NULL). */
static outcome compute(const pairs *p, const char *group) {
    outcome o;
    memset(&o, 0, sizeof o);
    double *score_d = malloc((p->n + 1) * sizeof *score_d), *pass_d = malloc((p->n + 1) * sizeof *pass_d);
    size_t ns = 0, np = 0;
    for (size_t i = 0; score_d && pass_d && i < p->n; i++) {
        const pair *x = &p->v[i];
        if (group && (!x->group || strcmp(x->group, group) != 0)) continue;
        if (x->has_scores) {
            score_d[ns++] = x->b - x->a;
            o.mean_a += x->a, o.mean_b += x->b;
            double d = x->b - x->a;
            if (fabs(d) <= COMPARE_TIE) o.ties++;
            else if (d > 0) o.wins++;
            else o.losses++;
        }
        if (x->has_passes) {
            pass_d[np++] = x->pass_b - x->pass_a;
            o.pass_a += x->pass_a, o.pass_b += x->pass_b;
            if (!x->has_scores) { /* no score: the win rate goes by pass */
                if (x->pass_b == x->pass_a) o.ties++;
                else if (x->pass_b > x->pass_a) o.wins++;
                else o.losses++;
            }
        }
    }
    if (ns) o.mean_a /= (double)ns, o.mean_b /= (double)ns;
    if (np) o.pass_a /= (double)np, o.pass_b /= (double)np;
    o.mean = bootstrap(score_d, ns);
    o.pass = bootstrap(pass_d, np);
    int vm = verdict_of(&o.mean), vp = verdict_of(&o.pass);
    o.verdict = vm < 0 || vp < 0 ? -1 : vm > 0 || vp > 0 ? 1 : 0;
    free(score_d);
    free(pass_d);
    return o;
}

static const char *verdict_name(int verdict) {
    return verdict < 0 ? "REGRESSION" : verdict > 0 ? "improvement" : "no significant change";
}

static void print_outcome(const char *name, const outcome *o) {
    printf("  %-24s %6zu", name, o->mean.n > o->pass.n ? o->mean.n : o->pass.n);
    if (o->mean.n)
        printf("  mean %.3f -> %.3f  %+.3f [%+.3f, %+.3f]", o->mean_a, o->mean_b, o->mean.mean, o->mean.lo, o->mean.hi);
    else printf("  mean -");
    if (o->pass.n)
        printf("  pass %.1f%% -> %.1f%%  %+.1f [%+.1f, %+.1f] pp", 100 * o->pass_a, 100 * o->pass_b, 100 * o->pass.mean,
               100 * o->pass.lo, 100 * o->pass.hi);
    else printf("  pass -");
    size_t n = o->wins + o->ties + o->losses;
    if (n)
        printf("  win/tie/loss %.1f%%/%.1f%%/%.1f%%", 100.0 * (double)o->wins / (double)n,
               100.0 * (double)o->ties / (double)n, 100.0 * (double)o->losses / (double)n);
    printf("  %s\n", verdict_name(o->verdict));
}

static int by_drop(const void *x, const void *y) {
    const pair *a = *(pair *const *)x, *b = *(pair *const *)y;
    double da = a->has_scores ? a->b - a->a : (double)(a->pass_b - a->pass_a);
    double db = b->has_scores ? b->b - b->a : (double)(b->pass_b - b->pass_a);
    return da < db ? -1 : da > db;
}

static void print_worst(const pairs *p) {
    pair **worse = malloc((p->n + 1) * sizeof *worse);
    size_t n = 0;
    for (size_t i = 0; worse && i < p->n; i++) {
        const pair *x = &p->v[i];
        if ((x->has_scores && x->b < x->a - COMPARE_TIE) || (!x->has_scores && x->has_passes && x->pass_b < x->pass_a))
            worse[n++] = (pair *)x;
    }
    if (n) {
        qsort(worse, n, sizeof *worse, by_drop);
        printf("    regressed most:\n");
    }
    for (size_t i = 0; i < n && i < COMPARE_WORST; i++) {
        const pair *x = worse[i];
        printf("      %s", x->trace_id);
        if (x->step >= 0) printf(" step %ld", x->step);
        if (x->has_scores) printf("  score %.3f -> %.3f", x->a, x->b);
        if (x->has_passes) printf("  pass %s -> %s", x->pass_a ? "true" : "false", x->pass_b ? "true" : "false");
        if (x->details) printf("  details %.200s%s", x->details, strlen(x->details) > 200 ? "..." : "");
        printf("\n");
    }
    free(worse);
}

static int compare_strings(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void print_groups(const pairs *p) {
    char **names = malloc((p->n + 1) * sizeof *names);
    size_t n = 0;
    for (size_t i = 0; names && i < p->n; i++) names[n++] = p->v[i].group ? p->v[i].group : "(none)";
    if (!names) return;
    qsort(names, n, sizeof *names, compare_strings);
    size_t shown = 0;
    for (size_t i = 0; i < n; i++) {
        if (i && strcmp(names[i], names[i - 1]) == 0) continue;
        if (shown++ == COMPARE_MAX_GROUPS) {
            printf("    (more groups not shown)\n");
            break;
        }
        outcome o = compute(p, names[i]);
        char label[64];
        snprintf(label, sizeof label, "  %s", names[i]);
        print_outcome(label, &o);
    }
    free(names);
}

static void describe_run(sqlite3 *db, const char *which, int64_t id) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT label, started_at, status FROM runs WHERE id = ?1", -1, &st, NULL) != SQLITE_OK)
        return;
    sqlite3_bind_int64(st, 1, id);
    if (sqlite3_step(st) == SQLITE_ROW) {
        char started[32];
        format_time(sqlite3_column_double(st, 1), started, sizeof started);
        printf("%s: run %lld  %s  %s  %s\n", which, (long long)id, text_or(st, 0, "(no label)"), started,
               text_or(st, 2, "?"));
    }
    sqlite3_finalize(st);
}

int cli_compare(cli_options *o, int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "assay: usage: assay compare A B [--group-by FIELD] [--fail-on-regression] [--db FILE]\n"
                        "  A, B: run ids, labels, `latest` or `previous` (see `assay runs`)\n");
        return CLI_EXIT_USAGE;
    }
    char err[600];
    sqlite3 *db = store_open_reading(o->db);
    if (!db) return CLI_EXIT_USAGE;
    int64_t a, b;
    if (store_resolve_run(db, argv[0], &a, err, sizeof err) != 0 || store_resolve_run(db, argv[1], &b, err, sizeof err) != 0) {
        fprintf(stderr, "assay: compare: %s\n", err);
        sqlite3_close(db);
        return CLI_EXIT_USAGE;
    }
    char *group_path = NULL;
    if (o->group_by) {
        const char *field = strncmp(o->group_by, "metadata.", 9) == 0 ? o->group_by + 9 : o->group_by;
        buf path;
        buf_init(&path);
        buf_puts(&path, "$.metadata.");
        buf_json_cstring(&path, field); /* a quoted key: any name works */
        group_path = buf_steal(&path);
    }
    describe_run(db, "A", a);
    describe_run(db, "B", b);
    printf("change B - A over paired traces, 95%% bootstrap intervals; win/tie/loss of B against A\n");
    sqlite3_stmt *st;
    int status = CLI_EXIT_OK, regressions = 0;
    if (sqlite3_prepare_v2(db,
                           "SELECT name FROM run_evaluators WHERE run_id = ?2"
                           " AND name IN (SELECT name FROM run_evaluators WHERE run_id = ?1) ORDER BY idx",
                           -1, &st, NULL) != SQLITE_OK) {
        fprintf(stderr, "assay: reading the run store: %s\n", sqlite3_errmsg(db));
        status = CLI_EXIT_IO;
        st = NULL;
    }
    if (st) sqlite3_bind_int64(st, 1, a), sqlite3_bind_int64(st, 2, b);
    int shown = 0;
    while (st && sqlite3_step(st) == SQLITE_ROW) {
        const char *evaluator = text_or(st, 0, "");
        pairs p;
        memset(&p, 0, sizeof p);
        if (load_pairs(db, a, b, evaluator, group_path, &p, err, sizeof err) != 0) {
            fprintf(stderr, "assay: %s\n", err);
            pairs_free(&p);
            status = CLI_EXIT_IO;
            break;
        }
        shown++;
        outcome all = compute(&p, NULL);
        printf("\n");
        print_outcome(evaluator, &all);
        if (p.only_a || p.only_b || p.errors_a || p.errors_b)
            printf("    unpaired: %zu only in A, %zu only in B; records with errors left out: %zu in A, %zu in B\n",
                   p.only_a, p.only_b, p.errors_a, p.errors_b);
        if (all.mean.n + all.pass.n > 0 && all.mean.n < COMPARE_MIN_PAIRS && all.pass.n < COMPARE_MIN_PAIRS)
            printf("    (fewer than %d pairs: no verdict)\n", COMPARE_MIN_PAIRS);
        if (all.verdict < 0) regressions++;
        print_worst(&p);
        if (group_path) {
            printf("    by %s:\n", o->group_by);
            print_groups(&p);
        }
        pairs_free(&p);
    }
    sqlite3_finalize(st);
    if (!shown && status == CLI_EXIT_OK) printf("\nthe two runs have no evaluator in common\n");
    if (status == CLI_EXIT_OK)
        printf("\n%d evaluator%s regressed significantly\n", regressions, regressions == 1 ? "" : "s");
    free(group_path);
    sqlite3_close(db);
    if (status == CLI_EXIT_OK && regressions && o->fail_on_regression) status = CLI_EXIT_FAILED;
    return status;
}
