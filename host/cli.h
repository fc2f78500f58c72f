/* cli.h - what the command-line program's files share. The CLI uses libassay only through
 * assay.h, like any other embedder. */
#ifndef ASSAY_CLI_H
#define ASSAY_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "assay.h"

/* Exit statuses (SPEC §6, plus 4 and 130). */
enum {
    CLI_EXIT_OK = 0,
    CLI_EXIT_FAILED = 1,      /* assay test: some case failed */
    CLI_EXIT_USAGE = 2,       /* bad option, plugin that fails to load */
    CLI_EXIT_RECORD_ERRORS = 3,
    CLI_EXIT_IO = 4,          /* input or output could not be read/written; run stopped */
    CLI_EXIT_INTERRUPTED = 130,
};

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
} cli_options;

int cli_run(cli_options *o);
int cli_test(cli_options *o);

/* Where the shipped plugins are: next to the binary (build tree) or under the data dir. */
const char *cli_shipped_plugin_dir(void);

/* ------------------------------------------------------------------ the line reader */

typedef struct reader reader;
/* line is NULL when the line was longer than the limit (it is skipped, len = its length). */
typedef void (*reader_line_cb)(void *ctx, const char *line, size_t len, uint64_t line_no);
/* status 0 at end of input, else a negative libuv error code. */
typedef void (*reader_end_cb)(void *ctx, int status);

/* Opens path ("-" for standard input) to be read through the loop's thread pool;
 * reader_start begins. on_end is called exactly once, possibly from inside reader_stop
 * or reader_resume; free the reader only after it. */
reader *reader_new(uv_loop_t *loop, const char *path, size_t max_line, reader_line_cb on_line,
                   reader_end_cb on_end, void *ctx, char *err, size_t errlen);
void reader_start(reader *r);
void reader_pause(reader *r);
void reader_resume(reader *r);
/* Stops after the chunk being read; on_end is still called once. */
void reader_stop(reader *r);
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
/* Finds the last trustworthy checkpoint of an interrupted run, truncates OUT to it and
 * reopens the journal; -1 with a message when there is nothing (matching) to resume. */
int journal_resume(const char *out_path, uint64_t signature, journal **out, journal_position *pos, char *err,
                   size_t errlen);
/* Appends a checkpoint; the output bytes it names must be synced first. -1 on error. */
int journal_append(journal *j, const journal_position *pos);
/* Closes it; a complete run removes the file. */
void journal_free(journal *j, bool is_complete);

/* -------------------------------------------------------------------- the summary */

typedef struct summary summary;
summary *summary_new(const assay_host *host, bool is_grouped);
void summary_add(summary *s, const assay_result *result);
bool summary_has_errors(const summary *s);
uint64_t summary_traces(const summary *s);
void summary_print(const summary *s, FILE *out, double seconds);
void summary_free(summary *s);

#endif
