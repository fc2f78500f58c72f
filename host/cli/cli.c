/* cli.c - the `assay` command: the table of commands and their options, parsing, help,
 * `list` and `check`. Each command owns its name, its options, its usage and its handler
 * (`run` lives in cli_run.c, `test` in cli_test.c, `runs` and `compare` in cli_compare.c,
 * `report` in cli_report.c); main parses what every command shares, looks the command up
 * and calls it. The CLI is a thin layer: everything it does with plugins and traces goes
 * through assay.h. */
#include "cli.h"
#include "../base/buf.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* The command being run, for messages that point at its help. */
static const char *current_command;

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "assay: ");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (current_command) fprintf(stderr, "\n(see assay help %s)\n", current_command);
    else fprintf(stderr, "\n(see assay --help)\n");
    return CLI_EXIT_USAGE;
}

static bool parse_unsigned(const char *s, unsigned *out) {
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end || *s == '-' || v > UINT_MAX) return false;
    *out = (unsigned)v;
    return true;
}

static bool is_directory(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

const char *cli_shipped_plugin_dir(void) {
    static char found[PATH_MAX];
    if (found[0]) return found;
    const char *env = getenv("ASSAY_PLUGIN_DIR");
    if (env && is_directory(env)) {
        snprintf(found, sizeof found, "%s", env);
        return found;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) *slash = '\0';
        const char *relative[] = {"/../plugins", "/../share/assay/plugins"};
        for (size_t i = 0; i < 2; i++) {
            char candidate[PATH_MAX + 32];
            snprintf(candidate, sizeof candidate, "%s%s", exe, relative[i]);
            if (is_directory(candidate) && realpath(candidate, found)) return found;
        }
    }
    snprintf(found, sizeof found, "%s/plugins", ASSAY_DATADIR);
    return found;
}

/* --------------------------------------------------------------------- list, check */

static int with_host(cli_options *o, int (*body)(assay_host *, void *), void *ctx, assay_error *err) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    assay_host *host;
    assay_options_set_workers(o->host, 1);
    int status = assay_host_new(&host, &loop, o->host, NULL, NULL, err);
    int rc = status == ASSAY_OK ? body(host, ctx) : status;
    if (status == ASSAY_OK) {
        assay_host_close(host, NULL);
        uv_run(&loop, UV_RUN_DEFAULT);
    }
    uv_loop_close(&loop);
    return rc;
}

static int list_body(assay_host *host, void *ctx) {
    (void)ctx;
    for (size_t i = 0; i < assay_host_plugin_count(host); i++) {
        assay_plugin_info info;
        assay_host_plugin_info(host, i, &info, sizeof info);
        printf("%-20s scope=%-8s %s\n", info.name, info.scope, info.path);
        if (*info.description) printf("    %s\n", info.description);
        printf("    params: %s\n", info.params_json);
    }
    return CLI_EXIT_OK;
}

static int cmd_list(cli_options *o) {
    assay_error err;
    int rc = with_host(o, list_body, NULL, &err);
    if (rc < 0) {
        fprintf(stderr, "assay: %s\n", err.message);
        return CLI_EXIT_USAGE;
    }
    return rc;
}

const char *cli_hint(const char *message) {
    static const struct { const char *phrase, *hint; } hints[] = {
        {" ms time limit", "--timeout-ms MS raises the time limit"},
        {" MiB memory limit", "--memory-mb MB raises the memory limit"},
        {"no LLM endpoint configured", "pass --llm-url URL and --llm-model NAME (or set ASSAY_LLM_URL, ASSAY_LLM_MODEL)"},
        {"no model (", "pass --llm-model NAME (or set ASSAY_LLM_MODEL)"},
        {"the spend cap of ", "--max-tokens-total N raises the spend cap"},
    };
    for (size_t i = 0; message && i < sizeof hints / sizeof *hints; i++)
        if (strstr(message, hints[i].phrase)) return hints[i].hint;
    return NULL;
}

/* The static half of `assay check`: globals the sandbox withholds (the library says which,
 * from the lists its environment is built from), found by a small Lua lexer that skips
 * comments and strings. A plugin that uses them would fail only when that line runs,
 * perhaps on one trace in a million. */

/* Skips a long bracket [[...]] / [==[...]==] starting at s[i] == '['; returns the index
 * after it, or i if there is none. */
static size_t skip_long_bracket(const char *s, size_t n, size_t i, int *line) {
    size_t j = i + 1, level = 0;
    while (j < n && s[j] == '=') j++, level++;
    if (j >= n || s[j] != '[') return i;
    for (j++; j < n; j++) {
        if (s[j] == '\n') (*line)++;
        if (s[j] != ']') continue;
        size_t k = j + 1, l = 0;
        while (k < n && s[k] == '=') k++, l++;
        if (l == level && k < n && s[k] == ']') return k + 1;
    }
    return n;
}

/* Calls fn for each global name a Lua source uses (an identifier not after '.' or ':'),
 * with the field that follows it (`os.getenv` gives os and getenv; none gives len 0), skipping
 * comments and strings. A lexer, not a parser: enough to find what a plugin reaches for. */
typedef void (*global_use_fn)(const char *word, size_t len, const char *field, size_t flen, int line, void *ctx);

static bool is_name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static void global_uses(const char *s, size_t n, global_use_fn fn, void *ctx) {
    int line = 1;
    char prev = 0; /* last significant character */
    for (size_t i = 0; i < n;) {
        char c = s[i];
        if (c == '\n') { line++, i++; continue; }
        if (c == ' ' || c == '\t' || c == '\r') { i++; continue; }
        if (c == '-' && i + 1 < n && s[i + 1] == '-') {
            size_t after = i + 2 < n && s[i + 2] == '[' ? skip_long_bracket(s, n, i + 2, &line) : i + 2;
            if (after != i + 2) { i = after; continue; }
            while (i < n && s[i] != '\n') i++;
            continue;
        }
        if (c == '"' || c == '\'') {
            for (i++; i < n && s[i] != c; i++) {
                if (s[i] == '\\' && i + 1 < n) i++;
                if (s[i] == '\n') line++;
            }
            i++, prev = 's';
            continue;
        }
        if (c == '[') {
            size_t after = skip_long_bracket(s, n, i, &line);
            if (after != i) { i = after, prev = 's'; continue; }
        }
        if (is_name_char(c) && !(c >= '0' && c <= '9')) {
            size_t start = i;
            while (i < n && is_name_char(s[i])) i++;
            if (prev != '.' && prev != ':') {
                size_t j = i, fstart = i;
                while (j < n && (s[j] == ' ' || s[j] == '\t')) j++;
                if (j < n && s[j] == '.' && !(j + 1 < n && s[j + 1] == '.')) {
                    j++;
                    while (j < n && (s[j] == ' ' || s[j] == '\t')) j++;
                    fstart = j;
                    while (j < n && is_name_char(s[j])) j++;
                }
                fn(s + start, i - start, s + fstart, j > fstart ? j - fstart : 0, line, ctx);
            }
            prev = 'w';
            continue;
        }
        prev = c;
        i++;
    }
}

typedef struct withheld_scan {
    const char *path;
    int problems;
} withheld_scan;

static void report_withheld(const char *word, size_t len, const char *field, size_t flen, int line, void *ctx) {
    withheld_scan *w = ctx;
    char global[64], member[64];
    if (len >= sizeof global || flen >= sizeof member) return; /* longer than any name withheld */
    memcpy(global, word, len), global[len] = '\0';
    memcpy(member, field, flen), member[flen] = '\0';
    const char *why = assay_sandbox_withheld(global, NULL);
    if (why) {
        printf("  %s:%d: uses '%s': %s\n", w->path, line, global, why);
        w->problems++;
    } else if (flen && (why = assay_sandbox_withheld(global, member))) {
        printf("  %s:%d: uses '%s.%s': %s\n", w->path, line, global, member, why);
        w->problems++;
    }
}

static int scan_withheld(const char *path, const char *s, size_t n) {
    withheld_scan w = {path, 0};
    global_uses(s, n, report_withheld, &w);
    return w.problems;
}

static void find_llm(const char *word, size_t len, const char *field, size_t flen, int line, void *ctx) {
    (void)line;
    if (len == 5 && memcmp(word, "assay", 5) == 0 && flen == 3 && memcmp(field, "llm", 3) == 0) *(bool *)ctx = true;
}

/* Reads a whole file into text; false when it cannot. */
static bool read_file(const char *path, buf *text) {
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) buf_append(text, chunk, n);
    bool ok = !ferror(f) && !buf_failed(text);
    fclose(f);
    return ok;
}

bool cli_plugin_calls_llm(const char *path) {
    buf text;
    buf_init(&text);
    bool calls = false;
    if (read_file(path, &text)) global_uses(buf_cstr(&text), text.len, find_llm, &calls);
    buf_free(&text);
    return calls;
}

static int check_body(assay_host *host, void *ctx) {
    (void)ctx;
    assay_plugin_info info;
    assay_host_plugin_info(host, 0, &info, sizeof info);
    printf("ok   %s: %s (scope %s)\n", info.path, info.name, info.scope);
    if (*info.description) printf("  %s\n", info.description);
    else printf("  warning: no description\n");
    printf("  params: %s\n", info.params_json);
    static const char *const known_scopes[] = {"trace", "search", "fetch", "llm", NULL};
    const char *const *known = known_scopes;
    while (*known && strcmp(*known, info.scope) != 0) known++;
    if (!*known)
        printf("  warning: scope '%s' is not a known step type (trace, search, fetch, llm): it runs only on steps "
               "whose type is exactly '%s'\n", info.scope, info.scope);
    return 0;
}

static int compare_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The plugin files an argument of `check` names: itself, or a directory's *.lua files in
 * name order, as `run -e DIR` loads them. Appends owned paths to *list. */
static bool check_expand(const char *arg, char ***list, size_t *count) {
    struct stat st;
    size_t first = *count;
    if (stat(arg, &st) == 0 && S_ISDIR(st.st_mode)) {
        DIR *dir = opendir(arg);
        if (!dir) return false;
        for (struct dirent *e; (e = readdir(dir)) != NULL;) {
            size_t n = strlen(e->d_name);
            if (n <= 4 || strcmp(e->d_name + n - 4, ".lua") != 0 || e->d_name[0] == '.') continue;
            char **grown = realloc(*list, (*count + 1) * sizeof **list);
            if (!grown) break;
            *list = grown;
            buf path;
            buf_init(&path);
            buf_printf(&path, "%s%s%s", arg, arg[strlen(arg) - 1] == '/' ? "" : "/", e->d_name);
            if (buf_failed(&path)) {
                buf_free(&path);
                break;
            }
            (*list)[(*count)++] = buf_steal(&path);
        }
        closedir(dir);
        if (*count > first) qsort(*list + first, *count - first, sizeof **list, compare_names);
        return true;
    }
    char **grown = realloc(*list, (*count + 1) * sizeof **list);
    if (!grown) return false;
    *list = grown;
    return ((*list)[(*count)++] = strdup(arg)) != NULL;
}

static int cmd_check(cli_options *o, char **args, int arg_count) {
    if (arg_count == 0) return usage_error("%s", "check needs at least one plugin file or directory");
    char **plugins = NULL;
    size_t count = 0;
    int failed = 0;
    for (int i = 0; i < arg_count; i++) {
        size_t before = count;
        if (!check_expand(args[i], &plugins, &count)) {
            fprintf(stderr, "assay: check: %s: %s\n", args[i], strerror(errno));
            for (size_t k = 0; k < count; k++) free(plugins[k]);
            free(plugins);
            return CLI_EXIT_USAGE;
        }
        if (count == before) { /* a directory without plugins fails the check */
            printf("FAIL %s: no *.lua plugin files in this directory\n", args[i]);
            failed++;
        }
    }
    for (size_t i = 0; i < count; i++) {
        assay_options *single = assay_options_new();
        if (!single) {
            failed++;
            break;
        }
        assay_options_add_plugin_path(single, plugins[i]);
        char lib[PATH_MAX + 8];
        snprintf(lib, sizeof lib, "%s/lib", cli_shipped_plugin_dir());
        assay_options_add_lib_dir(single, lib);
        cli_options one = *o;
        one.host = single;
        assay_error err;
        int rc = with_host(&one, check_body, NULL, &err);
        if (rc < 0) {
            printf("FAIL %s\n  %s\n", plugins[i], err.message);
            failed++;
        }
        {   /* the scan also runs when loading failed: it finds the uses that did not run yet */
            buf text;
            buf_init(&text);
            read_file(plugins[i], &text);
            int problems = scan_withheld(plugins[i], buf_cstr(&text), text.len);
            buf_free(&text);
            if (problems) {
                printf("FAIL %s: %d use%s of what the sandbox withholds\n", plugins[i], problems, problems > 1 ? "s" : "");
                if (rc >= 0) failed++;
            }
        }
        assay_options_free(single);
    }
    for (size_t i = 0; i < count; i++) free(plugins[i]);
    free(plugins);
    return failed ? CLI_EXIT_USAGE : CLI_EXIT_OK;
}

/* ------------------------------------------------------------- commands and options */

enum {
    OPT_TIMEOUT = 256, OPT_MEMORY, OPT_GROUP_BY, OPT_NO_TIMING, OPT_RESUME, OPT_CASES, OPT_VERSION, OPT_LLM_URL, OPT_LLM_MODEL, OPT_LLM_ENDPOINT,
    OPT_LLM_TIMEOUT, OPT_MAX_INFLIGHT, OPT_RPS, OPT_TPM, OPT_MAX_TOKENS, OPT_RETRIES, OPT_RETRY_BASE, OPT_CACHE,
    OPT_NO_CACHE, OPT_DB, OPT_NO_DB, OPT_LABEL, OPT_SAMPLE, OPT_SEED, OPT_SHARD, OPT_INPUT, OPT_FOLLOW, OPT_JUNIT, OPT_JUNIT_PER_TRACE, OPT_CSV,
    OPT_FAIL_ON_REGRESSION,
    OPT_FROM,
    OPT_MAP,
    OPT_JSON,
    OPT_OPEN_TRACES,
    OPT_GATE,
    OPT_MIN_DELTA,
    OPT_STRICT,
    OPT_CORRECTION,
};

/* The command line as one string for the run store, arguments with spaces quoted. */
static char *join_command_line(int argc, char **argv) {
    buf b;
    buf_init(&b);
    for (int i = 0; i < argc; i++) {
        if (i) buf_putc(&b, ' ');
        bool needs_quotes = !*argv[i] || strpbrk(argv[i], " \t\n'\"$\\") != NULL;
        if (!needs_quotes) {
            buf_puts(&b, argv[i]);
            continue;
        }
        buf_putc(&b, '\'');
        for (const char *p = argv[i]; *p; p++) {
            if (*p == '\'') buf_puts(&b, "'\\''");
            else buf_putc(&b, *p);
        }
        buf_putc(&b, '\'');
    }
    return buf_steal(&b);
}

/* What the network options say before they go into assay_options. */
typedef struct net_flags {
    const char *llm_url, *llm_model, *cache;
    const char *endpoints[ASSAY_MAX_LLM_ENDPOINTS]; /* --llm-endpoint NAME=URL */
    size_t endpoint_count;
    bool no_cache;
    unsigned max_inflight, timeout_ms, retries, retry_base_ms;
    double rps;
    long tpm, max_tokens_total;
} net_flags;

static bool parse_long(const char *s, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 0) return false;
    *out = v;
    return true;
}

static const char *env_or(const char *value, const char *name) {
    if (value) return value;
    const char *env = getenv(name);
    return env && *env ? env : NULL;
}

/* A whole number in [0, ASSAY_MAX_SHARDS]. */
static bool parse_shard_number(const char *s, const char *end, unsigned *out) {
    if (s == end || end - s > 6) return false;
    unsigned v = 0;
    for (const char *p = s; p < end; p++) {
        if (*p < '0' || *p > '9') return false;
        v = v * 10 + (unsigned)(*p - '0');
    }
    *out = v;
    return v <= ASSAY_MAX_SHARDS;
}

/* The index a scheduler gave this task: a Slurm array's (counted from its lowest index, so
 * --array=1-4 works too) or a Kubernetes Indexed Job's. Sets *count from Slurm when known. */
static int shard_from_scheduler(unsigned *index, unsigned *count) {
    const char *id = env_or(NULL, "SLURM_ARRAY_TASK_ID"), *k8s = env_or(NULL, "JOB_COMPLETION_INDEX");
    if (id) {
        const char *min = env_or(NULL, "SLURM_ARRAY_TASK_MIN"), *n = env_or(NULL, "SLURM_ARRAY_TASK_COUNT");
        unsigned i, lo = 0;
        if (!parse_shard_number(id, id + strlen(id), &i) || (min && !parse_shard_number(min, min + strlen(min), &lo)) ||
            i < lo)
            return usage_error("--shard auto: SLURM_ARRAY_TASK_ID='%s' is not an array index", id);
        *index = i - lo;
        if (n && !parse_shard_number(n, n + strlen(n), count))
            return usage_error("--shard auto: SLURM_ARRAY_TASK_COUNT='%s' is not a count", n);
        return CLI_EXIT_OK;
    }
    if (k8s && parse_shard_number(k8s, k8s + strlen(k8s), index)) return CLI_EXIT_OK;
    if (k8s) return usage_error("--shard auto: JOB_COMPLETION_INDEX='%s' is not an index", k8s);
    return usage_error("%s", "--shard auto: neither SLURM_ARRAY_TASK_ID nor JOB_COMPLETION_INDEX is set");
}

/* --shard I/N, auto (ASSAY_SHARD, else a Slurm array's index and count) or auto/N (the
 * index from Slurm or Kubernetes, N given: an Indexed Job does not tell its size). */
static int resolve_shard(cli_options *o) {
    const char *spec = o->shard ? o->shard : env_or(NULL, "ASSAY_SHARD");
    if (!spec) return CLI_EXIT_OK;
    const char *what = o->shard ? "--shard" : "ASSAY_SHARD";
    const char *slash = strchr(spec, '/');
    unsigned index = 0, count = 0;
    bool is_auto = strncmp(spec, "auto", 4) == 0 && (spec[4] == '\0' || spec[4] == '/');
    if (is_auto && !slash && o->shard && env_or(NULL, "ASSAY_SHARD")) {
        o->shard = NULL;
        return resolve_shard(o); /* auto: ASSAY_SHARD first */
    }
    if (is_auto) {
        int rc = shard_from_scheduler(&index, &count);
        if (rc) return rc;
        if (slash && !parse_shard_number(slash + 1, slash + strlen(slash), &count))
            return usage_error("%s: '%s': N after auto/ is not a shard count", what, spec);
        if (!count) return usage_error("%s: '%s': no shard count (give auto/N, or run in a Slurm array)", what, spec);
    } else if (!slash || !parse_shard_number(spec, slash, &index) || !parse_shard_number(slash + 1, slash + strlen(slash), &count)) {
        return usage_error("%s: '%s' is not I/N (e.g. 0/4), auto or auto/N", what, spec);
    }
    if (count < 1 || index >= count)
        return usage_error("%s: '%s': the index must be below the count (shards are numbered from 0)", what, spec);
    if (assay_options_set_shard(o->host, index, count) != ASSAY_OK)
        return usage_error("%s: '%s': at most %d shards", what, spec, ASSAY_MAX_SHARDS);
    o->shard_index = index;
    o->shard_count = count;
    return CLI_EXIT_OK;
}

/* --llm-endpoint NAME=URL: its key from ASSAY_LLM_KEY_<NAME> (upper case, '-' as '_'). */
static int add_endpoint(assay_options *opts, const char *spec, bool has_default) {
    const char *eq = strchr(spec, '=');
    char name[40], variable[64];
    size_t n = eq ? (size_t)(eq - spec) : 0;
    if (!eq || n == 0 || n >= sizeof name)
        return usage_error("--llm-endpoint: '%s' is not NAME=URL", spec);
    if (!has_default)
        return usage_error("--llm-endpoint %s needs --llm-url as well (the endpoint of requests that name none)", spec);
    memcpy(name, spec, n);
    name[n] = '\0';
    snprintf(variable, sizeof variable, "ASSAY_LLM_KEY_%s", name);
    for (char *p = variable; *p; p++) *p = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
    if (assay_options_add_llm_endpoint(opts, name, eq + 1, getenv(variable)) != ASSAY_OK)
        return usage_error("--llm-endpoint %s: the name must be 1 to 32 of A-Z a-z 0-9 _ - and new, the URL start with "
                           "http:// or https://", spec);
    return CLI_EXIT_OK;
}

/* Flags win over the environment. The default cache lives in .assay/ of the working
 * directory, and only when an LLM is configured: a run without one writes nothing there. */
static int apply_net_flags(assay_options *opts, const net_flags *f) {
    const char *url = env_or(f->llm_url, "ASSAY_LLM_URL");
    const char *model = env_or(f->llm_model, "ASSAY_LLM_MODEL");
    const char *key = env_or(env_or(NULL, "ASSAY_API_KEY"), "OPENAI_API_KEY");
    if (assay_options_set_llm(opts, url, model, key) != ASSAY_OK)
        return usage_error("--llm-url: '%s' must start with http:// or https://", url);
    for (size_t i = 0; i < f->endpoint_count; i++) {
        int status = add_endpoint(opts, f->endpoints[i], url != NULL);
        if (status != CLI_EXIT_OK) return status;
    }
    if (assay_options_set_http_limits(opts, f->max_inflight, f->rps, f->tpm, f->max_tokens_total) != ASSAY_OK)
        return usage_error("%s", "--max-inflight must be from 1 to 65536");
    if (assay_options_set_http_retry(opts, f->timeout_ms, f->retries, f->retry_base_ms) != ASSAY_OK)
        return usage_error("%s", "--retries must be from 1 to 100");
    const char *cache = f->no_cache ? NULL : f->cache;
    if (!cache && !f->no_cache && url) {
        if (mkdir(".assay", 0777) != 0 && errno != EEXIST) {
            fprintf(stderr, "assay: cannot create .assay/ for the cache (%s); use --cache FILE or --no-cache\n",
                    strerror(errno));
            return CLI_EXIT_USAGE;
        }
        cache = ".assay/cache.db";
    }
    assay_options_set_cache(opts, cache);
    return CLI_EXIT_OK;
}

/* A bit per command: the commands that take an option. */
enum {
    CMD_RUN = 1 << 0, CMD_LIST = 1 << 1, CMD_CHECK = 1 << 2, CMD_TEST = 1 << 3,
    CMD_RUNS = 1 << 4, CMD_COMPARE = 1 << 5, CMD_REPORT = 1 << 6, CMD_IMPORT = 1 << 7, CMD_LINT = 1 << 8,
    CMD_CALIBRATE = 1 << 9, CMD_MERGE = 1 << 10, CMD_PAIRWISE = 1 << 11,
};
#define CMD_PLUGINS (CMD_RUN | CMD_LIST | CMD_TEST | CMD_PAIRWISE) /* load plugins: -e, -p */
#define CMD_SCORE (CMD_RUN | CMD_TEST | CMD_PAIRWISE)              /* evaluate: limits, the network */

typedef struct cli_option {
    const char *name; /* --name */
    int key;          /* its short letter, or an OPT_* */
    const char *arg;  /* what its argument is called; NULL: it takes none */
    unsigned commands;
    const char *help;
} cli_option;

static const cli_option cli_options_table[] = {
    {"evaluator", 'e', "PATH", CMD_PLUGINS, "a plugin file or a directory of them (repeatable; default: the shipped plugins)"},
    {"output", 'o', "FILE", CMD_RUN | CMD_REPORT | CMD_IMPORT | CMD_MERGE,
     "run: the records as JSONL (default stdout); report: the HTML file; import: the traces; merge: the joined "
     "records"},
    {"input", OPT_INPUT, "FILE", CMD_MERGE, "merge -o: an input file the shards scored, in order (repeatable)"},
    {"jobs", 'j', "N", CMD_SCORE | CMD_IMPORT, "worker threads (default: number of cores)"},
    {"param", 'p', "NAME.KEY=V", CMD_PLUGINS | CMD_IMPORT, "override a plugin parameter (import: import.KEY=V)"},
    {"timeout-ms", OPT_TIMEOUT, "N", CMD_SCORE | CMD_IMPORT, "per-evaluation time limit (default 2000; 0 = none)"},
    {"memory-mb", OPT_MEMORY, "N", CMD_SCORE | CMD_IMPORT, "per-Lua-state memory limit (default 64; 0 = none)"},
    {"from", OPT_FROM, "FORMAT", CMD_IMPORT | CMD_RUN,
     "otlp, langfuse, langsmith, inspect, chat, openai-responses, anthropic, gemini, or auto (default)"},
    {"open-traces", OPT_OPEN_TRACES, "N", CMD_IMPORT,
     "otlp: traces held in memory while their spans come (default 10000); older ones wait in a temporary file"},
    {"map", OPT_MAP, "FILE.lua", CMD_IMPORT | CMD_RUN, "a mapper of your own instead of the shipped one (docs/importers.md)"},
    {"group-by", OPT_GROUP_BY, "FIELD", CMD_RUN | CMD_COMPARE | CMD_REPORT | CMD_CALIBRATE | CMD_PAIRWISE,
     "split the summary by metadata.FIELD"},
    {"no-timing", OPT_NO_TIMING, NULL, CMD_SCORE, "write \"ms\":null so that output is byte-for-byte reproducible"},
    {"resume", OPT_RESUME, NULL, CMD_RUN, "continue an interrupted run with -o FILE where it stopped (FILE.progress)"},
    {"cases", OPT_CASES, "FILE", CMD_TEST, "the test cases: {\"trace\":…, \"expect\":[…]} per line, \"replies\":[…] to script its requests' answers"},
    {"sample", OPT_SAMPLE, "P", CMD_RUN, "score only a fraction P (0 < P <= 1) of the traces, picked by trace id"},
    {"seed", OPT_SEED, "S", CMD_RUN, "which sample --sample picks (default 0)"},
    {"shard", OPT_SHARD, "I/N", CMD_RUN, "score only shard I of N (0-based; auto: from Slurm or ASSAY_SHARD; auto/N: "
                                         "the index from Slurm or JOB_COMPLETION_INDEX)"},
    {"follow", OPT_FOLLOW, NULL, CMD_RUN | CMD_IMPORT, "keep reading the one input as it grows, like tail -F, until SIGINT/SIGTERM"},
    {"quiet", 'q', NULL, CMD_RUN, "no progress line and no summary table on stderr (errors and gates still show)"},
    {"config", 'c', "FILE", CMD_RUN, "the suite file (default ./assay.lua when no TRACES are given; docs/ci.md)"},
    {"junit", OPT_JUNIT, "FILE", CMD_RUN,
     "also write JUnit XML: a test case per evaluator (and segment), failing with its gates"},
    {"junit-per-trace", OPT_JUNIT_PER_TRACE, NULL, CMD_RUN, "--junit with a test case per trace and evaluator instead"},
    {"csv", OPT_CSV, "FILE", CMD_RUN, "also write the records as CSV"},
    {"db", OPT_DB, "FILE", CMD_RUN | CMD_RUNS | CMD_COMPARE | CMD_REPORT | CMD_CALIBRATE | CMD_MERGE | CMD_PAIRWISE,
     "the SQLite run store (env ASSAY_DB; default .assay/assay.db; docs/store.md)"},
    {"no-db", OPT_NO_DB, NULL, CMD_RUN | CMD_PAIRWISE, "do not record this run"},
    {"label", OPT_LABEL, "NAME", CMD_RUN | CMD_CALIBRATE | CMD_REPORT | CMD_MERGE | CMD_PAIRWISE,
     "run, merge: name the run, for compare and report; calibrate, report: the outcome (metadata.NAME, feedback.vote, "
     "EVALUATOR.pass) to calibrate against"},
    {"json", OPT_JSON, NULL, CMD_CALIBRATE | CMD_COMPARE | CMD_PAIRWISE, "print JSON instead of a table"},
    {"fail-on-regression", OPT_FAIL_ON_REGRESSION, NULL, CMD_COMPARE | CMD_PAIRWISE,
     "exit 1 when an evaluator regressed significantly (overall or in a segment); pairwise: when a later system "
     "loses to an earlier one"},
    {"gate", OPT_GATE, "G", CMD_COMPARE | CMD_REPORT | CMD_RUN,
     "exit 1 unless G holds, e.g. relevance.pass_rate>=0.8 [segment=pro|*] (run; compare: on B; repeatable)"},
    {"min-delta", OPT_MIN_DELTA, "D", CMD_COMPARE | CMD_REPORT, "a significant drop smaller than D is not a regression (default 0)"},
    {"strict", OPT_STRICT, NULL, CMD_COMPARE | CMD_REPORT, "judge evaluators whose params or plugin file changed, too"},
    {"correction", OPT_CORRECTION, "M", CMD_COMPARE | CMD_REPORT, "for testing many comparisons: holm (default), bh or none"},
    {"llm-url", OPT_LLM_URL, "URL", CMD_SCORE,
     "OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1 (env ASSAY_LLM_URL); the key comes from ASSAY_API_KEY "
     "or OPENAI_API_KEY (docs/llm.md)"},
    {"llm-model", OPT_LLM_MODEL, "NAME", CMD_SCORE, "default model for assay.llm (env ASSAY_LLM_MODEL)"},
    {"llm-endpoint", OPT_LLM_ENDPOINT, "NAME=URL", CMD_SCORE,
     "another endpoint, for models named MODEL@NAME (a panel across providers); key from ASSAY_LLM_KEY_NAME; "
     "repeatable"},
    {"llm-timeout-ms", OPT_LLM_TIMEOUT, "N", CMD_SCORE, "per attempt (default 60000)"},
    {"max-inflight", OPT_MAX_INFLIGHT, "N", CMD_SCORE, "concurrent requests, lowered on 429s and raised back (default 64)"},
    {"rps", OPT_RPS, "R", CMD_SCORE, "requests started per second (default: no cap)"},
    {"tpm", OPT_TPM, "N", CMD_SCORE, "LLM tokens per minute (default: no cap)"},
    {"max-tokens-total", OPT_MAX_TOKENS, "N", CMD_SCORE, "issue no LLM call once N tokens were used; later calls fail"},
    {"retries", OPT_RETRIES, "N", CMD_SCORE, "attempts per request, first included (default 5)"},
    {"retry-base-ms", OPT_RETRY_BASE, "N", CMD_SCORE, "first retry delay, doubling with jitter (default 250)"},
    {"cache", OPT_CACHE, "FILE", CMD_SCORE, "SQLite cache of LLM answers (default .assay/cache.db with --llm-url)"},
    {"no-cache", OPT_NO_CACHE, NULL, CMD_SCORE, "neither read nor write the cache"},
};
#define CLI_OPTION_COUNT (sizeof cli_options_table / sizeof *cli_options_table)

/* What parsing the options gathers, before a command runs. */
typedef struct parsed {
    cli_options o;
    net_flags net;
    bool no_db, has_seed;
} parsed;

static int cmd_run(parsed *p, int argc, char **argv);
static int cmd_list_command(parsed *p, int argc, char **argv);
static int cmd_check_command(parsed *p, int argc, char **argv);
static int cmd_test(parsed *p, int argc, char **argv);
static int cmd_runs(parsed *p, int argc, char **argv) { return cli_runs(&p->o, argc, argv); }
static int cmd_compare(parsed *p, int argc, char **argv) { return cli_compare(&p->o, argc, argv); }
static int cmd_report(parsed *p, int argc, char **argv) { return cli_report(&p->o, argc, argv); }
static int cmd_import(parsed *p, int argc, char **argv) { return cli_import(&p->o, (const char *const *)argv, (size_t)argc); }
static int cmd_calibrate(parsed *p, int argc, char **argv) { return cli_calibrate(&p->o, argc, argv); }
static int cmd_merge(parsed *p, int argc, char **argv) { return cli_merge(&p->o, argc, argv); }
static int add_shipped(parsed *p, bool default_plugins);
static int cmd_pairwise(parsed *p, int argc, char **argv) {
    int rc = add_shipped(p, false); /* the helpers only: the judge is named with -e */
    return rc ? rc : cli_pairwise(&p->o, argc, argv);
}
static int cmd_lint(parsed *p, int argc, char **argv) {
    (void)p;
    return cli_lint((const char *const *)argv, (size_t)argc);
}

typedef struct cli_command {
    const char *name;
    unsigned bit;
    const char *usage; /* after "assay NAME " */
    const char *summary;
    int (*handler)(parsed *p, int argc, char **argv);
} cli_command;

static const cli_command cli_commands[] = {
    {"run", CMD_RUN, "[OPTIONS] [TRACES...]", "score traces (files, or - / nothing for stdin)", cmd_run},
    {"list", CMD_LIST, "[-e PATH]...", "the evaluators found, with scope, params and description", cmd_list_command},
    {"check", CMD_CHECK, "PLUGIN|DIR...", "load each plugin in the sandbox and report problems", cmd_check_command},
    {"test", CMD_TEST, "PLUGIN... --cases FILE", "run evaluators on test cases and compare (docs/plugins.md)", cmd_test},
    {"runs", CMD_RUNS, "[N] [--db FILE]", "the runs in the store, with each evaluator's mean and pass rate", cmd_runs},
    {"compare", CMD_COMPARE, "A B [--group-by FIELD] [--fail-on-regression]",
     "B against A (run ids, labels, latest, previous), with 95% CIs", cmd_compare},
    {"report", CMD_REPORT, "[RUN | A B] -o FILE.html",
     "one self-contained HTML report of a run (default latest), or of B against A", cmd_report},
    {"import", CMD_IMPORT, "[--from FORMAT] FILE... [-o OUT]", "logs of other formats to assay traces (docs/importers.md)",
     cmd_import},
    {"calibrate", CMD_CALIBRATE, "[RUN] --label FIELD [--group-by FIELD] [--json]",
     "how well each evaluator of a run predicts an outcome: AUC, rho, F1, best threshold", cmd_calibrate},
    {"merge", CMD_MERGE, "--db DEST SHARD.db... | -o OUT --input TRACES SHARD.jsonl...",
     "join the shards of a run (run --shard I/N) into one run, or one output in input order", cmd_merge},
    {"pairwise", CMD_PAIRWISE, "A.jsonl B.jsonl [C.jsonl...] -e JUDGE",
     "which system answers better, judged pair by pair in both orders: win rates, Bradley-Terry", cmd_pairwise},
    {"lint", CMD_LINT, "FILE...", "check trace files against docs/format.md, with a hint per problem", cmd_lint},
};
#define CLI_COMMAND_COUNT (sizeof cli_commands / sizeof *cli_commands)

static const char exit_text[] =
    "exit status: 0 done; 1 test cases failed, a gate failed, or a regression (compare); 2 usage or\n"
    "configuration error; 3 done, but some records carry errors; 4 input or output failed; 130 interrupted.\n";

static const cli_command *find_command(const char *name) {
    for (size_t i = 0; i < CLI_COMMAND_COUNT; i++)
        if (strcmp(cli_commands[i].name, name) == 0) return &cli_commands[i];
    return NULL;
}

static void print_overview(FILE *out) {
    for (size_t i = 0; i < CLI_COMMAND_COUNT; i++) {
        char head[96];
        snprintf(head, sizeof head, "assay %s %s", cli_commands[i].name, cli_commands[i].usage);
        if (strlen(head) > 40) fprintf(out, "%s %s\n       %-40s %s\n", i ? "      " : "usage:", head, "", cli_commands[i].summary);
        else fprintf(out, "%s %-40s %s\n", i ? "      " : "usage:", head, cli_commands[i].summary);
    }
    fprintf(out, "\n`assay help COMMAND` or `assay COMMAND --help` lists a command's options.\n"
                 "assay --version prints the version. Formats: docs/format.md; metrics: docs/metrics.md.\n\n%s",
            exit_text);
}

/* `assay help CMD`, `assay CMD --help`: the command's usage and its options only. */
static void print_command_help(const cli_command *c, FILE *out) {
    fprintf(out, "usage: assay %s %s\n  %s\n\noptions:\n", c->name, c->usage, c->summary);
    for (size_t i = 0; i < CLI_OPTION_COUNT; i++) {
        const cli_option *op = &cli_options_table[i];
        if (!(op->commands & c->bit)) continue;
        char head[64];
        if (op->key < 256) snprintf(head, sizeof head, "-%c, --%s%s%s", op->key, op->name, op->arg ? " " : "", op->arg ? op->arg : "");
        else snprintf(head, sizeof head, "    --%s%s%s", op->name, op->arg ? " " : "", op->arg ? op->arg : "");
        fprintf(out, "  %-26s %s\n", head, op->help);
    }
    fprintf(out, "  %-26s %s\n\n%s", "-h, --help", "this text", exit_text);
}

/* Applies one of the network options (they become the host's HTTP settings once all are
 * read); returns an exit status, or -1 when key is not one of them. */
static int apply_net_option(net_flags *net, int key, const char *arg) {
    char *end;
    switch (key) {
    case OPT_LLM_URL: net->llm_url = arg; return CLI_EXIT_OK;
    case OPT_LLM_MODEL: net->llm_model = arg; return CLI_EXIT_OK;
    case OPT_LLM_ENDPOINT:
        if (net->endpoint_count == ASSAY_MAX_LLM_ENDPOINTS)
            return usage_error("--llm-endpoint: at most %d endpoints", ASSAY_MAX_LLM_ENDPOINTS);
        net->endpoints[net->endpoint_count++] = arg;
        return CLI_EXIT_OK;
    case OPT_LLM_TIMEOUT:
        if (!parse_unsigned(arg, &net->timeout_ms) || net->timeout_ms == 0)
            return usage_error("--llm-timeout-ms: '%s' is not a positive number", arg);
        return CLI_EXIT_OK;
    case OPT_MAX_INFLIGHT:
        if (!parse_unsigned(arg, &net->max_inflight) || net->max_inflight == 0 || net->max_inflight > 65536)
            return usage_error("--max-inflight: '%s' is not a number from 1 to 65536", arg);
        return CLI_EXIT_OK;
    case OPT_RPS:
        net->rps = strtod(arg, &end);
        if (end == arg || *end || !(net->rps > 0)) return usage_error("--rps: '%s' is not a positive number", arg);
        return CLI_EXIT_OK;
    case OPT_TPM:
        if (!parse_long(arg, &net->tpm) || net->tpm == 0) return usage_error("--tpm: '%s' is not a positive number", arg);
        return CLI_EXIT_OK;
    case OPT_MAX_TOKENS:
        if (!parse_long(arg, &net->max_tokens_total) || net->max_tokens_total == 0)
            return usage_error("--max-tokens-total: '%s' is not a positive number", arg);
        return CLI_EXIT_OK;
    case OPT_RETRIES:
        if (!parse_unsigned(arg, &net->retries) || net->retries == 0 || net->retries > 100)
            return usage_error("--retries: '%s' is not a number from 1 to 100", arg);
        return CLI_EXIT_OK;
    case OPT_RETRY_BASE:
        if (!parse_unsigned(arg, &net->retry_base_ms)) return usage_error("--retry-base-ms: '%s' is not a number", arg);
        return CLI_EXIT_OK;
    case OPT_CACHE: net->cache = arg; return CLI_EXIT_OK;
    case OPT_NO_CACHE: net->no_cache = true; return CLI_EXIT_OK;
    }
    return -1;
}

/* Applies one of the options of compare and the gates; returns an exit status, or -1 when
 * key is not one of them. */
static int apply_gate_option(cli_options *o, int key, const char *arg) {
    char *end;
    switch (key) {
    case OPT_JSON: o->is_json = true; return CLI_EXIT_OK;
    case OPT_FAIL_ON_REGRESSION: o->fail_on_regression = true; return CLI_EXIT_OK;
    case OPT_GATE: {
        gate g;
        char err[512];
        if (gate_parse(arg, &g, err, sizeof err) != 0) return usage_error("%s", err);
        if (o->gate_count == CLI_MAX_GATES) return usage_error("%s", "--gate: too many gates");
        o->gate_texts[o->gate_count++] = arg;
        return CLI_EXIT_OK;
    }
    case OPT_MIN_DELTA:
        o->min_delta = strtod(arg, &end);
        if (end == arg || *end || !(o->min_delta >= 0 && o->min_delta <= 1))
            return usage_error("--min-delta: '%s' is not a number from 0 to 1 (a score, or a pass rate: 0.05 = 5 pp)", arg);
        return CLI_EXIT_OK;
    case OPT_STRICT: o->is_strict = true; return CLI_EXIT_OK;
    case OPT_CORRECTION:
        if (strcmp(arg, "holm") && strcmp(arg, "bh") && strcmp(arg, "none"))
            return usage_error("--correction: '%s' is not holm, bh or none", arg);
        o->correction = arg;
        return CLI_EXIT_OK;
    }
    return -1;
}

/* -p llm.price_in=N / llm.price_out=N: the host's, not a plugin's. */
static int llm_param(cli_options *o, const char *arg) {
    const char *eq = strchr(arg, '=');
    char *end;
    double v = eq ? strtod(eq + 1, &end) : -1;
    if (!eq || end == eq + 1 || *end || !(v >= 0 && v < 1e9))
        return usage_error("--param: '%s': llm.price_in=N and llm.price_out=N take a price per million tokens", arg);
    if (strncmp(arg, "llm.price_in=", 13) == 0) o->price_in = v;
    else if (strncmp(arg, "llm.price_out=", 14) == 0) o->price_out = v;
    else return usage_error("--param: '%s': the llm params are price_in and price_out (per million tokens)", arg);
    assay_options_set_llm_price(o->host, o->price_in, o->price_out);
    return CLI_EXIT_OK;
}

/* -p: a plugin's NAME.KEY=VALUE, the mapper's import.KEY=V or the host's llm.KEY=V. */
static int apply_param(cli_options *o, const char *arg) {
    if (strncmp(arg, "import.", 7) == 0) { /* the mapper's, for import and run --from */
        if (o->import_param_count == CLI_MAX_IMPORT_PARAMS) return usage_error("%s", "--param: too many import.KEY=V");
        o->import_params[o->import_param_count++] = arg;
        return CLI_EXIT_OK;
    }
    if (strncmp(arg, "llm.", 4) == 0) return llm_param(o, arg);
    if (assay_options_set_param(o->host, arg) != ASSAY_OK)
        return usage_error("--param: '%s' is not of the form NAME.KEY=VALUE", arg);
    return CLI_EXIT_OK;
}

/* Applies one option to what is parsed; returns an exit status. */
static int apply_option(parsed *p, int key, const char *arg) {
    cli_options *o = &p->o;
    int status = apply_net_option(&p->net, key, arg);
    if (status < 0) status = apply_gate_option(o, key, arg);
    if (status >= 0) return status;
    unsigned n;
    char *end;
    switch (key) {
    case 'e':
        assay_options_add_plugin_path(o->host, arg);
        o->has_evaluator = true;
        return CLI_EXIT_OK;
    case 'o': o->output = arg; return CLI_EXIT_OK;
    case 'c': o->suite = arg; return CLI_EXIT_OK;
    case 'q': o->is_quiet = true; return CLI_EXIT_OK;
    case 'j':
        if (!parse_unsigned(arg, &n) || n == 0 || n > 1024) return usage_error("--jobs: '%s' is not a number from 1 to 1024", arg);
        assay_options_set_workers(o->host, n), o->workers = n;
        return CLI_EXIT_OK;
    case 'p': return apply_param(o, arg);
    case OPT_TIMEOUT:
        if (!parse_unsigned(arg, &n)) return usage_error("--timeout-ms: '%s' is not a number", arg);
        assay_options_set_timeout_ms(o->host, n);
        return CLI_EXIT_OK;
    case OPT_MEMORY:
        if (!parse_unsigned(arg, &n) || assay_options_set_memory_mb(o->host, n) != ASSAY_OK)
            return usage_error("--memory-mb: '%s' is not a number of MiB", arg);
        return CLI_EXIT_OK;
    case OPT_GROUP_BY:
        if (assay_options_set_group_by(o->host, arg) != ASSAY_OK) return usage_error("--group-by: '%s' is not a field name", arg);
        o->group_by = arg;
        return CLI_EXIT_OK;
    case OPT_NO_TIMING: assay_options_set_record_timing(o->host, 0); return CLI_EXIT_OK;
    case OPT_RESUME: o->is_resume = true; return CLI_EXIT_OK;
    case OPT_CASES: o->cases = arg; return CLI_EXIT_OK;
    case OPT_DB: o->db = arg, o->has_db = true; return CLI_EXIT_OK;
    case OPT_INPUT:
        if (o->merge_input_count == CLI_MAX_IMPORT_PARAMS) return usage_error("%s", "--input: too many files");
        o->merge_inputs[o->merge_input_count++] = arg;
        return CLI_EXIT_OK;
    case OPT_NO_DB: p->no_db = true; return CLI_EXIT_OK;
    case OPT_LABEL:
        if (!*arg) return usage_error("%s", "--label: the name is empty");
        o->label = arg;
        return CLI_EXIT_OK;
    case OPT_SAMPLE:
        o->sample_rate = strtod(arg, &end);
        if (end == arg || *end || !(o->sample_rate > 0 && o->sample_rate <= 1))
            return usage_error("--sample: '%s' is not a fraction in (0, 1], e.g. 0.05", arg);
        return CLI_EXIT_OK;
    case OPT_SEED: {
        errno = 0;
        unsigned long long seed = strtoull(arg, &end, 10);
        if (errno || end == arg || *end || *arg == '-') return usage_error("--seed: '%s' is not a whole number", arg);
        o->sample_seed = seed;
        p->has_seed = true;
        return CLI_EXIT_OK;
    }
    case OPT_SHARD: o->shard = arg; return CLI_EXIT_OK;
    case OPT_FOLLOW: o->is_follow = true; return CLI_EXIT_OK;
    case OPT_JUNIT: o->junit = arg; return CLI_EXIT_OK;
    case OPT_JUNIT_PER_TRACE: o->is_junit_per_trace = true; return CLI_EXIT_OK;
    case OPT_CSV: o->csv = arg; return CLI_EXIT_OK;
    case OPT_FROM: o->from = arg; return CLI_EXIT_OK;
    case OPT_MAP: o->map = arg; return CLI_EXIT_OK;
    case OPT_OPEN_TRACES:
        if (!parse_unsigned(arg, &n) || n == 0) return usage_error("--open-traces: '%s' is not a positive number", arg);
        o->open_traces = n;
        return CLI_EXIT_OK;
    }
    return usage_error("%s", "internal: an option without a handler");
}

/* Parses argv[2..] with the options of command c; an option it does not take is a usage
 * error naming the command. Returns an exit status; -1 when --help was printed. */
static int parse_options(parsed *p, const cli_command *c, int argc, char **argv) {
    struct option long_options[CLI_OPTION_COUNT + 2];
    char short_options[2 * CLI_OPTION_COUNT + 4] = ":";
    size_t n = 0, s = 1;
    for (size_t i = 0; i < CLI_OPTION_COUNT; i++) {
        const cli_option *op = &cli_options_table[i];
        if (!(op->commands & c->bit)) continue;
        long_options[n++] = (struct option){op->name, op->arg ? required_argument : no_argument, NULL, op->key};
        if (op->key < 256) {
            short_options[s++] = (char)op->key;
            if (op->arg) short_options[s++] = ':';
        }
    }
    long_options[n++] = (struct option){"help", no_argument, NULL, 'h'};
    long_options[n] = (struct option){NULL, 0, NULL, 0};
    short_options[s++] = 'h';
    short_options[s] = '\0';
    optind = 2;
    opterr = 0;
    for (int key; (key = getopt_long(argc, argv, short_options, long_options, NULL)) != -1;) {
        if (key == 'h') {
            print_command_help(c, stdout);
            return -1;
        }
        if (key == '?' || key == ':') {
            const char *what = argv[optind - 1];
            char shown[8];
            if (optopt && optopt < 256 && (strncmp(what, "--", 2) != 0)) snprintf(shown, sizeof shown, "-%c", optopt), what = shown;
            if (key == ':') return usage_error("%s %s needs a value", c->name, what);
            return usage_error("%s takes no option %s", c->name, what);
        }
        int rc = apply_option(p, key, optarg);
        if (rc != CLI_EXIT_OK) return rc;
    }
    return CLI_EXIT_OK;
}

/* What the commands that load plugins share: the shipped helpers in plugins/lib for every
 * plugin, and the shipped plugins when no -e names any. */
static int add_shipped(parsed *p, bool default_plugins) {
    const char *shipped = cli_shipped_plugin_dir();
    char shipped_lib[PATH_MAX + 8];
    snprintf(shipped_lib, sizeof shipped_lib, "%s/lib", shipped);
    assay_options_add_lib_dir(p->o.host, shipped_lib);
    if (!default_plugins || p->o.has_evaluator) return CLI_EXIT_OK;
    if (!is_directory(shipped)) {
        fprintf(stderr, "assay: cannot find the shipped plugins (looked in %s); use -e PATH or set ASSAY_PLUGIN_DIR\n",
                shipped);
        return CLI_EXIT_USAGE;
    }
    assay_options_add_plugin_path(p->o.host, shipped);
    return CLI_EXIT_OK;
}

/* Starts `assay import` for run --from with its output on out_fd; returns its pid, or -1. */
static pid_t start_import(cli_options *o, int argc, char **argv, const char *output, int out_fd) {
    const char **args = calloc((size_t)argc + 2 * o->import_param_count + 12, sizeof *args);
    if (!args) return -1;
    size_t n = 0;
    args[n++] = "assay";
    args[n++] = "import";
    args[n++] = "--from";
    args[n++] = o->from;
    if (o->map) args[n++] = "--map", args[n++] = o->map;
    if (o->is_follow) args[n++] = "--follow";
    if (output) args[n++] = "-o", args[n++] = output;
    for (size_t i = 0; i < o->import_param_count; i++) args[n++] = "-p", args[n++] = o->import_params[i];
    for (int i = 0; i < argc; i++) args[n++] = argv[i];
    fflush(NULL);
    pid_t child = fork();
    if (child == 0) {
        if (out_fd >= 0) dup2(out_fd, 1), close(out_fd);
        execv("/proc/self/exe", (char *const *)args);
        fprintf(stderr, "assay: cannot start the import: %s\n", strerror(errno));
        _exit(CLI_EXIT_IO);
    }
    free(args);
    if (child < 0) fprintf(stderr, "assay: cannot start the import: %s\n", strerror(errno));
    return child;
}

static int wait_import(pid_t child) {
    int status = 0;
    while (waitpid(child, &status, 0) < 0 && errno == EINTR) {}
    return WIFEXITED(status) ? WEXITSTATUS(status) : CLI_EXIT_IO;
}

/* The run's status with the import's: its usage (2) and I/O (4) failures win over record
 * errors (3). */
static int with_import_status(int rc, int imported) {
    if (imported == CLI_EXIT_OK || rc == CLI_EXIT_INTERRUPTED) return rc;
    if (imported != CLI_EXIT_RECORD_ERRORS) return imported;
    return rc == CLI_EXIT_OK ? CLI_EXIT_RECORD_ERRORS : rc;
}

/* run --from FORMAT FILE... -o OUT: the traces are imported to OUT.imported.jsonl first, then
 * scored from there, so that --resume continues a run like any other (the import is done
 * again only when it had not finished: OUT.imported.jsonl.done marks it). */
static int run_imported_file(cli_options *o, int argc, char **argv) {
    char imported[PATH_MAX], done[PATH_MAX + 8];
    snprintf(imported, sizeof imported, "%s.imported.jsonl", o->output);
    snprintf(done, sizeof done, "%s.done", imported);
    struct stat st;
    int status = CLI_EXIT_OK;
    if (!o->is_resume || stat(done, &st) != 0) {
        unlink(done);
        pid_t child = start_import(o, argc, argv, imported, -1);
        if (child < 0) return CLI_EXIT_IO;
        status = wait_import(child);
        if (status != CLI_EXIT_OK && status != CLI_EXIT_RECORD_ERRORS) return status;
        FILE *marker = fopen(done, "w");
        if (marker) fprintf(marker, "%d\n", status), fclose(marker);
    } else {
        FILE *marker = fopen(done, "r");
        if (marker && fscanf(marker, "%d", &status) != 1) status = CLI_EXIT_OK;
        if (marker) fclose(marker);
        fprintf(stderr, "assay: resuming on %s (imported before)\n", imported);
    }
    static const char *input[1];
    input[0] = imported;
    o->traces = input;
    o->trace_count = 1;
    return with_import_status(cli_run(o), status);
}

/* run --from FORMAT FILE...: `assay import` in a child process writes the traces into a
 * pipe this run reads as its standard input, so that they are scored as they are mapped
 * (with -o, through a file: run_imported_file). With --follow the importer follows the file
 * and a signal to the run is passed to it: it ends the input, and what came is scored. */
static int run_imported(parsed *p, int argc, char **argv) {
    cli_options *o = &p->o;
    /* an output file, not standard output or a device such as /dev/null */
    struct stat st;
    bool to_file = o->output && strcmp(o->output, "-") != 0 && (stat(o->output, &st) != 0 || S_ISREG(st.st_mode));
    if (o->is_resume && (!to_file || o->is_follow)) {
        fprintf(stderr, "assay: run --from --resume needs -o FILE (and no --follow)\n");
        return CLI_EXIT_USAGE;
    }
    if (to_file && !o->is_follow) return run_imported_file(o, argc, argv);
    int fds[2];
    if (pipe(fds) != 0) {
        fprintf(stderr, "assay: cannot make a pipe: %s\n", strerror(errno));
        return CLI_EXIT_IO;
    }
    pid_t child = start_import(o, argc, argv, NULL, fds[1]);
    if (child < 0 || dup2(fds[0], 0) < 0) {
        close(fds[0]), close(fds[1]);
        return CLI_EXIT_IO;
    }
    close(fds[0]), close(fds[1]);
    if (o->is_follow) o->follow_child = child, o->is_follow = false;
    o->traces = NULL;
    o->trace_count = 0; /* standard input: the pipe */
    int rc = cli_run(o);
    return with_import_status(rc, wait_import(child));
}

static int cmd_run(parsed *p, int argc, char **argv) {
    int rc = add_shipped(p, true);
    if (rc != CLI_EXIT_OK) return rc;
    if (p->o.from) return run_imported(p, argc, argv);
    if (p->o.map || p->o.import_param_count) return usage_error("%s", "--map and -p import.KEY=V go with --from FORMAT");
    p->o.traces = (const char **)argv;
    p->o.trace_count = (size_t)argc;
    return cli_run(&p->o);
}

static int cmd_list_command(parsed *p, int argc, char **argv) {
    (void)argv;
    if (argc > 0) return usage_error("list takes no arguments (name plugins with -e PATH)");
    int rc = add_shipped(p, true);
    return rc != CLI_EXIT_OK ? rc : cmd_list(&p->o);
}

static int cmd_check_command(parsed *p, int argc, char **argv) { return cmd_check(&p->o, argv, argc); }

static int cmd_test(parsed *p, int argc, char **argv) {
    if (!p->o.cases) return usage_error("%s", "test needs --cases FILE");
    if (argc == 0 && !p->o.has_evaluator) return usage_error("%s", "test needs plugin files");
    int rc = add_shipped(p, false);
    if (rc != CLI_EXIT_OK) return rc;
    for (int i = 0; i < argc; i++) assay_options_add_plugin_path(p->o.host, argv[i]);
    return cli_test(&p->o);
}

static int run_command(const cli_command *c, int argc, char **argv, int user_argc, char **user_argv);

/* A run's suite file: -c FILE, or ./assay.lua when no TRACES are given. Its options are
 * placed before the command line's (*args, *nargs; the caller frees *args when it differs
 * from argv), its inputs after them when the command line names none. Returns an exit
 * status, -1 after --help. */
static int with_suite(const cli_command *c, int argc, char **argv, suite_args *suite, char ***args, int *nargs) {
    parsed dry; /* a first pass, only to find -c and the TRACES; its errors are the real ones */
    memset(&dry, 0, sizeof dry);
    if (!(dry.o.host = assay_options_new())) return CLI_EXIT_IO;
    int rc = parse_options(&dry, c, argc, argv);
    int positional = argc - optind;
    const char *path = dry.o.suite;
    bool has_from = dry.o.from != NULL;
    assay_options_free(dry.o.host);
    if (rc != CLI_EXIT_OK) return rc;
    if (!path && positional == 0 && !has_from && access("assay.lua", F_OK) == 0) path = "assay.lua";
    if (!path) return CLI_EXIT_OK;
    char err[1024];
    assay_options *limits = assay_options_new();
    rc = limits ? suite_load(path, limits, suite, err, sizeof err) : -1;
    assay_options_free(limits);
    if (rc != 0) return usage_error("%s", limits ? err : "out of memory");
    size_t n = (size_t)argc + suite->option_count + suite->input_count + 2;
    char **own = calloc(suite->option_count + 3, sizeof *own); /* its options alone, to name it when one is refused */
    if (!own) return CLI_EXIT_IO;
    own[0] = argv[0], own[1] = argv[1];
    memcpy(own + 2, suite->options, suite->option_count * sizeof *own);
    memset(&dry, 0, sizeof dry);
    if (!(dry.o.host = assay_options_new())) rc = CLI_EXIT_IO;
    else rc = parse_options(&dry, c, (int)suite->option_count + 2, own);
    assay_options_free(dry.o.host);
    free(own);
    if (rc != CLI_EXIT_OK) {
        fprintf(stderr, "assay: the option above comes from the suite file %s\n", path);
        return rc;
    }
    char **a = calloc(n, sizeof *a);
    if (!a) return CLI_EXIT_IO;
    size_t k = 0;
    a[k++] = argv[0], a[k++] = argv[1];
    for (size_t i = 0; i < suite->option_count; i++) a[k++] = suite->options[i];
    for (int i = 2; i < argc; i++) a[k++] = argv[i];
    if (positional == 0 && suite->input_count) {
        a[k++] = "--";
        for (size_t i = 0; i < suite->input_count; i++) a[k++] = suite->inputs[i];
    }
    *args = a, *nargs = (int)k;
    return CLI_EXIT_OK;
}

/* malloc's policy for this process (the library leaves its host's alone). A batch run frees
 * and reallocates the same few MB over and over (lines in flight, the workers' parse arenas,
 * records): glibc's default hands the top of a heap back past 128 KB free and faults it in
 * again, which was half the run's page faults and 2% of -j 2's time on a VM, where a fault
 * is dear. Kept up to 64 MB instead; blocks up to 32 MB (what glibc's own sliding
 * threshold reaches) come from the heaps, as fixing the trim threshold would otherwise
 * send every block over 128 KB (a long trace's line) to mmap and back. */
static void tune_malloc(void) {
#if defined(M_TRIM_THRESHOLD) && defined(M_MMAP_THRESHOLD)
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
#endif
}

int main(int argc, char **argv) {
    signal(SIGPIPE, SIG_IGN); /* a closed output pipe is a write error we report, not a death */
    tune_malloc();
    /* the time limit by timer signal, not Lua's count hook: ~5% of a trace (assay.h) */
    assay_set_time_signal(SIGRTMIN + 1);
    if (argc < 2) {
        print_overview(stderr);
        return CLI_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        print_overview(stdout);
        return CLI_EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("assay %s (libuv %s)\n", assay_version(), uv_version_string());
        return CLI_EXIT_OK;
    }
    if (strcmp(argv[1], "help") == 0) {
        const cli_command *c = argc > 2 ? find_command(argv[2]) : NULL;
        if (argc > 2 && !c) return usage_error("unknown command '%s'", argv[2]);
        if (c) print_command_help(c, stdout);
        else print_overview(stdout);
        return CLI_EXIT_OK;
    }
    const cli_command *c = find_command(argv[1]);
    if (!c) return usage_error("unknown command '%s'", argv[1]);
    current_command = c->name;

    char **args = argv;
    int nargs = argc;
    suite_args suite = {0};
    if (c->bit & CMD_RUN) {
        int rc = with_suite(c, argc, argv, &suite, &args, &nargs);
        if (rc != CLI_EXIT_OK) return rc == -1 ? CLI_EXIT_OK : rc;
    }
    int rc = run_command(c, nargs, args, argc, argv);
    if (args != argv) free(args);
    suite_args_free(&suite);
    return rc;
}

/* Parses the options of command c and runs it; user_argv is the command line as typed, for
 * the run store (argv may hold a suite file's options before it). */
static int run_command(const cli_command *c, int argc, char **argv, int user_argc, char **user_argv) {
    parsed p;
    memset(&p, 0, sizeof p);
    if (!(p.o.host = assay_options_new())) return CLI_EXIT_IO;
    p.net.retry_base_ms = ASSAY_DEFAULT_RETRY_BASE_MS;
    p.o.db = env_or(NULL, "ASSAY_DB") ? env_or(NULL, "ASSAY_DB") : STORE_DEFAULT_PATH;
    p.o.sample_rate = 1;
    int rc = parse_options(&p, c, argc, argv);
    if (rc == -1) {
        assay_options_free(p.o.host);
        return CLI_EXIT_OK;
    }
    if (rc == CLI_EXIT_OK && (c->bit & CMD_SCORE)) rc = apply_net_flags(p.o.host, &p.net);
    p.o.has_llm = env_or(p.net.llm_url, "ASSAY_LLM_URL") != NULL;
    p.o.llm_model = env_or(p.net.llm_model, "ASSAY_LLM_MODEL");
    p.o.max_inflight = p.net.max_inflight ? p.net.max_inflight : ASSAY_DEFAULT_MAX_INFLIGHT;
    if (rc == CLI_EXIT_OK && p.has_seed && p.o.sample_rate >= 1) rc = usage_error("%s", "--seed needs --sample P");
    if (rc == CLI_EXIT_OK && p.o.sample_rate < 1 && assay_options_set_sample(p.o.host, p.o.sample_rate, p.o.sample_seed) != ASSAY_OK)
        rc = usage_error("%s", "--sample: not a fraction in (0, 1]");
    p.o.shard_count = 1;
    if (rc == CLI_EXIT_OK && (c->bit & CMD_RUN)) rc = resolve_shard(&p.o);
    if (p.no_db) p.o.db = NULL;
    char *command_line = join_command_line(user_argc, user_argv);
    p.o.command = command_line;
    if (rc == CLI_EXIT_OK) rc = c->handler(&p, argc - optind, argv + optind);
    free(command_line);
    assay_options_free(p.o.host);
    return rc;
}
