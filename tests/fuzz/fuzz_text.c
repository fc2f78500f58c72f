/* fuzz_text.c - libFuzzer target for assay.text's C side: tokens, lowercasing, stopwords,
 * URL key and domain, sentence split, citation markers, character count. Checks the
 * invariants every caller relies on: spans stay inside the input and move forward. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../sandbox/text.h"

static void on_span(const char *s, size_t n, void *ctx) {
    const char **bounds = ctx;
    if (s < bounds[0] || s + n > bounds[1]) abort();
}

static void on_marker(long long k, size_t offset, size_t len, void *ctx) {
    (void)k;
    if (offset + len > *(size_t *)ctx) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    char *s = malloc(n + 1);
    if (!s) return 0;
    memcpy(s, data, n);
    s[n] = '\0';
    size_t pos = 0, start, len, last = 0;
    while (text_next_token(s, n, &pos, &start, &len)) {
        if (start < last || start + len > n || len == 0 || pos <= start) abort();
        last = start + len;
        char *word = malloc(len + 1);
        text_lower_into(word, s + start, len);
        (void)text_is_stopword(word, len);
        free(word);
    }
    buf b;
    buf_init(&b);
    text_url_key(s, n, &b);
    buf_reset(&b);
    text_url_domain(s, n, &b);
    buf_free(&b);
    const char *bounds[2] = {s, s + n};
    text_sentences(s, n, on_span, bounds);
    text_markers(s, n, on_marker, &n);
    if (text_char_count(s, n) > n) abort();
    free(s);
    return 0;
}
