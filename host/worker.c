/* worker.c - a worker thread: its own libuv loop, its own sandboxes (one Lua state per
 * plugin), and an inbox of jobs and of answered I/O requests.
 *
 * The worker parses each trace and starts every plugin on it. A plugin that calls
 * assay.http or assay.llm suspends; its requests go to the HTTP client and the worker runs
 * other traces until the answers come back through the inbox and the evaluation resumes.
 * A job is handed back through on_done when its last plugin finished, records in plugin
 * order. An embedder's responder (assay_options_set_responder) sees each request first and
 * may answer it here, on the worker's thread; the assay_request it sees is the sandbox_io.
 * Not here: ordering across jobs and delivery (host.c), the network (http.c).
 */
#include "host_internal.h"
#include "http.h"
#include "looper.h"
#include "base/jscan.h"
#include "base/queue.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A busy worker hands finished jobs back in batches of up to WORKER_DONE_BATCH, none held
 * longer than WORKER_DONE_HOLD_NS: the caller's loop then wakes once per batch rather than
 * once per trace (at -j 1 the wake-ups and the lock they contend for were a tenth of the
 * run's time, in the kernel). A worker with nothing left to do hands back at once, so the
 * latency of a lone trace is unchanged. */
#define WORKER_DONE_BATCH 32
#define WORKER_DONE_HOLD_NS 2000000u
/* After a piece of work this slow, hand back at once: batching slow traces saves little, and
 * a trace held back would wait for the next slow one. */
#define WORKER_DONE_SLOW_NS 500000u

/* A delivered job kept as a spare (host.c) keeps its record list's memory up to these. */
#define JOB_KEPT_RECORDS 64
#define JOB_KEPT_RECORD_BYTES (64u << 10)

/* What parsing one trace may cost in cJSON nodes and strings: four times the longest line. */
#define WORKER_MAX_PARSE_BYTES (256u << 20)

struct worker {
    worker_config cfg;
    sandbox **sandboxes;
    looper lp;                     /* the thread, its loop, and the lock guarding: */
    queue inbox;                   /*   new jobs */
    queue answers;                 /*   requests the HTTP client answered */
    /* shared traces to claim plugins of; not a queue: a job is in the lists of up to
     * JOB_MAX_HELPERS workers at once, through a link of each (help_next) */
    job *helps;
    bool is_draining;              /*   on_mail is running and will look again: no wake needed */
    size_t tasks_waiting;          /* evaluations of this worker suspended on I/O */
    /* New traces wait while evaluations waiting on I/O crowd a state (sandbox_is_crowded):
     * otherwise a trace started there is killed for memory the others hold. Looked at again
     * only after Lua ran (crowd_stale), since waiting evaluations hold their memory still. */
    bool is_crowded, crowd_stale;
    job *done, **done_tail;        /* finished, not yet handed back (this thread only) */
    size_t done_count;
    uint64_t done_since_ns;        /* when the oldest of them finished */
    /* The plugins slowest first (cfg.plugin_cost). A trace shared with idle workers takes
     * as long as the worker that finishes last: each claims the next plugin not yet
     * started, and when the slowest is claimed last one worker runs it alone while the
     * others wait. */
    unsigned *by_cost;
    /* Loading: each worker loads its sandboxes on its own thread, all workers at once, and
     * posts `loaded` when done; load_error is then set or empty. Why: loaded one after the
     * other on the caller's thread, -j N with P plugins waited N x P loads in a row before
     * the first trace, with the other cores idle. */
    uv_sem_t loaded;
    char load_error[512];
};

static void job_free_parts(job *j, size_t count) {
    free(j->order);
    j->order = NULL;
    if (!j->parts) return;
    for (size_t i = 0; i < count; i++) record_list_free(&j->parts[i]);
    free(j->parts);
    j->parts = NULL;
}

/* The arena parser takes strict JSON, nearly every trace; cJSON reads the rest, and says
 * where a text that is not JSON fails. */
/* Reports the line when it is not valid UTF-8 or holds a NUL byte. */
static bool job_text_invalid(job *j) {
    size_t bad = buf_utf8_invalid_at(j->text, j->len);
    if (bad < j->len)
        job_input_error(j, j->text[bad] ? "not valid UTF-8 (at byte %zu)" : "contains a NUL byte (at byte %zu)", bad + 1);
    return bad < j->len;
}

/* The offset of the first \u0000 escape in a JSON text (a backslash that is not itself
 * escaped, then u0000), or len. cJSON keeps strings NUL-terminated, so one would be cut
 * there without a word: "a\u0000b" and "a\u0000c" would be the same trace id. */
static size_t escaped_nul(const char *text, size_t len) {
    const char *p = text, *end = text + len;
    while ((p = memchr(p, '\\', (size_t)(end - p))) != NULL) {
        if (end - p >= 6 && memcmp(p + 1, "u0000", 5) == 0) return (size_t)(p - text);
        p += 2; /* past the escaped character, so "\\\\u0000" is not one */
        if (p >= end) break;
    }
    return len;
}

/* Reports the line when it holds a \u0000 escape (or, first, when it is not valid UTF-8). */
static bool job_has_escaped_nul(job *j) {
    size_t nul_at = escaped_nul(j->text, j->len);
    if (nul_at == j->len) return false;
    if (!job_text_invalid(j))
        job_input_error(j, "contains \\u0000 (at byte %zu): strings are cut at a NUL, so two ids could become one; "
                           "skipped", nul_at + 1);
    return true;
}

/* The trace's tree; NULL with *refused set when the line was reported: not valid UTF-8
 * (the arena parser checked it; cJSON does not), or, unless nul_checked, holding \u0000
 * (the arena parser gives up on one, so a tree from it needs no look for them). */
static cJSON *job_parse(job *j, bool nul_checked, const char **end, bool *refused) {
    cJSON *trace = jparse(j->text, j->len, &j->trace_tree);
    if (trace) return trace;
    if ((!nul_checked && job_has_escaped_nul(j)) || job_text_invalid(j)) {
        *refused = true;
        return NULL;
    }
    return convert_parse_json(j->text, j->len, end);
}

/* The trace's tree, from whichever parser made it, and the line the arena parser's tree
 * keeps its strings in. */
static void job_free_trace(job *j) {
    if (j->trace_tree) {
        jparse_free(j->trace_tree);
        free(j->text);
        j->text = NULL;
    } else {
        cJSON_Delete(j->trace);
    }
    j->trace = NULL;
    j->trace_tree = NULL;
}

void job_reset(job *j) {
    record_list out = j->out;
    /* a trace of many steps or large details leaves a large list: kept, every spare job
     * would end up holding the largest it ever carried */
    if (out.cap > JOB_KEPT_RECORDS || out.jsonl.cap > JOB_KEPT_RECORD_BYTES) record_list_free(&out);
    else record_list_clear(&out);
    job_free_trace(j);
    free(j->text);
    free(j->source);
    free(j->trace_id);
    free(j->group);
    free(j->order);
    memset(j, 0, sizeof *j);
    j->out = out;
}

void job_free(job *j) {
    if (!j) return;
    job_reset(j);
    record_list_free(&j->out);
    free(j);
}

/* ------------------------------------------------------------------- evaluating a job */

void job_input_error(job *j, const char *fmt, ...) {
    char what[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    record_add_input_error(&j->out, j->source, j->line, what);
}

static const char *json_type_name(const cJSON *item) {
    switch (item->type & 0xFF) {
    case cJSON_Array: return "an array";
    case cJSON_String: return "a string";
    case cJSON_Number: return "a number";
    case cJSON_True:
    case cJSON_False: return "a boolean";
    case cJSON_NULL: return "null";
    default: return "not an object";
    }
}

/* The last member named key: the value a Lua table built from the same object ends up with
 * when keys repeat (convert.c sets them in order). */
static const cJSON *last_member(const cJSON *object, const char *key) {
    const cJSON *found = NULL;
    for (const cJSON *c = object->child; c; c = c->next)
        if (c->string && strcmp(c->string, key) == 0) found = c;
    return found;
}

static char *group_value(const cJSON *trace, const char *group_by) {
    const cJSON *metadata = last_member(trace, "metadata");
    if (!cJSON_IsObject(metadata)) return NULL;
    const cJSON *value = last_member(metadata, group_by);
    if (!value || cJSON_IsNull(value)) return NULL;
    if (cJSON_IsString(value)) return strdup(value->valuestring);
    return cJSON_PrintUnformatted(value);
}

/* Appends the records of the plugins that wrote to parts, in plugin order. */
static void job_merge_parts(job *j, size_t count) {
    for (size_t i = j->is_shared ? 0 : j->first_waiting + 1; j->parts && i < count; i++)
        record_list_move(&j->out, &j->parts[i]);
}

static void job_finish(worker *w, job *j) {
    job_merge_parts(j, w->cfg.plugin_count);
    job_free_parts(j, w->cfg.plugin_count);
    job_free_trace(j);
    j->next = NULL;
    *w->done_tail = j;
    w->done_tail = &j->next;
    if (w->done_count++ == 0) w->done_since_ns = uv_hrtime();
}

/* Hands the finished jobs back: now, or once the batch is full or old. */
static void hand_back(worker *w, bool is_now) {
    if (!w->done_count) return;
    if (!is_now && w->done_count < WORKER_DONE_BATCH && uv_hrtime() - w->done_since_ns < WORKER_DONE_HOLD_NS) return;
    job *list = w->done;
    w->done = NULL;
    w->done_tail = &w->done;
    w->done_count = 0;
    w->cfg.on_done(w->cfg.on_done_ctx, list);
}

static void on_answer(void *ctx, sandbox_io *io);

static void task_send_requests(worker *w, sandbox_task *t) {
    for (sandbox_io *io; (io = sandbox_task_take_io(t));) {
        if (w->cfg.responder && w->cfg.responder(w->cfg.responder_ctx, (assay_request *)io)) {
            if (!io->error && io->status == 0) io->error = strdup("http: the responder answered nothing");
            on_answer(w, io); /* resumed with the other answers, after what runs now */
        } else {
            http_submit(w->cfg.http, io, on_answer, w);
        }
    }
}

/* ------------------------------------------------------------ requests, to a responder */

assay_request_kind assay_request_get_kind(const assay_request *r) {
    const sandbox_io *io = (const sandbox_io *)r;
    return io->kind == SANDBOX_IO_CHAT ? ASSAY_REQUEST_CHAT : io->kind == SANDBOX_IO_EMBED ? ASSAY_REQUEST_EMBED : ASSAY_REQUEST_HTTP;
}

const char *assay_request_method(const assay_request *r) { return ((const sandbox_io *)r)->method; }
const char *assay_request_url(const assay_request *r) { return ((const sandbox_io *)r)->url; }

const char *assay_request_body(const assay_request *r, size_t *len) {
    sandbox_io *io = (sandbox_io *)r; /* the worker's own, while the responder runs */
    if (len) *len = io->body.len;
    return buf_cstr(&io->body);
}

void *assay_request_submit_ctx(const assay_request *r) {
    const job *j = sandbox_task_owner(((const sandbox_io *)r)->task);
    return j->submit_ctx;
}

int assay_request_reply(assay_request *r, long status, const char *body, size_t len) {
    sandbox_io *io = (sandbox_io *)r;
    if (io->budget) atomic_fetch_sub(&io->budget->used, io->response_body.len); /* a second reply replaces the first */
    buf_reset(&io->response_body);
    free(io->error);
    io->error = NULL;
    /* as from the network: the responses of one wait share the plugin's memory limit */
    size_t limit = io->budget ? io->budget->limit : SIZE_MAX;
    if (io->budget && atomic_fetch_add(&io->budget->used, len) + len > limit) {
        atomic_fetch_sub(&io->budget->used, len);
        char message[128];
        snprintf(message, sizeof message, "http: the responses of this call are larger than the plugin's memory limit (%zu MiB)",
                 limit >> 20);
        return assay_request_fail(r, message);
    }
    buf_append(&io->response_body, body, len);
    if (buf_failed(&io->response_body)) {
        if (io->budget) atomic_fetch_sub(&io->budget->used, len);
        buf_free(&io->response_body);
        buf_init(&io->response_body);
        assay_request_fail(r, "http: out of memory");
        return ASSAY_ENOMEM;
    }
    io->status = status;
    return ASSAY_OK;
}

int assay_request_fail(assay_request *r, const char *message) {
    sandbox_io *io = (sandbox_io *)r;
    free(io->error);
    io->error = strdup(message && *message ? message : "http: the responder failed the request");
    return io->error ? ASSAY_OK : ASSAY_ENOMEM;
}

/* How deep the brackets are open at offset `at`, strings skipped: tells a parse error
 * caused by cJSON's nesting limit from a syntax error. */
static size_t depth_at(const char *s, size_t at) {
    size_t depth = 0;
    bool in_string = false;
    for (size_t i = 0; i < at; i++) {
        char c = s[i];
        if (in_string) {
            if (c == '\\') i++;
            else if (c == '"') in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            depth++;
        } else if ((c == ']' || c == '}') && depth) {
            depth--;
        }
    }
    return depth;
}

/* Drops one of j's holds (a finished plugin, a worker done claiming); the last one
 * finishes the job, on whichever worker that happens. */
static void job_release(worker *w, job *j) {
    if (atomic_fetch_sub(&j->unfinished, 1) == 1) job_finish(w, j);
}

/* Moves plugin i's running mean time a sixteenth of the way to ns (its first time: all of
 * the way). Workers may race here; the cost is only an order. */
static void learn_cost(worker *w, size_t i, uint64_t ns) {
    atomic_ullong *cost = &w->cfg.plugin_cost[i];
    int64_t mean = (int64_t)atomic_load_explicit(cost, memory_order_relaxed);
    mean = mean ? mean + ((int64_t)ns - mean) / 16 : (int64_t)ns;
    atomic_store_explicit(cost, (unsigned long long)(mean > 0 ? mean : 1), memory_order_relaxed);
}

/* Runs the plugins of j that no other worker has claimed, one at a time. The caller holds
 * j (unfinished counts it), so j outlives the loop whatever the other workers do. */
static void job_claim(worker *w, job *j) {
    size_t count = w->cfg.plugin_count;
    for (;;) {
        size_t next = atomic_fetch_add(&j->next_plugin, 1);
        if (next >= count) return;
        size_t i = j->order ? j->order[next] : next;
        record_list *out = j->is_shared || i > j->first_waiting ? &j->parts[i] : &j->out;
        /* timed on shared traces only: the order is for them, and in a batch run every
         * worker writing the one table would pass its cache line back and forth */
        uint64_t started = j->is_shared ? uv_hrtime() : 0;
        sandbox_task *t = sandbox_evaluate(w->sandboxes[i], j->trace, j->trace_id, out, j);
        if (j->is_shared) learn_cost(w, i, uv_hrtime() - started);
        if (!t) {
            job_release(w, j);
            continue;
        }
        if (!j->is_shared && j->first_waiting == count) { /* only the job's own worker claims */
            j->first_waiting = i;
            j->parts = calloc(count, sizeof *j->parts);
            if (!j->parts) abort(); /* the task already runs: nowhere to put the records */
        }
        w->tasks_waiting++;
        task_send_requests(w, t);
    }
}

/* Another shard's trace, or one the sample leaves out, needs no tree: when the scan finds its
 * id for sure, j is marked as parsing would have marked it, and the line is dropped. */
static bool job_left_unparsed(worker *w, job *j) {
    if (w->cfg.shard_count <= 1 && w->cfg.sample_rate >= 1) return false;
    const char *id;
    size_t id_len;
    if (jscan_object_id(j->text, j->len, &id, &id_len) != JSCAN_ID) return false;
    char *trace_id = strndup(id, id_len);
    if (!trace_id) return false;
    if (!job_in_shard(trace_id, j->line, w->cfg.shard_index, w->cfg.shard_count)) j->is_other_shard = true;
    else if (!assay_sample_pick(trace_id, w->cfg.sample_seed, w->cfg.sample_rate)) j->is_sampled_out = true;
    if (!j->is_other_shard && !j->is_sampled_out) {
        free(trace_id);
        return false;
    }
    j->trace_id = trace_id;
    free(j->text);
    j->text = NULL;
    return true;
}

/* w->by_cost by cfg.plugin_cost, slowest first: an insertion sort, stable, so that plugins
 * never measured keep their order; the last order is nearly sorted, so it is about one
 * pass. */
static void sort_by_cost(worker *w) {
    atomic_ullong *cost = w->cfg.plugin_cost;
    for (size_t i = 1; i < w->cfg.plugin_count; i++) {
        unsigned p = w->by_cost[i];
        unsigned long long c = atomic_load_explicit(&cost[p], memory_order_relaxed);
        size_t k = i;
        for (; k > 0 && atomic_load_explicit(&cost[w->by_cost[k - 1]], memory_order_relaxed) < c; k--)
            w->by_cost[k] = w->by_cost[k - 1];
        w->by_cost[k] = p;
    }
}

/* Asks j's helpers to claim its plugins too, slowest first; without memory for the records
 * of each plugin, this worker runs them all. */
static void job_share(worker *w, job *j, size_t count) {
    if (!(j->parts = calloc(count, sizeof *j->parts))) return;
    /* everything the helpers read is written here and above, before worker_help's lock */
    sort_by_cost(w);
    if ((j->order = malloc(count * sizeof *j->order))) memcpy(j->order, w->by_cost, count * sizeof *j->order);
    j->is_shared = true;
    atomic_fetch_add_explicit(w->cfg.shared, 1, memory_order_relaxed);
    atomic_fetch_add(&j->unfinished, j->helper_count);
    for (unsigned k = 0; k < j->helper_count; k++) worker_help(j->helpers[k], j);
}

/* Parses the trace and starts its plugins, with the help of the workers host.c picked;
 * finishes the job unless a plugin waits or runs elsewhere. */
static void job_start(worker *w, job *j) {
    size_t count = w->cfg.plugin_count;
    atomic_init(&j->next_plugin, 0);
    atomic_init(&j->unfinished, 1); /* this worker's hold while it claims */
    /* No plugin may see and no output file carry invalid text. The arena parser checks the
     * strings as it reads them (a tree from it means valid UTF-8); every other way out
     * checks the whole line first, so that the errors come in the order they always did. */
    bool sampled = w->cfg.shard_count > 1 || w->cfg.sample_rate < 1;
    if (sampled && job_text_invalid(j)) goto done;
    /* \u0000 is looked for before anything else may report the line; on the common path
     * (no sampling, a line short of the parse bound) the parser's giving up says where to */
    bool nul_checked = sampled || j->len >= WORKER_MAX_PARSE_BYTES / 64;
    if (nul_checked && job_has_escaped_nul(j)) goto done;
    /* a line of many small values costs ~50 times its length as cJSON nodes (30 MB of
     * [0,0,...] made 1.2 GB); only lines this long can pass the bound, so others are not
     * scanned */
    if (j->len >= WORKER_MAX_PARSE_BYTES / 64) {
        size_t cost = convert_parse_cost(j->text, j->len);
        if (cost > WORKER_MAX_PARSE_BYTES) {
            if (job_text_invalid(j)) goto done;
            job_input_error(j, "would take %zu MiB to parse, more than the %u MiB a trace may (too many values); skipped",
                            cost >> 20, WORKER_MAX_PARSE_BYTES >> 20);
            goto done;
        }
    }
    if (job_left_unparsed(w, j)) goto done;
    const char *end = NULL;
    bool refused = false;
    cJSON *trace = job_parse(j, nul_checked, &end, &refused);
    if (refused) goto done;
    size_t error_at = trace ? 0 : (size_t)(end - j->text) + 1;
    size_t depth = trace ? 0 : depth_at(j->text, error_at - 1);
    if (!j->trace_tree) { /* cJSON's tree copied what it needs: keep memory to what is in flight */
        free(j->text);
        j->text = NULL;
    }
    j->trace = trace;
    if (!trace) {
        if (depth >= CJSON_NESTING_LIMIT)
            job_input_error(j, "nested deeper than %d levels (at byte %zu)", CJSON_NESTING_LIMIT, error_at);
        else job_input_error(j, "not valid JSON (error at byte %zu)", error_at);
        goto done;
    }
    if (!cJSON_IsObject(trace)) {
        job_input_error(j, "a trace must be a JSON object, this is %s", json_type_name(trace));
        goto done;
    }
    const cJSON *id = last_member(trace, "id");
    if (!cJSON_IsString(id)) {
        if (id) job_input_error(j, "field \"id\" must be a string, this is %s", json_type_name(id));
        else job_input_error(j, "the trace has no \"id\" field");
        goto done;
    }
    j->trace_id = strdup(id->valuestring);
    if (!job_in_shard(id->valuestring, j->line, w->cfg.shard_index, w->cfg.shard_count)) {
        j->is_other_shard = true;
        goto done;
    }
    if (!assay_sample_pick(id->valuestring, w->cfg.sample_seed, w->cfg.sample_rate)) {
        j->is_sampled_out = true;
        goto done;
    }
    if (w->cfg.group_by) j->group = group_value(trace, w->cfg.group_by);
    j->first_waiting = count;
    atomic_fetch_add(&j->unfinished, (unsigned)count);
    if (j->helper_count && count > 1) job_share(w, j, count);
    job_claim(w, j);
done:
    if (!j->trace_id && !job_in_shard(NULL, j->line, w->cfg.shard_index, w->cfg.shard_count)) {
        record_list_clear(&j->out); /* another shard reports this line */
        j->is_other_shard = true;
    }
    job_release(w, j);
}

/* Which of j's helpers w is: a trace is in the lists of several helpers at once, by a
 * link of each's own. */
static unsigned help_slot(const job *j, const worker *w) {
    unsigned k = 0;
    while (k + 1 < j->helper_count && j->helpers[k] != w) k++;
    return k;
}

/* A shared trace another worker started: claim what is left, then let go of it. */
static void job_help(worker *w, job *j) {
    job_claim(w, j);
    job_release(w, j);
}

static void answer_resume(worker *w, sandbox_io *io) {
    sandbox_task *t = io->task;
    if (!sandbox_io_done(io)) return;
    job *j = sandbox_task_owner(t);
    if (!sandbox_task_resume(t)) {
        task_send_requests(w, t);
        return;
    }
    w->tasks_waiting--;
    job_release(w, j);
}

/* ------------------------------------------------------------------------ the thread */

/* The HTTP client's thread answers here. */
static void on_answer(void *ctx, sandbox_io *io) {
    worker *w = ctx;
    uv_mutex_lock(&w->lp.lock);
    queue_push(&w->answers, io);
    bool is_asleep = !w->is_draining;
    uv_mutex_unlock(&w->lp.lock);
    if (is_asleep) looper_wake(&w->lp); /* a draining worker finds it without a system call */
}

static bool worker_is_crowded(worker *w) {
    if (w->tasks_waiting == 0) return w->is_crowded = false;
    if (!w->crowd_stale) return w->is_crowded;
    w->crowd_stale = false;
    w->is_crowded = false;
    for (size_t i = 0; i < w->cfg.plugin_count && !w->is_crowded; i++)
        w->is_crowded = w->sandboxes[i] && sandbox_is_crowded(w->sandboxes[i]);
    return w->is_crowded;
}

/* Answers first: they finish jobs and free memory before new traces take more. Then the
 * traces shared by other workers, which someone is waiting on, then new traces, unless
 * the evaluations waiting on I/O crowd a state. */
static void on_mail(uv_async_t *handle) {
    worker *w = handle->data;
    /* after each piece of work: hand back what finished if it is time, or if that work was slow */
    for (uint64_t started = uv_hrtime();; hand_back(w, uv_hrtime() - started >= WORKER_DONE_SLOW_NS), started = uv_hrtime()) {
        queue answers = QUEUE_INIT(sandbox_io, next);
        bool is_crowded = worker_is_crowded(w);
        uv_mutex_lock(&w->lp.lock);
        queue_move_all(&answers, &w->answers);
        job *help = queue_is_empty(&answers) ? w->helps : NULL;
        if (help) w->helps = help->help_next[help_slot(help, w)];
        job *j = queue_is_empty(&answers) && !help && !is_crowded ? queue_pop(&w->inbox) : NULL;
        bool stopping = w->lp.is_stopping;
        w->is_draining = j || help || !queue_is_empty(&answers); /* false: the next mail wakes it */
        uv_mutex_unlock(&w->lp.lock);
        if (!j && !help && queue_is_empty(&answers)) {
            hand_back(w, true);
            if (stopping && w->tasks_waiting == 0) looper_close_mailbox(&w->lp);
            return;
        }
        w->crowd_stale = true; /* Lua runs now */
        if (!queue_is_empty(&answers)) {
            for (sandbox_io *io; (io = queue_pop(&answers));) answer_resume(w, io);
            continue;
        }
        if (help) {
            job_help(w, help);
            continue;
        }
        job_start(w, j);
    }
}

/* The worker thread's first act: its sandboxes, loaded where they will run. */
static void load_sandboxes(void *data) {
    worker *w = data;
    for (size_t i = 0; i < w->cfg.plugin_count && !w->load_error[0]; i++)
        if (!(w->sandboxes[i] = sandbox_new(&w->cfg.plugins[i], w->load_error, sizeof w->load_error)) &&
            !w->load_error[0])
            snprintf(w->load_error, sizeof w->load_error, "%s: cannot be loaded", w->cfg.plugins[i].path);
    uv_sem_post(&w->loaded);
}

worker *worker_new(const worker_config *cfg, char *err, size_t errlen) {
    worker *w = calloc(1, sizeof *w);
    if (!w) goto oom;
    w->cfg = *cfg;
    w->inbox = QUEUE_INIT(job, next);
    w->done_tail = &w->done;
    w->answers = QUEUE_INIT(sandbox_io, next);
    w->sandboxes = calloc(cfg->plugin_count ? cfg->plugin_count : 1, sizeof *w->sandboxes);
    w->by_cost = calloc(cfg->plugin_count ? cfg->plugin_count : 1, sizeof *w->by_cost);
    if (!w->sandboxes || !w->by_cost) goto oom;
    for (unsigned i = 0; i < cfg->plugin_count; i++) w->by_cost[i] = i;
    if (uv_sem_init(&w->loaded, 0) != 0) {
        snprintf(err, errlen, "cannot create a worker's semaphore");
        goto fail;
    }
    if (looper_init(&w->lp, on_mail, w) != 0) {
        snprintf(err, errlen, "cannot create a worker event loop");
        uv_sem_destroy(&w->loaded);
        goto fail;
    }
    w->lp.on_start = load_sandboxes;
    if (looper_start(&w->lp) != 0) {
        snprintf(err, errlen, "cannot start a worker thread");
        looper_abandon(&w->lp);
        uv_sem_destroy(&w->loaded);
        goto fail;
    }
    return w;
oom:
    snprintf(err, errlen, "out of memory");
fail:
    if (w) {
        free(w->sandboxes);
        free(w->by_cost);
        free(w);
    }
    return NULL;
}

static bool wait_loaded(worker *w) {
    uv_sem_wait(&w->loaded);
    uv_sem_post(&w->loaded); /* a second wait (worker_free's) returns at once */
    return !w->load_error[0];
}

int worker_wait_loaded(worker *w, char *err, size_t errlen) {
    if (wait_loaded(w)) return 0;
    snprintf(err, errlen, "%s", w->load_error);
    return -1;
}

void worker_submit(worker *w, job *j) {
    uv_mutex_lock(&w->lp.lock);
    queue_push(&w->inbox, j);
    bool is_asleep = !w->is_draining;
    uv_mutex_unlock(&w->lp.lock);
    if (is_asleep) looper_wake(&w->lp);
}

void worker_help(worker *w, job *j) {
    uv_mutex_lock(&w->lp.lock);
    j->help_next[help_slot(j, w)] = w->helps; /* order does not matter: each is claimed from */
    w->helps = j;
    bool is_asleep = !w->is_draining;
    uv_mutex_unlock(&w->lp.lock);
    if (is_asleep) looper_wake(&w->lp);
}

void worker_free(worker *w) {
    if (!w) return;
    wait_loaded(w); /* the thread owns the sandboxes until then */
    looper_stop(&w->lp);
    uv_sem_destroy(&w->loaded);
    for (size_t i = 0; i < w->cfg.plugin_count; i++) sandbox_free(w->sandboxes[i]);
    free(w->sandboxes);
    free(w->by_cost);
    free(w);
}
