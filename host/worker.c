/* worker.c - a worker thread: its own libuv loop, its own sandboxes (one Lua state per
 * plugin), and an inbox of jobs.
 *
 * Each worker runs a loop of its own so that evaluations that wait on I/O can later be
 * driven from it (curl on this loop) while other traces run. Here it parses each trace,
 * runs every plugin on it and hands the job back through on_done. Not here: ordering and
 * delivery (host.c).
 */
#include "host_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct worker {
    worker_config cfg;
    sandbox **sandboxes;
    uv_thread_t thread;
    uv_loop_t loop;
    uv_async_t wakeup;
    uv_mutex_t lock;
    job *inbox_head, *inbox_tail; /* guarded by lock */
    bool is_stopping;              /* guarded by lock */
    bool is_thread_started;
};

void job_free(job *j) {
    if (!j) return;
    free(j->text);
    free(j->source);
    free(j->trace_id);
    free(j->group);
    sandbox_output_free(&j->out);
    free(j);
}

/* ------------------------------------------------------------------- evaluating a job */

void job_input_error(job *j, const char *fmt, ...) {
    char what[400], message[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    /* "file:line: what", the form editors jump to */
    snprintf(message, sizeof message, "%s:%llu: %s", j->source ? j->source : "line", (unsigned long long)j->line, what);
    buf *b = &j->out.jsonl;
    buf_puts(b, "{\"trace_id\":null,\"evaluator\":null,\"line\":");
    buf_printf(b, "%llu", (unsigned long long)j->line);
    if (j->source) {
        buf_puts(b, ",\"file\":");
        buf_json_cstring(b, j->source);
    }
    buf_puts(b, ",\"error\":{\"kind\":\"input\",\"message\":");
    buf_json_cstring(b, message);
    buf_puts(b, "}}\n");
    sandbox_record *r = sandbox_output_add(&j->out);
    if (!r) return;
    r->evaluator = SIZE_MAX;
    r->error = SANDBOX_ERR_INPUT;
    r->error_message = strdup(message);
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

void worker_evaluate_job(sandbox *const *sandboxes, size_t count, const char *group_by, job *j) {
    const char *end = NULL;
    cJSON *trace = convert_parse_json(j->text, j->len, &end);
    if (!trace) {
        size_t at = (size_t)(end - j->text) + 1;
        job_input_error(j, "not valid JSON (error at byte %zu)", at);
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
    if (group_by) j->group = group_value(trace, group_by);
    for (size_t i = 0; i < count; i++) {
        size_t first = j->out.count;
        sandbox_evaluate(sandboxes[i], trace, j->trace_id, &j->out);
        for (size_t r = first; r < j->out.count; r++) j->out.records[r].evaluator = i;
    }
done:
    cJSON_Delete(trace);
    free(j->text); /* the line is no longer needed: keep memory to what is in flight */
    j->text = NULL;
}

/* ------------------------------------------------------------------------ the thread */

static void on_wakeup(uv_async_t *handle) {
    worker *w = handle->data;
    for (;;) {
        uv_mutex_lock(&w->lock);
        job *j = w->inbox_head;
        if (j) {
            w->inbox_head = j->next;
            if (!w->inbox_head) w->inbox_tail = NULL;
        }
        bool stopping = w->is_stopping;
        uv_mutex_unlock(&w->lock);
        if (!j) {
            if (stopping) uv_close((uv_handle_t *)&w->wakeup, NULL);
            return;
        }
        j->next = NULL;
        worker_evaluate_job(w->sandboxes, w->cfg.plugin_count, w->cfg.group_by, j);
        w->cfg.on_done(w->cfg.on_done_ctx, j);
    }
}

static void worker_main(void *arg) {
    worker *w = arg;
    uv_run(&w->loop, UV_RUN_DEFAULT);
}

worker *worker_new(const worker_config *cfg, char *err, size_t errlen) {
    worker *w = calloc(1, sizeof *w);
    if (!w) goto oom;
    w->cfg = *cfg;
    w->sandboxes = calloc(cfg->plugin_count ? cfg->plugin_count : 1, sizeof *w->sandboxes);
    if (!w->sandboxes) goto oom;
    for (size_t i = 0; i < cfg->plugin_count; i++) {
        w->sandboxes[i] = sandbox_new(&cfg->plugins[i], err, errlen);
        if (!w->sandboxes[i]) goto fail;
    }
    if (uv_loop_init(&w->loop) != 0) {
        snprintf(err, errlen, "cannot create a worker event loop");
        goto fail_sandboxes;
    }
    uv_async_init(&w->loop, &w->wakeup, on_wakeup);
    w->wakeup.data = w;
    uv_mutex_init(&w->lock);
    if (uv_thread_create(&w->thread, worker_main, w) != 0) {
        snprintf(err, errlen, "cannot start a worker thread");
        uv_close((uv_handle_t *)&w->wakeup, NULL);
        uv_run(&w->loop, UV_RUN_DEFAULT);
        uv_loop_close(&w->loop);
        uv_mutex_destroy(&w->lock);
        goto fail_sandboxes;
    }
    w->is_thread_started = true;
    return w;
oom:
    snprintf(err, errlen, "out of memory");
fail:
fail_sandboxes:
    if (w) {
        for (size_t i = 0; w->sandboxes && i < cfg->plugin_count; i++) sandbox_free(w->sandboxes[i]);
        free(w->sandboxes);
        free(w);
    }
    return NULL;
}

void worker_submit(worker *w, job *j) {
    j->next = NULL;
    uv_mutex_lock(&w->lock);
    if (w->inbox_tail) w->inbox_tail->next = j;
    else w->inbox_head = j;
    w->inbox_tail = j;
    uv_mutex_unlock(&w->lock);
    uv_async_send(&w->wakeup);
}

void worker_free(worker *w) {
    if (!w) return;
    uv_mutex_lock(&w->lock);
    w->is_stopping = true;
    uv_mutex_unlock(&w->lock);
    uv_async_send(&w->wakeup);
    uv_thread_join(&w->thread);
    uv_loop_close(&w->loop);
    uv_mutex_destroy(&w->lock);
    for (size_t i = 0; i < w->cfg.plugin_count; i++) sandbox_free(w->sandboxes[i]);
    free(w->sandboxes);
    free(w);
}
