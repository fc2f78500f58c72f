/* cli_export.c - `assay run --junit FILE` and `--csv FILE`: the records in the formats CI
 * systems and spreadsheets read.
 *
 * JUnit XML, by default one <testsuite> per evaluator with one <testcase> for the whole run
 * and one per segment (--group-by): a CI dashboard then shows a handful of tests that mean
 * something, not a failure per trace. A test case fails when a --gate on it failed, is an
 * <error> when some of its records errored, and names its JUNIT_WORST worst traces either
 * way (a record that passed is never among them). Counts and worst traces are gathered as
 * records stream by, in memory fixed per (segment, evaluator).
 *
 * With --junit-per-trace, the older form: one <testcase> per record, named after the trace
 * (and step); pass false is a <failure>, an error an <error>, a record that did not apply
 * <skipped>. A suite's counts come before its cases, so cases are streamed to one temporary
 * file per suite.
 *
 * Either form is written whole at the end, then renamed into place. A --resume'd run's
 * JUnit covers the traces this process scored (the gates are checked on the whole stored
 * run). CSV is streamed (RFC 4180 quoting).
 */
#include "cli.h"
#include "../base/buf.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define JUNIT_WORST 5
#define JUNIT_MAX_SEGMENTS 1000 /* as the summary table: later values count as "(other)" */
#define JUNIT_MAX_MESSAGE 300

typedef struct suite {
    char *name;  /* owned: the host is gone when the file is written */
    FILE *cases; /* temporary */
    uint64_t tests, failures, errors, skipped;
    double seconds;
} suite;

/* One of a test case's worst records. */
typedef struct worst {
    char *trace_id, *message, *source; /* owned */
    long step;
    uint64_t line;
    double score;
    bool has_score;
    int pass, error;
} worst;

/* One evaluator over the run or over one segment: a test case of the per-evaluator form. */
typedef struct cell {
    uint64_t records, scored, passed, pass_n, errors;
    double score_sum, seconds;
    worst worst[JUNIT_WORST]; /* worst first */
    size_t worst_count;
} cell;

typedef struct segment {
    char *name;  /* owned; NULL: the whole run */
    cell *cells; /* one per evaluator */
} segment;

struct exporter {
    char *junit_path;
    bool is_per_trace, is_grouped;
    const char *group_by; /* the caller's, for test case names */
    suite *suites; /* one per evaluator, then "input" */
    size_t suite_count;
    segment *segments; /* per-evaluator form: the whole run, then each segment */
    size_t segment_count;
    uint64_t input_errors;
    char *first_input_error;
    FILE *csv;
    char *csv_path;
    bool has_failed;
};

/* Text for an XML 1.0 document: markup escaped, invalid UTF-8 and the code points XML
 * forbids (C0 controls but tab and newline, U+FFFE, U+FFFF) replaced, so that a CI server's
 * parser reads the whole report whatever a trace or a plugin wrote. */
static void xml_escape(buf *b, const char *text) {
    static const char replacement[] = "\xEF\xBF\xBD"; /* U+FFFD */
    const unsigned char *s = (const unsigned char *)text;
    size_t n = text ? strlen(text) : 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        if (c < 0x80) {
            switch (c) {
            case '&': buf_puts(b, "&amp;"); break;
            case '<': buf_puts(b, "&lt;"); break;
            case '>': buf_puts(b, "&gt;"); break;
            case '"': buf_puts(b, "&quot;"); break;
            default: buf_putc(b, c < 0x20 && c != '\t' && c != '\n' ? ' ' : (char)c);
            }
            i++;
            continue;
        }
        size_t len = buf_utf8_sequence_length(s + i, n - i);
        bool is_noncharacter = len == 3 && s[i] == 0xEF && s[i + 1] == 0xBF && (s[i + 2] == 0xBE || s[i + 2] == 0xBF);
        if (len == 0 || is_noncharacter) buf_puts(b, replacement);
        else buf_append(b, s + i, len);
        i += len ? len : 1;
    }
}

/* A CSV cell. One that starts with = + - @ (or a tab or carriage return) is a formula to a
 * spreadsheet, which a trace id or label must never become: it gets a leading quote, as
 * OWASP advises. */
static void csv_field(buf *b, const char *s) {
    if (!s) return;
    bool is_formula = strchr("=+-@\t\r", *s) && *s;
    if (!is_formula && !strpbrk(s, ",\"\r\n")) {
        buf_puts(b, s);
        return;
    }
    buf_putc(b, '"');
    if (is_formula) buf_putc(b, '\'');
    for (; *s; s++) {
        if (*s == '"') buf_putc(b, '"');
        buf_putc(b, *s);
    }
    buf_putc(b, '"');
}

static void free_worst(worst *w) {
    free(w->trace_id), free(w->message), free(w->source);
    memset(w, 0, sizeof *w);
}

/* Everything but the CSV file, which its callers close in their own ways. */
static void free_exporter(exporter *x) {
    for (size_t i = 0; x->suites && i < x->suite_count; i++) {
        if (x->suites[i].cases) fclose(x->suites[i].cases);
        free(x->suites[i].name);
    }
    free(x->suites);
    for (size_t g = 0; g < x->segment_count; g++) {
        for (size_t e = 0; x->segments[g].cells && e + 1 < x->suite_count; e++)
            for (size_t i = 0; i < x->segments[g].cells[e].worst_count; i++) free_worst(&x->segments[g].cells[e].worst[i]);
        free(x->segments[g].cells);
        free(x->segments[g].name);
    }
    free(x->segments);
    free(x->first_input_error);
    free(x->junit_path);
    free(x->csv_path);
    free(x);
}

/* The cells of a segment (NULL: the whole run), added the first time it comes. */
static cell *segment_cells(exporter *x, const char *name) {
    if (!name) name = "(none)";
    for (int pass = 0; pass < 2; pass++) {
        for (size_t g = 1; g < x->segment_count; g++)
            if (strcmp(x->segments[g].name, name) == 0) return x->segments[g].cells;
        if (x->segment_count <= JUNIT_MAX_SEGMENTS) break;
        name = "(other)";
    }
    segment *grown = realloc(x->segments, (x->segment_count + 1) * sizeof *grown);
    if (!grown) return NULL;
    x->segments = grown;
    segment *s = &x->segments[x->segment_count];
    s->name = strdup(name);
    s->cells = calloc(x->suite_count, sizeof *s->cells);
    if (!s->name || !s->cells) {
        free(s->name), free(s->cells);
        return NULL;
    }
    x->segment_count++;
    return s->cells;
}

exporter *export_open(const cli_options *o, const assay_host *host, char *err, size_t errlen) {
    const char *junit_path = o->junit, *csv_path = o->csv;
    bool is_per_trace = o->is_junit_per_trace;
    exporter *x = calloc(1, sizeof *x);
    if (!x) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    x->is_per_trace = is_per_trace;
    x->is_grouped = o->group_by != NULL;
    x->group_by = o->group_by;
    if (junit_path) {
        x->suite_count = assay_host_plugin_count(host) + 1;
        x->suites = calloc(x->suite_count, sizeof *x->suites);
        x->junit_path = strdup(junit_path);
        if (!x->suites || !x->junit_path) {
            snprintf(err, errlen, "out of memory");
            goto failed;
        }
        for (size_t i = 0; i < x->suite_count; i++) {
            assay_plugin_info info = {.name = "input"};
            if (i + 1 < x->suite_count) assay_host_plugin_info(host, i, &info, sizeof info);
            if (!(x->suites[i].name = strdup(info.name)) || (is_per_trace && !(x->suites[i].cases = tmpfile()))) {
                snprintf(err, errlen, "--junit: cannot create a temporary file: %s", strerror(errno));
                goto failed;
            }
        }
        if (!is_per_trace && !(x->segments = calloc(1, sizeof *x->segments))) {
            snprintf(err, errlen, "out of memory");
            goto failed;
        }
        if (x->segments) {
            x->segment_count = 1;
            if (!(x->segments[0].cells = calloc(x->suite_count, sizeof(cell)))) {
                snprintf(err, errlen, "out of memory");
                goto failed;
            }
        }
    }
    if (csv_path) {
        x->csv_path = strdup(csv_path);
        if (!x->csv_path || !(x->csv = fopen(csv_path, "w"))) {
            snprintf(err, errlen, "--csv: %s: %s", csv_path, strerror(errno));
            goto failed;
        }
        fputs("trace_id,evaluator,step,score,pass,label,error_kind,error,ms,file,line\r\n", x->csv);
    }
    return x;
failed:
    if (x->csv) fclose(x->csv);
    free_exporter(x);
    return NULL;
}

static void junit_case(exporter *x, const assay_result *result, const assay_record *rec, const char *json,
                       size_t json_len) {
    bool is_input = rec->error == ASSAY_KIND_INPUT || rec->evaluator_index >= x->suite_count - 1;
    suite *s = &x->suites[is_input ? x->suite_count - 1 : rec->evaluator_index];
    buf b;
    buf_init(&b);
    char name[64];
    buf_puts(&b, "    <testcase classname=\"");
    xml_escape(&b, is_input ? "input" : rec->evaluator);
    buf_puts(&b, "\" name=\"");
    if (is_input) {
        snprintf(name, sizeof name, ":%llu", (unsigned long long)assay_result_line(result));
        xml_escape(&b, assay_result_source(result));
        buf_puts(&b, name);
    } else {
        xml_escape(&b, assay_result_trace_id(result));
        if (rec->step >= 0) buf_printf(&b, " step %ld", rec->step);
    }
    double seconds = rec->ms > 0 ? rec->ms / 1000.0 : 0;
    buf_printf(&b, "\" time=\"%.6f\"", seconds);
    s->tests++;
    s->seconds += seconds;
    buf json_text;
    buf_init(&json_text);
    buf_append(&json_text, json, json_len);
    if (rec->error != ASSAY_KIND_NONE) {
        s->errors++;
        buf_puts(&b, "><error type=\"");
        xml_escape(&b, assay_error_kind_name(rec->error));
        buf_puts(&b, "\" message=\"");
        xml_escape(&b, rec->error_message);
        buf_puts(&b, "\"/></testcase>\n");
    } else if (rec->pass == 0) {
        s->failures++;
        char message[64] = "pass is false";
        if (rec->has_score) snprintf(message, sizeof message, "pass is false (score %.4g)", rec->score);
        buf_puts(&b, "><failure type=\"fail\" message=\"");
        xml_escape(&b, message);
        buf_puts(&b, "\">");
        xml_escape(&b, buf_cstr(&json_text));
        buf_puts(&b, "</failure></testcase>\n");
    } else if (!rec->has_score && rec->pass < 0) {
        s->skipped++;
        buf_puts(&b, "><skipped message=\"does not apply\"/></testcase>\n");
    } else {
        buf_puts(&b, "/>\n");
    }
    buf_free(&json_text);
    if (buf_failed(&b) || fwrite(b.data, 1, b.len, s->cases) != b.len) x->has_failed = true;
    buf_free(&b);
}

/* How bad a record is, for the worst traces: an error, then pass false, then the lowest
 * score; the trace id and step break ties so that the list does not depend on the order
 * in which workers finished. */
static int worst_rank(const worst *w) { return w->error != ASSAY_KIND_NONE ? 0 : w->pass == 0 ? 1 : 2; }

static bool is_worse(const worst *a, const worst *b) {
    int ra = worst_rank(a), rb = worst_rank(b);
    if (ra != rb) return ra < rb;
    if (a->has_score != b->has_score) return a->has_score;
    if (a->has_score && a->score != b->score) return a->score < b->score;
    int d = strcmp(a->trace_id, b->trace_id);
    return d ? d < 0 : a->step < b->step;
}

static void cell_add(cell *c, const assay_result *result, const assay_record *rec) {
    c->records++;
    c->seconds += rec->ms > 0 ? rec->ms / 1000.0 : 0;
    if (rec->error != ASSAY_KIND_NONE) {
        c->errors++;
    } else {
        if (rec->has_score) c->scored++, c->score_sum += rec->score;
        if (rec->pass >= 0) c->pass_n++, c->passed += (uint64_t)rec->pass;
        if (rec->pass == 1 || (!rec->has_score && rec->pass < 0)) return; /* passed, or did not apply */
    }
    worst w = {.trace_id = (char *)assay_result_trace_id(result), .step = rec->step, .score = rec->score,
               .has_score = rec->has_score && rec->error == ASSAY_KIND_NONE, .pass = rec->pass, .error = rec->error};
    if (!w.trace_id) w.trace_id = "";
    if (c->worst_count == JUNIT_WORST && !is_worse(&w, &c->worst[JUNIT_WORST - 1])) return;
    if (c->worst_count == JUNIT_WORST) free_worst(&c->worst[--c->worst_count]);
    size_t at = c->worst_count;
    while (at > 0 && is_worse(&w, &c->worst[at - 1])) at--;
    char message[JUNIT_MAX_MESSAGE + 1] = "";
    if (rec->error_message) snprintf(message, sizeof message, "%s", rec->error_message);
    w.trace_id = strdup(w.trace_id);
    w.message = rec->error != ASSAY_KIND_NONE ? strdup(message) : NULL;
    w.source = strdup(assay_result_source(result) ? assay_result_source(result) : "");
    if (!w.trace_id || !w.source || (rec->error != ASSAY_KIND_NONE && !w.message)) {
        free_worst(&w); /* out of memory: the counts stay right, the list misses one */
        return;
    }
    w.line = assay_result_line(result);
    memmove(&c->worst[at + 1], &c->worst[at], (c->worst_count - at) * sizeof *c->worst);
    c->worst[at] = w;
    c->worst_count++;
}

static void junit_count(exporter *x, const assay_result *result, const assay_record *rec) {
    if (rec->error == ASSAY_KIND_INPUT || rec->evaluator_index + 1 >= x->suite_count) {
        if (!x->input_errors++ && rec->error_message) x->first_input_error = strdup(rec->error_message);
        return;
    }
    cell_add(&x->segments[0].cells[rec->evaluator_index], result, rec);
    cell *grouped = x->is_grouped ? segment_cells(x, assay_result_group(result)) : NULL;
    if (grouped) cell_add(&grouped[rec->evaluator_index], result, rec);
}

static void csv_row(exporter *x, const assay_result *result, const assay_record *rec) {
    buf b;
    buf_init(&b);
    csv_field(&b, assay_result_trace_id(result));
    buf_putc(&b, ',');
    csv_field(&b, rec->evaluator);
    buf_putc(&b, ',');
    if (rec->step >= 0) buf_printf(&b, "%ld", rec->step);
    buf_putc(&b, ',');
    if (rec->has_score && rec->error == ASSAY_KIND_NONE) buf_json_number(&b, rec->score);
    buf_putc(&b, ',');
    if (rec->pass >= 0 && rec->error == ASSAY_KIND_NONE) buf_puts(&b, rec->pass ? "true" : "false");
    buf_putc(&b, ',');
    csv_field(&b, rec->label);
    buf_putc(&b, ',');
    if (rec->error != ASSAY_KIND_NONE) buf_puts(&b, assay_error_kind_name(rec->error));
    buf_putc(&b, ',');
    csv_field(&b, rec->error_message);
    buf_putc(&b, ',');
    if (!isnan(rec->ms)) buf_json_number(&b, rec->ms); /* NaN: --no-timing */
    buf_putc(&b, ',');
    csv_field(&b, assay_result_source(result));
    buf_printf(&b, ",%llu\r\n", (unsigned long long)assay_result_line(result));
    if (buf_failed(&b) || fwrite(b.data, 1, b.len, x->csv) != b.len) x->has_failed = true;
    buf_free(&b);
}

void export_add(exporter *x, const assay_result *result) {
    size_t jsonl_len;
    const char *jsonl = assay_result_jsonl(result, &jsonl_len), *end = jsonl + jsonl_len;
    for (size_t i = 0; i < assay_result_record_count(result); i++) {
        const char *nl = memchr(jsonl, '\n', (size_t)(end - jsonl));
        size_t len = nl ? (size_t)(nl - jsonl) : (size_t)(end - jsonl);
        assay_record rec;
        if (assay_result_record(result, i, &rec, sizeof rec) == ASSAY_OK) {
            if (x->suites && x->is_per_trace) junit_case(x, result, &rec, jsonl, len);
            else if (x->suites) junit_count(x, result, &rec);
            if (x->csv) csv_row(x, result, &rec);
        }
        jsonl = nl ? nl + 1 : end;
    }
}

/* The per-trace form's suites, from their temporary files. */
static void write_per_trace(exporter *x, FILE *out) {
    uint64_t tests = 0, failures = 0, errors = 0, skipped = 0;
    double seconds = 0;
    for (size_t i = 0; i < x->suite_count; i++) {
        tests += x->suites[i].tests, failures += x->suites[i].failures, errors += x->suites[i].errors;
        skipped += x->suites[i].skipped, seconds += x->suites[i].seconds;
    }
    fprintf(out, "<testsuites name=\"assay\" tests=\"%llu\" failures=\"%llu\" errors=\"%llu\" skipped=\"%llu\" time=\"%.6f\">\n",
            (unsigned long long)tests, (unsigned long long)failures, (unsigned long long)errors,
            (unsigned long long)skipped, seconds);
    for (size_t i = 0; i < x->suite_count; i++) {
        suite *s = &x->suites[i];
        if (i == x->suite_count - 1 && s->tests == 0) continue; /* no input errors: no "input" suite */
        buf name;
        buf_init(&name);
        xml_escape(&name, s->name);
        fprintf(out, "  <testsuite name=\"%s\" tests=\"%llu\" failures=\"%llu\" errors=\"%llu\" skipped=\"%llu\" time=\"%.6f\">\n",
                buf_cstr(&name), (unsigned long long)s->tests, (unsigned long long)s->failures,
                (unsigned long long)s->errors, (unsigned long long)s->skipped, s->seconds);
        buf_free(&name);
        rewind(s->cases);
        char chunk[65536];
        size_t n;
        while ((n = fread(chunk, 1, sizeof chunk, s->cases)) > 0) fwrite(chunk, 1, n, out);
        fputs("  </testsuite>\n", out);
    }
    fputs("</testsuites>\n", out);
}

/* A test case's text: its numbers, then its worst records. */
static void cell_text(buf *b, const cell *c) {
    buf_printf(b, "%llu records", (unsigned long long)c->records);
    if (c->scored) buf_printf(b, ", mean score %.4g", c->score_sum / (double)c->scored);
    if (c->pass_n)
        buf_printf(b, ", pass rate %.1f%% (%llu of %llu)", 100.0 * (double)c->passed / (double)c->pass_n,
                   (unsigned long long)c->passed, (unsigned long long)c->pass_n);
    buf_printf(b, ", %llu errors\n", (unsigned long long)c->errors);
    if (c->worst_count) buf_puts(b, "worst traces:\n");
    for (size_t i = 0; i < c->worst_count; i++) {
        const worst *w = &c->worst[i];
        buf_printf(b, "  %s", w->trace_id);
        if (w->step >= 0) buf_printf(b, " step %ld", w->step);
        if (w->error != ASSAY_KIND_NONE) buf_printf(b, ": %s error: %s", assay_error_kind_name(w->error), w->message);
        if (w->has_score) buf_printf(b, ": score %.4g", w->score);
        if (w->error == ASSAY_KIND_NONE && w->pass >= 0) buf_printf(b, "%s pass %s", w->has_score ? "," : ":",
                                                                    w->pass ? "true" : "false");
        buf_printf(b, " (%s:%llu)\n", w->source, (unsigned long long)w->line);
    }
}

typedef struct junit_counts {
    uint64_t tests, failures, errors;
    double seconds;
} junit_counts;

/* One evaluator's test case over the run (segment NULL) or a segment; marks the gates it
 * reports. */
static void write_case(exporter *x, buf *b, junit_counts *n, size_t e, const segment *sg, const gate_results *gates,
                       bool *is_reported) {
    const cell *c = &sg->cells[e];
    buf text, failed;
    buf_init(&text), buf_init(&failed);
    cell_text(&text, c);
    for (size_t i = 0; gates && i < gates->n; i++) {
        const gate_result *r = &gates->v[i];
        if (strcmp(r->g->evaluator, x->suites[e].name) != 0 || r->has_segment != (sg->name != NULL) ||
            (sg->name && strcmp(r->segment, sg->name) != 0))
            continue;
        is_reported[i] = true;
        char line[800];
        gate_result_describe(r, line, sizeof line);
        if (!r->ok) buf_printf(&failed, "%s%s", failed.len ? "; " : "", line);
        else buf_printf(&text, "%s\n", line);
    }
    buf_puts(b, "    <testcase classname=\"");
    xml_escape(b, x->suites[e].name);
    buf_puts(b, "\" name=\"");
    if (sg->name) buf_printf(b, "%s=", x->group_by);
    xml_escape(b, sg->name ? sg->name : "all traces");
    buf_printf(b, "\" time=\"%.6f\">", c->seconds);
    n->tests++, n->seconds += c->seconds;
    bool has_failed_gate = failed.len > 0;
    if (!has_failed_gate && c->errors)
        buf_printf(&failed, "%llu of %llu records errored", (unsigned long long)c->errors, (unsigned long long)c->records);
    for (size_t i = 0; failed.len && i < c->worst_count; i++) /* the ids in the message, which dashboards show first */
        buf_printf(&failed, "%s%s", i ? ", " : "; worst: ", c->worst[i].trace_id);
    if (failed.len) {
        n->failures += has_failed_gate, n->errors += !has_failed_gate;
        buf_puts(b, has_failed_gate ? "<failure type=\"gate\" message=\"" : "<error type=\"errors\" message=\"");
        xml_escape(b, buf_cstr(&failed));
        buf_puts(b, "\">");
    } else {
        buf_puts(b, "<system-out>");
    }
    xml_escape(b, buf_cstr(&text));
    buf_puts(b, has_failed_gate ? "</failure>" : c->errors ? "</error>" : "</system-out>");
    buf_puts(b, "</testcase>\n");
    buf_free(&text), buf_free(&failed);
}

static int compare_segments(const void *a, const void *b) {
    return strcmp(((const segment *)a)->name, ((const segment *)b)->name);
}

/* Appends a suite, its counts before its cases, and adds them to the total. */
static void add_suite(buf *body, junit_counts *total, const char *name, const junit_counts *n, const buf *cases) {
    buf_puts(body, "  <testsuite name=\"");
    xml_escape(body, name);
    buf_printf(body, "\" tests=\"%llu\" failures=\"%llu\" errors=\"%llu\" skipped=\"0\" time=\"%.6f\">\n",
               (unsigned long long)n->tests, (unsigned long long)n->failures, (unsigned long long)n->errors, n->seconds);
    buf_append(body, cases->data, cases->len);
    buf_puts(body, "  </testsuite>\n");
    total->tests += n->tests, total->failures += n->failures, total->errors += n->errors;
    total->seconds += n->seconds;
}

/* Gates that no test case reports (an evaluator or a segment this run did not have), then
 * the input lines that are not traces, as suites of their own. */
static void add_leftovers(exporter *x, buf *body, junit_counts *total, const gate_results *gates,
                          const bool *is_reported) {
    buf cases;
    junit_counts n = {0};
    buf_init(&cases);
    for (size_t i = 0; gates && i < gates->n; i++) {
        if (is_reported[i]) continue;
        char line[800];
        gate_result_describe(&gates->v[i], line, sizeof line);
        buf_puts(&cases, "    <testcase classname=\"gates\" name=\"");
        xml_escape(&cases, gates->v[i].g->text);
        buf_puts(&cases, gates->v[i].ok ? "\"><system-out>" : "\"><failure type=\"gate\" message=\"");
        xml_escape(&cases, line);
        buf_puts(&cases, gates->v[i].ok ? "</system-out></testcase>\n" : "\"/></testcase>\n");
        n.tests++, n.failures += !gates->v[i].ok;
    }
    if (n.tests) add_suite(body, total, "gates", &n, &cases);
    if (x->input_errors) {
        char message[96];
        snprintf(message, sizeof message, "%llu input line%s not a trace", (unsigned long long)x->input_errors,
                 x->input_errors == 1 ? " is" : "s are");
        buf_reset(&cases);
        buf_puts(&cases, "    <testcase classname=\"input\" name=\"input lines\" time=\"0\"><error type=\"input\" message=\"");
        xml_escape(&cases, message);
        buf_puts(&cases, "\">first: ");
        xml_escape(&cases, x->first_input_error);
        buf_puts(&cases, "</error></testcase>\n");
        junit_counts in = {.tests = 1, .errors = 1};
        add_suite(body, total, "input", &in, &cases);
    }
    buf_free(&cases);
}

/* The per-evaluator form: a suite per evaluator, a case for the run and one per segment
 * (sorted), then what add_leftovers adds. */
static void write_per_evaluator(exporter *x, FILE *out, const gate_results *gates) {
    bool *is_reported = calloc(gates && gates->n ? gates->n : 1, sizeof *is_reported);
    segment *sorted = malloc(x->segment_count * sizeof *sorted);
    buf body, cases;
    buf_init(&body), buf_init(&cases);
    junit_counts total = {0};
    if (!is_reported || !sorted) {
        x->has_failed = true;
    } else {
        memcpy(sorted, x->segments, x->segment_count * sizeof *sorted);
        qsort(sorted + 1, x->segment_count - 1, sizeof *sorted, compare_segments);
        for (size_t e = 0; e + 1 < x->suite_count; e++) {
            junit_counts n = {0};
            buf_reset(&cases);
            for (size_t g = 0; g < x->segment_count; g++)
                if (g == 0 || sorted[g].cells[e].records) write_case(x, &cases, &n, e, &sorted[g], gates, is_reported);
            add_suite(&body, &total, x->suites[e].name, &n, &cases);
        }
        add_leftovers(x, &body, &total, gates, is_reported);
    }
    if (buf_failed(&body) || buf_failed(&cases)) x->has_failed = true;
    fprintf(out, "<testsuites name=\"assay\" tests=\"%llu\" failures=\"%llu\" errors=\"%llu\" skipped=\"0\" time=\"%.6f\">\n",
            (unsigned long long)total.tests, (unsigned long long)total.failures, (unsigned long long)total.errors,
            total.seconds);
    if (body.len) fwrite(body.data, 1, body.len, out);
    fputs("</testsuites>\n", out);
    buf_free(&body), buf_free(&cases);
    free(sorted);
    free(is_reported);
}

static int write_junit(exporter *x, const gate_results *gates) {
    size_t tmp_len = strlen(x->junit_path) + 8;
    char *tmp = malloc(tmp_len);
    if (!tmp) return -1;
    snprintf(tmp, tmp_len, "%s.tmp", x->junit_path);
    FILE *out = fopen(tmp, "w");
    if (!out) {
        fprintf(stderr, "assay: --junit: %s: %s\n", tmp, strerror(errno));
        free(tmp);
        return -1;
    }
    fputs("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n", out);
    if (x->is_per_trace) write_per_trace(x, out);
    else write_per_evaluator(x, out, gates);
    int rc = ferror(out) | fclose(out);
    if (rc == 0 && rename(tmp, x->junit_path) != 0) rc = -1;
    if (rc != 0) {
        fprintf(stderr, "assay: --junit: %s: %s\n", x->junit_path, strerror(errno));
        unlink(tmp);
    }
    free(tmp);
    return rc ? -1 : 0;
}

int export_close(exporter *x, const gate_results *gates) {
    if (!x) return 0;
    int rc = x->suites && write_junit(x, gates) != 0 ? -1 : 0;
    if (x->has_failed) {
        fprintf(stderr, "assay: could not write every JUnit/CSV record: %s\n", strerror(errno));
        rc = -1;
    }
    if (x->csv && (ferror(x->csv) | fclose(x->csv)) != 0) {
        fprintf(stderr, "assay: --csv: %s: %s\n", x->csv_path, strerror(errno));
        rc = -1;
    }
    free_exporter(x);
    return rc;
}
