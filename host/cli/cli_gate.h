/* cli_gate.h - absolute gates on a run's per-evaluator (and per-segment) numbers. */
#ifndef ASSAY_CLI_GATE_H
#define ASSAY_CLI_GATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CLI_MAX_GATES 64

enum { GATE_MEAN, GATE_PASS_RATE, GATE_ERROR_RATE, GATE_METRICS };
enum { GATE_GE, GATE_GT, GATE_LE, GATE_LT };

typedef struct gate {
    char text[320]; /* canonical, for messages */
    char evaluator[128];
    char segment[128]; /* with has_segment: one value, or "*" for each */
    bool has_segment;
    int metric, op;
    double threshold;
} gate;

/* What a gate reads: the counts of one evaluator over the whole run (segment NULL) or one
 * segment. The strings are the caller's. */
typedef struct gate_cell {
    const char *evaluator, *segment;
    uint64_t records, scored, passed, pass_n, errors;
    double score_sum;
} gate_cell;

typedef struct gate_result {
    const gate *g;
    char segment[128];
    bool has_segment, has_value, ok;
    double value;
    size_t n;      /* the records the value is over */
    char why[96];  /* when there is no value */
} gate_result;

typedef struct gate_results {
    gate_result *v;
    size_t n, cap;
} gate_results;

/* Parses "EVALUATOR.METRIC OP NUMBER [segment=VALUE|*]"; -1 with a message. */
int gate_parse(const char *text, gate *out, char *err, size_t errlen);
const char *gate_metric_name(int metric);
/* Appends one result per gate (per segment for segment=*) to out; returns how many failed,
 * -1 when out of memory. */
int gate_check(const gate *gates, size_t gate_count, const gate_cell *cells, size_t cell_count, gate_results *out);
/* "gate TEXT [segment]: ok|FAILED (metric VALUE over N records)", as printed. */
void gate_result_describe(const gate_result *r, char *out, size_t len);
void gate_results_print(const gate_results *r, FILE *out);
void gate_results_free(gate_results *r);

#endif
