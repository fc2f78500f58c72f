/* cli.h - what the command-line program's files share. The CLI uses libassay only through
 * assay.h, like any other embedder. */
#ifndef ASSAY_CLI_H
#define ASSAY_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <sqlite3.h>

#include <uv.h>
#include "../assay.h"
#include "../base/buf.h"
#include "cli_gate.h"

/* Exit statuses (docs/format.md). */
enum {
    CLI_EXIT_OK = 0,
    CLI_EXIT_FAILED = 1,      /* assay test: some case failed */
    CLI_EXIT_USAGE = 2,       /* bad option, plugin that fails to load */
    CLI_EXIT_RECORD_ERRORS = 3,
    CLI_EXIT_IO = 4,          /* input or output could not be read/written; run stopped */
    CLI_EXIT_INTERRUPTED = 130,
};

#define CLI_MAX_IMPORT_PARAMS 32

/* Options shared by run, list, check and test. */
typedef struct cli_options {
    assay_options *host;
    const char **traces;
    size_t trace_count;
    const char *output;
    const char *cases;
    const char *group_by;
    unsigned workers;
    unsigned max_inflight;
    bool has_evaluator;
    bool is_resume;
    const char *db;             /* the run store; NULL with --no-db */
    const char *label;
    const char *command;        /* the command line, for the store */
    const char *junit, *csv;
    bool is_junit_per_trace;    /* --junit-per-trace: a test case per record */
    double sample_rate;         /* 1: every trace */
    uint64_t sample_seed;
    const char *shard;          /* --shard as given (or ASSAY_SHARD), NULL: none */
    unsigned shard_index, shard_count; /* 0/1 without --shard */
    bool is_follow;
    bool fail_on_regression;
    bool has_llm;               /* an LLM endpoint is configured (--llm-url, ASSAY_LLM_URL) */
    const char *llm_model;      /* the default model (--llm-model, ASSAY_LLM_MODEL), or NULL */
    double price_in, price_out; /* -p llm.price_in/price_out: per million tokens, 0: none */
    const char *from;           /* import: the input format (NULL: auto) */
    const char *map;            /* import: a mapper of one's own */
    const char *import_params[CLI_MAX_IMPORT_PARAMS]; /* run --from: -p import.KEY=V, for the mapper */
    size_t import_param_count;
    bool is_json;               /* calibrate, compare --json */
    const char *gate_texts[CLI_MAX_GATES]; /* --gate, checked when given */
    size_t gate_count;
    double min_delta;           /* compare: the smallest drop that is a regression */
    bool is_strict;             /* compare: judge evaluators whose definition changed */
    const char *correction;     /* compare: holm (NULL), bh or none */
    const char *suite;          /* run -c FILE */
    bool is_quiet;              /* run: no progress line, no summary table */
    bool has_db;                /* --db was given (not the default store) */
    const char *merge_inputs[CLI_MAX_IMPORT_PARAMS]; /* merge -o: --input FILE... */
    size_t merge_input_count;
    unsigned open_traces;       /* import: OTLP traces held in memory; 0: the default */
    int follow_child;           /* run --from --follow: the importer a signal is passed to */
} cli_options;

int cli_run(cli_options *o);
int cli_runs(cli_options *o, int argc, char **argv);
int cli_compare(cli_options *o, int argc, char **argv);
int cli_report(cli_options *o, int argc, char **argv);
int cli_test(cli_options *o);
int cli_import(cli_options *o, const char *const *inputs, size_t count);
int cli_lint(const char *const *inputs, size_t count);
int cli_calibrate(cli_options *o, int argc, char **argv);
int cli_pairwise(cli_options *o, int argc, char **argv);
/* qsort's comparator for doubles, ascending (the percentile intervals). */
static inline int cli_compare_doubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}
int cli_merge(cli_options *o, int argc, char **argv);
/* The calibration of run against the outcome field (docs/metrics.md), as calibrate --json
 * prints it; NULL with a message. For calibrate and the report. */
struct cJSON *calibration_json(sqlite3 *db, int64_t run, const char *field, const char *group_by, char *err, size_t errlen);
/* ------------------------------------------------------------------- the suite file */

/* A suite file (docs/ci.md) as the options it stands for, and its inputs. */
typedef struct suite_args {
    char **options;
    size_t option_count;
    char **inputs;
    size_t input_count;
} suite_args;
/* Runs the suite file in the sandbox (limits: opts') and turns its table into options;
 * -1 with a message naming the file and the line or field. */
int suite_load(const char *path, const assay_options *limits, suite_args *out, char *err, size_t errlen);
void suite_args_free(suite_args *a);

/* The --gate texts parsed into *out (the caller frees it); a segment gate without
 * --group-by (has_segments false) is an error. -1 with a message. */
int cli_gates(const cli_options *o, gate **out, size_t *count, bool has_segments, char *err, size_t errlen);
/* "$.metadata.<FIELD>" (quoted: any name works) for a --group-by FIELD, or NULL; the
 * caller frees it. */
char *cli_group_path(const char *group_by);
/* Checks the gates on a stored run, per segment of segment_path (a JSON path into the
 * digests) when given. -1 with a message on a store error. */
/* What `assay compare A B --json` prints, for o's --group-by, --gate, --strict, --min-delta
 * and --correction; NULL with *status (CLI_EXIT_USAGE, CLI_EXIT_IO) and a message. */
struct cJSON *compare_json(sqlite3 *db, const cli_options *o, const char *a, const char *b, int *status, char *err,
                           size_t errlen);
int compare_check_gates(sqlite3 *db, int64_t run, const gate *gates, size_t count, const char *segment_path,
                        gate_results *out, char *err, size_t errlen);
/* Where the shipped plugins are: ASSAY_PLUGIN_DIR, beside the binary, or the data dir. */
const char *cli_shipped_plugin_dir(void);

/* Does the plugin file's source call assay.llm (outside comments and strings)? A run of
 * such a plugin without an LLM endpoint stops at start-up instead of failing every record. */
bool cli_plugin_calls_llm(const char *path);
/* The command-line way out of a condition an error message of the library reports (the
 * library names no flags: it does not know it runs under this CLI), or NULL. */
const char *cli_hint(const char *message);

/* Where the shipped plugins are: next to the binary (build tree) or under the data dir. */
const char *cli_shipped_plugin_dir(void);

/* ------------------------------------------------------------------ the line reader */

typedef struct reader reader;
/* line is NULL when the line was longer than the limit (it is skipped, len = its length). */
typedef void (*reader_line_cb)(void *ctx, const char *line, size_t len, uint64_t line_no);
/* status 0 at end of input, else a negative libuv error code. */
typedef void (*reader_end_cb)(void *ctx, int status);

/* Opens path ("-" for standard input) to be read on the loop (reader.c says how);
 * reader_start begins. on_end is called exactly once, possibly from inside reader_stop
 * or reader_resume; free the reader only after it. */
reader *reader_new(uv_loop_t *loop, const char *path, size_t max_line, reader_line_cb on_line,
                   reader_end_cb on_end, void *ctx, char *err, size_t errlen);
/* Called with every chunk read, before its lines (for a fingerprint of the input). */
void reader_on_data(reader *r, void (*on_data)(void *ctx, const char *data, size_t len));
/* At the end of the file, waits for more instead of ending, like `tail -F`: a file
 * replaced (rotated) or truncated is read again from its start. Ends only on reader_stop. */
void reader_follow(reader *r);
void reader_start(reader *r);
void reader_pause(reader *r);
void reader_resume(reader *r);
/* Stops after the chunk being read; on_end is still called once. */
void reader_stop(reader *r);
/* Its handles close as the loop runs on: run the loop once more before closing it. */
void reader_free(reader *r);

/* --------------------------------------------------- the progress journal (resume) */

typedef struct journal journal;
/* Every line up to `line` of input `file` (0-based) has its records in the first `bytes`
 * bytes of the output. */
typedef struct journal_position {
    uint64_t file, line, bytes;
} journal_position;

/* FNV-1a over data, continuing from h (0 to start). */
uint64_t journal_hash(const void *data, size_t len, uint64_t h);
/* Starts OUT.progress afresh for a run with this signature. NULL with a message on failure. */
journal *journal_create(const char *out_path, uint64_t signature, char *err, size_t errlen);
/* What journal_resume found. */
enum { JOURNAL_CONTINUE, JOURNAL_FRESH, JOURNAL_FINISHED };
/* For --resume, which works on every attempt: JOURNAL_CONTINUE after an interrupted run
 * (the last trustworthy checkpoint in *pos, OUT truncated to it, the journal reopened in
 * *out); JOURNAL_FRESH when nothing was started (no journal, OUT absent or empty);
 * JOURNAL_FINISHED when the run completed (*finished_status: the exit status it had).
 * -1 with a message when OUT belongs to another run or cannot be continued. */
int journal_resume(const char *out_path, uint64_t signature, journal **out, journal_position *pos,
                   int *finished_status, char *err, size_t errlen);
/* Appends a checkpoint; the output bytes it names must be synced first. -1 on error. */
int journal_append(journal *j, const journal_position *pos);
/* Closes it; a complete run removes the file. */
void journal_free(journal *j, bool is_complete);
/* Closes the journal of a run that completed with exit status `status` at pos, leaving it
 * marked finished so that the same command with --resume has nothing to do. */
void journal_finish(journal *j, const journal_position *pos, int status);

/* ------------------------------------------------------------------ the run store */

#define STORE_DEFAULT_PATH ".assay/assay.db"
/* Whole bodies are kept for this many of a run's worst traces. The report shows fewer
 * (REPORT_WORST); the margin covers a mean computed by the writer and by SQLite's AVG that
 * differ in the last bit. */
#define STORE_KEPT_BODIES 64

/* Opens the store, creating it and its schema unless is_readonly. NULL with a message. */
sqlite3 *store_open(const char *path, bool is_readonly, char *err, size_t errlen);
/* For runs, compare and report: the store at path (NULL: the default), read-only; NULL
 * after saying why on stderr. */
sqlite3 *store_open_reading(const char *path);
/* "latest", "previous", a run id or a label; -1 with a message when there is no such run. */
/* Writes each evaluator's totals of a finished run into run_evaluators. */
int store_tally(sqlite3 *db, int64_t run);
int store_resolve_run(sqlite3 *db, const char *ref, int64_t *id, char *err, size_t errlen);

/* Appends {"metadata":…,"step_types":[…]} for a line the worker accepted as a JSON
 * object (cli_digest.c); false when the line is not one after all. */
bool digest_trace(const char *line, size_t len, buf *out);

/* A run whose records were computed elsewhere (assay pairwise), written whole. */
typedef struct store_computed_record {
    size_t evaluator;          /* index into the run's evaluators */
    const char *trace_id, *group, *details, *summary; /* details, summary: JSON text or NULL */
    uint64_t file, line;       /* the record's place, unique per run */
    double score;              /* NaN: none */
    int pass;                  /* -1: none */
} store_computed_record;
typedef struct store_computed_evaluator {
    const char *name, *scope, *path, *params_json;
} store_computed_evaluator;
typedef struct store_computed_run {
    const char *label, *command;
    const char *kind, *document; /* "pairwise", and the JSON its command printed */
    const char *const *inputs;
    size_t input_count, trace_count;
    const store_computed_evaluator *evaluators;
    size_t evaluator_count;
    const store_computed_record *records;
    size_t record_count;
} store_computed_run;
/* Records the run, finished, in one transaction, with its evaluators' totals; -1 with a
 * message. */
int store_write_computed_run(const char *path, const store_computed_run *d, int64_t *run, char *err, size_t errlen);

typedef struct store_writer store_writer;
/* Called on the loop thread after each commit, which also empties the batch the writer
 * was holding: every result up to pos is in the store (pos is NULL when the commit failed
 * and the store stopped recording). */
typedef void (*store_committed_cb)(void *ctx, const journal_position *pos);
typedef struct store_run_desc {
    const char *label, *command, *output, *group_by;
    const char *const *inputs;             /* display names */
    size_t input_count;
    const assay_host *host;                /* the evaluators */
    double sample_rate;
    uint64_t sample_seed;
    unsigned shard_index, shard_count;     /* 0/1: not sharded */
    bool is_follow;
    const char *llm_model;                 /* the run's default model: part of the definition
                                            * of every evaluator that calls assay.llm */
    uint64_t signature;                    /* what --resume matches */
    const journal_position *resumed_from;  /* continue that run from here, or NULL */
    store_committed_cb on_committed;
    void *ctx;
} store_run_desc;

/* Opens path and records the run (or, resuming, finds the run it continues). */
store_writer *store_writer_new(uv_loop_t *loop, const char *path, const store_run_desc *desc, char *err,
                               size_t errlen);
/* A trace and its records: the trace's digest always, its whole line only while it is
 * among the run's STORE_KEPT_BODIES worst (text may be NULL for results with no trace). */
void store_writer_add_result(store_writer *w, uint64_t file, const assay_result *result, const char *text,
                             size_t len);
/* Raw bytes of input `file` as read, for its size and fingerprint. */
void store_writer_add_input(store_writer *w, size_t file, const void *data, size_t len);
/* Starts committing what was added, unless a commit is in flight. */
void store_writer_flush(store_writer *w);
bool store_writer_is_idle(const store_writer *w);
size_t store_writer_pending_bytes(const store_writer *w);
/* Whether every result up to pos is committed (true once the store has failed: it no
 * longer holds the journal back). */
bool store_writer_has_committed(const store_writer *w, const journal_position *pos);
int64_t store_writer_run_id(const store_writer *w);
/* Commits the rest on the calling thread and closes the run with status ("done",
 * "interrupted", "failed"); only once the loop has no commit in flight. -1 on error. */
int store_writer_finish(store_writer *w, const char *status);
void store_writer_free(store_writer *w);
/* Frees it and forgets a run that never started (not one being resumed). */
void store_writer_abandon(store_writer *w);

/* ------------------------------------------------------- JUnit XML and CSV outputs */

typedef struct exporter exporter;
/* Either path may be NULL. NULL with a message when a file cannot be created. */
/* For o->junit (per evaluator, or per trace with o->is_junit_per_trace) and o->csv, either
 * may be NULL. NULL with a message when a file cannot be created. */
exporter *export_open(const cli_options *o, const assay_host *host, char *err, size_t errlen);
void export_add(exporter *x, const assay_result *result);
/* Writes the JUnit file whole (it needs the counts first), the gates' results in their
 * test cases (gates may be NULL), and closes both; -1 on error. */
int export_close(exporter *x, const gate_results *gates);

/* ------------------------------------------- agreement of repeated evaluations */

/* How well an evaluator agrees with itself over its repeats (the `repeats` param), from
 * each record's details.repeats: Krippendorff's alpha (interval metric) over the repeats'
 * scores and how often pass flipped. Kept as sums, so a run of any size costs the same
 * (docs/metrics.md has the formulas). */
typedef struct agreement {
    uint64_t units;      /* records with 2 or more scored repeats */
    uint64_t pass_units; /* records with 2 or more repeats with a pass */
    uint64_t flips;      /* of those, the ones whose passes were not all equal */
    double n, sum, sum_sq, within; /* the pairable scores, their sum and sum of squares, and
                                    * sum over units of (pairs' squared differences) / (m - 1) */
} agreement;
/* Adds one record's details.repeats (a cJSON object; anything else is ignored). */
void agreement_add(agreement *a, const struct cJSON *repeats);
/* NaN when fewer than 2 units or the scores do not vary at all. */
double agreement_alpha(const agreement *a);

/* -------------------------------------------------------------------- the summary */

typedef struct summary summary;
summary *summary_new(const assay_host *host, bool is_grouped);
void summary_add(summary *s, const assay_result *result);
bool summary_has_errors(const summary *s);
uint64_t summary_traces(const summary *s);
/* Records with errors and input errors so far. */
uint64_t summary_errors(const summary *s);
void summary_print(const summary *s, FILE *out, double seconds);
/* Each evaluator's counts over the run and per group, for gates (*n of them; the caller
 * frees the array, the strings stay the summary's and the host's). */
gate_cell *summary_cells(const summary *s, size_t *n);
void summary_free(summary *s);

#endif
