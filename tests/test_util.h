/* Helpers shared by the cmocka tests. Include after <cmocka.h>'s prerequisites. */
#ifndef SAE_TEST_UTIL_H
#define SAE_TEST_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <sae/sae.h>

/* cmocka 1.1.5 has no assert_double_equal: compare with |a-b| <= tol, print both. */
#define assert_close(a, b, tol)                                                              \
    do {                                                                                     \
        double sae_a_ = (double)(a), sae_b_ = (double)(b), sae_t_ = (double)(tol);           \
        if (!(sae_a_ - sae_b_ <= sae_t_ && sae_b_ - sae_a_ <= sae_t_))                        \
            fail_msg("%s = %.9g, %s = %.9g, tolerance %.3g", #a, sae_a_, #b, sae_b_, sae_t_); \
    } while (0)

/* Status check that prints the code and its text on failure. */
#define assert_ok(expr)                                                                      \
    do {                                                                                     \
        int32_t sae_st_ = (expr);                                                            \
        if (sae_st_ != SAE_OK)                                                               \
            fail_msg("%s returned %d (%s)", #expr, (int)sae_st_, sae_status_str(sae_st_));   \
    } while (0)

#define assert_status(expr, want)                                                            \
    do {                                                                                     \
        int32_t sae_st_ = (expr);                                                            \
        if (sae_st_ != (want))                                                               \
            fail_msg("%s returned %d (%s), expected %d", #expr, (int)sae_st_,                \
                     sae_status_str(sae_st_), (int)(want));                                  \
    } while (0)

/* A counting allocator that can fail the n-th allocation (fail_at = 0: never). */
typedef struct test_alloc {
    int64_t calls, live, fail_at;
} test_alloc;
sae_allocator test_alloc_hook(test_alloc *state);

/* Configuration helpers: create a config of kind and set "name=value" pairs; fails the test
 * on error. Values are read as double: write 32.0, not 32. Pairs end with NULL. */
sae_config *test_config(int32_t kind, ...);

/* 1 when SAE_TEST_SCALE=small: long training tests then run a reduced version (fewer
 * steps and seeds, weaker but real assertions) so they fit under valgrind. */
int test_small_scale(void);

#endif
