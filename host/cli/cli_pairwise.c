/* cli_pairwise.c - `assay pairwise A.jsonl B.jsonl [C.jsonl ...] -e JUDGE`: which system
 * answers better, judged answer against answer rather than each on its own.
 *
 * Each file holds one system's traces. Traces are paired by id (by input text when the
 * files share no id). The judge is an ordinary evaluator run on a pair trace
 * {id, input, outputs = {first, second}, traces = {first, second}, metadata, pair} and scores
 * 1 when the first answer is better, 0 when the second is, 1/2 for a tie. Every pair is
 * judged in both orders, which cancels a judge's preference for a position: a system wins a
 * pair only when both orders agree, anything else is a tie, and a pair whose two verdicts
 * both went to the same position counts toward the position-bias rate.
 *
 * For each two systems: wins, ties and losses of the later file against the earlier, its
 * win rate (ties count 1/2) with a 95% interval (normal, from the per-pair scores), per
 * segment with --group-by (the earlier file's metadata). With three systems or more, the
 * Bradley-Terry strengths (ties as half a win each way) with percentile intervals from
 * resampling the traces. The formulas are in docs/llm.md.
 */
#include "cli.h"
#include "../base/buf.h"
#include "../base/hash.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <sys/types.h>
#include <stdlib.h>
#include <string.h>

#define PAIRWISE_MAX_SYSTEMS 16
#define PAIRWISE_RESAMPLES 200
#define PAIRWISE_MAX_SEGMENTS 50
#define PAIRWISE_WINDOW 4096 /* pair traces queued at once: enough to keep 256 calls in flight */

typedef struct entry {
    const char *key; /* the id, or the input when pairing by input */
    cJSON *trace;
} entry;

typedef struct pw_system {
    const char *path;
    cJSON **traces; /* owned */
    size_t count;
    entry *by_key;  /* sorted by key: the traces that have one */
    size_t keyed;
} pw_system;

/* One pair of answers, judged twice. */
typedef struct judgment {
    size_t a, b;        /* systems, a < b */
    const cJSON *ta, *tb;
    char *segment;      /* owned; NULL without --group-by */
    double verdict[2];  /* the judge's score with a first, with b first; NaN: an error */
    int answered;
} judgment;

typedef struct pairwise {
    const cli_options *o;
    pw_system systems[PAIRWISE_MAX_SYSTEMS];
    size_t system_count;
    judgment *judgments;
    size_t judgment_count;
    size_t errors;
    char *first_error;
    bool by_input;
    char judge[128]; /* the judge's name */
    char *judge_path, *judge_params; /* owned: for the run store */
    assay_host *host;
    struct ask *asks; /* one per (judgment, order) */
    size_t next;      /* the next ask to submit */
    int submit_status;
    bool is_closing;
} pairwise;

/* ------------------------------------------------------------------------- reading */

static int compare_entries(const void *x, const void *y) {
    return strcmp(((const entry *)x)->key, ((const entry *)y)->key);
}

static const char *trace_key(const cJSON *t, bool by_input) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(t, by_input ? "input" : "id");
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Reads a system's traces; a line that is not a JSON object is reported and left out. */
static int read_system(pw_system *s, const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "assay: pairwise: %s: cannot open it\n", path);
        return -1;
    }
    s->path = path;
    char *line = NULL;
    size_t cap = 0, line_no = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
        line_no++;
        if (strspn(line, " \t\r\n") == (size_t)n) continue;
        cJSON *t = cJSON_ParseWithLength(line, (size_t)n);
        if (!cJSON_IsObject(t)) {
            fprintf(stderr, "assay: pairwise: %s:%zu: not a JSON object, left out\n", path, line_no);
            cJSON_Delete(t);
            continue;
        }
        cJSON **grown = realloc(s->traces, (s->count + 1) * sizeof *grown);
        if (!grown) {
            cJSON_Delete(t);
            break;
        }
        s->traces = grown;
        s->traces[s->count++] = t;
    }
    free(line);
    fclose(f);
    return 0;
}

/* Indexes the traces by key; those without one cannot be paired. */
static void index_system(pw_system *s, bool by_input) {
    free(s->by_key);
    s->keyed = 0;
    if (!(s->by_key = calloc(s->count + 1, sizeof *s->by_key))) return;
    for (size_t i = 0; i < s->count; i++) {
        const char *key = trace_key(s->traces[i], by_input);
        if (key) s->by_key[s->keyed++] = (entry){key, s->traces[i]};
    }
    qsort(s->by_key, s->keyed, sizeof *s->by_key, compare_entries);
}

static const cJSON *find(const pw_system *s, const char *key) {
    entry probe = {key, NULL};
    const entry *e = s->keyed ? bsearch(&probe, s->by_key, s->keyed, sizeof *s->by_key, compare_entries) : NULL;
    return e ? e->trace : NULL;
}

/* ------------------------------------------------------------------------- judging */

static char *segment_of(const cJSON *trace, const char *group_by) {
    if (!group_by) return NULL;
    const char *field = strncmp(group_by, "metadata.", 9) == 0 ? group_by + 9 : group_by;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(trace, "metadata"), field);
    if (cJSON_IsString(v)) return strdup(v->valuestring);
    if (cJSON_IsNumber(v) || cJSON_IsBool(v)) {
        char *text = cJSON_PrintUnformatted(v);
        return text;
    }
    return strdup("(none)");
}

/* Every trace two systems share, once per pair of systems. */
static int pair_up(pairwise *p) {
    for (size_t a = 0; a < p->system_count; a++)
        for (size_t b = a + 1; b < p->system_count; b++)
            for (size_t i = 0; i < p->systems[a].keyed; i++) {
                const entry *e = &p->systems[a].by_key[i];
                if (i > 0 && strcmp(e->key, p->systems[a].by_key[i - 1].key) == 0) continue; /* the first of a key */
                const cJSON *tb = find(&p->systems[b], e->key);
                if (!tb) continue;
                judgment *grown = realloc(p->judgments, (p->judgment_count + 1) * sizeof *grown);
                if (!grown) return -1;
                p->judgments = grown;
                p->judgments[p->judgment_count++] = (judgment){
                    .a = a, .b = b, .ta = e->trace, .tb = tb, .segment = segment_of(e->trace, p->o->group_by),
                    .verdict = {NAN, NAN}};
            }
    return 0;
}

/* The pair trace the judge sees, first and second in the order given. */
static char *pair_trace(const pairwise *p, const judgment *j, int order) {
    const cJSON *first = order ? j->tb : j->ta, *second = order ? j->ta : j->tb;
    cJSON *t = cJSON_CreateObject();
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(j->ta, "id");
    cJSON_AddItemToObject(t, "id", cJSON_IsString(id) ? cJSON_Duplicate(id, 1) : cJSON_CreateString("?"));
    const cJSON *input = cJSON_GetObjectItemCaseSensitive(j->ta, "input");
    if (input) cJSON_AddItemToObject(t, "input", cJSON_Duplicate(input, 1));
    cJSON *outputs = cJSON_AddArrayToObject(t, "outputs"), *traces = cJSON_AddArrayToObject(t, "traces");
    const cJSON *both[2] = {first, second};
    for (int k = 0; k < 2; k++) {
        const cJSON *out = cJSON_GetObjectItemCaseSensitive(both[k], "output");
        cJSON_AddItemToArray(outputs, out ? cJSON_Duplicate(out, 1) : cJSON_CreateNull());
        cJSON_AddItemToArray(traces, cJSON_Duplicate(both[k], 1));
    }
    const cJSON *metadata = cJSON_GetObjectItemCaseSensitive(j->ta, "metadata");
    if (metadata) cJSON_AddItemToObject(t, "metadata", cJSON_Duplicate(metadata, 1));
    cJSON *pair = cJSON_AddObjectToObject(t, "pair");
    cJSON_AddStringToObject(pair, "first", p->systems[order ? j->b : j->a].path);
    cJSON_AddStringToObject(pair, "second", p->systems[order ? j->a : j->b].path);
    char *text = cJSON_PrintUnformatted(t);
    cJSON_Delete(t);
    return text;
}

/* The submit context of a verdict: the judgment and the order. */
typedef struct ask {
    pairwise *p;
    size_t judgment;
    int order;
} ask;

/* Submits pair traces while fewer than PAIRWISE_WINDOW wait (the memory of a run does not
 * grow with its size), and closes the host after the last. */
static void submit_more(pairwise *p) {
    size_t total = 2 * p->judgment_count;
    while (p->next < total && assay_host_pending(p->host) < PAIRWISE_WINDOW) {
        ask *q = &p->asks[p->next++];
        char *text = pair_trace(p, &p->judgments[q->judgment], q->order);
        if (!text || assay_host_submit(p->host, text, strlen(text), p->systems[p->judgments[q->judgment].a].path,
                                       q->judgment + 1, q) != ASSAY_OK)
            p->submit_status = CLI_EXIT_IO;
        free(text);
    }
    if (p->next == total && !p->is_closing) {
        p->is_closing = true;
        assay_host_close(p->host, NULL);
    }
}

static void on_verdict(assay_host *host, const assay_result *result, void *ctx) {
    (void)host;
    ask *q = ctx;
    judgment *j = &q->p->judgments[q->judgment];
    assay_record rec;
    if (assay_result_record_count(result) == 1 && assay_result_record(result, 0, &rec, sizeof rec) == ASSAY_OK &&
        rec.error == ASSAY_KIND_NONE && rec.has_score) {
        j->verdict[q->order] = rec.score;
    } else {
        q->p->errors++;
        if (!q->p->first_error && assay_result_record(result, 0, &rec, sizeof rec) == ASSAY_OK)
            q->p->first_error = strdup(rec.error_message ? rec.error_message : "the judge gave no score");
    }
    j->answered++;
    submit_more(q->p);
}

static int judge_all(pairwise *p) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    assay_error err;
    assay_options_set_record_timing(p->o->host, 0);
    if (assay_host_new(&p->host, &loop, p->o->host, on_verdict, p, &err) != ASSAY_OK) {
        fprintf(stderr, "assay: pairwise: %s\n", err.message);
        uv_loop_close(&loop);
        return CLI_EXIT_USAGE;
    }
    int rc = CLI_EXIT_OK;
    if (assay_host_plugin_count(p->host) != 1) {
        fprintf(stderr, "assay: pairwise: give exactly one judge (-e FILE); %zu were loaded\n",
                assay_host_plugin_count(p->host));
        rc = CLI_EXIT_USAGE;
    } else if (!(p->asks = calloc(2 * p->judgment_count, sizeof *p->asks))) {
        rc = CLI_EXIT_IO;
    }
    if (rc != CLI_EXIT_OK) {
        assay_host_close(p->host, NULL);
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
        return rc;
    }
    assay_plugin_info info;
    assay_host_plugin_info(p->host, 0, &info, sizeof info);
    snprintf(p->judge, sizeof p->judge, "%s", info.name);
    p->judge_path = strdup(info.path);
    p->judge_params = strdup(info.params_json);
    for (size_t i = 0; i < 2 * p->judgment_count; i++) p->asks[i] = (ask){p, i / 2, (int)(i % 2)};
    submit_more(p);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return p->submit_status;
}

/* ---------------------------------------------------------------------- statistics */

/* A judgment from the later system's side: 1 it won (both orders), 0 it lost, 1/2 a tie;
 * NaN when a verdict is missing. *follows_order: both verdicts went to one position. */
static double outcome(const judgment *j, bool *follows_order) {
    double first_a = j->verdict[0], first_b = j->verdict[1];
    *follows_order = false;
    if (isnan(first_a) || isnan(first_b)) return NAN;
    double b_when_second = 1 - first_a, b_when_first = first_b;
    *follows_order = (first_a == 1 && first_b == 1) || (first_a == 0 && first_b == 0);
    if (b_when_second == 1 && b_when_first == 1) return 1;
    if (b_when_second == 0 && b_when_first == 0) return 0;
    return 0.5;
}

typedef struct tally {
    size_t n, wins, ties, losses, biased;
    double sum, sum_sq;
} tally;

static void tally_add(tally *t, double x, bool follows_order) {
    t->n++;
    t->wins += x == 1, t->losses += x == 0, t->ties += x == 0.5;
    t->biased += follows_order;
    t->sum += x, t->sum_sq += x * x;
}

/* {n, wins, ties, losses, win_rate, ci, position_bias} of a tally. */
static cJSON *tally_json(const tally *t) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "n", (double)t->n);
    cJSON_AddNumberToObject(o, "wins", (double)t->wins);
    cJSON_AddNumberToObject(o, "ties", (double)t->ties);
    cJSON_AddNumberToObject(o, "losses", (double)t->losses);
    double n = (double)t->n, mean = n ? t->sum / n : NAN;
    double sd = n > 1 ? sqrt(fmax(0, (t->sum_sq - n * mean * mean) / (n - 1))) : NAN;
    double half = 1.96 * sd / sqrt(n);
    cJSON_AddItemToObject(o, "win_rate", n ? cJSON_CreateNumber(mean) : cJSON_CreateNull());
    cJSON *ci = cJSON_AddArrayToObject(o, "ci");
    cJSON_AddItemToArray(ci, isnan(half) ? cJSON_CreateNull() : cJSON_CreateNumber(fmax(0, mean - half)));
    cJSON_AddItemToArray(ci, isnan(half) ? cJSON_CreateNull() : cJSON_CreateNumber(fmin(1, mean + half)));
    cJSON_AddItemToObject(o, "position_bias", n ? cJSON_CreateNumber((double)t->biased / n) : cJSON_CreateNull());
    return o;
}

/* The later system of a judgment's pair against the earlier, overall and per segment. */
static cJSON *comparison_json(const pairwise *p, size_t a, size_t b, bool *loses) {
    tally all = {0};
    char *segments[PAIRWISE_MAX_SEGMENTS];
    tally per[PAIRWISE_MAX_SEGMENTS];
    size_t segment_count = 0;
    for (size_t i = 0; i < p->judgment_count; i++) {
        const judgment *j = &p->judgments[i];
        bool follows;
        double x = outcome(j, &follows);
        if (j->a != a || j->b != b || isnan(x)) continue;
        tally_add(&all, x, follows);
        if (!j->segment) continue;
        size_t k = 0;
        while (k < segment_count && strcmp(segments[k], j->segment) != 0) k++;
        if (k == segment_count && segment_count < PAIRWISE_MAX_SEGMENTS) {
            segments[segment_count] = j->segment;
            per[segment_count++] = (tally){0};
        }
        if (k < segment_count) tally_add(&per[k], x, follows);
    }
    cJSON *o = tally_json(&all);
    cJSON_AddStringToObject(o, "a", p->systems[a].path);
    cJSON_AddStringToObject(o, "b", p->systems[b].path);
    const cJSON *hi = cJSON_GetArrayItem(cJSON_GetObjectItem(o, "ci"), 1);
    *loses = cJSON_IsNumber(hi) && hi->valuedouble < 0.5;
    cJSON *list = cJSON_AddArrayToObject(o, "segments");
    for (size_t k = 0; k < segment_count; k++) {
        cJSON *s = tally_json(&per[k]);
        cJSON_AddStringToObject(s, "segment", segments[k]);
        cJSON_AddItemToArray(list, s);
    }
    return o;
}

/* Bradley-Terry strengths from w[i][j] (i's wins over j, ties as half), summing to 1, by
 * Hunter's MM iteration. */
static void bradley_terry(size_t n, const double w[][PAIRWISE_MAX_SYSTEMS], double *strength) {
    for (size_t i = 0; i < n; i++) strength[i] = 1.0 / (double)n;
    for (int iter = 0; iter < 10000; iter++) {
        double next[PAIRWISE_MAX_SYSTEMS], total = 0, change = 0;
        for (size_t i = 0; i < n; i++) {
            double wins = 0, denominator = 0;
            for (size_t j = 0; j < n; j++) {
                if (j == i || w[i][j] + w[j][i] == 0) continue;
                wins += w[i][j];
                denominator += (w[i][j] + w[j][i]) / (strength[i] + strength[j]);
            }
            next[i] = denominator > 0 ? wins / denominator : 0;
            total += next[i];
        }
        for (size_t i = 0; i < n; i++) {
            double v = total > 0 ? next[i] / total : 1.0 / (double)n;
            change = fmax(change, fabs(v - strength[i]));
            strength[i] = v;
        }
        if (change < 1e-12) break;
    }
}

/* Wins of every system over every other from the judgments (resampled within each pair of
 * systems when state is not NULL). */
static void win_matrix(const pairwise *p, double w[][PAIRWISE_MAX_SYSTEMS], uint64_t *state) {
    memset(w, 0, sizeof(double) * PAIRWISE_MAX_SYSTEMS * PAIRWISE_MAX_SYSTEMS);
    for (size_t a = 0; a < p->system_count; a++)
        for (size_t b = a + 1; b < p->system_count; b++) {
            size_t first = 0, m = 0; /* pair_up put each pair of systems' judgments together */
            for (size_t i = 0; i < p->judgment_count; i++) {
                if (p->judgments[i].a != a || p->judgments[i].b != b) continue;
                if (!m) first = i;
                m++;
            }
            for (size_t k = 0; k < m; k++) {
                size_t i = state ? first + hash_splitmix64(state) % m : first + k;
                bool follows;
                double x = outcome(&p->judgments[i], &follows);
                if (isnan(x)) continue;
                w[b][a] += x, w[a][b] += 1 - x;
            }
        }
}

static cJSON *leaderboard_json(const pairwise *p) {
    double w[PAIRWISE_MAX_SYSTEMS][PAIRWISE_MAX_SYSTEMS], strength[PAIRWISE_MAX_SYSTEMS];
    win_matrix(p, w, NULL);
    bradley_terry(p->system_count, (const double(*)[PAIRWISE_MAX_SYSTEMS])w, strength);
    double *samples = calloc((size_t)PAIRWISE_RESAMPLES * p->system_count, sizeof *samples);
    uint64_t state = 20261204;
    for (int r = 0; samples && r < PAIRWISE_RESAMPLES; r++) {
        double s[PAIRWISE_MAX_SYSTEMS];
        win_matrix(p, w, &state);
        bradley_terry(p->system_count, (const double(*)[PAIRWISE_MAX_SYSTEMS])w, s);
        for (size_t i = 0; i < p->system_count; i++) samples[i * PAIRWISE_RESAMPLES + (size_t)r] = s[i];
    }
    cJSON *list = cJSON_CreateArray();
    for (size_t i = 0; i < p->system_count; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "system", p->systems[i].path);
        cJSON_AddNumberToObject(o, "strength", strength[i]);
        cJSON *ci = cJSON_AddArrayToObject(o, "ci");
        if (samples) {
            double *mine = samples + i * PAIRWISE_RESAMPLES;
            qsort(mine, PAIRWISE_RESAMPLES, sizeof *mine, cli_compare_doubles);
            cJSON_AddItemToArray(ci, cJSON_CreateNumber(mine[(int)(0.025 * PAIRWISE_RESAMPLES)]));
            cJSON_AddItemToArray(ci, cJSON_CreateNumber(mine[(int)(0.975 * PAIRWISE_RESAMPLES) - 1]));
        }
        cJSON_AddItemToArray(list, o);
    }
    free(samples);
    return list;
}

/* ---------------------------------------------------------------------------- output */

static void print_tally(const cJSON *t, const char *indent, const char *what) {
    const cJSON *ci = cJSON_GetObjectItem(t, "ci");
    printf("%s%s: %d pairs: won %d, tied %d, lost %d", indent, what, cJSON_GetObjectItem(t, "n")->valueint,
           cJSON_GetObjectItem(t, "wins")->valueint, cJSON_GetObjectItem(t, "ties")->valueint,
           cJSON_GetObjectItem(t, "losses")->valueint);
    if (cJSON_IsNumber(cJSON_GetObjectItem(t, "win_rate"))) {
        printf("; win rate %.3f", cJSON_GetObjectItem(t, "win_rate")->valuedouble);
        if (cJSON_IsNumber(ci->child)) printf(" [%.3f, %.3f]", ci->child->valuedouble, ci->child->next->valuedouble);
        printf("; position bias %.1f%%", 100 * cJSON_GetObjectItem(t, "position_bias")->valuedouble);
    }
    printf("\n");
}

static void print_text(const cJSON *doc) {
    printf("pairwise: %d systems, judge %s, paired by %s, each pair judged in both orders\n",
           cJSON_GetArraySize(cJSON_GetObjectItem(doc, "systems")), cJSON_GetObjectItem(doc, "judge")->valuestring,
           cJSON_GetObjectItem(doc, "paired_by")->valuestring);
    const cJSON *c, *s;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(doc, "comparisons")) {
        char what[600];
        snprintf(what, sizeof what, "%s against %s", cJSON_GetObjectItem(c, "b")->valuestring,
                 cJSON_GetObjectItem(c, "a")->valuestring);
        print_tally(c, "  ", what);
        cJSON_ArrayForEach(s, cJSON_GetObjectItem(c, "segments")) {
            snprintf(what, sizeof what, "segment %s", cJSON_GetObjectItem(s, "segment")->valuestring);
            print_tally(s, "    ", what);
        }
    }
    const cJSON *board = cJSON_GetObjectItem(doc, "bradley_terry");
    if (board) printf("Bradley-Terry strengths (sum 1; 95%% from %d resamples):\n", PAIRWISE_RESAMPLES);
    cJSON_ArrayForEach(s, board) {
        const cJSON *ci = cJSON_GetObjectItem(s, "ci");
        printf("  %-40s %.3f", cJSON_GetObjectItem(s, "system")->valuestring, cJSON_GetObjectItem(s, "strength")->valuedouble);
        if (cJSON_IsNumber(ci->child)) printf(" [%.3f, %.3f]", ci->child->valuedouble, ci->child->next->valuedouble);
        printf("\n");
    }
}

/* ------------------------------------------------------------------------------ main */

static cJSON *report_json(const pairwise *p, const char *judge, bool *any_loses) {
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "judge", judge);
    cJSON_AddStringToObject(doc, "paired_by", p->by_input ? "input" : "id");
    cJSON *systems = cJSON_AddArrayToObject(doc, "systems");
    for (size_t i = 0; i < p->system_count; i++) cJSON_AddItemToArray(systems, cJSON_CreateString(p->systems[i].path));
    cJSON *list = cJSON_AddArrayToObject(doc, "comparisons");
    for (size_t a = 0; a < p->system_count; a++)
        for (size_t b = a + 1; b < p->system_count; b++) {
            bool loses;
            cJSON_AddItemToArray(list, comparison_json(p, a, b, &loses));
            *any_loses |= loses;
        }
    if (p->system_count >= 3) cJSON_AddItemToObject(doc, "bradley_terry", leaderboard_json(p));
    cJSON_AddNumberToObject(doc, "errors", (double)p->errors);
    return doc;
}

static void pairwise_free(pairwise *p) {
    for (size_t i = 0; i < p->system_count; i++) {
        for (size_t k = 0; k < p->systems[i].count; k++) cJSON_Delete(p->systems[i].traces[k]);
        free(p->systems[i].traces);
        free(p->systems[i].by_key);
    }
    for (size_t i = 0; i < p->judgment_count; i++) free(p->judgments[i].segment);
    free(p->judgments);
    free(p->first_error);
    free(p->asks);
    free(p->judge_path);
    free(p->judge_params);
}

static const char *base_name(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* One record per decided pair, an evaluator per two systems ("JUDGE: B vs A"), the later
 * system's outcome as the score (1 won, 0 lost, 0.5 tie) and pass (a tie has none): `runs`,
 * `compare` and `report` read it as any run. */
static int record_run(const pairwise *p, const char *document, int64_t *run, char *err, size_t errlen) {
    size_t pairs = p->system_count * (p->system_count - 1) / 2, e = 0;
    store_computed_evaluator *evs = calloc(pairs, sizeof *evs);
    char **names = calloc(pairs, sizeof *names);
    store_computed_record *recs = calloc(p->judgment_count + 1, sizeof *recs);
    char **texts = calloc(3 * p->judgment_count + 1, sizeof *texts);
    size_t n = 0, index[PAIRWISE_MAX_SYSTEMS][PAIRWISE_MAX_SYSTEMS];
    int rc = evs && names && recs && texts ? 0 : -1;
    for (size_t a = 0; rc == 0 && a < p->system_count; a++)
        for (size_t b = a + 1; b < p->system_count; b++, e++) {
            buf name;
            buf_init(&name);
            buf_printf(&name, "%s: %s vs %s", p->judge, base_name(p->systems[b].path), base_name(p->systems[a].path));
            names[e] = buf_steal(&name);
            evs[e] = (store_computed_evaluator){names[e], "pair", p->judge_path, p->judge_params};
            index[a][b] = e;
        }
    for (size_t i = 0; rc == 0 && i < p->judgment_count; i++) {
        const judgment *j = &p->judgments[i];
        bool follows;
        double x = outcome(j, &follows);
        if (isnan(x)) continue;
        cJSON *details = cJSON_CreateObject(), *digest = cJSON_CreateObject();
        cJSON *v = cJSON_AddArrayToObject(details, "verdicts");
        cJSON_AddItemToArray(v, cJSON_CreateNumber(j->verdict[0]));
        cJSON_AddItemToArray(v, cJSON_CreateNumber(j->verdict[1]));
        cJSON_AddBoolToObject(details, "follows_order", follows);
        const cJSON *metadata = cJSON_GetObjectItemCaseSensitive(j->ta, "metadata");
        cJSON_AddItemToObject(digest, "metadata", metadata ? cJSON_Duplicate(metadata, 1) : cJSON_CreateObject());
        cJSON_AddArrayToObject(digest, "step_types");
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(j->ta, "id");
        texts[3 * n] = cJSON_PrintUnformatted(details);
        texts[3 * n + 1] = cJSON_PrintUnformatted(digest);
        texts[3 * n + 2] = strdup(cJSON_IsString(id) ? id->valuestring : "?");
        cJSON_Delete(details), cJSON_Delete(digest);
        recs[n] = (store_computed_record){.evaluator = index[j->a][j->b], .trace_id = texts[3 * n + 2],
                                          .group = j->segment, .details = texts[3 * n], .summary = texts[3 * n + 1],
                                          .file = 0, .line = i + 1, .score = x, .pass = x == 1 ? 1 : x == 0 ? 0 : -1};
        n++;
    }
    const char *inputs[PAIRWISE_MAX_SYSTEMS];
    for (size_t i = 0; i < p->system_count; i++) inputs[i] = p->systems[i].path;
    store_computed_run d = {.label = p->o->label, .command = p->o->command, .kind = "pairwise", .document = document,
                            .inputs = inputs,
                            .input_count = p->system_count, .trace_count = n, .evaluators = evs,
                            .evaluator_count = pairs, .records = recs, .record_count = n};
    if (rc == 0) rc = store_write_computed_run(p->o->db, &d, run, err, errlen);
    else snprintf(err, errlen, "out of memory");
    for (size_t i = 0; texts && i < 3 * n; i++) free(texts[i]);
    for (size_t i = 0; names && i < pairs; i++) free(names[i]);
    free(texts), free(names), free(recs), free(evs);
    return rc;
}

/* Reads the systems and pairs their traces, by id or else by input. */
static int load(pairwise *p, int argc, char **argv) {
    for (int i = 0; i < argc; i++)
        if (read_system(&p->systems[p->system_count++], argv[i]) != 0) return CLI_EXIT_USAGE;
    for (int pass = 0; pass < 2 && !p->judgment_count; pass++) {
        p->by_input = pass == 1;
        for (size_t i = 0; i < p->system_count; i++) index_system(&p->systems[i], p->by_input);
        if (pair_up(p) != 0) return CLI_EXIT_IO;
    }
    if (!p->judgment_count) {
        fprintf(stderr, "assay: pairwise: the files share no trace id and no input: nothing to compare\n");
        return CLI_EXIT_USAGE;
    }
    return CLI_EXIT_OK;
}

int cli_pairwise(cli_options *o, int argc, char **argv) {
    if (argc < 2 || argc > PAIRWISE_MAX_SYSTEMS) {
        fprintf(stderr, "assay: usage: assay pairwise A.jsonl B.jsonl [C.jsonl ...] -e JUDGE [--group-by FIELD] [--json]\n"
                        "       [--fail-on-regression]   (2 to %d systems: one trace file each)\n",
                PAIRWISE_MAX_SYSTEMS);
        return CLI_EXIT_USAGE;
    }
    pairwise p = {.o = o};
    int rc = load(&p, argc, argv);
    if (rc == CLI_EXIT_OK) rc = judge_all(&p);
    if (rc == CLI_EXIT_OK) {
        bool any_loses = false;
        cJSON *doc = report_json(&p, p.judge, &any_loses);
        if (o->is_json) {
            char *text = cJSON_Print(doc);
            if (text) printf("%s\n", text);
            free(text);
        } else {
            print_text(doc);
        }
        char *document = o->db ? cJSON_PrintUnformatted(doc) : NULL;
        cJSON_Delete(doc);
        int64_t run;
        char err[600];
        int recorded = o->db ? record_run(&p, document, &run, err, sizeof err) : 0;
        free(document);
        if (recorded != 0) {
            fprintf(stderr, "assay: pairwise: run store: %s\n", err);
            rc = CLI_EXIT_IO;
        } else if (o->db) {
            fprintf(stderr, "pairwise run %lld recorded in %s\n", (long long)run, o->db);
        }
        if (p.errors)
            fprintf(stderr, "assay: pairwise: %zu verdicts failed and their pairs were left out; the first: %s\n",
                    p.errors, p.first_error ? p.first_error : "?");
        if (rc == CLI_EXIT_OK && o->fail_on_regression && any_loses) {
            fprintf(stderr, "assay: pairwise: a later system loses to an earlier one significantly\n");
            rc = CLI_EXIT_FAILED;
        } else if (rc == CLI_EXIT_OK && p.errors) {
            rc = CLI_EXIT_RECORD_ERRORS;
        }
    }
    pairwise_free(&p);
    return rc;
}
