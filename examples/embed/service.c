/* service.c - a libuv TCP service that scores traces with libassay on its own loop.
 *
 * Protocol: a client sends traces, one JSON object per line, and gets back the result
 * records of each (docs/format.md JSON lines) in the order it sent them. Many clients at once;
 * a line longer than --max-line, or one that is not a trace, is answered with an
 * input-error record naming the connection and line. SIGHUP reloads the plugins without
 * dropping traces in flight; SIGINT/SIGTERM stop accepting, answer what was received and
 * exit.
 *
 *   cc service.c $(pkg-config --cflags --libs assay) -o service
 *   ./service -e /usr/local/share/assay/plugins --port 7433
 *   printf '%s\n' '{"id":"t1","steps":[]}' | nc 127.0.0.1 7433
 *
 * Memory stays bounded: reading from every client pauses while more than --window traces
 * are waiting for their results, or while a client is not reading its answers.
 */
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <assay.h>
#include <uv.h>

typedef struct service {
    uv_loop_t *loop;
    uv_tcp_t listener;
    uv_signal_t sighup, sigint, sigterm;
    assay_host *host;
    size_t max_line;
    size_t window;
    struct conn *conns; /* open connections, for pausing and resuming reads */
    unsigned next_conn_id;
    int is_stopping;
} service;

/* A connection lives until the client is gone and every trace it sent has been answered:
 * results carry the connection as their submit_ctx. */
typedef struct conn {
    uv_tcp_t tcp;
    service *svc;
    struct conn *prev, *next;
    char name[32];       /* "conn7": the source named in input-error records */
    char *line;          /* the line being received, owned */
    size_t line_len, line_cap;
    int is_overlong;     /* dropping the rest of a line past max_line */
    unsigned long line_no;
    size_t in_flight;    /* traces submitted, results not yet delivered */
    int is_eof;          /* the client finished sending: close once it has every answer */
    int is_closed;       /* the socket is closed */
    int is_reading;
} conn;

typedef struct write_req {
    uv_write_t req;
    char data[];
} write_req;

static void conn_maybe_free(conn *c) {
    if (!c->is_closed || c->in_flight) return;
    free(c->line);
    free(c);
}

static void on_conn_closed(uv_handle_t *handle) {
    conn *c = handle->data;
    service *s = c->svc;
    if (c->prev) c->prev->next = c->next;
    else s->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    c->is_closed = 1; /* answers still owed are dropped as they arrive */
    conn_maybe_free(c);
}

static void conn_close(conn *c) {
    if (uv_is_closing((uv_handle_t *)&c->tcp)) return;
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

static void on_shutdown(uv_shutdown_t *req, int status) {
    (void)status;
    conn_close(req->handle->data);
    free(req);
}

/* A shutdown goes out after the writes already queued, so the client gets every answer. */
static void conn_shutdown(conn *c) {
    if (uv_is_closing((uv_handle_t *)&c->tcp)) return;
    uv_shutdown_t *req = malloc(sizeof *req);
    if (!req || uv_shutdown(req, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
        free(req);
        conn_close(c);
    }
}

static void conn_finish_if_done(conn *c) {
    if (c->is_eof && c->in_flight == 0 && !c->is_closed) conn_shutdown(c);
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *b) {
    (void)handle;
    b->base = malloc(suggested);
    b->len = b->base ? suggested : 0;
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *b);

/* A client whose answers pile up unread is paused as well as everybody when the host's
 * window is full. */
static int conn_may_read(const conn *c) {
    return !c->svc->is_stopping && assay_host_pending(c->svc->host) < c->svc->window &&
           uv_stream_get_write_queue_size((const uv_stream_t *)&c->tcp) < (4u << 20);
}

static void conn_update_reading(conn *c) {
    if (c->is_eof || uv_is_closing((uv_handle_t *)&c->tcp)) return;
    int want = conn_may_read(c);
    if (want && !c->is_reading) uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (!want && c->is_reading) uv_read_stop((uv_stream_t *)&c->tcp);
    c->is_reading = want;
}

static void submit_line(conn *c) {
    service *s = c->svc;
    c->line_no++;
    int rc;
    if (c->is_overlong) {
        char message[96];
        snprintf(message, sizeof message, "line longer than %zu bytes", s->max_line);
        rc = assay_host_submit_input_error(s->host, c->name, c->line_no, message, c);
    } else {
        size_t n = c->line_len;
        if (n && c->line[n - 1] == '\r') n--;
        if (n == 0) return; /* blank lines are not traces */
        rc = assay_host_submit(s->host, c->line, n, c->name, c->line_no, c);
    }
    if (rc == ASSAY_OK) c->in_flight++;
    else fprintf(stderr, "service: %s line %lu: %s\n", c->name, c->line_no, assay_strerror(rc));
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *b) {
    conn *c = stream->data;
    service *s = c->svc;
    if (nread == UV_EOF) { /* done sending: an unterminated last line still counts */
        free(b->base);
        if (c->line_len || c->is_overlong) submit_line(c);
        c->line_len = 0;
        c->is_eof = 1;
        c->is_reading = 0;
        uv_read_stop(stream);
        conn_finish_if_done(c);
        return;
    }
    if (nread < 0) { /* a reset: the partial line is dropped, answers owed are dropped */
        free(b->base);
        conn_close(c);
        return;
    }
    for (ssize_t i = 0; i < nread;) {
        const char *nl = memchr(b->base + i, '\n', (size_t)(nread - i));
        size_t take = nl ? (size_t)(nl - (b->base + i)) : (size_t)(nread - i);
        if (!c->is_overlong && c->line_len + take > s->max_line) c->is_overlong = 1;
        if (!c->is_overlong) {
            if (c->line_len + take > c->line_cap) {
                size_t cap = c->line_cap ? c->line_cap : 4096;
                while (cap < c->line_len + take) cap *= 2;
                char *grown = realloc(c->line, cap);
                if (!grown) {
                    fprintf(stderr, "service: out of memory, dropping %s\n", c->name);
                    free(b->base);
                    conn_close(c);
                    return;
                }
                c->line = grown;
                c->line_cap = cap;
            }
            memcpy(c->line + c->line_len, b->base + i, take);
            c->line_len += take;
        }
        i += (ssize_t)take;
        if (nl) {
            submit_line(c);
            c->line_len = 0;
            c->is_overlong = 0;
            i++;
        }
    }
    free(b->base);
    conn_update_reading(c);
}

static void on_written(uv_write_t *req, int status) {
    (void)status; /* a client that left gets nothing more; its connection is closing */
    conn *c = req->handle->data;
    free(req);
    conn_update_reading(c); /* its answers drained: it may send again */
}

static void on_result(assay_host *host, const assay_result *result, void *submit_ctx) {
    service *s = assay_host_user_data(host);
    conn *c = submit_ctx;
    c->in_flight--;
    if (!c->is_closed && !uv_is_closing((uv_handle_t *)&c->tcp)) {
        size_t len;
        const char *jsonl = assay_result_jsonl(result, &len); /* borrowed: copy it for the write */
        write_req *w = malloc(sizeof *w + len);
        if (w) {
            memcpy(w->data, jsonl, len);
            uv_buf_t b = uv_buf_init(w->data, (unsigned)len);
            if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_written) != 0) free(w);
        }
    }
    conn_finish_if_done(c);
    conn_maybe_free(c);
    for (conn *o = s->conns; o; o = o->next) conn_update_reading(o);
}

static void on_connection(uv_stream_t *listener, int status) {
    service *s = listener->data;
    if (status < 0) return;
    conn *c = calloc(1, sizeof *c);
    if (!c) return;
    c->svc = s;
    snprintf(c->name, sizeof c->name, "conn%u", ++s->next_conn_id);
    uv_tcp_init(s->loop, &c->tcp);
    c->tcp.data = c;
    c->next = s->conns;
    if (s->conns) s->conns->prev = c;
    s->conns = c;
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) conn_close(c);
    else conn_update_reading(c);
}

static void on_host_closed(assay_host *host, void *user_data) {
    (void)host;
    service *s = user_data;
    s->host = NULL;
    for (conn *c = s->conns; c; c = c->next) conn_shutdown(c); /* every answer is queued */
}

static void stop(service *s) {
    if (s->is_stopping) return;
    s->is_stopping = 1;
    uv_close((uv_handle_t *)&s->listener, NULL);
    uv_close((uv_handle_t *)&s->sighup, NULL);
    uv_close((uv_handle_t *)&s->sigint, NULL);
    uv_close((uv_handle_t *)&s->sigterm, NULL);
    for (conn *c = s->conns; c; c = c->next) conn_update_reading(c);
    assay_host_close(s->host, on_host_closed);
}

static void on_signal(uv_signal_t *handle, int signum) {
    service *s = handle->data;
    if (signum != SIGHUP) {
        fprintf(stderr, "service: stopping, answering the traces received\n");
        stop(s);
        return;
    }
    assay_error err;
    if (assay_host_reload(s->host, &err) == ASSAY_OK) fprintf(stderr, "service: plugins reloaded\n");
    else fprintf(stderr, "service: reload failed, keeping the loaded plugins: %s\n", err.message);
}

static int usage(const char *argv0) {
    fprintf(stderr,
            "usage: %s -e PLUGINS [-e PLUGINS]... [--port N] [-j N] [--max-line BYTES] [--window N] [--no-timing]\n",
            argv0);
    return 2;
}

int main(int argc, char **argv) {
    /* a client that resets its connection must cost an EPIPE from write, not the process */
    signal(SIGPIPE, SIG_IGN);
    service s = {.loop = uv_default_loop(), .max_line = 16u << 20, .window = 4096};
    int port = 7433;
    assay_options *opts = assay_options_new();
    if (!opts) return 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--no-timing")) assay_options_set_record_timing(opts, 0);
        else if (!v) return usage(argv[0]);
        else if (!strcmp(a, "-e")) assay_options_add_plugin_path(opts, v), i++;
        else if (!strcmp(a, "--port")) port = atoi(v), i++;
        else if (!strcmp(a, "-j")) assay_options_set_workers(opts, (unsigned)atoi(v)), i++;
        else if (!strcmp(a, "--max-line")) s.max_line = strtoul(v, NULL, 10), i++;
        else if (!strcmp(a, "--window")) s.window = strtoul(v, NULL, 10), i++;
        else return usage(argv[0]);
    }
    assay_error err;
    int rc = assay_host_new(&s.host, s.loop, opts, on_result, &s, &err);
    assay_options_free(opts);
    if (rc != ASSAY_OK) {
        fprintf(stderr, "service: %s\n", err.message);
        return 2;
    }
    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", port, &addr);
    uv_tcp_init(s.loop, &s.listener);
    s.listener.data = &s;
    if ((rc = uv_tcp_bind(&s.listener, (const struct sockaddr *)&addr, 0)) != 0 ||
        (rc = uv_listen((uv_stream_t *)&s.listener, 128, on_connection)) != 0) {
        fprintf(stderr, "service: cannot listen on 127.0.0.1:%d: %s\n", port, uv_strerror(rc));
        return 2;
    }
    struct sockaddr_storage bound;
    int bound_len = sizeof bound;
    uv_tcp_getsockname(&s.listener, (struct sockaddr *)&bound, &bound_len);
    printf("listening on 127.0.0.1:%d\n", ntohs(((struct sockaddr_in *)&bound)->sin_port));
    fflush(stdout);
    uv_signal_t *signals[] = {&s.sighup, &s.sigint, &s.sigterm};
    int signums[] = {SIGHUP, SIGINT, SIGTERM};
    for (int i = 0; i < 3; i++) {
        uv_signal_init(s.loop, signals[i]);
        signals[i]->data = &s;
        uv_signal_start(signals[i], on_signal, signums[i]);
    }
    uv_run(s.loop, UV_RUN_DEFAULT);
    uv_loop_close(s.loop);
    return 0;
}
