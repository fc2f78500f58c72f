/* The hashes that are output contracts (host/base/hash.h), frozen: a change here changes
 * which traces --sample picks, the random numbers plugins draw, and misses every answer
 * in users' LLM caches. The expected values were computed apart from this code, by a
 * ten-line Python FNV-1a (checked on the published vectors below) and MurmurHash3's
 * finaliser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "../../host/base/hash.h"

static void test_fnv1a_matches_the_published_vectors(void **state) {
    (void)state;
    assert_true(hash_fnv1a(HASH_FNV_BASIS, "", 0) == 0xcbf29ce484222325ull);
    assert_true(hash_fnv1a(HASH_FNV_BASIS, "a", 1) == 0xaf63dc4c8601ec8cull);
    assert_true(hash_fnv1a_cstr(HASH_FNV_BASIS, "foobar") == 0x85944171f73967e8ull);
}

static void test_trace_seed_is_frozen(void **state) {
    (void)state;
    assert_true(hash_trace_seed("dr-00000", -1) == 0x44562e4d77d1c068ull); /* trace scope */
    assert_true(hash_trace_seed("dr-00000", 2) == 0x9ef043610a0eb457ull);  /* step 2 */
    assert_true(hash_trace_seed("", -1) == 0x14650fb0739d0383ull);
}

static void test_sample_position_is_frozen(void **state) {
    (void)state;
    assert_true(hash_sample("dr-00000", 0) == 0.06361693679545588);
    assert_true(hash_sample("dr-00001", 7) == 0.3159728233058021);
}

/* Expected values from a Python rendering of the definition in assay.h (FNV-1a 64 of
 * "shard:ID", fmix64, floor(N x top 53 bits as a fraction)). */
static void test_shard_is_frozen(void **state) {
    (void)state;
    static const unsigned expected[8] = {0, 2, 1, 0, 0, 1, 1, 3};
    for (unsigned k = 0; k < 8; k++) {
        char id[16];
        snprintf(id, sizeof id, "dr-%05u", k);
        assert_int_equal(hash_shard(id, 4), expected[k]);
    }
    assert_int_equal(hash_shard("dr-00001", 7), 4);
    assert_int_equal(hash_shard("x", 65536), 22591);
    assert_int_equal(hash_shard("anything", 1), 0);
}

static void test_cache_key_is_frozen(void **state) {
    (void)state;
    char key[33];
    const char *request = "POST /chat/completions {}";
    hash_cache_key(request, strlen(request), key);
    assert_string_equal(key, "cfa276a32f20b53e1576c09ec9fa2140");
    hash_cache_key("", 0, key);
    assert_string_equal(key, "14650fb0739d038384222325cbf29ce4");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fnv1a_matches_the_published_vectors),
        cmocka_unit_test(test_trace_seed_is_frozen),
        cmocka_unit_test(test_sample_position_is_frozen),
        cmocka_unit_test(test_shard_is_frozen),
        cmocka_unit_test(test_cache_key_is_frozen),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
