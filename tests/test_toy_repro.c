/* Toy generator reproducibility with every part switched on: sample i is a pure
 * function of (seed, i) for any batch split, start index and thread count. */
#include "test_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { N = 300, D = 24, ROWS = 1000, CAP = 200000 };

/* Rescaled Zipf probabilities; features 200..299 are children of 0..49 (two each, at
 * most one of them fires); 100..159 form 20 exclusive sets of 3; 160..169 fire through
 * a copula; two combinations; amplitude groups over 0..39; clipped-normal magnitudes,
 * noise and normalisation. */
static sae_config *full_config(void)
{
    sae_config *c = test_config(SAE_KIND_TOY, "n_features", (double)N, "d", (double)D, "seed", 99.0,
                                "fire_profile", (double)SAE_TOY_FIRE_ZIPF_RESCALED, "fire_prob_max",
                                0.2, "fire_prob_min", 0.005, "siblings", 1.0, "mag_model",
                                (double)SAE_TOY_MAG_CLIPPED_NORMAL, "mag_group_corr", 0.7,
                                "noise_std", 0.05, "normalize", 1.0, NULL);
    int64_t parents[N], sets[N], groups[N];
    for (int j = 0; j < N; j++) {
        parents[j] = j >= 200 ? (j - 200) / 2 : -1; /* two children per parent among 0..49 */
        sets[j] = j >= 100 && j < 160 ? (j - 100) / 3 : -1;
        groups[j] = j < 40 ? j / 4 : -1;
    }
    assert_ok(sae_config_set_i64_array(c, SAE_TOY_PARENTS, parents, N));
    assert_ok(sae_config_set_i64_array(c, SAE_TOY_SET_IDS, sets, N));
    assert_ok(sae_config_set_i64_array(c, SAE_TOY_MAG_GROUPS, groups, N));
    /* correlation = normalised A A^T of a fixed 10 x 3 matrix: PSD by construction */
    double A[10][3], C[100];
    int64_t feats[10];
    for (int i = 0; i < 10; i++) {
        feats[i] = 160 + i;
        for (int k = 0; k < 3; k++)
            A[i][k] = sin(1.0 + i * 3 + k) + (i % 3 == k ? 1 : 0);
    }
    for (int i = 0; i < 10; i++)
        for (int j = 0; j < 10; j++) {
            double s = 0, si = 0, sj = 0;
            for (int k = 0; k < 3; k++)
                s += A[i][k] * A[j][k], si += A[i][k] * A[i][k], sj += A[j][k] * A[j][k];
            C[i * 10 + j] = s / sqrt(si * sj);
        }
    assert_ok(sae_config_set_f64_array(c, SAE_TOY_CORR, C, 100));
    assert_ok(sae_config_set_i64_array(c, SAE_TOY_CORR_FEATURES, feats, 10));
    int64_t combos[] = {170, 171, 172, -1, 180, 181};
    double q[] = {0.05, 0.1};
    assert_ok(sae_config_set_i64_array(c, SAE_TOY_COMBOS, combos, 6));
    assert_ok(sae_config_set_f64_array(c, SAE_TOY_COMBO_PROBS, q, 2));
    char msg[256];
    if (sae_config_validate(c, msg, sizeof msg) != SAE_OK)
        fail_msg("%s", msg);
    return c;
}

typedef struct ref {
    float *x;
    int64_t *ptr;
    int32_t *f;
    float *m;
} ref;

static ref reference(sae_toy *t)
{
    ref r = {malloc(ROWS * D * sizeof(float)), malloc((ROWS + 1) * sizeof(int64_t)),
             malloc(CAP * sizeof(int32_t)), malloc(CAP * sizeof(float))};
    int64_t nnz;
    assert_ok(sae_toy_sample_codes(t, 0, ROWS, r.x, D, r.ptr, r.f, r.m, CAP, &nnz));
    return r;
}

static void ref_free(ref *r)
{
    free(r->x);
    free(r->ptr);
    free(r->f);
    free(r->m);
}

/* rows [first, first + n) of t equal the reference, through both entry points */
static void check_rows(sae_toy *t, const ref *r, uint64_t first, int64_t n)
{
    float *x = malloc((size_t)(n * D) * sizeof *x);
    int64_t *ptr = malloc((size_t)(n + 1) * sizeof *ptr), nnz;
    int32_t *f = malloc(CAP * sizeof *f);
    float *m = malloc(CAP * sizeof *m);
    assert_ok(sae_toy_sample(t, first, n, x, D));
    assert_memory_equal(x, r->x + first * D, (size_t)(n * D) * sizeof *x);
    assert_ok(sae_toy_sample_codes(t, first, n, x, D, ptr, f, m, CAP, &nnz));
    assert_memory_equal(x, r->x + first * D, (size_t)(n * D) * sizeof *x);
    int64_t base = r->ptr[first];
    assert_int_equal(nnz, r->ptr[first + (uint64_t)n] - base);
    assert_memory_equal(f, r->f + base, (size_t)nnz * sizeof *f);
    assert_memory_equal(m, r->m + base, (size_t)nnz * sizeof *m);
    free(x);
    free(ptr);
    free(f);
    free(m);
}

static void test_batch_splits(void **state)
{
    (void)state;
    sae_config *c = full_config();
    sae_toy *t = NULL;
    assert_ok(sae_toy_create(&t, c, NULL));
    ref r = reference(t);
    assert_true(r.ptr[ROWS] > ROWS); /* several active features per row */
    const int64_t pieces[] = {1, 7, 64};
    for (int p = 0; p < 3; p++)
        for (uint64_t first = (uint64_t)(p * 13); first + (uint64_t)pieces[p] <= ROWS;
             first += (uint64_t)pieces[p] * 5 + 3)
            check_rows(t, &r, first, pieces[p]);
    ref_free(&r);
    sae_toy_free(t);
    sae_config_free(c);
}

static void test_thread_counts(void **state)
{
    (void)state;
    sae_config *c = full_config();
    sae_toy *t = NULL;
    assert_ok(sae_toy_create(&t, c, NULL));
    ref r = reference(t);
    sae_toy_free(t);
    const int64_t threads[] = {2, 3, 4, 7};
    for (int i = 0; i < 4; i++) {
        assert_ok(sae_config_set_i64(c, SAE_TOY_N_THREADS, threads[i]));
        assert_ok(sae_toy_create(&t, c, NULL));
        check_rows(t, &r, 0, ROWS);
        check_rows(t, &r, 333, 500);
        sae_toy *cl = NULL;
        assert_ok(sae_toy_clone(&cl, t));
        sae_toy_free(t);
        check_rows(cl, &r, 100, 77);
        sae_toy_free(cl);
    }
    ref_free(&r);
    sae_config_free(c);
}

/* The rules hold in the mixed configuration too (no part breaks another). */
static void test_rules_in_mixed_config(void **state)
{
    (void)state;
    sae_config *c = full_config();
    sae_toy *t = NULL;
    assert_ok(sae_toy_create(&t, c, NULL));
    ref r = reference(t);
    for (int64_t row = 0; row < ROWS; row++) {
        int on[N] = {0};
        for (int64_t a = r.ptr[row]; a < r.ptr[row + 1]; a++)
            on[r.f[a]] = 1;
        for (int j = 200; j < N; j++)
            if (on[j])
                assert_true(on[(j - 200) / 2]);
        for (int s = 0; s < 20; s++)
            assert_true(on[100 + 3 * s] + on[101 + 3 * s] + on[102 + 3 * s] <= 1);
        for (int j = 0; j < 50; j++)
            assert_true(on[200 + 2 * j] + on[201 + 2 * j] <= 1);
    }
    ref_free(&r);
    sae_toy_free(t);
    sae_config_free(c);
}

/* Rows far above the expected number of active features (a large, rare combination)
 * overflow the per-call code buffer, which is sized from the mean; the rows past the
 * overflow are drawn again in the writing pass. The codes must not change. */
static void test_crowded_rows(void **state)
{
    (void)state;
    sae_config *c = test_config(SAE_KIND_TOY, "n_features", 100.0, "d", 8.0, "fire_prob", 0.01,
                                NULL);
    int64_t combo[60];
    double q = 0.05;
    for (int i = 0; i < 60; i++)
        combo[i] = 20 + i;
    assert_ok(sae_config_set_i64_array(c, SAE_TOY_COMBOS, combo, 60));
    assert_ok(sae_config_set_f64_array(c, SAE_TOY_COMBO_PROBS, &q, 1));
    sae_toy *t = NULL;
    assert_ok(sae_toy_create(&t, c, NULL));
    enum { R = 2000, P = 10, RCAP = R * 100 };
    int64_t ptr[R + 1], nnz, part[P + 1], k;
    int32_t *f = malloc(RCAP * sizeof *f), *g = malloc(P * 100 * sizeof *g);
    float *m = malloc(RCAP * sizeof *m), *h = malloc(P * 100 * sizeof *h);
    assert_ok(sae_toy_sample_codes(t, 0, R, NULL, 0, ptr, f, m, RCAP, &nnz));
    int crowded = 0;
    for (int r = 0; r + P <= R; r += P) {
        assert_ok(sae_toy_sample_codes(t, (uint64_t)r, P, NULL, 0, part, g, h, P * 100, &k));
        assert_int_equal(k, ptr[r + P] - ptr[r]);
        assert_memory_equal(g, f + ptr[r], (size_t)k * sizeof *g);
        assert_memory_equal(h, m + ptr[r], (size_t)k * sizeof *h);
        crowded += k > P * 16; /* mean 4 per row: the buffer holds about 16 per row */
    }
    assert_true(crowded > 0);
    free(f);
    free(g);
    free(m);
    free(h);
    sae_toy_free(t);
    sae_config_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batch_splits),
        cmocka_unit_test(test_thread_counts),
        cmocka_unit_test(test_rules_in_mixed_config),
        cmocka_unit_test(test_crowded_rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
