/* cli_suite.c - the suite file (assay.lua, or run -c FILE): the settings of a run written
 * once, in Lua, instead of repeated on every CI command line.
 *
 * The file runs in the sandbox (no I/O, the usual limits) and returns a table, which is
 * turned into the command-line options it stands for and placed before the real ones:
 * every value is then checked by the same code and with the same messages as a flag, and a
 * flag given on the command line overrides the file (the later option wins; -e and --gate
 * add to the file's). Relative paths in the file are taken from the file's directory. A
 * value that is refused is named by its field and by the line of the file that holds it.
 */
#include "cli.h"

#include <cjson/cJSON.h>

#include <stdlib.h>
#include <string.h>

/* Keys whose value is one option: its flag, and whether it is a path. */
typedef struct suite_key {
    const char *key, *flag;
    bool is_path;
} suite_key;

static const suite_key suite_scalars[] = {
    {"group_by", "--group-by", false}, {"label", "--label", false},   {"output", "--output", true},
    {"junit", "--junit", true},        {"csv", "--csv", true},         {"db", "--db", true},
    {"sample", "--sample", false},     {"seed", "--seed", false},      {"jobs", "--jobs", false},
    {"timeout_ms", "--timeout-ms", false}, {"memory_mb", "--memory-mb", false},
};
static const suite_key suite_llm[] = {
    {"url", "--llm-url", false},           {"model", "--llm-model", false}, {"timeout_ms", "--llm-timeout-ms", false},
    {"max_inflight", "--max-inflight", false}, {"rps", "--rps", false},      {"tpm", "--tpm", false},
    {"max_tokens_total", "--max-tokens-total", false}, {"retries", "--retries", false}, {"cache", "--cache", true},
};
static const char suite_known[] = "evaluators, params, gates, inputs, llm, group_by, label, output, junit, "
                                  "junit_per_trace, csv, db, "
                                  "sample, seed, jobs, timeout_ms, memory_mb";

typedef struct suite {
    const char *path;
    char *dir;    /* the file's directory, with a trailing '/', or "" */
    char *source; /* for the line of a value */
    char **args;
    size_t n, cap;
    char *err;
    size_t errlen;
} suite;

static int push(suite *s, char *owned) {
    if (!owned) return -1;
    if (s->n + 1 >= s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 32;
        char **grown = realloc(s->args, cap * sizeof *grown);
        if (!grown) {
            free(owned);
            return -1;
        }
        s->args = grown, s->cap = cap;
    }
    s->args[s->n++] = owned;
    s->args[s->n] = NULL;
    return 0;
}

/* The line of the file where text first appears quoted, or 0. */
static int line_of(const suite *s, const char *text) {
    if (!s->source || !*text) return 0;
    size_t len = strlen(text);
    for (const char *p = s->source; (p = strstr(p, text)) != NULL; p++) {
        if (p == s->source || (p[-1] != '"' && p[-1] != '\'') || (p[len] != p[-1])) continue;
        int line = 1;
        for (const char *q = s->source; q < p; q++) line += *q == '\n';
        return line;
    }
    return 0;
}

static int refuse(suite *s, const char *field, const char *value, const char *why) {
    int line = value ? line_of(s, value) : 0;
    if (line) snprintf(s->err, s->errlen, "%s:%d: %s: %s", s->path, line, field, why);
    else snprintf(s->err, s->errlen, "%s: %s: %s", s->path, field, why);
    return -1;
}

/* A value as option text: strings as they are, numbers and booleans written out. */
static char *value_text(const cJSON *v) {
    char number[64];
    if (cJSON_IsString(v)) return strdup(v->valuestring);
    if (cJSON_IsBool(v)) return strdup(cJSON_IsTrue(v) ? "true" : "false");
    if (!cJSON_IsNumber(v)) return NULL;
    double d = v->valuedouble;
    if (d == (double)(long long)d && d > -1e15 && d < 1e15) snprintf(number, sizeof number, "%lld", (long long)d);
    else snprintf(number, sizeof number, "%.17g", d);
    return strdup(number);
}

static char *path_text(const suite *s, const char *p) {
    if (p[0] == '/' || strcmp(p, "-") == 0 || !*s->dir) return strdup(p);
    size_t n = strlen(s->dir) + strlen(p) + 1;
    char *out = malloc(n);
    if (out) snprintf(out, n, "%s%s", s->dir, p);
    return out;
}

static int push_option(suite *s, const char *flag, const cJSON *v, bool is_path, const char *field) {
    char *text = value_text(v);
    if (!text) return refuse(s, field, NULL, "a string, number or boolean was expected");
    if (is_path) {
        char *p = path_text(s, text);
        free(text);
        text = p;
    }
    return push(s, strdup(flag)) || push(s, text) ? refuse(s, field, NULL, "out of memory") : 0;
}

/* A string, or a list of strings, each pushed after flag (NULL: as they are). */
static int push_list(suite *s, const char *flag, const cJSON *v, bool is_path, const char *field) {
    if (cJSON_IsString(v)) return flag ? push_option(s, flag, v, is_path, field) : push(s, path_text(s, v->valuestring));
    if (!cJSON_IsArray(v)) return refuse(s, field, NULL, "a string or a list of strings was expected");
    for (const cJSON *x = v->child; x; x = x->next) {
        if (!cJSON_IsString(x)) return refuse(s, field, NULL, "every item must be a string");
        int rc = flag ? push_option(s, flag, x, is_path, field) : push(s, path_text(s, x->valuestring));
        if (rc) return -1;
    }
    return 0;
}

/* params = { relevance = { min_relevance = 0.6 } }: -p relevance.min_relevance=0.6 */
static int push_params(suite *s, const cJSON *v) {
    if (!cJSON_IsObject(v)) return refuse(s, "params", NULL, "a table of evaluator = { key = value } was expected");
    for (const cJSON *e = v->child; e; e = e->next) {
        if (!cJSON_IsObject(e)) return refuse(s, "params", e->string, "each evaluator's params must be a table");
        for (const cJSON *k = e->child; k; k = k->next) {
            char *value = value_text(k);
            if (!value) return refuse(s, "params", k->string, "a param is a string, number or boolean");
            size_t n = strlen(e->string) + strlen(k->string) + strlen(value) + 3;
            char *assignment = malloc(n);
            if (assignment) snprintf(assignment, n, "%s.%s=%s", e->string, k->string, value);
            free(value);
            if (push(s, strdup("-p")) || push(s, assignment)) return refuse(s, "params", NULL, "out of memory");
        }
    }
    return 0;
}

static int push_keyed(suite *s, const cJSON *x, const suite_key *keys, size_t count, const char *scope) {
    for (size_t i = 0; i < count; i++)
        if (strcmp(x->string, keys[i].key) == 0) return push_option(s, keys[i].flag, x, keys[i].is_path, x->string);
    char why[300];
    snprintf(why, sizeof why, "unknown %s key (known: %s)", scope,
             keys == suite_llm ? "url, model, endpoints, timeout_ms, max_inflight, rps, tpm, max_tokens_total, retries, cache"
                               : suite_known);
    return refuse(s, x->string, x->string, why);
}

/* llm = { endpoints = { local = "http://…/v1" } }: --llm-endpoint local=http://…/v1 */
static int push_endpoints(suite *s, const cJSON *v) {
    if (!cJSON_IsObject(v)) return refuse(s, "endpoints", NULL, "a table of name = \"URL\" was expected");
    for (const cJSON *e = v->child; e; e = e->next) {
        if (!cJSON_IsString(e)) return refuse(s, "endpoints", e->string, "each endpoint's URL must be a string");
        size_t n = strlen(e->string) + strlen(e->valuestring) + 2;
        char *spec = malloc(n);
        if (spec) snprintf(spec, n, "%s=%s", e->string, e->valuestring);
        if (push(s, strdup("--llm-endpoint")) || push(s, spec)) return refuse(s, "endpoints", NULL, "out of memory");
    }
    return 0;
}

/* Gates are checked here, where the line they are on is known. */
static int check_gates(suite *s, const cJSON *v) {
    for (const cJSON *x = cJSON_IsArray(v) ? v->child : v; x; x = cJSON_IsArray(v) ? x->next : NULL) {
        gate g;
        char why[512];
        if (cJSON_IsString(x) && gate_parse(x->valuestring, &g, why, sizeof why) != 0)
            return refuse(s, "gates", x->valuestring, why);
    }
    return 0;
}

static int push_settings(suite *s, const cJSON *root, cJSON **inputs) {
    for (const cJSON *x = root->child; x; x = x->next) {
        int rc;
        if (strcmp(x->string, "evaluators") == 0) rc = push_list(s, "-e", x, true, "evaluators");
        else if (strcmp(x->string, "gates") == 0) rc = check_gates(s, x) || push_list(s, "--gate", x, false, "gates");
        else if (strcmp(x->string, "params") == 0) rc = push_params(s, x);
        else if (strcmp(x->string, "inputs") == 0) rc = (*inputs = (cJSON *)x, 0);
        else if (strcmp(x->string, "junit_per_trace") == 0)
            rc = !cJSON_IsBool(x) ? refuse(s, x->string, NULL, "true or false was expected")
                 : cJSON_IsTrue(x) && push(s, strdup("--junit-per-trace")) ? refuse(s, x->string, NULL, "out of memory")
                                                                             : 0;
        else if (strcmp(x->string, "llm") == 0) {
            rc = cJSON_IsObject(x) ? 0 : refuse(s, "llm", NULL, "a table was expected");
            for (const cJSON *k = x->child; k && !rc; k = k->next)
                rc = strcmp(k->string, "endpoints") == 0 ? push_endpoints(s, k)
                                                         : push_keyed(s, k, suite_llm, sizeof suite_llm / sizeof *suite_llm, "llm");
        } else rc = push_keyed(s, x, suite_scalars, sizeof suite_scalars / sizeof *suite_scalars, "suite");
        if (rc) return -1;
    }
    return 0;
}

int suite_load(const char *path, const assay_options *limits, suite_args *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    suite s = {.path = path, .err = err, .errlen = errlen};
    const char *slash = strrchr(path, '/');
    s.dir = slash ? strndup(path, (size_t)(slash - path + 1)) : strdup("");
    char *json = NULL;
    assay_error aerr;
    if (assay_eval_settings(limits, path, &json, &aerr) != ASSAY_OK) {
        snprintf(err, errlen, "%s", aerr.message);
        free(s.dir);
        return -1;
    }
    cJSON *root = cJSON_Parse(json);
    free(json);
    FILE *f = fopen(path, "rb");
    buf text;
    buf_init(&text);
    char chunk[8192];
    for (size_t n; f && (n = fread(chunk, 1, sizeof chunk, f)) > 0;) buf_append(&text, chunk, n);
    if (f) fclose(f);
    s.source = buf_steal(&text);
    cJSON *inputs = NULL;
    int rc = !cJSON_IsObject(root) ? refuse(&s, "the returned table", NULL, "must have named fields (evaluators = …)")
                                   : push_settings(&s, root, &inputs);
    out->options = s.args, out->option_count = s.n;
    s.args = NULL, s.n = s.cap = 0;
    if (rc == 0 && inputs) rc = push_list(&s, NULL, inputs, true, "inputs");
    out->inputs = s.args, out->input_count = s.n;
    if (rc != 0) suite_args_free(out);
    cJSON_Delete(root);
    free(s.source);
    free(s.dir);
    return rc;
}

void suite_args_free(suite_args *a) {
    for (size_t i = 0; i < a->option_count; i++) free(a->options[i]);
    for (size_t i = 0; i < a->input_count; i++) free(a->inputs[i]);
    free(a->options);
    free(a->inputs);
    memset(a, 0, sizeof *a);
}
