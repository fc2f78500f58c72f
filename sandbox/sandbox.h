/* sandbox.h - one evaluator plugin loaded into its own sandboxed Lua state.
 *
 * The sandbox owns the Lua side of assay: its files are sandbox.c (states and limits),
 * watch.c (the time limit by timer signal),
 * env.c (the allow-listed environment), load.c (loading a plugin), task.c (running
 * evaluate, the I/O bridge), record.c (result records), and the host modules (text.c,
 * convert.c, net.c, ...) with their helpers. It knows nothing of libuv, and of threads only
 * that watch.c gives each thread that evaluates a timer of its own: a sandbox is used by one
 * thread at a time, and the host decides which.
 */
#ifndef ASSAY_SANDBOX_H
#define ASSAY_SANDBOX_H

#include <stdbool.h>
#include <stdatomic.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "../host/base/buf.h"
#include "record.h"

typedef struct sandbox_param_override {
    const char *key;
    const char *value; /* text from the command line, typed against the default */
} sandbox_param_override;

/* The most evaluations the `repeats` param asks of one trace (or step). */
#define SANDBOX_MAX_REPEATS 20

typedef struct sandbox_config {
    const char *path;            /* plugin file, as shown in messages ("plugins/x.lua") */
    const char *host_version;    /* what assay.version says after "assay " */
    size_t index;                /* the plugin's position in the host, copied into records */
    const char *source;          /* its text, read once by the host */
    size_t source_len;
    const char *const *lib_dirs; /* directories `require` may load helpers from */
    size_t lib_dir_count;
    size_t memory_limit;         /* bytes per Lua state; 0 = unlimited */
    unsigned timeout_ms;         /* per evaluation (and for loading); 0 = unlimited */
    bool record_timing;          /* write "ms"; false gives byte-reproducible output */
    bool is_mapper;              /* the plugin maps (its `map` returns a trace, kept as the
                                  * record's details) instead of evaluating */
    bool is_table;               /* the chunk returns a table of settings (a suite file),
                                  * kept as JSON (sandbox_table_json); nothing is evaluated */
    const sandbox_param_override *overrides;
    size_t override_count;
    /* print() from the plugin; called on the sandbox's thread. NULL discards. */
    void (*log)(void *log_ctx, const char *plugin, const char *message);
    void *log_ctx;
    /* I/O: without it assay.http and assay.llm raise a config error when called */
    bool has_io;
    const char *llm_model;       /* default model for assay.llm; NULL = none configured */
    const char *const *llm_endpoints; /* the names of the other endpoints: i-th is endpoint i + 1 */
    size_t llm_endpoint_count;
    bool has_llm;                /* an LLM endpoint is configured */
    double price_in, price_out;  /* per million LLM tokens, for details.usage.cost; 0: none */
} sandbox_config;

/* What `assay list` / `assay check` show; strings owned by the sandbox. */
typedef struct sandbox_info {
    const char *name;
    const char *description;  /* "" if none */
    const char *scope;        /* "trace" or a step type */
    const char *params_json;  /* effective params (defaults + overrides) as a JSON object */
} sandbox_info;

/* Why the sandbox does not provide a global, or field of a library global (field NULL for
 * the global itself): a sentence for a message, or NULL when it is provided. The same
 * lists the environment is built from (env.c), for static checks of plugin source. */
const char *sandbox_withheld(const char *global, const char *field);

typedef struct sandbox sandbox;

/* Process-wide, once: from now on each thread that runs evaluations gets a timer sending it
 * signo (a handler is installed for it), and evaluations run without Lua's count hook
 * (watch.c). Returns 0, or -1 when signo is invalid, another one was enabled, or the
 * handler could not be installed. */
int sandbox_watch_enable(int signo);

/* Creates the state and loads the plugin. The config's strings are borrowed and must
 * outlive the sandbox (it reloads from them after a limit kill). On failure returns NULL and writes a message
 * naming the file and line into err. */
sandbox *sandbox_new(const sandbox_config *cfg, char *err, size_t errlen);
void sandbox_free(sandbox *sb);
const sandbox_info *sandbox_get_info(const sandbox *sb);
/* Whether evaluations waiting on I/O hold more than half the memory the state new
 * evaluations start in has beyond what the loaded plugin keeps, after a full collection:
 * one started there now could be killed for memory the others hold. The host then starts
 * no new trace until answers come back. */
bool sandbox_is_crowded(sandbox *sb);
/* With is_table: the table the chunk returned, as JSON text owned by the sandbox. */
const char *sandbox_table_json(const sandbox *sb);

/* Evaluates one parsed trace: one record for a trace-scoped plugin, one per matching step
 * for a step-scoped one, appended to out. trace_id is the trace's "id". Never fails: every
 * problem becomes an error record, and a state that hit a limit is rebuilt before return. */
typedef struct sandbox_task sandbox_task;
sandbox_task *sandbox_evaluate(sandbox *sb, const cJSON *trace, const char *trace_id, record_list *out,
                               void *owner);

/* ------------------------------------------------------------- I/O of suspended evaluations
 *
 * sandbox_evaluate returns NULL when the evaluation finished. Otherwise the evaluation is
 * suspended in assay.http / assay.llm and the returned task waits for requests: the host
 * takes each with sandbox_task_take_io, performs it (on any thread), fills in the response
 * and hands it back with sandbox_io_done on the sandbox's thread; when that returns true the
 * host calls sandbox_task_resume, which runs the evaluation on until it finishes (true: the
 * task is freed and its records are in out) or waits again (false). The trace and out must
 * stay alive until the task finishes. */

typedef enum { SANDBOX_IO_HTTP, SANDBOX_IO_CHAT, SANDBOX_IO_EMBED } sandbox_io_kind;

/* The bytes the responses of one wait may hold together: the plugin's memory limit, since
 * every body becomes a Lua string in its state. Shared by the requests of a batch, whose
 * bodies arrive on the HTTP client's thread, hence the atomic. */
typedef struct sandbox_io_budget {
    _Atomic size_t used;
    size_t limit;
} sandbox_io_budget;

typedef struct sandbox_io {
    struct sandbox_io *next;     /* free for the host's queues while it owns the request */
    sandbox_task *task;
    sandbox_io_kind kind;
    /* the request, owned. For CHAT/EMBED url is the path under the LLM base URL. */
    char *method;
    char *url;
    char **headers;              /* "Name: value" */
    size_t header_count;
    buf body;
    unsigned timeout_ms;         /* 0 = the host's default */
    bool is_cacheable;
    unsigned repeat;             /* which of the plugin's repeated evaluations asks (0: the first),
                                  * part of the cache key so that each repeat gets its own answer */
    long max_tokens;             /* CHAT: the caller's cap on output tokens, 0 unknown */
    unsigned endpoint;           /* CHAT/EMBED: 0 the default LLM endpoint, i the i-th named one */
    /* the response, filled by the host, which charges the body's bytes to budget and fails
     * the request when it is spent */
    sandbox_io_budget *budget;
    long status;
    buf response_headers;        /* raw header lines of the final response */
    buf response_body;
    char *error;                 /* malloc'd: the request failed for good (kind http) */
    bool is_cache_hit;
    long tokens_in, tokens_out;
    double ms;
} sandbox_io;

void *sandbox_task_owner(const sandbox_task *t);
/* The next request to perform, or NULL. The host owns it until sandbox_io_done. */
sandbox_io *sandbox_task_take_io(sandbox_task *t);
/* Returns the request to its task; true when the task has all its answers. */
bool sandbox_io_done(sandbox_io *io);
bool sandbox_task_resume(sandbox_task *t);

/* Parses exactly one JSON value from text[0..len) (which must be followed by a NUL):
 * trailing non-space bytes and embedded NULs are errors. On failure *error_at points at the
 * offending byte. Thread-safe, unlike cJSON_GetErrorPtr. */
cJSON *convert_parse_json(const char *text, size_t len, const char **error_at);
/* What parsing text with cJSON can cost in memory, at most: a node per value (about 100
 * bytes with malloc's overhead) and a copy of every string. */
size_t convert_parse_cost(const char *text, size_t len);


#endif
