/* hash.c - the hashes that are output contracts; see hash.h. */
#include "hash.h"

#include <stdio.h>

uint64_t hash_trace_seed(const char *trace_id, long step) {
    uint64_t h = hash_fnv1a_cstr(HASH_SHORT_BASIS, trace_id);
    return h ^ (uint64_t)(step + 1) * 0x9E3779B97F4A7C15u;
}

double hash_sample(const char *trace_id, uint64_t seed) {
    char prefix[24];
    int n = snprintf(prefix, sizeof prefix, "%llu:", (unsigned long long)seed);
    uint64_t h = hash_fnv1a(HASH_FNV_BASIS, prefix, (size_t)n);
    /* FNV's last bytes barely reach its top bits (ids that differ in their last digit would
     * land together): the finaliser mixes them in */
    h = hash_mix(hash_fnv1a_cstr(h, trace_id));
    return (double)(h >> 11) * 0x1p-53;
}

/* hash_sample's construction keyed by the text "shard" instead of a seed, so that which
 * traces a sample picks does not depend on the shard (each shard holds its share of the
 * sample) whatever the sample's seed. */
unsigned hash_shard(const char *trace_id, unsigned count) {
    uint64_t h = hash_mix(hash_fnv1a_cstr(hash_fnv1a_cstr(HASH_FNV_BASIS, "shard:"), trace_id));
    unsigned shard = (unsigned)((double)(h >> 11) * 0x1p-53 * count);
    return shard < count ? shard : count - 1;
}

void hash_cache_key(const void *request, size_t len, char out[33]) {
    uint64_t a = hash_fnv1a(HASH_SHORT_BASIS, request, len);
    uint64_t b = hash_fnv1a(0x84222325cbf29ce4ull ^ len, request, len);
    snprintf(out, 33, "%016llx%016llx", (unsigned long long)a, (unsigned long long)b);
}
