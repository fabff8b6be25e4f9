/* Toy generator, foundation slice: independent Bernoulli firing, uniform magnitudes,
 * Gaussian dictionary; reproducibility and argument validation. */
#include "test_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static sae_toy *make_toy(sae_config *c)
{
    sae_toy *t = NULL;
    char msg[256];
    if (sae_config_validate(c, msg, sizeof msg) != SAE_OK)
        fail_msg("invalid config: %s", msg);
    assert_ok(sae_toy_create(&t, c, NULL));
    return t;
}

/* Per-feature probabilities spanning three decades; uniform magnitudes in [0.5, 2). */
static sae_config *rates_config(int64_t n)
{
    sae_config *c = test_config(SAE_KIND_TOY, "n_features", (double)n, "d", 8.0, "seed", 7.0,
                                "mag_lo", 0.5, "mag_hi", 2.0, NULL);
    double *p = malloc((size_t)n * sizeof *p);
    for (int64_t j = 0; j < n; j++)
        p[j] = j == 0 ? 1.0 : j == 1 ? 0.0 : 0.002 * pow(1.5, (double)(j % 14));
    assert_ok(sae_config_set_f64_array(c, SAE_TOY_FIRE_PROBS, p, n));
    free(p);
    return c;
}

static void test_rates_and_magnitudes(void **state)
{
    (void)state;
    const int64_t n = 24, rows = 40000;
    sae_config *c = rates_config(n);
    sae_toy *t = make_toy(c);
    double p[24];
    assert_ok(sae_toy_fire_probs(t, p, n));
    int64_t *row_ptr = malloc((size_t)(rows + 1) * sizeof *row_ptr), needed = 0;
    assert_ok(sae_toy_sample_codes(t, 0, rows, NULL, 0, row_ptr, NULL, NULL, 0, &needed) ==
                      SAE_E_BUFFER_TOO_SMALL
                  ? SAE_OK
                  : SAE_E_INTERNAL);
    int32_t *f = malloc((size_t)needed * sizeof *f);
    float *m = malloc((size_t)needed * sizeof *m);
    assert_ok(sae_toy_sample_codes(t, 0, rows, NULL, 0, row_ptr, f, m, needed, &needed));
    int64_t count[24] = {0};
    double msum = 0, mmin = 1e9, mmax = -1e9;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t a = row_ptr[r]; a < row_ptr[r + 1]; a++) {
            assert_true(f[a] >= 0 && f[a] < n);
            if (a > row_ptr[r])
                assert_true(f[a] > f[a - 1]); /* ascending, no repeats */
            count[f[a]]++;
            msum += m[a];
            mmin = fmin(mmin, m[a]);
            mmax = fmax(mmax, m[a]);
        }
    for (int64_t j = 0; j < n; j++) {
        double sd = sqrt(p[j] * (1 - p[j]) / (double)rows);
        assert_close((double)count[j] / (double)rows, p[j], 5 * sd + 1e-12);
    }
    assert_int_equal(count[0], rows);
    assert_int_equal(count[1], 0);
    /* uniform(0.5, 2): mean 1.25, sd 1.5/sqrt(12) */
    double mean_sd = 1.5 / sqrt(12.0) / sqrt((double)needed);
    assert_close(msum / (double)needed, 1.25, 5 * mean_sd);
    assert_true(mmin >= 0.5 && mmax < 2.0);
    free(row_ptr);
    free(f);
    free(m);
    sae_toy_free(t);
    sae_config_free(c);
}

/* The constant-probability path (a single bucket) with a small p: rate within 5 sigma. */
static void test_constant_rate(void **state)
{
    (void)state;
    sae_config *c = test_config(SAE_KIND_TOY, "n_features", 1000.0, "d", 4.0, "fire_prob", 0.004,
                                "seed", 3.0, NULL);
    sae_toy *t = make_toy(c);
    const int64_t rows = 5000;
    int64_t *row_ptr = malloc((size_t)(rows + 1) * sizeof *row_ptr), needed;
    int32_t *f = malloc(100000 * sizeof *f);
    float *m = malloc(100000 * sizeof *m);
    assert_ok(sae_toy_sample_codes(t, 0, rows, NULL, 0, row_ptr, f, m, 100000, &needed));
    double expect = 0.004 * 1000 * rows, sd = sqrt(expect * (1 - 0.004));
    assert_close((double)needed, expect, 5 * sd);
    free(row_ptr);
    free(f);
    free(m);
    sae_toy_free(t);
    sae_config_free(c);
}

/* Probabilities near the bottom of double precision (subnormal) neither crash the
 * geometric skipping nor fire. */
static void test_tiny_probabilities(void **state)
{
    (void)state;
    double p[6] = {5e-324, 1e-320, 1e-300, 1e-30, 0, 1};
    sae_config *c = test_config(SAE_KIND_TOY, "n_features", 6.0, "d", 3.0, NULL);
    assert_ok(sae_config_set_f64_array(c, SAE_TOY_FIRE_PROBS, p, 6));
    sae_toy *t = make_toy(c);
    int64_t ptr[2001], needed;
    int32_t f[4000];
    float m[4000];
    assert_ok(sae_toy_sample_codes(t, 0, 2000, NULL, 0, ptr, f, m, 4000, &needed));
    assert_int_equal(needed, 2000);
    for (int64_t a = 0; a < needed; a++)
        assert_int_equal(f[a], 5);
    sae_toy_free(t);
    sae_config_free(c);
}

static void test_x_is_sum_of_codes(void **state)
{
    (void)state;
    sae_config *c = test_config(SAE_KIND_TOY, "n_features", 64.0, "d", 16.0, "fire_prob", 0.1,
                                "seed", 11.0, NULL);
    sae_toy *t = make_toy(c);
    float dict[64 * 16], x[200 * 20];
    assert_ok(sae_toy_dictionary(t, dict, 16));
    for (int j = 0; j < 64; j++) {
        double nrm = 0;
        for (int k = 0; k < 16; k++)
            nrm += (double)dict[j * 16 + k] * dict[j * 16 + k];
        assert_close(nrm, 1.0, 1e-5);
    }
    int64_t row_ptr[201], needed;
    int32_t f[4000];
    float m[4000];
    assert_ok(sae_toy_sample_codes(t, 5, 200, x, 20, row_ptr, f, m, 4000, &needed));
    for (int r = 0; r < 200; r++)
        for (int k = 0; k < 16; k++) {
            double want = 0;
            for (int64_t a = row_ptr[r]; a < row_ptr[r + 1]; a++)
                want += (double)m[a] * dict[f[a] * 16 + k];
            assert_close(x[r * 20 + k], want, 1e-5);
        }
    sae_toy_free(t);
    sae_config_free(c);
}

/* The compose loop has vector versions picked at load time (AVX2, AVX-512 on x86-64);
 * all must give the bits of the plain float loop with the library's order of additions:
 * x = 0, then per group of four rows s = x; s += m0 v0; s += m1 v1; ...; x = s. */
static void test_compose_bits(void **state)
{
    (void)state;
    enum { N = 300, D = 77, R = 50 };
    sae_config *c = test_config(SAE_KIND_TOY, "n_features", (double)N, "d", (double)D, "fire_prob",
                                0.03, "mag_lo", 0.1, "mag_hi", 3.0, "seed", 21.0, NULL);
    sae_toy *t = make_toy(c);
    float *dict = malloc(N * D * sizeof *dict), *x = malloc(R * D * sizeof *x), want[D];
    int64_t ptr[R + 1], nnz;
    int32_t f[R * N];
    float m[R * N];
    assert_ok(sae_toy_dictionary(t, dict, D));
    assert_ok(sae_toy_sample_codes(t, 0, R, x, D, ptr, f, m, R * N, &nnz));
    assert_true(nnz > 4 * R);
    for (int r = 0; r < R; r++) {
        const int32_t *fr = f + ptr[r];
        const float *mr = m + ptr[r];
        int64_t k = ptr[r + 1] - ptr[r], a = 0;
        for (int col = 0; col < D; col++)
            want[col] = 0.0f;
        for (; a + 4 <= k; a += 4)
            for (int col = 0; col < D; col++) {
                float sum = want[col];
                for (int q = 0; q < 4; q++) {
                    float p = mr[a + q] * dict[fr[a + q] * D + col];
                    sum += p;
                }
                want[col] = sum;
            }
        for (; a < k; a++)
            for (int col = 0; col < D; col++) {
                float p = mr[a] * dict[fr[a] * D + col];
                want[col] += p;
            }
        assert_memory_equal(want, x + r * D, sizeof want);
    }
    free(dict);
    free(x);
    sae_toy_free(t);
    sae_config_free(c);
}

/* Rows first..first+n-1 computed in one call must equal the same rows computed in
 * pieces of 1, 7 and 64 from arbitrary start indices. */
static void check_split(sae_toy *t, int64_t d, const float *ref, const int64_t *ref_ptr,
                        const int32_t *ref_f, const float *ref_m, int64_t piece, uint64_t start)
{
    float *x = malloc((size_t)(piece * d) * sizeof *x);
    int64_t *rp = malloc((size_t)(piece + 1) * sizeof *rp), needed;
    int32_t *f = malloc(100000 * sizeof *f);
    float *m = malloc(100000 * sizeof *m);
    for (uint64_t first = start; first + (uint64_t)piece <= 1000; first += (uint64_t)piece * 3 + 1) {
        assert_ok(sae_toy_sample(t, first, piece, x, d));
        assert_memory_equal(x, ref + first * (uint64_t)d, (size_t)(piece * d) * sizeof *x);
        memset(x, 0, (size_t)(piece * d) * sizeof *x);
        assert_ok(sae_toy_sample_codes(t, first, piece, x, d, rp, f, m, 100000, &needed));
        assert_memory_equal(x, ref + first * (uint64_t)d, (size_t)(piece * d) * sizeof *x);
        int64_t base = ref_ptr[first];
        assert_int_equal(needed, ref_ptr[first + (uint64_t)piece] - base);
        for (int64_t r = 0; r <= piece; r++)
            assert_int_equal(rp[r], ref_ptr[first + (uint64_t)r] - base);
        assert_memory_equal(f, ref_f + base, (size_t)needed * sizeof *f);
        assert_memory_equal(m, ref_m + base, (size_t)needed * sizeof *m);
    }
    free(x);
    free(rp);
    free(f);
    free(m);
}

static void test_batch_split(void **state)
{
    (void)state;
    sae_config *c = rates_config(300);
    assert_ok(sae_config_set_i64(c, SAE_TOY_D, 12));
    sae_toy *t = make_toy(c);
    const int64_t d = 12, rows = 1000;
    float *ref = malloc((size_t)(rows * d) * sizeof *ref);
    float *ref2 = malloc((size_t)(rows * d) * sizeof *ref2);
    int64_t *rp = malloc((size_t)(rows + 1) * sizeof *rp), needed;
    int32_t *f = malloc(200000 * sizeof *f);
    float *m = malloc(200000 * sizeof *m);
    assert_ok(sae_toy_sample(t, 0, rows, ref, d));
    assert_ok(sae_toy_sample_codes(t, 0, rows, ref2, d, rp, f, m, 200000, &needed));
    assert_memory_equal(ref, ref2, (size_t)(rows * d) * sizeof *ref);
    check_split(t, d, ref, rp, f, m, 1, 3);
    check_split(t, d, ref, rp, f, m, 7, 0);
    check_split(t, d, ref, rp, f, m, 7, 500);
    check_split(t, d, ref, rp, f, m, 64, 17);
    /* a clone and a fresh handle from the same config draw the same rows */
    sae_toy *cl = NULL, *t2 = make_toy(c);
    assert_ok(sae_toy_clone(&cl, t));
    assert_ok(sae_toy_sample(cl, 0, rows, ref2, d));
    assert_memory_equal(ref, ref2, (size_t)(rows * d) * sizeof *ref);
    sae_toy_free(t);
    assert_ok(sae_toy_sample(t2, 0, rows, ref2, d));
    assert_memory_equal(ref, ref2, (size_t)(rows * d) * sizeof *ref);
    /* another seed draws other rows */
    assert_ok(sae_config_set_i64(c, SAE_TOY_SEED, 8));
    sae_toy *t3 = make_toy(c);
    assert_ok(sae_toy_sample(t3, 0, rows, ref2, d));
    assert_memory_not_equal(ref, ref2, (size_t)(rows * d) * sizeof *ref);
    free(ref);
    free(ref2);
    free(rp);
    free(f);
    free(m);
    sae_toy_free(cl);
    sae_toy_free(t2);
    sae_toy_free(t3);
    sae_config_free(c);
}

static void test_arguments(void **state)
{
    (void)state;
    sae_config *c = test_config(SAE_KIND_TOY, "n_features", 10.0, "d", 4.0, "fire_prob", 0.5, NULL);
    sae_toy *t = make_toy(c), *out = NULL;
    float x[40], dict[40];
    double p[10];
    int64_t rp[11], needed = -1, nf, d;
    int32_t f[1];
    float m[1];
    assert_status(sae_toy_create(NULL, c, NULL), SAE_E_NULL);
    assert_status(sae_toy_create(&out, NULL, NULL), SAE_E_NULL);
    sae_config *mc = test_config(SAE_KIND_MODEL, NULL);
    assert_status(sae_toy_create(&out, mc, NULL), SAE_E_CONFIG);
    assert_null(out);
    sae_config_free(mc);
    assert_status(sae_toy_clone(NULL, t), SAE_E_NULL);
    assert_status(sae_toy_clone(&out, NULL), SAE_E_NULL);
    sae_toy_free(NULL);
    assert_non_null(sae_toy_errmsg(NULL));
    assert_status(sae_toy_dims(NULL, &nf, &d), SAE_E_NULL);
    assert_status(sae_toy_dims(t, NULL, NULL), SAE_E_NULL);
    assert_ok(sae_toy_dims(t, &nf, &d));
    assert_int_equal(nf, 10);
    assert_int_equal(d, 4);

    assert_status(sae_toy_sample(NULL, 0, 10, x, 4), SAE_E_NULL);
    assert_status(sae_toy_sample(t, 0, 10, NULL, 4), SAE_E_NULL);
    assert_status(sae_toy_sample(t, 0, 0, x, 4), SAE_E_SIZE);
    assert_status(sae_toy_sample(t, 0, -1, x, 4), SAE_E_SIZE);
    assert_status(sae_toy_sample(t, 0, 10, x, 3), SAE_E_SIZE);
    assert_non_null(strstr(sae_toy_errmsg(t), "leading dimension"));
    assert_status(sae_toy_sample(t, UINT64_MAX - 3, 10, x, 4), SAE_E_SIZE);
    assert_status(sae_toy_sample(t, 0, INT64_MAX, x, 4), SAE_E_SIZE);
    assert_ok(sae_toy_sample(t, UINT64_MAX - 9, 10, x, 4));

    assert_status(sae_toy_sample_codes(NULL, 0, 10, x, 4, rp, f, m, 1, &needed), SAE_E_NULL);
    assert_status(sae_toy_sample_codes(t, 0, 10, x, 4, NULL, f, m, 1, &needed), SAE_E_NULL);
    assert_status(sae_toy_sample_codes(t, 0, 10, x, 4, rp, NULL, m, 1, &needed), SAE_E_NULL);
    assert_status(sae_toy_sample_codes(t, 0, 10, x, 4, rp, f, NULL, 1, &needed), SAE_E_NULL);
    assert_status(sae_toy_sample_codes(t, 0, 10, x, 4, rp, f, m, -1, &needed), SAE_E_SIZE);
    assert_status(sae_toy_sample_codes(t, 0, 10, x, 2, rp, f, m, 1, &needed), SAE_E_SIZE);
    assert_status(sae_toy_sample_codes(t, 0, 0, x, 4, rp, f, m, 1, &needed), SAE_E_SIZE);
    /* short cap: the needed size comes back and nothing is written */
    memset(rp, 0x5a, sizeof rp);
    int64_t before = rp[3];
    assert_status(sae_toy_sample_codes(t, 0, 10, x, 4, rp, f, m, 1, &needed),
                  SAE_E_BUFFER_TOO_SMALL);
    assert_true(needed > 1); /* 10 features at p = 0.5 over 10 rows */
    assert_int_equal(rp[3], before);
    assert_non_null(strstr(sae_toy_errmsg(t), "cap"));

    assert_status(sae_toy_dictionary(NULL, dict, 4), SAE_E_NULL);
    assert_status(sae_toy_dictionary(t, NULL, 4), SAE_E_NULL);
    assert_status(sae_toy_dictionary(t, dict, 3), SAE_E_SIZE);
    assert_status(sae_toy_fire_probs(NULL, p, 10), SAE_E_NULL);
    assert_status(sae_toy_fire_probs(t, NULL, 10), SAE_E_NULL);
    assert_status(sae_toy_fire_probs(t, p, 9), SAE_E_BUFFER_TOO_SMALL);
    assert_ok(sae_toy_fire_probs(t, p, 10));
    assert_close(p[3], 0.5, 0);
    sae_toy_free(t);
    sae_config_free(c);
}

static void test_invalid_configs(void **state)
{
    (void)state;
    sae_toy *t = NULL;
    char msg[256];
    sae_config *c = test_config(SAE_KIND_TOY, "n_features", 10.0, "mag_lo", 0.8, "mag_hi", 0.5, NULL);
    assert_status(sae_config_validate(c, msg, sizeof msg), SAE_E_CONFIG);
    assert_non_null(strstr(msg, "mag_lo"));
    assert_status(sae_toy_create(&t, c, NULL), SAE_E_CONFIG);
    assert_null(t);
    sae_config_free(c);
    c = test_config(SAE_KIND_TOY, "n_features", 10.0, NULL);
    double p[3] = {0.1, 0.2, 0.3};
    assert_ok(sae_config_set_f64_array(c, SAE_TOY_FIRE_PROBS, p, 3));
    assert_status(sae_config_validate(c, msg, sizeof msg), SAE_E_CONFIG);
    assert_non_null(strstr(msg, "fire_probs"));
    p[0] = 1.5;
    assert_status(sae_config_set_f64_array(c, SAE_TOY_FIRE_PROBS, p, 3), SAE_E_RANGE);
    p[0] = NAN;
    assert_status(sae_config_set_f64_array(c, SAE_TOY_FIRE_PROBS, p, 3), SAE_E_NONFINITE);
    assert_status(sae_config_set_f64(c, SAE_TOY_FIRE_PROB, NAN), SAE_E_NONFINITE);
    assert_status(sae_config_set_f64(c, SAE_TOY_FIRE_PROB, -0.1), SAE_E_RANGE);
    sae_config_free(c);
    c = test_config(SAE_KIND_TOY, "n_features", 16777216.0, "d", 1048576.0, NULL);
    assert_status(sae_config_validate(c, msg, sizeof msg), SAE_E_CONFIG);
    assert_non_null(strstr(msg, "n_features"));
    sae_config_free(c);
}

/* Every allocation failure during creation returns SAE_E_NOMEM and leaks nothing. */
static void test_allocation_failures(void **state)
{
    (void)state;
    sae_config *c = test_config(SAE_KIND_TOY, "n_features", 20.0, "d", 5.0, NULL);
    for (int64_t k = 1; k < 100; k++) {
        test_alloc ta = {0, 0, k};
        sae_allocator a = test_alloc_hook(&ta);
        sae_toy *t = NULL;
        int32_t st = sae_toy_create(&t, c, &a);
        if (st == SAE_OK) {
            float x[5 * 8];
            int32_t s2 = sae_toy_sample(t, 0, 8, x, 5);
            assert_true(s2 == SAE_OK || s2 == SAE_E_NOMEM);
            sae_toy_free(t);
            assert_int_equal(ta.live, 0);
            if (ta.calls < k)
                break; /* every allocation point has been failed once */
            continue;
        }
        assert_int_equal(st, SAE_E_NOMEM);
        assert_null(t);
        assert_int_equal(ta.live, 0);
    }
    sae_config_free(c);
}

/* Allocation failures inside sampling calls: SAE_E_NOMEM, nothing written, no leak. */
static void test_sampling_allocation_failures(void **state)
{
    (void)state;
    sae_config *c = test_config(SAE_KIND_TOY, "n_features", 50.0, "d", 5.0, "fire_prob", 0.2,
                                "toy_threads", 3.0, NULL);
    test_alloc ta = {0, 0, 0};
    sae_allocator a = test_alloc_hook(&ta);
    sae_toy *t = NULL;
    assert_ok(sae_toy_create(&t, c, &a));
    int64_t live = ta.live, ptr[65], needed;
    int32_t f[2000];
    float m[2000], x[64 * 5];
    int failures = 0;
    for (int64_t k = 1; k < 200; k++) {
        ta.fail_at = ta.calls + k;
        int32_t st1 = sae_toy_sample_codes(t, 0, 64, x, 5, ptr, f, m, 2000, &needed);
        ta.fail_at = ta.calls + k;
        int32_t st2 = sae_toy_sample(t, 0, 64, x, 5);
        assert_true(st1 == SAE_OK || st1 == SAE_E_NOMEM);
        assert_true(st2 == SAE_OK || st2 == SAE_E_NOMEM);
        failures += (st1 != SAE_OK) + (st2 != SAE_OK);
        assert_int_equal(ta.live, live);
        if (st1 == SAE_OK && st2 == SAE_OK)
            break;
    }
    assert_true(failures > 0);
    ta.fail_at = 0;
    sae_toy_free(t);
    assert_int_equal(ta.live, 0);
    sae_config_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rates_and_magnitudes),
        cmocka_unit_test(test_constant_rate),
        cmocka_unit_test(test_tiny_probabilities),
        cmocka_unit_test(test_x_is_sum_of_codes),
        cmocka_unit_test(test_compose_bits),
        cmocka_unit_test(test_batch_split),
        cmocka_unit_test(test_arguments),
        cmocka_unit_test(test_invalid_configs),
        cmocka_unit_test(test_allocation_failures),
        cmocka_unit_test(test_sampling_allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
