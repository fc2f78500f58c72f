/* cli_run.c - `assay run`: streams JSONL files into the host and writes the results in
 * order, keeping memory bounded.
 *
 * Backpressure: the reader pauses while too many traces are in flight or too many result
 * bytes wait to be written, and resumes when both drain to half. Writing goes through the
 * loop's thread pool; while one write is in flight results accumulate, so writes batch
 * themselves under load. Nothing computed is dropped unless the output itself fails.
 */
#include "cli.h"
#include "buf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define RUN_TRACES_PER_WORKER 128
#define RUN_MAX_PENDING_OUTPUT (16u << 20)
#define RUN_MAX_LINE (64u << 20)

typedef struct run {
    uv_loop_t *loop;
    cli_options *o;
    assay_host *host;
    summary *sum;
    reader *rd;
    reader *finished_reader;   /* freed outside its own callbacks */
    size_t file_index;
    const char *source;        /* name in records and messages */
    size_t window;
    bool is_paused;
    bool is_reading_done;

    int out_fd;
    const char *out_name;
    buf pending;               /* results waiting to be written */
    buf writing;               /* the buffer of the write in flight */
    size_t write_offset;
    uv_fs_t write_req;
    bool is_writing;

    int exit_status;           /* set when the run must stop early */
    bool has_record_errors;
    bool is_interrupted;
    uv_signal_t sigint, sigterm;
    uv_timer_t progress;
    bool has_progress;
    uint64_t start_ms;
} run;

static void start_next_file(run *r);
static void update_flow(run *r);

/* ---------------------------------------------------------------------- writing */

static void stop_reading(run *r) {
    if (r->rd) reader_stop(r->rd);
}

static void write_some(run *r);

static void on_write(uv_fs_t *req) {
    run *r = req->data;
    ssize_t n = req->result;
    uv_fs_req_cleanup(req);
    r->is_writing = false;
    if (n < 0) {
        fprintf(stderr, "assay: cannot write results to %s: %s\n", r->out_name, uv_strerror((int)n));
        r->exit_status = CLI_EXIT_IO;
        buf_reset(&r->pending);
        stop_reading(r);
        return;
    }
    r->write_offset += (size_t)n;
    write_some(r);
    update_flow(r);
}

static void write_some(run *r) {
    if (r->is_writing || r->exit_status == CLI_EXIT_IO) return;
    if (r->write_offset >= r->writing.len) {
        if (r->pending.len == 0) return;
        buf t = r->writing; /* swap: the filled buffer goes out, the empty one fills */
        r->writing = r->pending;
        r->pending = t;
        buf_reset(&r->pending);
        r->write_offset = 0;
    }
    uv_buf_t b = uv_buf_init(r->writing.data + r->write_offset, (unsigned)(r->writing.len - r->write_offset));
    r->write_req.data = r;
    int rc = uv_fs_write(r->loop, &r->write_req, r->out_fd, &b, 1, -1, on_write);
    if (rc < 0) {
        fprintf(stderr, "assay: cannot write results to %s: %s\n", r->out_name, uv_strerror(rc));
        r->exit_status = CLI_EXIT_IO;
        stop_reading(r);
        return;
    }
    r->is_writing = true;
}

/* ----------------------------------------------------------------- flow control */

static void update_flow(run *r) {
    if (!r->rd) return;
    size_t pending = assay_host_pending(r->host);
    size_t unwritten = r->pending.len + (r->writing.len - r->write_offset);
    if (!r->is_paused && (pending >= r->window || unwritten >= RUN_MAX_PENDING_OUTPUT)) {
        r->is_paused = true;
        reader_pause(r->rd);
    } else if (r->is_paused && pending <= r->window / 2 && unwritten <= RUN_MAX_PENDING_OUTPUT / 2) {
        r->is_paused = false;
        reader_resume(r->rd);
    }
}

static void on_result(assay_host *host, const assay_result *result, void *ctx) {
    (void)host, (void)ctx;
    run *r = assay_host_user_data(host);
    summary_add(r->sum, result);
    if (r->exit_status != CLI_EXIT_IO) {
        size_t len;
        const char *text = assay_result_jsonl(result, &len);
        buf_append(&r->pending, text, len);
        if (buf_failed(&r->pending)) {
            fprintf(stderr, "assay: out of memory buffering results\n");
            r->exit_status = CLI_EXIT_IO;
            stop_reading(r);
        }
        write_some(r);
    }
    update_flow(r);
}

/* ---------------------------------------------------------------------- reading */

static void on_line(void *ctx, const char *line, size_t len, uint64_t line_no) {
    run *r = ctx;
    int rc;
    if (!line) {
        char message[160];
        snprintf(message, sizeof message, "line of %zu bytes is longer than the %u MiB limit; skipped", len,
                 RUN_MAX_LINE >> 20);
        rc = assay_host_submit_input_error(r->host, r->source, line_no, message, NULL);
    } else {
        rc = assay_host_submit(r->host, line, len, r->source, line_no, NULL);
    }
    if (rc != ASSAY_OK) {
        fprintf(stderr, "assay: %s:%llu: cannot queue the trace: %s\n", r->source, (unsigned long long)line_no,
                assay_strerror(rc));
        r->exit_status = CLI_EXIT_IO;
        stop_reading(r);
        return;
    }
    update_flow(r);
}

static void on_host_closed(assay_host *host, void *user_data) {
    run *r = user_data;
    if (r->has_progress) {
        uv_timer_stop(&r->progress);
        fputs("\r\033[K", stderr);
    }
    double seconds = (double)(uv_now(r->loop) - r->start_ms) / 1000.0;
    summary_print(r->sum, stderr, seconds);
    assay_io_stats io;
    assay_host_io_stats(host, &io);
    if (io.requests)
        fprintf(stderr,
                "network: %llu requests (%llu from the cache, %llu coalesced), %llu sent, %llu retries, %llu failed; "
                "tokens %llu in / %llu out; latency p50 %.0f ms, p95 %.0f ms; in flight peak %u, cap now %u\n",
                (unsigned long long)io.requests, (unsigned long long)io.cache_hits, (unsigned long long)io.coalesced,
                (unsigned long long)io.sent, (unsigned long long)io.retries, (unsigned long long)io.failures,
                (unsigned long long)io.tokens_in, (unsigned long long)io.tokens_out, io.p50_ms, io.p95_ms,
                io.peak_inflight, io.inflight_cap);
    r->has_record_errors = summary_has_errors(r->sum);
    uv_close((uv_handle_t *)&r->sigint, NULL);
    uv_close((uv_handle_t *)&r->sigterm, NULL);
    if (r->has_progress) uv_close((uv_handle_t *)&r->progress, NULL);
    r->host = NULL;
}

static void on_end(void *ctx, int status) {
    run *r = ctx;
    if (status < 0) {
        fprintf(stderr, "assay: %s: read error: %s\n", r->source, uv_strerror(status));
        r->exit_status = CLI_EXIT_IO;
    }
    /* on_end runs inside the reader's own callbacks: it is freed later, not here */
    reader_free(r->finished_reader);
    r->finished_reader = r->rd;
    r->rd = NULL;
    r->is_paused = false;
    if (r->exit_status == 0 && !r->is_interrupted && r->file_index < r->o->trace_count) {
        start_next_file(r);
        return;
    }
    r->is_reading_done = true;
    assay_host_close(r->host, on_host_closed);
}

static void start_next_file(run *r) {
    const char *path = r->o->trace_count ? r->o->traces[r->file_index] : "-";
    r->file_index++;
    r->source = strcmp(path, "-") == 0 ? "<stdin>" : path;
    char err[512];
    r->rd = reader_new(r->loop, path, RUN_MAX_LINE, on_line, on_end, r, err, sizeof err);
    if (!r->rd) {
        fprintf(stderr, "assay: %s\n", err);
        r->exit_status = CLI_EXIT_IO;
        r->is_reading_done = true;
        assay_host_close(r->host, on_host_closed);
        return;
    }
    reader_start(r->rd);
}

/* ----------------------------------------------------------- signals and progress */

static void on_signal(uv_signal_t *handle, int signum) {
    run *r = handle->data;
    fprintf(stderr, "\nassay: %s: finishing the traces in flight (again to abort)\n",
            signum == SIGINT ? "interrupted" : "terminated");
    r->is_interrupted = true;
    uv_signal_stop(&r->sigint); /* a second signal gets the default action */
    uv_signal_stop(&r->sigterm);
    stop_reading(r);
}

static void on_progress(uv_timer_t *t) {
    run *r = t->data;
    double seconds = (double)(uv_now(r->loop) - r->start_ms) / 1000.0;
    uint64_t n = summary_traces(r->sum);
    fprintf(stderr, "\r\033[K%llu traces  %.0f/s  %zu in flight", (unsigned long long)n,
            seconds > 0 ? (double)n / seconds : 0.0, r->host ? assay_host_pending(r->host) : (size_t)0);
}

/* ------------------------------------------------------------------------ entry */

static void log_print(void *ctx, const char *plugin, const char *message) {
    (void)ctx;
    fprintf(stderr, "[%s] %s\n", plugin, message);
}

int cli_run(cli_options *o) {
    for (size_t i = 0; i < o->trace_count; i++) {
        struct stat st;
        if (strcmp(o->traces[i], "-") == 0) continue;
        if (stat(o->traces[i], &st) != 0) {
            fprintf(stderr, "assay: %s: %s\n", o->traces[i], strerror(errno));
            return CLI_EXIT_USAGE;
        }
        if (S_ISDIR(st.st_mode)) {
            fprintf(stderr, "assay: %s: is a directory, not a JSONL file\n", o->traces[i]);
            return CLI_EXIT_USAGE;
        }
    }
    run r;
    memset(&r, 0, sizeof r);
    r.o = o;
    r.loop = uv_default_loop();
    r.out_fd = 1;
    r.out_name = "standard output";
    buf_init(&r.pending);
    buf_init(&r.writing);
    assay_options_set_log(o->host, log_print, NULL);
    assay_error err;
    if (assay_host_new(&r.host, r.loop, o->host, on_result, &r, &err) != ASSAY_OK) {
        fprintf(stderr, "assay: %s\n", err.message);
        return CLI_EXIT_USAGE;
    }
    /* opened only once the plugins load, so that a plugin error leaves an earlier output
     * file untouched */
    if (o->output && strcmp(o->output, "-") != 0) {
        r.out_fd = open(o->output, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        r.out_name = o->output;
        if (r.out_fd < 0) {
            fprintf(stderr, "assay: %s: cannot open for writing: %s\n", o->output, strerror(errno));
            assay_host_close(r.host, NULL);
            uv_run(r.loop, UV_RUN_DEFAULT);
            uv_loop_close(r.loop);
            return CLI_EXIT_USAGE;
        }
    }
    r.sum = summary_new(r.host, o->group_by != NULL);
    if (!r.sum) {
        fprintf(stderr, "assay: out of memory\n");
        r.exit_status = CLI_EXIT_IO;
    }
    /* window: enough traces queued per worker to keep it busy through the handoffs */
    r.window = (size_t)RUN_TRACES_PER_WORKER * (o->workers ? o->workers : uv_available_parallelism());
    /* and enough traces to keep the network's in-flight cap full while they wait */
    if (r.window < 2 * (size_t)o->max_inflight) r.window = 2 * (size_t)o->max_inflight;
    uv_signal_init(r.loop, &r.sigint);
    uv_signal_init(r.loop, &r.sigterm);
    r.sigint.data = r.sigterm.data = &r;
    r.start_ms = uv_now(r.loop);
    if (r.exit_status) {
        r.is_reading_done = true;
        assay_host_close(r.host, on_host_closed);
    } else {
        uv_signal_start(&r.sigint, on_signal, SIGINT);
        uv_signal_start(&r.sigterm, on_signal, SIGTERM);
        if (isatty(2)) {
            uv_timer_init(r.loop, &r.progress);
            r.progress.data = &r;
            uv_timer_start(&r.progress, on_progress, 500, 500);
            r.has_progress = true;
        }
        start_next_file(&r);
    }
    uv_run(r.loop, UV_RUN_DEFAULT);
    /* results delivered after the last write finished are still pending: write them now */
    while (r.exit_status != CLI_EXIT_IO && (r.pending.len || r.is_writing)) {
        write_some(&r);
        uv_run(r.loop, UV_RUN_DEFAULT);
    }
    if (r.out_fd > 1 && close(r.out_fd) != 0 && r.exit_status != CLI_EXIT_IO) {
        fprintf(stderr, "assay: %s: %s\n", r.out_name, strerror(errno));
        r.exit_status = CLI_EXIT_IO;
    }
    reader_free(r.finished_reader);
    uv_loop_close(r.loop);
    summary_free(r.sum);
    buf_free(&r.pending);
    buf_free(&r.writing);
    if (r.exit_status) return r.exit_status;
    if (r.is_interrupted) return CLI_EXIT_INTERRUPTED;
    return r.has_record_errors ? CLI_EXIT_RECORD_ERRORS : CLI_EXIT_OK;
}
