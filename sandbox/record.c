/* record.c - the result record's one writer (see record.h): the JSON line of docs/format.md
 * and, from the same values in the same call, the numbers the accessors, CSV, JUnit and the
 * run store read. Not here: what a plugin's return value means (sandbox.c reads it into a
 * record_outcome) and why a line could not be read (host/worker.c says so in words).
 */
#include "record.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *sandbox_error_kind_name(sandbox_error_kind kind) {
    switch (kind) {
    case SANDBOX_OK: return "ok";
    case SANDBOX_ERR_RUNTIME: return "runtime";
    case SANDBOX_ERR_TIMEOUT: return "timeout";
    case SANDBOX_ERR_MEMORY: return "memory";
    case SANDBOX_ERR_HTTP: return "http";
    case SANDBOX_ERR_INPUT: return "input";
    case SANDBOX_ERR_CONFIG: return "config";
    }
    return "runtime";
}

void record_list_init(record_list *list) { memset(list, 0, sizeof *list); }

void record_list_free(record_list *list) {
    for (size_t i = 0; i < list->count; i++) {
        free(list->records[i].label);
        free(list->records[i].error_message);
    }
    free(list->records);
    buf_free(&list->jsonl);
    record_list_init(list);
}

void record_list_clear(record_list *list) {
    for (size_t i = 0; i < list->count; i++) {
        free(list->records[i].label);
        free(list->records[i].error_message);
    }
    list->count = 0;
    if (buf_failed(&list->jsonl)) buf_free(&list->jsonl); /* out of memory once is not forever */
    else buf_reset(&list->jsonl);
}

void record_list_move(record_list *to, record_list *from) {
    if (!from->count) return;
    size_t base = to->jsonl.len;
    if (to->cap - to->count < from->count) {
        size_t cap = to->count + from->count;
        record *grown = realloc(to->records, cap * sizeof *grown);
        if (!grown) {
            to->jsonl.failed = true;
            return;
        }
        to->records = grown;
        to->cap = cap;
    }
    buf_append(&to->jsonl, from->jsonl.data, from->jsonl.len);
    if (buf_failed(&to->jsonl)) return;
    for (size_t i = 0; i < from->count; i++) {
        record *r = &to->records[to->count++];
        *r = from->records[i];
        r->line_at += base;
        if (r->details_len) r->details_at += base;
    }
    from->count = 0; /* the strings are to's now */
    buf_reset(&from->jsonl);
}

static char *dup_text(const char *s, size_t n) {
    char *copy = malloc(n + 1);
    if (copy) memcpy(copy, s, n), copy[n] = '\0';
    return copy;
}

/* Makes room for one more record; on failure marks the line buffer failed, so that the
 * caller's single buf_failed check sees it, and returns NULL. */
static record *list_grow(record_list *list) {
    if (list->count == list->cap) {
        size_t cap = list->cap ? list->cap * 2 : 8;
        record *grown = realloc(list->records, cap * sizeof *grown);
        if (!grown) {
            list->jsonl.failed = true;
            return NULL;
        }
        list->records = grown;
        list->cap = cap;
    }
    record *r = &list->records[list->count];
    memset(r, 0, sizeof *r);
    r->step = -1;
    r->pass = -1;
    return r;
}

/* Ends the line begun at line_at and counts the record, or takes the line back when a
 * string of the record could not be copied: the line and the numbers never disagree. */
static void list_commit(record_list *list, record *r, size_t line_at, bool copied) {
    buf *b = &list->jsonl;
    buf_putc(b, '\n');
    if (!copied || buf_failed(b)) {
        free(r->label);
        free(r->error_message);
        b->len = line_at;
        b->failed = true;
        return;
    }
    r->line_at = line_at;
    r->line_len = b->len - 1 - line_at;
    list->count++;
}

static void put_error(buf *b, sandbox_error_kind kind, const char *message, size_t len, const char *traceback,
                      size_t traceback_len) {
    buf_lit(b, "{\"kind\":");
    buf_json_cstring(b, sandbox_error_kind_name(kind));
    buf_lit(b, ",\"message\":");
    buf_json_string(b, message ? message : "", message ? len : 0);
    if (traceback && traceback_len) {
        buf_lit(b, ",\"traceback\":");
        buf_json_string(b, traceback, traceback_len);
    }
    buf_putc(b, '}');
}

void record_add(record_list *list, const record_outcome *o) {
    record *r = list_grow(list);
    if (!r) return;
    buf *b = &list->jsonl;
    size_t line_at = b->len;
    bool ok = o->error == SANDBOX_OK, copied = true;
    r->evaluator = o->evaluator_index;
    r->step = o->step < 0 ? -1 : o->step;
    r->error = o->error;
    r->ms = isnan(o->ms) ? NAN : round(o->ms * 1000.0) / 1000.0; /* the line's value, not a finer one */
    r->io_calls = o->io_calls, r->tokens_in = o->tokens_in, r->tokens_out = o->tokens_out, r->cost = o->cost;
    if (ok) {
        r->has_score = o->has_score;
        r->score = o->score;
        r->pass = o->pass < 0 ? -1 : o->pass != 0;
        if (o->label && !(r->label = dup_text(o->label, strlen(o->label)))) copied = false;
    } else if (!(r->error_message = dup_text(o->message ? o->message : "", o->message ? o->message_len : 0))) {
        copied = false;
    }

    /* Literals, joined where the values between are the common null: a trace's records
     * are written at every evaluation, and a strlen per key was a fifth of writing one. */
    buf_lit(b, "{\"trace_id\":");
    buf_json_cstring(b, o->trace_id);
    buf_lit(b, ",\"evaluator\":");
    buf_json_cstring(b, o->evaluator);
    if (r->step < 0) {
        buf_lit(b, ",\"step\":null,\"score\":");
    } else {
        buf_printf(b, ",\"step\":%ld", r->step);
        buf_lit(b, ",\"score\":");
    }
    if (r->has_score) buf_json_number(b, r->score);
    else buf_lit(b, "null");
    if (r->pass < 0 && !r->label) {
        buf_lit(b, ",\"pass\":null,\"label\":null,\"details\":");
    } else {
        buf_lit(b, ",\"pass\":");
        if (r->pass < 0) buf_lit(b, "null");
        else if (r->pass) buf_lit(b, "true");
        else buf_lit(b, "false");
        buf_lit(b, ",\"label\":");
        buf_json_cstring(b, r->label);
        buf_lit(b, ",\"details\":");
    }
    if (ok && o->details && o->details_len) {
        r->details_at = b->len, r->details_len = o->details_len;
        buf_append(b, o->details, o->details_len);
    } else {
        buf_lit(b, "null");
    }
    if (ok) {
        buf_lit(b, ",\"error\":null,\"ms\":");
    } else {
        buf_lit(b, ",\"error\":");
        put_error(b, o->error, o->message, o->message_len, o->traceback, o->traceback_len);
        buf_lit(b, ",\"ms\":");
    }
    buf_json_number(b, r->ms); /* NaN writes null */
    buf_putc(b, '}');
    list_commit(list, r, line_at, copied);
}

void record_add_input_error(record_list *list, const char *source, uint64_t line, const char *what) {
    record *r = list_grow(list);
    if (!r) return;
    char message[512];
    snprintf(message, sizeof message, "%s:%llu: %s", source ? source : "line", (unsigned long long)line, what);
    r->evaluator = SIZE_MAX;
    r->error = SANDBOX_ERR_INPUT;
    r->ms = NAN;
    r->cost = NAN;
    r->error_message = dup_text(message, strlen(message));
    buf *b = &list->jsonl;
    size_t line_at = b->len;
    buf_lit(b, "{\"trace_id\":null,\"evaluator\":null,\"line\":");
    buf_printf(b, "%llu", (unsigned long long)line);
    if (source) {
        buf_lit(b, ",\"file\":");
        buf_json_cstring(b, source);
    }
    buf_lit(b, ",\"error\":");
    put_error(b, SANDBOX_ERR_INPUT, message, strlen(message), NULL, 0);
    buf_putc(b, '}');
    list_commit(list, r, line_at, r->error_message != NULL);
}
