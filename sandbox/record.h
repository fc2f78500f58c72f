/* record.h - the result record: what one plugin said about one trace (or one step of it),
 * or why a line could not be read.
 *
 * A record is written once, here, as its JSON line (docs/format.md); every other form (the
 * C accessors of assay.h, CSV, JUnit, the run store) is read from the numbers kept beside
 * that line, which record.c fills from the same values in the same call. A new field is
 * added in record.c, record.h and assay.h's assay_record, and nowhere else.
 */
#ifndef ASSAY_RECORD_H
#define ASSAY_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../host/base/buf.h"

/* Error kinds of docs/format.md, in the order of assay.h's ASSAY_KIND_* values (host.c
 * asserts it). */
typedef enum {
    SANDBOX_OK = 0,
    SANDBOX_ERR_RUNTIME,
    SANDBOX_ERR_TIMEOUT,
    SANDBOX_ERR_MEMORY,
    SANDBOX_ERR_HTTP,
    SANDBOX_ERR_INPUT,
    SANDBOX_ERR_CONFIG,
} sandbox_error_kind;

/* The kind's name in records ("runtime", …). */
const char *sandbox_error_kind_name(sandbox_error_kind kind);

/* What an evaluation came to, as the sandbox hands it over. Strings are borrowed. */
typedef struct record_outcome {
    const char *trace_id;
    const char *evaluator;    /* the plugin's name */
    size_t evaluator_index;   /* its position in the host */
    long step;                /* 0-based step index, -1 for trace scope */
    sandbox_error_kind error; /* SANDBOX_OK: the fields below the error ones count */
    const char *message;      /* error message (may hold NULs: it is JSON-escaped) */
    size_t message_len;
    const char *traceback;    /* may be NULL */
    size_t traceback_len;
    const char *details;      /* details as JSON text; NULL for null */
    size_t details_len;
    const char *label;        /* may be NULL */
    double score;
    bool has_score;
    signed char pass;         /* -1 null, 0 false, 1 true */
    double ms;                /* time in evaluate; NaN: timing is off, "ms" is null */
    long io_calls, tokens_in, tokens_out; /* details.usage, kept as numbers too */
    double cost;              /* NaN without a price */
} record_outcome;

/* One record, as the accessors read it. Strings are owned by the record. */
typedef struct record {
    size_t evaluator;         /* plugin index; SIZE_MAX on an input-error record */
    long step;                /* -1 for trace scope */
    double score;             /* valid when has_score */
    bool has_score;
    signed char pass;         /* -1 null, 0 false, 1 true */
    sandbox_error_kind error;
    double ms;                /* NaN when the JSON line says null */
    char *label;              /* may be NULL */
    char *error_message;      /* may be NULL */
    size_t line_at, line_len; /* its JSON line in the list's jsonl, without the '\n' */
    size_t details_at, details_len; /* its details' JSON there; details_len 0 for null */
    long io_calls, tokens_in, tokens_out; /* as record_outcome */
    double cost;
} record;

/* The records of one trace, in the order they were added. */
typedef struct record_list {
    buf jsonl;                /* the records as JSON lines, each ending in '\n' */
    record *records;
    size_t count, cap;
} record_list;

void record_list_init(record_list *list);
void record_list_free(record_list *list);
/* Empties the list and keeps its memory for the next records. */
void record_list_clear(record_list *list);

/* Moves every record of from to the end of to (their strings change owner; from is left
 * empty but usable). Out of memory: to's jsonl fails, as below. */
void record_list_move(record_list *to, record_list *from);

/* Appends the record of an evaluation. Out of memory shows as a failed jsonl buffer (the
 * caller's buf_failed check) and a record count that did not grow. */
void record_add(record_list *list, const record_outcome *o);

/* Appends an input-error record: "file:line: what", the form editors jump to. source may
 * be NULL (the message then says "line"). */
void record_add_input_error(record_list *list, const char *source, uint64_t line, const char *what);

#endif
