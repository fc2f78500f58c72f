/* cli_calibrate.c - `assay calibrate RUN --label FIELD`: how well each evaluator of a stored
 * run predicts a binary outcome, so that a team learns which of its evaluators track quality.
 *
 * The outcome of a trace is FIELD: metadata.NAME (from the store's digest of every trace),
 * feedback.vote (the sign of the shipped feedback evaluator's vote mean) or EVALUATOR.pass
 * (another evaluator's verdict, a judge's say). Per evaluator (and per segment with
 * --group-by): AUC (Mann-Whitney, ties counted 1/2) with a stratified bootstrap 95% interval,
 * Spearman's rho between score and outcome, precision/recall/F1 and Cohen's kappa of the
 * evaluator's own pass, and the threshold that maximises Youden's J. The definitions are in
 * docs/metrics.md.
 */
#include "cli.h"
#include "../base/hash.h"

#include <cjson/cJSON.h>

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Bootstrap replicates: fewer on very large runs, so that one evaluator costs about 2e8
 * steps at most. */
#define CALIBRATE_BOOTSTRAP 1000
#define CALIBRATE_BOOTSTRAP_WORK 200000000.0

typedef struct item {
    double score;
    int label;   /* 1 positive, 0 negative */
    int pass;    /* -1 no verdict, 0, 1 */
} item;

typedef struct group_items {
    char *evaluator, *segment;
    item *items;
    size_t count, cap;
} group_items;

typedef struct stats {
    size_t n_pos, n_neg;
    double auc, auc_lo, auc_hi, spearman;
    double precision, recall, f1; /* of pass; NaN without verdicts */
    double kappa;                  /* Cohen's kappa of pass against the label; NaN without verdicts */
    double best_threshold, best_precision, best_recall;
} stats;

static int compare_items(const void *a, const void *b) {
    double x = ((const item *)a)->score, y = ((const item *)b)->score;
    return (x > y) - (x < y);
}

/* AUC of items sorted by score, each weighted (NULL: weight 1): the probability that a
 * positive outranks a negative, ties 1/2. NaN when a class is empty. */
static double weighted_auc(const item *items, size_t n, const unsigned *weight) {
    double neg_below = 0, pos_total = 0, neg_total = 0, sum = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        double pos = 0, neg = 0;
        for (; j < n && items[j].score == items[i].score; j++) {
            double w = weight ? weight[j] : 1;
            if (items[j].label) pos += w;
            else neg += w;
        }
        sum += pos * (neg_below + 0.5 * neg);
        neg_below += neg, pos_total += pos, neg_total += neg;
        i = j;
    }
    return pos_total > 0 && neg_total > 0 ? sum / (pos_total * neg_total) : NAN;
}

/* The 2.5th and 97.5th percentiles of the AUC over bootstrap samples drawn within each
 * class (so that both keep their size). */
static void bootstrap_interval(const item *items, size_t n, stats *s) {
    size_t *pos = malloc(s->n_pos * sizeof *pos), *neg = malloc(s->n_neg * sizeof *neg);
    unsigned *weight = calloc(n, sizeof *weight);
    size_t reps = CALIBRATE_BOOTSTRAP;
    if ((double)reps * (double)n > CALIBRATE_BOOTSTRAP_WORK) reps = (size_t)fmax(100, CALIBRATE_BOOTSTRAP_WORK / (double)n);
    double *aucs = malloc(reps * sizeof *aucs);
    s->auc_lo = s->auc_hi = NAN;
    if (pos && neg && weight && aucs) {
        size_t p = 0, q = 0;
        for (size_t i = 0; i < n; i++) {
            if (items[i].label) pos[p++] = i;
            else neg[q++] = i;
        }
        uint64_t state = 1;
        for (size_t r = 0; r < reps; r++) {
            memset(weight, 0, n * sizeof *weight);
            for (size_t k = 0; k < s->n_pos; k++) weight[pos[hash_splitmix64(&state) % s->n_pos]]++;
            for (size_t k = 0; k < s->n_neg; k++) weight[neg[hash_splitmix64(&state) % s->n_neg]]++;
            aucs[r] = weighted_auc(items, n, weight);
        }
        qsort(aucs, reps, sizeof *aucs, cli_compare_doubles);
        s->auc_lo = aucs[(size_t)floor(0.025 * (double)(reps - 1))];
        s->auc_hi = aucs[(size_t)ceil(0.975 * (double)(reps - 1))];
    }
    free(pos), free(neg), free(weight), free(aucs);
}

/* Spearman's rho of score and label: Pearson's r of their average ranks. */
static double spearman(const item *items, size_t n, const stats *s) {
    double pos_rank = (double)s->n_neg + ((double)s->n_pos + 1) / 2, neg_rank = ((double)s->n_neg + 1) / 2;
    double mean = ((double)n + 1) / 2, sxy = 0, sxx = 0, syy = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && items[j].score == items[i].score) j++;
        double rank = ((double)i + 1 + (double)j) / 2; /* the average of ranks i+1 .. j */
        for (size_t k = i; k < j; k++) {
            double dx = rank - mean, dy = (items[k].label ? pos_rank : neg_rank) - mean;
            sxy += dx * dy, sxx += dx * dx, syy += dy * dy;
        }
        i = j;
    }
    return sxx > 0 && syy > 0 ? sxy / sqrt(sxx * syy) : NAN;
}

/* The threshold t maximising Youden's J = TPR - FPR for "score >= t" (the highest t among
 * equals), with precision and recall there; and precision/recall/F1 of pass. */
static void thresholds(const item *items, size_t n, stats *s) {
    double best = -INFINITY, tp = 0, fp = 0;
    for (size_t j = n; j > 0;) {
        size_t i = j;
        while (i > 0 && items[i - 1].score == items[j - 1].score) i--;
        for (size_t k = i; k < j; k++) tp += items[k].label, fp += !items[k].label;
        double youden = tp / (double)s->n_pos - fp / (double)s->n_neg;
        if (youden > best + 1e-12) { /* ties (in floating point too) keep the higher threshold */
            best = youden;
            s->best_threshold = items[j - 1].score;
            s->best_precision = tp / (tp + fp);
            s->best_recall = tp / (double)s->n_pos;
        }
        j = i;
    }
    double ptp = 0, pfp = 0, pfn = 0, ptn = 0;
    size_t verdicts = 0;
    for (size_t i = 0; i < n; i++) {
        if (items[i].pass < 0) continue;
        verdicts++;
        ptp += items[i].pass && items[i].label, pfp += items[i].pass && !items[i].label;
        pfn += !items[i].pass && items[i].label, ptn += !items[i].pass && !items[i].label;
    }
    s->precision = verdicts && ptp + pfp > 0 ? ptp / (ptp + pfp) : NAN;
    s->recall = verdicts && ptp + pfn > 0 ? ptp / (ptp + pfn) : NAN;
    s->f1 = s->precision + s->recall > 0 ? 2 * s->precision * s->recall / (s->precision + s->recall) : NAN;
    /* agreement beyond chance: observed against what the two marginals give by chance */
    double total = (double)verdicts, observed = (ptp + ptn) / total;
    double chance = ((ptp + pfp) * (ptp + pfn) + (pfn + ptn) * (pfp + ptn)) / (total * total);
    s->kappa = verdicts && chance < 1 ? (observed - chance) / (1 - chance) : NAN;
}

static stats compute(item *items, size_t n) {
    stats s;
    memset(&s, 0, sizeof s);
    for (size_t i = 0; i < n; i++) s.n_pos += items[i].label, s.n_neg += !items[i].label;
    s.auc = s.auc_lo = s.auc_hi = s.spearman = s.precision = s.recall = s.f1 = s.kappa = NAN;
    s.best_threshold = s.best_precision = s.best_recall = NAN;
    if (!s.n_pos || !s.n_neg) return s;
    qsort(items, n, sizeof *items, compare_items);
    s.auc = weighted_auc(items, n, NULL);
    bootstrap_interval(items, n, &s);
    s.spearman = spearman(items, n, &s);
    thresholds(items, n, &s);
    return s;
}

/* ------------------------------------------------------------------ reading the run */

/* A stored value as an outcome: 1, 0, or -1 when it says neither. Numbers are positive
 * above 0 (a vote mean of 0 says neither); words as written in docs/metrics.md. */
static int outcome_of(sqlite3_stmt *st, int col, bool zero_is_neither) {
    switch (sqlite3_column_type(st, col)) {
    case SQLITE_INTEGER:
    case SQLITE_FLOAT: {
        double v = sqlite3_column_double(st, col);
        return v > 0 ? 1 : v < 0 || !zero_is_neither ? 0 : -1;
    }
    case SQLITE_TEXT: {
        static const char *const yes[] = {"true", "yes", "pass", "passed", "correct", "right", "good", "positive", "1"};
        static const char *const no[] = {"false", "no", "fail", "failed", "incorrect", "wrong", "bad", "negative", "0"};
        const char *t = (const char *)sqlite3_column_text(st, col);
        for (size_t i = 0; i < sizeof yes / sizeof *yes; i++)
            if (strcasecmp(t, yes[i]) == 0) return 1;
        for (size_t i = 0; i < sizeof no / sizeof *no; i++)
            if (strcasecmp(t, no[i]) == 0) return 0;
        return -1;
    }
    default: return -1;
    }
}

/* The SQL of each trace's outcome (file, line, label), for the label FIELD. */
static int label_sql(const char *field, buf *sql, char *label_evaluator, size_t size, bool *zero_is_neither) {
    *zero_is_neither = false;
    label_evaluator[0] = '\0';
    if (strncmp(field, "metadata.", 9) == 0 && field[9]) {
        char *path = cli_group_path(field);
        if (!path) return -1;
        buf_puts(sql, "SELECT file, line, json_extract(summary, '");
        for (const char *p = path; *p; p++) buf_printf(sql, *p == '\'' ? "''" : "%c", *p);
        buf_puts(sql, "') FROM traces WHERE run_id = ?1");
        free(path);
        return 0;
    }
    if (strcmp(field, "feedback.vote") == 0) {
        *zero_is_neither = true;
        buf_puts(sql, "SELECT file, line, json_extract(details, '$.vote_mean') FROM results"
                      " WHERE run_id = ?1 AND evaluator = 'feedback' AND step IS NULL");
        return 0;
    }
    size_t n = strlen(field);
    if (n > 5 && strcmp(field + n - 5, ".pass") == 0 && n - 5 < size) {
        memcpy(label_evaluator, field, n - 5);
        label_evaluator[n - 5] = '\0';
        buf_puts(sql, "SELECT file, line, MIN(pass) FROM results WHERE run_id = ?1 AND evaluator = ?2"
                      " AND pass IS NOT NULL GROUP BY file, line");
        return 0;
    }
    return -1;
}

/* The index of the group of evaluator and segment (NULL: all traces), made if new; SIZE_MAX
 * when out of memory. An index, not a pointer: making a group moves the others. */
static size_t find_group(group_items **groups, size_t *count, const char *evaluator, const char *segment) {
    for (size_t i = 0; i < *count; i++)
        if (strcmp((*groups)[i].evaluator, evaluator) == 0 &&
            ((!segment && !(*groups)[i].segment) || (segment && (*groups)[i].segment && strcmp((*groups)[i].segment, segment) == 0)))
            return i;
    group_items *grown = realloc(*groups, (*count + 1) * sizeof *grown);
    if (!grown) return SIZE_MAX;
    *groups = grown;
    group_items *g = &grown[*count];
    memset(g, 0, sizeof *g);
    g->evaluator = strdup(evaluator);
    g->segment = segment ? strdup(segment) : NULL;
    if (!g->evaluator || (segment && !g->segment)) {
        free(g->evaluator), free(g->segment);
        return SIZE_MAX;
    }
    return (*count)++;
}

static bool add_item(group_items *g, item it) {
    if (g->count == g->cap) {
        size_t cap = g->cap ? 2 * g->cap : 64;
        item *grown = realloc(g->items, cap * sizeof *grown);
        if (!grown) return false;
        g->items = grown, g->cap = cap;
    }
    g->items[g->count++] = it;
    return true;
}

/* Reads every evaluator's per-trace score (the mean of a step-scoped evaluator's step
 * scores), its pass (all steps passed) and the trace's outcome, overall and per segment. */
static int read_items(sqlite3 *db, int64_t run, const char *field, const char *group_by, group_items **groups,
                      size_t *count, char *err, size_t errlen) {
    buf sql;
    buf_init(&sql);
    char label_evaluator[256];
    bool zero_is_neither;
    buf label;
    buf_init(&label);
    if (label_sql(field, &label, label_evaluator, sizeof label_evaluator, &zero_is_neither) != 0) {
        snprintf(err, errlen, "--label %s: use metadata.NAME, feedback.vote or EVALUATOR.pass", field);
        buf_free(&label);
        buf_free(&sql);
        return -1;
    }
    char *seg_path = cli_group_path(group_by);
    buf_printf(&sql,
               "WITH lab(file, line, label) AS (%s) SELECT x.evaluator, AVG(x.score), MIN(x.pass), COUNT(x.pass), "
               "lab.label, CAST(json_extract(t.summary, ?3) AS TEXT) FROM results x JOIN lab ON lab.file = x.file AND "
               "lab.line = x.line LEFT JOIN traces t ON t.run_id = x.run_id AND t.file = x.file AND t.line = x.line "
               "WHERE x.run_id = ?1 AND x.evaluator IS NOT NULL AND x.error_kind IS NULL AND x.evaluator <> ?2 "
               "GROUP BY x.evaluator, x.file, x.line ORDER BY x.evaluator",
               buf_cstr(&label));
    buf_free(&label);
    sqlite3_stmt *st = NULL;
    int rc = buf_failed(&sql) ? SQLITE_NOMEM : sqlite3_prepare_v2(db, buf_cstr(&sql), -1, &st, NULL);
    buf_free(&sql);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "the store: %s", sqlite3_errmsg(db));
        free(seg_path);
        return -1;
    }
    sqlite3_bind_int64(st, 1, run);
    sqlite3_bind_text(st, 2, label_evaluator, -1, SQLITE_TRANSIENT);
    if (seg_path) sqlite3_bind_text(st, 3, seg_path, -1, SQLITE_TRANSIENT);
    else sqlite3_bind_null(st, 3);
    free(seg_path);
    bool ok = true;
    while (ok && sqlite3_step(st) == SQLITE_ROW) {
        /* columns: evaluator, mean score, min pass, pass count, label, segment */
        if (sqlite3_column_type(st, 1) == SQLITE_NULL) continue; /* no score */
        /* every evaluator with scores is listed, with no outcome at all too */
        const char *evaluator = (const char *)sqlite3_column_text(st, 0);
        const char *seg = (const char *)sqlite3_column_text(st, 5);
        size_t all = find_group(groups, count, evaluator, NULL);
        size_t part = group_by ? find_group(groups, count, evaluator, seg ? seg : "(none)") : 0;
        if (all == SIZE_MAX || part == SIZE_MAX) {
            ok = false;
            break;
        }
        int label_value = outcome_of(st, 4, zero_is_neither);
        if (label_value < 0) continue;
        item it = {sqlite3_column_double(st, 1), label_value,
                   sqlite3_column_int(st, 3) ? sqlite3_column_int(st, 2) != 0 : -1};
        ok = add_item(&(*groups)[all], it) && (!group_by || add_item(&(*groups)[part], it));
    }
    sqlite3_finalize(st);
    if (!ok) snprintf(err, errlen, "out of memory");
    return ok ? 0 : -1;
}

/* ------------------------------------------------------------------------ output */

static cJSON *number_or_null(double v) { return isnan(v) ? cJSON_CreateNull() : cJSON_CreateNumber(v); }

static cJSON *stats_json(const group_items *g, const stats *s) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "evaluator", g->evaluator);
    if (g->segment) cJSON_AddStringToObject(o, "segment", g->segment);
    cJSON_AddNumberToObject(o, "n_pos", (double)s->n_pos);
    cJSON_AddNumberToObject(o, "n_neg", (double)s->n_neg);
    cJSON_AddItemToObject(o, "auc", number_or_null(s->auc));
    cJSON *ci = cJSON_AddArrayToObject(o, "auc_ci");
    cJSON_AddItemToArray(ci, number_or_null(s->auc_lo));
    cJSON_AddItemToArray(ci, number_or_null(s->auc_hi));
    cJSON_AddItemToObject(o, "spearman", number_or_null(s->spearman));
    cJSON_AddItemToObject(o, "precision", number_or_null(s->precision));
    cJSON_AddItemToObject(o, "recall", number_or_null(s->recall));
    cJSON_AddItemToObject(o, "f1", number_or_null(s->f1));
    cJSON_AddItemToObject(o, "kappa", number_or_null(s->kappa));
    cJSON_AddItemToObject(o, "best_threshold", number_or_null(s->best_threshold));
    cJSON_AddItemToObject(o, "best_precision", number_or_null(s->best_precision));
    cJSON_AddItemToObject(o, "best_recall", number_or_null(s->best_recall));
    cJSON_AddBoolToObject(o, "inverted", s->auc_hi < 0.5);
    return o;
}

/* A number in width columns with digits decimals ("-" for none). */
/* A number of a JSON row in width columns with digits decimals ("-" for null). */
static void print_value(const cJSON *row, const char *key, int width, int digits) {
    const cJSON *v = cJSON_GetObjectItem(row, key);
    if (!cJSON_IsNumber(v)) printf(" %*s", width, "-");
    else printf(" %*.*f", width, digits, v->valuedouble);
}

static void print_row(const cJSON *e) {
    const cJSON *segment = cJSON_GetObjectItem(e, "segment");
    char name[40];
    snprintf(name, sizeof name, "%s%s", segment ? "  " : "", segment ? segment->valuestring : cJSON_GetObjectItem(e, "evaluator")->valuestring);
    int n_pos = cJSON_GetObjectItem(e, "n_pos")->valueint, n_neg = cJSON_GetObjectItem(e, "n_neg")->valueint;
    printf("  %-22.22s %6d %6d", name, n_pos, n_neg);
    print_value(e, "auc", 6, 3);
    const cJSON *ci = cJSON_GetObjectItem(e, "auc_ci");
    if (!cJSON_IsNumber(ci->child)) printf("  %-15s", n_pos && n_neg ? "" : "(one class)");
    else printf("  [%.3f, %.3f]", ci->child->valuedouble, ci->child->next->valuedouble);
    print_value(e, "spearman", 6, 3);
    print_value(e, "f1", 5, 2);
    print_value(e, "kappa", 6, 2);
    print_value(e, "best_threshold", 7, 3);
    printf("%s\n", cJSON_IsTrue(cJSON_GetObjectItem(e, "inverted")) ? "  inverted" : "");
}

static void free_groups(group_items *groups, size_t count) {
    for (size_t i = 0; i < count; i++) free(groups[i].evaluator), free(groups[i].segment), free(groups[i].items);
    free(groups);
}

void agreement_add(agreement *a, const cJSON *repeats) {
    const cJSON *scores = cJSON_GetObjectItemCaseSensitive(repeats, "scores");
    const cJSON *passes = cJSON_GetObjectItemCaseSensitive(repeats, "passes");
    double m = 0, sum = 0, sum_sq = 0;
    for (const cJSON *v = cJSON_IsArray(scores) ? scores->child : NULL; v; v = v->next)
        if (cJSON_IsNumber(v)) m++, sum += v->valuedouble, sum_sq += v->valuedouble * v->valuedouble;
    if (m >= 2) { /* sum over ordered pairs i != j of (v_i - v_j)^2 = 2 m sum_sq - 2 sum^2 */
        a->units++;
        a->n += m, a->sum += sum, a->sum_sq += sum_sq;
        a->within += (2 * m * sum_sq - 2 * sum * sum) / (m - 1);
    }
    int judged = 0, passed = 0;
    for (const cJSON *v = cJSON_IsArray(passes) ? passes->child : NULL; v; v = v->next)
        if (cJSON_IsBool(v)) judged++, passed += cJSON_IsTrue(v);
    if (judged >= 2) a->pass_units++, a->flips += passed != 0 && passed != judged;
}

double agreement_alpha(const agreement *a) {
    if (a->units < 2) return NAN;
    double observed = a->within / a->n;
    double expected = (2 * a->n * a->sum_sq - 2 * a->sum * a->sum) / (a->n * (a->n - 1));
    return expected > 1e-12 ? 1 - observed / expected : NAN;
}

/* Each evaluator's agreement over its records' details.repeats (path "$.repeats": with
 * itself) or details.panel ("$.panel": among its judges). */
static cJSON *agreement_json(sqlite3 *db, int64_t run, const char *path) {
    cJSON *list = cJSON_CreateArray();
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT evaluator, json_extract(details, ?2) FROM results WHERE run_id = ?1"
                               " AND evaluator IS NOT NULL AND json_extract(details, ?2) IS NOT NULL"
                               " ORDER BY evaluator", -1, &st, NULL) != SQLITE_OK)
        return list;
    sqlite3_bind_int64(st, 1, run);
    sqlite3_bind_text(st, 2, path, -1, SQLITE_STATIC);
    agreement a = {0};
    char *name = NULL;
    for (int rc = sqlite3_step(st);; rc = sqlite3_step(st)) {
        const char *e = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
        if (name && (!e || strcmp(e, name) != 0)) { /* the previous evaluator is complete */
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "evaluator", name);
            cJSON_AddNumberToObject(o, "units", (double)a.units);
            cJSON_AddItemToObject(o, "alpha", number_or_null(agreement_alpha(&a)));
            cJSON_AddItemToObject(o, "flip_rate",
                                  number_or_null(a.pass_units ? (double)a.flips / (double)a.pass_units : NAN));
            cJSON_AddItemToArray(list, o);
            free(name);
            name = NULL;
            memset(&a, 0, sizeof a);
        }
        if (!e) break;
        if (!name) name = strdup(e);
        const char *text = (const char *)sqlite3_column_text(st, 1);
        cJSON *repeats = text ? cJSON_Parse(text) : NULL;
        agreement_add(&a, repeats);
        cJSON_Delete(repeats);
    }
    free(name);
    sqlite3_finalize(st);
    return list;
}

cJSON *calibration_json(sqlite3 *db, int64_t run, const char *field, const char *group_by, char *err, size_t errlen) {
    group_items *groups = NULL;
    size_t count = 0;
    if (read_items(db, run, field, group_by, &groups, &count, err, errlen) != 0) {
        free_groups(groups, count);
        return NULL;
    }
    cJSON *json = cJSON_CreateObject();
    cJSON_AddStringToObject(json, "label", field);
    cJSON_AddNumberToObject(json, "run", (double)run);
    cJSON *list = cJSON_AddArrayToObject(json, "evaluators");
    for (size_t i = 0; i < count; i++) {
        stats s = compute(groups[i].items, groups[i].count);
        cJSON_AddItemToArray(list, stats_json(&groups[i], &s));
    }
    free_groups(groups, count);
    cJSON_AddItemToObject(json, "self_agreement", agreement_json(db, run, "$.repeats"));
    cJSON_AddItemToObject(json, "panel_agreement", agreement_json(db, run, "$.panel"));
    return json;
}

/* "EVALUATOR over its repeats (N traces): Krippendorff's alpha …, pass flipped on …% of
 * traces" (or "across its panel", "split"). */
static void agreement_print(const cJSON *e, bool is_panel) {
    const cJSON *alpha = cJSON_GetObjectItem(e, "alpha"), *flips = cJSON_GetObjectItem(e, "flip_rate");
    printf("%s %s (%d traces): Krippendorff's alpha ", cJSON_GetObjectItem(e, "evaluator")->valuestring,
           is_panel ? "across its panel" : "over its repeats", cJSON_GetObjectItem(e, "units")->valueint);
    if (cJSON_IsNumber(alpha)) printf("%.3f", alpha->valuedouble);
    else printf("-");
    if (cJSON_IsNumber(flips)) printf(", pass %s on %.1f%% of traces", is_panel ? "split" : "flipped", 100 * flips->valuedouble);
    printf("\n");
}

/* The table of a calibration (calibration_json's). */
static void print_table(const cJSON *json) {
    printf("calibration of run %lld against %s (AUC: how often a positive trace scores above a negative one)\n"
           "  %-22s %6s %6s %7s  %-15s %7s %6s %6s %8s\n",
           (long long)cJSON_GetObjectItem(json, "run")->valuedouble, cJSON_GetObjectItem(json, "label")->valuestring,
           "evaluator", "n+", "n-", "AUC", "95% CI", "rho", "F1", "kappa", "best t");
    const cJSON *list = cJSON_GetObjectItem(json, "evaluators"), *e;
    if (!list->child) printf("  (no trace has both a score and an outcome)\n");
    cJSON_ArrayForEach(e, list) print_row(e);
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(json, "self_agreement")) agreement_print(e, false);
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(json, "panel_agreement")) agreement_print(e, true);
}

int cli_calibrate(cli_options *o, int argc, char **argv) {
    if (argc > 1 || !o->label) {
        fprintf(stderr, "assay: usage: assay calibrate [RUN] --label FIELD [--group-by FIELD] [--json] [--db FILE]\n"
                        "  FIELD: metadata.NAME, feedback.vote or EVALUATOR.pass\n");
        return CLI_EXIT_USAGE;
    }
    sqlite3 *db = store_open_reading(o->db);
    if (!db) return CLI_EXIT_USAGE;
    char err[600];
    int64_t run;
    cJSON *json = NULL;
    if (store_resolve_run(db, argc ? argv[0] : "latest", &run, err, sizeof err) != 0 ||
        !(json = calibration_json(db, run, o->label, o->group_by, err, sizeof err))) {
        fprintf(stderr, "assay: calibrate: %s\n", err);
        sqlite3_close(db);
        return CLI_EXIT_USAGE;
    }
    sqlite3_close(db);
    if (o->is_json) {
        char *text = cJSON_Print(json);
        if (text) puts(text);
        free(text);
    } else {
        print_table(json);
    }
    cJSON_Delete(json);
    return CLI_EXIT_OK;
}
