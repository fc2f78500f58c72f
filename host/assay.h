/* assay.h - the public API of libassay, the Lua-scriptable evaluation host.
 *
 * libassay scores traces (one JSON object each, docs/format.md) with evaluator plugins written in
 * Lua (docs/plugins.md), sandboxed, on worker threads, and hands back result records (docs/format.md).
 *
 * Two modes, chosen by the loop given to assay_host_new:
 *  - loop mode (a uv_loop_t of the caller's): the host lives on that loop. Every assay_host_*
 *    call must come from the thread running it; result and close callbacks run there, from
 *    inside uv_run. The loop must be run until the close callback has fired.
 *  - thread mode (loop NULL), for callers without libuv: the host runs its own loop on a
 *    thread of its own. assay_host_submit, _submit_input_error, _pending, _reload,
 *    _plugin_count, _plugin_info, _io_stats, _shared and _close are safe from any thread; result
 *    callbacks run on the host's thread, one at a time, in order. assay_host_close blocks
 *    until every result has been delivered and must not be called from a callback.
 * In both modes a callback may call assay_host_submit, assay_host_reload and (loop mode)
 * assay_host_close. assay_options_* and assay_result_* are safe on any thread for
 * objects that thread owns.
 *
 * Ownership: a pointer returned by an accessor is borrowed: a result's until its callback
 * returns, plugin info until the next successful reload or the close. Everything the caller
 * passes in is copied: options may be freed right after assay_host_new.
 *
 * Errors: functions return ASSAY_OK (0) or a negative ASSAY_E* code; assay_strerror names
 * it, and functions that can fail for a reason worth a sentence fill an assay_error.
 * The library never prints and never exits.
 *
 * Structs the library fills (assay_record, assay_plugin_info, assay_io_stats) are passed
 * with their size: `assay_result_record(r, i, &rec, sizeof rec)`. Fields are only ever
 * added at their end, so a program built against an older assay.h keeps working with a
 * newer libassay (it gets the fields it knows), and one built against a newer assay.h finds
 * the fields an older library does not know zeroed.
 */
#ifndef ASSAY_H
#define ASSAY_H

#include <stddef.h>
#include <stdint.h>

/* libuv's loop, declared and not included: a caller of the thread mode needs no libuv
 * headers. A uv_loop_t * is a struct uv_loop_s *. */
struct uv_loop_s;

#ifdef __cplusplus
extern "C" {
#endif

#define ASSAY_VERSION_MAJOR 0
#define ASSAY_VERSION_MINOR 1
#define ASSAY_VERSION_PATCH 0
#define ASSAY_VERSION_STRING "0.1.0"

/* The version of the library actually linked, e.g. "0.1.0". */
const char *assay_version(void);

/* Process-wide, before hosts are made; optional. Lets the evaluations' time limit use the
 * signal signo instead of Lua's count hook, which makes Lua look at a counter before every
 * instruction (about 5% of the shipped evaluators' time, more in a plugin's tight loop).
 * Each worker thread then gets a POSIX timer that sends signo to that thread every 10 ms
 * while it evaluates; a runaway evaluation is stopped within 10 ms of its limit instead of
 * a few µs. libassay installs a handler for signo (SA_RESTART), so pick one the program
 * does not use, e.g. SIGRTMIN + 1. The `assay` command enables it. Returns ASSAY_OK, or
 * ASSAY_EINVAL when signo is out of range, another signal was enabled before, or the
 * handler could not be installed. */
int assay_set_time_signal(int signo);

/* Why the sandbox does not provide a global (field NULL) or a field of one of its library
 * globals ("os", "getenv"): a sentence, or NULL when plugins have it. For static checks of
 * plugin source, such as `assay check`; the sandbox's own environment is built from the
 * same lists. */
const char *assay_sandbox_withheld(const char *global, const char *field);

enum {
    ASSAY_OK = 0,
    ASSAY_EINVAL = -1,   /* a bad argument: NULL, out of range, malformed text */
    ASSAY_ENOMEM = -2,
    ASSAY_ECONFIG = -3,  /* a plugin failed to load, a param does not fit, … */
    ASSAY_ECLOSED = -4,  /* the host is closing */
    ASSAY_EIO = -5,      /* a file could not be read */
};

/* A static English description of a status code. */
const char *assay_strerror(int status);

/* Why a call failed, with a message naming the file, line, plugin or field at fault. */
typedef struct assay_error {
    int status;
    char message[1024];
} assay_error;

/* The error kinds of a record (docs/format.md). */
typedef enum assay_error_kind {
    ASSAY_KIND_NONE = 0,
    ASSAY_KIND_RUNTIME,  /* the plugin raised a Lua error, or returned something invalid */
    ASSAY_KIND_TIMEOUT,  /* the evaluation passed its time limit */
    ASSAY_KIND_MEMORY,   /* the plugin's Lua state passed its memory limit */
    ASSAY_KIND_HTTP,
    ASSAY_KIND_INPUT,    /* the trace itself is not usable (bad JSON, no id) */
    ASSAY_KIND_CONFIG,
} assay_error_kind;

/* "runtime", "timeout", …; "none" for ASSAY_KIND_NONE. */
const char *assay_error_kind_name(assay_error_kind kind);

/* ------------------------------------------------------------------------- options */

typedef struct assay_options assay_options;

/* The defaults, in one place. The setters below that take a count take 0 for "the
 * default" (the time and memory limits take 0 for "none"). */
#define ASSAY_DEFAULT_TIMEOUT_MS 2000         /* per evaluation */
#define ASSAY_DEFAULT_MEMORY_MB 64            /* per Lua state */
#define ASSAY_DEFAULT_MAX_INFLIGHT 64         /* concurrent HTTP requests */
#define ASSAY_DEFAULT_HTTP_TIMEOUT_MS 60000   /* per attempt */
#define ASSAY_DEFAULT_HTTP_ATTEMPTS 5         /* per request, the first included */
#define ASSAY_MAX_LLM_ENDPOINTS 8             /* named ones, beside the default */
#define ASSAY_DEFAULT_RETRY_BASE_MS 250       /* the first retry delay, doubling */

/* Defaults: one worker per core, 2000 ms and 64 MiB per evaluation, ordered delivery,
 * timing recorded. NULL when out of memory. */
assay_options *assay_options_new(void);
void assay_options_free(assay_options *opts);

/* Worker threads; 0 means the number of cores. */
int assay_options_set_workers(assay_options *opts, unsigned workers);
/* A plugin file, or a directory whose *.lua files are plugins (in name order). Repeatable;
 * plugins run in the order added. */
int assay_options_add_plugin_path(assay_options *opts, const char *path);
/* An extra directory `require` may load helpers from (each plugin's own lib/ is always
 * searched first). */
int assay_options_add_lib_dir(assay_options *opts, const char *dir);
/* "NAME.KEY=VALUE": overrides a plugin param, typed like its default. EINVAL if the text
 * has not that shape; a NAME or KEY that does not exist fails at assay_host_new. */
int assay_options_set_param(assay_options *opts, const char *assignment);
/* 0 means no limit. */
int assay_options_set_timeout_ms(assay_options *opts, unsigned timeout_ms);
int assay_options_set_memory_mb(assay_options *opts, unsigned memory_mb);
/* A metadata field whose value each result reports through assay_result_group. A leading
 * "metadata." is accepted and ignored. NULL clears it. */
int assay_options_set_group_by(assay_options *opts, const char *field);
/* Nonzero (default): results are delivered in submission order. Zero: as they complete. */
int assay_options_set_ordered(assay_options *opts, int ordered);
/* Scores only a reproducible sample of the traces: a trace is picked when
 * assay_sample_pick(its id, seed, rate) says so, which depends on nothing else (not the
 * order, the thread count or the other traces). The others come back with no records and
 * assay_result_is_sampled_out set. rate in (0, 1]; 1 (default) scores every trace. */
int assay_options_set_sample(assay_options *opts, double rate, uint64_t seed);
/* 1 when the trace is in the sample: h = FNV-1a 64 of the text "SEED:ID" (SEED in
 * decimal), mixed by MurmurHash3's 64-bit finaliser (fmix64); its top 53 bits read as a
 * fraction in [0, 1) are below rate. */
int assay_sample_pick(const char *trace_id, uint64_t seed, double rate);
/* Scores only shard index of count (0 <= index < count <= ASSAY_MAX_SHARDS): the traces
 * whose id assay_shard_of puts there, and the lines that are not traces (input errors)
 * whose line number modulo count is index. Shards are disjoint, together they are the
 * whole input, and they compose with the sample (each shard scores its part of it). The
 * others come back with no records and assay_result_is_other_shard set. Default 0 of 1. */
#define ASSAY_MAX_SHARDS 65536
int assay_options_set_shard(assay_options *opts, unsigned index, unsigned count);
/* The shard of a trace id among count: h = FNV-1a 64 of the text "shard:ID", mixed by
 * fmix64 as for assay_sample_pick; floor(count x its top 53 bits read as a fraction). */
unsigned assay_shard_of(const char *trace_id, unsigned count);
/* Nonzero (default): records carry "ms". Zero writes "ms":null, making output
 * byte-for-byte reproducible. */
int assay_options_set_record_timing(assay_options *opts, int record_timing);
/* Nonzero: the plugins are importers' mappers (docs/importers.md), not evaluators. Each has
 * map(doc, params) instead of evaluate; a submitted "trace" is a document an importer made
 * of a log's envelope, and its one record's details is the assay trace map returned (an
 * error record when map fails). Zero (default): evaluators. */
int assay_options_set_mappers(assay_options *opts, int is_mapper);

/* ---- network: assay.http and assay.llm (docs/llm.md) ----
 * An OpenAI-compatible endpoint for assay.llm: base_url such as "http://127.0.0.1:8000/v1"
 * (NULL: no LLM), the default model (may be NULL) and the API key, sent as a bearer token
 * to base_url only and never shown to plugins, written to results or logged (may be NULL). */
int assay_options_set_llm(assay_options *opts, const char *base_url, const char *model, const char *api_key);
/* Another endpoint, by name (1 to 32 of A-Z a-z 0-9 _ -), for a panel of judges across
 * providers: a request whose model is "MODEL@NAME" (or that says endpoint = "NAME") is sent
 * to base_url with api_key (may be NULL), as MODEL. Needs the default endpoint as well
 * (assay_options_set_llm); up to ASSAY_MAX_LLM_ENDPOINTS, names distinct. */
int assay_options_add_llm_endpoint(assay_options *opts, const char *name, const char *base_url, const char *api_key);
/* What the endpoint charges, per million tokens read (prompt) and written (completion),
 * in any currency: with a price, details.usage of each record that made LLM calls gains a
 * "cost". Both 0 (default): no cost is written. */
int assay_options_set_llm_price(assay_options *opts, double per_million_in, double per_million_out);
/* Concurrent requests (0: the default, 64; 429s lower it adaptively, successes raise it back),
 * requests per second (0 = no cap), LLM tokens per minute (0 = no cap) and LLM tokens for
 * the whole host (0 = no cap; calls past it fail with an http error). */
int assay_options_set_http_limits(assay_options *opts, unsigned max_inflight, double rps, long tokens_per_minute,
                                  long max_tokens_total);
/* Per attempt when a request names no timeout (0: the default, 60000 ms), attempts per
 * request (0: the default, 5) and the first retry delay (250 ms by default, doubling, with
 * jitter; 0 here means no delay). */
int assay_options_set_http_retry(assay_options *opts, unsigned timeout_ms, unsigned max_attempts,
                                 unsigned backoff_base_ms);
/* The SQLite file that caches LLM answers (and requests made with cache=true); NULL
 * (default) for none. */
int assay_options_set_cache(assay_options *opts, const char *path);

/* print() from plugins. Called on worker threads, possibly concurrently. */
typedef void (*assay_log_cb)(void *ctx, const char *plugin, const char *message);
int assay_options_set_log(assay_options *opts, assay_log_cb log, void *ctx);

/* ---- answering plugins' requests yourself ----
 * A responder sees every request an evaluation makes (assay.http, assay.llm) before the
 * network does, and may answer it: to run evaluators against scripted answers (`assay test`
 * cases with "replies"), or through a gateway of the embedding program's own. It is called
 * on worker threads, possibly several at once, and must not block for long: the worker
 * waits. Return 1 after answering with assay_request_reply or assay_request_fail, 0 to let
 * the request go to the network as usual. With a responder, plugins may call assay.llm with
 * no LLM endpoint configured (what the responder declines then fails), and a request that
 * names no model, with no default model set, asks for "responder". Answers from it are not
 * counted in assay_host_io_stats nor cached. */
typedef struct assay_request assay_request;
typedef enum { ASSAY_REQUEST_HTTP, ASSAY_REQUEST_CHAT, ASSAY_REQUEST_EMBED } assay_request_kind;
typedef int (*assay_responder_cb)(void *ctx, assay_request *request);
int assay_options_set_responder(assay_options *opts, assay_responder_cb responder, void *ctx);
assay_request_kind assay_request_get_kind(const assay_request *request);
/* "GET", "POST", ... */
const char *assay_request_method(const assay_request *request);
/* HTTP: the URL; CHAT and EMBED: the path under the LLM base URL ("/chat/completions",
 * "/embeddings"). */
const char *assay_request_url(const assay_request *request);
/* The body (CHAT and EMBED: the OpenAI-style request JSON, with "model" and "messages" or
 * "input"), NUL-terminated; *len (may be NULL) gets its length. */
const char *assay_request_body(const assay_request *request, size_t *len);
/* The submit_ctx of the trace whose evaluation asks, as given to assay_host_submit. */
void *assay_request_submit_ctx(const assay_request *request);
/* Answers with status and body (copied). CHAT and EMBED answers are OpenAI-style response
 * JSON ({"choices":[{"message":{"content":...}}]}, {"data":[{"embedding":[...]}]}), read
 * as if the endpoint had sent them; a body over the plugin's memory limit fails the
 * request. ASSAY_ENOMEM when the copy fails (the request then fails). */
int assay_request_reply(assay_request *request, long status, const char *body, size_t len);
/* Fails the request for good with message: the plugin sees an http error, as after the
 * network's last retry. */
int assay_request_fail(assay_request *request, const char *message);

/* ---------------------------------------------------------------------- the host */

typedef struct assay_host assay_host;
typedef struct assay_result assay_result;

/* Called once per submitted trace, on the loop thread. */
typedef void (*assay_result_cb)(assay_host *host, const assay_result *result, void *submit_ctx);
/* Called once when assay_host_close has finished, on the loop thread; the host is freed
 * after it returns. */
typedef void (*assay_close_cb)(assay_host *host, void *user_data);

/* Loads the plugins and starts the workers. On failure returns a negative code, fills err
 * (may be NULL) and leaves *out NULL. The loop is borrowed and must outlive the host; NULL
 * selects thread mode (see the top of this file). */
int assay_host_new(assay_host **out, struct uv_loop_s *loop, const assay_options *opts, assay_result_cb on_result,
                   void *user_data, assay_error *err);

void *assay_host_user_data(const assay_host *host);

typedef struct assay_plugin_info {
    const char *name;
    const char *path;
    const char *scope;        /* "trace" or a step type */
    const char *description;  /* "" when the plugin has none */
    const char *params_json;  /* effective params as a JSON object */
} assay_plugin_info;

size_t assay_host_plugin_count(const assay_host *host);
/* The worker threads the host started: assay_options_set_workers's number, or with 0 (the
 * default) one per core. */
unsigned assay_host_worker_count(const assay_host *host);

/* What the network cost so far; safe on the loop thread at any time. */
typedef struct assay_io_stats {
    uint64_t requests;      /* answered, cache hits included */
    uint64_t sent;          /* attempts that went to the network */
    uint64_t cache_hits, coalesced, retries, failures;
    uint64_t tokens_in, tokens_out;
    double p50_ms, p95_ms;  /* latency of the requests the network answered */
    unsigned inflight_cap;  /* the adaptive concurrency cap now */
    unsigned peak_inflight;
} assay_io_stats;
/* Fills stats (pass sizeof *stats, see "Structs the library fills" above); zeros without
 * an HTTP client. */
int assay_host_io_stats(const assay_host *host, assay_io_stats *stats, size_t stats_size);
/* Fills info for plugin i (in run order; pass sizeof *info); EINVAL if i is out of range. */
int assay_host_plugin_info(const assay_host *host, size_t i, assay_plugin_info *info, size_t info_size);

/* Reads the plugin files and directories of the options again (new files in a directory
 * included), loads them and swaps them in: traces submitted from now on use the new
 * plugins, traces already submitted finish with the ones they started with and nothing in
 * flight is dropped. On failure (a plugin that no longer loads, …) the current plugins stay,
 * err says why. Blocks the calling thread while the plugins load (a few ms each per worker).
 * ECLOSED once closing. */
int assay_host_reload(assay_host *host, assay_error *err);

/* Runs the Lua file at path in the sandbox (opts' memory and time limits and lib dirs, no
 * I/O) and returns the table it returns as JSON text in *json, which the caller frees with
 * free(). For settings written in Lua, such as `assay run`'s suite file (docs/ci.md). */
int assay_eval_settings(const assay_options *opts, const char *path, char **json, assay_error *err);

/* Queues one trace (its JSON text, copied). source and line are only for messages and
 * input-error records (source may be NULL; it is copied). submit_ctx comes back with the
 * result. Returns ASSAY_ECLOSED after assay_host_close. */
int assay_host_submit(assay_host *host, const char *json, size_t len, const char *source, uint64_t line,
                      void *submit_ctx);

/* Queues an input-error record in the place of a trace the caller could not even frame
 * (a line over its length limit, a truncated request body): it is delivered in order like
 * any other result. message is copied. */
int assay_host_submit_input_error(assay_host *host, const char *source, uint64_t line, const char *message,
                                  void *submit_ctx);

/* Traces submitted whose result has not been delivered yet. Callers bound their memory by
 * not submitting while this is above a window they choose. */
size_t assay_host_pending(const assay_host *host);

/* Traces submitted so far whose plugins ran on several workers at once. A trace submitted
 * while other workers are idle is shared with them: each takes the next plugin not yet
 * started, so the result comes back in the time of the slowest plugins, not of all of
 * them. Records are the same either way; a busy host (every worker has a trace) never
 * shares. */
uint64_t assay_host_shared(const assay_host *host);

/* Stops accepting traces, delivers the results of all submitted ones, stops the workers,
 * then calls on_closed (may be NULL) and frees the host. Loop mode: returns at once, the
 * rest happens as the loop runs; a second call before on_closed has fired returns
 * ASSAY_ECLOSED and changes nothing, a call after it is a use after free. Thread mode:
 * returns once the host is freed; EINVAL when called from a result callback. */
int assay_host_close(assay_host *host, assay_close_cb on_closed);

/* ------------------------------------------------------------------------- results */

/* The records of one trace: one per trace-scoped plugin, one per matching step for
 * step-scoped ones, or a single input-error record. */
typedef struct assay_record {
    const char *evaluator;    /* plugin name; NULL on an input-error record */
    size_t evaluator_index;   /* index for assay_host_plugin_info; SIZE_MAX on input errors */
    long step;                /* 0-based step index, -1 for trace scope */
    int has_score;
    double score;             /* in [0, 1] when has_score */
    int pass;                 /* -1 not applicable, 0 false, 1 true */
    const char *label;        /* NULL when none */
    assay_error_kind error;
    const char *error_message;/* NULL when error is ASSAY_KIND_NONE */
    double ms;                /* time spent in evaluate; NaN when timing is off (--no-timing) */
    /* What the evaluation's I/O cost (its details.usage): calls made, LLM tokens billed
     * (cache hits cost none) and their cost at assay_options_set_llm_price's prices (NaN
     * without a price). All 0 for an evaluation without calls. */
    long io_calls, tokens_in, tokens_out;
    double cost;
} assay_record;

/* The trace's "id"; NULL for an input error. */
const char *assay_result_trace_id(const assay_result *result);
const char *assay_result_source(const assay_result *result);
uint64_t assay_result_line(const assay_result *result);
/* The group-by metadata value as text; NULL when unset or absent in this trace. */
const char *assay_result_group(const assay_result *result);
size_t assay_result_record_count(const assay_result *result);
/* Nonzero when the sample left this trace out (assay_options_set_sample): no records. */
int assay_result_is_sampled_out(const assay_result *result);
/* Nonzero when the trace belongs to another shard (assay_options_set_shard): no records. */
int assay_result_is_other_shard(const assay_result *result);
/* Fills record with record i (pass sizeof *record); EINVAL when i is out of range. The
 * strings live as long as the result. */
int assay_result_record(const assay_result *result, size_t i, assay_record *record, size_t record_size);
/* All records as JSON lines (docs/format.md), each ending in '\n'. */
const char *assay_result_jsonl(const assay_result *result, size_t *len);
/* Record i's own JSON line, without its '\n', in the result's memory; NULL when i is out
 * of range. */
const char *assay_result_record_jsonl(const assay_result *result, size_t i, size_t *len);
/* Record i's "details" as JSON text (an object), in the result's memory; NULL when the
 * record has none (null) or i is out of range. */
const char *assay_result_record_details(const assay_result *result, size_t i, size_t *len);

#ifdef __cplusplus
}
#endif

#endif
