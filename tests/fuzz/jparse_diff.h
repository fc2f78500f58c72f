/* jparse_diff.h - parses one text with cJSON (as a worker did before jparse.c) and with
 * jparse, and says whether they disagree: jparse may give up (the worker then parses with
 * cJSON), but when it gives a tree, cJSON must give the same one, and the text must be valid
 * UTF-8. For
 * tests/unit/test_jparse.c (fixed cases) and tests/fuzz/fuzz_jparse.c (any input). */
#ifndef ASSAY_JPARSE_DIFF_H
#define ASSAY_JPARSE_DIFF_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "../../host/base/buf.h"
#include "../../host/base/jparse.h"
#include "../../sandbox/sandbox.h"

/* The two trees are the same: types, keys, strings, numbers (bit for bit), the order of
 * children, and each first child's prev pointing at the last, as cJSON links them. b is
 * jparse's: its strings' valueint is their length (cJSON's is 0). */
static bool jparse_diff_same(const cJSON *a, const cJSON *b) {
    for (; a && b; a = a->next, b = b->next) {
        bool is_string = (b->type & 0xFF) == cJSON_String;
        if (is_string && (a->valueint != 0 || !b->valuestring || (size_t)b->valueint != strlen(b->valuestring)))
            return false;
        if (a->type != b->type || (!is_string && a->valueint != b->valueint) ||
            memcmp(&a->valuedouble, &b->valuedouble, sizeof(double)))
            return false;
        if (!a->string != !b->string || (a->string && strcmp(a->string, b->string))) return false;
        if (!a->valuestring != !b->valuestring || (a->valuestring && strcmp(a->valuestring, b->valuestring)))
            return false;
        if (!a->child != !b->child || !jparse_diff_same(a->child, b->child)) return false;
        if (a->child) {
            const cJSON *last_a = a->child, *last_b = b->child;
            while (last_a->next) last_a = last_a->next;
            while (last_b->next) last_b = last_b->next;
            if (a->child->prev != last_a || b->child->prev != last_b) return false;
        }
        if (a->next && a->next->prev != a) return false;
        if (b->next && b->next->prev != b) return false;
    }
    return !a && !b;
}

enum { JPARSE_DIFF_SAME, JPARSE_DIFF_GAVE_UP, JPARSE_DIFF_DIFFERENT };

/* text: n bytes with a NUL after them (the parsers read it). jparse parses a copy, which
 * it changes (strings stay in it); when it gives up, the copy must be the text again, since
 * the worker then hands it to cJSON. The copy is exactly n + 1 bytes, so that ASan sees a
 * read past it. */
static int jparse_diff(const char *text, size_t n) {
    const char *end;
    cJSON *expected = convert_parse_json(text, n, &end);
    char *copy = malloc(n + 1);
    if (!copy) abort();
    memcpy(copy, text, n + 1);
    jparse_tree *tree;
    cJSON *got = jparse(copy, n, &tree);
    /* a tree also says the whole text is valid UTF-8: the worker checks nothing else */
    int answer = !got ? (memcmp(copy, text, n + 1) == 0 ? JPARSE_DIFF_GAVE_UP : JPARSE_DIFF_DIFFERENT)
                 : expected && jparse_diff_same(expected, got) && buf_utf8_invalid_at(text, n) == n ? JPARSE_DIFF_SAME
                                                                                                    : JPARSE_DIFF_DIFFERENT;
    cJSON_Delete(expected);
    jparse_free(tree);
    free(copy);
    return answer;
}

#endif
