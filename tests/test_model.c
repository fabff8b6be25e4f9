/* Model handle through the public API: creation, tensors and their layouts, encode and
 * decode against hand-written forward passes, clone, reference counting, argument checks. */
#include "test_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { D = 6, L = 10, N = 5 };

static sae_model *model_of(double arch, double tied, double pre_bias)
{
    sae_config *c = test_config(SAE_KIND_MODEL, "d_in", (double)D, "n_latents", (double)L, "arch",
                                arch, "tied", tied, "pre_bias", pre_bias, "k", 3.0, "model_seed",
                                4.0, "init_transpose", 0.0, NULL);
    if (arch == SAE_ARCH_MATRYOSHKA) {
        int64_t w[2] = {4, L};
        assert_ok(sae_config_set_i64_array(c, SAE_MODEL_MATRYOSHKA_WIDTHS, w, 2));
    }
    sae_model *m = NULL;
    assert_ok(sae_model_create(&m, c, NULL));
    sae_config_free(c);
    return m;
}

static void fill(float *a, int64_t n, unsigned seed, double lo, double hi)
{
    srand(seed);
    for (int64_t i = 0; i < n; i++)
        a[i] = (float)(lo + (hi - lo) * rand() / (double)RAND_MAX);
}

static void test_create_and_config(void **state)
{
    (void)state;
    sae_model *m = model_of(SAE_ARCH_RELU, 0, 1);
    int64_t d, l, v;
    double f;
    assert_ok(sae_model_dims(m, &d, &l));
    assert_int_equal(d, D);
    assert_int_equal(l, L);
    assert_ok(sae_model_get_i64(m, SAE_MODEL_ARCH, &v));
    assert_int_equal(v, SAE_ARCH_RELU);
    assert_ok(sae_model_get_f64(m, SAE_MODEL_DECODER_INIT_NORM, &f));
    assert_close(f, 1.0, 0);
    assert_status(sae_model_get_i64(m, SAE_MODEL_DECODER_INIT_NORM, &v), SAE_E_TYPE);
    assert_status(sae_model_get_i64(m, 12345, &v), SAE_E_UNKNOWN_KEY);
    /* decoder rows start at unit norm; encoder independent (init_transpose = 0) */
    float w[L * D], e[D * L];
    assert_ok(sae_model_get_tensor(m, SAE_TENSOR_W_DEC, w, D));
    assert_ok(sae_model_get_tensor(m, SAE_TENSOR_W_ENC, e, L));
    for (int j = 0; j < L; j++) {
        double s = 0;
        for (int i = 0; i < D; i++)
            s += (double)w[j * D + i] * w[j * D + i];
        assert_close(s, 1.0, 1e-6);
    }
    assert_true(e[0] != w[0]);
    sae_model_free(m);
    /* invalid configurations */
    sae_config *c = test_config(SAE_KIND_MODEL, "arch", (double)SAE_ARCH_MATRYOSHKA, NULL);
    assert_status(sae_model_create(&m, c, NULL), SAE_E_CONFIG);
    int64_t bad[2] = {40, 30};
    assert_ok(sae_config_set_i64_array(c, SAE_MODEL_MATRYOSHKA_WIDTHS, bad, 2));
    assert_status(sae_model_create(&m, c, NULL), SAE_E_CONFIG);
    sae_config_free(c);
    c = test_config(SAE_KIND_MODEL, "arch", (double)SAE_ARCH_TOPK, "k", 65.0, NULL);
    assert_status(sae_model_create(&m, c, NULL), SAE_E_CONFIG);
    sae_config_free(c);
    c = test_config(SAE_KIND_TOY, NULL);
    assert_status(sae_model_create(&m, c, NULL), SAE_E_CONFIG);
    sae_config_free(c);
    assert_status(sae_model_create(NULL, c, NULL), SAE_E_NULL);
    sae_model_free(NULL);
}

static void test_init_is_deterministic_and_transpose(void **state)
{
    (void)state;
    sae_config *c = test_config(SAE_KIND_MODEL, "d_in", (double)D, "n_latents", (double)L,
                                "model_seed", 9.0, NULL);
    sae_model *a = NULL, *b = NULL;
    assert_ok(sae_model_create(&a, c, NULL));
    assert_ok(sae_model_create(&b, c, NULL));
    float wa[L * D], wb[L * D], e[D * L];
    assert_ok(sae_model_get_tensor(a, SAE_TENSOR_W_DEC, wa, D));
    assert_ok(sae_model_get_tensor(b, SAE_TENSOR_W_DEC, wb, D));
    assert_memory_equal(wa, wb, sizeof wa);
    assert_ok(sae_model_get_tensor(a, SAE_TENSOR_W_ENC, e, L));
    for (int j = 0; j < L; j++)
        for (int i = 0; i < D; i++)
            assert_true(e[i * L + j] == wa[j * D + i]); /* encoder = decoder^T */
    sae_model_free(a);
    sae_model_free(b);
    sae_config_free(c);
}

/* Hand-written forward pass of each architecture in double. */
static void forward_ref(double arch, const float *we, const float *be, const float *wd,
                        const float *bd, const float *th, const float *rm, const float *bm,
                        int pre_bias, const float *x, double *z, double *xh)
{
    for (int r = 0; r < N; r++) {
        double s[L];
        for (int j = 0; j < L; j++) {
            double a = 0;
            for (int i = 0; i < D; i++)
                a += ((double)x[r * D + i] - (pre_bias ? bd[i] : 0.0)) * we[i * L + j];
            s[j] = a;
        }
        for (int j = 0; j < L; j++) {
            double p = s[j] + be[j], v = p > 0 ? p : 0;
            if (arch == SAE_ARCH_JUMPRELU)
                v = p > th[j] ? p : 0;
            if (arch == SAE_ARCH_GATED) {
                double mag = exp(rm[j]) * s[j] + bm[j];
                v = p > 0 && mag > 0 ? mag : 0;
            }
            z[r * L + j] = v;
        }
        if (arch == SAE_ARCH_TOPK) {
            double keep[L];
            for (int j = 0; j < L; j++) {
                int better = 0;
                for (int q = 0; q < L; q++)
                    better += z[r * L + q] > z[r * L + j] || (z[r * L + q] == z[r * L + j] && q < j);
                keep[j] = better < 3 ? z[r * L + j] : 0;
            }
            memcpy(z + r * L, keep, sizeof keep);
        }
        for (int i = 0; i < D; i++) {
            double a = bd[i];
            for (int j = 0; j < L; j++)
                a += z[r * L + j] * wd[j * D + i];
            xh[r * D + i] = a;
        }
    }
}

static void check_forward(double arch, double tied, int pre_bias)
{
    sae_model *m = model_of(arch, tied, pre_bias);
    float we[D * L], be[L], wd[L * D], bd[D], th[L], rm[L], bm[L], x[N * D];
    fill(be, L, 1, -0.2, 0.2);
    fill(bd, D, 2, -0.3, 0.3);
    fill(th, L, 3, 0.0, 0.3);
    fill(rm, L, 4, -0.5, 0.5);
    fill(bm, L, 5, -0.2, 0.2);
    fill(x, N * D, 6, -1, 1);
    assert_ok(sae_model_set_tensor(m, SAE_TENSOR_B_ENC, be, L));
    assert_ok(sae_model_set_tensor(m, SAE_TENSOR_B_DEC, bd, D));
    if (arch == SAE_ARCH_JUMPRELU)
        assert_ok(sae_model_set_tensor(m, SAE_TENSOR_THRESHOLD, th, L));
    if (arch == SAE_ARCH_GATED) {
        assert_ok(sae_model_set_tensor(m, SAE_TENSOR_R_MAG, rm, L));
        assert_ok(sae_model_set_tensor(m, SAE_TENSOR_B_MAG, bm, L));
    }
    assert_ok(sae_model_get_tensor(m, SAE_TENSOR_W_ENC, we, L));
    assert_ok(sae_model_get_tensor(m, SAE_TENSOR_W_DEC, wd, D));
    double zr[N * L], xr[N * D];
    forward_ref(arch, we, be, wd, bd, th, rm, bm, pre_bias, x, zr, xr);
    float z[N * (L + 3)], xh[N * (D + 2)];
    assert_ok(sae_model_encode(m, x, N, D, z, L + 3));
    assert_ok(sae_model_decode(m, z, N, L + 3, xh, D + 2));
    for (int r = 0; r < N; r++) {
        for (int j = 0; j < L; j++)
            assert_close(z[r * (L + 3) + j], zr[r * L + j], 1e-5);
        for (int i = 0; i < D; i++)
            assert_close(xh[r * (D + 2) + i], xr[r * D + i], 1e-5);
    }
    sae_model_free(m);
}

static void test_encode_decode_match_reference(void **state)
{
    (void)state;
    const double archs[] = {SAE_ARCH_RELU, SAE_ARCH_TOPK, SAE_ARCH_JUMPRELU, SAE_ARCH_GATED};
    for (int a = 0; a < 4; a++)
        for (int tied = 0; tied <= 1; tied++)
            for (int pb = 0; pb <= 1; pb++)
                check_forward(archs[a], tied, pb);
}

/* An untrained BatchTopK model selects k x n activations over the batch. */
static void test_batchtopk_untrained_encode(void **state)
{
    (void)state;
    sae_model *m = model_of(SAE_ARCH_BATCHTOPK, 0, 1);
    float x[N * D], z[N * L];
    fill(x, N * D, 8, -1, 1);
    assert_ok(sae_model_encode(m, x, N, D, z, L));
    int nnz = 0;
    for (int e = 0; e < N * L; e++)
        nnz += z[e] != 0.0f;
    assert_true(nnz <= 3 * N);
    assert_true(nnz > 0);
    float th[L];
    assert_ok(sae_model_get_tensor(m, SAE_TENSOR_THRESHOLD, th, L));
    assert_close(th[0], 0.0, 0);
    assert_status(sae_model_set_tensor(m, SAE_TENSOR_THRESHOLD, th, L), SAE_E_NOT_SUPPORTED);
    sae_model_free(m);
}

static void test_tied_shares_one_tensor(void **state)
{
    (void)state;
    sae_model *m = model_of(SAE_ARCH_RELU, 1, 1);
    float we[D * L], wd[L * D];
    fill(we, D * L, 11, -1, 1);
    assert_ok(sae_model_set_tensor(m, SAE_TENSOR_W_ENC, we, L));
    assert_ok(sae_model_get_tensor(m, SAE_TENSOR_W_DEC, wd, D));
    for (int j = 0; j < L; j++)
        for (int i = 0; i < D; i++)
            assert_true(wd[j * D + i] == we[i * L + j]);
    sae_model_free(m);
}

static void test_clone_and_refcount(void **state)
{
    (void)state;
    test_alloc counts = {0, 0, 0};
    sae_allocator al = test_alloc_hook(&counts);
    sae_config *c = test_config(SAE_KIND_MODEL, "d_in", (double)D, "n_latents", (double)L, NULL);
    sae_model *m = NULL, *k = NULL;
    assert_ok(sae_model_create(&m, c, &al));
    assert_ok(sae_model_clone(&k, m));
    float a[L * D], b[L * D], zero[D] = {0};
    assert_ok(sae_model_get_tensor(m, SAE_TENSOR_W_DEC, a, D));
    assert_ok(sae_model_get_tensor(k, SAE_TENSOR_W_DEC, b, D));
    assert_memory_equal(a, b, sizeof a);
    fill(zero, D, 3, 1, 2);
    assert_ok(sae_model_set_tensor(k, SAE_TENSOR_B_DEC, zero, D)); /* independent copy */
    assert_ok(sae_model_get_tensor(m, SAE_TENSOR_B_DEC, a, D));
    assert_close(a[0], 0.0, 0);
    sae_config *tc = test_config(SAE_KIND_TRAINER, "batch_size", 4.0, NULL);
    sae_trainer *t = NULL;
    assert_ok(sae_trainer_create(&t, m, tc, &al));
    sae_model_free(m); /* the trainer keeps it alive */
    float x[4 * D];
    fill(x, 4 * D, 12, 0, 1);
    assert_ok(sae_trainer_step(t, x, 4, D));
    int64_t dd = 0;
    assert_ok(sae_model_dims(sae_trainer_model(t), &dd, NULL));
    assert_int_equal(dd, D);
    sae_trainer_free(t);
    sae_model_free(k);
    assert_int_equal(counts.live, 0);
    sae_config_free(c);
    sae_config_free(tc);
}

static void test_argument_checks(void **state)
{
    (void)state;
    sae_model *m = model_of(SAE_ARCH_RELU, 0, 1);
    float x[N * D] = {0}, z[N * L], big[L * D];
    int64_t r, c;
    assert_status(sae_model_encode(NULL, x, N, D, z, L), SAE_E_NULL);
    assert_status(sae_model_encode(m, NULL, N, D, z, L), SAE_E_NULL);
    assert_status(sae_model_encode(m, x, 0, D, z, L), SAE_E_SIZE);
    assert_status(sae_model_encode(m, x, N, D - 1, z, L), SAE_E_SIZE);
    assert_status(sae_model_encode(m, x, N, D, z, L - 1), SAE_E_SIZE);
    assert_status(sae_model_encode(m, x, -1, D, z, L), SAE_E_SIZE);
    x[3] = NAN;
    assert_status(sae_model_encode(m, x, N, D, z, L), SAE_E_NONFINITE);
    assert_true(strlen(sae_model_errmsg(m)) > 0);
    assert_status(sae_model_decode(m, z, N, L, NULL, D), SAE_E_NULL);
    assert_status(sae_model_tensor_shape(m, 99, &r, &c), SAE_E_UNKNOWN_KEY);
    assert_status(sae_model_tensor_shape(m, SAE_TENSOR_THRESHOLD, &r, &c), SAE_E_NOT_SUPPORTED);
    assert_ok(sae_model_tensor_shape(m, SAE_TENSOR_W_ENC, &r, &c));
    assert_int_equal(r, D);
    assert_int_equal(c, L);
    assert_status(sae_model_get_tensor(m, SAE_TENSOR_W_DEC, big, D - 1), SAE_E_SIZE);
    fill(big, L * D, 1, 0, 1);
    big[7] = INFINITY;
    float before[L * D];
    assert_ok(sae_model_get_tensor(m, SAE_TENSOR_W_DEC, before, D));
    assert_status(sae_model_set_tensor(m, SAE_TENSOR_W_DEC, big, D), SAE_E_NONFINITE);
    float after[L * D];
    assert_ok(sae_model_get_tensor(m, SAE_TENSOR_W_DEC, after, D));
    assert_memory_equal(before, after, sizeof before); /* unchanged by the failed call */
    sae_model_free(m);
    m = model_of(SAE_ARCH_JUMPRELU, 0, 1);
    float th[L];
    fill(th, L, 2, 0, 1);
    th[2] = -0.1f;
    assert_status(sae_model_set_tensor(m, SAE_TENSOR_THRESHOLD, th, L), SAE_E_RANGE);
    assert_status(sae_model_clone(NULL, m), SAE_E_NULL);
    sae_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_and_config),
        cmocka_unit_test(test_init_is_deterministic_and_transpose),
        cmocka_unit_test(test_encode_decode_match_reference),
        cmocka_unit_test(test_batchtopk_untrained_encode),
        cmocka_unit_test(test_tied_shares_one_tensor),
        cmocka_unit_test(test_clone_and_refcount),
        cmocka_unit_test(test_argument_checks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
