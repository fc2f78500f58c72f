/* host.c - assay_host: plugin discovery and loading, dispatch of traces to workers, and
 * delivery of results on the caller's loop, in submission order.
 *
 * Threads: everything here runs on the caller's loop thread except on_job_done, which
 * workers call to queue finished jobs; the doorbell brings those jobs back to the loop.
 * Not here: evaluating (worker.c, sandbox/), reading files or writing output (the CLI).
 */
#include "host_internal.h"
#include "http.h"
#include "base/hash.h"
#include "base/queue.h"
#include "looper.h"

#include <dirent.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define HOST_MAX_PLUGIN_BYTES (4u << 20)
#define HOST_SPARE_JOBS 512

typedef struct plugin {
    char *path;
    char *source;
    size_t source_len;
    sandbox_param_override *overrides;
    size_t override_count;
    sandbox *probe; /* loaded once on this thread: name, scope, params for list/check */
} plugin;

/* One loaded set of plugins and the workers running it. A reload builds a new generation
 * beside the current one; the old one retires and is freed once the last trace it took
 * has been delivered, so traces in flight finish with the plugins they started with. */
typedef struct host_generation {
    plugin *plugins;
    size_t plugin_count;
    char **lib_dirs;
    size_t lib_dir_count;
    sandbox_config *sandbox_configs;
    worker **workers;
    unsigned worker_count;
    size_t *worker_load;              /* jobs handed to each worker and not yet back */
    atomic_ullong *plugin_cost;       /* each plugin's running mean time, for worker.c */
    size_t jobs;                      /* submitted and not yet delivered; guarded by lock */
    struct host_generation *next;     /* in the retired list */
} generation;

struct assay_host {
    uv_loop_t *loop;
    assay_result_cb on_result;
    void *user_data;
    assay_options *opts;              /* owned copy: reloads read the paths and params again */
    http_client *http;                /* shared by every generation */

    /* The lock guards what submitters and the delivering loop share. In loop mode both are
     * the loop thread and it is never contended; in thread mode callers submit from theirs.
     * The workers take only results_lock, held for a moment: sharing the lock with them
     * made the loop wait on it (and sleep) a few hundred times a second at -j 2. */
    uv_mutex_t lock;
    uv_mutex_t results_lock;
    queue results;                    /* finished by workers, not yet taken by the loop */
    generation *gen;                  /* current */
    generation *retired;              /* older ones with traces still in flight */
    uint64_t next_seq;
    uint64_t next_delivery;
    job **reorder;                    /* ring indexed by seq % reorder_cap */
    size_t reorder_cap;               /* a power of two, always > pending */
    /* changed under the lock, read without it: the reader's flow control asks for it twice
     * a trace, and would contend with the workers handing results back */
    atomic_size_t pending;
    atomic_ullong shared;             /* traces whose plugins ran on several workers */
    bool is_closing;
    bool is_finishing;                /* host_finish_close ran (loop thread only) */
    assay_close_cb on_closed;
    /* Delivered jobs kept for the next submissions, with their record lists' memory
     * (under the lock). Freed here, records a worker had allocated went back to its malloc
     * arena under the arena's lock: the loop and the workers waited on each other there
     * over a thousand times a run at -j 2. */
    job *spare;
    size_t spare_count;

    uv_async_t *mailbox;              /* wakes the loop to close or for submitted input errors */
    uv_async_t results_async;         /* loop mode: on the caller's loop */
    /* Wakes the loop for the workers' results (results_push): an eventfd under a poll
     * handle, rung by the first worker to queue results since the loop last took them. */
    uv_poll_t doorbell;
    int doorbell_fd; /* -1: none */
    atomic_bool is_rung;
    bool is_mutex_ready;

    /* thread mode (assay_host_new with loop NULL): our own loop on our own thread, whose
     * mailbox brings the results; h->lock still guards the host's state */
    bool is_threaded;
    looper own;
};

/* assay.h's error kinds are the sandbox's, value for value: records are copied across. */
_Static_assert((int)ASSAY_KIND_NONE == (int)SANDBOX_OK && (int)ASSAY_KIND_RUNTIME == (int)SANDBOX_ERR_RUNTIME &&
                   (int)ASSAY_KIND_TIMEOUT == (int)SANDBOX_ERR_TIMEOUT && (int)ASSAY_KIND_MEMORY == (int)SANDBOX_ERR_MEMORY &&
                   (int)ASSAY_KIND_HTTP == (int)SANDBOX_ERR_HTTP && (int)ASSAY_KIND_INPUT == (int)SANDBOX_ERR_INPUT &&
                   (int)ASSAY_KIND_CONFIG == (int)SANDBOX_ERR_CONFIG,
               "ASSAY_KIND_* must mirror SANDBOX_ERR_*");

const char *assay_version(void) { return ASSAY_VERSION_STRING; }

int assay_set_time_signal(int signo) { return sandbox_watch_enable(signo) == 0 ? ASSAY_OK : ASSAY_EINVAL; }

const char *assay_sandbox_withheld(const char *global, const char *field) {
    return global ? sandbox_withheld(global, field) : NULL;
}

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

static int add_plugin_file(generation *g, const char *path, assay_error *err) {
    plugin *grown = realloc(g->plugins, (g->plugin_count + 1) * sizeof *grown);
    if (!grown) return fail(err, ASSAY_ENOMEM, "out of memory");
    g->plugins = grown;
    plugin *p = &g->plugins[g->plugin_count];
    memset(p, 0, sizeof *p);
    p->path = strdup(path);
    if (!p->path) return fail(err, ASSAY_ENOMEM, "out of memory");
    g->plugin_count++;
    return read_file(path, &p->source, &p->source_len, err);
}

/* A directory contributes its *.lua files in name order; its lib/ folder holds helpers and
 * is not scanned. */
static int add_plugin_path(generation *g, const char *path, assay_error *err) {
    struct stat st;
    if (stat(path, &st) != 0) return fail(err, ASSAY_ECONFIG, "%s: %s", path, strerror(errno));
    if (!S_ISDIR(st.st_mode)) return add_plugin_file(g, path, err);
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
            status = buf_failed(&full) ? fail(err, ASSAY_ENOMEM, "out of memory") : add_plugin_file(g, full.data, err);
            buf_free(&full);
        }
        free(names[i]);
    }
    free(names);
    return status;
}

static int add_lib_dir(generation *g, const char *dir) {
    for (size_t i = 0; i < g->lib_dir_count; i++)
        if (strcmp(g->lib_dirs[i], dir) == 0) return ASSAY_OK;
    char **grown = realloc(g->lib_dirs, (g->lib_dir_count + 1) * sizeof *grown);
    if (!grown) return ASSAY_ENOMEM;
    g->lib_dirs = grown;
    if (!(g->lib_dirs[g->lib_dir_count] = strdup(dir))) return ASSAY_ENOMEM;
    g->lib_dir_count++;
    return ASSAY_OK;
}

/* Each plugin's own lib/ first, then the extra directories of the options. */
/* The shipped Lua helpers where `make install` puts them (PREFIX/share/assay/plugins/lib). */
#define HOST_INSTALLED_LIB ASSAY_DATADIR "/plugins/lib"

static int collect_lib_dirs(generation *g, const assay_options *o, assay_error *err) {
    for (size_t i = 0; i < g->plugin_count; i++) {
        const char *path = g->plugins[i].path;
        const char *slash = strrchr(path, '/');
        buf dir;
        buf_init(&dir);
        if (slash) buf_append(&dir, path, (size_t)(slash - path));
        else buf_putc(&dir, '.');
        buf_puts(&dir, "/lib");
        int status = buf_failed(&dir) ? ASSAY_ENOMEM : add_lib_dir(g, dir.data);
        buf_free(&dir);
        if (status) return fail(err, status, "out of memory");
    }
    for (size_t i = 0; i < o->lib_dir_count; i++)
        if (add_lib_dir(g, o->lib_dirs[i])) return fail(err, ASSAY_ENOMEM, "out of memory");
    /* last, the installed helpers (trace, result, llm), so that a program embedding libassay
     * runs plugins written against them with no set-up */
    struct stat st;
    if (stat(HOST_INSTALLED_LIB, &st) == 0 && S_ISDIR(st.st_mode) && add_lib_dir(g, HOST_INSTALLED_LIB))
        return fail(err, ASSAY_ENOMEM, "out of memory");
    return ASSAY_OK;
}

static void fill_sandbox_config(const generation *g, const assay_options *o, const plugin *p, sandbox_config *c) {
    memset(c, 0, sizeof *c);
    c->path = p->path;
    c->host_version = ASSAY_VERSION_STRING;
    c->source = p->source;
    c->source_len = p->source_len;
    c->lib_dirs = (const char *const *)g->lib_dirs;
    c->lib_dir_count = g->lib_dir_count;
    c->memory_limit = (size_t)o->memory_mb << 20;
    c->timeout_ms = o->timeout_ms;
    c->record_timing = o->record_timing;
    c->is_mapper = o->is_mapper;
    c->overrides = p->overrides;
    c->override_count = p->override_count;
    c->log = o->log;
    c->log_ctx = o->log_ctx;
    c->index = (size_t)(p - g->plugins);
    c->has_io = true;
    c->has_llm = o->llm_url != NULL || o->responder != NULL; /* a responder may answer */
    c->llm_model = o->llm_model ? o->llm_model : o->responder ? "responder" : NULL;
    c->llm_endpoints = (const char *const *)o->endpoint_names;
    c->llm_endpoint_count = o->endpoint_count;
    c->price_in = o->price_in;
    c->price_out = o->price_out;
}

int assay_eval_settings(const assay_options *opts, const char *path, char **json, assay_error *err) {
    *json = NULL;
    if (!opts || !path) return fail(err, ASSAY_EINVAL, "assay_eval_settings: no options or no path");
    char *source = NULL;
    size_t len = 0;
    int rc = read_file(path, &source, &len, err);
    if (rc != ASSAY_OK) return rc;
    sandbox_config c;
    memset(&c, 0, sizeof c);
    c.path = path;
    c.host_version = ASSAY_VERSION_STRING;
    c.source = source, c.source_len = len;
    c.lib_dirs = (const char *const *)opts->lib_dirs;
    c.lib_dir_count = opts->lib_dir_count;
    c.memory_limit = (size_t)opts->memory_mb << 20;
    c.timeout_ms = opts->timeout_ms;
    c.is_table = true;
    char message[sizeof err->message];
    sandbox *sb = sandbox_new(&c, message, sizeof message);
    free(source);
    if (!sb) return fail(err, ASSAY_ECONFIG, "%s", message);
    *json = strdup(sandbox_table_json(sb));
    sandbox_free(sb);
    return *json ? ASSAY_OK : fail(err, ASSAY_ENOMEM, "out of memory");
}

/* Loads every plugin once here: names are only known after loading, and -p NAME.KEY must
 * be matched to them before the workers load their own copies. */
static int load_plugins(generation *g, const assay_options *o, assay_error *err) {
    char message[sizeof err->message];
    g->sandbox_configs = calloc(g->plugin_count ? g->plugin_count : 1, sizeof *g->sandbox_configs);
    if (!g->sandbox_configs) return fail(err, ASSAY_ENOMEM, "out of memory");
    for (size_t i = 0; i < g->plugin_count; i++) {
        plugin *p = &g->plugins[i];
        sandbox_config *c = &g->sandbox_configs[i];
        fill_sandbox_config(g, o, p, c);
        p->probe = sandbox_new(c, message, sizeof message);
        if (!p->probe) return fail(err, ASSAY_ECONFIG, "%s", message);
        const char *name = sandbox_get_info(p->probe)->name;
        for (size_t j = 0; j < i; j++)
            if (strcmp(sandbox_get_info(g->plugins[j].probe)->name, name) == 0)
                return fail(err, ASSAY_ECONFIG, "%s: a plugin named '%s' is already loaded from %s", p->path, name,
                            g->plugins[j].path);
        for (size_t k = 0; k < o->param_count; k++) {
            if (strcmp(o->params[k].plugin, name) != 0) continue;
            sandbox_param_override *grown = realloc(p->overrides, (p->override_count + 1) * sizeof *grown);
            if (!grown) return fail(err, ASSAY_ENOMEM, "out of memory");
            p->overrides = grown;
            p->overrides[p->override_count++] = (sandbox_param_override){o->params[k].key, o->params[k].value};
        }
        if (p->override_count) { /* reload with the overrides: their types are checked now */
            sandbox_free(p->probe);
            fill_sandbox_config(g, o, p, c);
            p->probe = sandbox_new(c, message, sizeof message);
            if (!p->probe) return fail(err, ASSAY_ECONFIG, "%s", message);
        }
    }
    for (size_t k = 0; k < o->param_count; k++) {
        bool found = false;
        for (size_t i = 0; i < g->plugin_count && !found; i++)
            found = strcmp(sandbox_get_info(g->plugins[i].probe)->name, o->params[k].plugin) == 0;
        if (!found) {
            buf names;
            buf_init(&names);
            for (size_t i = 0; i < g->plugin_count; i++)
                buf_printf(&names, "%s%s", i ? ", " : "", sandbox_get_info(g->plugins[i].probe)->name);
            fail(err, ASSAY_ECONFIG, "param %s.%s: no plugin named '%s' (loaded: %s)", o->params[k].plugin,
                 o->params[k].key, o->params[k].plugin, buf_cstr(&names));
            buf_free(&names);
            return ASSAY_ECONFIG;
        }
    }
    return ASSAY_OK;
}

/* =================================================================== generations */

static void generation_free(generation *g) {
    if (!g) return;
    for (unsigned i = 0; i < g->worker_count; i++) worker_free(g->workers[i]);
    free(g->workers);
    free(g->worker_load);
    free(g->plugin_cost);
    for (size_t i = 0; i < g->plugin_count; i++) {
        sandbox_free(g->plugins[i].probe);
        free(g->plugins[i].path);
        free(g->plugins[i].source);
        free(g->plugins[i].overrides);
    }
    free(g->plugins);
    for (size_t i = 0; i < g->lib_dir_count; i++) free(g->lib_dirs[i]);
    free(g->lib_dirs);
    free(g->sandbox_configs);
    free(g);
}

static void on_job_done(void *ctx, job *list);

/* Reads and loads the plugins named by the options and starts workers running them. Runs
 * on the calling thread and takes as long as loading every plugin twice: once here, then
 * once in every worker, all workers at once. */
static generation *generation_new(assay_host *h, assay_error *err) {
    const assay_options *o = h->opts;
    generation *g = calloc(1, sizeof *g);
    if (!g) {
        fail(err, ASSAY_ENOMEM, "out of memory");
        return NULL;
    }
    int status = ASSAY_OK;
    for (size_t i = 0; i < o->plugin_path_count && status == ASSAY_OK; i++)
        status = add_plugin_path(g, o->plugin_paths[i], err);
    if (status == ASSAY_OK) status = collect_lib_dirs(g, o, err);
    if (status == ASSAY_OK) status = load_plugins(g, o, err);
    if (status != ASSAY_OK) goto failed;
    unsigned count = o->workers ? o->workers : (unsigned)uv_available_parallelism();
    if (count == 0) count = 1;
    g->workers = calloc(count, sizeof *g->workers);
    g->worker_load = calloc(count, sizeof *g->worker_load);
    g->plugin_cost = calloc(g->plugin_count ? g->plugin_count : 1, sizeof *g->plugin_cost);
    if (!g->workers || !g->worker_load || !g->plugin_cost) {
        fail(err, ASSAY_ENOMEM, "out of memory");
        goto failed;
    }
    for (; g->worker_count < count; g->worker_count++) {
        worker_config wc = {g->worker_count, g->sandbox_configs, g->plugin_count, o->group_by, o->sample_rate,
                            o->sample_seed, o->shard_index, o->shard_count, h->http, o->responder,
                            o->responder_ctx, on_job_done, h, &h->shared, g->plugin_cost};
        char message[sizeof err->message];
        if (!(g->workers[g->worker_count] = worker_new(&wc, message, sizeof message))) {
            fail(err, ASSAY_ECONFIG, "%s", message);
            goto failed; /* no job was submitted: nothing will call on_job_done */
        }
    }
    for (unsigned i = 0; i < g->worker_count; i++) { /* they load at once, each on its thread */
        char message[sizeof err->message];
        if (worker_wait_loaded(g->workers[i], message, sizeof message) != 0) {
            fail(err, ASSAY_ECONFIG, "%s", message);
            goto failed;
        }
    }
    return g;
failed:
    generation_free(g);
    return NULL;
}

/* ====================================================================== delivery */

static void host_finish_close(assay_host *h);

/* Queues finished jobs for the loop and wakes it, unless the queue already held some: the
 * loop was woken for those and takes them all at once.
 *
 * A worker rings the doorbell after letting go of the lock: the system call under it made
 * the other worker wait, as the woken loop often took the core from the worker that held
 * it. Not uv_async_send: libuv 1.44's loop, woken before the sender has returned from it,
 * spins on the handle (997 pauses, 20 µs here, then sched_yield) until the sender has, and
 * it is woken on the sender's own core more often than not: about 1,500 yields in a `-j 2`
 * run of the bench corpus (docs/performance.md, eleventh part). The eventfd's write is
 * the sender's last touch. The doorbell outlives that write, as the loop closes it only
 * after joining every worker (host_finish_close). A submitter has no such bond and sends
 * through the mailbox under the lock, before the loop may deliver the job, see nothing
 * pending and close the handle. */
static void doorbell_ring(assay_host *h) {
    if (atomic_exchange(&h->is_rung, true)) return; /* rung already, not yet answered */
    uint64_t one = 1;
    while (write(h->doorbell_fd, &one, sizeof one) < 0 && errno == EINTR) {}
}

static void results_push(assay_host *h, job *list, bool is_worker) {
    uv_mutex_lock(&h->results_lock);
    bool is_told = !queue_is_empty(&h->results);
    while (list) {
        job *j = list;
        list = j->next;
        queue_push(&h->results, j);
    }
    if (!is_told && !is_worker) uv_async_send(h->mailbox);
    uv_mutex_unlock(&h->results_lock);
    if (!is_told && is_worker) doorbell_ring(h);
}

/* Workers call this from their threads, with a list of finished jobs. */
static void on_job_done(void *ctx, job *list) { results_push(ctx, list, true); }

/* Takes the finished jobs that may be delivered now, in delivery order. Under the lock;
 * takes results_lock within it (the one order the two are ever held in). */
static job *take_deliverable(assay_host *h) {
    queue done = QUEUE_INIT(job, next);
    uv_mutex_lock(&h->results_lock);
    queue_move_all(&done, &h->results);
    uv_mutex_unlock(&h->results_lock);
    job *out = NULL, **tail = &out;
    for (job *j; (j = queue_pop(&done));) {
        if (j->worker != JOB_NO_WORKER) ((generation *)j->gen)->worker_load[j->worker]--;
        for (unsigned k = 0; k < j->helper_count; k++) ((generation *)j->gen)->worker_load[j->helper_index[k]]--;
        if (h->opts->is_ordered) {
            h->reorder[j->seq & (h->reorder_cap - 1)] = j;
        } else {
            *tail = j;
            tail = &j->next;
        }
    }
    for (; h->opts->is_ordered;) {
        size_t slot = h->next_delivery & (h->reorder_cap - 1);
        job *j = h->reorder[slot];
        if (!j || j->seq != h->next_delivery) break;
        h->reorder[slot] = NULL;
        h->next_delivery++;
        *tail = j;
        tail = &j->next;
    }
    for (job *j = out; j; j = j->next) atomic_fetch_sub_explicit(&h->pending, 1, memory_order_relaxed);
    return out;
}

/* Unlinks the retired generations whose last trace has been delivered. Under the lock. */
static generation *take_idle_retired(assay_host *h) {
    generation *idle = NULL, **link = &h->retired;
    while (*link) {
        generation *g = *link;
        if (g->jobs == 0) {
            *link = g->next;
            g->next = idle;
            idle = g;
        } else {
            link = &g->next;
        }
    }
    return idle;
}

/* Keeps delivered jobs as spares, up to HOST_SPARE_JOBS, and frees the rest. */
static void spare_put(assay_host *h, job *delivered) {
    job *list = NULL;
    while (delivered) {
        job *j = delivered;
        delivered = j->next;
        job_reset(j);
        j->next = list;
        list = j;
    }
    uv_mutex_lock(&h->lock);
    while (list && h->spare_count < HOST_SPARE_JOBS) {
        job *j = list;
        list = j->next;
        j->next = h->spare;
        h->spare = j;
        h->spare_count++;
    }
    uv_mutex_unlock(&h->lock);
    while (list) {
        job *j = list;
        list = j->next;
        job_free(j);
    }
}

/* A zeroed job: a spare when there is one. */
static job *spare_take(assay_host *h) {
    uv_mutex_lock(&h->lock);
    job *j = h->spare;
    if (j) {
        h->spare = j->next;
        h->spare_count--;
        j->next = NULL;
    }
    uv_mutex_unlock(&h->lock);
    return j ? j : calloc(1, sizeof *j);
}

/* Callbacks run without the lock held, so that they may submit, reload or close. */
static void deliver(assay_host *h) {
    uv_mutex_lock(&h->lock);
    job *list = take_deliverable(h);
    uv_mutex_unlock(&h->lock);
    for (job *j = list; j; j = j->next)
        if (h->on_result) h->on_result(h, j, j->submit_ctx);
    uv_mutex_lock(&h->lock);
    for (job *j = list; j; j = j->next) ((generation *)j->gen)->jobs--;
    generation *idle = take_idle_retired(h);
    bool is_done = h->is_closing && atomic_load_explicit(&h->pending, memory_order_relaxed) == 0;
    uv_mutex_unlock(&h->lock);
    spare_put(h, list);
    while (idle) {
        generation *g = idle;
        idle = g->next;
        generation_free(g);
    }
    if (is_done) host_finish_close(h);
}

static void on_results(uv_async_t *handle) { deliver(handle->data); }

static void on_doorbell(uv_poll_t *handle, int status, int events) {
    (void)status, (void)events;
    assay_host *h = handle->data;
    uint64_t count;
    while (read(h->doorbell_fd, &count, sizeof count) < 0 && errno == EINTR) {}
    /* answered before taking the queue: results queued after this point ring again */
    atomic_store(&h->is_rung, false);
    deliver(h);
}

/* The doorbell on loop, polled; -1 (the eventfd closed, nothing on the loop) when it
 * cannot be. */
static int doorbell_open(assay_host *h, uv_loop_t *loop) {
    h->doorbell_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (h->doorbell_fd < 0) return -1;
    if (uv_poll_init(loop, &h->doorbell, h->doorbell_fd) != 0) {
        close(h->doorbell_fd);
        h->doorbell_fd = -1;
        return -1;
    }
    h->doorbell.data = h;
    uv_poll_start(&h->doorbell, UV_READABLE, on_doorbell); /* fails only on a closing handle */
    return 0;
}

/* Keeps reorder_cap > pending so that the seqs in flight map to distinct slots. */
static int reorder_reserve(assay_host *h) {
    if (atomic_load_explicit(&h->pending, memory_order_relaxed) + 1 < h->reorder_cap) return ASSAY_OK;
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
    generation_free(h->gen);
    while (h->retired) {
        generation *g = h->retired;
        h->retired = g->next;
        generation_free(g);
    }
    http_client_free(h->http); /* after the workers: no request is left in flight */
    free(h->reorder);
    while (h->spare) {
        job *j = h->spare;
        h->spare = j->next;
        job_free(j);
    }
    assay_options_free(h->opts);
    if (h->doorbell_fd >= 0) close(h->doorbell_fd);
    if (h->is_mutex_ready) {
        uv_mutex_destroy(&h->lock);
        uv_mutex_destroy(&h->results_lock);
    }
    free(h);
}

/* The loop h delivers on: the caller's, or (loop NULL) one of its own on its own thread;
 * with the doorbell and the mailbox. ASSAY_OK, or an error with nothing left on any loop. */
static int host_attach(assay_host *h, uv_loop_t *loop, assay_error *err) {
    h->is_threaded = loop == NULL;
    if (h->is_threaded) {
        if (looper_init(&h->own, on_results, h) != 0)
            return fail(err, ASSAY_ENOMEM, "cannot create the host's event loop");
        h->loop = &h->own.loop;
        h->mailbox = &h->own.mailbox;
        if (doorbell_open(h, h->loop) != 0) {
            looper_abandon(&h->own);
            return fail(err, ASSAY_ENOMEM, "cannot create the host's doorbell (eventfd)");
        }
        if (looper_start(&h->own) != 0) {
            uv_close((uv_handle_t *)&h->doorbell, NULL); /* closed by looper_abandon's loop */
            looper_abandon(&h->own);
            return fail(err, ASSAY_ENOMEM, "cannot start the host's thread");
        }
        return ASSAY_OK;
    }
    /* the caller's loop gets handles only once nothing else can fail (a doorbell that
     * cannot be made leaves none), so a failed creation needs no loop iteration to clean up */
    if (doorbell_open(h, loop) != 0) return fail(err, ASSAY_ENOMEM, "cannot create the host's doorbell (eventfd)");
    h->loop = loop;
    uv_async_init(loop, &h->results_async, on_results);
    h->results_async.data = h;
    h->mailbox = &h->results_async;
    return ASSAY_OK;
}

int assay_host_new(assay_host **out, uv_loop_t *loop, const assay_options *o, assay_result_cb on_result,
                   void *user_data, assay_error *err) {
    if (err) err->status = ASSAY_OK, err->message[0] = '\0';
    if (!out) return fail(err, ASSAY_EINVAL, "assay_host_new: out is NULL");
    *out = NULL;
    if (!o) return fail(err, ASSAY_EINVAL, "assay_host_new: options are required");
    if (o->plugin_path_count == 0) return fail(err, ASSAY_ECONFIG, "no plugins given");
    assay_host *h = calloc(1, sizeof *h);
    if (!h) return fail(err, ASSAY_ENOMEM, "out of memory");
    atomic_init(&h->shared, 0);
    atomic_init(&h->is_rung, false);
    h->doorbell_fd = -1;
    h->on_result = on_result;
    h->user_data = user_data;
    h->results = QUEUE_INIT(job, next);
    h->reorder_cap = 64;
    h->reorder = calloc(h->reorder_cap, sizeof *h->reorder);
    h->opts = options_clone(o);
    int status = ASSAY_OK;
    if (!h->reorder || !h->opts || uv_mutex_init(&h->lock) != 0) {
        status = fail(err, ASSAY_ENOMEM, "out of memory");
        goto failed;
    }
    if (uv_mutex_init(&h->results_lock) != 0) {
        uv_mutex_destroy(&h->lock);
        status = fail(err, ASSAY_ENOMEM, "out of memory");
        goto failed;
    }
    h->is_mutex_ready = true;
    {
        const assay_options *c = h->opts;
        http_config hc = {.llm_url = c->llm_url, .api_key = c->api_key,
                          .endpoint_urls = (const char *const *)c->endpoint_urls,
                          .endpoint_keys = (const char *const *)c->endpoint_keys, .endpoint_count = c->endpoint_count,
                          .max_inflight = c->max_inflight, .timeout_ms = c->http_timeout_ms,
                          .max_attempts = c->max_attempts, .rps = c->rps, .tpm = c->tpm,
                          .max_tokens_total = c->max_tokens_total, .cache_path = c->cache_path,
                          .backoff_base_ms = c->backoff_base_ms};
        char message[sizeof err->message];
        if (!(h->http = http_client_new(&hc, message, sizeof message))) {
            status = fail(err, ASSAY_ECONFIG, "%s", message);
            goto failed;
        }
    }
    if (!(h->gen = generation_new(h, err))) {
        status = err ? err->status : ASSAY_ECONFIG;
        goto failed;
    }
    if ((status = host_attach(h, loop, err)) != ASSAY_OK) goto failed;
    *out = h;
    return ASSAY_OK;
failed:
    host_free(h);
    return status;
}

int assay_host_reload(assay_host *h, assay_error *err) {
    if (err) err->status = ASSAY_OK, err->message[0] = '\0';
    if (!h) return fail(err, ASSAY_EINVAL, "assay_host_reload: host is NULL");
    uv_mutex_lock(&h->lock);
    bool is_closing = h->is_closing;
    uv_mutex_unlock(&h->lock);
    if (is_closing) return fail(err, ASSAY_ECLOSED, "assay_host_reload: the host is closing");
    generation *fresh = generation_new(h, err);
    if (!fresh) return err ? err->status : ASSAY_ECONFIG; /* the current plugins stay */
    uv_mutex_lock(&h->lock);
    generation *old = h->gen;
    h->gen = fresh;
    old->next = h->retired;
    h->retired = old;
    generation *idle = take_idle_retired(h);
    uv_mutex_unlock(&h->lock);
    while (idle) {
        generation *g = idle;
        idle = g->next;
        generation_free(g);
    }
    return ASSAY_OK;
}

void *assay_host_user_data(const assay_host *h) { return h ? h->user_data : NULL; }

/* Copies a public struct into the caller's, whose size says which version of assay.h it
 * was built with: fields are only ever added at the end, so an older program gets the
 * fields it knows and a newer one finds the rest zeroed. */
static int copy_sized(void *to, size_t to_size, const void *from, size_t from_size) {
    if (!to || to_size == 0) return ASSAY_EINVAL;
    memset(to, 0, to_size);
    memcpy(to, from, to_size < from_size ? to_size : from_size);
    return ASSAY_OK;
}

int assay_host_io_stats(const assay_host *h, assay_io_stats *stats, size_t stats_size) {
    assay_io_stats s = {0};
    if (h && h->http) http_client_stats(h->http, &s);
    return copy_sized(stats, stats_size, &s, sizeof s);
}

unsigned assay_host_worker_count(const assay_host *h) {
    if (!h) return 0;
    uv_mutex_lock((uv_mutex_t *)&h->lock);
    unsigned n = h->gen->worker_count;
    uv_mutex_unlock((uv_mutex_t *)&h->lock);
    return n;
}

size_t assay_host_plugin_count(const assay_host *h) {
    if (!h) return 0;
    uv_mutex_lock((uv_mutex_t *)&h->lock);
    size_t n = h->gen->plugin_count;
    uv_mutex_unlock((uv_mutex_t *)&h->lock);
    return n;
}

int assay_host_plugin_info(const assay_host *h, size_t i, assay_plugin_info *info, size_t info_size) {
    if (!h || !info) return ASSAY_EINVAL;
    int status = ASSAY_EINVAL;
    uv_mutex_lock((uv_mutex_t *)&h->lock);
    const generation *g = h->gen;
    if (i < g->plugin_count) {
        const sandbox_info *s = sandbox_get_info(g->plugins[i].probe);
        assay_plugin_info full = {s->name, g->plugins[i].path, s->scope, s->description, s->params_json};
        status = copy_sized(info, info_size, &full, sizeof full);
    }
    uv_mutex_unlock((uv_mutex_t *)&h->lock);
    return status;
}

/* Numbers the job, picks the least loaded worker of the current generation and queues it
 * there, or on the result queue when it is an input error. Takes ownership of j. */
static int host_enqueue(assay_host *h, job *j) {
    uv_mutex_lock(&h->lock);
    int status = h->is_closing ? ASSAY_ECLOSED : ASSAY_OK;
    if (status == ASSAY_OK && h->opts->is_ordered) status = reorder_reserve(h);
    if (status != ASSAY_OK) {
        uv_mutex_unlock(&h->lock);
        job_free(j);
        return status;
    }
    generation *g = h->gen;
    j->gen = g;
    j->seq = h->next_seq++;
    g->jobs++;
    atomic_fetch_add_explicit(&h->pending, 1, memory_order_relaxed);
    if (j->worker == JOB_NO_WORKER) {
        uv_mutex_unlock(&h->lock);
        j->next = NULL;
        results_push(h, j, false); /* through the result queue: delivered from the loop, in order */
        return ASSAY_OK;
    }
    unsigned best = 0;
    for (unsigned i = 1; i < g->worker_count; i++)
        if (g->worker_load[i] < g->worker_load[best]) best = i;
    j->worker = best;
    g->worker_load[best]++;
    /* Idle workers help: a service that submits a trace and waits for it gets it back in
     * the time of its slowest plugins. A loaded host never shares (no worker is idle), so
     * batch runs keep one trace per worker, which wastes nothing. */
    if (g->worker_load[best] == 1 && g->plugin_count > 1) {
        for (unsigned i = 0; i < g->worker_count && j->helper_count < JOB_MAX_HELPERS &&
                             j->helper_count + 1 < g->plugin_count; i++) {
            if (i == best || g->worker_load[i]) continue;
            g->worker_load[i]++;
            j->helper_index[j->helper_count] = i;
            j->helpers[j->helper_count++] = g->workers[i];
        }
    }
    worker_submit(g->workers[best], j); /* under the lock: a reload cannot free g meanwhile */
    uv_mutex_unlock(&h->lock);
    return ASSAY_OK;
}

int assay_host_submit(assay_host *h, const char *json, size_t len, const char *source, uint64_t line,
                      void *submit_ctx) {
    if (!h || (!json && len)) return ASSAY_EINVAL;
    if (len == SIZE_MAX) return ASSAY_ENOMEM; /* len + 1 must not wrap */
    job *j = spare_take(h);
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
    return host_enqueue(h, j);
}

int assay_host_submit_input_error(assay_host *h, const char *source, uint64_t line, const char *message,
                                  void *submit_ctx) {
    if (!h || !message) return ASSAY_EINVAL;
    job *j = calloc(1, sizeof *j);
    if (!j || (source && !(j->source = strdup(source)))) {
        job_free(j);
        return ASSAY_ENOMEM;
    }
    j->line = line;
    j->submit_ctx = submit_ctx;
    j->worker = JOB_NO_WORKER;
    if (job_in_shard(NULL, line, h->opts->shard_index, h->opts->shard_count)) job_input_error(j, "%s", message);
    else j->is_other_shard = true;
    return host_enqueue(h, j);
}

size_t assay_host_pending(const assay_host *h) {
    return h ? atomic_load_explicit(&((assay_host *)h)->pending, memory_order_relaxed) : 0;
}

uint64_t assay_host_shared(const assay_host *h) {
    return h ? (uint64_t)atomic_load_explicit(&((assay_host *)h)->shared, memory_order_relaxed) : 0;
}

static void on_async_closed(uv_handle_t *handle) {
    assay_host *h = handle->data;
    assay_close_cb cb = h->on_closed;
    if (cb) cb(h, h->user_data);
    if (!h->is_threaded) host_free(h); /* thread mode: the closing thread frees it */
}

/* The mailbox last: its callback may free the host. */
static void on_doorbell_closed(uv_handle_t *handle) {
    assay_host *h = handle->data;
    close(h->doorbell_fd);
    h->doorbell_fd = -1;
    uv_close((uv_handle_t *)h->mailbox, on_async_closed);
}

/* On the loop thread, once every result has been delivered. */
static void host_finish_close(assay_host *h) {
    /* the mailbox stays open until the doorbell has closed: its callback, in the same turn
     * of the loop, finds every result delivered too */
    if (h->is_finishing) return;
    h->is_finishing = true;
    generation *g = h->gen;
    for (unsigned i = 0; i < g->worker_count; i++) worker_free(g->workers[i]);
    g->worker_count = 0;
    uv_close((uv_handle_t *)&h->doorbell, on_doorbell_closed);
}

int assay_host_close(assay_host *h, assay_close_cb on_closed) {
    if (!h) return ASSAY_EINVAL;
    if (h->is_threaded && looper_is_own_thread(&h->own)) return ASSAY_EINVAL; /* it would wait for itself */
    uv_mutex_lock(&h->lock);
    bool was_closing = h->is_closing;
    h->is_closing = true;
    if (!was_closing) h->on_closed = on_closed;
    uv_mutex_unlock(&h->lock);
    if (was_closing) return ASSAY_ECLOSED;
    /* finish from the loop, never from inside this call: the caller may not expect its
     * callbacks to run before assay_host_close returns */
    uv_async_send(h->mailbox);
    if (h->is_threaded) {
        looper_join(&h->own); /* its loop ends with the mailbox, closed by host_finish_close */
        host_free(h);
    }
    return ASSAY_OK;
}

/* ======================================================================= results */

const char *assay_result_trace_id(const assay_result *r) { return r ? r->trace_id : NULL; }
const char *assay_result_source(const assay_result *r) { return r ? r->source : NULL; }
uint64_t assay_result_line(const assay_result *r) { return r ? r->line : 0; }
const char *assay_result_group(const assay_result *r) { return r ? r->group : NULL; }
size_t assay_result_record_count(const assay_result *r) { return r ? r->out.count : 0; }
int assay_result_is_sampled_out(const assay_result *r) { return r && r->is_sampled_out; }

int assay_result_is_other_shard(const assay_result *r) { return r && r->is_other_shard; }

unsigned assay_shard_of(const char *trace_id, unsigned count) {
    return trace_id && count > 1 ? hash_shard(trace_id, count) : 0;
}

bool job_in_shard(const char *trace_id, uint64_t line, unsigned index, unsigned count) {
    if (count <= 1) return true;
    return (trace_id ? hash_shard(trace_id, count) : (unsigned)(line % count)) == index;
}

int assay_sample_pick(const char *trace_id, uint64_t seed, double rate) {
    return rate >= 1 || hash_sample(trace_id, seed) < rate;
}

const char *assay_result_jsonl(const assay_result *r, size_t *len) {
    if (!r) return NULL;
    if (len) *len = r->out.jsonl.len;
    return r->out.jsonl.data ? r->out.jsonl.data : "";
}

/* The spans are checked against the buffer, so a record whose line could not be written
 * (out of memory) reads as absent rather than as someone else's bytes. */
const char *assay_result_record_jsonl(const assay_result *r, size_t i, size_t *len) {
    if (!r || i >= r->out.count) return NULL;
    const record *s = &r->out.records[i];
    if (buf_failed(&r->out.jsonl) || s->line_at + s->line_len > r->out.jsonl.len) return NULL;
    if (len) *len = s->line_len;
    return r->out.jsonl.data + s->line_at;
}

const char *assay_result_record_details(const assay_result *r, size_t i, size_t *len) {
    if (!r || i >= r->out.count) return NULL;
    const record *s = &r->out.records[i];
    if (!s->details_len || buf_failed(&r->out.jsonl) || s->details_at + s->details_len > r->out.jsonl.len) return NULL;
    if (len) *len = s->details_len;
    return r->out.jsonl.data + s->details_at;
}

int assay_result_record(const assay_result *r, size_t i, assay_record *rec, size_t rec_size) {
    if (!r || !rec || i >= r->out.count) return ASSAY_EINVAL;
    const record *s = &r->out.records[i];
    assay_record full = {
        .evaluator = s->evaluator < r->gen->plugin_count ? sandbox_get_info(r->gen->plugins[s->evaluator].probe)->name
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
        .io_calls = s->io_calls,
        .tokens_in = s->tokens_in,
        .tokens_out = s->tokens_out,
        .cost = s->cost,
    };
    return copy_sized(rec, rec_size, &full, sizeof full);
}
