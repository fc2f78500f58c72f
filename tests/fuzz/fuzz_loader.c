/* fuzz_loader.c - libFuzzer target for the plugin loader: any text as a plugin file must
 * load or fail with a message, within the time and memory limits, and a loaded one must
 * evaluate a small trace without taking the process down. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../sandbox/sandbox.h"

static cJSON *trace;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    if (!trace) trace = cJSON_Parse("{\"id\":\"t\",\"steps\":[{\"type\":\"search\",\"query\":\"a b\"}],\"output\":\"x [1]\"}");
    char *source = malloc(n + 1);
    if (!source) return 0;
    memcpy(source, data, n);
    source[n] = '\0';
    sandbox_config c = {.path = "fuzz.lua", .source = source, .source_len = n, .memory_limit = 16u << 20,
                        .timeout_ms = 50};
    char err[512];
    err[0] = '\0';
    sandbox *sb = sandbox_new(&c, err, sizeof err);
    if (!sb) {
        if (!err[0]) abort(); /* a refusal always says why */
    } else {
        record_list out;
        record_list_init(&out);
        if (sandbox_evaluate(sb, trace, "t", &out, NULL)) abort();
        if (out.count == 0 && strcmp(sandbox_get_info(sb)->scope, "trace") == 0) abort();
        record_list_free(&out);
        sandbox_free(sb);
    }
    free(source);
    return 0;
}
