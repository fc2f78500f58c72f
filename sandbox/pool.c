/* pool.c - a small-block allocator for one Lua state.
 *
 * Evaluating a trace allocates and frees a few hundred small objects per plugin (tables,
 * strings, closures) in bursts: the collector frees a trace's objects together, more than
 * glibc's per-thread cache holds (7 blocks of a size), so most blocks went through malloc's
 * slow path. Here blocks up to 912 bytes are cut from 64 KiB chunks and freed blocks wait on
 * a list per 16-byte class for the next allocation of that class (912: a text.Set's
 * userdata is 904 bytes, and the evaluators make about 35 a trace; taking them from
 * malloc was 1.3% of what a trace cost). A state is used by one
 * thread at a time, so nothing is locked; chunks are returned when the state closes. Larger
 * blocks go to malloc. Under AddressSanitizer every block goes to malloc, so that the
 * sanitizer still sees each Lua object on its own.
 */
#include "pool.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define POOL_CHUNK (64u << 10)
#define POOL_GRAIN 16u
#define POOL_MAX (POOL_CLASSES * POOL_GRAIN)

#if defined(__SANITIZE_ADDRESS__)
#define POOL_DISABLED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define POOL_DISABLED 1
#endif
#endif
#ifndef POOL_DISABLED
#define POOL_DISABLED 0
#endif

static size_t class_of(size_t size) { return (size - 1) / POOL_GRAIN; }

bool pool_is_small(size_t size) { return !POOL_DISABLED && size > 0 && size <= POOL_MAX; }

static void *small_alloc(pool *p, size_t size) {
    size_t c = class_of(size);
    void *block = p->free[c];
    if (block) {
        memcpy(&p->free[c], block, sizeof(void *));
        return block;
    }
    size_t bytes = (c + 1) * POOL_GRAIN;
    if (p->left < bytes) {
        /* freed blocks stay in their class, so the chunks, not the live blocks, are what a
         * state costs: a plugin that frees 32 MiB of one size and allocates another would
         * otherwise grow past any cap */
        if (p->chunk_limit && p->chunk_bytes + POOL_CHUNK > p->chunk_limit) return NULL;
        char *chunk = malloc(POOL_CHUNK);
        if (!chunk) return NULL;
        memcpy(chunk, &p->chunks, sizeof(void *));
        p->chunks = chunk;
        p->chunk_bytes += POOL_CHUNK;
        p->next = chunk + POOL_GRAIN; /* the link word, padded to keep blocks aligned */
        p->left = POOL_CHUNK - POOL_GRAIN;
    }
    block = p->next;
    p->next += bytes;
    p->left -= bytes;
    return block;
}

void pool_free(pool *p, void *ptr, size_t size) {
    if (!ptr) return;
    if (POOL_DISABLED || size > POOL_MAX) {
        free(ptr);
        return;
    }
    size_t c = class_of(size);
    memcpy(ptr, &p->free[c], sizeof(void *));
    p->free[c] = ptr;
}

void *pool_realloc(pool *p, void *ptr, size_t old_size, size_t new_size) {
    if (POOL_DISABLED) return realloc(ptr, new_size);
    bool old_small = ptr && old_size <= POOL_MAX, new_small = new_size <= POOL_MAX;
    if (ptr && !old_small && !new_small) return realloc(ptr, new_size);
    if (old_small && new_small && class_of(old_size) == class_of(new_size)) return ptr;
    void *q = new_small ? small_alloc(p, new_size) : malloc(new_size);
    if (!q) return NULL;
    if (ptr) {
        memcpy(q, ptr, old_size < new_size ? old_size : new_size);
        pool_free(p, ptr, old_size);
    }
    return q;
}

void pool_destroy(pool *p) {
    while (p->chunks) {
        void *next;
        memcpy(&next, p->chunks, sizeof(void *));
        free(p->chunks);
        p->chunks = next;
    }
    memset(p, 0, sizeof *p);
}
