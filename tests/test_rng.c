/* Philox4x32-10 against the Random123 known-answer vectors, and the distributions. */
#include "test_util.h"

#include <math.h>

#include "rng/rng.h"

static void test_philox_kat(void **state)
{
    (void)state;
    /* Random123 kat_vectors, philox4x32 with 10 rounds: (counter, key) -> output */
    static const uint32_t kat[3][10] = {
        {0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
        {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff,
         0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
        {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0,
         0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1},
    };
    for (int t = 0; t < 3; t++) {
        uint32_t out[4];
        sae_philox4x32_10(kat[t], kat[t] + 4, out);
        for (int w = 0; w < 4; w++)
            assert_int_equal(out[w], kat[t][6 + w]);
    }
}

static void test_streams_are_pure(void **state)
{
    (void)state;
    sae_rng a, b;
    sae_rng_init(&a, 7, 123, SAE_STREAM_FIRING);
    for (int i = 0; i < 5; i++)
        (void)sae_rng_u32(&a);
    uint32_t x = sae_rng_u32(&a);
    sae_rng_init(&b, 7, 123, SAE_STREAM_FIRING);
    for (int i = 0; i < 5; i++)
        (void)sae_rng_u32(&b);
    assert_int_equal(x, sae_rng_u32(&b));
    sae_rng_init(&b, 7, 124, SAE_STREAM_FIRING);
    sae_rng_init(&a, 7, 123, SAE_STREAM_FIRING);
    assert_int_not_equal(sae_rng_u32(&a), sae_rng_u32(&b));
}

static void test_distributions(void **state)
{
    (void)state;
    const int n = 200000;
    double su = 0, su2 = 0, sn = 0, sn2 = 0, se = 0;
    int64_t counts[7] = {0};
    sae_rng r;
    sae_rng_init(&r, 42, 0, SAE_STREAM_EXTRA);
    for (int i = 0; i < n; i++) {
        double u = sae_rng_uniform(&r);
        assert_true(u >= 0.0 && u < 1.0);
        float uf = sae_rng_uniformf(&r);
        assert_true(uf >= 0.0f && uf < 1.0f);
        su += u, su2 += u * u;
        double z = sae_rng_normal(&r);
        sn += z, sn2 += z * z;
        se += sae_rng_exponential(&r);
        counts[sae_rng_below(&r, 7)]++;
    }
    /* tolerances are ~5 standard errors */
    assert_close(su / n, 0.5, 5 * 0.2887 / sqrt(n));
    assert_close(su2 / n - (su / n) * (su / n), 1.0 / 12, 0.002);
    assert_close(sn / n, 0.0, 5.0 / sqrt(n));
    assert_close(sn2 / n, 1.0, 5 * sqrt(2.0 / n));
    assert_close(se / n, 1.0, 5.0 / sqrt(n));
    for (int k = 0; k < 7; k++)
        assert_close((double)counts[k] / n, 1.0 / 7, 5 * sqrt((1.0 / 7) * (6.0 / 7) / n));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_philox_kat),
        cmocka_unit_test(test_streams_are_pure),
        cmocka_unit_test(test_distributions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
