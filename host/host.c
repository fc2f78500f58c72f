/* host.c - assay_host: plugin discovery and loading, dispatch of traces to workers, and
 * delivery of results on the caller's loop, in submission order.
 *
 * Threads: everything here runs on the caller's loop thread except on_job_done, which
 * workers call to queue a finished job; results_async brings those jobs back to the loop.
 * Not here: evaluating (worker.c, sandbox/), reading files or writing output (the CLI).
 */
#include "host_internal.h"
#include "http.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define HOST_MAX_PLUGIN_BYTES (4u << 20)

typedef struct plugin {
    char *path;
    char *source;
    size_t source_len;
    sandbox_param_override *overrides;
    size_t override_count;
    sandbox *probe; /* loaded once on this thread: name, scope, params for list/check */
} plugin;

struct assay_host {
    uv_loop_t *loop;
    assay_result_cb on_result;
    void *user_data;
    char *group_by;
    bool is_ordered;

    plugin *plugins;
    size_t plugin_count;
    char **lib_dirs;
    size_t lib_dir_count;
    sandbox_config *sandbox_configs;

    http_client *http;
    worker **workers;
    unsigned worker_count;
    size_t *worker_load; /* jobs handed to each worker and not yet back */

    uv_async_t results_async;
    uv_mutex_t results_lock;
    job *results_head, *results_tail; /* guarded by results_lock */

    uint64_t next_seq;
    uint64_t next_delivery;
    job **reorder;        /* ring indexed by seq % reorder_cap */
    size_t reorder_cap;   /* a power of two, always > pending */
    size_t pending;

    bool is_closing;
    bool is_mutex_ready;
    bool is_async_open;
    assay_close_cb on_closed;
};

const char *assay_version(void) { return ASSAY_VERSION_STRING; }

const char *assay_strerror(int status) {
    switch (status) {
    case ASSAY_OK: return "ok";
    case ASSAY_EINVAL: return "invalid argument";
    case ASSAY_ENOMEM: return "out of memory";
    case ASSAY_ECONFIG: return "configuration error";
    case ASSAY_ECLOSED: return "host is closing";
    case ASSAY_EIO: return "input/output error";
    }
    return "unknown error";
}

const char *assay_error_kind_name(assay_error_kind kind) {
    return kind == ASSAY_KIND_NONE ? "none" : sandbox_error_kind_name((sandbox_error_kind)kind);
}

static int fail(assay_error *err, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(assay_error *err, int status, const char *fmt, ...) {
    if (err) {
        err->status = status;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return status;
}

/* ================================================================ plugin discovery */

static int read_file(const char *path, char **out, size_t *out_len, assay_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return fail(err, ASSAY_EIO, "%s: cannot open: %s", path, strerror(errno));
    buf b;
    buf_init(&b);
    char chunk[16384];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0 && b.len <= HOST_MAX_PLUGIN_BYTES) buf_append(&b, chunk, n);
    int read_error = ferror(f);
    fclose(f);
    if (read_error || buf_failed(&b) || b.len > HOST_MAX_PLUGIN_BYTES) {
        buf_free(&b);
        if (read_error) return fail(err, ASSAY_EIO, "%s: read error", path);
        return fail(err, ASSAY_ECONFIG, "%s: larger than %u MiB", path, HOST_MAX_PLUGIN_BYTES >> 20);
    }
    *out_len = b.len;
    *out = buf_steal(&b);
    return ASSAY_OK;
}

static int compare_strings(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int add_plugin_file(assay_host *h, const char *path, assay_error *err) {
    plugin *grown = realloc(h->plugins, (h->plugin_count + 1) * sizeof *grown);
    if (!grown) return fail(err, ASSAY_ENOMEM, "out of memory");
    h->plugins = grown;
    plugin *p = &h->plugins[h->plugin_count];
    memset(p, 0, sizeof *p);
    p->path = strdup(path);
    if (!p->path) return fail(err, ASSAY_ENOMEM, "out of memory");
    h->plugin_count++;
    return read_file(path, &p->source, &p->source_len, err);
}

/* A directory contributes its *.lua files in name order; its lib/ folder holds helpers and
 * is not scanned. */
static int add_plugin_path(assay_host *h, const char *path, assay_error *err) {
    struct stat st;
    if (stat(path, &st) != 0) return fail(err, ASSAY_ECONFIG, "%s: %s", path, strerror(errno));
    if (!S_ISDIR(st.st_mode)) return add_plugin_file(h, path, err);
    DIR *dir = opendir(path);
    if (!dir) return fail(err, ASSAY_ECONFIG, "%s: %s", path, strerror(errno));
    char **names = NULL;
    size_t count = 0;
    int status = ASSAY_OK;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n <= 4 || strcmp(e->d_name + n - 4, ".lua") != 0 || e->d_name[0] == '.') continue;
        char **grown = realloc(names, (count + 1) * sizeof *names);
        if (!grown || !(grown[count] = strdup(e->d_name))) {
            names = grown ? grown : names;
            status = fail(err, ASSAY_ENOMEM, "out of memory");
            break;
        }
        names = grown;
        count++;
    }
    closedir(dir);
    if (status == ASSAY_OK && count == 0) status = fail(err, ASSAY_ECONFIG, "%s: no *.lua plugin files in this directory", path);
    if (status == ASSAY_OK) qsort(names, count, sizeof *names, compare_strings);
    for (size_t i = 0; i < count; i++) {
        if (status == ASSAY_OK) {
            buf full;
            buf_init(&full);
            buf_printf(&full, "%s%s%s", path, path[strlen(path) - 1] == '/' ? "" : "/", names[i]);
            status = buf_failed(&full) ? fail(err, ASSAY_ENOMEM, "out of memory") : add_plugin_file(h, full.data, err);
            buf_free(&full);
        }
        free(names[i]);
    }
    free(names);
    return status;
}

static int add_lib_dir(assay_host *h, const char *dir) {
    for (size_t i = 0; i < h->lib_dir_count; i++)
        if (strcmp(h->lib_dirs[i], dir) == 0) return ASSAY_OK;
    char **grown = realloc(h->lib_dirs, (h->lib_dir_count + 1) * sizeof *grown);
    if (!grown) return ASSAY_ENOMEM;
    h->lib_dirs = grown;
    if (!(h->lib_dirs[h->lib_dir_count] = strdup(dir))) return ASSAY_ENOMEM;
    h->lib_dir_count++;
    return ASSAY_OK;
}

/* Each plugin's own lib/ first, then the extra directories of the options. */
static int collect_lib_dirs(assay_host *h, const assay_options *o, assay_error *err) {
    for (size_t i = 0; i < h->plugin_count; i++) {
        const char *path = h->plugins[i].path;
        const char *slash = strrchr(path, '/');
        buf dir;
        buf_init(&dir);
        if (slash) buf_append(&dir, path, (size_t)(slash - path));
        else buf_putc(&dir, '.');
        buf_puts(&dir, "/lib");
        int status = buf_failed(&dir) ? ASSAY_ENOMEM : add_lib_dir(h, dir.data);
        buf_free(&dir);
        if (status) return fail(err, status, "out of memory");
    }
    for (size_t i = 0; i < o->lib_dir_count; i++)
        if (add_lib_dir(h, o->lib_dirs[i])) return fail(err, ASSAY_ENOMEM, "out of memory");
    return ASSAY_OK;
}

static void fill_sandbox_config(const assay_host *h, const assay_options *o, const plugin *p, sandbox_config *c) {
    memset(c, 0, sizeof *c);
    c->path = p->path;
    c->source = p->source;
    c->source_len = p->source_len;
    c->lib_dirs = (const char *const *)h->lib_dirs;
    c->lib_dir_count = h->lib_dir_count;
    c->memory_limit = (size_t)o->memory_mb << 20;
    c->timeout_ms = o->timeout_ms;
    c->record_timing = o->record_timing;
    c->overrides = p->overrides;
    c->override_count = p->override_count;
    c->log = o->log;
    c->log_ctx = o->log_ctx;
    c->index = (size_t)(p - h->plugins);
    c->has_io = true;
    c->has_llm = o->llm_url != NULL;
    c->llm_model = o->llm_model;
}

/* Loads every plugin once here: names are only known after loading, and -p NAME.KEY must
 * be matched to them before the workers load their own copies. */
static int load_plugins(assay_host *h, const assay_options *o, assay_error *err) {
    char message[sizeof err->message];
    h->sandbox_configs = calloc(h->plugin_count ? h->plugin_count : 1, sizeof *h->sandbox_configs);
    if (!h->sandbox_configs) return fail(err, ASSAY_ENOMEM, "out of memory");
    for (size_t i = 0; i < h->plugin_count; i++) {
        plugin *p = &h->plugins[i];
        sandbox_config *c = &h->sandbox_configs[i];
        fill_sandbox_config(h, o, p, c);
        p->probe = sandbox_new(c, message, sizeof message);
        if (!p->probe) return fail(err, ASSAY_ECONFIG, "%s", message);
        const char *name = sandbox_get_info(p->probe)->name;
        for (size_t j = 0; j < i; j++)
            if (strcmp(sandbox_get_info(h->plugins[j].probe)->name, name) == 0)
                return fail(err, ASSAY_ECONFIG, "%s: a plugin named '%s' is already loaded from %s", p->path, name,
                            h->plugins[j].path);
        for (size_t k = 0; k < o->param_count; k++) {
            if (strcmp(o->params[k].plugin, name) != 0) continue;
            sandbox_param_override *grown = realloc(p->overrides, (p->override_count + 1) * sizeof *grown);
            if (!grown) return fail(err, ASSAY_ENOMEM, "out of memory");
            p->overrides = grown;
            p->overrides[p->override_count++] = (sandbox_param_override){o->params[k].key, o->params[k].value};
        }
        if (p->override_count) { /* reload with the overrides: their types are checked now */
            sandbox_free(p->probe);
            fill_sandbox_config(h, o, p, c);
            p->probe = sandbox_new(c, message, sizeof message);
            if (!p->probe) return fail(err, ASSAY_ECONFIG, "%s", message);
        }
    }
    for (size_t k = 0; k < o->param_count; k++) {
        bool found = false;
        for (size_t i = 0; i < h->plugin_count && !found; i++)
            found = strcmp(sandbox_get_info(h->plugins[i].probe)->name, o->params[k].plugin) == 0;
        if (!found) {
            buf names;
            buf_init(&names);
            for (size_t i = 0; i < h->plugin_count; i++)
                buf_printf(&names, "%s%s", i ? ", " : "", sandbox_get_info(h->plugins[i].probe)->name);
            fail(err, ASSAY_ECONFIG, "param %s.%s: no plugin named '%s' (loaded: %s)", o->params[k].plugin,
                 o->params[k].key, o->params[k].plugin, buf_cstr(&names));
            buf_free(&names);
            return ASSAY_ECONFIG;
        }
    }
    return ASSAY_OK;
}

/* ====================================================================== delivery */

static void deliver(assay_host *h, job *j) {
    h->pending--;
    if (h->on_result) h->on_result(h, j, j->submit_ctx);
    job_free(j);
}

static void host_finish_close(assay_host *h);

/* Workers call this from their threads. */
static void on_job_done(void *ctx, job *j) {
    assay_host *h = ctx;
    j->next = NULL;
    uv_mutex_lock(&h->results_lock);
    if (h->results_tail) h->results_tail->next = j;
    else h->results_head = j;
    h->results_tail = j;
    uv_mutex_unlock(&h->results_lock);
    uv_async_send(&h->results_async);
}

static void on_results(uv_async_t *handle) {
    assay_host *h = handle->data;
    uv_mutex_lock(&h->results_lock);
    job *list = h->results_head;
    h->results_head = h->results_tail = NULL;
    uv_mutex_unlock(&h->results_lock);
    while (list) {
        job *j = list;
        list = j->next;
        j->next = NULL;
        if (j->worker != JOB_NO_WORKER) h->worker_load[j->worker]--;
        if (h->is_ordered) h->reorder[j->seq & (h->reorder_cap - 1)] = j;
        else deliver(h, j);
    }
    if (h->is_ordered) {
        for (;;) {
            size_t slot = h->next_delivery & (h->reorder_cap - 1);
            job *j = h->reorder[slot];
            if (!j || j->seq != h->next_delivery) break;
            h->reorder[slot] = NULL;
            h->next_delivery++;
            deliver(h, j);
        }
    }
    if (h->is_closing && h->pending == 0) host_finish_close(h);
}

/* Keeps reorder_cap > pending so that the seqs in flight map to distinct slots. */
static int reorder_reserve(assay_host *h) {
    if (h->pending + 1 < h->reorder_cap) return ASSAY_OK;
    size_t cap = h->reorder_cap * 2;
    job **ring = calloc(cap, sizeof *ring);
    if (!ring) return ASSAY_ENOMEM;
    for (size_t i = 0; i < h->reorder_cap; i++)
        if (h->reorder[i]) ring[h->reorder[i]->seq & (cap - 1)] = h->reorder[i];
    free(h->reorder);
    h->reorder = ring;
    h->reorder_cap = cap;
    return ASSAY_OK;
}

/* ================================================================== public API */

static void host_free(assay_host *h) {
    if (!h) return;
    for (unsigned i = 0; i < h->worker_count; i++) worker_free(h->workers[i]);
    http_client_free(h->http); /* after the workers: no request is left in flight */
    free(h->workers);
    free(h->worker_load);
    for (size_t i = 0; i < h->plugin_count; i++) {
        sandbox_free(h->plugins[i].probe);
        free(h->plugins[i].path);
        free(h->plugins[i].source);
        free(h->plugins[i].overrides);
    }
    free(h->plugins);
    for (size_t i = 0; i < h->lib_dir_count; i++) free(h->lib_dirs[i]);
    free(h->lib_dirs);
    free(h->sandbox_configs);
    free(h->reorder);
    free(h->group_by);
    if (h->is_mutex_ready) uv_mutex_destroy(&h->results_lock);
    free(h);
}

int assay_host_new(assay_host **out, uv_loop_t *loop, const assay_options *o, assay_result_cb on_result,
                   void *user_data, assay_error *err) {
    if (err) err->status = ASSAY_OK, err->message[0] = '\0';
    if (!out) return fail(err, ASSAY_EINVAL, "assay_host_new: out is NULL");
    *out = NULL;
    if (!loop || !o) return fail(err, ASSAY_EINVAL, "assay_host_new: loop and options are required");
    if (o->plugin_path_count == 0) return fail(err, ASSAY_ECONFIG, "no plugins given");
    assay_host *h = calloc(1, sizeof *h);
    if (!h) return fail(err, ASSAY_ENOMEM, "out of memory");
    h->loop = loop;
    h->on_result = on_result;
    h->user_data = user_data;
    h->is_ordered = o->is_ordered;
    h->reorder_cap = 64;
    h->reorder = calloc(h->reorder_cap, sizeof *h->reorder);
    if (o->group_by && !(h->group_by = strdup(o->group_by))) goto oom;
    if (!h->reorder) goto oom;
    int status = ASSAY_OK;
    for (size_t i = 0; i < o->plugin_path_count && status == ASSAY_OK; i++)
        status = add_plugin_path(h, o->plugin_paths[i], err);
    if (status == ASSAY_OK) status = collect_lib_dirs(h, o, err);
    if (status == ASSAY_OK) status = load_plugins(h, o, err);
    if (status != ASSAY_OK) goto failed;

    {
        http_config hc = {o->llm_url, o->api_key, o->max_inflight, o->http_timeout_ms, o->max_attempts, o->rps,
                          o->tpm, o->max_tokens_total, o->cache_path, o->backoff_base_ms};
        char message[sizeof err->message];
        h->http = http_client_new(&hc, message, sizeof message);
        if (!h->http) {
            status = fail(err, ASSAY_ECONFIG, "%s", message);
            goto failed;
        }
    }
    h->worker_count = o->workers ? o->workers : (unsigned)uv_available_parallelism();
    if (h->worker_count == 0) h->worker_count = 1;
    h->workers = calloc(h->worker_count, sizeof *h->workers);
    h->worker_load = calloc(h->worker_count, sizeof *h->worker_load);
    if (!h->workers || !h->worker_load) goto oom;
    uv_mutex_init(&h->results_lock);
    h->is_mutex_ready = true;
    unsigned started = 0;
    for (; started < h->worker_count; started++) {
        worker_config wc = {started, h->sandbox_configs, h->plugin_count, h->group_by, h->http, on_job_done, h};
        char message[sizeof err->message];
        h->workers[started] = worker_new(&wc, message, sizeof message);
        if (!h->workers[started]) {
            status = fail(err, ASSAY_ECONFIG, "%s", message);
            break;
        }
    }
    if (status != ASSAY_OK) {
        h->worker_count = started; /* no job was submitted: nothing will call on_job_done */
        goto failed;
    }
    /* the loop gets a handle only once nothing can fail, so a failed creation needs no
     * loop iteration to clean up */
    uv_async_init(loop, &h->results_async, on_results);
    h->results_async.data = h;
    h->is_async_open = true;
    *out = h;
    return ASSAY_OK;
oom:
    status = fail(err, ASSAY_ENOMEM, "out of memory");
failed:
    host_free(h);
    return status;
}

void *assay_host_user_data(const assay_host *h) { return h ? h->user_data : NULL; }

void assay_host_io_stats(const assay_host *h, assay_io_stats *stats) {
    if (!stats) return;
    memset(stats, 0, sizeof *stats);
    if (!h || !h->http) return;
    http_client_stats(h->http, stats);
}

size_t assay_host_plugin_count(const assay_host *h) { return h ? h->plugin_count : 0; }

int assay_host_plugin_info(const assay_host *h, size_t i, assay_plugin_info *info) {
    if (!h || !info || i >= h->plugin_count) return ASSAY_EINVAL;
    const sandbox_info *s = sandbox_get_info(h->plugins[i].probe);
    *info = (assay_plugin_info){s->name, h->plugins[i].path, s->scope, s->description, s->params_json};
    return ASSAY_OK;
}

int assay_host_submit(assay_host *h, const char *json, size_t len, const char *source, uint64_t line,
                      void *submit_ctx) {
    if (!h || (!json && len)) return ASSAY_EINVAL;
    if (h->is_closing) return ASSAY_ECLOSED;
    if (h->is_ordered && reorder_reserve(h) != ASSAY_OK) return ASSAY_ENOMEM;
    job *j = calloc(1, sizeof *j);
    if (!j) return ASSAY_ENOMEM;
    j->text = malloc(len + 1);
    j->source = source ? strdup(source) : NULL;
    if (!j->text || (source && !j->source)) {
        job_free(j);
        return ASSAY_ENOMEM;
    }
    if (len) memcpy(j->text, json, len);
    j->text[len] = '\0';
    j->len = len;
    j->line = line;
    j->submit_ctx = submit_ctx;
    j->host = h;
    j->seq = h->next_seq++;
    unsigned best = 0;
    for (unsigned i = 1; i < h->worker_count; i++)
        if (h->worker_load[i] < h->worker_load[best]) best = i;
    j->worker = best;
    h->worker_load[best]++;
    h->pending++;
    worker_submit(h->workers[best], j);
    return ASSAY_OK;
}

int assay_host_submit_input_error(assay_host *h, const char *source, uint64_t line, const char *message,
                                  void *submit_ctx) {
    if (!h || !message) return ASSAY_EINVAL;
    if (h->is_closing) return ASSAY_ECLOSED;
    if (h->is_ordered && reorder_reserve(h) != ASSAY_OK) return ASSAY_ENOMEM;
    job *j = calloc(1, sizeof *j);
    if (!j || (source && !(j->source = strdup(source)))) {
        job_free(j);
        return ASSAY_ENOMEM;
    }
    j->line = line;
    j->submit_ctx = submit_ctx;
    j->host = h;
    j->worker = JOB_NO_WORKER;
    job_input_error(j, "%s", message);
    j->seq = h->next_seq++;
    h->pending++;
    on_job_done(h, j); /* through the result queue: delivered from the loop, in order */
    return ASSAY_OK;
}

size_t assay_host_pending(const assay_host *h) { return h ? h->pending : 0; }

static void on_async_closed(uv_handle_t *handle) {
    assay_host *h = handle->data;
    assay_close_cb cb = h->on_closed;
    if (cb) cb(h, h->user_data);
    host_free(h);
}

static void host_finish_close(assay_host *h) {
    for (unsigned i = 0; i < h->worker_count; i++) worker_free(h->workers[i]);
    h->worker_count = 0;
    uv_close((uv_handle_t *)&h->results_async, on_async_closed);
}

void assay_host_close(assay_host *h, assay_close_cb on_closed) {
    if (!h || h->is_closing) return;
    h->is_closing = true;
    h->on_closed = on_closed;
    /* finish from the loop, never from inside this call: the caller may not expect its
     * callbacks to run before assay_host_close returns */
    uv_async_send(&h->results_async);
}

/* ======================================================================= results */

const char *assay_result_trace_id(const assay_result *r) { return r ? r->trace_id : NULL; }
const char *assay_result_source(const assay_result *r) { return r ? r->source : NULL; }
uint64_t assay_result_line(const assay_result *r) { return r ? r->line : 0; }
const char *assay_result_group(const assay_result *r) { return r ? r->group : NULL; }
size_t assay_result_record_count(const assay_result *r) { return r ? r->out.count : 0; }

const char *assay_result_jsonl(const assay_result *r, size_t *len) {
    if (!r) return NULL;
    if (len) *len = r->out.jsonl.len;
    return r->out.jsonl.data ? r->out.jsonl.data : "";
}

int assay_result_record(const assay_result *r, size_t i, assay_record *rec) {
    if (!r || !rec || i >= r->out.count) return ASSAY_EINVAL;
    const sandbox_record *s = &r->out.records[i];
    *rec = (assay_record){
        .evaluator = s->evaluator < r->host->plugin_count ? sandbox_get_info(r->host->plugins[s->evaluator].probe)->name
                                                         : NULL,
        .evaluator_index = s->evaluator,
        .step = s->step,
        .has_score = s->has_score,
        .score = s->score,
        .pass = s->pass,
        .label = s->label,
        .error = (assay_error_kind)s->error,
        .error_message = s->error_message,
        .ms = s->ms,
    };
    return ASSAY_OK;
}
