/* host_internal.h - what host.c, options.c and worker.c share: the options, the job that
 * carries one trace from submission to its result, and the worker interface. */
#ifndef ASSAY_HOST_INTERNAL_H
#define ASSAY_HOST_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <uv.h>
#include "assay.h"
#include "../sandbox/sandbox.h"
#include "base/jparse.h"

typedef struct param_assignment {
    char *plugin;
    char *key;
    char *value;
} param_assignment;

struct assay_options {
    unsigned workers;
    char **plugin_paths;
    size_t plugin_path_count;
    char **lib_dirs;
    size_t lib_dir_count;
    param_assignment *params;
    size_t param_count;
    unsigned timeout_ms;
    unsigned memory_mb;
    char *group_by;
    bool is_ordered;
    bool record_timing;
    bool is_mapper;             /* assay_options_set_mappers */
    assay_log_cb log;
    void *log_ctx;
    assay_responder_cb responder;
    void *responder_ctx;
    char *llm_url, *llm_model, *api_key;
    /* assay_options_add_llm_endpoint: the i-th named endpoint, asked as endpoint i + 1 */
    char *endpoint_names[ASSAY_MAX_LLM_ENDPOINTS], *endpoint_urls[ASSAY_MAX_LLM_ENDPOINTS];
    char *endpoint_keys[ASSAY_MAX_LLM_ENDPOINTS];
    size_t endpoint_count;
    double price_in, price_out; /* per million LLM tokens; 0: no cost */
    unsigned max_inflight, http_timeout_ms, max_attempts, backoff_base_ms;
    double rps;
    long tpm, max_tokens_total;
    char *cache_path;
    double sample_rate;         /* 1: every trace */
    uint64_t sample_seed;
    unsigned shard_index, shard_count; /* 0/1: every trace */
};

#define JOB_MAX_HELPERS 3

/* One trace in flight; also the public assay_result once it is done. */
struct assay_result {
    struct assay_result *next;  /* queue link (worker inbox, host result queue) */
    uint64_t seq;               /* submission order */
    unsigned worker;
    char *text;                 /* the JSON line, owned; freed once evaluated */
    size_t len;
    char *source;
    uint64_t line;
    void *submit_ctx;
    const struct host_generation *gen; /* the plugins it was scored with (host.c) */
    char *trace_id;             /* owned, NULL on input errors */
    char *group;                /* owned, may be NULL */
    bool is_sampled_out;        /* left out by assay_options_set_sample: no records */
    bool is_other_shard;        /* another shard's (assay_options_set_shard): no records */
    record_list out;
    /* while plugins run or wait on I/O (worker.c) */
    cJSON *trace;               /* parsed text, owned; read by every worker that helps */
    jparse_tree *trace_tree;    /* the arena trace lives in; NULL: cJSON parsed it */
    size_t first_waiting;       /* plugins after it write to parts, merged in order at the end */
    record_list *parts;      /* owned, one per plugin: NULL until a plugin waits, unless shared */
    /* A trace submitted while other workers are idle is shared with them (host.c picks
     * them): each worker claims the next plugin not yet started, so the trace takes as
     * long as its slowest plugins, not their sum. */
    struct worker *helpers[JOB_MAX_HELPERS];
    unsigned helper_index[JOB_MAX_HELPERS];
    unsigned helper_count;
    bool is_shared;             /* helpers were asked: every plugin writes to parts */
    unsigned *order;            /* owned, when shared: the plugins in the order they are
                                 * claimed, slowest first, so that the last to start is short */
    atomic_uint next_plugin;    /* the next plugin a worker may claim */
    atomic_uint unfinished;     /* plugins not finished + workers still claiming */
    struct assay_result *help_next[JOB_MAX_HELPERS]; /* links in each helper's list */
};
typedef struct assay_result job;

/* A deep copy, or NULL when out of memory. */
assay_options *options_clone(const assay_options *o);

void job_free(job *j);
/* Frees what a delivered job holds except its record list's memory, and zeroes the rest:
 * ready to carry the next trace (host.c keeps spare jobs). */
void job_reset(job *j);
/* Whether shard index of count holds a trace: by its id, or for a line that is not a trace
 * (an input error, trace_id NULL) by its line number, so that each error is reported once. */
bool job_in_shard(const char *trace_id, uint64_t line, unsigned index, unsigned count);
/* Writes the input-error record of docs/format.md into j, prefixed "source:line: ". */
void job_input_error(job *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define JOB_NO_WORKER ((unsigned)-1)

/* ----------------------------------------------------------------------- workers */

typedef struct worker worker;
typedef struct http_client http_client;

typedef struct worker_config {
    unsigned index;
    const sandbox_config *plugins; /* one config per plugin, borrowed for the worker's life */
    size_t plugin_count;
    const char *group_by;          /* borrowed */
    double sample_rate;            /* 1: every trace */
    uint64_t sample_seed;
    unsigned shard_index, shard_count; /* 0/1: every trace */
    http_client *http;             /* borrowed; NULL: plugins get no network */
    assay_responder_cb responder;  /* may answer requests before http does */
    void *responder_ctx;
    /* called on the worker thread with finished jobs, a list linked by next: one hand-off
     * (one lock, one wake-up) per batch */
    void (*on_done)(void *ctx, job *list);
    void *on_done_ctx;
    atomic_ullong *shared;         /* counts the traces this worker shared with helpers */
    /* each plugin's running mean time in ns on shared traces, learned by all the workers
     * of a generation (updated and read relaxed: it only orders the plugins they claim) */
    atomic_ullong *plugin_cost;
} worker_config;

/* Starts the worker's thread, which first loads the worker's sandboxes; the caller waits
 * for that with worker_wait_loaded before submitting work. On failure returns NULL with a
 * message in err. */
worker *worker_new(const worker_config *cfg, char *err, size_t errlen);
/* Waits until the worker has loaded its sandboxes. Returns 0, or -1 with the first
 * plugin's error in err. */
int worker_wait_loaded(worker *w, char *err, size_t errlen);
/* Hands a job to the worker; thread-safe. */
void worker_submit(worker *w, job *j);
/* Asks the worker to run plugins of j not yet claimed by another; thread-safe. */
void worker_help(worker *w, job *j);
/* Finishes queued jobs, stops and joins the thread, frees everything. */
void worker_free(worker *w);


#endif
