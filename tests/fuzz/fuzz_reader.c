/* fuzz_reader.c - libFuzzer target for the CLI's JSONL reader (host/cli/reader.c): the input
 * is written to a file and streamed through a libuv loop with a small line limit, so that
 * splitting across chunks, CRLF, blank and over-long lines are all reached. Checks that
 * every byte is accounted for and no line holds a newline or exceeds the limit. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../host/cli/cli.h"

#define MAX_LINE 64

typedef struct seen {
    size_t bytes, lines, ended;
    uint64_t last_line;
} seen;

static void on_line(void *ctx, const char *line, size_t len, uint64_t line_no) {
    seen *s = ctx;
    if (line_no <= s->last_line) abort();
    s->last_line = line_no;
    if (line) {
        if (len > MAX_LINE || memchr(line, '\n', len)) abort();
    } else if (len <= MAX_LINE) {
        abort(); /* only over-long lines are skipped */
    }
    s->bytes += len;
    s->lines++;
}

static void on_end(void *ctx, int status) {
    seen *s = ctx;
    if (status != 0) abort();
    s->ended++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    static char path[64];
    if (!path[0]) snprintf(path, sizeof path, "/tmp/fuzz-reader-%d.jsonl", (int)getpid());
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    fwrite(data, 1, n, f);
    fclose(f);
    uv_loop_t loop;
    uv_loop_init(&loop);
    seen s = {0};
    char err[256];
    reader *r = reader_new(&loop, path, MAX_LINE, on_line, on_end, &s, err, sizeof err);
    if (!r) abort();
    reader_start(r);
    uv_run(&loop, UV_RUN_DEFAULT);
    reader_free(r);
    uv_run(&loop, UV_RUN_DEFAULT); /* its handles close */
    if (uv_loop_close(&loop) != 0) abort();
    if (s.ended != 1 || s.bytes > n) abort();
    return 0;
}
