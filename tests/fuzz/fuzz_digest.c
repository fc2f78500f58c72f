/* fuzz_digest.c - libFuzzer target for the run store's trace digest (host/cli/cli_digest.c),
 * differential against cJSON, the parser whose tree the plugins see: for every input that
 * cJSON accepts as an object, the digest must succeed and be JSON; its metadata must be
 * the object cJSON's last "metadata" member holds, each key once (or null); and its step
 * types must be, entry for entry, the last "type" string of each step object of the last
 * "steps" array. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "../../host/cli/cli.h"

static const cJSON *last_member(const cJSON *object, const char *key) {
    const cJSON *found = NULL;
    for (const cJSON *c = object->child; c; c = c->next)
        if (c->string && strcmp(c->string, key) == 0) found = c;
    return found;
}

/* Removes every member that a later one of the same name shadows, at every depth: the
 * tree as plugins see it (cJSON_Compare would match each name with its first member). */
static void keep_last(cJSON *item) {
    for (cJSON *c = item->child; c;) {
        cJSON *next = c->next;
        bool is_shadowed = false;
        if (cJSON_IsObject(item))
            for (const cJSON *later = next; later && !is_shadowed; later = later->next)
                is_shadowed = c->string && later->string && strcmp(c->string, later->string) == 0;
        if (is_shadowed) cJSON_Delete(cJSON_DetachItemViaPointer(item, c));
        else keep_last(c);
        c = next;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *text = (const char *)data;
    cJSON *trace = cJSON_ParseWithLengthOpts(text, size, NULL, 0);
    if (!cJSON_IsObject(trace) || memchr(text, '\0', size)) {
        cJSON_Delete(trace);
        return 0;
    }
    buf out;
    buf_init(&out);
    if (!digest_trace(text, size, &out)) abort(); /* cJSON took it: so must the digest */
    cJSON *digest = cJSON_ParseWithLength(out.data, out.len);
    if (!digest) abort();
    cJSON *metadata = (cJSON *)last_member(trace, "metadata");
    cJSON *digest_metadata = cJSON_GetObjectItemCaseSensitive(digest, "metadata");
    if (cJSON_IsObject(metadata)) keep_last(metadata);
    if (cJSON_IsObject(digest_metadata)) {
        /* the digest itself keeps each top-level key once */
        for (const cJSON *c = digest_metadata->child; c; c = c->next)
            for (const cJSON *later = c->next; later; later = later->next)
                if (strcmp(c->string, later->string) == 0) abort();
        keep_last(digest_metadata);
    }
    if (cJSON_IsObject(metadata)) { /* printed, so that numbers beyond a double compare equal */
        char *want = cJSON_PrintUnformatted(metadata), *got = cJSON_PrintUnformatted(digest_metadata);
        if (!want || !got || strcmp(want, got) != 0) abort();
        free(want);
        free(got);
    } else if (!cJSON_IsNull(digest_metadata)) {
        abort();
    }
    const cJSON *steps = last_member(trace, "steps");
    const cJSON *types = cJSON_GetObjectItemCaseSensitive(digest, "step_types");
    if (!cJSON_IsArray(types)) abort();
    int n = cJSON_IsArray(steps) ? cJSON_GetArraySize(steps) : 0;
    if (cJSON_GetArraySize(types) != n) abort();
    for (int i = 0; i < n; i++) {
        const cJSON *step = cJSON_GetArrayItem(steps, i);
        const cJSON *type = cJSON_IsObject(step) ? last_member(step, "type") : NULL;
        const cJSON *got = cJSON_GetArrayItem(types, i);
        if (cJSON_IsString(type) ? !cJSON_IsString(got) || strcmp(type->valuestring, got->valuestring) != 0
                                 : !cJSON_IsNull(got))
            abort();
    }
    cJSON_Delete(digest);
    cJSON_Delete(trace);
    buf_free(&out);
    return 0;
}
