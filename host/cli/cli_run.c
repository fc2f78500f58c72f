/* cli_run.c - `assay run`: streams JSONL files into the host and writes the results in
 * order, keeping memory bounded.
 *
 * Backpressure: the reader pauses while too many traces are in flight or too many result
 * bytes wait to be written, and resumes when both drain to half. Results are written once
 * per loop turn (after the turn that delivered them, or sooner past RUN_WRITE_BATCH bytes):
 * one write per trace cost 19,600 system calls on the 200 MB bench corpus. To a pipe or a
 * terminal writes go through the loop's thread pool; while one is in flight results
 * accumulate. Nothing computed is dropped unless the output itself fails.
 *
 * Crash safety: with -o FILE, a progress journal (cli_journal.c) records how far the
 * output is complete, after syncing it, at most every RUN_CHECKPOINT_MS; --resume
 * continues from there. With the run store (cli_store.c) a checkpoint also waits until
 * the store has committed the same position, so that a resumed run leaves every record
 * in both exactly once.
 */
#include "cli.h"
#include "../base/buf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define RUN_TRACES_PER_WORKER 128
#define RUN_MAX_PENDING_OUTPUT (16u << 20)
#define RUN_WRITE_BATCH (64u << 10)
#define RUN_MAX_LINE (64u << 20)
#define RUN_CHECKPOINT_MS 250

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
    uv_check_t flush;          /* active: pending is written at the end of this loop turn */
    /* a regular file or /dev/null is written on the loop's thread, as the reader reads
     * (reader.c says why); a pipe or a terminal, which may wait, through the thread pool */
    bool is_out_sync;
    uint64_t out_bytes;           /* bytes of the output file written */

    journal *jr;                  /* NULL for standard output */
    journal_position skip;        /* resuming: lines up to here are in the output already */
    journal_position pending_pos; /* the last line whose records are in pending */
    journal_position writing_pos; /* … in writing */
    journal_position written_pos; /* … wholly written, with out_bytes at that moment */
    uint64_t last_checkpoint_ms;

    store_writer *store;          /* NULL with --no-db */
    journal_position wanted;      /* a checkpoint waiting for the store to commit */
    bool has_wanted;
    struct body *bodies_head, *bodies_tail; /* lines in flight, for the store */
    exporter *exporter;           /* --junit, --csv */
    gate *gates;                  /* checked at the end, then reported by the JUnit file too */
    gate_results gate_results;
    uint64_t sampled_out;
    uint64_t other_shards;        /* traces (and bad lines) other shards score */
    uv_timer_t tick;              /* commits and checkpoints while results trickle in */

    int exit_status;           /* set when the run must stop early */
    int finished_status;       /* --resume of a run that completed: the status it had */
    bool is_fresh;             /* --resume found nothing started: this is the first attempt */
    bool has_record_errors;
    int gates_failed;   /* how many --gate failed */
    bool is_interrupted;
    uv_signal_t sigint, sigterm;
    uv_timer_t progress;
    bool has_progress;
    uint64_t bytes_read, bytes_total; /* for the progress line; total 0: unknown (stdin) */
    uint64_t start_ms;
} run;

/* A line in flight, kept for the store until its result arrives (results come in input
 * order, so the oldest body is the next result's). */
typedef struct body {
    struct body *next;
    uint64_t file, line;
    size_t len;
    char text[];
} body;

static void start_next_file(run *r);
static void update_flow(run *r);

/* ---------------------------------------------------------------------- writing */

static void stop_reading(run *r) {
    if (r->rd) reader_stop(r->rd);
}

static void write_some(run *r);

/* Syncs the output and records how far it is complete. Throttled unless forced: each one
 * costs an fdatasync. A journal that cannot be written stops checkpointing (its last
 * checkpoint stays true) but not the run. */
static void journal_failed(run *r) {
    fprintf(stderr, "assay: %s.progress: %s; this run can no longer be resumed past this point\n", r->out_name,
            strerror(errno));
    journal_free(r->jr, false);
    r->jr = NULL;
}

static void checkpoint(run *r, bool is_forced) {
    uint64_t now = uv_now(r->loop);
    if (!is_forced && now - r->last_checkpoint_ms < RUN_CHECKPOINT_MS) return;
    r->last_checkpoint_ms = now;
    store_writer_flush(r->store);
    if (!r->jr) return;
    if (fdatasync(r->out_fd) != 0) {
        journal_failed(r);
        return;
    }
    if (!store_writer_has_committed(r->store, &r->written_pos)) { /* on_store_committed appends it */
        r->wanted = r->written_pos;
        r->has_wanted = true;
        return;
    }
    r->has_wanted = false;
    if (journal_append(r->jr, &r->written_pos) != 0) journal_failed(r);
}

static void on_store_committed(void *ctx, const journal_position *pos) {
    run *r = ctx;
    (void)pos;
    update_flow(r); /* the reader may have paused for the rows the store was holding */
    if (!r->jr || !r->has_wanted || !store_writer_has_committed(r->store, &r->wanted)) return;
    r->has_wanted = false;
    if (journal_append(r->jr, &r->wanted) != 0) journal_failed(r); /* its bytes were synced when it was wanted */
}

static void on_tick(uv_timer_t *t) { checkpoint(t->data, false); }

static void write_done(run *r, ssize_t n) {
    r->is_writing = false;
    if (n < 0) {
        fprintf(stderr, "assay: cannot write results to %s: %s\n", r->out_name, uv_strerror((int)n));
        r->exit_status = CLI_EXIT_IO;
        buf_reset(&r->pending);
        stop_reading(r);
        return;
    }
    r->write_offset += (size_t)n;
    r->out_bytes += (uint64_t)n;
    if (r->write_offset >= r->writing.len) {
        r->written_pos = r->writing_pos;
        r->written_pos.bytes = r->out_bytes;
        checkpoint(r, false);
    }
    write_some(r);
    update_flow(r);
}

static void on_write(uv_fs_t *req) {
    run *r = req->data;
    ssize_t n = req->result;
    uv_fs_req_cleanup(req);
    write_done(r, n);
}

/* The end of the loop turn that delivered results: the whole turn's go out in one write. */
static void on_flush(uv_check_t *c) {
    uv_check_stop(c);
    write_some(c->data);
}

static void write_some(run *r) {
    if (r->is_writing || r->exit_status == CLI_EXIT_IO) return;
    if (r->write_offset >= r->writing.len) {
        if (r->pending.len == 0) return;
        buf t = r->writing; /* swap: the filled buffer goes out, the empty one fills */
        r->writing = r->pending;
        r->pending = t;
        r->writing_pos = r->pending_pos;
        buf_reset(&r->pending);
        r->write_offset = 0;
    }
    if (r->is_out_sync) { /* write_done calls back here for the rest: as deep as writes fall short */
        ssize_t n;
        do n = write(r->out_fd, r->writing.data + r->write_offset, r->writing.len - r->write_offset);
        while (n < 0 && errno == EINTR);
        write_done(r, n < 0 ? -errno : n == 0 ? UV_EIO : n); /* 0: no progress, and no end to the calls */
        return;
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
    size_t unwritten = r->pending.len + (r->writing.len - r->write_offset) + store_writer_pending_bytes(r->store);
    if (!r->is_paused && (pending >= r->window || unwritten >= RUN_MAX_PENDING_OUTPUT)) {
        r->is_paused = true;
        reader_pause(r->rd);
    } else if (r->is_paused && pending <= r->window / 2 && unwritten <= RUN_MAX_PENDING_OUTPUT / 2) {
        r->is_paused = false;
        reader_resume(r->rd);
    }
}

/* submit_ctx carries the input file's index, for the journal's positions */
/* The body of the line this result is for; earlier ones (lines that gave no result, which
 * cannot happen, or were skipped) are dropped. Caller frees. */
static body *take_body(run *r, uint64_t file, uint64_t line) {
    while (r->bodies_head) {
        body *b = r->bodies_head;
        if (b->file > file || (b->file == file && b->line > line)) return NULL;
        r->bodies_head = b->next;
        if (!r->bodies_head) r->bodies_tail = NULL;
        if (b->file == file && b->line == line) return b;
        free(b);
    }
    return NULL;
}

static void on_result(assay_host *host, const assay_result *result, void *ctx) {
    run *r = assay_host_user_data(host);
    uint64_t file = (uintptr_t)ctx, line = assay_result_line(result);
    r->pending_pos = (journal_position){file, line, 0};
    body *b = r->store ? take_body(r, file, line) : NULL;
    if (assay_result_is_sampled_out(result) || assay_result_is_other_shard(result)) {
        free(b);
        if (assay_result_is_other_shard(result)) r->other_shards++;
        else r->sampled_out++;
        update_flow(r);
        return;
    }
    store_writer_add_result(r->store, file, result, b ? b->text : NULL, b ? b->len : 0);
    free(b);
    if (r->exporter) export_add(r->exporter, result);
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
        if (r->pending.len >= RUN_WRITE_BATCH) write_some(r);
        else uv_check_start(&r->flush, on_flush); /* no-op when already armed */
    }
    update_flow(r);
}

/* ---------------------------------------------------------------------- reading */

static void on_line(void *ctx, const char *line, size_t len, uint64_t line_no) {
    run *r = ctx;
    uint64_t file = r->file_index - 1;
    if (file < r->skip.file || (file == r->skip.file && line_no <= r->skip.line)) return; /* resumed */
    void *submit_ctx = (void *)(uintptr_t)file;
    int rc;
    if (!line) {
        char message[160];
        snprintf(message, sizeof message, "line of %zu bytes is longer than the %u MiB limit; skipped", len,
                 RUN_MAX_LINE >> 20);
        rc = assay_host_submit_input_error(r->host, r->source, line_no, message, submit_ctx);
    } else {
        rc = assay_host_submit(r->host, line, len, r->source, line_no, submit_ctx);
        body *b = rc == ASSAY_OK && r->store ? malloc(sizeof *b + len) : NULL;
        if (b) {
            *b = (body){NULL, file, line_no, len};
            memcpy(b->text, line, len);
            if (r->bodies_tail) r->bodies_tail->next = b;
            else r->bodies_head = b;
            r->bodies_tail = b;
        }
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

/* Checks --gate on the finished run: on the store when there is one (with --resume it holds
 * every attempt's records), else on the summary. Prints each result to stderr. */
static void check_gates(run *r, sqlite3 *db, int64_t run_id) {
    char err[600];
    gate *gates = NULL;
    size_t count = 0;
    gate_results results = {0};
    if (cli_gates(r->o, &gates, &count, r->o->group_by != NULL, err, sizeof err) != 0) {
        fprintf(stderr, "assay: %s\n", err); /* checked before the run began: out of memory */
        r->gates_failed = 1;
        return;
    }
    int rc;
    if (db) {
        char *path = cli_group_path(r->o->group_by);
        rc = compare_check_gates(db, run_id, gates, count, path, &results, err, sizeof err);
        free(path);
    } else {
        size_t n;
        gate_cell *cells = summary_cells(r->sum, &n);
        rc = cells && gate_check(gates, count, cells, n, &results) >= 0 ? 0 : -1;
        snprintf(err, sizeof err, "out of memory");
        free(cells);
    }
    if (rc != 0) {
        fprintf(stderr, "assay: checking the gates: %s\n", err);
        r->gates_failed = 1;
    } else {
        gate_results_print(&results, stderr);
        for (size_t i = 0; i < results.n; i++) r->gates_failed += !results.v[i].ok;
    }
    r->gates = gates; /* kept for the JUnit test cases */
    r->gate_results = results;
}

static void on_host_closed(assay_host *host, void *user_data) {
    run *r = user_data;
    if (r->has_progress) {
        uv_timer_stop(&r->progress);
        fputs("\r\033[K", stderr);
    }
    double seconds = (double)(uv_now(r->loop) - r->start_ms) / 1000.0;
    if (!r->o->is_quiet) summary_print(r->sum, stderr, seconds);
    assay_io_stats io;
    assay_host_io_stats(host, &io, sizeof io);
    char cost[64] = "";
    if (r->o->price_in > 0 || r->o->price_out > 0)
        snprintf(cost, sizeof cost, ", cost %.4f",
                 ((double)io.tokens_in * r->o->price_in + (double)io.tokens_out * r->o->price_out) / 1e6);
    if (io.requests)
        fprintf(stderr,
                "network: %llu requests (%llu from the cache, %llu coalesced), %llu sent, %llu retries, %llu failed; "
                "tokens %llu in / %llu out%s; latency p50 %.0f ms, p95 %.0f ms; in flight peak %u, cap now %u\n",
                (unsigned long long)io.requests, (unsigned long long)io.cache_hits, (unsigned long long)io.coalesced,
                (unsigned long long)io.sent, (unsigned long long)io.retries, (unsigned long long)io.failures,
                (unsigned long long)io.tokens_in, (unsigned long long)io.tokens_out, cost, io.p50_ms, io.p95_ms,
                io.peak_inflight, io.inflight_cap);
    r->has_record_errors = summary_has_errors(r->sum);
    if (r->o->gate_count && !r->store && !r->exit_status && !r->is_interrupted) check_gates(r, NULL, 0);
    if (r->sampled_out)
        fprintf(stderr, "sample: %llu traces scored, %llu left out (rate %g, seed %llu)\n",
                (unsigned long long)summary_traces(r->sum), (unsigned long long)r->sampled_out, r->o->sample_rate,
                (unsigned long long)r->o->sample_seed);
    if (r->o->shard_count > 1)
        fprintf(stderr, "shard %u/%u: %llu traces here, %llu lines left to the other shards\n", r->o->shard_index,
                r->o->shard_count, (unsigned long long)summary_traces(r->sum), (unsigned long long)r->other_shards);
    if (r->store) fprintf(stderr, "run %lld recorded in %s\n", (long long)store_writer_run_id(r->store), r->o->db);
    uv_close((uv_handle_t *)&r->sigint, NULL);
    uv_close((uv_handle_t *)&r->sigterm, NULL);
    uv_close((uv_handle_t *)&r->tick, NULL);
    uv_close((uv_handle_t *)&r->flush, NULL); /* run_finish writes what it leaves */
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

static void on_data(void *ctx, const char *data, size_t len) {
    run *r = ctx;
    r->bytes_read += len;
    if (r->store) store_writer_add_input(r->store, r->file_index - 1, data, len);
}

static void start_next_file(run *r) {
    if (r->file_index < r->skip.file) r->file_index = r->skip.file; /* resumed past them */
    const char *path = r->o->trace_count ? r->o->traces[r->file_index] : "-";
    r->file_index++;
    r->source = strcmp(path, "-") == 0 ? "<stdin>" : path;
    char err[512];
    r->rd = reader_new(r->loop, path, RUN_MAX_LINE, on_line, on_end, r, err, sizeof err);
    if (r->rd) reader_on_data(r->rd, on_data);
    if (r->rd && r->o->is_follow) reader_follow(r->rd);
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
    if (r->o->follow_child > 0) {
        /* run --from --follow: the importer ends the input; everything it sent is scored */
        kill(r->o->follow_child, SIGTERM);
        r->o->follow_child = 0;
        return;
    }
    fprintf(stderr, "\nassay: %s: finishing the traces in flight (again to abort)\n",
            signum == SIGINT ? "interrupted" : "terminated");
    r->is_interrupted = true;
    uv_signal_stop(&r->sigint); /* a second signal gets the default action */
    uv_signal_stop(&r->sigterm);
    stop_reading(r);
}

/* The size of the inputs, when every one is a regular file (else 0: unknown). */
static uint64_t inputs_size(const cli_options *o) {
    uint64_t total = 0;
    for (size_t i = 0; i < o->trace_count; i++) {
        struct stat st;
        if (strcmp(o->traces[i], "-") == 0 || stat(o->traces[i], &st) != 0 || !S_ISREG(st.st_mode)) return 0;
        total += (uint64_t)st.st_size;
    }
    return o->is_follow ? 0 : total;
}

static void on_progress(uv_timer_t *t) {
    run *r = t->data;
    double seconds = (double)(uv_now(r->loop) - r->start_ms) / 1000.0;
    uint64_t n = summary_traces(r->sum), errors = summary_errors(r->sum);
    fprintf(stderr, "\r\033[K");
    if (r->bytes_total && !r->o->is_resume) { /* resumed, the bytes skipped were never read */
        double done = (double)r->bytes_read / (double)r->bytes_total;
        fprintf(stderr, "%.0f%%  ", 100 * (done > 1 ? 1 : done));
        if (done > 0.01 && done < 1) fprintf(stderr, "ETA %.0f s  ", seconds * (1 - done) / done);
    }
    fprintf(stderr, "%llu traces  %.0f/s  %llu errors  %zu in flight", (unsigned long long)n,
            seconds > 0 ? (double)n / seconds : 0.0, (unsigned long long)errors,
            r->host ? assay_host_pending(r->host) : (size_t)0);
}

/* ------------------------------------------------------------------------ entry */

/* What a resumed run must share with the one it continues: the inputs, the shard, and
 * each evaluator's name, source and effective params. */
static uint64_t run_signature(const run *r) {
    uint64_t h = journal_hash("assay-run", 9, 0);
    if (r->o->shard_count > 1) {
        char shard[32];
        int n = snprintf(shard, sizeof shard, "shard %u/%u", r->o->shard_index, r->o->shard_count);
        h = journal_hash(shard, (size_t)n + 1, h);
    }
    for (size_t i = 0; i < r->o->trace_count; i++) h = journal_hash(r->o->traces[i], strlen(r->o->traces[i]) + 1, h);
    for (size_t i = 0; i < assay_host_plugin_count(r->host); i++) {
        assay_plugin_info info;
        assay_host_plugin_info(r->host, i, &info, sizeof info);
        h = journal_hash(info.name, strlen(info.name) + 1, h);
        h = journal_hash(info.params_json, strlen(info.params_json) + 1, h);
        FILE *f = fopen(info.path, "rb");
        char chunk[8192];
        size_t n;
        while (f && (n = fread(chunk, 1, sizeof chunk, f)) > 0) h = journal_hash(chunk, n, h);
        if (f) fclose(f);
    }
    return h;
}

/* /dev/null, /dev/full, /dev/zero: the character devices of the kernel's memory driver
 * (major 1 on Linux), whose writes never wait. */
static bool is_memory_device(const struct stat *st) {
    struct stat null;
    return S_ISCHR(st->st_mode) && stat("/dev/null", &null) == 0 && major(st->st_rdev) == major(null.st_rdev);
}

/* Opens -o FILE: from scratch with a new journal, or, resuming, truncated to the last
 * checkpoint of the journal it left. */
static int open_output(run *r) {
    char err[512];
    uint64_t signature = run_signature(r);
    if (r->o->is_resume) {
        int finished_status = 0;
        int found = journal_resume(r->out_name, signature, &r->jr, &r->skip, &finished_status, err, sizeof err);
        if (found < 0) {
            fprintf(stderr, "assay: --resume: %s\n", err);
            return -1;
        }
        if (found == JOURNAL_FINISHED) {
            fprintf(stderr, "assay: %s: this run finished already (exit status %d); nothing to do\n", r->out_name,
                    finished_status);
            r->finished_status = finished_status;
            return 1;
        }
        r->is_fresh = found == JOURNAL_FRESH;
        r->out_bytes = r->skip.bytes;
        r->written_pos = r->pending_pos = r->writing_pos = r->skip;
        if (r->skip.line || r->skip.file)
            fprintf(stderr, "assay: resuming %s after line %llu of %s (%llu bytes of results kept)\n", r->out_name,
                    (unsigned long long)r->skip.line,
                    r->skip.file < r->o->trace_count ? r->o->traces[r->skip.file] : "the last input",
                    (unsigned long long)r->skip.bytes);
    }
    r->out_fd = open(r->out_name, O_WRONLY | O_CREAT | O_CLOEXEC | (r->o->is_resume ? O_APPEND : O_TRUNC), 0644);
    if (r->out_fd < 0) {
        fprintf(stderr, "assay: %s: cannot open for writing: %s\n", r->out_name, strerror(errno));
        journal_free(r->jr, false);
        r->jr = NULL;
        return -1;
    }
    struct stat st;
    bool is_known = fstat(r->out_fd, &st) == 0;
    r->is_out_sync = is_known && (S_ISREG(st.st_mode) || is_memory_device(&st));
    if (is_known && !S_ISREG(st.st_mode)) { /* /dev/null, a FIFO: nothing to resume */
        if (r->o->is_resume) {
            fprintf(stderr, "assay: --resume: %s is not a regular file\n", r->out_name);
            journal_free(r->jr, false);
            r->jr = NULL;
            return -1;
        }
        return 0;
    }
    if (!r->jr && !(r->jr = journal_create(r->out_name, signature, err, sizeof err)))
        fprintf(stderr, "assay: %s; the run goes on but cannot be resumed\n", err); /* e.g. a read-only dir */
    return 0;
}

/* Records the run in the store; resuming, once open_output has found where to go on from. */
static int open_store(run *r) {
    cli_options *o = r->o;
    const char **names = calloc(o->trace_count + 1, sizeof *names);
    for (size_t i = 0; names && i < o->trace_count; i++)
        names[i] = strcmp(o->traces[i], "-") == 0 ? "<stdin>" : o->traces[i];
    if (names && !o->trace_count) names[0] = "<stdin>";
    store_run_desc desc = {
        .label = o->label, .command = o->command, .output = o->output, .group_by = o->group_by,
        .inputs = names, .input_count = o->trace_count ? o->trace_count : 1, .host = r->host,
        .sample_rate = o->sample_rate, .sample_seed = o->sample_seed,
        .shard_index = o->shard_index, .shard_count = o->shard_count, .is_follow = o->is_follow,
        .llm_model = o->llm_model, .signature = run_signature(r), .resumed_from = o->is_resume && !r->is_fresh ? &r->skip : NULL,
        .on_committed = on_store_committed, .ctx = r,
    };
    char message[600] = "out of memory";
    if (names) r->store = store_writer_new(r->loop, o->db, &desc, message, sizeof message);
    free(names);
    if (!r->store) fprintf(stderr, "assay: run store: %s\n", message);
    return r->store ? 0 : -1;
}

static void log_print(void *ctx, const char *plugin, const char *message) {
    (void)ctx;
    fprintf(stderr, "[%s] %s\n", plugin, message);
}

/* Plugins that call assay.llm cannot score anything without an endpoint: one message at
 * start-up, naming them, instead of an error on every record. */
static bool refuse_without_llm(assay_host *host) {
    buf names;
    buf_init(&names);
    for (size_t i = 0; i < assay_host_plugin_count(host); i++) {
        assay_plugin_info info;
        assay_host_plugin_info(host, i, &info, sizeof info);
        if (!cli_plugin_calls_llm(info.path)) continue;
        buf_printf(&names, "%s%s", names.len ? ", " : "", info.name);
    }
    bool refuse = names.len > 0;
    if (refuse)
        fprintf(stderr, "assay: %s call%s assay.llm, but no LLM endpoint is configured: pass --llm-url URL and "
                        "--llm-model NAME (or set ASSAY_LLM_URL and ASSAY_LLM_MODEL)\n",
                buf_cstr(&names), strchr(buf_cstr(&names), ',') ? "" : "s");
    buf_free(&names);
    return refuse;
}

/* The combinations of inputs and options a run refuses before it starts; 0 or an exit code. */
static int check_inputs(const cli_options *o) {
    if (o->is_resume && (!o->output || strcmp(o->output, "-") == 0)) {
        fprintf(stderr, "assay: --resume needs -o FILE: the results of the interrupted run are continued there\n");
        return CLI_EXIT_USAGE;
    }
    bool reads_stdin = o->trace_count == 0;
    for (size_t i = 0; i < o->trace_count; i++) reads_stdin |= strcmp(o->traces[i], "-") == 0;
    if (o->is_follow && (o->trace_count != 1 || reads_stdin)) {
        fprintf(stderr, "assay: --follow reads one growing file: name exactly one (not standard input)\n");
        return CLI_EXIT_USAGE;
    }
    if (o->is_follow && o->shard_count > 1) {
        fprintf(stderr, "assay: --follow cannot be combined with --shard: a followed log has no end for the shards "
                        "to be merged at\n");
        return CLI_EXIT_USAGE;
    }
    if (o->is_follow && o->is_resume) {
        fprintf(stderr, "assay: --follow cannot be combined with --resume: a followed log may have rotated since\n");
        return CLI_EXIT_USAGE;
    }
    if (o->is_resume && reads_stdin) {
        fprintf(stderr, "assay: --resume cannot continue standard input: name the input files\n");
        return CLI_EXIT_USAGE;
    }
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
    return 0;
}

/* Starts reading, the signals, the checkpoint tick and (on a terminal) the progress line,
 * then runs the loop until every result is written. */
static void run_loop(run *r) {
    const cli_options *o = r->o;
    r->sum = summary_new(r->host, o->group_by != NULL);
    if (!r->sum) {
        fprintf(stderr, "assay: out of memory\n");
        r->exit_status = CLI_EXIT_IO;
    }
    /* window: enough traces queued per worker to keep it busy through the handoffs */
    r->window = (size_t)RUN_TRACES_PER_WORKER * (o->workers ? o->workers : uv_available_parallelism());
    /* and enough traces to keep the network's in-flight cap full while they wait */
    if (r->window < 2 * (size_t)o->max_inflight) r->window = 2 * (size_t)o->max_inflight;
    uv_signal_init(r->loop, &r->sigint);
    uv_signal_init(r->loop, &r->sigterm);
    uv_timer_init(r->loop, &r->tick);
    uv_check_init(r->loop, &r->flush);
    uv_unref((uv_handle_t *)&r->flush); /* an armed flush alone does not keep the loop running */
    r->sigint.data = r->sigterm.data = r->tick.data = r->flush.data = r;
    uv_timer_start(&r->tick, on_tick, RUN_CHECKPOINT_MS, RUN_CHECKPOINT_MS);
    r->start_ms = uv_now(r->loop);
    if (r->exit_status) {
        r->is_reading_done = true;
        assay_host_close(r->host, on_host_closed);
    } else {
        uv_signal_start(&r->sigint, on_signal, SIGINT);
        uv_signal_start(&r->sigterm, on_signal, SIGTERM);
        r->bytes_total = inputs_size(r->o);
        if (!r->o->trace_count && isatty(0) && !r->o->is_quiet)
            fprintf(stderr, "assay: reading traces from the terminal (one JSON object per line; Ctrl-D ends). "
                            "Name trace files, or see assay help run.\n");
        if (isatty(2) && !r->o->is_quiet) {
            uv_timer_init(r->loop, &r->progress);
            r->progress.data = r;
            uv_timer_start(&r->progress, on_progress, 500, 500);
            r->has_progress = true;
        }
        start_next_file(r);
    }
    uv_run(r->loop, UV_RUN_DEFAULT);
}

/* Writes what is still pending, closes the store, the exports, the journal and the output,
 * and frees the run; the exit status is left in r->exit_status. */
static void run_finish(run *r) {
    const cli_options *o = r->o;
    /* results delivered after the last write finished are still pending: write them now */
    while (r->exit_status != CLI_EXIT_IO && (r->pending.len || r->is_writing)) {
        write_some(r);
        uv_run(r->loop, UV_RUN_DEFAULT);
    }
    if (r->exit_status != CLI_EXIT_IO) checkpoint(r, true);
    while (!store_writer_is_idle(r->store)) { /* the store catches up; its commit appends the last checkpoint */
        store_writer_flush(r->store);
        uv_run(r->loop, UV_RUN_DEFAULT);
    }
    if (r->is_interrupted && o->is_follow) r->is_interrupted = false; /* a signal is how following ends */
    bool is_complete = r->exit_status == 0 && !r->is_interrupted;
    if (r->store && store_writer_finish(r->store, is_complete ? "done" : r->is_interrupted ? "interrupted" : "failed") != 0) {
        r->exit_status = CLI_EXIT_IO;
        is_complete = false;
    }
    bool has_store = r->store != NULL;
    int64_t run_id = has_store ? store_writer_run_id(r->store) : 0;
    store_writer_free(r->store);
    r->store = NULL;
    if (is_complete && r->o->gate_count && has_store) {
        sqlite3 *db = store_open_reading(o->db);
        if (db) check_gates(r, db, run_id);
        else r->gates_failed = 1;
        sqlite3_close(db);
    }
    if (r->exporter && export_close(r->exporter, &r->gate_results) != 0 && !r->exit_status) r->exit_status = CLI_EXIT_IO;
    gate_results_free(&r->gate_results);
    free(r->gates);
    while (r->bodies_head) {
        body *b = r->bodies_head;
        r->bodies_head = b->next;
        free(b);
    }
    if (is_complete && o->is_resume) { /* kept, marked finished: rerunning the command does nothing */
        journal_position end = r->written_pos;
        end.bytes = r->out_bytes;
        journal_finish(r->jr, &end, r->gates_failed ? CLI_EXIT_FAILED : r->has_record_errors ? CLI_EXIT_RECORD_ERRORS : CLI_EXIT_OK);
    } else {
        journal_free(r->jr, is_complete);
    }
    if (r->out_fd > 1 && close(r->out_fd) != 0 && r->exit_status != CLI_EXIT_IO) {
        fprintf(stderr, "assay: %s: %s\n", r->out_name, strerror(errno));
        r->exit_status = CLI_EXIT_IO;
    }
    reader_free(r->finished_reader);
    uv_run(r->loop, UV_RUN_DEFAULT); /* a following reader closes its timer */
    uv_loop_close(r->loop);
    summary_free(r->sum);
    buf_free(&r->pending);
    buf_free(&r->writing);
}

int cli_run(cli_options *o) {
    int status = check_inputs(o);
    if (status) return status;
    gate *gates = NULL;
    size_t gate_count = 0;
    char message[600];
    if (cli_gates(o, &gates, &gate_count, o->group_by != NULL, message, sizeof message) != 0) {
        fprintf(stderr, "assay: %s\n", message);
        return CLI_EXIT_USAGE;
    }
    free(gates);
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
    /* opened only once the plugins load and the store opens, so that neither error leaves
     * an earlier output file touched (resuming, the store needs the output's position) */
    bool has_output = o->output && strcmp(o->output, "-") != 0;
    if (has_output) r.out_name = o->output;
    int opened = 0;
    if ((!o->has_llm && refuse_without_llm(r.host)) || (o->db && !o->is_resume && open_store(&r) != 0) ||
        (has_output && (opened = open_output(&r)) != 0) || (o->db && o->is_resume && open_store(&r) != 0)) {
        store_writer_abandon(r.store);
        journal_free(r.jr, false); /* resuming: still there for the next try */
        if (r.out_fd > 1) close(r.out_fd);
        assay_host_close(r.host, NULL);
        uv_run(r.loop, UV_RUN_DEFAULT);
        uv_loop_close(r.loop);
        buf_free(&r.pending);
        buf_free(&r.writing);
        return opened == 1 ? r.finished_status : CLI_EXIT_USAGE;
    }
    if (!r.exit_status && (o->junit || o->csv)) {
        if (!(r.exporter = export_open(o, r.host, message, sizeof message))) {
            fprintf(stderr, "assay: %s\n", message);
            r.exit_status = CLI_EXIT_USAGE;
        }
    }
    run_loop(&r);
    run_finish(&r);
    if (r.exit_status) return r.exit_status;
    if (r.is_interrupted) return CLI_EXIT_INTERRUPTED;
    if (r.gates_failed) {
        fprintf(stderr, "assay: %d gate%s failed\n", r.gates_failed, r.gates_failed == 1 ? "" : "s");
        return CLI_EXIT_FAILED;
    }
    return r.has_record_errors ? CLI_EXIT_RECORD_ERRORS : CLI_EXIT_OK;
}
