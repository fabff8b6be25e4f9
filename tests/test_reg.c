/* Regularisers (lib/train/reg_*.c) against an independent double-precision reference:
 * values, central finite-difference gradients for every shape x aggregation x mode,
 * edge cases (coefficient 0, zero rows, orthonormal and parallel rows) and the documented
 * relation between the chunked and the exact orthogonality penalty. */
#include "test_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rng/rng.h"
#include "train/regularisers.h"

#include <sae/train.h>

/* ---- small helpers ---------------------------------------------------------- */

static float *random_matrix(int64_t rows, int64_t cols, uint64_t seed)
{
    float *a = malloc((size_t)(rows * cols) * sizeof(float));
    sae_rng r;
    sae_rng_init(&r, seed, 0, SAE_STREAM_EXTRA);
    for (int64_t i = 0; i < rows * cols; i++)
        a[i] = (float)sae_rng_normal(&r);
    return a;
}

static double *to_double(const float *a, int64_t n)
{
    double *out = malloc((size_t)n * sizeof(double));
    for (int64_t i = 0; i < n; i++)
        out[i] = a[i];
    return out;
}

static sae_config *ortho_config(double coeff, int shape, int aggregate, int mode, int chunk)
{
    return test_config(SAE_KIND_TRAINER, "ortho_coefficient", coeff, "ortho_shape", (double)shape,
                       "ortho_aggregate", (double)aggregate, "ortho_mode", (double)mode,
                       "ortho_chunk", (double)chunk, "ortho_seed", 11.0, NULL);
}

/* Library call with its own scratch; g must be zeroed (or hold what it should add to). */
static double run_ortho(const sae_config *cfg, const float *w, int64_t L, int64_t d,
                        uint64_t step, float *g)
{
    size_t nw = sae_reg_ortho_work_floats(cfg, L, d);
    float *work = malloc((nw + 1) * sizeof(float));
    double p = sae_reg_ortho(cfg, w, L, d, d, step, g, d, work);
    free(work);
    return p;
}

/* ---- double-precision reference of the orthogonality penalty ----------------- */

static double ref_shape(int shape, double c)
{
    double e = 0.01; /* ortho_sharp_eps default */
    switch (shape) {
    case SAE_ORTHO_SHAPE_ABS: return fabs(c);
    case SAE_ORTHO_SHAPE_SQUARE: return c * c;
    default: return (log(1.0 + e) - log(1.0 + e - c * c)) / (log(1.0 + e) - log(e));
    }
}

static double ref_cos(const double *w, int64_t d, int64_t i, int64_t j)
{
    double dot = 0, ni = 0, nj = 0;
    for (int64_t k = 0; k < d; k++) {
        dot += w[i * d + k] * w[j * d + k];
        ni += w[i * d + k] * w[i * d + k];
        nj += w[j * d + k] * w[j * d + k];
    }
    return dot / sqrt(ni * nj);
}

static int ref_usable(const double *w, int64_t d, int64_t i)
{
    double s = 0;
    for (int64_t k = 0; k < d; k++)
        s += w[i * d + k] * w[i * d + k];
    return s > 0;
}

/* Penalty over groups of latents (idx, group sizes): mean over pairs inside groups, or mean
 * over usable latents of the penalty at the closest neighbour inside the group. */
static double ref_ortho(int shape, int aggregate, const double *w, int64_t d, const int32_t *idx,
                        const int64_t *sizes, int64_t n_groups, int64_t n_valid)
{
    double sum = 0, pairs = 0;
    const int32_t *g = idx;
    for (int64_t q = 0; q < n_groups; g += sizes[q], q++) {
        for (int64_t a = 0; a < sizes[q]; a++) {
            double best = -1, f_best = 0;
            for (int64_t b = 0; b < sizes[q]; b++) {
                if (a == b)
                    continue;
                double c = ref_cos(w, d, g[a], g[b]);
                if (aggregate == SAE_ORTHO_AGGREGATE_PAIRS && b > a) {
                    sum += ref_shape(shape, c);
                    pairs += 1;
                }
                if (fabs(c) > best) {
                    best = fabs(c);
                    f_best = ref_shape(shape, c);
                }
            }
            if (aggregate == SAE_ORTHO_AGGREGATE_NEAREST && best >= 0)
                sum += f_best;
        }
    }
    return aggregate == SAE_ORTHO_AGGREGATE_PAIRS ? sum / pairs : sum / (double)n_valid;
}

/* The groups the library uses: all usable rows (exact) or its chunks of this step. */
typedef struct groups {
    int32_t *idx;
    int64_t sizes[64], n_groups, n_valid;
} groups;

static groups make_groups(const sae_config *cfg, const float *w, int64_t L, int64_t d,
                          uint64_t step)
{
    groups gr;
    gr.idx = malloc((size_t)L * sizeof(int32_t));
    int64_t mode = 0, chunk = 0, seed = 0;
    assert_ok(sae_config_get_i64(cfg, SAE_REG_ORTHO_MODE, &mode));
    assert_ok(sae_config_get_i64(cfg, SAE_REG_ORTHO_CHUNK, &chunk));
    assert_ok(sae_config_get_i64(cfg, SAE_REG_ORTHO_SEED, &seed));
    gr.n_valid = sae_reg_ortho_partition(w, L, d, d, (uint64_t)seed, step, gr.idx);
    if (mode == SAE_ORTHO_MODE_EXACT) {
        gr.n_groups = 1;
        gr.sizes[0] = gr.n_valid;
        return gr;
    }
    gr.n_groups = sae_reg_ortho_chunks(gr.n_valid, chunk, NULL);
    assert_true(gr.n_groups <= 64);
    int64_t expect_start = 0;
    for (int64_t c = 0; c < gr.n_groups; c++) {
        int64_t start, size;
        sae_reg_ortho_chunk_range(gr.n_valid, gr.n_groups, c, &start, &size);
        assert_int_equal(start, expect_start); /* chunks tile the order */
        gr.sizes[c] = size;
        expect_start += size;
    }
    assert_int_equal(expect_start, gr.n_valid);
    return gr;
}

/* ---- orthogonality: finite differences ------------------------------------- */

static void check_ortho_gradient(int shape, int aggregate, int mode)
{
    const int64_t L = 10, d = 4;
    const double coeff = 0.7, h = 1e-6;
    const uint64_t step = 5;
    sae_config *cfg = ortho_config(coeff, shape, aggregate, mode, 4);
    float *w = random_matrix(L, d, 100 + (uint64_t)(shape * 4 + aggregate * 2 + mode));
    float *g = calloc((size_t)(L * d), sizeof(float));
    double p = run_ortho(cfg, w, L, d, step, g);

    groups gr = make_groups(cfg, w, L, d, step);
    if (mode == SAE_ORTHO_MODE_CHUNKED)
        assert_int_equal(gr.n_groups, 3); /* 10 latents in chunks of <= 4: 4, 3, 3 */
    double *wd = to_double(w, L * d);
    double ref = ref_ortho(shape, aggregate, wd, d, gr.idx, gr.sizes, gr.n_groups, gr.n_valid);
    assert_close(p, coeff * ref, 1e-5 * (1 + fabs(ref)));
    for (int64_t k = 0; k < L * d; k++) {
        double keep = wd[k];
        wd[k] = keep + h;
        double up = ref_ortho(shape, aggregate, wd, d, gr.idx, gr.sizes, gr.n_groups, gr.n_valid);
        wd[k] = keep - h;
        double dn = ref_ortho(shape, aggregate, wd, d, gr.idx, gr.sizes, gr.n_groups, gr.n_valid);
        wd[k] = keep;
        double fd = coeff * (up - dn) / (2 * h);
        assert_close(g[k], fd, 2e-4 + 1e-3 * fabs(fd));
    }
    free(gr.idx);
    free(wd);
    free(g);
    free(w);
    sae_config_free(cfg);
}

static void test_ortho_fd_all_combinations(void **state)
{
    (void)state;
    for (int shape = 0; shape <= 2; shape++)
        for (int aggregate = 0; aggregate <= 1; aggregate++)
            for (int mode = 0; mode <= 1; mode++)
                check_ortho_gradient(shape, aggregate, mode);
}

/* More latents than one BLAS block (256): values and a sample of gradient entries. */
static void test_ortho_exact_blocked(void **state)
{
    (void)state;
    const int64_t L = 300, d = 6;
    const double h = 1e-6;
    for (int aggregate = 0; aggregate <= 1; aggregate++) {
        sae_config *cfg = ortho_config(1.0, SAE_ORTHO_SHAPE_SHARP, aggregate, 0, 2);
        float *w = random_matrix(L, d, 7);
        float *g = calloc((size_t)(L * d), sizeof(float));
        double p = run_ortho(cfg, w, L, d, 0, g);
        groups gr = make_groups(cfg, w, L, d, 0);
        double *wd = to_double(w, L * d);
        double ref = ref_ortho(SAE_ORTHO_SHAPE_SHARP, aggregate, wd, d, gr.idx, gr.sizes, 1, L);
        assert_close(p, ref, 1e-5 * (1 + ref));
        static const int64_t probe[] = {0, 5, 255 * 6 + 2, 256 * 6, 257 * 6 + 5, 299 * 6 + 3};
        for (size_t t = 0; t < sizeof probe / sizeof probe[0]; t++) {
            int64_t k = probe[t];
            double keep = wd[k];
            wd[k] = keep + h;
            double up = ref_ortho(SAE_ORTHO_SHAPE_SHARP, aggregate, wd, d, gr.idx, gr.sizes, 1, L);
            wd[k] = keep - h;
            double dn = ref_ortho(SAE_ORTHO_SHAPE_SHARP, aggregate, wd, d, gr.idx, gr.sizes, 1, L);
            wd[k] = keep;
            double fd = (up - dn) / (2 * h);
            assert_close(g[k], fd, 1e-5 + 1e-3 * fabs(fd));
        }
        free(gr.idx);
        free(wd);
        free(g);
        free(w);
        sae_config_free(cfg);
    }
}

/* ---- orthogonality: edge cases -------------------------------------------- */

static void test_ortho_zero_coefficient_is_noop(void **state)
{
    (void)state;
    sae_config *cfg = ortho_config(0.0, SAE_ORTHO_SHAPE_SHARP, 1, 1, 4);
    assert_int_equal(sae_reg_ortho_work_floats(cfg, 1000, 64), 0);
    float *w = random_matrix(8, 3, 1);
    float g[24];
    for (int k = 0; k < 24; k++)
        g[k] = (float)k;
    assert_true(sae_reg_ortho(cfg, w, 8, 3, 3, 9, g, 3, NULL) == 0.0);
    for (int k = 0; k < 24; k++)
        assert_true(g[k] == (float)k);
    free(w);
    sae_config_free(cfg);
}

/* The penalty adds into G rather than overwriting it. */
static void test_ortho_accumulates(void **state)
{
    (void)state;
    const int64_t L = 6, d = 3;
    sae_config *cfg = ortho_config(1.0, SAE_ORTHO_SHAPE_SQUARE, 0, 0, 4);
    float *w = random_matrix(L, d, 3);
    float g0[18] = {0}, g1[18];
    for (int k = 0; k < 18; k++)
        g1[k] = 1.5f;
    double p0 = run_ortho(cfg, w, L, d, 0, g0), p1 = run_ortho(cfg, w, L, d, 0, g1);
    assert_true(p0 == p1);
    for (int k = 0; k < 18; k++)
        assert_close(g1[k], 1.5 + g0[k], 1e-6);
    free(w);
    sae_config_free(cfg);
}

static void test_ortho_zero_rows_are_skipped(void **state)
{
    (void)state;
    const int64_t L = 9, d = 4;
    for (int shape = 0; shape <= 2; shape++)
        for (int aggregate = 0; aggregate <= 1; aggregate++)
            for (int mode = 0; mode <= 1; mode++) {
                sae_config *cfg = ortho_config(1.0, shape, aggregate, mode, 3);
                float *w = random_matrix(L, d, 21);
                memset(w + 2 * d, 0, (size_t)d * sizeof(float));
                memset(w + 7 * d, 0, (size_t)d * sizeof(float));
                float *g = calloc((size_t)(L * d), sizeof(float));
                double p = run_ortho(cfg, w, L, d, 1, g);
                assert_true(isfinite(p));
                for (int64_t k = 0; k < L * d; k++)
                    assert_true(isfinite(g[k]));
                for (int64_t k = 0; k < d; k++)
                    assert_true(g[2 * d + k] == 0.0f && g[7 * d + k] == 0.0f);
                groups gr = make_groups(cfg, w, L, d, 1);
                assert_int_equal(gr.n_valid, 7);
                double *wd = to_double(w, L * d);
                double ref = ref_ortho(shape, aggregate, wd, d, gr.idx, gr.sizes, gr.n_groups, 7);
                assert_close(p, ref, 1e-5 * (1 + ref));
                free(gr.idx);
                free(wd);
                free(g);
                free(w);
                sae_config_free(cfg);
            }
    /* all rows zero, or one usable row: nothing to penalise */
    sae_config *cfg = ortho_config(1.0, SAE_ORTHO_SHAPE_ABS, 0, 0, 3);
    float w[8] = {0, 0, 0, 0, 1, 2, 3, 4}, g[8] = {0};
    assert_true(run_ortho(cfg, w, 2, 4, 0, g) == 0.0);
    for (int k = 0; k < 8; k++)
        assert_true(g[k] == 0.0f);
    sae_config_free(cfg);
}

/* Orthogonal rows of any norms: penalty 0 and no gradient, in every configuration. */
static void test_ortho_orthonormal_is_zero(void **state)
{
    (void)state;
    const int64_t L = 5, d = 7;
    float w[35] = {0};
    for (int64_t i = 0; i < L; i++)
        w[i * d + (i * 3) % d] = (float)(i + 1) * (i % 2 ? -1.0f : 1.0f);
    for (int shape = 0; shape <= 2; shape++)
        for (int aggregate = 0; aggregate <= 1; aggregate++)
            for (int mode = 0; mode <= 1; mode++) {
                sae_config *cfg = ortho_config(2.0, shape, aggregate, mode, 2);
                float g[35] = {0};
                assert_close(run_ortho(cfg, w, L, d, 3, g), 0.0, 1e-12);
                for (int k = 0; k < 35; k++)
                    assert_close(g[k], 0.0, 1e-7);
                sae_config_free(cfg);
            }
}

/* Parallel (or anti-parallel) rows reach the maximum f(1) = 1; random rows stay below. */
static void test_ortho_parallel_is_maximum(void **state)
{
    (void)state;
    const int64_t d = 5;
    float w[10] = {0.3f, -1.0f, 2.0f, 0.5f, 0.1f};
    for (int64_t k = 0; k < d; k++)
        w[d + k] = -2.5f * w[k];
    float *rnd = random_matrix(12, d, 5);
    for (int shape = 0; shape <= 2; shape++)
        for (int aggregate = 0; aggregate <= 1; aggregate++)
            for (int mode = 0; mode <= 1; mode++) {
                sae_config *cfg = ortho_config(1.0, shape, aggregate, mode, 4);
                float g[10] = {0}, *gr = calloc(60, sizeof(float));
                assert_close(run_ortho(cfg, w, 2, d, 0, g), 1.0, 1e-6);
                for (int k = 0; k < 10; k++)
                    assert_true(isfinite(g[k]));
                double p = run_ortho(cfg, rnd, 12, d, 0, gr);
                assert_true(p > 0.0 && p < 1.0);
                free(gr);
                sae_config_free(cfg);
            }
    free(rnd);
    /* the shapes themselves: f(0) = 0, f(+-1) = 1, increasing in |c|, sharp has the largest
     * slope near 1 and the smallest near 0 */
    for (int shape = 0; shape <= 2; shape++) {
        double dv, prev = -1;
        assert_close(sae_reg_ortho_shape(shape, 0.01, 0.0, &dv), 0.0, 1e-15);
        assert_close(sae_reg_ortho_shape(shape, 0.01, -1.0, &dv), 1.0, 1e-12);
        for (double c = 0; c <= 1.0; c += 0.05) {
            double f = sae_reg_ortho_shape(shape, 0.01, c, &dv);
            assert_true(f > prev);
            prev = f;
        }
    }
    double d_sq, d_sh;
    (void)sae_reg_ortho_shape(SAE_ORTHO_SHAPE_SQUARE, 0.01, 0.99, &d_sq);
    (void)sae_reg_ortho_shape(SAE_ORTHO_SHAPE_SHARP, 0.01, 0.99, &d_sh);
    assert_true(d_sh > 5 * d_sq);
    (void)sae_reg_ortho_shape(SAE_ORTHO_SHAPE_SQUARE, 0.01, 0.2, &d_sq);
    (void)sae_reg_ortho_shape(SAE_ORTHO_SHAPE_SHARP, 0.01, 0.2, &d_sh);
    assert_true(d_sh < d_sq);
}

/* Rows are processed in parallel with the trainer's n_threads; results do not change. */
static void test_ortho_thread_count_invariant(void **state)
{
    (void)state;
    const int64_t L = 300, d = 5;
    float *w = random_matrix(L, d, 41);
    for (int aggregate = 0; aggregate <= 1; aggregate++)
        for (int mode = 0; mode <= 1; mode++) {
            float *g1 = calloc((size_t)(L * d), sizeof(float));
            float *g4 = calloc((size_t)(L * d), sizeof(float));
            sae_config *cfg = ortho_config(1.0, SAE_ORTHO_SHAPE_SHARP, aggregate, mode, 64);
            double p1 = run_ortho(cfg, w, L, d, 2, g1);
            assert_ok(sae_config_set_i64(cfg, SAE_TRAINER_N_THREADS, 4));
            double p4 = run_ortho(cfg, w, L, d, 2, g4);
            assert_true(p1 == p4);
            assert_memory_equal(g1, g4, (size_t)(L * d) * sizeof(float));
            sae_config_free(cfg);
            free(g1);
            free(g4);
        }
    free(w);
}

/* ---- orthogonality: chunked vs exact ----------------------------------------- */

/* Mean over pairs: every pair lands in a common chunk with the same probability and the
 * number of within-chunk pairs is fixed, so the chunked penalty is unbiased for the exact
 * one. Checked with a 5-sigma band over many steps. Closest neighbour: the neighbour inside
 * a chunk is never closer than the global one, so chunked <= exact at every step. */
static void test_ortho_chunked_vs_exact(void **state)
{
    (void)state;
    const int64_t L = 13, d = 4, steps = 4000;
    float *w = random_matrix(L, d, 77);
    float *g = calloc((size_t)(L * d), sizeof(float));
    for (int shape = 0; shape <= 2; shape++) {
        sae_config *exact = ortho_config(1.0, shape, SAE_ORTHO_AGGREGATE_PAIRS, 0, 4);
        sae_config *chunked = ortho_config(1.0, shape, SAE_ORTHO_AGGREGATE_PAIRS, 1, 4);
        double pe = run_ortho(exact, w, L, d, 0, g), s1 = 0, s2 = 0;
        for (int64_t t = 0; t < steps; t++) {
            double pc = run_ortho(chunked, w, L, d, (uint64_t)t, g);
            s1 += pc;
            s2 += pc * pc;
        }
        double mean = s1 / steps, sd = sqrt((s2 / steps - mean * mean) / steps);
        assert_true(sd > 0);
        assert_close(mean, pe, 5 * sd);
        sae_config_free(exact);
        sae_config_free(chunked);

        exact = ortho_config(1.0, shape, SAE_ORTHO_AGGREGATE_NEAREST, 0, 4);
        chunked = ortho_config(1.0, shape, SAE_ORTHO_AGGREGATE_NEAREST, 1, 4);
        pe = run_ortho(exact, w, L, d, 0, g);
        int strictly_below = 0;
        for (int64_t t = 0; t < 200; t++) {
            double pc = run_ortho(chunked, w, L, d, (uint64_t)t, g);
            assert_true(pc <= pe + 1e-6);
            strictly_below += pc < pe - 1e-6;
        }
        assert_true(strictly_below > 100);
        sae_config_free(exact);
        sae_config_free(chunked);

        /* one chunk holding every latent is the exact penalty */
        for (int aggregate = 0; aggregate <= 1; aggregate++) {
            exact = ortho_config(1.0, shape, aggregate, 0, 4);
            chunked = ortho_config(1.0, shape, aggregate, 1, 64);
            assert_close(run_ortho(chunked, w, L, d, 3, g), run_ortho(exact, w, L, d, 0, g), 1e-6);
            sae_config_free(exact);
            sae_config_free(chunked);
        }
    }
    free(g);
    free(w);
}

/* The chunking is a pure function of (seed, step) and changes with the step. */
static void test_ortho_partition_reproducible(void **state)
{
    (void)state;
    const int64_t L = 50, d = 3;
    float *w = random_matrix(L, d, 8);
    int32_t a[50], b[50], c[50];
    assert_int_equal(sae_reg_ortho_partition(w, L, d, d, 1, 10, a), L);
    assert_int_equal(sae_reg_ortho_partition(w, L, d, d, 1, 10, b), L);
    assert_int_equal(sae_reg_ortho_partition(w, L, d, d, 1, 11, c), L);
    assert_memory_equal(a, b, sizeof a);
    assert_memory_not_equal(a, c, sizeof a);
    int seen[50] = {0};
    for (int i = 0; i < 50; i++)
        seen[a[i]]++;
    for (int i = 0; i < 50; i++)
        assert_int_equal(seen[i], 1);
    int64_t max_size;
    assert_int_equal(sae_reg_ortho_chunks(50, 16, &max_size), 4);
    assert_int_equal(max_size, 13);
    assert_int_equal(sae_reg_ortho_chunks(16, 16, &max_size), 1);
    assert_int_equal(max_size, 16);
    free(w);
}

/* ---- low-activation penalty ------------------------------------------------- */

static sae_config *lowact_config(double coeff, double tau)
{
    return test_config(SAE_KIND_TRAINER, "lowact_coefficient", coeff, "lowact_threshold", tau,
                       NULL);
}

/* Tied ReLU SAE: pre = W x + b, z = ReLU(pre). Reference in double of the whole chain
 * P(W, b) so that the finite differences see the penalty through the activations and
 * through the cosine. */
static double ref_lowact_chain(const double *x, int64_t n, int64_t d, const double *w,
                               const double *bias, int64_t L, double tau)
{
    double sum = 0;
    for (int64_t r = 0; r < n; r++)
        for (int64_t i = 0; i < L; i++) {
            double dot = bias[i], xx = 0, ww = 0, xw = 0;
            for (int64_t k = 0; k < d; k++) {
                dot += w[i * d + k] * x[r * d + k];
                xw += w[i * d + k] * x[r * d + k];
                xx += x[r * d + k] * x[r * d + k];
                ww += w[i * d + k] * w[i * d + k];
            }
            double z = dot > 0 ? dot : 0;
            if (z > 0 && z < tau && xx > 0 && ww > 0) {
                double c = xw / sqrt(xx * ww);
                sum += (1 - z / tau) * c * c;
            }
        }
    return sum / (double)n;
}

static void test_lowact_fd(void **state)
{
    (void)state;
    const int64_t n = 12, d = 5, L = 7;
    const double coeff = 1.3, tau = 1.2, h = 1e-6;
    sae_config *cfg = lowact_config(coeff, tau);
    float *x = random_matrix(n, d, 31), *w = random_matrix(L, d, 32), *bf = random_matrix(1, L, 33);
    for (int64_t i = 0; i < L * d; i++)
        w[i] *= 0.4f; /* activations spread over (0, tau) and above */
    float pre[84], z[84], g_pre[84] = {0}, g_w[35] = {0};
    double bd[7];
    for (int64_t i = 0; i < L; i++)
        bd[i] = bf[i] * 0.3;
    int in_window = 0;
    for (int64_t r = 0; r < n; r++)
        for (int64_t i = 0; i < L; i++) {
            double p = bd[i];
            for (int64_t k = 0; k < d; k++)
                p += (double)w[i * d + k] * x[r * d + k];
            pre[r * L + i] = (float)p;
            z[r * L + i] = p > 0 ? (float)p : 0.0f;
            in_window += p > 0 && p < tau;
        }
    assert_true(in_window > 10);
    size_t nw = sae_reg_lowact_work_floats(cfg, n, L, d);
    assert_true(nw >= (size_t)(n + L));
    float *work = malloc(nw * sizeof(float));
    double val = sae_reg_lowact(cfg, x, n, d, d, w, L, d, pre, z, g_pre, g_w, d, work);

    double *xd = to_double(x, n * d), *wd = to_double(w, L * d);
    double ref = ref_lowact_chain(xd, n, d, wd, bd, L, tau);
    assert_close(val, coeff * ref, 1e-5 * (1 + ref));

    /* total gradient w.r.t. W through the chain = g_w + sum_r g_pre[r,i] x_r (tied encoder) */
    for (int64_t i = 0; i < L; i++)
        for (int64_t k = 0; k < d; k++) {
            double total = g_w[i * d + k];
            for (int64_t r = 0; r < n; r++)
                total += (double)g_pre[r * L + i] * x[r * d + k];
            double keep = wd[i * d + k];
            wd[i * d + k] = keep + h;
            double up = ref_lowact_chain(xd, n, d, wd, bd, L, tau);
            wd[i * d + k] = keep - h;
            double dn = ref_lowact_chain(xd, n, d, wd, bd, L, tau);
            wd[i * d + k] = keep;
            double fd = coeff * (up - dn) / (2 * h);
            assert_close(total, fd, 2e-5 + 1e-3 * fabs(fd));
        }
    /* gradient w.r.t. the encoder bias = sum_r g_pre[r, i] */
    for (int64_t i = 0; i < L; i++) {
        double total = 0;
        for (int64_t r = 0; r < n; r++)
            total += g_pre[r * L + i];
        double keep = bd[i];
        bd[i] = keep + h;
        double up = ref_lowact_chain(xd, n, d, wd, bd, L, tau);
        bd[i] = keep - h;
        double dn = ref_lowact_chain(xd, n, d, wd, bd, L, tau);
        bd[i] = keep;
        assert_close(total, coeff * (up - dn) / (2 * h), 2e-5);
    }
    /* g_pre is zero outside the window */
    for (int64_t k = 0; k < n * L; k++)
        if (!(z[k] > 0 && z[k] < tau))
            assert_true(g_pre[k] == 0.0f);
    free(work);
    free(xd);
    free(wd);
    free(x);
    free(w);
    free(bf);
    sae_config_free(cfg);
}

static void test_lowact_edges(void **state)
{
    (void)state;
    /* coefficient 0: no scratch, nothing touched */
    sae_config *off = lowact_config(0.0, 1.0);
    assert_int_equal(sae_reg_lowact_work_floats(off, 100, 50, 8), 0);
    float x[6] = {1, 0, 0, 0, 1, 0}, w[6] = {1, 1, 0, 0, 0, 0}, pre[4] = {0.5f, 0.2f, 0.7f, 0};
    float z[4] = {0.5f, 0.2f, 0.7f, 0}, g_pre[4] = {9, 9, 9, 9}, g_w[6] = {9, 9, 9, 9, 9, 9};
    assert_true(sae_reg_lowact(off, x, 2, 3, 3, w, 2, 3, pre, z, g_pre, g_w, 3, NULL) == 0.0);
    for (int k = 0; k < 4; k++)
        assert_true(g_pre[k] == 9.0f);
    sae_config_free(off);

    /* hand-computed: x0 = e0, x1 = e1, w0 = (1,1,0) (cos 1/sqrt2 with both), w1 = 0 (skipped)
     * z = [[0.5, 0.2], [0.7, 0]], tau = 1: terms (1-0.5)/2 + (1-0.7)/2 = 0.4, mean 0.2 */
    sae_config *cfg = lowact_config(1.0, 1.0);
    float work[8], gp[4] = {0}, gw[6] = {0};
    double v = sae_reg_lowact(cfg, x, 2, 3, 3, w, 2, 3, pre, z, gp, gw, 3, work);
    assert_close(v, 0.2, 1e-7);
    assert_close(gp[0], -0.25, 1e-7); /* -(1/n) c^2 / tau = -0.5 * 0.5 */
    assert_close(gp[2], -0.25, 1e-7);
    assert_true(gp[1] == 0.0f && gp[3] == 0.0f); /* zero direction; not firing */
    for (int k = 0; k < 6; k++)
        assert_true(isfinite(gw[k]));
    for (int k = 3; k < 6; k++)
        assert_true(gw[k] == 0.0f);
    sae_config_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ortho_fd_all_combinations),
        cmocka_unit_test(test_ortho_exact_blocked),
        cmocka_unit_test(test_ortho_zero_coefficient_is_noop),
        cmocka_unit_test(test_ortho_accumulates),
        cmocka_unit_test(test_ortho_zero_rows_are_skipped),
        cmocka_unit_test(test_ortho_orthonormal_is_zero),
        cmocka_unit_test(test_ortho_parallel_is_maximum),
        cmocka_unit_test(test_ortho_thread_count_invariant),
        cmocka_unit_test(test_ortho_chunked_vs_exact),
        cmocka_unit_test(test_ortho_partition_reproducible),
        cmocka_unit_test(test_lowact_fd),
        cmocka_unit_test(test_lowact_edges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
