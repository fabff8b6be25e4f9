/* The superposition toy model (Elhage et al. 2022) trained inside the generator:
 * with importance decaying and dense features about d features are represented, the
 * most important ones; with sparse features more than d are (superposition). */
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { N = 20, D = 5 };

static sae_toy *tms(double fire_prob, int64_t seed, double steps)
{
    sae_config *c = test_config(SAE_KIND_TOY, "n_features", (double)N, "d", (double)D, "dict",
                                (double)SAE_TOY_DICT_SUPERPOSITION, "fire_prob", fire_prob,
                                "tms_importance_decay", 0.7, "tms_steps", steps, "tms_batch",
                                512.0, "tms_lr", 0.01, "seed", (double)seed, NULL);
    sae_toy *t = NULL;
    assert_ok(sae_toy_create(&t, c, NULL));
    sae_config_free(c);
    return t;
}

/* ||W_i|| of every feature; returns how many exceed 0.5 ("represented"). */
static int represented(const sae_toy *t, double *norms)
{
    float W[N * D];
    assert_ok(sae_toy_dictionary(t, W, D));
    int count = 0;
    for (int i = 0; i < N; i++) {
        double s = 0;
        for (int k = 0; k < D; k++)
            s += (double)W[i * D + k] * W[i * D + k];
        norms[i] = sqrt(s);
        count += norms[i] > 0.5;
    }
    return count;
}

static void test_dense_vs_sparse(void **state)
{
    (void)state;
    double dense_norms[N], sparse_norms[N];
    sae_toy *dense = tms(1.0, 1, 1500), *sparse = tms(0.03, 1, 1500);
    int n_dense = represented(dense, dense_norms), n_sparse = represented(sparse, sparse_norms);
    print_message("represented features: dense %d, sparse %d (d = %d)\n", n_dense, n_sparse, D);
    /* dense: about d features, and they are the most important ones */
    assert_true(n_dense >= D - 1 && n_dense <= D + 1);
    for (int i = 0; i < D - 1; i++)
        assert_true(dense_norms[i] > 0.5);
    for (int i = D + 2; i < N; i++)
        assert_true(dense_norms[i] < 0.5);
    /* sparse: superposition, more features than dimensions */
    assert_true(n_sparse > D + 2);
    double loss;
    assert_ok(sae_toy_info(sparse, SAE_TOY_INFO_TMS_LOSS, &loss));
    assert_true(loss > 0 && isfinite(loss));
    /* samples are the hidden activations h = W x: d columns, x == sum m_i W_i */
    float x[4 * D], W[N * D];
    int64_t ptr[5], nnz;
    int32_t f[4 * N];
    float m[4 * N];
    assert_ok(sae_toy_dictionary(sparse, W, D));
    assert_ok(sae_toy_sample_codes(sparse, 0, 4, x, D, ptr, f, m, 4 * N, &nnz));
    for (int r = 0; r < 4; r++)
        for (int k = 0; k < D; k++) {
            double want = 0;
            for (int64_t a = ptr[r]; a < ptr[r + 1]; a++)
                want += (double)m[a] * W[f[a] * D + k];
            assert_close(x[r * D + k], want, 1e-5);
        }
    sae_toy_free(dense);
    sae_toy_free(sparse);
}

/* Deterministic given the seed: the same W twice, another W for another seed. */
static void test_deterministic(void **state)
{
    (void)state;
    float a[N * D], b[N * D];
    sae_toy *t1 = tms(0.1, 4, 100), *t2 = tms(0.1, 4, 100), *t3 = tms(0.1, 5, 100), *cl = NULL;
    assert_ok(sae_toy_dictionary(t1, a, D));
    assert_ok(sae_toy_dictionary(t2, b, D));
    assert_memory_equal(a, b, sizeof a);
    assert_ok(sae_toy_clone(&cl, t1));
    assert_ok(sae_toy_dictionary(cl, b, D));
    assert_memory_equal(a, b, sizeof a);
    assert_ok(sae_toy_dictionary(t3, b, D));
    assert_memory_not_equal(a, b, sizeof a);
    sae_toy_free(t1);
    sae_toy_free(t2);
    sae_toy_free(t3);
    sae_toy_free(cl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dense_vs_sparse),
        cmocka_unit_test(test_deterministic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
