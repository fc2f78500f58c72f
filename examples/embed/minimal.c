/* minimal.c - the smallest program that embeds libassay: score the traces given as
 * arguments (one JSON text each) with the plugins in a directory, on our own libuv loop.
 *
 *   cc minimal.c $(pkg-config --cflags --libs assay libuv) -o minimal
 *   ./minimal plugins '{"id":"t1","steps":[]}'
 */
#include <stdio.h>
#include <string.h>

#include <assay.h>
#include <uv.h>

static void on_result(assay_host *host, const assay_result *result, void *ctx) {
    (void)host, (void)ctx;
    size_t len;
    const char *jsonl = assay_result_jsonl(result, &len); /* borrowed until we return */
    fwrite(jsonl, 1, len, stdout);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s PLUGIN_DIR TRACE_JSON...\n", argv[0]);
        return 2;
    }
    uv_loop_t *loop = uv_default_loop();
    assay_options *opts = assay_options_new();
    assay_options_add_plugin_path(opts, argv[1]);
    assay_options_set_workers(opts, 2);

    assay_host *host;
    assay_error err;
    int rc = assay_host_new(&host, loop, opts, on_result, NULL, &err);
    assay_options_free(opts); /* the host keeps what it needs */
    if (rc != ASSAY_OK) {
        fprintf(stderr, "assay: %s\n", err.message);
        return 2;
    }
    for (int i = 2; i < argc; i++) assay_host_submit(host, argv[i], strlen(argv[i]), "argv", (uint64_t)i - 1, NULL);
    assay_host_close(host, NULL); /* delivers every result, then frees the host */
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
    return 0;
}
