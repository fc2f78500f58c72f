/* cli_test.c - `assay test PLUGIN... --cases FILE`: runs evaluators on test cases and
 * compares their records with what each case expects, so that teams keep their evaluators
 * under test in their own CI.
 *
 * A case is one JSON line: {"name": "...", "trace": {...}, "expect": [{"evaluator": "x",
 * "step": 0, "score": 0.5, "details": {...}}, ...], "tolerance": 1e-9}. Each expectation
 * is matched against the record of that evaluator (and step, default null): every field it
 * names must be equal, numbers within the tolerance, objects compared by the keys the
 * expectation names. "count": N instead checks how many records the evaluator wrote.
 */
#include "cli.h"
#include "../base/buf.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TEST_DEFAULT_TOLERANCE 1e-9

typedef struct test_case {
    char *name;
    cJSON *expect; /* owned by the case's root */
    cJSON *root;
    double tolerance;
    size_t line;
} test_case;

typedef struct test_run {
    test_case *cases;
    size_t count;
    size_t passed, failed;
    const char *file;
} test_run;

static void describe(const cJSON *v, buf *out) {
    if (!v) {
        buf_puts(out, "nothing");
        return;
    }
    char *text = cJSON_PrintUnformatted(v);
    if (text && strlen(text) > 120) strcpy(text + 110, "…");
    buf_puts(out, text ? text : "?");
    free(text);
}

/* Appends to why and returns false at the first difference. */
static bool matches(const cJSON *expected, const cJSON *actual, const char *path, double tolerance, buf *why) {
    bool ok;
    if (cJSON_IsNumber(expected)) {
        ok = cJSON_IsNumber(actual) && fabs(actual->valuedouble - expected->valuedouble) <= tolerance;
    } else if (cJSON_IsObject(expected)) {
        if (!cJSON_IsObject(actual)) {
            ok = false;
        } else {
            for (const cJSON *e = expected->child; e; e = e->next) {
                buf sub;
                buf_init(&sub);
                buf_printf(&sub, "%s%s%s", path, *path ? "." : "", e->string);
                bool sub_ok = matches(e, cJSON_GetObjectItemCaseSensitive(actual, e->string), buf_cstr(&sub), tolerance, why);
                buf_free(&sub);
                if (!sub_ok) return false;
            }
            return true;
        }
    } else if (cJSON_IsArray(expected)) {
        ok = cJSON_IsArray(actual) && cJSON_GetArraySize(actual) == cJSON_GetArraySize(expected);
        if (ok) {
            int i = 0;
            for (const cJSON *e = expected->child, *a = actual->child; e; e = e->next, a = a->next, i++) {
                buf sub;
                buf_init(&sub);
                buf_printf(&sub, "%s[%d]", path, i);
                bool sub_ok = matches(e, a, buf_cstr(&sub), tolerance, why);
                buf_free(&sub);
                if (!sub_ok) return false;
            }
            return true;
        }
    } else {
        ok = actual && cJSON_Compare(expected, actual, 1);
    }
    if (!ok) {
        buf_printf(why, "%s: expected ", path);
        describe(expected, why);
        buf_puts(why, ", got ");
        describe(actual, why);
    }
    return ok;
}

static bool same_step(const cJSON *expected_step, const cJSON *record) {
    const cJSON *step = cJSON_GetObjectItemCaseSensitive(record, "step");
    if (!expected_step || cJSON_IsNull(expected_step)) return !step || cJSON_IsNull(step);
    return cJSON_IsNumber(step) && step->valuedouble == expected_step->valuedouble;
}

static bool check_expectation(const cJSON *expectation, const cJSON *records, double tolerance, buf *why) {
    const cJSON *evaluator = cJSON_GetObjectItemCaseSensitive(expectation, "evaluator");
    if (!cJSON_IsString(evaluator)) {
        buf_puts(why, "an expectation has no \"evaluator\"");
        return false;
    }
    const cJSON *step = cJSON_GetObjectItemCaseSensitive(expectation, "step");
    const cJSON *count = cJSON_GetObjectItemCaseSensitive(expectation, "count");
    int seen = 0;
    const cJSON *record = NULL;
    for (const cJSON *r = records->child; r; r = r->next) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(r, "evaluator");
        if (!cJSON_IsString(name) || strcmp(name->valuestring, evaluator->valuestring) != 0) continue;
        seen++;
        if (!record && same_step(step, r)) record = r;
    }
    if (cJSON_IsNumber(count)) {
        if (seen == (int)count->valuedouble) return true;
        buf_printf(why, "%s: expected %d records, got %d", evaluator->valuestring, (int)count->valuedouble, seen);
        return false;
    }
    if (!record) {
        buf_printf(why, "%s: no record", evaluator->valuestring);
        if (step && !cJSON_IsNull(step)) buf_printf(why, " for step %d", (int)step->valuedouble);
        return false;
    }
    /* an evaluation that failed says so first: "score: expected 1, got null" hides why */
    const cJSON *error = cJSON_GetObjectItemCaseSensitive(record, "error");
    if (cJSON_IsObject(error) && !cJSON_GetObjectItemCaseSensitive(expectation, "error")) {
        const cJSON *kind = cJSON_GetObjectItemCaseSensitive(error, "kind");
        const cJSON *message = cJSON_GetObjectItemCaseSensitive(error, "message");
        buf_printf(why, "%s: the evaluation failed (%s error): %s", evaluator->valuestring,
                   cJSON_IsString(kind) ? kind->valuestring : "?", cJSON_IsString(message) ? message->valuestring : "?");
        const char *hint = cJSON_IsString(message) ? cli_hint(message->valuestring) : NULL;
        if (hint) buf_printf(why, " (%s)", hint);
        return false;
    }
    for (const cJSON *field = expectation->child; field; field = field->next) {
        if (strcmp(field->string, "evaluator") == 0 || strcmp(field->string, "step") == 0) continue;
        buf path;
        buf_init(&path);
        buf_printf(&path, "%s: %s", evaluator->valuestring, field->string);
        bool ok = matches(field, cJSON_GetObjectItemCaseSensitive(record, field->string), buf_cstr(&path), tolerance, why);
        buf_free(&path);
        if (!ok) return false;
    }
    return true;
}

static void on_test_result(assay_host *host, const assay_result *result, void *ctx) {
    test_run *t = assay_host_user_data(host);
    test_case *c = ctx;
    size_t len;
    const char *text = assay_result_jsonl(result, &len);
    cJSON *records = cJSON_CreateArray();
    for (const char *p = text, *end = text + len; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        cJSON *record = cJSON_ParseWithLength(p, n);
        if (record) cJSON_AddItemToArray(records, record);
        p += n + 1;
    }
    buf why;
    buf_init(&why);
    bool ok = true;
    for (const cJSON *e = c->expect ? c->expect->child : NULL; e && ok; e = e->next)
        ok = check_expectation(e, records, c->tolerance, &why);
    size_t number = (size_t)(c - t->cases) + 1;
    if (ok) {
        t->passed++;
        printf("ok %zu - %s\n", number, c->name);
    } else {
        t->failed++;
        printf("not ok %zu - %s\n#   %s:%zu: %s\n", number, c->name, t->file, c->line, buf_cstr(&why));
        for (const cJSON *r = records->child; r; r = r->next) {
            char *line = cJSON_PrintUnformatted(r);
            printf("#   record: %s\n", line ? line : "?");
            free(line);
        }
    }
    buf_free(&why);
    cJSON_Delete(records);
}

static int load_cases(test_run *t, const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "assay: %s: cannot open\n", path);
        return CLI_EXIT_USAGE;
    }
    char *line = NULL;
    size_t cap = 0, line_no = 0;
    ssize_t n;
    int rc = CLI_EXIT_OK;
    while ((n = getline(&line, &cap, f)) >= 0) {
        line_no++;
        size_t i = 0;
        while (i < (size_t)n && (line[i] == ' ' || line[i] == '\t' || line[i] == '\n' || line[i] == '\r')) i++;
        if (i == (size_t)n || line[i] == '#') continue; /* blank lines and comments */
        cJSON *root = cJSON_ParseWithLength(line, (size_t)n);
        const cJSON *trace = cJSON_GetObjectItemCaseSensitive(root, "trace");
        const cJSON *expect = cJSON_GetObjectItemCaseSensitive(root, "expect");
        if (!cJSON_IsObject(root) || !cJSON_IsObject(trace) || !cJSON_IsArray(expect)) {
            fprintf(stderr, "assay: %s:%zu: a case is {\"name\":…, \"trace\":{…}, \"expect\":[…]}\n", path, line_no);
            cJSON_Delete(root);
            rc = CLI_EXIT_USAGE;
            break;
        }
        test_case *grown = realloc(t->cases, (t->count + 1) * sizeof *grown);
        if (!grown) {
            cJSON_Delete(root);
            rc = CLI_EXIT_IO;
            break;
        }
        t->cases = grown;
        test_case *c = &t->cases[t->count++];
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(root, "name");
        const cJSON *tolerance = cJSON_GetObjectItemCaseSensitive(root, "tolerance");
        char fallback[32];
        snprintf(fallback, sizeof fallback, "case at line %zu", line_no);
        c->name = strdup(cJSON_IsString(name) ? name->valuestring : fallback);
        c->root = root;
        c->expect = (cJSON *)expect;
        c->tolerance = cJSON_IsNumber(tolerance) ? tolerance->valuedouble : TEST_DEFAULT_TOLERANCE;
        c->line = line_no;
    }
    free(line);
    fclose(f);
    return rc;
}

int cli_test(cli_options *o) {
    test_run t;
    memset(&t, 0, sizeof t);
    t.file = o->cases;
    int rc = load_cases(&t, o->cases);
    uv_loop_t loop;
    uv_loop_init(&loop);
    assay_host *host = NULL;
    assay_error err;
    if (rc == CLI_EXIT_OK) {
        assay_options_set_record_timing(o->host, 0);
        if (assay_host_new(&host, &loop, o->host, on_test_result, &t, &err) != ASSAY_OK) {
            fprintf(stderr, "assay: %s\n", err.message);
            rc = CLI_EXIT_USAGE;
        }
    }
    if (rc == CLI_EXIT_OK) {
        printf("TAP version 13\n1..%zu\n", t.count);
        for (size_t i = 0; i < t.count; i++) {
            char *text = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(t.cases[i].root, "trace"));
            if (!text || assay_host_submit(host, text, strlen(text), t.file, t.cases[i].line, &t.cases[i]) != ASSAY_OK) {
                fprintf(stderr, "assay: out of memory\n");
                rc = CLI_EXIT_IO;
            }
            free(text);
        }
        assay_host_close(host, NULL);
        uv_run(&loop, UV_RUN_DEFAULT);
        printf("# %zu passed, %zu failed\n", t.passed, t.failed);
        if (rc == CLI_EXIT_OK && t.failed) rc = CLI_EXIT_FAILED;
    }
    uv_loop_close(&loop);
    for (size_t i = 0; i < t.count; i++) {
        free(t.cases[i].name);
        cJSON_Delete(t.cases[i].root);
    }
    free(t.cases);
    return rc;
}
