/* cli_import.c - `assay import --from FORMAT FILE...`: logs of other formats to assay traces.
 *
 * importer.c reads each input's envelope into one document per trace; the format's mapper
 * (plugins/importers/FORMAT.lua, or --map FILE.lua) runs in libassay's sandbox as any
 * plugin does, on every core, and returns the trace; the traces are written in input order.
 * What could not be imported is reported on stderr as file:line: why, and the rest is.
 */
#include "cli.h"
#include "importer.h"

#include <errno.h>
#include <signal.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* Documents in flight before reading waits for the mappers. */
#define IMPORT_WINDOW 512
/* How much of an input auto-detection may read. */
#define IMPORT_DETECT_BYTES (64u << 20)

typedef struct import_run {
    uv_loop_t loop;
    assay_host *host;
    importer *im;
    FILE *out;
    const char *out_name;
    uint64_t written, failed;
    bool has_write_error;
    char *stdin_copy;           /* standard input read for detection, read again from here */
} import_run;

static void on_mapped(assay_host *host, const assay_result *result, void *ctx) {
    (void)ctx;
    import_run *ir = assay_host_user_data(host);
    assay_record rec;
    if (assay_result_record(result, 0, &rec, sizeof rec) != ASSAY_OK) return;
    if (rec.error != ASSAY_KIND_NONE) {
        ir->failed++;
        if (rec.error == ASSAY_KIND_INPUT) fprintf(stderr, "assay: %s\n", rec.error_message);
        else
            fprintf(stderr, "assay: %s:%llu: trace %s: the mapper failed (%s): %s\n", assay_result_source(result),
                    (unsigned long long)assay_result_line(result), assay_result_trace_id(result),
                    assay_error_kind_name(rec.error), rec.error_message);
        return;
    }
    size_t len;
    const char *trace = assay_result_record_details(result, 0, &len);
    if (!trace) {
        ir->failed++;
        fprintf(stderr, "assay: %s:%llu: the mapper returned an empty trace\n", assay_result_source(result),
                (unsigned long long)assay_result_line(result));
        return;
    }
    if (fwrite(trace, 1, len, ir->out) != len || fputc('\n', ir->out) == EOF) ir->has_write_error = true;
    ir->written++;
}

static void on_document(void *ctx, const char *json, size_t len, const char *source, uint64_t line) {
    import_run *ir = ctx;
    if (assay_host_submit(ir->host, json, len, source, line, NULL) != ASSAY_OK) return;
    while (assay_host_pending(ir->host) > IMPORT_WINDOW) uv_run(&ir->loop, UV_RUN_ONCE);
}

/* Following and idle: every trace mapped so far goes out now, not with the next input. */
static void on_idle(void *ctx) {
    import_run *ir = ctx;
    while (assay_host_pending(ir->host) > 0) uv_run(&ir->loop, UV_RUN_ONCE);
    fflush(ir->out);
}

static volatile int follow_stop;
static void on_stop_signal(int signum) {
    (void)signum;
    follow_stop = 1;
}

static void on_problem(void *ctx, const char *source, uint64_t line, const char *message) {
    (void)ctx;
    fprintf(stderr, "assay: %s:%llu: %s\n", source, (unsigned long long)line, message);
}

/* Reads an input for detection: its first line, or up to IMPORT_DETECT_BYTES when that
 * line is not a whole JSON value; the stream is then read again from its start (standard
 * input from a copy in memory). */
static int detect(FILE **f, importer_format *format, char **stdin_copy) {
    buf head;
    buf_init(&head);
    char chunk[65536];
    size_t n;
    bool found = false;
    while (!found && head.len < IMPORT_DETECT_BYTES && (n = fread(chunk, 1, sizeof chunk, *f)) > 0) {
        buf_append(&head, chunk, n);
        const char *nl = memchr(head.data, '\n', head.len);
        if (nl && importer_detect(head.data, (size_t)(nl - head.data), format) == 0) found = true;
    }
    if (!found) found = importer_detect(head.data ? head.data : "", head.len, format) == 0;
    int rc = found ? 0 : -1;
    if (*f == stdin) {
        /* what follows the head is read from stdin itself: a memory stream of the head,
         * then the rest (funopen is not portable, so the rest is copied too) */
        while ((n = fread(chunk, 1, sizeof chunk, stdin)) > 0) buf_append(&head, chunk, n);
        size_t len = head.len;
        *stdin_copy = buf_steal(&head);
        *f = *stdin_copy && len ? fmemopen(*stdin_copy, len, "r") : NULL;
        if (!*f) rc = len ? -2 : -1;
    } else if (fseek(*f, 0, SEEK_SET) != 0) {
        rc = -2;
    }
    buf_free(&head);
    return rc;
}

/* The shipped mapper of a format: <plugins>/importers/<format>.lua, '-' written '_'. */
static void shipped_mapper(importer_format format, char *path, size_t size) {
    snprintf(path, size, "%s/importers/%s.lua", cli_shipped_plugin_dir(), importer_format_name(format));
    for (char *p = strrchr(path, '/'); p && *p; p++)
        if (*p == '-') *p = '_';
}

static int start_host(import_run *ir, cli_options *o, importer_format format) {
    char mapper[PATH_MAX + 64];
    if (o->map) snprintf(mapper, sizeof mapper, "%s", o->map);
    else shipped_mapper(format, mapper, sizeof mapper);
    assay_options_add_plugin_path(o->host, mapper);
    for (size_t i = 0; i < o->import_param_count; i++)
        if (assay_options_set_param(o->host, o->import_params[i]) != ASSAY_OK) {
            fprintf(stderr, "assay: --param: '%s' is not of the form import.KEY=VALUE\n", o->import_params[i]);
            return CLI_EXIT_USAGE;
        }
    /* the shipped helpers (require "import"); and a mapper of one's own may
     * require("importers.otlp") and wrap the shipped one */
    char lib[PATH_MAX + 8];
    snprintf(lib, sizeof lib, "%s/lib", cli_shipped_plugin_dir());
    assay_options_add_lib_dir(o->host, lib);
    assay_options_add_lib_dir(o->host, cli_shipped_plugin_dir());
    assay_options_set_mappers(o->host, 1);
    assay_options_set_record_timing(o->host, 0);
    assay_error err;
    if (assay_host_new(&ir->host, &ir->loop, o->host, on_mapped, ir, &err) != ASSAY_OK) {
        fprintf(stderr, "assay: %s\n", err.message);
        return CLI_EXIT_USAGE;
    }
    importer_config cfg = {.on_document = on_document, .on_problem = on_problem, .on_idle = on_idle, .ctx = ir,
                           .max_open = o->open_traces};
    if (!(ir->im = importer_new(format, &cfg))) {
        fprintf(stderr, "assay: out of memory\n");
        return CLI_EXIT_IO;
    }
    if (o->is_follow) {
        /* like tail -f until SIGINT or SIGTERM; then what came is mapped and written */
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_stop_signal;
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        importer_follow(ir->im, &follow_stop);
    }
    return CLI_EXIT_OK;
}

/* Reads every input through one importer; the first input's format is every input's. */
static int import_inputs(import_run *ir, cli_options *o, const char *const *inputs, size_t count) {
    importer_format format = 0, first = 0;
    bool is_auto = !o->from || strcmp(o->from, "auto") == 0;
    if (!is_auto && importer_format_parse(o->from, &format) != 0) {
        fprintf(stderr, "assay: --from: unknown format '%s' (otlp, langfuse, langsmith, inspect, chat, "
                        "openai-responses, anthropic, gemini or auto)\n", o->from);
        return CLI_EXIT_USAGE;
    }
    for (size_t i = 0; i < count; i++) {
        const char *path = inputs[i];
        bool is_stdin = strcmp(path, "-") == 0;
        size_t path_len = strlen(path);
        if (path_len > 5 && strcmp(path + path_len - 5, ".eval") == 0) {
            /* inspect_ai's zip: its format is its name */
            if (!is_auto && format != IMPORTER_INSPECT) {
                fprintf(stderr, "assay: %s is an inspect_ai .eval log, not %s\n", path, o->from);
                return CLI_EXIT_USAGE;
            }
            if (i == 0 && start_host(ir, o, IMPORTER_INSPECT) != CLI_EXIT_OK) return CLI_EXIT_USAGE;
            if (i == 0) first = format = IMPORTER_INSPECT;
            if (first != IMPORTER_INSPECT) {
                fprintf(stderr, "assay: %s is an inspect_ai .eval log, but %s is %s: import them separately\n", path,
                        inputs[0], importer_format_name(first));
                return CLI_EXIT_USAGE;
            }
            importer_feed_eval_zip(ir->im, path);
            continue;
        }
        FILE *f = is_stdin ? stdin : fopen(path, "rb");
        const char *shown = is_stdin ? "(stdin)" : path;
        if (!f) {
            fprintf(stderr, "assay: %s: %s\n", path, strerror(errno));
            return CLI_EXIT_IO;
        }
        if (is_auto) {
            int rc = detect(&f, &format, &ir->stdin_copy);
            if (rc != 0) {
                fprintf(stderr, "assay: %s: %s\n", shown,
                        rc == -2 ? "cannot read it again after detecting its format"
                                 : "cannot tell its format from its first JSON value; name it with --from FORMAT");
                if (f && f != stdin) fclose(f);
                return rc == -2 ? CLI_EXIT_IO : CLI_EXIT_USAGE;
            }
            fprintf(stderr, "assay: %s: detected %s\n", shown, importer_format_name(format));
        }
        if (i == 0) {
            first = format;
            int rc = start_host(ir, o, format);
            if (rc != CLI_EXIT_OK) {
                if (f != stdin) fclose(f);
                return rc;
            }
        } else if (format != first) {
            fprintf(stderr, "assay: %s is %s, but %s is %s: import them separately\n", shown,
                    importer_format_name(format), inputs[0], importer_format_name(first));
            if (f != stdin) fclose(f);
            return CLI_EXIT_USAGE;
        }
        int rc = importer_feed(ir->im, f, shown);
        if (f != stdin) fclose(f); /* standard input read for detection is a memory stream */
        if (rc != 0) return CLI_EXIT_IO;
    }
    importer_finish(ir->im);
    return CLI_EXIT_OK;
}

int cli_import(cli_options *o, const char *const *inputs, size_t count) {
    static const char *const standard_input[] = {"-"};
    if (count == 0) inputs = standard_input, count = 1;
    if (o->is_follow && (count != 1 || strcmp(inputs[0], "-") == 0)) {
        fprintf(stderr, "assay: --follow reads one growing file: name exactly one (not standard input)\n");
        return CLI_EXIT_USAGE;
    }
    import_run ir;
    memset(&ir, 0, sizeof ir);
    uv_loop_init(&ir.loop);
    bool to_stdout = !o->output || strcmp(o->output, "-") == 0;
    ir.out = to_stdout ? stdout : fopen(o->output, "w");
    ir.out_name = to_stdout ? "standard output" : o->output;
    if (!ir.out) {
        fprintf(stderr, "assay: %s: %s\n", o->output, strerror(errno));
        uv_loop_close(&ir.loop);
        return CLI_EXIT_USAGE;
    }
    int rc = import_inputs(&ir, o, inputs, count);
    if (ir.host) {
        assay_host_close(ir.host, NULL);
        uv_run(&ir.loop, UV_RUN_DEFAULT);
    }
    uv_loop_close(&ir.loop);
    free(ir.stdin_copy);
    uint64_t problems = ir.im ? importer_problems(ir.im) : 0;
    uint64_t spilled = ir.im ? importer_spilled(ir.im) : 0;
    importer_free(ir.im);
    if ((fflush(ir.out) != 0 || ir.has_write_error || (!to_stdout && fclose(ir.out) != 0)) && rc == CLI_EXIT_OK) {
        fprintf(stderr, "assay: cannot write the traces to %s: %s\n", ir.out_name, strerror(errno));
        rc = CLI_EXIT_IO;
    }
    if (rc != CLI_EXIT_OK) return rc;
    fprintf(stderr, "assay: imported %llu trace%s", (unsigned long long)ir.written, ir.written == 1 ? "" : "s");
    if (spilled)
        fprintf(stderr, " (%llu waited in a temporary file for spans far apart)", (unsigned long long)spilled);
    if (problems || ir.failed)
        fprintf(stderr, "; %llu problem%s in the input, %llu trace%s the mapper could not map",
                (unsigned long long)problems, problems == 1 ? "" : "s", (unsigned long long)ir.failed,
                ir.failed == 1 ? "" : "s");
    fputc('\n', stderr);
    return problems || ir.failed ? CLI_EXIT_RECORD_ERRORS : CLI_EXIT_OK;
}
