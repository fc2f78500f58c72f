/* cli_gate.c - absolute gates: `--gate relevance.pass_rate>=0.8`, and the suite file's gates.
 *
 * A gate is EVALUATOR.METRIC OP NUMBER, optionally followed by `segment=VALUE` (one value of
 * the --group-by field) or `segment=*` (every value, each checked on its own). It reads
 * counts the caller gathered (gate_cell: from the run's summary, or from a stored run), so
 * that `run` and `compare` check gates the same way. A gate whose evaluator, segment or
 * metric has nothing to measure fails: a gate that cannot be checked must not pass silently.
 */
#include "cli.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const metric_names[] = {"mean", "pass_rate", "error_rate"};
static const char *const op_names[] = {">=", ">", "<=", "<"};

static int fail(char *err, size_t errlen, const char *text, const char *why) {
    snprintf(err, errlen, "--gate '%s': %s (the form is EVALUATOR.METRIC>=NUMBER [segment=VALUE|*],"
                          " METRIC one of mean, pass_rate, error_rate; ops >=, >, <=, <)",
             text, why);
    return -1;
}

int gate_parse(const char *text, gate *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    const char *p = text;
    while (isspace((unsigned char)*p)) p++;
    const char *name = p;
    while (*p && *p != '.' && !isspace((unsigned char)*p) && !strchr("<>=", *p)) p++;
    if (*p != '.' || p == name) return fail(err, errlen, text, "no EVALUATOR. before the metric");
    size_t name_len = (size_t)(p - name);
    if (name_len >= sizeof out->evaluator) return fail(err, errlen, text, "the evaluator name is too long");
    memcpy(out->evaluator, name, name_len);
    const char *metric = ++p;
    while (*p && (isalnum((unsigned char)*p) || *p == '_')) p++;
    size_t metric_len = (size_t)(p - metric);
    out->metric = -1;
    for (int i = 0; i < GATE_METRICS; i++)
        if (strlen(metric_names[i]) == metric_len && strncmp(metric, metric_names[i], metric_len) == 0) out->metric = i;
    if (out->metric < 0) return fail(err, errlen, text, "unknown metric");
    while (isspace((unsigned char)*p)) p++;
    out->op = -1;
    for (int i = 0; i < 4 && out->op < 0; i++)
        if (strncmp(p, op_names[i], strlen(op_names[i])) == 0) out->op = i, p += strlen(op_names[i]);
    if (out->op < 0) return fail(err, errlen, text, "no comparison (>=, >, <=, <) after the metric");
    char *end;
    out->threshold = strtod(p, &end);
    if (end == p || !isfinite(out->threshold)) return fail(err, errlen, text, "no number after the comparison");
    p = end;
    while (isspace((unsigned char)*p)) p++;
    if (strncmp(p, "segment=", 8) == 0) {
        p += 8;
        size_t len = strlen(p);
        while (len && isspace((unsigned char)p[len - 1])) len--;
        if (!len || len >= sizeof out->segment) return fail(err, errlen, text, "segment= needs a value (or *)");
        memcpy(out->segment, p, len);
        out->has_segment = true;
        p += strlen(p);
    }
    if (*p) return fail(err, errlen, text, "unexpected text after the number");
    snprintf(out->text, sizeof out->text, "%s.%s%s%g%s%s", out->evaluator, metric_names[out->metric],
             op_names[out->op], out->threshold, out->has_segment ? " segment=" : "", out->has_segment ? out->segment : "");
    return 0;
}

const char *gate_metric_name(int metric) { return metric >= 0 && metric < GATE_METRICS ? metric_names[metric] : "?"; }

/* The cell's value of metric; false when it has nothing to measure. */
static bool cell_value(const gate_cell *c, int metric, double *value) {
    switch (metric) {
    case GATE_MEAN:
        if (!c->scored) return false;
        *value = c->score_sum / (double)c->scored;
        return true;
    case GATE_PASS_RATE:
        if (!c->pass_n) return false;
        *value = (double)c->passed / (double)c->pass_n;
        return true;
    case GATE_ERROR_RATE:
        if (!c->records) return false;
        *value = (double)c->errors / (double)c->records;
        return true;
    }
    return false;
}

static bool holds(const gate *g, double v) {
    switch (g->op) {
    case GATE_GE: return v >= g->threshold;
    case GATE_GT: return v > g->threshold;
    case GATE_LE: return v <= g->threshold;
    case GATE_LT: return v < g->threshold;
    }
    return false;
}

static int add_result(gate_results *out, const gate *g, const gate_cell *c, const char *segment) {
    if (out->n == out->cap) {
        size_t cap = out->cap ? 2 * out->cap : 16;
        gate_result *grown = realloc(out->v, cap * sizeof *grown);
        if (!grown) return -1;
        out->v = grown, out->cap = cap;
    }
    gate_result *r = &out->v[out->n++];
    memset(r, 0, sizeof *r);
    r->g = g;
    snprintf(r->segment, sizeof r->segment, "%s", segment ? segment : "");
    r->has_segment = segment != NULL;
    if (!c) {
        snprintf(r->why, sizeof r->why, "%s", segment ? "no records in this segment" : "no records of this evaluator");
        return 0;
    }
    r->n = g->metric == GATE_PASS_RATE ? c->pass_n : g->metric == GATE_MEAN ? c->scored : c->records;
    if (!cell_value(c, g->metric, &r->value)) {
        snprintf(r->why, sizeof r->why, "nothing to measure: no record with a %s",
                 g->metric == GATE_PASS_RATE ? "pass" : g->metric == GATE_MEAN ? "score" : "result");
        return 0;
    }
    r->has_value = true;
    r->ok = holds(g, r->value);
    return 0;
}

int gate_check(const gate *gates, size_t gate_count, const gate_cell *cells, size_t cell_count, gate_results *out) {
    for (size_t i = 0; i < gate_count; i++) {
        const gate *g = &gates[i];
        bool every = g->has_segment && strcmp(g->segment, "*") == 0, found = false;
        for (size_t k = 0; k < cell_count; k++) {
            const gate_cell *c = &cells[k];
            if (strcmp(c->evaluator, g->evaluator) != 0) continue;
            bool match = !g->has_segment ? !c->segment : every ? c->segment != NULL
                                                               : c->segment && strcmp(c->segment, g->segment) == 0;
            if (!match) continue;
            found = true;
            if (add_result(out, g, c, c->segment) != 0) return -1;
        }
        if (!found && add_result(out, g, NULL, g->has_segment ? g->segment : NULL) != 0) return -1;
    }
    size_t failed = 0;
    for (size_t i = 0; i < out->n; i++) failed += !out->v[i].ok;
    return (int)failed;
}

void gate_result_describe(const gate_result *x, char *out, size_t len) {
    char where[160] = "", value[160];
    if (x->has_segment && strcmp(x->g->segment, "*") == 0) snprintf(where, sizeof where, " [%s]", x->segment);
    if (x->has_value) snprintf(value, sizeof value, "%s %.4g over %zu records", gate_metric_name(x->g->metric), x->value, x->n);
    else snprintf(value, sizeof value, "%s", x->why);
    snprintf(out, len, "gate %s%s: %s (%s)", x->g->text, where, x->ok ? "ok" : "FAILED", value);
}

void gate_results_print(const gate_results *r, FILE *out) {
    for (size_t i = 0; i < r->n; i++) {
        char line[800];
        gate_result_describe(&r->v[i], line, sizeof line);
        fprintf(out, "%s\n", line);
    }
}

void gate_results_free(gate_results *r) {
    free(r->v);
    memset(r, 0, sizeof *r);
}

int cli_gates(const cli_options *o, gate **out, size_t *count, bool has_segments, char *err, size_t errlen) {
    *out = NULL, *count = 0;
    if (!o->gate_count) return 0;
    gate *gates = calloc(o->gate_count, sizeof *gates);
    if (!gates) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < o->gate_count; i++) {
        if (gate_parse(o->gate_texts[i], &gates[i], err, errlen) != 0) goto fail;
        if (gates[i].has_segment && !has_segments) {
            snprintf(err, errlen, "--gate '%s': a segment gate needs --group-by FIELD (the field whose values are the"
                                  " segments)", o->gate_texts[i]);
            goto fail;
        }
    }
    *out = gates, *count = o->gate_count;
    return 0;
fail:
    free(gates);
    return -1;
}
