/* cli_summary.c - the table on stderr at the end of a run (docs/format.md): per evaluator, and per
 * metadata group with --group-by, the record count, mean score, pass rate, errors and
 * p50/p95 evaluation time, then each evaluator's most frequent error messages. Memory is
 * fixed per (group, evaluator): times go into a log-scale histogram, not a list, and at most
 * SUMMARY_MESSAGES distinct messages are counted, so a run of millions of traces costs the
 * same. */
#include "cli.h"

#include <cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Histogram of evaluation times: bucket b covers [MIN * GROWTH^b, MIN * GROWTH^(b+1)) ms,
 * from 1 µs to ~100 s at 5% resolution, which is all a p95 needs. */
#define SUMMARY_MIN_MS 0.001
#define SUMMARY_GROWTH 1.05
#define SUMMARY_BUCKETS 380
#define SUMMARY_MAX_GROUPS 1000

typedef struct stats {
    uint64_t records, scored, passed, pass_applicable, errors, skipped;
    double score_sum;
    uint32_t time_buckets[SUMMARY_BUCKETS];
} stats;

typedef struct group {
    char *name; /* NULL: the whole run; "(none)" when the field is absent */
    stats *per_evaluator;
} group;

/* Distinct error messages of one evaluator, with how often each came. */
#define SUMMARY_MESSAGES 16
#define SUMMARY_MESSAGES_SHOWN 3
typedef struct message_count {
    char *message;
    uint64_t count;
    int first; /* the order it first came in: ties are shown in it */
} message_count;

typedef struct error_messages {
    message_count top[SUMMARY_MESSAGES];
    uint64_t other; /* errors whose message came after SUMMARY_MESSAGES distinct ones */
} error_messages;

struct summary {
    const assay_host *host;
    error_messages *messages; /* per evaluator */
    agreement *agreements;    /* per evaluator: its repeats' self-agreement */
    agreement *panels;        /* per evaluator: its panel's inter-judge agreement */
    size_t evaluator_count;
    bool is_grouped;
    group *groups;
    size_t group_count;
    uint64_t traces, input_errors;
    char *first_input_error;
};

summary *summary_new(const assay_host *host, bool is_grouped) {
    summary *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->host = host;
    s->evaluator_count = assay_host_plugin_count(host);
    s->is_grouped = is_grouped;
    s->groups = calloc(1, sizeof *s->groups);
    s->messages = calloc(s->evaluator_count + 1, sizeof *s->messages);
    s->agreements = calloc(s->evaluator_count + 1, sizeof *s->agreements);
    s->panels = calloc(s->evaluator_count + 1, sizeof *s->panels);
    if (!s->messages || !s->agreements || !s->panels || !s->groups || !(s->groups[0].per_evaluator = calloc(s->evaluator_count + 1, sizeof(stats)))) {
        summary_free(s);
        return NULL;
    }
    s->group_count = 1;
    return s;
}

void summary_free(summary *s) {
    if (!s) return;
    for (size_t i = 0; s->groups && i < s->group_count; i++) {
        free(s->groups[i].name);
        free(s->groups[i].per_evaluator);
    }
    free(s->groups);
    free(s->agreements);
    free(s->panels);
    for (size_t e = 0; s->messages && e < s->evaluator_count; e++)
        for (int i = 0; i < SUMMARY_MESSAGES; i++) free(s->messages[e].top[i].message);
    free(s->messages);
    free(s->first_input_error);
    free(s);
}

static stats *group_stats(summary *s, const char *name) {
    if (!name) name = "(none)";
    for (size_t i = 1; i < s->group_count; i++)
        if (strcmp(s->groups[i].name, name) == 0) return s->groups[i].per_evaluator;
    if (s->group_count > SUMMARY_MAX_GROUPS) name = "(other)";
    for (size_t i = 1; i < s->group_count; i++)
        if (strcmp(s->groups[i].name, name) == 0) return s->groups[i].per_evaluator;
    group *grown = realloc(s->groups, (s->group_count + 1) * sizeof *grown);
    if (!grown) return NULL;
    s->groups = grown;
    group *g = &s->groups[s->group_count];
    g->name = strdup(name);
    g->per_evaluator = calloc(s->evaluator_count + 1, sizeof(stats));
    if (!g->name || !g->per_evaluator) {
        free(g->name), free(g->per_evaluator);
        return NULL;
    }
    s->group_count++;
    return g->per_evaluator;
}

static void stats_add(stats *st, const assay_record *r) {
    st->records++;
    if (r->error != ASSAY_KIND_NONE) {
        st->errors++;
    } else {
        if (r->has_score) st->scored++, st->score_sum += r->score;
        if (r->pass >= 0) st->pass_applicable++, st->passed += (uint64_t)r->pass;
        if (!r->has_score && r->pass < 0) st->skipped++;
    }
    if (isnan(r->ms)) return; /* --no-timing: the record carries no time */
    double ms = r->ms > SUMMARY_MIN_MS ? r->ms : SUMMARY_MIN_MS;
    int b = (int)(log(ms / SUMMARY_MIN_MS) / log(SUMMARY_GROWTH));
    if (b >= SUMMARY_BUCKETS) b = SUMMARY_BUCKETS - 1;
    st->time_buckets[b]++;
}

static void count_message(error_messages *m, const char *message) {
    if (!message) message = "";
    for (int i = 0; i < SUMMARY_MESSAGES; i++) {
        if (!m->top[i].message) {
            if (!(m->top[i].message = strdup(message))) break;
            m->top[i].count = 1;
            m->top[i].first = i;
            return;
        }
        if (strcmp(m->top[i].message, message) == 0) {
            m->top[i].count++;
            return;
        }
    }
    m->other++;
}

static int compare_counts(const void *a, const void *b) {
    const message_count *x = a, *y = b;
    if (x->count != y->count) return (x->count < y->count) - (x->count > y->count);
    return (x->first > y->first) - (x->first < y->first);
}

/* The most frequent messages of each evaluator that had errors, so that a run full of them
 * says why without opening the records. */
static void print_messages(const summary *s, FILE *out) {
    for (size_t e = 0; e < s->evaluator_count; e++) {
        message_count sorted[SUMMARY_MESSAGES];
        int n = 0;
        for (; n < SUMMARY_MESSAGES && s->messages[e].top[n].message; n++) sorted[n] = s->messages[e].top[n];
        if (n == 0) continue;
        qsort(sorted, (size_t)n, sizeof *sorted, compare_counts);
        assay_plugin_info info;
        assay_host_plugin_info(s->host, e, &info, sizeof info);
        fprintf(out, "errors of %s:\n", info.name);
        for (int i = 0; i < n && i < SUMMARY_MESSAGES_SHOWN; i++) {
            buf line;
            buf_init(&line);
            size_t len = strcspn(sorted[i].message, "\n");
            buf_put_printable(&line, sorted[i].message, len > 300 ? 300 : len);
            fprintf(out, "  %8llu  %s%s\n", (unsigned long long)sorted[i].count, buf_failed(&line) ? "?" : buf_cstr(&line),
                    len > 300 ? "…" : "");
            buf_free(&line);
            const char *hint = cli_hint(sorted[i].message);
            if (hint) fprintf(out, "  %8s  (%s)\n", "", hint);
        }
        uint64_t rest = s->messages[e].other;
        for (int i = SUMMARY_MESSAGES_SHOWN; i < n; i++) rest += sorted[i].count;
        if (rest) fprintf(out, "  %8llu  (other messages)\n", (unsigned long long)rest);
    }
}

/* Whether the details may hold "repeats":{ or "panel":{, a cheap look before parsing (a
 * false positive costs only the parse). It looks at each '{', rare past the first, rather
 * than at each quote: at every record of a batch run, the look per quote was a third of
 * the main thread's work. */
static bool may_hold_agreements(const char *text, size_t len) {
    static const char repeats[] = "\"repeats\":", panel[] = "\"panel\":";
    const size_t nr = sizeof repeats - 1, np = sizeof panel - 1;
    for (const char *p = text, *end = text + len; (p = memchr(p, '{', (size_t)(end - p))) != NULL; p++) {
        size_t before = (size_t)(p - text);
        if ((before >= nr && memcmp(p - nr, repeats, nr) == 0) || (before >= np && memcmp(p - np, panel, np) == 0))
            return true;
    }
    return false;
}

/* A record's details.repeats and details.panel into its evaluator's agreements; the
 * details are parsed only when they hold one (a repeated evaluator's, a panel's). */
static void add_agreements(agreement *repeats, agreement *panel, const assay_result *result, size_t i) {
    size_t len;
    const char *details = assay_result_record_details(result, i, &len);
    if (!details || !may_hold_agreements(details, len)) return;
    cJSON *d = cJSON_ParseWithLength(details, len);
    agreement_add(repeats, cJSON_GetObjectItemCaseSensitive(d, "repeats"));
    agreement_add(panel, cJSON_GetObjectItemCaseSensitive(d, "panel"));
    cJSON_Delete(d);
}

void summary_add(summary *s, const assay_result *result) {
    s->traces++;
    stats *grouped = s->is_grouped ? group_stats(s, assay_result_group(result)) : NULL;
    size_t n = assay_result_record_count(result);
    for (size_t i = 0; i < n; i++) {
        assay_record r;
        if (assay_result_record(result, i, &r, sizeof r) != ASSAY_OK) continue;
        if (r.error == ASSAY_KIND_INPUT) {
            s->input_errors++;
            s->traces--;
            if (!s->first_input_error && r.error_message) s->first_input_error = strdup(r.error_message);
            continue;
        }
        if (r.evaluator_index >= s->evaluator_count) continue;
        if (r.error != ASSAY_KIND_NONE) count_message(&s->messages[r.evaluator_index], r.error_message);
        else add_agreements(&s->agreements[r.evaluator_index], &s->panels[r.evaluator_index], result, i);
        stats_add(&s->groups[0].per_evaluator[r.evaluator_index], &r);
        if (grouped) stats_add(&grouped[r.evaluator_index], &r);
    }
}

bool summary_has_errors(const summary *s) {
    if (s->input_errors) return true;
    for (size_t e = 0; e < s->evaluator_count; e++)
        if (s->groups[0].per_evaluator[e].errors) return true;
    return false;
}

uint64_t summary_traces(const summary *s) { return s->traces; }

uint64_t summary_errors(const summary *s) {
    uint64_t n = s->input_errors;
    for (size_t e = 0; e < s->evaluator_count; e++) n += s->groups[0].per_evaluator[e].errors;
    return n;
}

static double percentile_ms(const stats *st, double q) {
    uint64_t total = 0;
    for (int b = 0; b < SUMMARY_BUCKETS; b++) total += st->time_buckets[b];
    if (!total) return 0;
    uint64_t rank = (uint64_t)ceil(q * (double)total), seen = 0;
    for (int b = 0; b < SUMMARY_BUCKETS; b++) {
        seen += st->time_buckets[b];
        if (seen >= rank && seen) return SUMMARY_MIN_MS * pow(SUMMARY_GROWTH, b + 0.5);
    }
    return 0;
}

static void print_table(const summary *s, const stats *per_evaluator, FILE *out) {
    fprintf(out, "  %-22s %8s %7s %7s %7s %8s %9s %9s\n", "evaluator", "records", "mean", "pass", "errors", "skipped",
            "p50 ms", "p95 ms");
    for (size_t e = 0; e < s->evaluator_count; e++) {
        const stats *st = &per_evaluator[e];
        assay_plugin_info info;
        assay_host_plugin_info(s->host, e, &info, sizeof info);
        char mean[16] = "-", pass[16] = "-";
        if (st->scored) snprintf(mean, sizeof mean, "%.3f", st->score_sum / (double)st->scored);
        if (st->pass_applicable) snprintf(pass, sizeof pass, "%.1f%%", 100.0 * (double)st->passed / (double)st->pass_applicable);
        char p50[16] = "-", p95[16] = "-";
        uint64_t timed = 0;
        for (int b = 0; b < SUMMARY_BUCKETS; b++) timed += st->time_buckets[b];
        if (timed) {
            snprintf(p50, sizeof p50, "%.3f", percentile_ms(st, 0.5));
            snprintf(p95, sizeof p95, "%.3f", percentile_ms(st, 0.95));
        }
        fprintf(out, "  %-22s %8llu %7s %7s %7llu %8llu %9s %9s\n", info.name, (unsigned long long)st->records, mean,
                pass, (unsigned long long)st->errors, (unsigned long long)st->skipped, p50, p95);
    }
}

/* "NAME over its repeats: …" or "NAME across its panel: …" (docs/metrics.md). */
static void print_agreement(FILE *out, const char *name, const char *over, const agreement *a) {
    if (!a->units && !a->pass_units) return;
    double alpha = agreement_alpha(a);
    fprintf(out, "%s %s: Krippendorff's alpha ", name, over);
    if (isnan(alpha)) fprintf(out, "- (%llu traces)", (unsigned long long)a->units);
    else fprintf(out, "%.3f over %llu traces", alpha, (unsigned long long)a->units);
    if (a->pass_units)
        fprintf(out, "; pass %s on %llu of %llu", strcmp(over, "over its repeats") == 0 ? "flipped" : "split",
                (unsigned long long)a->flips, (unsigned long long)a->pass_units);
    fputc('\n', out);
}

static void print_agreements(const summary *s, FILE *out) {
    for (size_t e = 0; e < s->evaluator_count; e++) {
        assay_plugin_info info;
        assay_host_plugin_info(s->host, e, &info, sizeof info);
        print_agreement(out, info.name, "over its repeats", &s->agreements[e]);
        print_agreement(out, info.name, "across its panel", &s->panels[e]);
    }
}

static int compare_groups(const void *a, const void *b) {
    return strcmp(((const group *)a)->name, ((const group *)b)->name);
}

void summary_print(const summary *s, FILE *out, double seconds) {
    fprintf(out, "assay: %llu traces", (unsigned long long)s->traces);
    if (s->input_errors) fprintf(out, ", %llu input errors", (unsigned long long)s->input_errors);
    fprintf(out, " in %.2f s (%.0f traces/s)\n", seconds, seconds > 0 ? (double)s->traces / seconds : 0.0);
    print_table(s, s->groups[0].per_evaluator, out);
    if (s->is_grouped && s->group_count > 1) {
        group *sorted = malloc((s->group_count - 1) * sizeof *sorted);
        if (sorted) {
            memcpy(sorted, s->groups + 1, (s->group_count - 1) * sizeof *sorted);
            qsort(sorted, s->group_count - 1, sizeof *sorted, compare_groups);
            for (size_t g = 0; g < s->group_count - 1; g++) {
                buf name;
                buf_init(&name);
                buf_put_printable(&name, sorted[g].name, strlen(sorted[g].name));
                fprintf(out, "\ngroup %s:\n", buf_failed(&name) ? "?" : buf_cstr(&name));
                buf_free(&name);
                print_table(s, sorted[g].per_evaluator, out);
            }
            free(sorted);
        }
    }
    print_agreements(s, out);
    print_messages(s, out);
    if (s->first_input_error) fprintf(out, "first input error: %s\n", s->first_input_error);
}

static int compare_cells(const void *x, const void *y) {
    const gate_cell *a = x, *b = y;
    if (!a->segment != !b->segment) return a->segment ? 1 : -1;
    int d = a->segment ? strcmp(a->segment, b->segment) : 0;
    return d ? d : strcmp(a->evaluator, b->evaluator);
}

gate_cell *summary_cells(const summary *s, size_t *n) {
    *n = 0;
    gate_cell *cells = calloc(s->group_count * s->evaluator_count + 1, sizeof *cells);
    for (size_t g = 0; cells && g < s->group_count; g++) {
        for (size_t e = 0; e < s->evaluator_count; e++) {
            const stats *st = &s->groups[g].per_evaluator[e];
            assay_plugin_info info;
            if (assay_host_plugin_info(s->host, e, &info, sizeof info) != ASSAY_OK || (g && !st->records)) continue;
            gate_cell *c = &cells[(*n)++];
            c->evaluator = info.name;
            c->segment = g ? s->groups[g].name : NULL;
            c->records = st->records, c->scored = st->scored, c->score_sum = st->score_sum;
            c->passed = st->passed, c->pass_n = st->pass_applicable, c->errors = st->errors;
        }
    }
    if (cells) qsort(cells, *n, sizeof *cells, compare_cells); /* segments in the order the store gives them */
    return cells;
}
