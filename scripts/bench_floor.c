/* bench_floor.c - the floor of `make bench`: read JSONL lines and parse each with cJSON,
 * nothing else. Scoring cannot be faster than this; assay's -j 1 is measured against it.
 *   usage: bench_floor FILE   (prints the number of objects parsed) */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>

#include <cjson/cJSON.h>

int main(int argc, char **argv) {
    FILE *f = argc == 2 ? fopen(argv[1], "rb") : NULL;
    if (!f) {
        fprintf(stderr, "usage: %s FILE\n", argv[0]);
        return 2;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    unsigned long objects = 0;
    while ((n = getline(&line, &cap, f)) > 0) {
        cJSON *v = cJSON_ParseWithLength(line, (size_t)n);
        objects += cJSON_IsObject(v);
        cJSON_Delete(v);
    }
    free(line);
    fclose(f);
    printf("%lu\n", objects);
    return 0;
}
