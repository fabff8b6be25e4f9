/* sae_metrics through the public API on hand-built models whose answers are known
 * exactly (issue 5 "Must show"): permuted dictionary, a latent composed of features 3 and
 * 7, a child latent that swallowed its parent, joint firing, multi-peak histograms, the
 * reconstruction basics, decoder pair statistics, the n-th decoder projection, lists and
 * argument checks. */
#include "test_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct fixture {
    sae_toy *toy;
    sae_model *model;
    sae_metrics *metrics;
    int64_t n, l, d;
} fixture;

static void fixture_free(fixture *f)
{
    sae_metrics_free(f->metrics);
    sae_model_free(f->model);
    sae_toy_free(f->toy);
}

static sae_toy *make_toy(sae_config *c)
{
    sae_toy *t = NULL;
    int32_t st = sae_toy_create(&t, c, NULL);
    if (st != SAE_OK)
        fail_msg("toy: %s", sae_config_errmsg(c));
    sae_config_free(c);
    return t;
}

/* A model whose decoder rows are w (l x d), encoder W_dec^T unless enc given, zero biases. */
static sae_model *make_model(int64_t d, int64_t l, const float *w, const float *enc,
                             const float *b_enc)
{
    sae_config *c = test_config(SAE_KIND_MODEL, "d_in", (double)d, "n_latents", (double)l, NULL);
    sae_model *m = NULL;
    assert_ok(sae_model_create(&m, c, NULL));
    sae_config_free(c);
    float *wt = calloc((size_t)(l * d), sizeof(float)), *zero = calloc((size_t)(l + d), sizeof(float));
    for (int64_t j = 0; j < l; j++)
        for (int64_t k = 0; k < d; k++)
            wt[k * l + j] = w[j * d + k];
    assert_ok(sae_model_set_tensor(m, SAE_TENSOR_W_DEC, w, d));
    assert_ok(sae_model_set_tensor(m, SAE_TENSOR_W_ENC, enc ? enc : wt, l));
    assert_ok(sae_model_set_tensor(m, SAE_TENSOR_B_ENC, b_enc ? b_enc : zero, l));
    assert_ok(sae_model_set_tensor(m, SAE_TENSOR_B_DEC, zero, d));
    free(wt), free(zero);
    return m;
}

static sae_metrics *make_metrics(sae_config *c)
{
    sae_metrics *m = NULL;
    assert_ok(sae_metrics_create(&m, c, NULL));
    sae_config_free(c);
    return m;
}

static double get(const sae_metrics *m, int32_t which)
{
    double v = NAN;
    int32_t st = sae_metrics_get(m, which, &v);
    if (st != SAE_OK)
        fail_msg("sae_metrics_get(%d): %s", (int)which, sae_metrics_errmsg(m));
    return v;
}

static float *array(const sae_metrics *m, int32_t which, int64_t *rows, int64_t *cols)
{
    int64_t r = 0, c = 0;
    assert_ok(sae_metrics_array_shape(m, which, &r, &c));
    float *a = malloc((size_t)(r * c) * sizeof(float));
    assert_ok(sae_metrics_copy_array(m, which, a, c));
    if (rows)
        *rows = r;
    if (cols)
        *cols = c;
    return a;
}

static int64_t *list(const sae_metrics *m, int32_t which, int64_t *n)
{
    assert_ok(sae_metrics_list_size(m, which, n));
    int64_t *a = malloc((size_t)(*n + 1) * sizeof(int64_t)), got = -1;
    assert_ok(sae_metrics_copy_list(m, which, a, *n, &got));
    assert_int_equal(got, *n);
    return a;
}

static float *dictionary(const sae_toy *t, int64_t n, int64_t d)
{
    float *dict = malloc((size_t)(n * d) * sizeof(float));
    assert_ok(sae_toy_dictionary(t, dict, d));
    return dict;
}

/* ---- permuted dictionary ----------------------------------------------------------- */

static void test_permuted_dictionary(void **state)
{
    (void)state;
    const int64_t n = 16, d = 32, l = 20;
    sae_toy *t = make_toy(test_config(SAE_KIND_TOY, "n_features", (double)n, "d", (double)d,
                                      "seed", 3.0, "fire_prob", 0.2, NULL));
    float *dict = dictionary(t, n, d);
    float *w = malloc((size_t)(l * d) * sizeof(float));
    int perm[16];
    for (int j = 0; j < 16; j++)
        perm[j] = (5 * j + 2) % 16;
    for (int64_t j = 0; j < n; j++)
        for (int64_t k = 0; k < d; k++)
            w[j * d + k] = dict[perm[j] * d + k];
    /* 4 extra latents: a mixture of every feature, far from each single one */
    for (int64_t j = n; j < l; j++)
        for (int64_t k = 0; k < d; k++) {
            double s = 0;
            for (int64_t i = 0; i < n; i++)
                s += dict[i * d + k] * (((i + j) % 3) - 1.0);
            w[j * d + k] = (float)s;
        }
    sae_model *m = make_model(d, l, w, NULL, NULL);
    sae_metrics *mt = make_metrics(test_config(SAE_KIND_METRICS, "n_eval", 512.0, NULL));
    assert_ok(sae_metrics_compute(mt, m, t));
    assert_close(get(mt, SAE_METRIC_MMCS_TRUE), 1.0, 1e-6);
    assert_close(get(mt, SAE_METRIC_FRAC_RECOVERED), 1.0, 0);
    assert_close(get(mt, SAE_METRIC_MATCH_MEAN_COS), 1.0, 1e-6);
    assert_close(get(mt, SAE_METRIC_MATCH_FRAC_RECOVERED), 1.0, 0);
    assert_close(get(mt, SAE_METRIC_ENC_MATCH_MEAN_COS), 1.0, 1e-6);
    assert_true(get(mt, SAE_METRIC_MATCH_COST_GAP) >= -1e-9);
    float *match = array(mt, SAE_ARRAY_MATCH_LATENT, NULL, NULL);
    float *cos = array(mt, SAE_ARRAY_COSINE, NULL, NULL);
    for (int64_t j = 0; j < n; j++) {
        assert_int_equal((int)match[perm[j]], (int)j);
        assert_close(cos[perm[j] * l + j], 1.0, 1e-6);
    }
    int64_t nu = 0, nf = 0;
    int64_t *ul = list(mt, SAE_LIST_UNMATCHED_LATENTS, &nu);
    int64_t *uf = list(mt, SAE_LIST_UNMATCHED_FEATURES, &nf);
    assert_int_equal(nu, l - n);
    assert_int_equal(nf, 0);
    for (int64_t k = 0; k < nu; k++)
        assert_int_equal(ul[k], n + k);
    /* short list buffer: BUFFER_TOO_SMALL with the size */
    int64_t got = 0, one[1];
    assert_status(sae_metrics_copy_list(mt, SAE_LIST_UNMATCHED_LATENTS, one, 1, &got),
                  SAE_E_BUFFER_TOO_SMALL);
    assert_int_equal(got, l - n);
    free(dict), free(w), free(match), free(cos), free(ul), free(uf);
    sae_metrics_free(mt), sae_model_free(m), sae_toy_free(t);
}

/* ---- composition ------------------------------------------------------------------- */

static void test_composed_of_3_and_7(void **state)
{
    (void)state;
    const int64_t n = 16, d = 64, l = 16;
    sae_toy *t = make_toy(test_config(SAE_KIND_TOY, "n_features", (double)n, "d", (double)d,
                                      "seed", 11.0, NULL));
    float *dict = dictionary(t, n, d);
    float *w = malloc((size_t)(l * d) * sizeof(float));
    memcpy(w, dict, (size_t)(l * d) * sizeof(float));
    double nrm = 0;
    for (int64_t k = 0; k < d; k++) {
        w[5 * d + k] = dict[3 * d + k] + dict[7 * d + k];
        nrm += (double)w[5 * d + k] * w[5 * d + k];
    }
    for (int64_t k = 0; k < d; k++)
        w[5 * d + k] = (float)(w[5 * d + k] / sqrt(nrm));
    sae_model *m = make_model(d, l, w, NULL, NULL);
    sae_metrics *mt = make_metrics(test_config(SAE_KIND_METRICS, "metrics_compute",
                                               (double)(SAE_MG_RECOVERY | SAE_MG_COMPOSITION), NULL));
    assert_ok(sae_metrics_compute(mt, m, t));
    assert_close(get(mt, SAE_METRIC_N_COMPOSED), 1, 0);
    assert_close(get(mt, SAE_METRIC_N_SINGLE), l - 1, 0);
    int64_t nr = 0;
    int64_t *rec = list(mt, SAE_LIST_COMPOSED, &nr);
    assert_int_equal(nr, 4);
    assert_int_equal(rec[0], 5);
    assert_int_equal(rec[1], 2);
    assert_int_equal(rec[2], 3);
    assert_int_equal(rec[3], 7);
    float *res = array(mt, SAE_ARRAY_COMPOSE_RESIDUAL, NULL, NULL);
    float *terms = array(mt, SAE_ARRAY_COMPOSE_N_TERMS, NULL, NULL);
    assert_close(res[5], 0, 1e-3);
    assert_int_equal((int)terms[5], 2);
    /* groups not asked for are reported as not computed */
    double v;
    assert_status(sae_metrics_get(mt, SAE_METRIC_MSE, &v), SAE_E_STATE);
    free(dict), free(w), free(rec), free(res), free(terms);
    sae_metrics_free(mt), sae_model_free(m), sae_toy_free(t);
}

/* ---- absorption -------------------------------------------------------------------- */

/* Axes dictionary; feature 0 is the parent of 1 and 2; constant magnitudes 1.
 * Latent 0 reads e0 - 2 e1 (off whenever child 1 fires) and writes e0; latent 1 reads e1 and
 * writes (e0 + e1)/sqrt 2 (it swallowed the parent); latents 2, 3 are features 2, 3. */
static void test_child_swallowed_parent(void **state)
{
    (void)state;
    const int64_t n = 4, d = 8, l = 4, n_eval = 4000;
    sae_config *tc = test_config(SAE_KIND_TOY, "n_features", (double)n, "d", (double)d, "dict",
                                 (double)SAE_TOY_DICT_AXES, "mag_model", (double)SAE_TOY_MAG_CONSTANT,
                                 "mag_mean", 1.0, "seed", 5.0, NULL);
    const int64_t parents[] = {-1, 0, 0, -1};
    const double probs[] = {0.6, 0.4, 0.3, 0.2};
    assert_ok(sae_config_set_i64_array(tc, SAE_TOY_PARENTS, parents, 4));
    assert_ok(sae_config_set_f64_array(tc, SAE_TOY_FIRE_PROBS, probs, 4));
    sae_toy *t = make_toy(tc);
    float w[4 * 8] = {0}, enc[8 * 4] = {0};
    w[0 * d + 0] = 1;
    w[1 * d + 0] = w[1 * d + 1] = (float)(1 / sqrt(2.0));
    w[2 * d + 2] = 1;
    w[3 * d + 3] = 1;
    enc[0 * l + 0] = 1, enc[1 * l + 0] = -2; /* column 0: e0 - 2 e1 */
    enc[1 * l + 1] = 1;
    enc[2 * l + 2] = 1;
    enc[3 * l + 3] = 1;
    sae_model *m = make_model(d, l, w, enc, NULL);
    sae_metrics *mt = make_metrics(test_config(SAE_KIND_METRICS, "n_eval", (double)n_eval,
                                               "eval_first", 1000.0, NULL));
    assert_ok(sae_metrics_compute(mt, m, t));
    /* expected: among samples with the parent and a child active, the share with child 1 */
    int64_t *rp = malloc((n_eval + 1) * sizeof(int64_t));
    int32_t *feat = malloc((size_t)(n_eval * n) * sizeof(int32_t));
    float *mag = malloc((size_t)(n_eval * n) * sizeof(float));
    int64_t need = 0, with_child = 0, with_c1 = 0;
    assert_ok(sae_toy_sample_codes(t, 1000, n_eval, NULL, d, rp, feat, mag, n_eval * n, &need));
    for (int64_t i = 0; i < n_eval; i++) {
        int on[4] = {0};
        for (int64_t q = rp[i]; q < rp[i + 1]; q++)
            on[feat[q]] = 1;
        if (on[0] && (on[1] || on[2])) {
            with_child++;
            with_c1 += on[1];
        }
    }
    assert_true(with_child > 100);
    double expect = (double)with_c1 / (double)with_child;
    float *rate = array(mt, SAE_ARRAY_ABSORPTION, NULL, NULL);
    float *carried = array(mt, SAE_ARRAY_PARENT_CARRIED, NULL, NULL);
    print_message("absorption rate %.4f (expected %.4f over %lld samples)\n", rate[0], expect,
                  (long long)with_child);
    assert_close(rate[0], expect, 1e-6);
    assert_true(isnan(rate[1]) && isnan(rate[3]));
    assert_close(get(mt, SAE_METRIC_ABSORPTION_MEAN), expect, 1e-6);
    assert_close(get(mt, SAE_METRIC_N_PARENTS), 1, 0);
    /* the parent latent always fires alone: the gap equals the rate */
    assert_close(get(mt, SAE_METRIC_ABSORPTION_GAP), expect, 1e-6);
    /* child 1's latent carries the parent with the child's weight (share 1), child 2's none */
    assert_close(carried[0], 0.5, 1e-5);
    /* the encoder subtracts the child to keep the parent latent off: its direction differs */
    float *dmax = array(mt, SAE_ARRAY_MAX_COS_TRUE, NULL, NULL);
    float *emax = array(mt, SAE_ARRAY_ENC_MAX_COS_TRUE, NULL, NULL);
    assert_close(dmax[0], 1.0, 1e-6);
    assert_close(emax[0], 1.0 / sqrt(5.0), 1e-6);
    free(dmax), free(emax);
    int64_t ne = 0;
    int64_t *edges = list(mt, SAE_LIST_HIERARCHY_EDGES, &ne);
    assert_int_equal(ne, 8);
    const int64_t want[] = {0, 1, 0, 1, 0, 2, 0, 2};
    for (int k = 0; k < 8; k++)
        assert_int_equal(edges[k], want[k]);
    free(rp), free(feat), free(mag), free(rate), free(carried), free(edges);
    sae_metrics_free(mt), sae_model_free(m), sae_toy_free(t);
}

/* ---- activation-based recovery, reconstruction ------------------------------------- */

static void test_exact_model_activation_metrics(void **state)
{
    (void)state;
    const int64_t n = 8, d = 8, l = 8;
    sae_config *tc = test_config(SAE_KIND_TOY, "n_features", (double)n, "d", (double)d, "dict",
                                 (double)SAE_TOY_DICT_AXES, "fire_prob", 0.25, "seed", 9.0, NULL);
    sae_toy *t = make_toy(tc);
    float w[64] = {0};
    for (int j = 0; j < 8; j++)
        w[j * d + (j + 3) % 8] = 1; /* latent j = feature (j+3) mod 8 */
    sae_model *m = make_model(d, l, w, NULL, NULL);
    sae_metrics *mt = make_metrics(test_config(SAE_KIND_METRICS, "n_eval", 2000.0, NULL));
    assert_ok(sae_metrics_compute(mt, m, t));
    float *best = array(mt, SAE_ARRAY_BEST_LATENT, NULL, NULL);
    float *f1 = array(mt, SAE_ARRAY_BEST_F1, NULL, NULL);
    for (int f = 0; f < 8; f++) {
        assert_int_equal((int)best[f], (f + 5) % 8);
        assert_close(f1[f], 1.0, 0);
    }
    assert_close(get(mt, SAE_METRIC_MEAN_BEST_F1), 1.0, 0);
    assert_close(get(mt, SAE_METRIC_FVU), 0.0, 1e-10);
    assert_close(get(mt, SAE_METRIC_MSE), 0.0, 1e-12);
    assert_close(get(mt, SAE_METRIC_L0_MEAN), get(mt, SAE_METRIC_TRUE_L0_MEAN), 1e-12);
    assert_close(get(mt, SAE_METRIC_L0_MEAN), 2.0, 5 * sqrt(8 * 0.25 * 0.75 / 2000));
    assert_close(get(mt, SAE_METRIC_FRAC_DEAD), 0.0, 0);
    assert_close(get(mt, SAE_METRIC_FRAC_DENSE), 1.0, 0); /* 0.25 > 0.1 */
    /* no hierarchy: absorption does not apply */
    assert_close(get(mt, SAE_METRIC_N_PARENTS), 0, 0);
    assert_true(isnan(get(mt, SAE_METRIC_ABSORPTION_MEAN)));
    /* no latent is composed jointly: each fires exactly with its feature */
    assert_close(get(mt, SAE_METRIC_N_JOINT_COMPOSED), 0, 0);
    int64_t cols = 0;
    float *l0h = array(mt, SAE_ARRAY_L0_HIST, NULL, &cols);
    assert_int_equal(cols, l + 1);
    double total = 0;
    for (int64_t k = 0; k < cols; k++)
        total += l0h[k];
    assert_close(total, 2000, 0);
    /* decoder rows are orthonormal: pairwise cosines are all 0 */
    assert_close(get(mt, SAE_METRIC_DEC_COS_MAX), 0.0, 0);
    assert_close(get(mt, SAE_METRIC_DEC_ABS_COS_MEAN), 0.0, 0);
    float *dh = array(mt, SAE_ARRAY_DEC_COS_HIST, NULL, &cols);
    assert_close(dh[cols / 2], 28.0, 0); /* 8 * 7 / 2 pairs at cosine 0 */
    free(best), free(f1), free(l0h), free(dh);
    sae_metrics_free(mt), sae_model_free(m), sae_toy_free(t);
}

/* Latent 2 fires only when features 0 and 1 are both active (bias -1.5, magnitudes 1);
 * latent 3 reads e2 + 2 e3, so its values are 1, 2 or 3: three histogram peaks. */
static void test_joint_firing_and_peaks(void **state)
{
    (void)state;
    const int64_t n = 4, d = 4, l = 4;
    sae_toy *t = make_toy(test_config(SAE_KIND_TOY, "n_features", (double)n, "d", (double)d, "dict",
                                      (double)SAE_TOY_DICT_AXES, "mag_model",
                                      (double)SAE_TOY_MAG_CONSTANT, "mag_mean", 1.0,
                                      "fire_prob", 0.5, "seed", 2.0, NULL));
    float w[16] = {0}, enc[16] = {0}, b[4] = {0, 0, -1.5f, 0};
    w[0 * d + 0] = 1, enc[0 * l + 0] = 1;
    w[1 * d + 1] = 1, enc[1 * l + 1] = 1;
    w[2 * d + 0] = w[2 * d + 1] = (float)(1 / sqrt(2.0));
    enc[0 * l + 2] = enc[1 * l + 2] = 1;
    w[3 * d + 2] = w[3 * d + 3] = (float)(1 / sqrt(2.0));
    enc[2 * l + 3] = 1, enc[3 * l + 3] = 2;
    sae_model *m = make_model(d, l, w, enc, b);
    sae_metrics *mt = make_metrics(test_config(SAE_KIND_METRICS, "n_eval", 3000.0, NULL));
    assert_ok(sae_metrics_compute(mt, m, t));
    int64_t nr = 0;
    int64_t *rec = list(mt, SAE_LIST_JOINT_COMPOSED, &nr);
    assert_int_equal(nr, 3);
    assert_int_equal(rec[0], 2);
    assert_int_equal(rec[1], 0);
    assert_int_equal(rec[2], 1);
    float *jf = array(mt, SAE_ARRAY_JOINT_FIRE, NULL, NULL);
    assert_close(jf[2 * 4 + 0], 1.0, 0);
    assert_close(jf[2 * 4 + 1], 0.0, 0);
    assert_close(jf[2 * 4 + 2], 0.0, 0);
    assert_close(jf[2 * 4 + 3], 1.0, 0);
    float *peaks = array(mt, SAE_ARRAY_N_PEAKS, NULL, NULL);
    assert_int_equal((int)peaks[0], 1);
    assert_int_equal((int)peaks[3], 3);
    int64_t nm = 0;
    int64_t *multi = list(mt, SAE_LIST_MULTI_PEAK, &nm);
    assert_int_equal(nm, 1);
    assert_int_equal(multi[0], 3);
    free(rec), free(jf), free(peaks), free(multi);
    sae_metrics_free(mt), sae_model_free(m), sae_toy_free(t);
}

/* ---- n-th decoder projection -------------------------------------------------------- */

static int cmp_desc(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x < y) - (x > y);
}

static void test_nth_decoder_projection(void **state)
{
    (void)state;
    const int64_t n = 12, d = 10, l = 15, rows = 200;
    sae_toy *t = make_toy(test_config(SAE_KIND_TOY, "n_features", (double)n, "d", (double)d,
                                      "fire_prob", 0.3, "seed", 4.0, NULL));
    sae_config *mc = test_config(SAE_KIND_MODEL, "d_in", (double)d, "n_latents", (double)l,
                                 "model_seed", 8.0, NULL);
    sae_model *m = NULL;
    assert_ok(sae_model_create(&m, mc, NULL));
    sae_config_free(mc);
    float bdec[10];
    for (int k = 0; k < d; k++)
        bdec[k] = 0.1f * (float)k - 0.3f;
    assert_ok(sae_model_set_tensor(m, SAE_TENSOR_B_DEC, bdec, d));
    sae_metrics *mt = make_metrics(test_config(SAE_KIND_METRICS, "metrics_compute", (double)SAE_MG_SBW,
                                               "n_eval", (double)rows, "sbw_samples", (double)rows,
                                               "sbw_n", 3.0, "sbw_max_n", 20.0,
                                               "eval_first", 77.0, NULL));
    assert_ok(sae_metrics_compute(mt, m, t));
    float x[200 * 10], w[15 * 10], proj[200 * 15];
    assert_ok(sae_toy_sample(t, 77, rows, x, d));
    assert_ok(sae_model_get_tensor(m, SAE_TENSOR_W_DEC, w, d));
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < l; j++) {
            double s = 0;
            for (int64_t k = 0; k < d; k++)
                s += ((double)x[i * d + k] - bdec[k]) * w[j * d + k];
            proj[i * l + j] = (float)s;
        }
    qsort(proj, (size_t)(rows * l), sizeof(float), cmp_desc);
    assert_close(get(mt, SAE_METRIC_SBW_N), 3, 0);
    assert_close(get(mt, SAE_METRIC_SBW_SN), proj[3 * rows], 1e-5);
    int64_t cols = 0;
    float *curve = array(mt, SAE_ARRAY_SBW_CURVE, NULL, &cols);
    assert_int_equal(cols, l); /* sbw_max_n clamped to L - 1 */
    for (int64_t q = 0; q < cols; q++)
        assert_close(curve[q], proj[q * rows], 1e-5);
    free(curve);
    sae_metrics_free(mt), sae_model_free(m), sae_toy_free(t);
}

/* ---- contract ------------------------------------------------------------------------ */

static void test_failure_keeps_results_and_lists_validate(void **state)
{
    (void)state;
    sae_toy *t = make_toy(test_config(SAE_KIND_TOY, "n_features", 6.0, "d", 5.0, NULL));
    sae_toy *wide = make_toy(test_config(SAE_KIND_TOY, "n_features", 6.0, "d", 7.0, NULL));
    sae_config *mc = test_config(SAE_KIND_MODEL, "d_in", 5.0, "n_latents", 9.0, NULL);
    sae_model *m = NULL;
    assert_ok(sae_model_create(&m, mc, NULL));
    sae_config_free(mc);
    sae_metrics *mt = make_metrics(test_config(SAE_KIND_METRICS, "n_eval", 100.0, NULL));
    int64_t n = 0;
    assert_status(sae_metrics_list_size(mt, SAE_LIST_DEAD, &n), SAE_E_STATE);
    assert_ok(sae_metrics_compute(mt, m, t));
    double before = get(mt, SAE_METRIC_MMCS_TRUE);
    assert_status(sae_metrics_compute(mt, m, wide), SAE_E_MISMATCH);
    assert_true(strlen(sae_metrics_errmsg(mt)) > 0);
    assert_close(get(mt, SAE_METRIC_MMCS_TRUE), before, 0);
    assert_status(sae_metrics_list_size(NULL, SAE_LIST_DEAD, &n), SAE_E_NULL);
    assert_status(sae_metrics_list_size(mt, SAE_LIST_DEAD, NULL), SAE_E_NULL);
    assert_status(sae_metrics_list_size(mt, 0, &n), SAE_E_UNKNOWN_KEY);
    assert_status(sae_metrics_list_size(mt, 99, &n), SAE_E_UNKNOWN_KEY);
    assert_status(sae_metrics_copy_list(mt, SAE_LIST_DEAD, NULL, 5, &n), SAE_E_NULL);
    assert_status(sae_metrics_copy_list(mt, SAE_LIST_DEAD, NULL, -1, &n), SAE_E_SIZE);
    assert_status(sae_metrics_copy_list(mt, SAE_LIST_DEAD, NULL, 0, NULL), SAE_E_NULL);
    assert_ok(sae_metrics_list_size(mt, SAE_LIST_DEAD, &n));
    /* keep_cosine = 0: summaries without the N x L matrices */
    sae_metrics *lean = make_metrics(test_config(SAE_KIND_METRICS, "keep_cosine", 0.0,
                                                 "n_eval", 100.0, NULL));
    assert_ok(sae_metrics_compute(lean, m, t));
    int64_t r = 0, c = 0;
    assert_status(sae_metrics_array_shape(lean, SAE_ARRAY_COSINE, &r, &c), SAE_E_STATE);
    assert_close(get(lean, SAE_METRIC_MMCS_TRUE), before, 0);
    assert_close(get(lean, SAE_METRIC_MATCH_MEAN_COS), get(mt, SAE_METRIC_MATCH_MEAN_COS), 0);
    assert_close(get(lean, SAE_METRIC_ENC_MMCS_TRUE), get(mt, SAE_METRIC_ENC_MMCS_TRUE), 0);
    sae_metrics_free(lean);
    sae_metrics_free(mt), sae_model_free(m), sae_toy_free(t), sae_toy_free(wide);
}

/* metrics_threads changes nothing: every scalar, array and list is bit-identical. */
static void test_thread_count_invariance(void **state)
{
    (void)state;
    sae_toy *t = make_toy(test_config(SAE_KIND_TOY, "n_features", 64.0, "d", 24.0, "seed", 13.0,
                                      "fire_prob", 0.1, NULL));
    sae_config *mc = test_config(SAE_KIND_MODEL, "d_in", 24.0, "n_latents", 700.0, "model_seed", 3.0, NULL);
    sae_model *m = NULL;
    assert_ok(sae_model_create(&m, mc, NULL));
    sae_config_free(mc);
    sae_metrics *one = make_metrics(test_config(SAE_KIND_METRICS, "n_eval", 300.0,
                                                "compose_single_cos", 0.99, "compose_max_residual", 0.9, NULL));
    sae_metrics *two = make_metrics(test_config(SAE_KIND_METRICS, "n_eval", 300.0, "metrics_threads", 2.0,
                                                "compose_single_cos", 0.99, "compose_max_residual", 0.9, NULL));
    assert_ok(sae_metrics_compute(one, m, t));
    assert_ok(sae_metrics_compute(two, m, t));
    for (int32_t w = 1; w <= 31; w++) {
        double a = NAN, b = NAN;
        int32_t sa = sae_metrics_get(one, w, &a), sb = sae_metrics_get(two, w, &b);
        assert_int_equal(sa, sb);
        assert_true(memcmp(&a, &b, sizeof a) == 0);
    }
    for (int32_t w = 1; w <= 32; w++) {
        int64_t r1 = 0, c1 = 0, r2 = 0, c2 = 0;
        if (sae_metrics_array_shape(one, w, &r1, &c1) != SAE_OK)
            continue;
        assert_ok(sae_metrics_array_shape(two, w, &r2, &c2));
        assert_true(r1 == r2 && c1 == c2);
        float *a = array(one, w, NULL, NULL), *b = array(two, w, NULL, NULL);
        assert_true(memcmp(a, b, (size_t)(r1 * c1) * sizeof(float)) == 0);
        free(a), free(b);
    }
    for (int32_t w = 1; w <= 8; w++) {
        int64_t n1 = 0, n2 = 0;
        if (sae_metrics_list_size(one, w, &n1) != SAE_OK)
            continue;
        int64_t *a = list(one, w, &n1), *b = list(two, w, &n2);
        assert_int_equal(n1, n2);
        assert_true(n1 == 0 || memcmp(a, b, (size_t)n1 * sizeof(int64_t)) == 0);
        free(a), free(b);
    }
    print_message("composed latents (random model): %g\n", get(one, SAE_METRIC_N_COMPOSED));
    sae_metrics_free(one), sae_metrics_free(two), sae_model_free(m), sae_toy_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_permuted_dictionary),
        cmocka_unit_test(test_composed_of_3_and_7),
        cmocka_unit_test(test_child_swallowed_parent),
        cmocka_unit_test(test_exact_model_activation_metrics),
        cmocka_unit_test(test_joint_firing_and_peaks),
        cmocka_unit_test(test_nth_decoder_projection),
        cmocka_unit_test(test_failure_keeps_results_and_lists_validate),
        cmocka_unit_test(test_thread_count_invariance),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
