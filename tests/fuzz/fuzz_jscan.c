/* fuzz_jscan.c - libFuzzer target for the id scan (host/base/jscan.c) against the parser it
 * stands in for: whenever the scan names an id, convert_parse_json (cJSON, as a worker
 * calls it) must parse the text into an object whose last "id" member is that string. A
 * scan that said "id" where the parser refuses would drop an input error from every shard;
 * one that named another id would put the trace in the wrong shard. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "../../host/base/jscan.h"
#include "../../sandbox/sandbox.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    const char *id;
    size_t id_len;
    if (jscan_object_id((const char *)data, n, &id, &id_len) != JSCAN_ID) return 0;
    char *text = malloc(n + 1); /* the parser reads the terminating NUL */
    if (!text) return 0;
    memcpy(text, data, n);
    text[n] = '\0';
    const char *end;
    cJSON *root = convert_parse_json(text, n, &end);
    if (!cJSON_IsObject(root)) abort(); /* the scan took a text the parser refuses */
    const cJSON *last = NULL;
    for (const cJSON *m = root->child; m; m = m->next)
        if (strcmp(m->string, "id") == 0) last = m;
    if (!cJSON_IsString(last) || strlen(last->valuestring) != id_len ||
        memcmp(last->valuestring, text + (id - (const char *)data), id_len) != 0)
        abort(); /* the scan named another id than the parser's */
    cJSON_Delete(root);
    free(text);
    return 0;
}
