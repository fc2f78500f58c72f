/* cli_export.c - `assay run --junit FILE` and `--csv FILE`: the records in the formats CI
 * systems and spreadsheets read.
 *
 * JUnit XML: one <testsuite> per evaluator (plus "input" for lines that are not traces),
 * one <testcase> per record, named after the trace (and step). A record whose pass is
 * false is a <failure>, one with an error an <error>, one that did not apply (no score, no
 * pass) is <skipped>. A suite's counts come before its cases, so cases are streamed to one
 * temporary file per suite and the whole document is written, then renamed into place, at
 * the end. CSV is streamed (RFC 4180 quoting).
 */
#include "cli.h"
#include "../base/buf.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct suite {
    char *name;  /* owned: the host is gone when the file is written */
    FILE *cases; /* temporary */
    uint64_t tests, failures, errors, skipped;
    double seconds;
} suite;

struct exporter {
    char *junit_path;
    suite *suites; /* one per evaluator, then "input" */
    size_t suite_count;
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

/* Everything but the CSV file, which its callers close in their own ways. */
static void free_exporter(exporter *x) {
    for (size_t i = 0; x->suites && i < x->suite_count; i++) {
        if (x->suites[i].cases) fclose(x->suites[i].cases);
        free(x->suites[i].name);
    }
    free(x->suites);
    free(x->junit_path);
    free(x->csv_path);
    free(x);
}

exporter *export_open(const char *junit_path, const char *csv_path, const assay_host *host, char *err, size_t errlen) {
    exporter *x = calloc(1, sizeof *x);
    if (!x) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
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
            if (!(x->suites[i].name = strdup(info.name)) || !(x->suites[i].cases = tmpfile())) {
                snprintf(err, errlen, "--junit: cannot create a temporary file: %s", strerror(errno));
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
            if (x->suites) junit_case(x, result, &rec, jsonl, len);
            if (x->csv) csv_row(x, result, &rec);
        }
        jsonl = nl ? nl + 1 : end;
    }
}

static int write_junit(exporter *x) {
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
    uint64_t tests = 0, failures = 0, errors = 0, skipped = 0;
    double seconds = 0;
    for (size_t i = 0; i < x->suite_count; i++) {
        tests += x->suites[i].tests, failures += x->suites[i].failures, errors += x->suites[i].errors;
        skipped += x->suites[i].skipped, seconds += x->suites[i].seconds;
    }
    fprintf(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                 "<testsuites name=\"assay\" tests=\"%llu\" failures=\"%llu\" errors=\"%llu\" skipped=\"%llu\" time=\"%.6f\">\n",
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
    int rc = ferror(out) | fclose(out);
    if (rc == 0 && rename(tmp, x->junit_path) != 0) rc = -1;
    if (rc != 0) {
        fprintf(stderr, "assay: --junit: %s: %s\n", x->junit_path, strerror(errno));
        unlink(tmp);
    }
    free(tmp);
    return rc ? -1 : 0;
}

int export_close(exporter *x) {
    if (!x) return 0;
    int rc = x->has_failed ? -1 : 0;
    if (x->has_failed) fprintf(stderr, "assay: could not write every JUnit/CSV record: %s\n", strerror(errno));
    if (x->suites && write_junit(x) != 0) rc = -1;
    if (x->csv && (ferror(x->csv) | fclose(x->csv)) != 0) {
        fprintf(stderr, "assay: --csv: %s: %s\n", x->csv_path, strerror(errno));
        rc = -1;
    }
    free_exporter(x);
    return rc;
}
