/* bench_latency.c - what one trace costs a service that embeds libassay: each trace of a
 * corpus is submitted alone on the caller's loop and timed until its result is delivered
 * (parse, the shipped evaluators, the handoff to the worker thread and back). Prints the
 * median and p95 in microseconds over traces of 5-20 KB, a typical deep-research trace's size.
 *
 *   bench_latency PLUGIN_DIR CORPUS.jsonl [MAX_TRACES [WORKERS]]
 *
 * WORKERS (default 1): with more, each trace is shared among the idle workers, and the
 * fourth number printed is how many of the timed traces were.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <assay.h>
#include <uv.h>

static int delivered;

static void on_result(assay_host *host, const assay_result *result, void *ctx) {
    (void)host, (void)result, (void)ctx;
    delivered = 1;
}

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s PLUGIN_DIR CORPUS.jsonl [MAX_TRACES [WORKERS]]\n", argv[0]);
        return 2;
    }
    long max = argc > 3 ? atol(argv[3]) : 3000;
    unsigned workers = argc > 4 ? (unsigned)atoi(argv[4]) : 1;
    FILE *f = fopen(argv[2], "r");
    if (!f) {
        perror(argv[2]);
        return 2;
    }
    uv_loop_t loop;
    uv_loop_init(&loop);
    assay_options *opts = assay_options_new();
    assay_options_add_plugin_path(opts, argv[1]);
    assay_options_set_workers(opts, workers);
    assay_host *host;
    assay_error err;
    if (assay_host_new(&host, &loop, opts, on_result, NULL, &err) != ASSAY_OK) {
        fprintf(stderr, "assay: %s\n", err.message);
        return 2;
    }
    assay_options_free(opts);
    double *us = malloc((size_t)max * sizeof *us);
    char *line = NULL;
    size_t cap = 0;
    long n = 0, warmup = 50;
    uint64_t shared_before = 0;
    ssize_t len;
    for (uint64_t lineno = 1; n < max && (len = getline(&line, &cap, f)) > 0; lineno++) {
        if (len < 5000 || len > 20000) continue;
        delivered = 0;
        double t0 = now_us();
        assay_host_submit(host, line, (size_t)len, argv[2], lineno, NULL);
        while (!delivered) uv_run(&loop, UV_RUN_ONCE);
        double t = now_us() - t0;
        if (warmup > 0) { /* the first traces warm the states' allocators and caches */
            if (--warmup == 0) shared_before = assay_host_shared(host);
        } else {
            us[n++] = t;
        }
    }
    unsigned long long shared = (unsigned long long)(assay_host_shared(host) - shared_before);
    assay_host_close(host, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    fclose(f);
    free(line);
    if (n == 0) {
        fprintf(stderr, "bench_latency: no trace of 5-20 KB in %s\n", argv[2]);
        return 1;
    }
    qsort(us, (size_t)n, sizeof *us, by_value);
    printf("%ld %.1f %.1f %llu\n", n, us[n / 2], us[(n * 95) / 100], shared);
    free(us);
    return 0;
}
