/* reader.c - streams a JSONL file line by line, with pause and resume for backpressure.
 * Memory is one chunk plus the longest line in progress; a line over the limit is skipped
 * and reported, never buffered whole.
 *
 * A regular file that is not followed is read on the loop's own thread, a chunk per turn
 * of the loop (an idle handle), so that deliveries run between chunks; a pipe or a followed
 * file goes through libuv's thread pool, where a read may wait. Why: a chunk out of the
 * page cache is a 30 µs copy, and sending each to the pool cost the loop's thread two
 * thread switches and the lines arriving in another core's cache (at -j 2 the loop's
 * thread and the reads took 207 ms of CPU beside the workers, 168 ms since).
 *
 * Following (reader_follow) polls at the end of the file instead of ending. A poll that
 * finds another file under the path (rotated) reads the old one to its end first, then
 * goes on with the new one; a file shorter than what was read (truncated in place) is read
 * again from its start. Line numbers go on counting across both, so that each line of
 * the followed stream keeps one number. */
#include "cli.h"
#include "../base/buf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define READER_CHUNK (256u << 10)
#define READER_POLL_MS 200

struct reader {
    uv_loop_t *loop;
    uv_fs_t req;
    uv_file fd;
    bool owns_fd;
    char *chunk;
    buf partial;          /* a line split across chunks */
    size_t partial_total; /* its full length so far, also when it is being skipped */
    bool is_skipping;     /* the current line is over max_line */
    size_t max_line;
    uint64_t line_no;
    bool is_reading, is_paused, is_done, is_stopped;
    bool is_in_callback;  /* emitting lines: a stop takes effect after the chunk loop */
    reader_line_cb on_line;
    reader_end_cb on_end;
    void (*on_data)(void *ctx, const char *data, size_t len);
    void *ctx;
    /* following */
    char *path;           /* owned */
    bool is_following, is_waiting, is_switching;
    uv_timer_t poll;
    bool has_poll;
    /* a regular file not followed is read on the loop's thread, a chunk per loop turn */
    uv_idle_t step;
    bool has_step;
    int handles_open;     /* closing in reader_free */
    uint64_t offset;      /* bytes read from the current file */
    dev_t dev;
    ino_t ino;
};

static bool is_blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') return false;
    return true;
}

static void emit(reader *r, const char *line, size_t len) {
    r->line_no++;
    if (len && line[len - 1] == '\r') len--;
    if (!is_blank(line, len)) r->on_line(r->ctx, line, len, r->line_no);
}

static void emit_skipped(reader *r) {
    r->line_no++;
    r->on_line(r->ctx, NULL, r->partial_total, r->line_no);
}

/* Adds bytes of an unfinished line; past max_line switches to skipping it. */
static void hold(reader *r, const char *p, size_t n) {
    r->partial_total += n;
    if (r->is_skipping) return;
    if (r->partial_total > r->max_line) {
        r->is_skipping = true;
        buf_free(&r->partial);
        return;
    }
    buf_append(&r->partial, p, n);
}

static void finish_line(reader *r) {
    if (r->is_skipping) emit_skipped(r);
    else emit(r, buf_cstr(&r->partial), r->partial.len);
    buf_reset(&r->partial);
    r->partial_total = 0;
    r->is_skipping = false;
}

static void read_next(reader *r);
static void on_poll(uv_timer_t *t);

static void finish(reader *r, int status) {
    r->is_done = true;
    r->on_end(r->ctx, status);
}

static void wait_for_more(reader *r) {
    r->is_waiting = true;
    uv_timer_start(&r->poll, on_poll, READER_POLL_MS, 0);
}

/* The path names another file now: the old one was read to its end. */
static void switch_file(reader *r) {
    int fd = open(r->path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) { /* between the rename and the new file: try later */
        if (fd >= 0) close(fd);
        wait_for_more(r);
        return;
    }
    if (r->partial_total) finish_line(r); /* the writer will not finish a line in a file it left */
    close(r->fd);
    r->fd = fd;
    r->dev = st.st_dev, r->ino = st.st_ino;
    r->offset = 0;
    r->is_switching = false;
    read_next(r);
}

static void on_poll(uv_timer_t *t) {
    reader *r = t->data;
    r->is_waiting = false;
    if (r->is_stopped) {
        finish(r, 0);
        return;
    }
    if (r->is_paused) return; /* reader_resume reads on */
    struct stat st;
    if (stat(r->path, &st) != 0) {
        wait_for_more(r);
    } else if (st.st_dev != r->dev || st.st_ino != r->ino) {
        r->is_switching = true; /* what was appended before the rotation first */
        read_next(r);
    } else if ((uint64_t)st.st_size < r->offset) {
        if (r->partial_total) finish_line(r);
        lseek(r->fd, 0, SEEK_SET);
        r->offset = 0;
        read_next(r);
    } else if ((uint64_t)st.st_size > r->offset) {
        read_next(r);
    } else {
        wait_for_more(r);
    }
}

static void chunk_read(reader *r, ssize_t n) {
    r->is_reading = false;
    if (n < 0) {
        finish(r, (int)n);
        return;
    }
    if (n == 0 && r->is_following && !r->is_stopped) {
        if (r->is_switching) switch_file(r);
        else wait_for_more(r);
        return;
    }
    if (n == 0) {
        if (r->partial_total) finish_line(r);
        finish(r, 0);
        return;
    }
    r->offset += (uint64_t)n;
    if (r->on_data) r->on_data(r->ctx, r->chunk, (size_t)n);
    const char *p = r->chunk, *end = r->chunk + n;
    r->is_in_callback = true;
    while (p < end && !r->is_stopped) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) {
            hold(r, p, (size_t)(end - p));
            break;
        }
        size_t len = (size_t)(nl - p);
        if (r->partial_total) {
            hold(r, p, len);
            finish_line(r);
        } else if (len > r->max_line) {
            r->partial_total = len;
            emit_skipped(r);
            r->partial_total = 0;
        } else {
            emit(r, p, len);
        }
        p = nl + 1;
    }
    r->is_in_callback = false;
    if (buf_failed(&r->partial)) {
        finish(r, UV_ENOMEM);
        return;
    }
    if (r->is_stopped) finish(r, 0);
    else if (!r->is_paused) read_next(r);
}

static void on_read(uv_fs_t *req) {
    reader *r = req->data;
    ssize_t n = req->result;
    uv_fs_req_cleanup(req);
    chunk_read(r, n);
}

/* One chunk of a regular file, read here: see the top. */
static void on_step(uv_idle_t *h) {
    reader *r = h->data;
    uv_idle_stop(h);
    ssize_t n;
    do n = read(r->fd, r->chunk, READER_CHUNK); while (n < 0 && errno == EINTR);
    chunk_read(r, n < 0 ? -errno : n);
}

static void read_next(reader *r) {
    if (r->is_reading || r->is_done) return;
    r->is_reading = true;
    if (r->has_step) {
        uv_idle_start(&r->step, on_step);
        return;
    }
    uv_buf_t b = uv_buf_init(r->chunk, READER_CHUNK);
    int rc = uv_fs_read(r->loop, &r->req, r->fd, &b, 1, -1, on_read);
    if (rc < 0) {
        r->is_reading = false;
        finish(r, rc);
    }
}

reader *reader_new(uv_loop_t *loop, const char *path, size_t max_line, reader_line_cb on_line,
                   reader_end_cb on_end, void *ctx, char *err, size_t errlen) {
    int fd;
    bool owns = strcmp(path, "-") != 0;
    if (owns) {
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
            return NULL;
        }
        struct stat st;
        if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
            snprintf(err, errlen, "%s: is a directory, not a JSONL file", path);
            close(fd);
            return NULL;
        }
    } else {
        fd = 0;
    }
    reader *r = calloc(1, sizeof *r);
    char *chunk = malloc(READER_CHUNK);
    if (!r || !chunk) {
        free(r), free(chunk);
        if (owns) close(fd);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    r->loop = loop;
    r->fd = fd;
    r->owns_fd = owns;
    r->chunk = chunk;
    r->max_line = max_line;
    r->on_line = on_line;
    r->on_end = on_end;
    r->ctx = ctx;
    r->req.data = r;
    buf_init(&r->partial);
    if (owns && !(r->path = strdup(path))) {
        snprintf(err, errlen, "out of memory");
        reader_free(r);
        return NULL;
    }
    return r;
}

void reader_on_data(reader *r, void (*on_data)(void *ctx, const char *data, size_t len)) { r->on_data = on_data; }

void reader_follow(reader *r) {
    struct stat st;
    if (!r->path || fstat(r->fd, &st) != 0) return;
    r->dev = st.st_dev, r->ino = st.st_ino;
    uv_timer_init(r->loop, &r->poll);
    r->poll.data = r;
    r->has_poll = r->is_following = true;
}

void reader_start(reader *r) {
    struct stat st;
    if (r->owns_fd && !r->is_following && fstat(r->fd, &st) == 0 && S_ISREG(st.st_mode)) {
        uv_idle_init(r->loop, &r->step);
        r->step.data = r;
        r->has_step = true;
    }
    read_next(r);
}

void reader_pause(reader *r) { r->is_paused = true; }

void reader_resume(reader *r) {
    if (!r->is_paused) return;
    r->is_paused = false;
    if (r->is_stopped && !r->is_reading && !r->is_done) finish(r, 0);
    else if (!r->is_waiting) read_next(r);
}

void reader_stop(reader *r) {
    if (r->is_done || r->is_stopped) return;
    r->is_stopped = true;
    if (r->is_waiting) {
        uv_timer_stop(&r->poll);
        r->is_waiting = false;
    }
    if (!r->is_reading && !r->is_in_callback) finish(r, 0);
}

static void free_memory(reader *r) {
    if (r->owns_fd) close(r->fd);
    buf_free(&r->partial);
    free(r->chunk);
    free(r->path);
    free(r);
}

static void on_handle_closed(uv_handle_t *handle) {
    reader *r = handle->data;
    if (--r->handles_open == 0) free_memory(r);
}

/* Only once on_end has been called: no read is in flight then. A reader with handles is
 * freed once they have closed, as the loop runs. */
void reader_free(reader *r) {
    if (!r) return;
    r->handles_open = r->has_poll + r->has_step;
    if (r->has_poll) uv_close((uv_handle_t *)&r->poll, on_handle_closed);
    if (r->has_step) uv_close((uv_handle_t *)&r->step, on_handle_closed);
    if (!r->handles_open) free_memory(r);
}
