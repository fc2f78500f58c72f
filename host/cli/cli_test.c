/* cli_test.c - `assay test PLUGIN... --cases FILE`: runs evaluators on test cases and
 * compares their records with what each case expects, so that teams keep their evaluators
 * under test in their own CI.
 *
 * A case is one JSON line: {"name": "...", "trace": {...}, "expect": [{"evaluator": "x",
 * "step": 0, "score": 0.5, "details": {...}}, ...], "tolerance": 1e-9}. Each expectation
 * is matched against the record of that evaluator (and step, default null): every field it
 * names must be equal, numbers within the tolerance, objects compared by the keys the
 * expectation names. "count": N instead checks how many records the evaluator wrote.
 *
 * A case may script the answers to its evaluators' requests, so that an LLM judge is
 * tested without a model: "replies": [{"match": "text", "reply": "..."} (assay.llm chat),
 * {"match": "text", "embedding": [...]} (assay.llm embed, per input), {"match": "url part",
 * "status": 200, "body": "..."} (assay.http)]. The first rule of the request's kind whose
 * match is in the prompt (every message's text), the input or the URL answers; a rule
 * without match answers any. A request no rule answers fails with an http error naming the
 * case, never reaching the network.
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
    const cJSON *replies; /* owned by the case's root; NULL: requests go to the network */
    const char *file;
    cJSON *root;
    double tolerance;
    size_t line;
} test_case;

typedef struct test_run {
    test_case *cases;
    size_t count;
    size_t passed, failed;
    const char *file;
    bool has_replies;
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

/* ------------------------------------------------------------------ scripted replies */

typedef enum { REPLY_CHAT, REPLY_EMBED, REPLY_HTTP } reply_kind;

/* What is wrong with a rule of "replies", or NULL (checked when the cases load). */
static const char *rule_problem(const cJSON *rule) {
    if (!cJSON_IsObject(rule)) return "a reply is an object";
    const cJSON *match = cJSON_GetObjectItemCaseSensitive(rule, "match");
    if (match && !cJSON_IsString(match)) return "a reply's \"match\" is a string";
    const cJSON *reply = cJSON_GetObjectItemCaseSensitive(rule, "reply");
    const cJSON *embedding = cJSON_GetObjectItemCaseSensitive(rule, "embedding");
    const cJSON *body = cJSON_GetObjectItemCaseSensitive(rule, "body");
    const cJSON *status = cJSON_GetObjectItemCaseSensitive(rule, "status");
    int kinds = !!reply + !!embedding + !!(body || status);
    if (kinds != 1) return "a reply has one of \"reply\" (a chat answer), \"embedding\" or \"body\"/\"status\" (an http answer)";
    if (reply && !cJSON_IsString(reply)) return "a reply's \"reply\" is a string";
    if (body && !cJSON_IsString(body)) return "a reply's \"body\" is a string";
    if (status && (!cJSON_IsNumber(status) || status->valuedouble < 100 || status->valuedouble > 599))
        return "a reply's \"status\" is an HTTP status (100 to 599)";
    if (embedding) {
        if (!cJSON_IsArray(embedding) || !embedding->child) return "a reply's \"embedding\" is a list of numbers";
        for (const cJSON *x = embedding->child; x; x = x->next)
            if (!cJSON_IsNumber(x)) return "a reply's \"embedding\" is a list of numbers";
    }
    return NULL;
}

static reply_kind rule_kind(const cJSON *rule) {
    if (cJSON_GetObjectItemCaseSensitive(rule, "reply")) return REPLY_CHAT;
    if (cJSON_GetObjectItemCaseSensitive(rule, "embedding")) return REPLY_EMBED;
    return REPLY_HTTP;
}

/* The first rule of kind whose match is in text. */
static const cJSON *find_rule(const cJSON *replies, reply_kind kind, const char *text) {
    for (const cJSON *rule = replies->child; rule; rule = rule->next) {
        if (rule_kind(rule) != kind) continue;
        const cJSON *match = cJSON_GetObjectItemCaseSensitive(rule, "match");
        if (!match || strstr(text, match->valuestring)) return rule;
    }
    return NULL;
}

/* Every message's text, one per line: what a chat rule's match is looked for in. *last
 * gets where the last message starts (the one a failure quotes: the system prompt is
 * usually the same for every case). */
static void prompt_text(const cJSON *request, buf *out, size_t *last) {
    const cJSON *messages = cJSON_GetObjectItemCaseSensitive(request, "messages");
    *last = 0;
    for (const cJSON *m = cJSON_IsArray(messages) ? messages->child : NULL; m; m = m->next) {
        *last = out->len;
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
        if (cJSON_IsString(content)) buf_printf(out, "%s\n", content->valuestring);
        for (const cJSON *part = cJSON_IsArray(content) ? content->child : NULL; part; part = part->next) {
            const cJSON *text = cJSON_GetObjectItemCaseSensitive(part, "text");
            if (cJSON_IsString(text)) buf_printf(out, "%s\n", text->valuestring);
        }
    }
}

/* Fails the request, quoting the start of text on one line (cut on a character). */
static void fail_unanswered(assay_request *request, const test_case *c, const char *what, const char *text) {
    buf message;
    buf_init(&message);
    buf_printf(&message, "http: %s:%zu: no reply of the case answers this %s: \"", c->file, c->line, what);
    size_t n = strlen(text), shown = n > 100 ? 100 : n;
    while (shown < n && ((unsigned char)text[shown] & 0xC0) == 0x80) shown--;
    for (size_t i = 0; i < shown; i++) buf_putc(&message, text[i] == '\n' || text[i] == '\t' ? ' ' : text[i]);
    buf_puts(&message, shown < n ? "…\"" : "\"");
    assay_request_fail(request, buf_failed(&message) ? "http: no reply of the case answers this request" : buf_cstr(&message));
    buf_free(&message);
}

static void answer_json(assay_request *request, cJSON *answer) {
    char *text = cJSON_PrintUnformatted(answer);
    if (text) assay_request_reply(request, 200, text, strlen(text));
    else assay_request_fail(request, "http: out of memory");
    free(text);
    cJSON_Delete(answer);
}

static void reply_chat(assay_request *request, const test_case *c, const cJSON *body) {
    buf prompt;
    buf_init(&prompt);
    size_t last;
    prompt_text(body, &prompt, &last);
    const cJSON *rule = find_rule(c->replies, REPLY_CHAT, buf_cstr(&prompt));
    if (!rule) {
        fail_unanswered(request, c, "chat request", buf_cstr(&prompt) + last);
    } else {
        cJSON *answer = cJSON_CreateObject();
        cJSON *first = cJSON_CreateObject();
        if (!cJSON_AddItemToArray(cJSON_AddArrayToObject(answer, "choices"), first)) cJSON_Delete(first);
        cJSON *message = cJSON_AddObjectToObject(first, "message");
        cJSON_AddStringToObject(message, "role", "assistant");
        cJSON_AddStringToObject(message, "content", cJSON_GetObjectItemCaseSensitive(rule, "reply")->valuestring);
        cJSON_AddStringToObject(first, "finish_reason", "stop");
        answer_json(request, answer);
    }
    buf_free(&prompt);
}

static void reply_embed(assay_request *request, const test_case *c, const cJSON *body) {
    const cJSON *input = cJSON_GetObjectItemCaseSensitive(body, "input");
    cJSON *answer = cJSON_CreateObject();
    cJSON *data = cJSON_AddArrayToObject(answer, "data");
    int i = 0;
    for (const cJSON *text = cJSON_IsArray(input) ? input->child : input; text; text = cJSON_IsArray(input) ? text->next : NULL, i++) {
        const char *s = cJSON_IsString(text) ? text->valuestring : "";
        const cJSON *rule = find_rule(c->replies, REPLY_EMBED, s);
        if (!rule) {
            fail_unanswered(request, c, "embedding input", s);
            cJSON_Delete(answer);
            return;
        }
        cJSON *item = cJSON_CreateObject();
        cJSON_AddNumberToObject(item, "index", i);
        cJSON_AddItemToObject(item, "embedding", cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(rule, "embedding"), 1));
        cJSON_AddItemToArray(data, item);
    }
    answer_json(request, answer);
}

/* The responder of a run whose cases script replies (assay_options_set_responder). Cases
 * without "replies" leave their requests to the network. */
static int answer_from_case(void *ctx, assay_request *request) {
    (void)ctx;
    const test_case *c = assay_request_submit_ctx(request);
    if (!c || !c->replies) return 0;
    assay_request_kind kind = assay_request_get_kind(request);
    if (kind == ASSAY_REQUEST_HTTP) {
        const char *url = assay_request_url(request);
        const cJSON *rule = find_rule(c->replies, REPLY_HTTP, url);
        if (!rule) {
            fail_unanswered(request, c, "http request", url);
            return 1;
        }
        const cJSON *status = cJSON_GetObjectItemCaseSensitive(rule, "status");
        const cJSON *body = cJSON_GetObjectItemCaseSensitive(rule, "body");
        const char *text = cJSON_IsString(body) ? body->valuestring : "";
        assay_request_reply(request, status ? (long)status->valuedouble : 200, text, strlen(text));
        return 1;
    }
    size_t len;
    const char *text = assay_request_body(request, &len);
    cJSON *body = cJSON_ParseWithLength(text, len);
    if (kind == ASSAY_REQUEST_CHAT) reply_chat(request, c, body);
    else reply_embed(request, c, body);
    cJSON_Delete(body);
    return 1;
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
        c->file = path;
        const cJSON *replies = cJSON_GetObjectItemCaseSensitive(root, "replies");
        const char *problem = replies && !cJSON_IsArray(replies) ? "\"replies\" is a list" : NULL;
        for (const cJSON *rule = cJSON_IsArray(replies) ? replies->child : NULL; rule && !problem; rule = rule->next)
            problem = rule_problem(rule);
        if (problem) {
            fprintf(stderr, "assay: %s:%zu: %s\n", path, line_no, problem);
            rc = CLI_EXIT_USAGE;
            break;
        }
        c->replies = replies;
        t->has_replies |= replies != NULL;
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
        if (t.has_replies) assay_options_set_responder(o->host, answer_from_case, NULL);
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
