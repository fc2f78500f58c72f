/* hash.h - the hashes of assay, in one place.
 *
 * Two kinds. The output contracts: values that leave the process or decide what it
 * computes, so that changing them changes results or invalidates what users stored. They
 * are frozen (tests/unit/test_hash.c pins known values):
 *   - hash_trace_seed: math.random's seed for an evaluation (a trace id and step), so that a
 *     plugin's random numbers depend on the trace only;
 *   - hash_sample, hash_shard: where a trace id falls for --sample and --shard;
 *   - hash_cache_key: the key of an HTTP request in the LLM answer cache (.assay/cache.db).
 * hash_trace_seed and hash_cache_key start from 1469598103934665603, a digit short of
 * FNV-1a's offset basis (14695981039346656037): a slip made early and now part of both
 * contracts; HASH_SHORT_BASIS names it.
 * And internal hashes (a run's fingerprint in its journal, the digest's key hash): FNV-1a
 * with the real basis, free to change with a version of their file format.
 * Not here: assay.text's token hash (sandbox/text.h), keyed per process on purpose.
 */
#ifndef ASSAY_HASH_H
#define ASSAY_HASH_H

#include <stddef.h>
#include <stdint.h>

#define HASH_FNV_BASIS 14695981039346656037ull
#define HASH_SHORT_BASIS 1469598103934665603ull /* see the top of this file */
#define HASH_FNV_PRIME 1099511628211ull

/* FNV-1a over len bytes, continuing from h (start with a basis). */
static inline uint64_t hash_fnv1a(uint64_t h, const void *data, size_t len) {
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) h = (h ^ p[i]) * HASH_FNV_PRIME;
    return h;
}

/* FNV-1a over a NUL-terminated string. */
static inline uint64_t hash_fnv1a_cstr(uint64_t h, const char *s) {
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) h = (h ^ *p) * HASH_FNV_PRIME;
    return h;
}

/* splitmix64: the next number of a stream seeded by *state. The bootstrap and resampling
 * intervals of compare, calibrate and pairwise draw from it with fixed seeds, so that an
 * interval is the same every time it is computed. */
static inline uint64_t hash_splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* MurmurHash3's 64-bit finaliser: every output bit depends on every input bit. */
static inline uint64_t hash_mix(uint64_t h) {
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 33);
}

/* The output contracts (hash.c). */
uint64_t hash_trace_seed(const char *trace_id, long step);
double hash_sample(const char *trace_id, uint64_t seed);
/* The shard in [0, count) a trace id belongs to for --shard I/N. */
unsigned hash_shard(const char *trace_id, unsigned count);
/* 32 hex digits and a NUL into out. */
void hash_cache_key(const void *request, size_t len, char out[33]);

#endif
