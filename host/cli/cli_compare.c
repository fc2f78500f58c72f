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
#include "../base/hash.h"
#include "../base/buf.h"
#include "cli_gate.h"

#include <cjson/cJSON.h>

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

/* "  LLM tokens: … in, … out, cost …" for a run whose evaluators used any (when it ended). */
static void print_run_usage(sqlite3 *db, int64_t run) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT SUM(tokens_in), SUM(tokens_out), SUM(cost) FROM run_evaluators WHERE run_id = ?1",
                           -1, &st, NULL) != SQLITE_OK)
        return;
    sqlite3_bind_int64(st, 1, run);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int64(st, 0) + sqlite3_column_int64(st, 1) > 0) {
        printf("  LLM tokens: %lld in, %lld out", sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1));
        if (sqlite3_column_type(st, 2) != SQLITE_NULL) printf(", cost %.4f", sqlite3_column_double(st, 2));
        printf("\n");
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
                           " (SELECT COUNT(*) FROM traces t WHERE t.run_id = runs.id), kind"
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
        bool is_pairwise = strcmp(text_or(st, 10, ""), "pairwise") == 0; /* its records are pairs */
        printf("%srun %lld  %s  %s  %s  %lld %s", shown ? "\n" : "", sqlite3_column_int64(st, 0),
               text_or(st, 1, "(no label)"), started, status, traces, is_pairwise ? "pairs judged" : "traces");
        if (sqlite3_column_type(st, 6) != SQLITE_NULL)
            printf("  sample %g seed %lld", sqlite3_column_double(st, 6), sqlite3_column_int64(st, 7));
        if (sqlite3_column_type(st, 10) != SQLITE_NULL) printf("  (%s)", text_or(st, 10, ""));
        printf("\n  %s\n", text_or(st, 8, ""));
        print_run_usage(db, sqlite3_column_int64(st, 0));
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
    double se; /* the standard deviation of the resampled means: the bootstrap standard error */
} interval;

/* The mean of d and its paired-bootstrap 95% percentile interval. */
static interval bootstrap(const double *d, size_t n) {
    interval iv = {n, 0, 0, 0, 0};
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
            uint64_t x = hash_splitmix64(&state);
            s += d[(size_t)(((x >> 32) * (uint64_t)n) >> 32)];
            s2 += d[(size_t)(((x & 0xFFFFFFFFu) * (uint64_t)n) >> 32)];
        }
        if (i < n) s += d[(size_t)(((hash_splitmix64(&state) >> 32) * (uint64_t)n) >> 32)];
        means[b] = (s + s2) / (double)n;
    }
    double sum_sq = 0;
    for (size_t b = 0; b < COMPARE_RESAMPLES; b++) sum_sq += (means[b] - iv.mean) * (means[b] - iv.mean);
    iv.se = sqrt(sum_sq / (COMPARE_RESAMPLES - 1));
    qsort(means, COMPARE_RESAMPLES, sizeof *means, cli_compare_doubles);
    iv.lo = means[(size_t)(0.025 * COMPARE_RESAMPLES)];
    iv.hi = means[(size_t)(0.975 * COMPARE_RESAMPLES) - 1];
    free(means);
    return iv;
}

/* The regularized incomplete beta function I_x(a, b), by its continued fraction (modified
 * Lentz), the form that converges for x < (a + 1) / (a + b + 2); the symmetry
 * I_x(a, b) = 1 - I_(1-x)(b, a) covers the rest. */
static double beta_fraction(double x, double a, double b) {
    const double tiny = 1e-300;
    double c = 1, d = 1 - (a + b) * x / (a + 1);
    d = 1 / (fabs(d) < tiny ? tiny : d);
    double f = d;
    for (int m = 1; m <= 300; m++) {
        for (int odd = 0; odd < 2; odd++) {
            double num = odd ? -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
                             : m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m));
            d = 1 + num * d;
            d = 1 / (fabs(d) < tiny ? tiny : d);
            c = 1 + num / c;
            if (fabs(c) < tiny) c = tiny;
            f *= c * d;
            if (odd && fabs(c * d - 1) < 1e-14) return f;
        }
    }
    return f;
}

static double incomplete_beta(double x, double a, double b) {
    if (x <= 0) return 0;
    if (x >= 1) return 1;
    double front = exp(lgamma(a + b) - lgamma(a) - lgamma(b) + a * log(x) + b * log1p(-x));
    if (x < (a + 1) / (a + b + 2)) return front * beta_fraction(x, a, b) / a;
    return 1 - front * beta_fraction(1 - x, b, a) / b;
}

/* Two-sided p-value of "the mean change is 0": the paired t-test on the n differences
 * (t = mean / (sd / sqrt n), n - 1 degrees of freedom). Rounding noise is no change; a
 * constant nonzero change is certain. */
static double p_value(const double *d, size_t n, double mean) {
    if (fabs(mean) <= COMPARE_TIE) return 1;
    if (n < 2) return 1;
    double ss = 0;
    for (size_t i = 0; i < n; i++) ss += (d[i] - mean) * (d[i] - mean);
    double se = sqrt(ss / (double)(n - 1) / (double)n);
    if (se <= 0) return 0;
    double t = mean / se, df = (double)(n - 1);
    return incomplete_beta(df / (df + t * t), df / 2, 0.5);
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

/* ------------------------------------------------------------------------- outcome */

typedef struct outcome {
    interval mean, pass;
    double mean_a, mean_b, pass_a, pass_b;
    size_t wins, ties, losses;
    double p_mean, p_pass; /* of the paired t-tests */
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
    o.p_mean = score_d ? p_value(score_d, ns, o.mean.mean) : 1;
    o.p_pass = pass_d ? p_value(pass_d, np, o.pass.mean) : 1;
    free(score_d);
    free(pass_d);
    return o;
}

/* --------------------------------------------------------------------------- compare */

#define COMPARE_ALPHA 0.05
#define COMPARE_WIDTH 100 /* the text output fits a terminal of this many columns */

enum { MEASURE_MEAN, MEASURE_PASS };
enum { VERDICT_NONE, VERDICT_WORSE, VERDICT_BETTER, VERDICT_MINOR, VERDICT_CHANGED, VERDICT_FEW };
static const char *const verdict_text[] = {"", "REGRESSION", "improved", "below min-delta", "changed def.",
                                           "too few pairs"};
static const char *const verdict_key[] = {"none", "regression", "improvement", "below_min_delta",
                                          "definition_changed", "too_few_pairs"};

/* One comparison: an evaluator's mean score or pass rate, over all pairs or one segment. */
typedef struct row {
    const char *segment; /* NULL: all pairs; else the pairs' own group string */
    int measure;
    interval iv;
    double a, b; /* A's and B's value over the pairs */
    size_t wins, ties, losses;
    bool has_wins;
    double p, p_adj; /* p_adj < 0: not among the comparisons tested together */
    int verdict;
} row;

typedef struct evaluator_cmp {
    char *name;
    pairs p;
    row *rows;
    size_t n_rows, cap_rows;
    bool is_changed; /* its params or plugin file differ between A and B */
} evaluator_cmp;

typedef struct comparison {
    sqlite3 *db;
    int64_t a, b;
    const cli_options *o;
    char *group_path;
    evaluator_cmp *ev;
    size_t n_ev;
    cJSON *changes; /* [{what, evaluator?, ...}] */
    size_t family, regressions;
} comparison;

static int add_row(evaluator_cmp *e, const row *r) {
    if (e->n_rows == e->cap_rows) {
        size_t cap = e->cap_rows ? 2 * e->cap_rows : 8;
        row *grown = realloc(e->rows, cap * sizeof *grown);
        if (!grown) return -1;
        e->rows = grown, e->cap_rows = cap;
    }
    e->rows[e->n_rows++] = *r;
    return 0;
}

/* The mean and pass rows of the pairs in segment (all when NULL). */
static int add_rows(evaluator_cmp *e, const char *segment) {
    outcome o = compute(&e->p, segment);
    row r;
    memset(&r, 0, sizeof r);
    r.segment = segment;
    r.p_adj = -1;
    if (o.mean.n) {
        r.measure = MEASURE_MEAN, r.iv = o.mean, r.a = o.mean_a, r.b = o.mean_b;
        r.wins = o.wins, r.ties = o.ties, r.losses = o.losses, r.has_wins = true;
        r.p = o.p_mean;
        if (add_row(e, &r) != 0) return -1;
    }
    if (o.pass.n) {
        r.measure = MEASURE_PASS, r.iv = o.pass, r.a = o.pass_a, r.b = o.pass_b;
        r.wins = o.wins, r.ties = o.ties, r.losses = o.losses, r.has_wins = !o.mean.n;
        r.p = o.p_pass;
        if (add_row(e, &r) != 0) return -1;
    }
    return 0;
}

static int compare_strings(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Rows over all pairs, then per segment in name order. */
static int evaluator_rows(evaluator_cmp *e, bool is_grouped) {
    if (add_rows(e, NULL) != 0) return -1;
    if (!is_grouped) return 0;
    const char **names = malloc((e->p.n + 1) * sizeof *names);
    if (!names) return -1;
    size_t n = 0;
    for (size_t i = 0; i < e->p.n; i++) names[n++] = e->p.v[i].group;
    qsort(names, n, sizeof *names, compare_strings);
    size_t shown = 0;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (i && strcmp(names[i], names[i - 1]) == 0) continue;
        if (shown++ == COMPARE_MAX_GROUPS) break;
        rc = add_rows(e, names[i]);
    }
    free(names);
    return rc;
}

static int by_p(const void *x, const void *y) {
    const row *a = *(row *const *)x, *b = *(row *const *)y;
    return a->p < b->p ? -1 : a->p > b->p;
}

/* Adjusts the p-values of the m comparisons tested together: Holm's step-down (the
 * chance of any false alarm stays below alpha), Benjamini-Hochberg (the expected share of
 * false alarms among the alarms does), or none. */
static void adjust_p(row **fam, size_t m, const char *method) {
    qsort(fam, m, sizeof *fam, by_p);
    if (strcmp(method, "holm") == 0) {
        double running = 0;
        for (size_t k = 0; k < m; k++) {
            double adj = fmin(1, (double)(m - k) * fam[k]->p);
            running = fmax(running, adj);
            fam[k]->p_adj = running;
        }
    } else if (strcmp(method, "bh") == 0) {
        double running = 1;
        for (size_t k = m; k-- > 0;) {
            running = fmin(running, (double)m / (double)(k + 1) * fam[k]->p);
            fam[k]->p_adj = running;
        }
    } else {
        for (size_t k = 0; k < m; k++) fam[k]->p_adj = fam[k]->p;
    }
}

static int verdict_of(const row *r, bool is_changed, const cli_options *o) {
    if (r->iv.n < COMPARE_MIN_PAIRS) return VERDICT_FEW;
    if (is_changed && !o->is_strict) return r->p < COMPARE_ALPHA ? VERDICT_CHANGED : VERDICT_NONE;
    if (r->p_adj >= COMPARE_ALPHA) return VERDICT_NONE;
    if (fabs(r->iv.mean) < o->min_delta) return VERDICT_MINOR;
    return r->iv.mean < 0 ? VERDICT_WORSE : VERDICT_BETTER;
}

/* Every row of an evaluator whose definition is the same in both runs (or all, --strict)
 * with enough pairs is tested together; then each row gets its verdict. */
static int judge(comparison *c) {
    size_t total = 0, m = 0;
    for (size_t i = 0; i < c->n_ev; i++) total += c->ev[i].n_rows;
    row **fam = malloc((total + 1) * sizeof *fam);
    if (!fam) return -1;
    for (size_t i = 0; i < c->n_ev; i++) {
        evaluator_cmp *e = &c->ev[i];
        if (e->is_changed && !c->o->is_strict) continue;
        for (size_t k = 0; k < e->n_rows; k++) {
            row *r = &e->rows[k];
            if (r->iv.n < COMPARE_MIN_PAIRS) continue;
            /* every pair unchanged: no resample can differ, so the comparison cannot raise an
             * alarm and does not count among those that can (Tarone's refinement) */
            if (r->iv.se <= 0 && fabs(r->iv.mean) <= COMPARE_TIE) r->p_adj = 1;
            else fam[m++] = r;
        }
    }
    adjust_p(fam, m, c->o->correction ? c->o->correction : "holm");
    free(fam);
    c->family = m;
    for (size_t i = 0; i < c->n_ev; i++)
        for (size_t k = 0; k < c->ev[i].n_rows; k++) {
            row *r = &c->ev[i].rows[k];
            r->verdict = verdict_of(r, c->ev[i].is_changed, c->o);
            c->regressions += r->verdict == VERDICT_WORSE;
        }
    return 0;
}

/* ------------------------------------------------------------ what changed from A to B */

static cJSON *change_item(cJSON *changes, const char *what, const char *evaluator) {
    cJSON *x = cJSON_CreateObject();
    cJSON_AddStringToObject(x, "what", what);
    if (evaluator) cJSON_AddStringToObject(x, "evaluator", evaluator);
    cJSON_AddItemToArray(changes, x);
    return x;
}

/* The run's inputs as one JSON array of {path, size, hash}. */
static cJSON *inputs_of(sqlite3 *db, int64_t run) {
    cJSON *list = cJSON_CreateArray();
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT path, size, hash FROM run_inputs WHERE run_id = ?1 ORDER BY idx", -1, &st, NULL) !=
        SQLITE_OK)
        return list;
    sqlite3_bind_int64(st, 1, run);
    while (sqlite3_step(st) == SQLITE_ROW) {
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "path", text_or(st, 0, "-"));
        cJSON_AddNumberToObject(x, "size", (double)sqlite3_column_int64(st, 1));
        cJSON_AddStringToObject(x, "hash", text_or(st, 2, ""));
        cJSON_AddItemToArray(list, x);
    }
    sqlite3_finalize(st);
    return list;
}

static bool same_inputs(const cJSON *a, const cJSON *b) {
    if (cJSON_GetArraySize(a) != cJSON_GetArraySize(b)) return false;
    for (const cJSON *x = a->child, *y = b->child; x && y; x = x->next, y = y->next)
        if (strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(x, "hash")), cJSON_GetStringValue(cJSON_GetObjectItem(y, "hash"))))
            return false;
    return true;
}

/* The keys whose values differ, as {key: [a, b]} (null for a key one side lacks). */
static cJSON *params_diff(const char *a_text, const char *b_text) {
    cJSON *a = cJSON_Parse(a_text ? a_text : "{}"), *b = cJSON_Parse(b_text ? b_text : "{}");
    cJSON *diff = cJSON_CreateObject();
    for (int side = 0; side < 2; side++) {
        const cJSON *from = side ? b : a, *other = side ? a : b;
        for (const cJSON *x = from ? from->child : NULL; x; x = x->next) {
            if (cJSON_GetObjectItem(diff, x->string)) continue;
            const cJSON *y = other ? cJSON_GetObjectItemCaseSensitive(other, x->string) : NULL;
            if (y && cJSON_Compare(x, y, 1)) continue;
            cJSON *pair_ab = cJSON_CreateArray();
            cJSON_AddItemToArray(pair_ab, side ? (y ? cJSON_Duplicate(y, 1) : cJSON_CreateNull()) : cJSON_Duplicate(x, 1));
            cJSON_AddItemToArray(pair_ab, side ? cJSON_Duplicate(x, 1) : (y ? cJSON_Duplicate(y, 1) : cJSON_CreateNull()));
            cJSON_AddItemToObject(diff, x->string, pair_ab);
        }
    }
    cJSON_Delete(a);
    cJSON_Delete(b);
    return diff;
}

/* An evaluator's definition in both runs; is_changed when params or file differ. */
static void evaluator_changes(comparison *c, evaluator_cmp *e) {
    static const char sql[] = "SELECT a.hash, b.hash, a.params, b.params FROM run_evaluators a, run_evaluators b"
                              " WHERE a.run_id = ?1 AND b.run_id = ?2 AND a.name = ?3 AND b.name = ?3";
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK) return;
    sqlite3_bind_int64(st, 1, c->a);
    sqlite3_bind_int64(st, 2, c->b);
    sqlite3_bind_text(st, 3, e->name, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) {
        const char *ha = text_or(st, 0, ""), *hb = text_or(st, 1, "");
        if (strcmp(ha, hb) != 0) {
            cJSON *x = change_item(c->changes, "plugin_file", e->name);
            cJSON_AddStringToObject(x, "a", ha);
            cJSON_AddStringToObject(x, "b", hb);
            e->is_changed = true;
        }
        cJSON *diff = params_diff((const char *)sqlite3_column_text(st, 2), (const char *)sqlite3_column_text(st, 3));
        if (diff->child) {
            cJSON_AddItemToObject(change_item(c->changes, "params", e->name), "params", diff);
            e->is_changed = true;
        } else cJSON_Delete(diff);
    }
    sqlite3_finalize(st);
}

/* Inputs, and evaluators of one run only, into c->changes; the evaluators of both into c->ev. */
static int gather_changes(comparison *c) {
    cJSON *ia = inputs_of(c->db, c->a), *ib = inputs_of(c->db, c->b);
    cJSON *in = change_item(c->changes, same_inputs(ia, ib) ? "input_same" : "input", NULL);
    cJSON_AddItemToObject(in, "a", ia);
    cJSON_AddItemToObject(in, "b", ib);
    static const char sql[] = "SELECT name, (SELECT COUNT(*) FROM run_evaluators y WHERE y.run_id = ?2 AND y.name = x.name)"
                              " FROM run_evaluators x WHERE x.run_id = ?1 ORDER BY idx";
    for (int side = 0; side < 2; side++) {
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK) return -1;
        sqlite3_bind_int64(st, 1, side ? c->a : c->b);
        sqlite3_bind_int64(st, 2, side ? c->b : c->a);
        while (sqlite3_step(st) == SQLITE_ROW) {
            const char *name = text_or(st, 0, "");
            if (sqlite3_column_int(st, 1) == 0) {
                change_item(c->changes, side ? "only_in_a" : "only_in_b", name);
            } else if (!side) { /* in both: compared, in B's order */
                evaluator_cmp *grown = realloc(c->ev, (c->n_ev + 1) * sizeof *grown);
                if (!grown) break;
                c->ev = grown;
                memset(&c->ev[c->n_ev], 0, sizeof *c->ev);
                c->ev[c->n_ev++].name = strdup(name);
            }
        }
        sqlite3_finalize(st);
    }
    for (size_t i = 0; i < c->n_ev; i++) evaluator_changes(c, &c->ev[i]);
    return 0;
}

/* ---------------------------------------------------------------------------- gates */

/* Counts of run's records per evaluator, and per value of the segment path when given. */
static int gather_cells(sqlite3 *db, int64_t run, const char *segment_path, gate_cell **out, size_t *n) {
    static const char sql[] =
        "SELECT x.evaluator, CASE WHEN ?2 IS NULL THEN NULL ELSE COALESCE((SELECT json_extract(CASE WHEN t.summary"
        "  IS NOT NULL THEN t.summary WHEN json_valid(b.json) THEN b.json ELSE '{}' END, ?2) FROM traces t"
        "  LEFT JOIN bodies b ON b.hash = t.body WHERE t.run_id = x.run_id AND t.file = x.file AND t.line = x.line),"
        "  '(none)') END AS seg, COUNT(*), COUNT(x.score), SUM(x.score), SUM(x.pass), COUNT(x.pass),"
        "  COUNT(x.error_kind) FROM results x WHERE x.run_id = ?1 AND x.evaluator IS NOT NULL GROUP BY x.evaluator, seg";
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) return -1;
    sqlite3_bind_int64(st, 1, run);
    if (segment_path) sqlite3_bind_text(st, 2, segment_path, -1, SQLITE_STATIC);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        gate_cell *grown = realloc(*out, (*n + 1) * sizeof *grown);
        if (!grown) break;
        *out = grown;
        gate_cell *c = &grown[(*n)++];
        memset(c, 0, sizeof *c);
        c->evaluator = strdup(text_or(st, 0, ""));
        c->segment = sqlite3_column_type(st, 1) == SQLITE_NULL ? NULL : strdup(text_or(st, 1, ""));
        c->records = (uint64_t)sqlite3_column_int64(st, 2);
        c->scored = (uint64_t)sqlite3_column_int64(st, 3);
        c->score_sum = sqlite3_column_double(st, 4);
        c->passed = (uint64_t)sqlite3_column_int64(st, 5);
        c->pass_n = (uint64_t)sqlite3_column_int64(st, 6);
        c->errors = (uint64_t)sqlite3_column_int64(st, 7);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

static void free_cells(gate_cell *cells, size_t n) {
    for (size_t i = 0; i < n; i++) free((char *)cells[i].evaluator), free((char *)cells[i].segment);
    free(cells);
}

/* Checks the gates on the stored run: over all its records, and per segment of the path
 * (a segment gate without one is a usage error). -1 on a store error. */
int compare_check_gates(sqlite3 *db, int64_t run, const gate *gates, size_t count, const char *segment_path,
                        gate_results *out, char *err, size_t errlen) {
    gate_cell *cells = NULL;
    size_t n = 0;
    int rc = gather_cells(db, run, NULL, &cells, &n);
    if (rc == 0 && segment_path) rc = gather_cells(db, run, segment_path, &cells, &n);
    if (rc != 0) snprintf(err, errlen, "reading the run store: %s", sqlite3_errmsg(db));
    else if (gate_check(gates, count, cells, n, out) < 0) rc = -1, snprintf(err, errlen, "out of memory");
    free_cells(cells, n);
    return rc;
}

/* ----------------------------------------------------------------------- text output */

static void describe_run(sqlite3 *db, const char *which, int64_t id) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT label, started_at, status, COALESCE(traces, (SELECT COUNT(*) FROM traces t"
                           " WHERE t.run_id = runs.id)) FROM runs WHERE id = ?1", -1, &st, NULL) != SQLITE_OK)
        return;
    sqlite3_bind_int64(st, 1, id);
    if (sqlite3_step(st) == SQLITE_ROW) {
        char started[32];
        format_time(sqlite3_column_double(st, 1), started, sizeof started);
        printf("%s: run %lld  %.40s  %s  %s  %lld traces\n", which, (long long)id, text_or(st, 0, "(no label)"), started,
               text_or(st, 2, "?"), sqlite3_column_int64(st, 3));
    }
    sqlite3_finalize(st);
}

static void print_inputs(const char *which, const cJSON *list) {
    for (const cJSON *x = list->child; x; x = x->next) {
        const char *path = cJSON_GetStringValue(cJSON_GetObjectItem(x, "path"));
        size_t len = strlen(path);
        printf("    %s  %s%s  (h64 %s, %.0f bytes)\n", which, len > 50 ? "..." : "", len > 50 ? path + len - 47 : path,
               cJSON_GetStringValue(cJSON_GetObjectItem(x, "hash")), cJSON_GetNumberValue(cJSON_GetObjectItem(x, "size")));
    }
}

static void print_changes(const comparison *c) {
    printf("changed from A to B:\n");
    bool any = false;
    for (const cJSON *x = c->changes->child; x; x = x->next) {
        const char *what = cJSON_GetStringValue(cJSON_GetObjectItem(x, "what"));
        const char *name = cJSON_GetStringValue(cJSON_GetObjectItem(x, "evaluator"));
        if (strcmp(what, "input_same") == 0) {
            const cJSON *first = cJSON_GetObjectItem(x, "a")->child;
            printf("  input: the same (%d file%s, h64 %s)\n", cJSON_GetArraySize(cJSON_GetObjectItem(x, "a")),
                   cJSON_GetArraySize(cJSON_GetObjectItem(x, "a")) == 1 ? "" : "s",
                   first ? cJSON_GetStringValue(cJSON_GetObjectItem(first, "hash")) : "-");
            continue;
        }
        any = true;
        if (strcmp(what, "input") == 0) {
            printf("  input: different files or contents\n");
            print_inputs("A", cJSON_GetObjectItem(x, "a"));
            print_inputs("B", cJSON_GetObjectItem(x, "b"));
        } else if (strcmp(what, "only_in_a") == 0 || strcmp(what, "only_in_b") == 0) {
            printf("  %s: only in %s (not compared)\n", name, what[8] == 'a' ? "A" : "B");
        } else if (strcmp(what, "plugin_file") == 0) {
            printf("  %s: plugin file changed (h64 %s -> %s)\n", name, cJSON_GetStringValue(cJSON_GetObjectItem(x, "a")),
                   cJSON_GetStringValue(cJSON_GetObjectItem(x, "b")));
        } else if (strcmp(what, "params") == 0) {
            for (const cJSON *k = cJSON_GetObjectItem(x, "params")->child; k; k = k->next) {
                char *va = cJSON_PrintUnformatted(cJSON_GetArrayItem(k, 0));
                char *vb = cJSON_PrintUnformatted(cJSON_GetArrayItem(k, 1));
                printf("  %s: param %s %.30s -> %.30s\n", name, k->string, va ? va : "?", vb ? vb : "?");
                free(va);
                free(vb);
            }
        }
    }
    if (!any) printf("  nothing else: the same evaluators, params and plugin files\n");
}

static void format_value(char *out, size_t len, int measure, double v, bool is_delta) {
    if (measure == MEASURE_MEAN) snprintf(out, len, is_delta ? "%+.3f" : "%.3f", v);
    else snprintf(out, len, is_delta ? "%+.1f" : "%.1f%%", 100 * v);
}

static void print_row(const row *r) {
    char a[16], b[16], d[16], lo[16], hi[16], p[16] = "-";
    format_value(a, sizeof a, r->measure, r->a, false);
    format_value(b, sizeof b, r->measure, r->b, false);
    format_value(d, sizeof d, r->measure, r->iv.mean, true);
    if (r->measure == MEASURE_PASS) strcat(d, "pp");
    format_value(lo, sizeof lo, r->measure, r->iv.lo, true);
    format_value(hi, sizeof hi, r->measure, r->iv.hi, true);
    if (r->p_adj >= 0) snprintf(p, sizeof p, r->p_adj < 0.001 ? "<.001" : "%.3f", r->p_adj);
    printf("  %-16.16s %-4s %7zu %7s %7s %8s  [%6s, %6s] %6s%s%s\n", r->segment ? r->segment : "all",
           r->measure == MEASURE_MEAN ? "mean" : "pass", r->iv.n, a, b, d, lo, hi, p, r->verdict ? "  " : "",
           verdict_text[r->verdict]);
}

static int by_drop(const void *x, const void *y) {
    const pair *a = *(pair *const *)x, *b = *(pair *const *)y;
    double da = a->has_scores ? a->b - a->a : (double)(a->pass_b - a->pass_a);
    double db = b->has_scores ? b->b - b->a : (double)(b->pass_b - b->pass_a);
    return da < db ? -1 : da > db;
}

/* The pairs where B is worse, most dropped first; *n of them. The caller frees. */
static pair **worst_pairs(const pairs *p, size_t *n) {
    pair **worse = malloc((p->n + 1) * sizeof *worse);
    *n = 0;
    for (size_t i = 0; worse && i < p->n; i++) {
        const pair *x = &p->v[i];
        if ((x->has_scores && x->b < x->a - COMPARE_TIE) || (!x->has_scores && x->has_passes && x->pass_b < x->pass_a))
            worse[(*n)++] = (pair *)x;
    }
    if (*n) qsort(worse, *n, sizeof *worse, by_drop);
    return worse;
}

static void print_worst(const pairs *p) {
    size_t n;
    pair **worse = worst_pairs(p, &n);
    if (n) printf("  regressed most:\n");
    for (size_t i = 0; i < n && i < COMPARE_WORST; i++) {
        const pair *x = worse[i];
        char line[COMPARE_WIDTH + 1];
        int len = snprintf(line, sizeof line, "    %.30s", x->trace_id ? x->trace_id : "?");
        if (x->step >= 0) len += snprintf(line + len, sizeof line - (size_t)len, " step %ld", x->step);
        if (x->has_scores) len += snprintf(line + len, sizeof line - (size_t)len, "  %.3f -> %.3f", x->a, x->b);
        if (x->has_passes)
            len += snprintf(line + len, sizeof line - (size_t)len, "  pass %s -> %s", x->pass_a ? "true" : "false",
                            x->pass_b ? "true" : "false");
        if (x->details && len + 6 < COMPARE_WIDTH) {
            int room = COMPARE_WIDTH - len - 2;
            if ((int)strlen(x->details) <= room) snprintf(line + len, sizeof line - (size_t)len, "  %s", x->details);
            else snprintf(line + len, sizeof line - (size_t)len, "  %.*s...", room - 3, x->details);
        }
        printf("%s\n", line);
    }
    free(worse);
}

static const char *evaluator_verdict(const evaluator_cmp *e) {
    bool better = false, changed = false;
    for (size_t k = 0; k < e->n_rows; k++) {
        if (e->rows[k].verdict == VERDICT_WORSE) return "REGRESSION";
        better |= e->rows[k].verdict == VERDICT_BETTER;
        changed |= e->rows[k].verdict == VERDICT_CHANGED;
    }
    if (better) return "improved";
    if (e->is_changed) return changed ? "definition changed: the change is not judged (--strict judges it)"
                                      : "definition changed, no significant change";
    return "no significant change";
}

static void print_evaluator(const evaluator_cmp *e) {
    printf("\n%s: %s\n", e->name, evaluator_verdict(e));
    if (!e->n_rows) printf("  no pairs\n");
    else printf("  %-16s %-4s %7s %7s %7s %8s  %-16s %6s  %s\n", "segment", "", "pairs", "A", "B", "B - A",
                "95% interval", "p adj", "verdict");
    for (size_t k = 0; k < e->n_rows; k++) print_row(&e->rows[k]);
    for (size_t k = 0; k < e->n_rows; k++) {
        const row *r = &e->rows[k];
        size_t n = r->wins + r->ties + r->losses;
        if (r->segment || !r->has_wins || !n) continue;
        printf("  win/tie/loss of B: %.1f%% / %.1f%% / %.1f%% of %zu pairs%s\n", 100.0 * (double)r->wins / (double)n,
               100.0 * (double)r->ties / (double)n, 100.0 * (double)r->losses / (double)n, n,
               r->measure == MEASURE_PASS ? " (by pass)" : "");
    }
    const pairs *p = &e->p;
    if (p->only_a || p->only_b || p->errors_a || p->errors_b)
        printf("  unpaired: %zu only in A, %zu only in B; records with errors left out: %zu in A, %zu in B\n", p->only_a,
               p->only_b, p->errors_a, p->errors_b);
    print_worst(p);
}

static void print_text(const comparison *c, const gate_results *gr) {
    describe_run(c->db, "A", c->a);
    describe_run(c->db, "B", c->b);
    print_changes(c);
    printf("\nB - A over paired traces with 95%% bootstrap intervals. A verdict needs p < %.2f after\n"
           "%s over the %zu comparisons tested together (docs/ci.md).\n",
           COMPARE_ALPHA, !c->o->correction || strcmp(c->o->correction, "holm") == 0 ? "Holm's correction"
                          : strcmp(c->o->correction, "bh") == 0 ? "Benjamini-Hochberg" : "no correction",
           c->family);
    for (size_t i = 0; i < c->n_ev; i++) print_evaluator(&c->ev[i]);
    if (!c->n_ev) printf("\nthe two runs have no evaluator in common\n");
    size_t changed = 0;
    for (size_t i = 0; i < c->n_ev; i++) changed += c->ev[i].is_changed;
    printf("\n%zu significant regression%s", c->regressions, c->regressions == 1 ? "" : "s");
    if (changed && !c->o->is_strict)
        printf("; %zu evaluator%s changed definition and %s not judged (--strict judges %s)", changed,
               changed == 1 ? "" : "s", changed == 1 ? "is" : "are", changed == 1 ? "it" : "them");
    printf("\n");
    if (gr->n) gate_results_print(gr, stdout);
}

/* ----------------------------------------------------------------------- JSON output */

static cJSON *run_json(sqlite3 *db, int64_t id) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "id", (double)id);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT label, started_at, status FROM runs WHERE id = ?1", -1, &st, NULL) != SQLITE_OK)
        return o;
    sqlite3_bind_int64(st, 1, id);
    if (sqlite3_step(st) == SQLITE_ROW) {
        if (sqlite3_column_type(st, 0) == SQLITE_NULL) cJSON_AddNullToObject(o, "label");
        else cJSON_AddStringToObject(o, "label", text_or(st, 0, ""));
        cJSON_AddNumberToObject(o, "started_at", sqlite3_column_double(st, 1));
        cJSON_AddStringToObject(o, "status", text_or(st, 2, "?"));
    }
    sqlite3_finalize(st);
    return o;
}

static cJSON *row_json(const row *r) {
    cJSON *o = cJSON_CreateObject();
    if (r->segment) cJSON_AddStringToObject(o, "segment", r->segment);
    else cJSON_AddNullToObject(o, "segment");
    cJSON_AddStringToObject(o, "measure", r->measure == MEASURE_MEAN ? "mean" : "pass_rate");
    cJSON_AddNumberToObject(o, "n", (double)r->iv.n);
    cJSON_AddNumberToObject(o, "a", r->a);
    cJSON_AddNumberToObject(o, "b", r->b);
    cJSON_AddNumberToObject(o, "delta", r->iv.mean);
    cJSON *ci = cJSON_AddArrayToObject(o, "ci");
    cJSON_AddItemToArray(ci, cJSON_CreateNumber(r->iv.lo));
    cJSON_AddItemToArray(ci, cJSON_CreateNumber(r->iv.hi));
    cJSON_AddNumberToObject(o, "p", r->p);
    if (r->p_adj >= 0) cJSON_AddNumberToObject(o, "p_adjusted", r->p_adj);
    else cJSON_AddNullToObject(o, "p_adjusted");
    if (r->has_wins) {
        cJSON_AddNumberToObject(o, "wins", (double)r->wins);
        cJSON_AddNumberToObject(o, "ties", (double)r->ties);
        cJSON_AddNumberToObject(o, "losses", (double)r->losses);
    }
    cJSON_AddStringToObject(o, "verdict", verdict_key[r->verdict]);
    return o;
}

static cJSON *worst_json(const pairs *p) {
    cJSON *list = cJSON_CreateArray();
    size_t n;
    pair **worse = worst_pairs(p, &n);
    for (size_t i = 0; i < n && i < COMPARE_WORST; i++) {
        const pair *x = worse[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "trace_id", x->trace_id ? x->trace_id : "");
        if (x->step >= 0) cJSON_AddNumberToObject(o, "step", (double)x->step);
        if (x->group) cJSON_AddStringToObject(o, "segment", x->group);
        if (x->has_scores) cJSON_AddNumberToObject(o, "a", x->a), cJSON_AddNumberToObject(o, "b", x->b);
        if (x->has_passes) cJSON_AddBoolToObject(o, "pass_a", x->pass_a), cJSON_AddBoolToObject(o, "pass_b", x->pass_b);
        cJSON *details = x->details ? cJSON_Parse(x->details) : NULL;
        cJSON_AddItemToObject(o, "details_b", details ? details : cJSON_CreateNull());
        cJSON_AddItemToArray(list, o);
    }
    free(worse);
    return list;
}

static cJSON *gates_json(const gate_results *gr) {
    cJSON *list = cJSON_CreateArray();
    for (size_t i = 0; i < gr->n; i++) {
        const gate_result *x = &gr->v[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "gate", x->g->text);
        if (x->has_segment) cJSON_AddStringToObject(o, "segment", x->segment);
        cJSON_AddBoolToObject(o, "ok", x->ok);
        if (x->has_value) cJSON_AddNumberToObject(o, "value", x->value), cJSON_AddNumberToObject(o, "n", (double)x->n);
        else cJSON_AddStringToObject(o, "why", x->why);
        cJSON_AddItemToArray(list, o);
    }
    return list;
}

static cJSON *comparison_json(const comparison *c, const gate_results *gr) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddItemToObject(root, "a", run_json(c->db, c->a));
    cJSON_AddItemToObject(root, "b", run_json(c->db, c->b));
    cJSON_AddItemToObject(root, "changes", cJSON_Duplicate(c->changes, 1));
    cJSON_AddStringToObject(root, "correction", c->o->correction ? c->o->correction : "holm");
    cJSON_AddNumberToObject(root, "comparisons", (double)c->family);
    cJSON *evs = cJSON_AddArrayToObject(root, "evaluators");
    for (size_t i = 0; i < c->n_ev; i++) {
        const evaluator_cmp *e = &c->ev[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "evaluator", e->name);
        cJSON_AddBoolToObject(o, "definition_changed", e->is_changed);
        cJSON_AddNumberToObject(o, "only_in_a", (double)e->p.only_a);
        cJSON_AddNumberToObject(o, "only_in_b", (double)e->p.only_b);
        cJSON_AddNumberToObject(o, "errors_a", (double)e->p.errors_a);
        cJSON_AddNumberToObject(o, "errors_b", (double)e->p.errors_b);
        cJSON *rows = cJSON_AddArrayToObject(o, "rows");
        for (size_t k = 0; k < e->n_rows; k++) cJSON_AddItemToArray(rows, row_json(&e->rows[k]));
        cJSON_AddItemToObject(o, "regressed_most", worst_json(&e->p));
        cJSON_AddItemToArray(evs, o);
    }
    cJSON_AddNumberToObject(root, "regressions", (double)c->regressions);
    cJSON_AddItemToObject(root, "gates", gates_json(gr));
    return root;
}

static void print_json(const comparison *c, const gate_results *gr) {
    cJSON *root = comparison_json(c, gr);
    char *text = cJSON_Print(root);
    if (text) printf("%s\n", text);
    free(text);
    cJSON_Delete(root);
}

/* ---------------------------------------------------------------------------- main */

char *cli_group_path(const char *group_by) {
    if (!group_by) return NULL;
    const char *field = strncmp(group_by, "metadata.", 9) == 0 ? group_by + 9 : group_by;
    buf path;
    buf_init(&path);
    buf_puts(&path, "$.metadata.");
    buf_json_cstring(&path, field); /* a quoted key: any name works */
    return buf_steal(&path);
}

/* 0 when some trace of the runs has the field; else -1 with the fields they have. */
static int check_group_field(sqlite3 *db, int64_t a, int64_t b, const char *field, const char *path, char *err,
                             size_t errlen) {
    static const char digest[] = "CASE WHEN t.summary IS NOT NULL THEN t.summary WHEN json_valid(d.json) THEN d.json"
                                 " ELSE '{}' END";
    char sql[1024];
    snprintf(sql, sizeof sql, "SELECT EXISTS(SELECT 1 FROM traces t LEFT JOIN bodies d ON d.hash = t.body"
                              " WHERE t.run_id IN (?1, ?2) AND json_extract(%s, ?3) IS NOT NULL)", digest);
    sqlite3_stmt *st;
    int found = 1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) return 0; /* not checkable: compare as asked */
    sqlite3_bind_int64(st, 1, a), sqlite3_bind_int64(st, 2, b);
    sqlite3_bind_text(st, 3, path, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) found = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (found) return 0;
    snprintf(sql, sizeof sql, "SELECT DISTINCT k.key FROM (SELECT %s AS j FROM traces t LEFT JOIN bodies d ON"
                              " d.hash = t.body WHERE t.run_id IN (?1, ?2) LIMIT 1000) x,"
                              " json_each(json_extract(x.j, '$.metadata')) k ORDER BY 1 LIMIT 40", digest);
    buf fields;
    buf_init(&fields);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, a), sqlite3_bind_int64(st, 2, b);
        while (sqlite3_step(st) == SQLITE_ROW) {
            if (fields.len) buf_puts(&fields, ", ");
            buf_puts(&fields, text_or(st, 0, ""));
        }
        sqlite3_finalize(st);
    }
    snprintf(err, errlen, "--group-by %s: no trace of the two runs has metadata.%s; the metadata fields they have: %s",
             field, strncmp(field, "metadata.", 9) == 0 ? field + 9 : field, fields.len ? fields.data : "(none)");
    buf_free(&fields);
    return -1;
}

static void comparison_free(comparison *c) {
    for (size_t i = 0; i < c->n_ev; i++) {
        free(c->ev[i].name);
        pairs_free(&c->ev[i].p);
        free(c->ev[i].rows);
    }
    free(c->ev);
    cJSON_Delete(c->changes);
    free(c->group_path);
}

/* Pairs, rows and verdicts of every evaluator in both runs. */
static int compare_runs(comparison *c, char *err, size_t errlen) {
    if (gather_changes(c) != 0) {
        snprintf(err, errlen, "reading the run store: %s", sqlite3_errmsg(c->db));
        return -1;
    }
    for (size_t i = 0; i < c->n_ev; i++) {
        evaluator_cmp *e = &c->ev[i];
        if (load_pairs(c->db, c->a, c->b, e->name, c->group_path, &e->p, err, errlen) != 0) return -1;
        if (evaluator_rows(e, c->group_path != NULL) != 0) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }
    if (judge(c) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

/* Resolves A and B, compares them and checks the gates on B: the exit status of a failure
 * (usage or store), else 0. The caller frees c, *gates and gr whatever it returns. */
static int comparison_run(comparison *c, sqlite3 *db, const cli_options *o, const char *a, const char *b, gate **gates,
                          size_t *gate_count, gate_results *gr, char *err, size_t errlen) {
    memset(c, 0, sizeof *c);
    c->db = db, c->o = o, c->changes = cJSON_CreateArray();
    c->group_path = cli_group_path(o->group_by);
    if (store_resolve_run(db, a, &c->a, err, errlen) != 0 || store_resolve_run(db, b, &c->b, err, errlen) != 0 ||
        (c->group_path && check_group_field(db, c->a, c->b, o->group_by, c->group_path, err, errlen) != 0) ||
        cli_gates(o, gates, gate_count, c->group_path != NULL, err, errlen) != 0)
        return CLI_EXIT_USAGE;
    if (compare_runs(c, err, errlen) != 0 ||
        (*gate_count && compare_check_gates(db, c->b, *gates, *gate_count, c->group_path, gr, err, errlen) != 0))
        return CLI_EXIT_IO;
    return CLI_EXIT_OK;
}

cJSON *compare_json(sqlite3 *db, const cli_options *o, const char *a, const char *b, int *status, char *err,
                    size_t errlen) {
    comparison c;
    gate *gates = NULL;
    size_t gate_count = 0;
    gate_results gr = {0};
    *status = comparison_run(&c, db, o, a, b, &gates, &gate_count, &gr, err, errlen);
    cJSON *root = *status ? NULL : comparison_json(&c, &gr);
    gate_results_free(&gr);
    free(gates);
    comparison_free(&c);
    return root;
}

int cli_compare(cli_options *o, int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "assay: usage: assay compare A B [--group-by FIELD] [--gate G]... [--min-delta D] [--strict]\n"
                        "       [--correction holm|bh|none] [--fail-on-regression] [--json] [--db FILE]\n"
                        "  A, B: run ids, labels, `latest` or `previous` (see `assay runs`)\n");
        return CLI_EXIT_USAGE;
    }
    char err[1200];
    sqlite3 *db = store_open_reading(o->db);
    if (!db) return CLI_EXIT_USAGE;
    comparison c;
    gate *gates = NULL;
    size_t gate_count = 0;
    gate_results gr = {0};
    int status = comparison_run(&c, db, o, argv[0], argv[1], &gates, &gate_count, &gr, err, sizeof err);
    if (status) {
        fprintf(stderr, "assay: compare: %s\n", err);
    } else {
        if (o->is_json) print_json(&c, &gr);
        else print_text(&c, &gr);
        size_t failed = 0;
        for (size_t i = 0; i < gr.n; i++) failed += !gr.v[i].ok;
        if ((c.regressions && o->fail_on_regression) || failed) status = CLI_EXIT_FAILED;
        if (failed) fprintf(stderr, "assay: compare: %zu gate%s failed\n", failed, failed == 1 ? "" : "s");
    }
    gate_results_free(&gr);
    free(gates);
    comparison_free(&c);
    sqlite3_close(db);
    return status;
}
