/* Blocked products (lib/linalg/gemm.c): the blocks depend on the shape only, so every
 * thread count gives the same bits, for the products alone and for whole trainer steps at
 * sizes where the products are split. ctest runs this with OPENBLAS_NUM_THREADS=1, the
 * setting under which libsae splits (with a threaded BLAS nothing is split and the
 * products-alone cases still hold trivially). */
#include "test_util.h"

#include "linalg/linalg.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static float *random_matrix(int64_t n, uint32_t seed)
{
    float *a = malloc((size_t)n * sizeof *a);
    assert_non_null(a);
    for (int64_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        a[i] = (float)(seed >> 8) / 16777216.0f - 0.5f;
    }
    return a;
}

/* Only the shape decides the blocks; small products are never split. The products of the
 * small kernel are split as under a one-thread BLAS, whatever the BLAS's threads. */
static void test_block_depends_on_shape_only(void **state)
{
    (void)state;
    assert_int_equal(sae_gemm_block(0, 64, 48, 64), 64);
    if (sae_gemm_small_available()) { /* 4.2 M multiply-adds: 2 blocks */
        assert_int_equal(sae_gemm_block(0, 300, 70, 200), 160);
        /* a narrow weight gradient (tiny shapes, batch 4096): blocks of 32 rows, since the
         * small kernel packs nothing of A */
        assert_int_equal(sae_gemm_block(0, 128, 32, 4096), 32);
        assert_int_equal(sae_gemm_block(0, 32, 128, 1024), 64); /* 2 blocks, by columns */
    }
    if (sae_blas_threads() != 1) {
        print_message("BLAS threads %d: BLAS products are not split\n", sae_blas_threads());
        assert_int_equal(sae_gemm_block(1, 256, 4096, 256), 4096);
        assert_int_equal(sae_gemm_block(0, 4096, 256, 256), 4096);
        return;
    }
    assert_int_equal(sae_gemm_block(1, 256, 4096, 256), 512);  /* medium encoder, by columns */
    assert_int_equal(sae_gemm_block(0, 4096, 256, 256), 512);  /* decoder gradient, by rows */
    assert_int_equal(sae_gemm_block(0, 300, 70, 200), 160);    /* 4.2 M multiply-adds: 2 blocks */
    assert_int_equal(sae_gemm_block(0, 256, 256, 4096), 128);  /* medium decoder: 2 blocks */
    assert_int_equal(sae_gemm_block(0, 200, 200, 100000), 200); /* too narrow to split */
}

typedef struct shape {
    int ta, tb;
    int64_t m, n, k;
    int row0;
} shape;

static void test_blocked_same_bits_for_any_thread_count(void **state)
{
    (void)state;
    const shape shapes[] = {
        {0, 1, 256, 1024, 128, 1}, {0, 0, 300, 70, 200, 1}, {1, 0, 1000, 64, 96, 0},
        {0, 1, 70, 300, 200, 0},   {1, 1, 333, 517, 64, 0}, {0, 0, 5, 7, 3, 1},
        {1, 0, 128, 32, 4096, 0}, /* a narrow weight gradient: blocks of 32 rows */
    };
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const shape *p = &shapes[s];
        int64_t lda = p->ta ? p->m : p->k, ldb = p->tb ? p->k : p->n, ldc = p->n + 3;
        float *a = random_matrix(p->m * p->k, 1u + (uint32_t)s);
        float *b = random_matrix(p->k * p->n, 100u + (uint32_t)s);
        float *row0 = random_matrix(p->n, 7u);
        float *c[4];
        for (int t = 0; t < 4; t++) {
            c[t] = random_matrix(p->m * ldc, 9u); /* beta = 0.5 reads it */
            assert_ok(sae_gemm_blocked(t + 1, p->ta, p->tb, p->m, p->n, p->k, 1.5f, a, lda, b,
                                       ldb, 0.5f, c[t], ldc, p->row0 ? row0 : NULL));
        }
        for (int t = 1; t < 4; t++)
            if (memcmp(c[0], c[t], (size_t)(p->m * ldc) * sizeof(float)) != 0)
                fail_msg("shape %zu: 1 and %d threads differ", s, t + 1);
        float *init = random_matrix(p->m * ldc, 9u);
        for (int64_t i = 0; i < p->m; i++)
            for (int64_t j = 0; j < p->n; j++) {
                double sum = 0.0;
                for (int64_t q = 0; q < p->k; q++) {
                    double av = p->ta ? a[q * lda + i] : a[i * lda + q];
                    double bv = p->tb ? b[j * ldb + q] : b[q * ldb + j];
                    sum += av * bv;
                }
                double want = 1.5 * sum + (p->row0 ? row0[j] : 0.5 * init[i * ldc + j]);
                assert_close(c[0][i * ldc + j], want, 1e-4 * (double)p->k);
            }
        for (int t = 0; t < 4; t++)
            free(c[t]);
        free(init);
        free(a);
        free(b);
        free(row0);
    }
}

/* The small kernel (lib/linalg/gemm_small.c) against a double-precision sum, every
 * transposition, shapes with partial tiles (m % 8, n % 16, n < 16, n % 32) and padded
 * leading dimensions; its vector tiles give the same bits as its portable tiles, and a
 * product continued in two chained parts the bits of one. */
static void check_small(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha, float beta)
{
    int64_t lda = (ta ? m : k) + 2, ldb = (tb ? k : n) + 1, ldc = n + 5;
    float *a = random_matrix((ta ? k : m) * lda + 1, 11u), *b = random_matrix((tb ? n : k) * ldb + 1, 12u);
    float *c0 = random_matrix(m * ldc, 13u), *cv = random_matrix(m * ldc, 13u);
    float *cp = random_matrix(m * ldc, 13u);
    if (beta == 0.0f) /* beta 0: C is not read, even NaN */
        for (int64_t i = 0; i < m * ldc; i++)
            cv[i] = cp[i] = NAN;
    sae_gemm_small(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, cv, ldc, NULL, 0);
    sae_gemm_small(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, cp, ldc, NULL, 1);
    for (int64_t i = 0; i < m; i++) {
        for (int64_t j = 0; j < n; j++) {
            double sum = 0.0;
            for (int64_t q = 0; q < k; q++)
                sum += (double)(ta ? a[q * lda + i] : a[i * lda + q]) *
                       (double)(tb ? b[j * ldb + q] : b[q * ldb + j]);
            double want = alpha * sum + (beta != 0.0f ? beta * (double)c0[i * ldc + j] : 0.0);
            assert_close(cp[i * ldc + j], want, 1e-5 * (double)(k + 1));
        }
        for (int64_t j = n; j < ldc; j++) /* the padding of C is left alone */
            assert_true(memcmp(&cv[i * ldc + j], beta == 0.0f ? &cp[i * ldc + j] : &c0[i * ldc + j],
                               sizeof(float)) == 0);
    }
    if (sae_gemm_small_available() && memcmp(cv, cp, (size_t)(m * ldc) * sizeof(float)) != 0)
        fail_msg("ta %d tb %d %lld x %lld x %lld: vector and portable tiles differ", ta, tb,
                 (long long)m, (long long)n, (long long)k);
    /* row0: the bits of C's rows set to row0 with beta = 1, C not read */
    float *row0 = random_matrix(n, 14u);
    for (int portable = 0; portable < 2; portable++) {
        for (int64_t i = 0; i < m; i++) {
            memcpy(cp + i * ldc, row0, (size_t)n * sizeof(float));
            for (int64_t j = 0; j < n; j++)
                cv[i * ldc + j] = NAN;
        }
        sae_gemm_small(ta, tb, m, n, k, alpha, a, lda, b, ldb, 1.0f, cp, ldc, NULL, portable);
        sae_gemm_small(ta, tb, m, n, k, alpha, a, lda, b, ldb, 0.0f, cv, ldc, row0, portable);
        for (int64_t i = 0; i < m; i++)
            if (memcmp(cv + i * ldc, cp + i * ldc, (size_t)n * sizeof(float)) != 0)
                fail_msg("ta %d tb %d %lld x %lld x %lld: row0 differs from beta 1 (portable %d)",
                         ta, tb, (long long)m, (long long)n, (long long)k, portable);
    }
    free(row0);
    /* chain: C = 0, then k1 and k - k1 rows of B continuing the chains, is one product over
     * k with beta 0, bit for bit */
    for (int portable = 0; portable < 2 && !tb && alpha == 1.0f; portable++) {
        int64_t k1 = k / 3;
        for (int64_t i = 0; i < m * ldc; i++)
            cp[i] = 0.0f, cv[i] = NAN;
        sae_gemm_small(ta, 0, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, cv, ldc, NULL, portable);
        sae_gemm_small_chain(ta, m, n, k1, a, lda, b, ldb, cp, ldc, portable);
        sae_gemm_small_chain(ta, m, n, k - k1, ta ? a + k1 * lda : a + k1, lda, b + k1 * ldb,
                             ldb, cp, ldc, portable);
        for (int64_t i = 0; i < m; i++)
            if (memcmp(cv + i * ldc, cp + i * ldc, (size_t)n * sizeof(float)) != 0)
                fail_msg("ta %d %lld x %lld x %lld: chained halves differ from one product "
                         "(portable %d)", ta, (long long)m, (long long)n, (long long)k, portable);
    }
    free(a);
    free(b);
    free(c0);
    free(cv);
    free(cp);
}

static void test_small_kernel(void **state)
{
    (void)state;
    if (!sae_gemm_small_available())
        print_message("no AVX-512F: the portable tiles only\n");
    const int64_t dims[][3] = {{1, 1, 1}, {8, 32, 16}, {13, 7, 5}, {9, 17, 33}, {31, 45, 64},
                               {64, 96, 128}, {3, 130, 1}, {20, 16, 0}};
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
            for (size_t s = 0; s < sizeof dims / sizeof dims[0]; s++) {
                check_small(ta, tb, dims[s][0], dims[s][1], dims[s][2], 1.0f, 0.0f);
                check_small(ta, tb, dims[s][0], dims[s][1], dims[s][2], -0.75f, 1.0f);
            }
    /* the policy: B^T is repacked on the stack only up to k = 128; large products go to
     * the BLAS */
    int have = sae_gemm_small_available();
    assert_int_equal(sae_gemm_small_fits(1, 1024, 128, 32), have);
    assert_int_equal(sae_gemm_small_fits(0, 128, 32, 1024), have);
    assert_int_equal(sae_gemm_small_fits(1, 64, 64, 129), 0);
    assert_int_equal(sae_gemm_small_fits(0, 64, 64, 129), have);
    assert_int_equal(sae_gemm_small_fits(0, 4096, 4096, 256), 0);
}

/* Parameters after a few steps at a size whose products are split (d 128, 1024 latents,
 * batch 512 in blocks of 200 rows, the last partial: with threads the batch selection of
 * BatchTopK and Matryoshka keeps two blocks in flight): the same bits for 1, 2 and 3
 * trainer threads, every architecture. */
static void train_and_snapshot(const sae_toy *toy, int64_t arch, int64_t threads, int64_t steps,
                               float *w_dec, float *w_enc)
{
    sae_config *mc = test_config(SAE_KIND_MODEL, "d_in", 128.0, "n_latents", 1024.0, "arch",
                                 (double)arch, "k", 8.0, "model_seed", 3.0, NULL);
    if (arch == SAE_ARCH_MATRYOSHKA) {
        int64_t w[2] = {256, 1024};
        assert_ok(sae_config_set_i64_array(mc, SAE_MODEL_MATRYOSHKA_WIDTHS, w, 2));
    }
    sae_config *rc = test_config(SAE_KIND_TRAINER, "batch_size", 512.0, "lr", 1e-3,
                                 "l1_coefficient", 0.01, "n_threads", (double)threads,
                                 /* the step's own work: threads for the step, and its ReLU
                                  * blocks of 200 rows fused on the calling thread */
                                 "thread_min_work", 512.0 * 1024.0 * 128.0,
                                 "dead_steps", 2.0, "chunk_rows", 200.0, NULL);
    sae_model *m = NULL;
    assert_ok(sae_model_create(&m, mc, NULL));
    sae_trainer *t = NULL;
    assert_ok(sae_trainer_create(&t, m, rc, NULL));
    sae_config_free(mc);
    sae_config_free(rc);
    assert_ok(sae_trainer_train_toy(t, toy, steps));
    int64_t rows, cols;
    assert_ok(sae_model_tensor_shape(m, SAE_TENSOR_W_ENC, &rows, &cols));
    assert_int_equal(rows * cols, 1024 * 128);
    assert_ok(sae_model_get_tensor(m, SAE_TENSOR_W_DEC, w_dec, 128));
    assert_ok(sae_model_get_tensor(m, SAE_TENSOR_W_ENC, w_enc, cols));
    sae_trainer_free(t);
    sae_model_free(m);
}

static void test_trainer_threads_same_bits_when_split(void **state)
{
    (void)state;
    const int64_t archs[] = {SAE_ARCH_RELU, SAE_ARCH_JUMPRELU, SAE_ARCH_GATED, SAE_ARCH_TOPK,
                             SAE_ARCH_BATCHTOPK, SAE_ARCH_MATRYOSHKA};
    size_t count = 1024 * 128;
    float *dec[3], *enc[3];
    for (int i = 0; i < 3; i++) {
        dec[i] = malloc(count * sizeof(float));
        enc[i] = malloc(count * sizeof(float));
        assert_true(dec[i] != NULL && enc[i] != NULL);
    }
    sae_config *tc = test_config(SAE_KIND_TOY, "n_features", 256.0, "d", 128.0, "fire_prob",
                                 0.02, NULL);
    sae_toy *toy = NULL;
    assert_ok(sae_toy_create(&toy, tc, NULL));
    sae_config_free(tc);
    /* SAE_TEST_SCALE=small (valgrind): one dense and one batch architecture, 1 and 2
     * threads, one step */
    int small = test_small_scale();
    size_t n_archs = small ? 2 : sizeof archs / sizeof archs[0];
    int n_counts = small ? 2 : 3;
    int64_t steps = small ? 1 : 3;
    for (size_t a = 0; a < n_archs; a++) {
        int64_t arch = small ? archs[a == 0 ? 0 : 4] : archs[a];
        for (int i = 0; i < n_counts; i++)
            train_and_snapshot(toy, arch, i + 1, steps, dec[i], enc[i]);
        for (int i = 1; i < n_counts; i++)
            if (memcmp(dec[0], dec[i], count * sizeof(float)) != 0 ||
                memcmp(enc[0], enc[i], count * sizeof(float)) != 0)
                fail_msg("arch %lld: 1 and %d trainer threads differ", (long long)arch, i + 1);
    }
    for (int i = 0; i < 3; i++) {
        free(dec[i]);
        free(enc[i]);
    }
    sae_toy_free(toy);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_block_depends_on_shape_only),
        cmocka_unit_test(test_blocked_same_bits_for_any_thread_count),
        cmocka_unit_test(test_small_kernel),
        cmocka_unit_test(test_trainer_threads_same_bits_when_split),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
