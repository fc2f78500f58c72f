/* cli_journal.c - the progress journal that makes `assay run -o FILE` resumable.
 *
 * Beside FILE, FILE.progress holds a header naming the run (a hash of its inputs,
 * evaluators and params) and then checkpoints "C FILE_INDEX LINE BYTES": every input line
 * up to LINE of input FILE_INDEX has all its records in the first BYTES bytes of FILE, and
 * nothing else is there. Results are written in input order, so one position says it all.
 *
 * A checkpoint is appended only after the output bytes it names were synced, and a resume
 * trusts the last one whose BYTES fit in the file and end a line. It truncates FILE there:
 * a torn last line, or records of traces written after the checkpoint, are dropped and
 * computed again, so every trace ends up with exactly one set of records. The journal is
 * removed when a run completes, unless it ran with --resume: then it is rewritten as
 * finished, "F FILE LINE BYTES STATUS", so that rerunning the same command (a scheduler
 * requeueing a task that had in fact completed) does nothing and exits as the run did.
 */
#include "cli.h"
#include "../base/buf.h"
#include "../base/hash.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define JOURNAL_MAGIC "assay-progress 1"

struct journal {
    int fd;
    char *path; /* FILE.progress, owned */
    uint64_t signature;
};

uint64_t journal_hash(const void *data, size_t len, uint64_t h) { return hash_fnv1a(h ? h : HASH_FNV_BASIS, data, len); }

static char *journal_path(const char *out_path) {
    size_t n = strlen(out_path);
    char *p = malloc(n + sizeof ".progress");
    if (p) memcpy(p, out_path, n), memcpy(p + n, ".progress", sizeof ".progress");
    return p;
}

static int write_all(int fd, const char *s, size_t n) {
    while (n) {
        ssize_t w = write(fd, s, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Writes header (+ one checkpoint) to a temporary file renamed over the journal, so that a
 * crash leaves either the old journal or the new one. */
static journal *journal_write_new(const char *out_path, uint64_t signature, const journal_position *pos,
                                  const int *finished_status, char *err, size_t errlen) {
    journal *j = calloc(1, sizeof *j);
    buf tmp;
    buf_init(&tmp);
    if (!j || !(j->path = journal_path(out_path))) {
        snprintf(err, errlen, "out of memory");
        goto failed;
    }
    buf_printf(&tmp, "%s.tmp", j->path);
    buf text;
    buf_init(&text);
    buf_printf(&text, JOURNAL_MAGIC " %016" PRIx64 "\n", signature);
    if (pos) buf_printf(&text, "%c %" PRIu64 " %" PRIu64 " %" PRIu64, finished_status ? 'F' : 'C', pos->file,
                        pos->line, pos->bytes);
    if (pos && finished_status) buf_printf(&text, " %d", *finished_status);
    if (pos) buf_printf(&text, "\n");
    int fd = buf_failed(&tmp) || buf_failed(&text) ? -1 : open(tmp.data, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int ok = fd >= 0 && write_all(fd, text.data, text.len) == 0 && fdatasync(fd) == 0;
    if (fd >= 0) close(fd);
    buf_free(&text);
    if (!ok || rename(tmp.data, j->path) != 0) {
        snprintf(err, errlen, "%s: cannot write the progress journal: %s", j->path, strerror(errno));
        if (fd >= 0) unlink(tmp.data);
        goto failed;
    }
    j->fd = open(j->path, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (j->fd < 0) {
        snprintf(err, errlen, "%s: %s", j->path, strerror(errno));
        goto failed;
    }
    j->signature = signature;
    buf_free(&tmp);
    return j;
failed:
    buf_free(&tmp);
    if (j) free(j->path);
    free(j);
    return NULL;
}

journal *journal_create(const char *out_path, uint64_t signature, char *err, size_t errlen) {
    return journal_write_new(out_path, signature, NULL, NULL, err, errlen);
}

static bool parse_u64(const char **s, uint64_t *v) {
    char *end;
    if (**s < '0' || **s > '9') return false;
    errno = 0;
    unsigned long long x = strtoull(*s, &end, 10);
    if (errno) return false;
    *v = x;
    *s = end;
    return true;
}

/* Reads the checkpoints after the header: true when the run was marked finished (its
 * position and exit status set), else the last checkpoint that is whole, fits in the
 * output and ends on a line is left in *pos. */
static bool journal_scan(FILE *f, int out_fd, uint64_t out_size, journal_position *pos, int *finished_status) {
    char line[256];
    while (fgets(line, sizeof line, f)) {
        const char *s = line;
        journal_position c;
        uint64_t exit_status;
        if (strncmp(s, "F ", 2) == 0 && (s += 2, parse_u64(&s, &c.file)) && *s++ == ' ' && parse_u64(&s, &c.line) &&
            *s++ == ' ' && parse_u64(&s, &c.bytes) && *s++ == ' ' && parse_u64(&s, &exit_status) && *s == '\n' &&
            exit_status < 256) {
            *pos = c;
            *finished_status = (int)exit_status;
            return true;
        }
        if (strncmp(s, "C ", 2) != 0) continue;
        s += 2;
        if (!parse_u64(&s, &c.file) || *s++ != ' ' || !parse_u64(&s, &c.line) || *s++ != ' ' ||
            !parse_u64(&s, &c.bytes) || *s != '\n')
            continue; /* torn by a crash while appending */
        if (c.bytes > out_size) continue;
        char last = '\n';
        if (c.bytes > 0 && pread(out_fd, &last, 1, (off_t)c.bytes - 1) != 1) continue;
        if (last == '\n') *pos = c;
    }
    return false;
}

int journal_resume(const char *out_path, uint64_t signature, journal **out, journal_position *pos,
                   int *finished_status, char *err, size_t errlen) {
    *out = NULL;
    memset(pos, 0, sizeof *pos);
    char *path = journal_path(out_path);
    if (!path) return snprintf(err, errlen, "out of memory"), -1;
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        struct stat out_st;
        bool has_output = stat(out_path, &out_st) == 0 && (out_st.st_size > 0 || !S_ISREG(out_st.st_mode));
        if (e == ENOENT && !has_output) { /* never started: this attempt is the first */
            free(path);
            *out = journal_write_new(out_path, signature, NULL, NULL, err, errlen);
            return *out ? JOURNAL_FRESH : -1;
        }
        snprintf(err, errlen, "%s: %s (%s)", path, strerror(e),
                 e == ENOENT ? "its output is there without one: the run finished without --resume, or was not "
                               "resumable; run without --resume to start over"
                             : "cannot resume");
        free(path);
        return -1;
    }
    int out_fd = open(out_path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (out_fd < 0 || fstat(out_fd, &st) != 0) {
        snprintf(err, errlen, "%s: %s (the journal %s exists without it)", out_path, strerror(errno), path);
        if (out_fd >= 0) close(out_fd);
        fclose(f);
        free(path);
        return -1;
    }
    char line[256];
    bool has_header = false;
    bool found = false;
    if (fgets(line, sizeof line, f)) {
        char want[64];
        snprintf(want, sizeof want, JOURNAL_MAGIC " %016" PRIx64 "\n", signature);
        has_header = strncmp(line, JOURNAL_MAGIC " ", sizeof JOURNAL_MAGIC) == 0;
        found = strcmp(line, want) == 0;
    }
    int status = 0;
    if (!has_header) {
        snprintf(err, errlen, "%s: not an assay progress journal", path);
        status = -1;
    } else if (!found) {
        snprintf(err, errlen,
                 "%s was written by a run with other inputs, evaluators or params; run without --resume to start over",
                 out_path);
        status = -1;
    }
    bool is_finished = status == 0 && journal_scan(f, out_fd, (uint64_t)st.st_size, pos, finished_status);
    fclose(f);
    close(out_fd);
    free(path);
    if (status != 0) return status;
    if (is_finished && pos->bytes != (uint64_t)st.st_size) {
        snprintf(err, errlen, "%s: the run finished with %" PRIu64 " bytes of results, but the file has %lld now: it "
                 "was changed since; run without --resume to score again", out_path, pos->bytes, (long long)st.st_size);
        return -1;
    }
    if (is_finished) return JOURNAL_FINISHED;
    if (truncate(out_path, (off_t)pos->bytes) != 0) {
        snprintf(err, errlen, "%s: cannot truncate to the last checkpoint: %s", out_path, strerror(errno));
        return -1;
    }
    /* rewrite: checkpoints past the one we trust would lie once new records are appended */
    *out = journal_write_new(out_path, signature, pos, NULL, err, errlen);
    return *out ? JOURNAL_CONTINUE : -1;
}

int journal_append(journal *j, const journal_position *pos) {
    char line[96];
    int n = snprintf(line, sizeof line, "C %" PRIu64 " %" PRIu64 " %" PRIu64 "\n", pos->file, pos->line, pos->bytes);
    return write_all(j->fd, line, (size_t)n);
}

void journal_finish(journal *j, const journal_position *pos, int status) {
    if (!j) return;
    close(j->fd);
    size_t n = strlen(j->path) - strlen(".progress");
    char *out_path = strndup(j->path, n);
    char err[256];
    journal *done = out_path ? journal_write_new(out_path, j->signature, pos, &status, err, sizeof err) : NULL;
    if (!done) fprintf(stderr, "assay: %s\n", out_path ? err : "out of memory marking the run finished");
    if (done) close(done->fd);
    if (done) free(done->path);
    free(done);
    free(out_path);
    free(j->path);
    free(j);
}

void journal_free(journal *j, bool is_complete) {
    if (!j) return;
    close(j->fd);
    if (is_complete) unlink(j->path);
    free(j->path);
    free(j);
}
