/* Core math of lib/metrics on raw arrays (INTERNAL): cosine matrices, maxima, the exact
 * assignment against brute force, the non-negative sparse fits, the peak detector and
 * order statistics. Every expected value is computed independently here. */
#include "test_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/metrics_internal.h"
#include "rng/rng.h"

static sae_alloc test_al(void)
{
    sae_alloc al;
    sae_alloc_init(&al, NULL);
    return al;
}

static float *gaussian(int64_t rows, int64_t cols, uint64_t seed)
{
    float *a = malloc((size_t)(rows * cols) * sizeof(float));
    sae_rng r;
    sae_rng_init(&r, seed, 0, SAE_STREAM_EXTRA);
    for (int64_t i = 0; i < rows * cols; i++)
        a[i] = (float)sae_rng_normal(&r);
    return a;
}

static void normalise_rows(float *a, int64_t rows, int64_t cols)
{
    for (int64_t i = 0; i < rows; i++) {
        double s = 0;
        for (int64_t k = 0; k < cols; k++)
            s += (double)a[i * cols + k] * a[i * cols + k];
        for (int64_t k = 0; k < cols; k++)
            a[i * cols + k] = (float)(a[i * cols + k] / sqrt(s));
    }
}

/* ---- cosine ------------------------------------------------------------------------- */

/* Decoder rows = a permutation of the dictionary, scaled: cosine 1 on the permutation. */
static void test_cosine_permuted_dictionary(void **state)
{
    (void)state;
    sae_alloc al = test_al();
    const int64_t n = 20, d = 32, l = 20;
    float *dict = gaussian(n, d, 1);
    normalise_rows(dict, n, d);
    float *dec = malloc((size_t)(l * d) * sizeof(float));
    int32_t perm[20];
    for (int i = 0; i < 20; i++)
        perm[i] = (i * 7 + 3) % 20;
    for (int64_t j = 0; j < l; j++)
        for (int64_t k = 0; k < d; k++)
            dec[j * d + k] = 3.0f * dict[perm[j] * d + k];
    float *cos = malloc((size_t)(n * l) * sizeof(float));
    assert_ok(sae_metrics_cosine(&al, dict, n, d, dec, l, d, 0, d, 2, cos));
    float rmax[20], cmax[20];
    int32_t rarg[20], carg[20];
    sae_metrics_maxima(cos, n, l, rmax, rarg, cmax, carg);
    for (int64_t j = 0; j < l; j++) {
        assert_close(cos[perm[j] * l + j], 1.0, 1e-6);
        assert_int_equal(carg[j], perm[j]);
        assert_int_equal(rarg[perm[j]], j);
    }
    /* encoder layout (d x L): transpose of dec gives the same matrix */
    float *enc = malloc((size_t)(l * d) * sizeof(float));
    for (int64_t j = 0; j < l; j++)
        for (int64_t k = 0; k < d; k++)
            enc[k * l + j] = dec[j * d + k];
    float *cos2 = malloc((size_t)(n * l) * sizeof(float));
    assert_ok(sae_metrics_cosine(&al, dict, n, d, enc, l, l, 1, d, 1, cos2));
    for (int64_t k = 0; k < n * l; k++)
        assert_close(cos2[k], cos[k], 1e-6);
    free(dict), free(dec), free(cos), free(enc), free(cos2);
}

/* Independent random unit directions in d dims: cosines have variance 1/d, so the mean
 * over N features of the max over L latents is close to E[max of L normals] / sqrt(d). */
static void test_random_directions_max_cos(void **state)
{
    (void)state;
    sae_alloc al = test_al();
    const int64_t n = 256, l = 512, d = 256;
    float *a = gaussian(n, d, 5), *b = gaussian(l, d, 6);
    float *cos = malloc((size_t)(n * l) * sizeof(float));
    assert_ok(sae_metrics_cosine(&al, a, n, d, b, l, d, 0, d, 2, cos));
    float *rmax = malloc((size_t)n * sizeof(float)), *cmax = malloc((size_t)l * sizeof(float));
    int32_t *rarg = malloc((size_t)n * sizeof(int32_t)), *carg = malloc((size_t)l * sizeof(int32_t));
    sae_metrics_maxima(cos, n, l, rmax, rarg, cmax, carg);
    /* sqrt(d) * cos is close to N(0, 1); E[max of 512 iid N(0,1)] = 3.045 (sd 0.37).
     * Simulated for d = 256 unit vectors: mean over 256 features 3.027, sd of that mean
     * 0.021. Bounds are 5 sd either side. */
    double m = sae_metrics_mean(rmax, n) * sqrt((double)d);
    print_message("random directions: mean max cos * sqrt(d) = %.4f\n", m);
    assert_true(m > 2.92 && m < 3.13);
    free(a), free(b), free(cos), free(rmax), free(cmax), free(rarg), free(carg);
}

/* ---- assignment ---------------------------------------------------------------------- */

static double best_brute(const float *s, int n, int m, int row, uint32_t used)
{
    if (row == n)
        return 0;
    double best = -INFINITY;
    for (int j = 0; j < m; j++)
        if (!(used & (1u << j))) {
            double v = s[row * m + j] + best_brute(s, n, m, row + 1, used | (1u << j));
            if (v > best)
                best = v;
        }
    return best;
}

/* Brute force over all injective maps of the smaller side. */
static double brute(const float *s, int n, int m)
{
    if (n <= m)
        return best_brute(s, n, m, 0, 0);
    float t[64];
    for (int i = 0; i < n; i++)
        for (int j = 0; j < m; j++)
            t[j * n + i] = s[i * m + j];
    return best_brute(t, m, n, 0, 0);
}

static void check_matching(const float *s, int n, int m, const int32_t *rm, const int32_t *cm,
                           double total)
{
    double sum = 0;
    int pairs = 0;
    for (int i = 0; i < n; i++) {
        if (rm[i] < 0)
            continue;
        assert_int_equal(cm[rm[i]], i);
        sum += s[i * m + rm[i]];
        pairs++;
    }
    assert_int_equal(pairs, n < m ? n : m);
    assert_close(sum, total, 1e-9);
}

static void test_assignment_vs_brute_force(void **state)
{
    (void)state;
    sae_alloc al = test_al();
    sae_rng r;
    sae_rng_init(&r, 42, 0, SAE_STREAM_EXTRA);
    int instances = 0;
    for (int rep = 0; rep < 300; rep++) {
        int n = 1 + (int)sae_rng_below(&r, 7), m = 1 + (int)sae_rng_below(&r, 7);
        float s[49];
        int discrete = rep % 3 == 0; /* many ties */
        for (int k = 0; k < n * m; k++)
            s[k] = discrete ? (float)sae_rng_below(&r, 3) : (float)(2 * sae_rng_uniform(&r) - 1);
        int32_t rm[7], cm[7];
        double total = 0, gap = 0;
        int threads = 1 + rep % 2;
        assert_ok(sae_lap_max(&al, s, n, m, m, 1, threads, rm, cm, &total, &gap));
        check_matching(s, n, m, rm, cm, total);
        assert_close(total, brute(s, n, m), 1e-6);
        assert_true(gap >= -1e-9);
        instances++;
    }
    print_message("%d random instances matched brute force\n", instances);
}

/* A larger instance where the sparse candidate graph alone is wrong: every row prefers the
 * same few columns, so the dual check must add edges (and the result must still be exact
 * against an O(n^3) dense Hungarian computed here). */
static double dense_hungarian(const float *s, int n, int m)
{
    /* classic O(n^2 m) potentials algorithm (minimise -s), n <= m, 1-based */
    double *u = calloc((size_t)n + 1, sizeof(double)), *v = calloc((size_t)m + 1, sizeof(double));
    int *p = calloc((size_t)m + 1, sizeof(int)), *way = calloc((size_t)m + 1, sizeof(int));
    double *minv = malloc(((size_t)m + 1) * sizeof(double));
    char *used = malloc((size_t)m + 1);
    for (int i = 1; i <= n; i++) {
        p[0] = i;
        int j0 = 0;
        for (int j = 0; j <= m; j++)
            minv[j] = INFINITY, used[j] = 0;
        do {
            used[j0] = 1;
            int i0 = p[j0], j1 = 0;
            double delta = INFINITY;
            for (int j = 1; j <= m; j++)
                if (!used[j]) {
                    double cur = -(double)s[(i0 - 1) * m + (j - 1)] - u[i0] - v[j];
                    if (cur < minv[j])
                        minv[j] = cur, way[j] = j0;
                    if (minv[j] < delta)
                        delta = minv[j], j1 = j;
                }
            for (int j = 0; j <= m; j++)
                if (used[j])
                    u[p[j]] += delta, v[j] -= delta;
                else
                    minv[j] -= delta;
            j0 = j1;
        } while (p[j0] != 0);
        do {
            int j1 = way[j0];
            p[j0] = p[j1];
            j0 = j1;
        } while (j0);
    }
    double sum = 0;
    for (int j = 1; j <= m; j++)
        if (p[j])
            sum += s[(p[j] - 1) * m + (j - 1)];
    free(u), free(v), free(p), free(way), free(minv), free(used);
    return sum;
}

static void test_assignment_contested_columns(void **state)
{
    (void)state;
    sae_alloc al = test_al();
    const int n = 120, m = 200;
    float *s = gaussian(n, m, 9);
    /* columns 0..4 are attractive to everyone */
    for (int i = 0; i < n; i++)
        for (int j = 0; j < 5; j++)
            s[i * m + j] += 4.0f;
    int32_t rm[120], cm[200], rm1[120], cm1[200];
    double total = 0, gap = 0, total1 = 0;
    int threads = 1;
    assert_ok(sae_lap_max(&al, s, n, m, m, 1, threads, rm1, cm1, &total1, &gap));
    threads = 2; /* the thread count changes nothing */
    assert_ok(sae_lap_max(&al, s, n, m, m, 1, threads, rm, cm, &total, &gap));
    check_matching(s, n, m, rm, cm, total);
    assert_true(total == total1 && memcmp(rm, rm1, sizeof rm) == 0);
    assert_close(total, dense_hungarian(s, n, m), 1e-6);
    /* the transposed problem (rows > cols) through strides */
    int32_t rm2[200], cm2[120];
    double total2 = 0;
    assert_ok(sae_lap_max(&al, s, m, n, 1, m, threads, rm2, cm2, &total2, &gap));
    assert_close(total2, total, 1e-6);
    free(s);
}

/* Degenerate inputs at a size where a poor candidate graph would be quadratic: an all-zero
 * matrix (every pair tied, e.g. zero decoder rows) and a constant one. */
static void test_assignment_all_ties(void **state)
{
    (void)state;
    sae_alloc al = test_al();
    const int64_t n = 3000, m = 5000;
    const int threads = 2;
    float *s = calloc((size_t)(n * m), sizeof(float));
    int32_t *rm = malloc((size_t)n * sizeof(int32_t)), *cm = malloc((size_t)m * sizeof(int32_t));
    double total = 0, gap = 0;
    for (int rep = 0; rep < 2; rep++) {
        for (int64_t k = 0; k < n * m; k++)
            s[k] = rep ? 0.25f : 0.0f;
        assert_ok(sae_lap_max(&al, s, n, m, m, 1, threads, rm, cm, &total, &gap));
        assert_close(total, rep ? 0.25 * n : 0.0, 1e-9);
        assert_true(gap >= -1e-9);
        int64_t matched = 0;
        for (int64_t i = 0; i < n; i++)
            matched += rm[i] >= 0 && cm[rm[i]] == i;
        assert_int_equal(matched, n);
    }
    free(s), free(rm), free(cm);
}

/* ---- composition fit ----------------------------------------------------------------- */

static void test_nnls_two_features(void **state)
{
    (void)state;
    const int64_t n = 16, d = 24;
    float *f = gaussian(n, d, 3);
    normalise_rows(f, n, d);
    double u[24], nrm = 0;
    for (int k = 0; k < d; k++) {
        u[k] = (double)f[3 * d + k] + f[7 * d + k];
        nrm += u[k] * u[k];
    }
    nrm = sqrt(nrm);
    int32_t cand[16];
    double b[16];
    for (int i = 0; i < n; i++) {
        cand[i] = i;
        double c = 0;
        for (int k = 0; k < d; k++)
            c += f[i * d + k] * u[k] / nrm;
        b[i] = c;
    }
    double *work = malloc((size_t)sae_metrics_nnls_work(n, 4) * sizeof(double));
    sae_fit fit;
    sae_metrics_nnls_fit(f, d, d, cand, b, n, 4, 0.2, work, &fit);
    free(work);
    assert_int_equal(fit.n_terms, 2);
    int a = fit.feature[0], c = fit.feature[1];
    assert_true((a == 3 && c == 7) || (a == 7 && c == 3));
    assert_close(fit.weight[0], 1.0 / nrm, 1e-4);
    assert_close(fit.weight[1], 1.0 / nrm, 1e-4);
    assert_close(fit.residual, 0.0, 1e-3);
    free(f);
}

/* ---- histograms and order statistics ------------------------------------------------- */

static void test_peaks(void **state)
{
    (void)state;
    const float one[] = {0, 1, 3, 9, 4, 2, 1, 0};
    const float two[] = {0, 8, 9, 2, 0, 1, 6, 7, 1};
    const float shoulder[] = {1, 9, 8, 7, 6, 7, 5, 1}; /* valley 6 of peak 7: not separate */
    const float flat[] = {3, 3, 3, 3};
    assert_int_equal(sae_metrics_count_peaks(one, 8, 0.1, 0.5), 1);
    assert_int_equal(sae_metrics_count_peaks(two, 9, 0.1, 0.5), 2);
    assert_int_equal(sae_metrics_count_peaks(shoulder, 8, 0.1, 0.5), 1);
    assert_int_equal(sae_metrics_count_peaks(flat, 4, 0.1, 0.5), 1);
    /* a small bump below min_height does not count */
    assert_int_equal(sae_metrics_count_peaks(two, 9, 0.9, 0.5), 1);
}

static int cmp_desc(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x < y) - (x > y);
}

static void test_kth_largest(void **state)
{
    (void)state;
    const int64_t n = 1001;
    float *v = gaussian(1, n, 77), *sorted = malloc((size_t)n * sizeof(float));
    for (int64_t k = 0; k < n; k += 97) {
        memcpy(sorted, v, (size_t)n * sizeof(float));
        qsort(sorted, (size_t)n, sizeof(float), cmp_desc);
        float *w = malloc((size_t)n * sizeof(float));
        memcpy(w, v, (size_t)n * sizeof(float));
        assert_true(sae_metrics_kth_largest(w, n, k) == sorted[k]);
        free(w);
    }
    free(v), free(sorted);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cosine_permuted_dictionary),
        cmocka_unit_test(test_random_directions_max_cos),
        cmocka_unit_test(test_assignment_vs_brute_force),
        cmocka_unit_test(test_assignment_contested_columns),
        cmocka_unit_test(test_assignment_all_ties),
        cmocka_unit_test(test_nnls_two_features),
        cmocka_unit_test(test_peaks),
        cmocka_unit_test(test_kth_largest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
