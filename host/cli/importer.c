/* importer.c - the C half of `assay import`: reads the envelope of a log in another
 * format (OTLP/JSON spans, Langfuse exports, LangSmith runs, inspect_ai logs, chat
 * transcripts, provider responses) and hands over one document per trace, which the
 * format's Lua mapper (plugins/importers/FORMAT.lua) turns into an assay trace.
 *
 * What is done here and not in Lua is what every mapper would otherwise repeat and what
 * needs the whole file: framing (JSON lines, or one JSON document), OTLP's typed attribute
 * values and hex or base64 ids, unflattening OpenInference's `a.0.b` keys, grouping spans
 * of one trace spread over several lines (with a bounded number of traces open), merging
 * LangSmith's post/patch pairs, and ordering by time. The document of each format is
 * described in docs/importers.md.
 */
#include "cli.h"
#include "importer.h"
#include "../base/dlapi.h"

#include <cjson/cJSON.h>
#include <sqlite3.h>
#include <zip.h>

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A line longer than this is refused (as by `assay run`). */
#define IMPORTER_MAX_LINE (64u << 20)
/* A document that is not JSON lines is read whole, up to this size. */
#define IMPORTER_MAX_DOCUMENT (1u << 30)

typedef struct open_trace {
    char *id;
    cJSON *spans;           /* array */
    uint64_t first_line, last_line;
    bool has_ended_root;
    bool is_spilled;        /* some of its spans wait in the spill file */
    struct open_trace *next; /* in first-seen order */
} open_trace;

struct importer {
    volatile int *stop;     /* following: set to end it */
    importer_format format;
    importer_config cfg;
    const char *source;     /* the file being read, as shown in messages */
    /* otlp: the traces with spans still to come */
    open_trace *open_head, **open_tail;
    size_t open_count;
    size_t held_count;      /* open traces whose spans are in memory */
    /* beyond max_open held traces, the oldest one's spans go to a temporary SQLite file */
    sqlite3 *spill;
    sqlite3_stmt *spill_put, *spill_get, *spill_drop;
    uint64_t spilled;
    /* langsmith: every run of the input, merged by id */
    cJSON *runs;
    uint64_t documents, problems;
};

static const char *const format_names[] = {
    [IMPORTER_OTLP] = "otlp", [IMPORTER_LANGFUSE] = "langfuse", [IMPORTER_LANGSMITH] = "langsmith",
    [IMPORTER_INSPECT] = "inspect", [IMPORTER_CHAT] = "chat", [IMPORTER_OPENAI_RESPONSES] = "openai-responses",
    [IMPORTER_ANTHROPIC] = "anthropic", [IMPORTER_GEMINI] = "gemini",
};

const char *importer_format_name(importer_format f) { return f < IMPORTER_FORMAT_COUNT ? format_names[f] : "?"; }

int importer_format_parse(const char *name, importer_format *out) {
    for (int i = 0; i < IMPORTER_FORMAT_COUNT; i++)
        if (strcmp(name, format_names[i]) == 0) return *out = (importer_format)i, 0;
    return -1;
}

static void problem(importer *im, uint64_t line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void problem(importer *im, uint64_t line, const char *fmt, ...) {
    char message[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    im->problems++;
    im->cfg.on_problem(im->cfg.ctx, im->source, line, message);
}

/* Hands doc (consumed) to the caller as one JSON line. */
static void emit(importer *im, cJSON *doc, uint64_t line) {
    cJSON_AddItemToObject(doc, "format", cJSON_CreateString(format_names[im->format]));
    cJSON *source = cJSON_AddObjectToObject(doc, "source");
    cJSON_AddStringToObject(source, "file", im->source);
    cJSON_AddNumberToObject(source, "line", (double)line);
    char *text = cJSON_PrintUnformatted(doc);
    cJSON_Delete(doc);
    if (!text) {
        problem(im, line, "out of memory writing a document");
        return;
    }
    im->documents++;
    im->cfg.on_document(im->cfg.ctx, text, strlen(text), im->source, line);
    free(text);
}

/* Sorts the items of array by cmp, keeping the order of items that compare equal (a
 * merge sort): spans that started in the same millisecond stay in the order they came. */
typedef int (*item_cmp)(const cJSON *a, const cJSON *b);

static void merge_sort(cJSON **items, cJSON **scratch, size_t n, item_cmp cmp) {
    if (n < 2) return;
    size_t half = n / 2;
    merge_sort(items, scratch, half, cmp);
    merge_sort(items + half, scratch, n - half, cmp);
    size_t i = 0, j = half, k = 0;
    while (i < half && j < n) scratch[k++] = cmp(items[j], items[i]) < 0 ? items[j++] : items[i++];
    while (i < half) scratch[k++] = items[i++];
    while (j < n) scratch[k++] = items[j++];
    memcpy(items, scratch, n * sizeof *items);
}

static void sort_items(cJSON *array, item_cmp cmp) {
    size_t n = (size_t)cJSON_GetArraySize(array);
    if (n < 2) return;
    cJSON **items = malloc(2 * n * sizeof *items);
    if (!items) return; /* left in arrival order */
    size_t i = 0;
    for (cJSON *c = array->child; c; c = c->next) items[i++] = c;
    merge_sort(items, items + n, n, cmp);
    for (i = 0; i < n; i++) {
        items[i]->prev = i ? items[i - 1] : items[n - 1];
        items[i]->next = i + 1 < n ? items[i + 1] : NULL;
    }
    array->child = items[0];
    free(items);
}

static double number_or_inf(const cJSON *object, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(object, key);
    return cJSON_IsNumber(v) ? v->valuedouble : INFINITY;
}

static int compare_start_ms(const cJSON *a, const cJSON *b) {
    double x = number_or_inf(a, "start_ms"), y = number_or_inf(b, "start_ms");
    return (x > y) - (x < y);
}

/* ------------------------------------------------------------------------- otlp */

static bool is_hex(const char *s) {
    for (; *s; s++)
        if (!isxdigit((unsigned char)*s)) return false;
    return true;
}

/* An OTLP id as lowercase hex: OTLP/JSON writes hex, some exporters base64 (the protobuf
 * JSON mapping of bytes). NULL when it is neither. */
static char *id_hex(const cJSON *id) {
    if (!cJSON_IsString(id) || !*id->valuestring) return NULL;
    const char *s = id->valuestring;
    size_t n = strlen(s);
    char *out = malloc(2 * n + 1);
    if (!out) return NULL;
    if (is_hex(s) && (n == 32 || n == 16)) {
        for (size_t i = 0; i <= n; i++) out[i] = (char)tolower((unsigned char)s[i]);
        return out;
    }
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    unsigned bits = 0, value = 0;
    size_t k = 0;
    for (; *s && *s != '='; s++) {
        const char *p = strchr(alphabet, *s == '-' ? '+' : *s == '_' ? '/' : *s);
        if (!p || !*s) {
            free(out);
            return NULL;
        }
        value = (value << 6) | (unsigned)(p - alphabet);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            k += (size_t)sprintf(out + k, "%02x", (value >> bits) & 0xFF);
        }
    }
    if (k != 32 && k != 16) {
        free(out);
        return NULL;
    }
    return out;
}

/* Unix nanoseconds (a string in OTLP/JSON, a number from some exporters) as milliseconds. */
static double time_ms(const cJSON *t) {
    if (cJSON_IsString(t)) return strtod(t->valuestring, NULL) / 1e6;
    if (cJSON_IsNumber(t)) return t->valuedouble / 1e6;
    return NAN;
}

static cJSON *any_value(importer *im, const cJSON *v, const char *span, const char *key, uint64_t line);

/* OTLP's list of {key, value} as an object. Keys with numeric segments (OpenInference's
 * flattened lists, "llm.input_messages.0.message.role") become lists of objects. */
static void set_flattened(cJSON *object, const char *key, cJSON *value) {
    const char *p = key;
    for (;;) { /* find ".N." or a trailing ".N" */
        const char *dot = strchr(p, '.');
        if (!dot) break;
        const char *q = dot + 1;
        size_t digits = strspn(q, "0123456789");
        if (digits && (q[digits] == '.' || q[digits] == '\0') && digits < 7) {
            char *prefix = strndup(key, (size_t)(dot - key));
            int index = atoi(q);
            const char *rest = q[digits] ? q + digits + 1 : NULL;
            cJSON *list = cJSON_GetObjectItemCaseSensitive(object, prefix);
            if (!cJSON_IsArray(list)) {
                if (list) cJSON_DeleteItemFromObjectCaseSensitive(object, prefix);
                list = cJSON_AddArrayToObject(object, prefix);
            }
            free(prefix);
            while (cJSON_GetArraySize(list) <= index) cJSON_AddItemToArray(list, rest ? cJSON_CreateObject() : cJSON_CreateNull());
            if (!rest) {
                cJSON_ReplaceItemInArray(list, index, value);
                return;
            }
            cJSON *slot = cJSON_GetArrayItem(list, index);
            if (!cJSON_IsObject(slot)) {
                slot = cJSON_CreateObject();
                cJSON_ReplaceItemInArray(list, index, slot);
            }
            set_flattened(slot, rest, value);
            return;
        }
        p = q;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(object, key); /* a repeated key: the last wins */
    cJSON_AddItemToObject(object, key, value);
}

static cJSON *key_values(importer *im, const cJSON *list, const char *span, uint64_t line) {
    cJSON *object = cJSON_CreateObject();
    const cJSON *kv;
    cJSON_ArrayForEach(kv, list) {
        const cJSON *key = cJSON_GetObjectItemCaseSensitive(kv, "key");
        if (!cJSON_IsString(key)) {
            problem(im, line, "span %s: an attribute without a key; skipped", span);
            continue;
        }
        cJSON *value = any_value(im, cJSON_GetObjectItemCaseSensitive(kv, "value"), span, key->valuestring, line);
        set_flattened(object, key->valuestring, value);
    }
    return object;
}

/* An OTLP AnyValue as plain JSON. */
static cJSON *any_value(importer *im, const cJSON *v, const char *span, const char *key, uint64_t line) {
    if (!cJSON_IsObject(v) || !v->child) return cJSON_CreateNull();
    const cJSON *x = v->child;
    const char *type = x->string ? x->string : "";
    if (strcmp(type, "stringValue") == 0 && cJSON_IsString(x)) return cJSON_CreateString(x->valuestring);
    if (strcmp(type, "boolValue") == 0) return cJSON_CreateBool(cJSON_IsTrue(x));
    if (strcmp(type, "intValue") == 0 || strcmp(type, "doubleValue") == 0) {
        if (cJSON_IsNumber(x)) return cJSON_CreateNumber(x->valuedouble);
        if (cJSON_IsString(x)) return cJSON_CreateNumber(strtod(x->valuestring, NULL)); /* int64 as a string */
    }
    if (strcmp(type, "bytesValue") == 0 && cJSON_IsString(x)) return cJSON_CreateString(x->valuestring);
    if (strcmp(type, "arrayValue") == 0) {
        cJSON *out = cJSON_CreateArray();
        const cJSON *item;
        cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(x, "values")) cJSON_AddItemToArray(out, any_value(im, item, span, key, line));
        return out;
    }
    if (strcmp(type, "kvlistValue") == 0) return key_values(im, cJSON_GetObjectItemCaseSensitive(x, "values"), span, line);
    problem(im, line, "span %s: attribute %s has a value of unknown type '%s'; kept as null", span, key, type);
    return cJSON_CreateNull();
}

static open_trace *find_open(importer *im, const char *id) {
    for (open_trace *t = im->open_head; t; t = t->next)
        if (strcmp(t->id, id) == 0) return t;
    return NULL;
}

/* Puts the spans of t that wait in the spill file back before the ones in memory. */
static void unspill(importer *im, open_trace *t) {
    cJSON *all = cJSON_CreateArray();
    sqlite3_bind_text(im->spill_get, 1, t->id, -1, SQLITE_STATIC);
    while (sqlite3_step(im->spill_get) == SQLITE_ROW) {
        cJSON *span = cJSON_Parse((const char *)sqlite3_column_text(im->spill_get, 0));
        if (span) cJSON_AddItemToArray(all, span);
    }
    sqlite3_reset(im->spill_get);
    sqlite3_bind_text(im->spill_drop, 1, t->id, -1, SQLITE_STATIC);
    sqlite3_step(im->spill_drop);
    sqlite3_reset(im->spill_drop);
    while (t->spans->child) cJSON_AddItemToArray(all, cJSON_DetachItemViaPointer(t->spans, t->spans->child));
    cJSON_Delete(t->spans);
    t->spans = all;
}

static void emit_trace(importer *im, open_trace *t) {
    if (t->spans->child) im->held_count--;
    if (t->is_spilled) unspill(im, t);
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "id", t->id);
    sort_items(t->spans, compare_start_ms);
    cJSON_AddItemToObject(doc, "spans", t->spans);
    if (!t->has_ended_root) problem(im, t->first_line, "trace %s: no root span (a span without parentSpanId) came; imported as it is", t->id);
    emit(im, doc, t->first_line);
    free(t->id);
    free(t);
}

static bool spill_open(importer *im) {
    if (im->spill) return true;
    /* "": a private temporary file that SQLite removes when it is closed */
    if (sqlite3_open("", &im->spill) != SQLITE_OK ||
        sqlite3_exec(im->spill, "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;"
                                "CREATE TABLE spans(trace TEXT NOT NULL, span TEXT NOT NULL);"
                                "CREATE INDEX spans_trace ON spans(trace);", NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(im->spill, "INSERT INTO spans VALUES(?1, ?2)", -1, &im->spill_put, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(im->spill, "SELECT span FROM spans WHERE trace = ?1 ORDER BY rowid", -1, &im->spill_get, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(im->spill, "DELETE FROM spans WHERE trace = ?1", -1, &im->spill_drop, NULL) != SQLITE_OK) {
        problem(im, 1, "cannot open a temporary file for traces spread far apart: %s",
                im->spill ? sqlite3_errmsg(im->spill) : "out of memory");
        return false;
    }
    return true;
}

/* Moves the spans of the oldest trace held in memory to the spill file; false when there
 * is no spill file (the trace is then imported as it is). */
static bool spill_oldest(importer *im) {
    open_trace *t = im->open_head;
    while (t && !t->spans->child) t = t->next;
    if (!t || !spill_open(im)) return false;
    sqlite3_exec(im->spill, "BEGIN", NULL, NULL, NULL);
    for (cJSON *span = t->spans->child; span; span = span->next) {
        char *text = cJSON_PrintUnformatted(span);
        sqlite3_bind_text(im->spill_put, 1, t->id, -1, SQLITE_STATIC);
        sqlite3_bind_text(im->spill_put, 2, text ? text : "null", -1, SQLITE_TRANSIENT);
        sqlite3_step(im->spill_put);
        sqlite3_reset(im->spill_put);
        free(text);
    }
    sqlite3_exec(im->spill, "COMMIT", NULL, NULL, NULL);
    cJSON_Delete(t->spans);
    t->spans = cJSON_CreateArray();
    if (!t->is_spilled) im->spilled++;
    t->is_spilled = true;
    im->held_count--;
    return true;
}

/* Emits the traces that are done: their root has ended and no span of theirs came in the
 * last quiet_lines lines; or, at the end (all), every one. Beyond max_open traces held in
 * memory the oldest one's spans are spilled to a temporary file (or, when that cannot be
 * made, the oldest trace goes out as it is). */
static void flush_open(importer *im, uint64_t line, bool all) {
    while (!all && im->held_count > im->cfg.max_open && spill_oldest(im)) {}
    for (open_trace **p = &im->open_head; *p;) {
        open_trace *t = *p;
        bool done = all || (t->has_ended_root && line - t->last_line >= im->cfg.quiet_lines) ||
                    (im->held_count > im->cfg.max_open && t == im->open_head);
        if (!done) {
            p = &t->next;
            continue;
        }
        *p = t->next;
        im->open_count--;
        if (!all && !t->has_ended_root)
            problem(im, t->first_line, "trace %s: more than %zu traces open at once; imported before its root span came",
                    t->id, im->cfg.max_open);
        emit_trace(im, t);
    }
    im->open_tail = &im->open_head;
    while (*im->open_tail) im->open_tail = &(*im->open_tail)->next;
}

static cJSON *otlp_span(importer *im, const cJSON *s, const cJSON *resource, const cJSON *scope, uint64_t line,
                        char **trace_id) {
    char *span_id = id_hex(cJSON_GetObjectItemCaseSensitive(s, "spanId"));
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(s, "name");
    const char *shown = cJSON_IsString(name) ? name->valuestring : "?";
    *trace_id = id_hex(cJSON_GetObjectItemCaseSensitive(s, "traceId"));
    if (!*trace_id || !span_id) {
        problem(im, line, "span '%s': %s is missing or neither hex nor base64; skipped", shown,
                *trace_id ? "spanId" : "traceId");
        free(span_id), free(*trace_id);
        *trace_id = NULL;
        return NULL;
    }
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "span_id", span_id);
    char *parent = id_hex(cJSON_GetObjectItemCaseSensitive(s, "parentSpanId"));
    if (parent) cJSON_AddStringToObject(out, "parent_span_id", parent);
    free(parent);
    cJSON_AddStringToObject(out, "name", shown);
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(s, "kind");
    if (kind) cJSON_AddItemToObject(out, "kind", cJSON_Duplicate(kind, 1));
    double start = time_ms(cJSON_GetObjectItemCaseSensitive(s, "startTimeUnixNano"));
    double end = time_ms(cJSON_GetObjectItemCaseSensitive(s, "endTimeUnixNano"));
    cJSON_AddItemToObject(out, "start_ms", isnan(start) ? cJSON_CreateNull() : cJSON_CreateNumber(start));
    cJSON_AddItemToObject(out, "end_ms", isnan(end) ? cJSON_CreateNull() : cJSON_CreateNumber(end));
    const cJSON *status = cJSON_GetObjectItemCaseSensitive(s, "status");
    if (cJSON_IsObject(status)) {
        cJSON *st = cJSON_AddObjectToObject(out, "status");
        const cJSON *code = cJSON_GetObjectItemCaseSensitive(status, "code");
        /* 2 or "STATUS_CODE_ERROR" */
        bool is_error = (cJSON_IsNumber(code) && code->valueint == 2) ||
                        (cJSON_IsString(code) && strstr(code->valuestring, "ERROR"));
        cJSON_AddStringToObject(st, "code", is_error ? "error" : cJSON_IsNumber(code) && code->valueint == 1 ? "ok" : "unset");
        const cJSON *message = cJSON_GetObjectItemCaseSensitive(status, "message");
        if (cJSON_IsString(message)) cJSON_AddStringToObject(st, "message", message->valuestring);
    }
    char label[64];
    snprintf(label, sizeof label, "%.32s (%s)", shown, span_id);
    cJSON_AddItemToObject(out, "attributes", key_values(im, cJSON_GetObjectItemCaseSensitive(s, "attributes"), label, line));
    cJSON *events = cJSON_AddArrayToObject(out, "events");
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(s, "events")) {
        cJSON *ev = cJSON_CreateObject();
        const cJSON *en = cJSON_GetObjectItemCaseSensitive(e, "name");
        cJSON_AddStringToObject(ev, "name", cJSON_IsString(en) ? en->valuestring : "");
        double t = time_ms(cJSON_GetObjectItemCaseSensitive(e, "timeUnixNano"));
        cJSON_AddItemToObject(ev, "time_ms", isnan(t) ? cJSON_CreateNull() : cJSON_CreateNumber(t));
        cJSON_AddItemToObject(ev, "attributes", key_values(im, cJSON_GetObjectItemCaseSensitive(e, "attributes"), label, line));
        cJSON_AddItemToArray(events, ev);
    }
    cJSON_AddItemToObject(out, "resource", cJSON_Duplicate(resource, 1));
    if (scope) cJSON_AddItemToObject(out, "scope", cJSON_Duplicate(scope, 1));
    free(span_id);
    return out;
}

static void otlp_add_span(importer *im, cJSON *span, char *trace_id, uint64_t line) {
    open_trace *t = find_open(im, trace_id);
    if (!t) {
        t = calloc(1, sizeof *t);
        if (!t || !(t->spans = cJSON_CreateArray())) {
            free(t), free(trace_id), cJSON_Delete(span);
            problem(im, line, "out of memory");
            return;
        }
        t->id = trace_id;
        t->first_line = line;
        *im->open_tail = t;
        im->open_tail = &t->next;
        im->open_count++;
    } else {
        free(trace_id);
    }
    if (!cJSON_GetObjectItemCaseSensitive(span, "parent_span_id")) t->has_ended_root = true;
    t->last_line = line;
    if (!t->spans->child) im->held_count++;
    cJSON_AddItemToArray(t->spans, span);
}

static void otlp_value(importer *im, const cJSON *v, uint64_t line) {
    const cJSON *batches = cJSON_GetObjectItemCaseSensitive(v, "resourceSpans");
    if (!cJSON_IsArray(batches)) {
        problem(im, line, "no \"resourceSpans\" list: not an OTLP/JSON trace export; skipped");
        return;
    }
    const cJSON *batch;
    cJSON_ArrayForEach(batch, batches) {
        const cJSON *resource = cJSON_GetObjectItemCaseSensitive(batch, "resource");
        cJSON *attrs = key_values(im, cJSON_GetObjectItemCaseSensitive(resource, "attributes"), "(resource)", line);
        const cJSON *scopes = cJSON_GetObjectItemCaseSensitive(batch, "scopeSpans");
        if (!scopes) scopes = cJSON_GetObjectItemCaseSensitive(batch, "instrumentationLibrarySpans");
        const cJSON *scope_spans;
        cJSON_ArrayForEach(scope_spans, scopes) {
            const cJSON *scope = cJSON_GetObjectItemCaseSensitive(scope_spans, "scope");
            if (!scope) scope = cJSON_GetObjectItemCaseSensitive(scope_spans, "instrumentationLibrary");
            const cJSON *s;
            cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(scope_spans, "spans")) {
                char *trace_id;
                cJSON *span = otlp_span(im, s, attrs, scope, line, &trace_id);
                if (span) otlp_add_span(im, span, trace_id, line);
            }
        }
        cJSON_Delete(attrs);
    }
    flush_open(im, line, false);
}

/* ----------------------------------------------------------- the other formats */

static const char *string_or(const cJSON *object, const char *key, const char *fallback) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(object, key);
    return cJSON_IsString(v) && *v->valuestring ? v->valuestring : fallback;
}

/* A document id for formats whose items may have none: file:line, or file:line:n. */
static cJSON *fallback_id(importer *im, uint64_t line, int n) {
    char id[512];
    if (n < 0) snprintf(id, sizeof id, "%s:%llu", im->source, (unsigned long long)line);
    else snprintf(id, sizeof id, "%s:%llu:%d", im->source, (unsigned long long)line, n);
    return cJSON_CreateString(id);
}

static int compare_start_time(const cJSON *a, const cJSON *b) {
    return strcmp(string_or(a, "startTime", ""), string_or(b, "startTime", "")); /* ISO 8601, one zone */
}

static void langfuse_value(importer *im, cJSON *v, uint64_t line) {
    if (cJSON_IsArray(v)) {
        for (cJSON *item = v->child; item; item = item->next) langfuse_value(im, item, line);
        return;
    }
    const cJSON *trace = cJSON_GetObjectItemCaseSensitive(v, "trace");
    cJSON *observations = cJSON_GetObjectItemCaseSensitive(v, "observations");
    const char *id = string_or(trace, "id", NULL);
    if (!id || !cJSON_IsArray(observations)) {
        problem(im, line, "not a Langfuse export {trace: {id, ...}, observations: [...]}: %s; skipped",
                id ? "no observations list" : "no trace.id");
        return;
    }
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "id", id);
    cJSON_AddItemToObject(doc, "trace", cJSON_Duplicate(trace, 1));
    cJSON *obs = cJSON_Duplicate(observations, 1);
    sort_items(obs, compare_start_time);
    cJSON_AddItemToObject(doc, "observations", obs);
    emit(im, doc, line);
}

/* LangSmith: runs arrive as creates (post) and completions (patch) with the same id. */
static void langsmith_add_run(importer *im, const cJSON *run, uint64_t line) {
    const char *id = string_or(run, "id", NULL);
    if (!id) {
        problem(im, line, "a LangSmith run without an id; skipped");
        return;
    }
    cJSON *known = cJSON_GetObjectItemCaseSensitive(im->runs, id);
    if (!known) {
        known = cJSON_AddObjectToObject(im->runs, id);
        cJSON_AddNumberToObject(known, "_line", (double)line);
    }
    for (const cJSON *f = run->child; f; f = f->next) {
        if (cJSON_IsNull(f)) continue; /* a patch does not erase what the post said */
        cJSON_DeleteItemFromObjectCaseSensitive(known, f->string);
        cJSON_AddItemToObject(known, f->string, cJSON_Duplicate(f, 1));
    }
}

static void langsmith_value(importer *im, const cJSON *v, uint64_t line) {
    const cJSON *post = cJSON_GetObjectItemCaseSensitive(v, "post");
    const cJSON *patch = cJSON_GetObjectItemCaseSensitive(v, "patch");
    const cJSON *run;
    if (cJSON_IsArray(v)) {
        cJSON_ArrayForEach(run, v) langsmith_add_run(im, run, line);
    } else if (post || patch) {
        cJSON_ArrayForEach(run, post) langsmith_add_run(im, run, line);
        cJSON_ArrayForEach(run, patch) langsmith_add_run(im, run, line);
    } else if (cJSON_IsObject(v)) {
        langsmith_add_run(im, v, line);
    }
}

static int compare_dotted(const cJSON *a, const cJSON *b) {
    return strcmp(string_or(a, "dotted_order", ""), string_or(b, "dotted_order", ""));
}

static void langsmith_end(importer *im) {
    /* group by trace: trace_id, or the root's id (the first segment of dotted_order) */
    cJSON *traces = cJSON_CreateObject();
    cJSON *order = cJSON_CreateArray();
    for (cJSON *run = im->runs->child; run; run = run->next) {
        const char *trace = string_or(run, "trace_id", string_or(run, "id", "?"));
        cJSON *runs = cJSON_GetObjectItemCaseSensitive(traces, trace);
        if (!runs) {
            runs = cJSON_AddArrayToObject(traces, trace);
            cJSON_AddItemToArray(order, cJSON_CreateString(trace));
        }
        cJSON_AddItemToArray(runs, cJSON_Duplicate(run, 1));
    }
    const cJSON *name;
    cJSON_ArrayForEach(name, order) {
        cJSON *runs = cJSON_DetachItemFromObjectCaseSensitive(traces, name->valuestring);
        sort_items(runs, compare_dotted);
        uint64_t line = (uint64_t)cJSON_GetObjectItemCaseSensitive(runs->child, "_line")->valuedouble;
        for (cJSON *r = runs->child; r; r = r->next) cJSON_DeleteItemFromObjectCaseSensitive(r, "_line");
        cJSON *doc = cJSON_CreateObject();
        cJSON_AddStringToObject(doc, "id", name->valuestring);
        cJSON_AddItemToObject(doc, "runs", runs);
        emit(im, doc, line);
    }
    cJSON_Delete(order);
    cJSON_Delete(traces);
}

/* One inspect_ai sample (× epoch) as a document: id "task:sample:epoch". */
static void inspect_sample(importer *im, const cJSON *eval, const cJSON *results, const cJSON *sample, uint64_t line) {
    cJSON *doc = cJSON_CreateObject();
    const cJSON *sid = cJSON_GetObjectItemCaseSensitive(sample, "id");
    const cJSON *epoch = cJSON_GetObjectItemCaseSensitive(sample, "epoch");
    char sid_text[128], id[512];
    if (cJSON_IsString(sid)) snprintf(sid_text, sizeof sid_text, "%s", sid->valuestring);
    else snprintf(sid_text, sizeof sid_text, "%g", cJSON_IsNumber(sid) ? sid->valuedouble : 0.0);
    snprintf(id, sizeof id, "%s:%s:%d", string_or(eval, "task", "task"), sid_text,
             cJSON_IsNumber(epoch) ? epoch->valueint : 1);
    cJSON_AddStringToObject(doc, "id", id);
    cJSON_AddItemToObject(doc, "eval", cJSON_Duplicate(eval, 1));
    if (results) cJSON_AddItemToObject(doc, "results", cJSON_Duplicate(results, 1));
    cJSON_AddItemToObject(doc, "sample", cJSON_Duplicate(sample, 1));
    emit(im, doc, line);
}

static void inspect_value(importer *im, const cJSON *v, uint64_t line) {
    const cJSON *eval = cJSON_GetObjectItemCaseSensitive(v, "eval");
    const cJSON *samples = cJSON_GetObjectItemCaseSensitive(v, "samples");
    if (!cJSON_IsObject(eval)) {
        problem(im, line, "not an inspect_ai log (no \"eval\" object); skipped");
        return;
    }
    if (!cJSON_IsArray(samples) || !samples->child) {
        problem(im, line, "the inspect_ai log has no samples (status %s); nothing to import", string_or(v, "status", "?"));
        return;
    }
    const cJSON *sample;
    cJSON_ArrayForEach(sample, samples) inspect_sample(im, eval, cJSON_GetObjectItemCaseSensitive(v, "results"), sample, line);
}

/* libzip's functions, opened at the first .eval zip (base/dlapi.h: linked, the library and
 * the libcrypto it brings cost every start of the program 2.3 ms). */
static struct {
    zip_t *(*open)(const char *path, int flags, int *error);
    int (*close)(zip_t *z);
    void (*error_init_with_code)(zip_error_t *e, int code);
    const char *(*error_strerror)(zip_error_t *e);
    void (*error_fini)(zip_error_t *e);
    zip_int64_t (*name_locate)(zip_t *z, const char *name, zip_flags_t flags);
    zip_int64_t (*get_num_entries)(zip_t *z, zip_flags_t flags);
    const char *(*get_name)(zip_t *z, zip_uint64_t index, zip_flags_t flags);
    int (*stat_index)(zip_t *z, zip_uint64_t index, zip_flags_t flags, zip_stat_t *st);
    zip_file_t *(*fopen_index)(zip_t *z, zip_uint64_t index, zip_flags_t flags);
    zip_int64_t (*fread)(zip_file_t *f, void *to, zip_uint64_t n);
    int (*fclose)(zip_file_t *f);
} zipfn;

/* Opens libzip once; false with why in err. The command is single-threaded. */
static bool zipfn_load(char *err, size_t errlen) {
    static int state; /* 0: not tried, 1: loaded, -1: failed (err kept in why) */
    static char why[512];
    if (state == 0) {
        static const char *const sonames[] = {"libzip.so.4", "libzip.so.5"};
        const dlapi_symbol symbols[] = {
            DLAPI_SYMBOL("zip_open", zipfn.open),
            DLAPI_SYMBOL("zip_close", zipfn.close),
            DLAPI_SYMBOL("zip_error_init_with_code", zipfn.error_init_with_code),
            DLAPI_SYMBOL("zip_error_strerror", zipfn.error_strerror),
            DLAPI_SYMBOL("zip_error_fini", zipfn.error_fini),
            DLAPI_SYMBOL("zip_name_locate", zipfn.name_locate),
            DLAPI_SYMBOL("zip_get_num_entries", zipfn.get_num_entries),
            DLAPI_SYMBOL("zip_get_name", zipfn.get_name),
            DLAPI_SYMBOL("zip_stat_index", zipfn.stat_index),
            DLAPI_SYMBOL("zip_fopen_index", zipfn.fopen_index),
            DLAPI_SYMBOL("zip_fread", zipfn.fread),
            DLAPI_SYMBOL("zip_fclose", zipfn.fclose),
        };
        state = dlapi_open("libzip", "libzip4", sonames, sizeof sonames / sizeof *sonames, symbols,
                           sizeof symbols / sizeof *symbols, why, sizeof why) ? 1 : -1;
    }
    if (state < 0) snprintf(err, errlen, "%s", why);
    return state > 0;
}

/* A member of a zip as parsed JSON; NULL (reported) when it is missing or broken. */
static cJSON *zip_json(importer *im, zip_t *z, zip_int64_t index, const char *name) {
    zip_stat_t st;
    if (zipfn.stat_index(z, (zip_uint64_t)index, 0, &st) != 0 || st.size > IMPORTER_MAX_DOCUMENT) {
        problem(im, 1, "%s: cannot read it from the zip", name);
        return NULL;
    }
    char *text = malloc(st.size + 1);
    zip_file_t *f = text ? zipfn.fopen_index(z, (zip_uint64_t)index, 0) : NULL;
    zip_int64_t n = f ? zipfn.fread(f, text, st.size) : -1;
    if (f) zipfn.fclose(f);
    cJSON *v = n == (zip_int64_t)st.size ? cJSON_ParseWithLength(text, st.size) : NULL;
    if (!v) problem(im, 1, "%s: %s", name, n == (zip_int64_t)st.size ? "not valid JSON" : "cannot read it from the zip (truncated?)");
    free(text);
    return v;
}

static int compare_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int importer_feed_eval_zip(importer *im, const char *path) {
    im->source = path;
    char why[512];
    if (!zipfn_load(why, sizeof why)) {
        problem(im, 1, "cannot read inspect_ai .eval zips: %s", why);
        return 0;
    }
    int error = 0;
    zip_t *z = zipfn.open(path, ZIP_RDONLY, &error);
    if (!z) {
        zip_error_t e;
        zipfn.error_init_with_code(&e, error);
        problem(im, 1, "not a readable inspect_ai .eval zip: %s", zipfn.error_strerror(&e));
        zipfn.error_fini(&e);
        return 0;
    }
    zip_int64_t header_at = zipfn.name_locate(z, "header.json", 0);
    cJSON *header = header_at >= 0 ? zip_json(im, z, header_at, "header.json") : NULL;
    const cJSON *eval = cJSON_GetObjectItemCaseSensitive(header, "eval");
    if (!cJSON_IsObject(eval)) {
        if (header_at < 0) problem(im, 1, "no header.json: not an inspect_ai .eval log");
        else if (header) problem(im, 1, "header.json has no \"eval\" object");
        cJSON_Delete(header);
        zipfn.close(z);
        return 0;
    }
    /* samples/<id>_epoch_<n>.json, in name order */
    zip_int64_t count = zipfn.get_num_entries(z, 0);
    char **names = calloc(count > 0 ? (size_t)count : 1, sizeof *names);
    size_t n = 0;
    for (zip_int64_t i = 0; names && i < count; i++) {
        const char *name = zipfn.get_name(z, (zip_uint64_t)i, 0);
        size_t len = name ? strlen(name) : 0;
        if (len > 13 && strncmp(name, "samples/", 8) == 0 && strcmp(name + len - 5, ".json") == 0) names[n++] = strdup(name);
    }
    qsort(names, n, sizeof *names, compare_names);
    if (n == 0) problem(im, 1, "the .eval log has no samples/*.json; nothing to import");
    for (size_t i = 0; i < n; i++) {
        cJSON *sample = names[i] ? zip_json(im, z, zipfn.name_locate(z, names[i], 0), names[i]) : NULL;
        if (sample) inspect_sample(im, eval, cJSON_GetObjectItemCaseSensitive(header, "results"), sample, i + 1);
        cJSON_Delete(sample);
        free(names[i]);
    }
    free(names);
    cJSON_Delete(header);
    zipfn.close(z);
    return 0;
}

static void chat_value(importer *im, const cJSON *v, uint64_t line) {
    const cJSON *messages = cJSON_IsArray(v) ? v : cJSON_GetObjectItemCaseSensitive(v, "messages");
    if (!cJSON_IsArray(messages) || !cJSON_IsObject(messages->child) ||
        !cJSON_GetObjectItemCaseSensitive(messages->child, "role")) {
        problem(im, line, "not a chat transcript (a list of {role, content} messages, or {messages: [...]}); skipped");
        return;
    }
    cJSON *doc = cJSON_CreateObject();
    const char *id = cJSON_IsObject(v) ? string_or(v, "id", NULL) : NULL;
    cJSON_AddItemToObject(doc, "id", id ? cJSON_CreateString(id) : fallback_id(im, line, -1));
    cJSON_AddItemToObject(doc, "messages", cJSON_Duplicate(messages, 1));
    if (cJSON_IsObject(v)) {
        const cJSON *metadata = cJSON_GetObjectItemCaseSensitive(v, "metadata");
        if (cJSON_IsObject(metadata)) cJSON_AddItemToObject(doc, "metadata", cJSON_Duplicate(metadata, 1));
    }
    emit(im, doc, line);
}

/* A provider's response, alone or as {request, response}. */
static void response_value(importer *im, const cJSON *v, uint64_t line) {
    if (!cJSON_IsObject(v)) {
        problem(im, line, "not a %s response object; skipped", format_names[im->format]);
        return;
    }
    const cJSON *response = cJSON_GetObjectItemCaseSensitive(v, "response");
    const cJSON *request = cJSON_GetObjectItemCaseSensitive(v, "request");
    if (!cJSON_IsObject(response)) response = v, request = NULL;
    cJSON *doc = cJSON_CreateObject();
    const char *id = string_or(v, "id", string_or(response, "id", string_or(response, "responseId", NULL)));
    cJSON_AddItemToObject(doc, "id", id ? cJSON_CreateString(id) : fallback_id(im, line, -1));
    cJSON_AddItemToObject(doc, "response", cJSON_Duplicate(response, 1));
    if (request) cJSON_AddItemToObject(doc, "request", cJSON_Duplicate(request, 1));
    emit(im, doc, line);
}

/* --------------------------------------------------------------------- framing */

static void on_value(importer *im, cJSON *v, uint64_t line) {
    switch (im->format) {
    case IMPORTER_OTLP: otlp_value(im, v, line); break;
    case IMPORTER_LANGFUSE: langfuse_value(im, v, line); break;
    case IMPORTER_LANGSMITH: langsmith_value(im, v, line); break;
    case IMPORTER_INSPECT: inspect_value(im, v, line); break;
    case IMPORTER_CHAT: chat_value(im, v, line); break;
    default:
        if (cJSON_IsArray(v) && im->format != IMPORTER_CHAT) {
            for (cJSON *item = v->child; item; item = item->next) response_value(im, item, line);
        } else {
            response_value(im, v, line);
        }
    }
}

void importer_follow(importer *im, volatile int *stop) { im->stop = stop; }

importer *importer_new(importer_format format, const importer_config *cfg) {
    importer *im = calloc(1, sizeof *im);
    if (!im) return NULL;
    im->format = format;
    im->cfg = *cfg;
    if (!im->cfg.quiet_lines) im->cfg.quiet_lines = 1000;
    if (!im->cfg.max_open) im->cfg.max_open = 10000;
    im->open_tail = &im->open_head;
    if (!(im->runs = cJSON_CreateObject())) {
        free(im);
        return NULL;
    }
    return im;
}

/* Reads the whole stream into text (the first line already read); false past the cap. */
static bool read_rest(FILE *f, buf *text) {
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        buf_append(text, chunk, n);
        if (text->len > IMPORTER_MAX_DOCUMENT) return false;
    }
    return !ferror(f) && !buf_failed(text);
}

int importer_feed(importer *im, FILE *f, const char *source) {
    im->source = source;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    uint64_t line_no = 0;
    bool is_lines = true;
    for (;;) {
        n = getline(&line, &cap, f);
        bool is_partial = n > 0 && line[n - 1] != '\n';
        if (n == -1 || (is_partial && im->stop)) {
            if (ferror(f) || !im->stop || *im->stop) break;
            if (is_partial) fseeko(f, -(off_t)n, SEEK_CUR); /* a line still being written */
            clearerr(f);
            /* following and idle: the traces whose root came are complete */
            flush_open(im, line_no + im->cfg.quiet_lines, false);
            if (im->cfg.on_idle) im->cfg.on_idle(im->cfg.ctx);
            struct timespec pause = {0, 200 * 1000000L};
            nanosleep(&pause, NULL);
            continue;
        }
        line_no++;
        size_t len = (size_t)n;
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r' || line[len - 1] == ' ')) len--;
        if (len == 0) continue;
        if (len > IMPORTER_MAX_LINE) {
            problem(im, line_no, "longer than %u MiB; skipped", IMPORTER_MAX_LINE >> 20);
            continue;
        }
        const char *end = NULL;
        cJSON *v = cJSON_ParseWithLengthOpts(line, len, &end, 0);
        if (!v && is_lines && line_no == 1 && (line[0] == '{' || line[0] == '[')) {
            /* not JSON lines: one (pretty-printed) document */
            buf text;
            buf_init(&text);
            buf_append(&text, line, (size_t)n);
            if (!read_rest(f, &text)) {
                problem(im, 1, "cannot read the document whole (larger than %u MiB, or a read error)",
                        IMPORTER_MAX_DOCUMENT >> 20);
                buf_free(&text);
                break;
            }
            is_lines = false;
            v = cJSON_ParseWithLengthOpts(text.data, text.len, &end, 0);
            if (!v) {
                size_t at = end ? (size_t)(end - text.data) : 0;
                uint64_t bad_line = 1;
                for (size_t i = 0; i < at && i < text.len; i++) bad_line += text.data[i] == '\n';
                problem(im, bad_line, "not valid JSON (neither JSON lines nor one JSON document)");
            } else {
                on_value(im, v, 1);
                cJSON_Delete(v);
            }
            buf_free(&text);
            break;
        }
        if (!v) {
            problem(im, line_no, "not valid JSON (error at byte %zu); skipped", end ? (size_t)(end - line) + 1 : 1);
            continue;
        }
        on_value(im, v, line_no);
        cJSON_Delete(v);
    }
    free(line);
    if (ferror(f)) {
        problem(im, line_no, "read error: %s", strerror(errno));
        return -1;
    }
    return 0;
}

void importer_finish(importer *im) {
    flush_open(im, UINT64_MAX, true);
    if (im->format == IMPORTER_LANGSMITH) langsmith_end(im);
}

uint64_t importer_documents(const importer *im) { return im->documents; }
uint64_t importer_problems(const importer *im) { return im->problems; }

void importer_free(importer *im) {
    if (!im) return;
    while (im->open_head) {
        open_trace *t = im->open_head;
        im->open_head = t->next;
        cJSON_Delete(t->spans);
        free(t->id);
        free(t);
    }
    cJSON_Delete(im->runs);
    sqlite3_finalize(im->spill_put);
    sqlite3_finalize(im->spill_get);
    sqlite3_finalize(im->spill_drop);
    sqlite3_close(im->spill);
    free(im);
}

uint64_t importer_spilled(const importer *im) { return im->spilled; }

/* ---------------------------------------------------------------------- detection */

int importer_detect(const char *text, size_t len, importer_format *out) {
    cJSON *v = cJSON_ParseWithLength(text, len);
    if (!v) return -1;
    const cJSON *first = cJSON_IsArray(v) ? v->child : v;
    const cJSON *response = cJSON_GetObjectItemCaseSensitive(first, "response");
    if (cJSON_IsObject(response)) first = response; /* {request, response} */
    int found = 0;
    if (cJSON_GetObjectItemCaseSensitive(first, "resourceSpans")) *out = IMPORTER_OTLP;
    else if (cJSON_GetObjectItemCaseSensitive(first, "observations")) *out = IMPORTER_LANGFUSE;
    else if (cJSON_GetObjectItemCaseSensitive(first, "post") || cJSON_GetObjectItemCaseSensitive(first, "patch") ||
             cJSON_GetObjectItemCaseSensitive(first, "dotted_order"))
        *out = IMPORTER_LANGSMITH;
    else if (cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(first, "eval"))) *out = IMPORTER_INSPECT;
    else if (cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(first, "content")) &&
             (cJSON_GetObjectItemCaseSensitive(first, "stop_reason") || strcmp(string_or(first, "type", ""), "message") == 0))
        *out = IMPORTER_ANTHROPIC; /* before chat: a response has a role too */
    else if (cJSON_GetObjectItemCaseSensitive(first, "role") || cJSON_GetObjectItemCaseSensitive(first, "messages"))
        *out = IMPORTER_CHAT;
    else if (cJSON_GetObjectItemCaseSensitive(first, "candidates")) *out = IMPORTER_GEMINI;
    else if (cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(first, "output"))) *out = IMPORTER_OPENAI_RESPONSES;
    else found = -1;
    cJSON_Delete(v);
    return found;
}
