/* fuzz_jparse.c - libFuzzer target for the arena parser (host/base/jparse.c) against
 * cJSON: whenever jparse gives a tree, cJSON must accept the same text and give the same
 * tree (jparse_diff.h). A difference would change what plugins see of a trace. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jparse_diff.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    char *text = malloc(n + 1);
    if (!text) return 0;
    memcpy(text, data, n);
    text[n] = '\0';
    if (jparse_diff(text, n) == JPARSE_DIFF_DIFFERENT) abort();
    free(text);
    return 0;
}
