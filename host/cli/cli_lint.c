/* cli_lint.c - `assay lint FILE...`: checks trace files against docs/format.md and says,
 * per line, what is wrong and how to fix it. The mistakes it knows are the ones people make
 * when they write their first converter: a pretty-printed file or a JSON array instead of
 * JSON lines, a numeric id, trace_id instead of id, Markdown links instead of [k] markers
 * with a citations list, step types the evaluators do not read, results without URLs.
 * Exit 0 when clean, 3 with findings, 4 when a file cannot be read.
 */
#include "cli.h"

#include <cjson/cJSON.h>

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

typedef struct lint {
    const char *path;
    uint64_t findings;
} lint;

static void finding(lint *l, uint64_t line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void finding(lint *l, uint64_t line, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    printf("%s:%llu: ", l->path, (unsigned long long)line);
    vprintf(fmt, ap);
    putchar('\n');
    va_end(ap);
    l->findings++;
}

/* Markdown links [text](http...) in the output, when no [k] marker is there. */
static bool has_markdown_links(const char *s) {
    for (const char *p = strstr(s, "]("); p; p = strstr(p + 2, "]("))
        if (strncmp(p + 2, "http://", 7) == 0 || strncmp(p + 2, "https://", 8) == 0) return true;
    return false;
}

static bool has_numbered_markers(const char *s) {
    for (const char *p = strchr(s, '['); p; p = strchr(p + 1, '['))
        if (p[1] >= '0' && p[1] <= '9' && strspn(p + 1, "0123456789") < 6 && p[1 + strspn(p + 1, "0123456789")] == ']')
            return true;
    return false;
}

/* The documented step type a type of another name most likely means, or NULL. */
static const char *step_type_meant(const char *type) {
    static const struct { const char *word, *meant; } aliases[] = {
        {"search", "search"}, {"retriev", "search"}, {"query", "search"}, {"fetch", "fetch"}, {"scrape", "fetch"},
        {"browse", "fetch"}, {"crawl", "fetch"}, {"visit", "fetch"}, {"read_url", "fetch"}, {"open_page", "fetch"},
        {"chat", "llm"}, {"completion", "llm"}, {"generation", "llm"}, {"llm", "llm"}, {"model_call", "llm"},
    };
    char lower[64];
    size_t n = 0;
    for (; type[n] && n + 1 < sizeof lower; n++) lower[n] = (char)tolower((unsigned char)type[n]);
    lower[n] = '\0';
    for (size_t i = 0; i < sizeof aliases / sizeof *aliases; i++)
        if (strstr(lower, aliases[i].word)) return aliases[i].meant;
    return NULL;
}

static void lint_step(lint *l, uint64_t line, int i, const cJSON *step) {
    if (!cJSON_IsObject(step)) {
        finding(l, line, "steps[%d] is not an object; hint: each step is {\"type\": \"search\" | \"fetch\" | \"llm\", ...}", i);
        return;
    }
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(step, "type");
    if (!cJSON_IsString(type)) {
        finding(l, line, "steps[%d] has no string \"type\"; hint: \"type\": \"search\", \"fetch\" or \"llm\" "
                         "(other types pass through to plugins)", i);
        return;
    }
    const char *t = type->valuestring;
    if (strcmp(t, "search") != 0 && strcmp(t, "fetch") != 0 && strcmp(t, "llm") != 0) {
        /* other types pass through to plugins (docs/format.md); but one that names a search,
         * a page read or a model call under another name is missed by every evaluator */
        const char *meant = step_type_meant(t);
        if (meant)
            finding(l, line, "steps[%d] has type \"%s\", which no shipped evaluator reads; hint: \"type\": \"%s\"", i, t,
                    meant);
        return;
    }
    if (strcmp(t, "search") == 0) {
        const cJSON *query = cJSON_GetObjectItemCaseSensitive(step, "query");
        if (!cJSON_IsString(query))
            finding(l, line, "steps[%d] (search) has no string \"query\"%s", i,
                    cJSON_GetObjectItemCaseSensitive(step, "q") ? "; hint: rename \"q\" to \"query\"" : "");
        const cJSON *results = cJSON_GetObjectItemCaseSensitive(step, "results");
        if (results && !cJSON_IsArray(results)) {
            finding(l, line, "steps[%d] (search): \"results\" is not a list of {url, title, snippet}", i);
            return;
        }
        int k = 0;
        const cJSON *r;
        cJSON_ArrayForEach(r, results) {
            if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(r, "url"))) {
                const cJSON *link = cJSON_GetObjectItemCaseSensitive(r, "link");
                const cJSON *href = cJSON_GetObjectItemCaseSensitive(r, "href");
                finding(l, line, "steps[%d].results[%d] has no string \"url\"%s", i, k,
                        link ? "; hint: rename \"link\" to \"url\"" : href ? "; hint: rename \"href\" to \"url\"" : "");
            }
            k++;
        }
    } else if (strcmp(t, "fetch") == 0 && !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(step, "url"))) {
        finding(l, line, "steps[%d] (fetch) has no string \"url\"", i);
    }
}

static void lint_trace(lint *l, uint64_t line, const cJSON *t) {
    if (!cJSON_IsObject(t)) {
        finding(l, line, "a trace must be a JSON object");
        return;
    }
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(t, "id");
    if (!id) {
        const cJSON *alt = cJSON_GetObjectItemCaseSensitive(t, "trace_id");
        finding(l, line, "no \"id\"%s", alt ? "; hint: rename \"trace_id\" to \"id\"" : "; hint: every trace needs a string \"id\"");
    } else if (cJSON_IsNumber(id)) {
        finding(l, line, "\"id\" is a number; hint: make it a string: \"id\": \"%.17g\"", id->valuedouble);
    } else if (!cJSON_IsString(id)) {
        finding(l, line, "\"id\" must be a string");
    }
    static const char *const strings[] = {"input", "output"};
    for (size_t i = 0; i < 2; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(t, strings[i]);
        if (v && !cJSON_IsString(v) && !cJSON_IsNull(v)) finding(l, line, "\"%s\" is not a string", strings[i]);
    }
    const cJSON *output = cJSON_GetObjectItemCaseSensitive(t, "output");
    const cJSON *citations = cJSON_GetObjectItemCaseSensitive(t, "citations");
    if (cJSON_IsString(output) && has_markdown_links(output->valuestring) && !has_numbered_markers(output->valuestring))
        finding(l, line, "the output cites with Markdown links; hint: the citation evaluators read [k] markers that "
                         "point into \"citations\" (a list of URLs): \"... fell by 2%% [1].\" with \"citations\": [\"https://...\"]");
    if (citations && !cJSON_IsArray(citations)) finding(l, line, "\"citations\" is not a list of URLs");
    const cJSON *c;
    int k = 0;
    cJSON_ArrayForEach(c, citations) {
        if (!cJSON_IsString(c))
            finding(l, line, "citations[%d] is not a string URL%s", k,
                    cJSON_GetObjectItemCaseSensitive(c, "url") ? "; hint: keep only its \"url\"" : "");
        k++;
    }
    const cJSON *steps = cJSON_GetObjectItemCaseSensitive(t, "steps");
    if (steps && !cJSON_IsArray(steps)) {
        finding(l, line, "\"steps\" is not a list");
        return;
    }
    int i = 0;
    const cJSON *s;
    cJSON_ArrayForEach(s, steps) lint_step(l, line, i++, s);
    const cJSON *metadata = cJSON_GetObjectItemCaseSensitive(t, "metadata");
    if (metadata && !cJSON_IsObject(metadata)) finding(l, line, "\"metadata\" is not an object");
}

/* A file that is not JSON lines: say what it is instead of a finding per line. */
static bool lint_whole(lint *l, FILE *f, const char *first, size_t first_len) {
    buf text;
    buf_init(&text);
    buf_append(&text, first, first_len);
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0 && text.len < (256u << 20)) buf_append(&text, chunk, n);
    cJSON *v = cJSON_ParseWithLength(text.data, text.len);
    buf_free(&text);
    if (!v) return false;
    if (cJSON_IsArray(v))
        finding(l, 1, "the file is one JSON array, not JSON lines; hint: one trace per line: jq -c '.[]' %s > traces.jsonl", l->path);
    else
        finding(l, 1, "the file is one pretty-printed JSON value, not JSON lines; hint: jq -c . %s > traces.jsonl", l->path);
    cJSON_Delete(v);
    return true;
}

static int lint_file(lint *l, FILE *f) {
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    uint64_t line_no = 0;
    while ((n = getline(&line, &cap, f)) != -1) {
        line_no++;
        size_t len = (size_t)n;
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) len--;
        if (len == 0) {
            finding(l, line_no, "an empty line");
            continue;
        }
        cJSON *v = cJSON_ParseWithLength(line, len);
        if (!v && line_no == 1 && (line[0] == '[' || line[0] == '{') && lint_whole(l, f, line, (size_t)n)) break;
        if (!v) finding(l, line_no, "not valid JSON");
        else if (cJSON_IsArray(v))
            finding(l, line_no, "a JSON array, not a trace; hint: one trace object per line: jq -c '.[]' %s > traces.jsonl", l->path);
        else lint_trace(l, line_no, v);
        cJSON_Delete(v);
    }
    free(line);
    return ferror(f) ? -1 : 0;
}

int cli_lint(const char *const *inputs, size_t count) {
    if (count == 0) {
        fprintf(stderr, "assay: usage: assay lint FILE... (- for standard input)\n");
        return CLI_EXIT_USAGE;
    }
    uint64_t findings = 0;
    for (size_t i = 0; i < count; i++) {
        bool is_stdin = strcmp(inputs[i], "-") == 0;
        FILE *f = is_stdin ? stdin : fopen(inputs[i], "rb");
        if (!f) {
            fprintf(stderr, "assay: %s: %s\n", inputs[i], strerror(errno));
            return CLI_EXIT_IO;
        }
        lint l = {is_stdin ? "(stdin)" : inputs[i], 0};
        int rc = lint_file(&l, f);
        if (!is_stdin) fclose(f);
        if (rc != 0) {
            fprintf(stderr, "assay: %s: read error\n", inputs[i]);
            return CLI_EXIT_IO;
        }
        findings += l.findings;
    }
    fflush(stdout); /* the findings before the count, when both go to one terminal or file */
    fprintf(stderr, "assay: %llu finding%s\n", (unsigned long long)findings, findings == 1 ? "" : "s");
    return findings ? CLI_EXIT_RECORD_ERRORS : CLI_EXIT_OK;
}
