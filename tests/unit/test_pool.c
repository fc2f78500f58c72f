/* Unit tests of the Lua states' small-block allocator (sandbox/pool.c): contents survive
 * every move between size classes and to and from malloc, freed blocks are reused, and
 * pool_destroy returns everything (the ASan build checks that nothing leaks). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "../../sandbox/pool.h"

static void fill(unsigned char *p, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++) p[i] = (unsigned char)(seed + i * 7);
}

static void assert_filled(const unsigned char *p, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++) assert_int_equal(p[i], (unsigned char)(seed + i * 7));
}

/* Grows one block through every class and past the small limit, then shrinks it back. */
static void test_realloc_keeps_contents(void **state) {
    (void)state;
    pool p = {0};
    size_t sizes[] = {1, 15, 16, 17, 100, 256, 257, 911, 912, 913, 4000, 904, 300, 200, 8, 3};
    unsigned char *b = NULL;
    size_t old = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        b = pool_realloc(&p, b, old, sizes[i]);
        assert_non_null(b);
        size_t kept = old < sizes[i] ? old : sizes[i];
        assert_filled(b, kept, 40);
        fill(b, sizes[i], 40);
        old = sizes[i];
    }
    pool_free(&p, b, old);
    pool_destroy(&p);
    assert_null(p.chunks);
}

/* Many live blocks of mixed sizes do not overlap: each keeps its own pattern. */
static void test_blocks_do_not_overlap(void **state) {
    (void)state;
    pool p = {0};
    enum { N = 5000 };
    unsigned char *blocks[N];
    for (unsigned i = 0; i < N; i++) {
        size_t n = 1 + (i * 37) % 300;
        blocks[i] = pool_realloc(&p, NULL, 0, n);
        assert_non_null(blocks[i]);
        assert_int_equal((uintptr_t)blocks[i] % 16, 0);
        fill(blocks[i], n, i);
    }
    for (unsigned i = 0; i < N; i += 2) pool_free(&p, blocks[i], 1 + (i * 37) % 300);
    for (unsigned i = 1; i < N; i += 2) assert_filled(blocks[i], 1 + (i * 37) % 300, i);
    for (unsigned i = 1; i < N; i += 2) pool_free(&p, blocks[i], 1 + (i * 37) % 300);
    pool_destroy(&p);
}

/* A freed block is the next one of its class handed out (not under ASan, where every block
 * is malloc's so that the sanitizer sees each one). */
static void test_freed_block_is_reused(void **state) {
    (void)state;
#if defined(__SANITIZE_ADDRESS__)
    skip();
#else
    pool p = {0};
    void *a = pool_realloc(&p, NULL, 0, 40);
    void *b = pool_realloc(&p, NULL, 0, 40);
    assert_ptr_not_equal(a, b);
    pool_free(&p, a, 40);
    assert_ptr_equal(pool_realloc(&p, NULL, 0, 33), a); /* 33..48 bytes: the same class */
    assert_ptr_equal(pool_realloc(&p, b, 40, 48), b);   /* within its class: stays in place */
    pool_destroy(&p);
#endif
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_realloc_keeps_contents),
        cmocka_unit_test(test_blocks_do_not_overlap),
        cmocka_unit_test(test_freed_block_is_reused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
