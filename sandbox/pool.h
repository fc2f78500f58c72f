/* pool.h - a small-block allocator for one Lua state; see pool.c. */
#ifndef ASSAY_POOL_H
#define ASSAY_POOL_H

#include <stdbool.h>
#include <stddef.h>

#define POOL_CLASSES 57 /* blocks of 16, 32, ... 912 bytes */

typedef struct pool {
    void *free[POOL_CLASSES]; /* free blocks of each class, linked through their first word */
    char *next;               /* unused space of the newest chunk */
    size_t left;
    void *chunks;             /* every chunk, linked through its first word */
    size_t chunk_bytes;       /* what the chunks hold: freed blocks stay in them */
    size_t chunk_limit;       /* a new chunk is refused past this many bytes; 0 = none */
} pool;

/* Is a block of this size cut from chunks (true) or left to malloc? */
bool pool_is_small(size_t size);

/* pool_realloc has realloc's contract, with the old size given (0 for a new block). */
void *pool_realloc(pool *p, void *ptr, size_t old_size, size_t new_size);
void pool_free(pool *p, void *ptr, size_t size);
void pool_destroy(pool *p); /* every block at once */

#endif
