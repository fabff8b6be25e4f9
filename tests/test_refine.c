/* Exact top-k from approximate scores (lib/model/refine.c, lib/linalg/bf16.c):
 * - the error bound sae_score_err holds for every low-precision kernel this CPU runs
 *   (AMX, AVX512-BF16, int16) and for the float BLAS product, over rows of very different
 *   scales, and for rows equal to columns (the int16 kernel's largest integer sums);
 * - sae_topk_refine_row selects exactly what sae_topk_row selects on the exact scores, for
 *   approximations pushed to the edges of the bound, ties, masks and the whole-row fallback;
 * - TopK, BatchTopK and Matryoshka trainers (with AuxK, and with heavily tied encoder rows)
 *   give the same bits with bf16_scores on and off (with each kernel), and with the
 *   BatchTopK upper-bound heap shrunk so that every step takes the exact fallback
 *   (lib/train/select.c). */
#include "test_util.h"

#include "core/core.h"
#include "linalg/bf16.h"
#include "linalg/lanes.h"
#include "linalg/linalg.h"
#include "model/refine.h"
#include "model/sparse.h"
#include "train/trainer_internal.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint32_t lcg(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

static float uniform(uint32_t *s) { return (float)lcg(s) / 16777216.0f - 0.5f; }

/* e[r][j] = fl(sae_dotf_lanes(x_r, w_j) + b_j): the scores the selection is defined on. */
static void exact_scores(const float *x, int64_t n, const float *w, int64_t l, const float *b,
                         int64_t d, float *e)
{
    for (int64_t r = 0; r < n; r++)
        for (int64_t j = 0; j < l; j++)
            e[r * l + j] = sae_dotf_lanes(x + r * d, w + j * d, d) + b[j];
}

static void norms(const float *w, int64_t l, int64_t d, const float *b, double *wmax,
                  double *bmax)
{
    *wmax = *bmax = 0.0;
    for (int64_t j = 0; j < l; j++) {
        *wmax = fmax(*wmax, sae_norm_f64(w + j * d, d));
        *bmax = fmax(*bmax, fabs((double)b[j]));
    }
}

/* Rows of scale 10^-4 .. 10^4, some with a few entries 10^6 times larger than the rest and
 * some with subnormal entries; row 2 is zero and row 4 all subnormal. */
static void fill_rows(float *x, int64_t n, int64_t d, uint32_t seed)
{
    for (int64_t r = 0; r < n; r++) {
        float scale = powf(10.0f, (float)(r % 9) - 4.0f);
        for (int64_t i = 0; i < d; i++) {
            float v = uniform(&seed) * scale;
            if (r % 5 == 1 && i % 17 == 0)
                v *= 1e6f;
            if (r % 7 == 3 && i % 3 == 0)
                v = 1e-40f * (float)(i % 11);
            if (r == 2 || r == 4)
                v = r == 2 ? 0.0f : 1e-39f * uniform(&seed);
            x[r * d + i] = v;
        }
    }
}

/* ||x - bf16(x)|| with round-to-nearest-even to bfloat16, in double. */
static double residual_ref(const float *x, int64_t d)
{
    double s = 0.0;
    for (int64_t i = 0; i < d; i++) {
        uint32_t u;
        memcpy(&u, &x[i], sizeof u);
        u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
        float r;
        memcpy(&r, &u, sizeof r);
        s += ((double)x[i] - (double)r) * ((double)x[i] - (double)r);
    }
    return sqrt(s);
}

/* ||x - s q|| for row r of int16 panels of `tile` rows (np pair words per row). */
static double residual_i16(const float *x, const uint32_t *packed, int64_t r, int64_t tile,
                           int64_t np, float s, int64_t d)
{
    const uint32_t *col = packed + r / tile * tile * np + r % tile;
    double e2 = 0.0;
    for (int64_t i = 0; i < 2 * np; i++) {
        uint32_t word = col[i / 2 * tile];
        int16_t q = (int16_t)(uint16_t)(i % 2 ? word >> 16 : word & 0xffffu);
        if (i >= d) {
            assert_int_equal(q, 0);
            continue;
        }
        double e = (double)x[i] - (double)s * (double)q;
        e2 += e * e;
    }
    return sqrt(e2);
}

/* The packed rows' residuals against the packed data (int16: also the scales). */
static void check_residuals(const float *x, int64_t n, int64_t d, const uint32_t *packed,
                            int64_t tile, const double *ex, const float *sc)
{
    int int16 = sae_bf16_kernel() == SAE_BF16_INT16;
    for (int64_t r = 0; r < n; r++) {
        const float *row = x + r * d;
        double want = int16 ? residual_i16(row, packed, r, tile, sae_bf16_pairs(d), sc[r], d)
                            : residual_ref(row, d);
        if (!(ex[r] >= want && ex[r] <= want * 1.001 + 1e-38))
            fail_msg("row %lld: residual %g, want %g", (long long)r, ex[r], want);
        double xn = sae_norm_f64(row, d);
        if (int16 && xn > 1e-33 && !(fabs((double)sc[r] - xn / 32767.0) <= 1e-5 * xn / 32767.0))
            fail_msg("row %lld: scale %g, norm %g", (long long)r, (double)sc[r], xn);
    }
}

/* copies > 0: the first `copies` columns are the first rows (the largest products). */
static void check_bound(int bf16, int64_t n, int64_t l, int64_t d, int64_t copies)
{
    float *x = malloc((size_t)(n * d) * sizeof *x), *w = malloc((size_t)(l * d) * sizeof *w);
    float *b = malloc((size_t)l * sizeof *b), *a = malloc((size_t)(n * l) * sizeof *a);
    float *e = malloc((size_t)(n * l) * sizeof *e);
    uint32_t *pa = malloc((size_t)sae_bf16_rows_words(n, d) * 4);
    uint32_t *pb = malloc((size_t)sae_bf16_cols_words(l, d) * 4);
    double *ex = calloc((size_t)n, sizeof *ex), *ew = calloc((size_t)l, sizeof *ew);
    float *sx = calloc((size_t)n, sizeof *sx), *sw = calloc((size_t)l, sizeof *sw);
    assert_true(x && w && b && a && e && pa && pb && ex && ew && sx && sw);
    fill_rows(x, n, d, 11u);
    fill_rows(w, l, d, 12u);
    memcpy(w, x, (size_t)(copies * d) * sizeof *w);
    uint32_t s = 13u;
    for (int64_t j = 0; j < l; j++)
        b[j] = uniform(&s) * 3.0f;
    exact_scores(x, n, w, l, b, d, e);
    double wmax, bmax, ewmax = 0.0, worst = 0.0;
    if (bf16) {
        sae_bf16_pack_rows(x, n, d, d, pa, ex, sx);
        sae_bf16_pack_cols(w, l, d, d, pb, ew, sw);
        sae_bf16_scores(pa, sx, n, pb, sw, l, d, b, a, l);
        if (sae_bf16_kernel() != SAE_BF16_AMX) /* AMX rows are plain rows (a tile of 1) */
            check_residuals(x, n, d, pa, SAE_BF16_MR, ex, sx);
        check_residuals(w, l, d, pb, SAE_BF16_NR, ew, sw);
    } else {
        assert_ok(sae_gemm_blocked(1, 0, 1, n, l, d, 1.0f, x, d, w, d, 0.0f, a, l, b));
    }
    norms(w, l, d, b, &wmax, &bmax);
    for (int64_t j = 0; j < l; j++) {
        assert_true(ew[j] <= sae_norm_f64(w + j * d, d) / 256.0 + 1e-30); /* <= u |w_j| */
        ewmax = fmax(ewmax, ew[j]);
    }
    for (int64_t r = 0; r < n; r++) {
        double xn = sae_norm_f64(x + r * d, d);
        double err = sae_score_err(bf16, d, xn, wmax, bmax, ex[r], ewmax);
        assert_true(err < 0.01 * (xn * wmax + bmax) + 1e-20); /* a useful bound */
        for (int64_t j = 0; j < l; j++) {
            double gap = fabs((double)a[r * l + j] - (double)e[r * l + j]);
            if (gap > err)
                fail_msg("bf16 %d row %lld col %lld: |a - e| = %g > bound %g", bf16,
                         (long long)r, (long long)j, gap, err);
            worst = fmax(worst, gap / err);
        }
    }
    print_message("bf16 %d, d %lld: largest |a - e| is %.3f of the bound\n", bf16, (long long)d,
                  worst);
    free(x), free(w), free(b), free(a), free(e), free(pa), free(pb), free(ex), free(ew);
    free(sx), free(sw);
}

static void test_error_bound_holds(void **state)
{
    (void)state;
    check_bound(0, 40, 77, 96, 0);
    check_bound(0, 13, 64, 257, 0);
    static const char *const names[] = {"", "", "int16", "AVX512-BF16", "AMX"};
    int ran = 0;
    for (int kernel = SAE_BF16_AMX; kernel >= SAE_BF16_INT16; kernel--) {
        sae_bf16_use_kernel(kernel);
        if (sae_bf16_kernel() != kernel)
            continue; /* not on this CPU */
        print_message("kernel %s\n", names[kernel]);
        check_bound(1, 40, 77, 96, 0);
        check_bound(1, 13, 64, 257, 0); /* odd d: a zero half pair, padding to whole tiles */
        check_bound(1, 25, 33, 768, 0);
        check_bound(1, 70, 100, 40, 0); /* fewer pairs than one tile row */
        check_bound(1, 30, 45, 1000, 30);
        ran++;
    }
    if (ran == 0)
        print_message("no low-precision kernel on this CPU or build: only float products\n");
    sae_bf16_use_kernel(SAE_BF16_AMX);
}

/* Approximations at the edges of the bound: a_j = e_j + delta_j with |delta_j| <= err,
 * chosen to make wrong choices as likely as possible (the true top pushed down, the rest up). */
static void check_refine(int64_t l, int64_t k, int64_t d, double err_scale, int ties, int mask,
                         uint32_t seed)
{
    float *x = malloc((size_t)d * sizeof *x), *w = malloc((size_t)(l * d) * sizeof *w);
    float *b = malloc((size_t)l * sizeof *b), *e = malloc((size_t)l * sizeof *e);
    float *a = malloc((size_t)l * sizeof *a);
    uint8_t *allow = malloc((size_t)l);
    int32_t *idx = malloc((size_t)k * sizeof *idx), *ridx = malloc((size_t)k * sizeof *ridx);
    float *val = malloc((size_t)k * sizeof *val), *rval = malloc((size_t)k * sizeof *rval);
    assert_true(x && w && b && e && a && allow && idx && ridx && val && rval);
    for (int64_t i = 0; i < d; i++)
        x[i] = uniform(&seed);
    for (int64_t j = 0; j < l; j++) {
        for (int64_t i = 0; i < d; i++)
            w[j * d + i] = uniform(&seed);
        if (ties && j % 3 == 2) /* exact ties: a copy of an earlier row */
            memcpy(w + j * d, w + (j / 2) * d, (size_t)d * sizeof(float));
        b[j] = ties ? 0.0f : uniform(&seed) * 0.1f;
        allow[j] = (uint8_t)(!mask || lcg(&seed) % 3 != 0);
    }
    exact_scores(x, 1, w, l, b, d, e);
    double wmax, bmax;
    norms(w, l, d, b, &wmax, &bmax);
    double xn = sae_norm_f64(x, d);
    double err = sae_score_err(1, d, xn, wmax, bmax, xn / 256.0, wmax / 256.0) * err_scale;
    int64_t want = sae_topk_row(e, l, k, mask ? allow : NULL, ridx, rval);
    float kth = INFINITY;
    for (int64_t c = 0; c < want; c++)
        kth = fminf(kth, rval[c]);
    for (int64_t j = 0; j < l; j++) { /* the true top down by err, the others up by err */
        double delta = e[j] >= kth ? -err : err;
        if (lcg(&seed) % 4 == 0)
            delta *= (double)(lcg(&seed) % 1000) / 1000.0;
        a[j] = (float)((double)e[j] + delta);
        if (fabs((double)a[j] - (double)e[j]) > err) /* rounding: step back inside */
            a[j] = nextafterf(a[j], e[j]);
    }
    int64_t got = sae_topk_refine_row(a, l, k, mask ? allow : NULL, err, x, w, b, d, idx, val);
    assert_int_equal(got, want);
    for (int64_t c = 0; c < got; c++) {
        if (idx[c] != ridx[c] || sae_f32_bits(val[c]) != sae_f32_bits(rval[c]))
            fail_msg("l %lld k %lld entry %lld: (%d, %.9g) against (%d, %.9g)", (long long)l,
                     (long long)k, (long long)c, idx[c], val[c], ridx[c], rval[c]);
    }
    free(x), free(w), free(b), free(e), free(a), free(allow);
    free(idx), free(ridx), free(val), free(rval);
}

static void test_refine_selects_exactly(void **state)
{
    (void)state;
    uint32_t seed = 1u;
    for (int rep = 0; rep < 40; rep++) {
        int64_t l = 50 + rep * 37, k = 1 + rep % 12, d = 8 + rep % 5 * 23;
        check_refine(l, k, d, 1.0, rep % 2, rep % 3 == 0, seed++);
        check_refine(l, k, d, 0.01, rep % 2, rep % 3 == 1, seed++);
    }
    check_refine(2000, 8, 32, 50.0, 0, 0, 99u); /* too many candidates: whole-row fallback */
    check_refine(700, 40, 16, 1.0, 1, 1, 98u);
    check_refine(10, 20, 16, 1.0, 0, 0, 97u);    /* k > l */
}

/* Encoder and decoder buffers of the trainer runs below (768 x 96 floats each). */
static void alloc_params(float **enc, float **dec, int n)
{
    for (int i = 0; i < n; i++) {
        enc[i] = malloc(768 * 96 * sizeof(float));
        dec[i] = malloc(768 * 96 * sizeof(float));
        assert_true(enc[i] != NULL && dec[i] != NULL);
    }
}

static void free_params(float **enc, float **dec, int n)
{
    for (int i = 0; i < n; i++) {
        free(enc[i]);
        free(dec[i]);
    }
}

/* The toy of the trainer runs below: 200 features in d 96. */
static sae_toy *runs_toy(void)
{
    sae_config *tc = test_config(SAE_KIND_TOY, "n_features", 200.0, "d", 96.0, "fire_prob",
                                 0.03, NULL);
    sae_toy *toy = NULL;
    assert_ok(sae_toy_create(&toy, tc, NULL));
    sae_config_free(tc);
    return toy;
}

/* W_enc and W_dec into w_enc, w_dec; then the trainer and the model are freed. */
static void take_params(sae_trainer *t, sae_model *m, float *w_enc, float *w_dec)
{
    assert_ok(sae_model_get_tensor(m, SAE_TENSOR_W_ENC, w_enc, 768));
    assert_ok(sae_model_get_tensor(m, SAE_TENSOR_W_DEC, w_dec, 96));
    sae_trainer_free(t);
    sae_model_free(m);
}

/* A few steps of a TopK-family trainer with AuxK; tie_rows > 0 first makes that many
 * encoder rows copies of row 0 (heavy ties at the batch cut). mode 0: float scores, 1:
 * bf16_scores on, 2: bf16_scores on and, after the first step, an upper-bound heap of only
 * K entries, which can never certify the batch cut (every later step takes the fallback),
 * 3: bf16_scores on with the VDPBF16PS kernel even where AMX runs, 4: with the int16
 * kernel even where a bfloat16 one runs (each: the best one below where it does not), 5: as
 * 1 with two trainer threads (BatchTopK over several blocks: a block's upper bounds wait
 * beside the next block's lower ones, and a block whose list overflows goes row by row). */
static void train_sparse(const sae_toy *toy, int64_t arch, int mode, int64_t tie_rows,
                         double chunk_rows, float *w_enc, float *w_dec, double *l0)
{
    sae_config *mc = test_config(SAE_KIND_MODEL, "d_in", 96.0, "n_latents", 768.0, "arch",
                                 (double)arch, "k", 6.0, "model_seed", 5.0, NULL);
    if (arch == SAE_ARCH_MATRYOSHKA) {
        int64_t widths[2] = {192, 768};
        assert_ok(sae_config_set_i64_array(mc, SAE_MODEL_MATRYOSHKA_WIDTHS, widths, 2));
    }
    sae_config *rc = test_config(SAE_KIND_TRAINER, "batch_size", 300.0, "lr", 3e-3,
                                 "dead_steps", 1.0, "aux_coefficient", 0.1, "bf16_scores",
                                 mode > 0 ? 1.0 : 0.0, "chunk_rows", chunk_rows, "n_threads",
                                 mode == 5 ? 2.0 : 1.0, "thread_min_work", 0.0, NULL);
    sae_model *m = NULL;
    sae_trainer *t = NULL;
    assert_ok(sae_model_create(&m, mc, NULL));
    if (tie_rows > 0) { /* W_enc is d_in x n_latents: latent j is column j */
        assert_ok(sae_model_get_tensor(m, SAE_TENSOR_W_ENC, w_enc, 768));
        for (int64_t i = 0; i < 96; i++)
            for (int64_t j = 1; j < tie_rows; j++)
                w_enc[i * 768 + j] = w_enc[i * 768];
        assert_ok(sae_model_set_tensor(m, SAE_TENSOR_W_ENC, w_enc, 768));
    }
    sae_bf16_use_kernel(mode == 3 ? SAE_BF16_AVX512 : mode == 4 ? SAE_BF16_INT16 : SAE_BF16_AMX);
    assert_ok(sae_trainer_create(&t, m, rc, NULL));
    assert_ok(sae_train_ws_reserve(t, 300));
    assert_true((t->ws.bf_enc != NULL) == (mode > 0 && sae_bf16_available())); /* it runs */
    sae_config_free(mc);
    sae_config_free(rc);
    int64_t steps = test_small_scale() ? 3 : 6;
    assert_ok(sae_trainer_train_toy(t, toy, 1));
    if (mode == 2 && sae_arch_is_batch(arch)) {
        assert_true(t->ws.heap_hi.cap > t->ws.heap.cap);
        t->ws.heap_hi.cap = t->ws.heap.cap;
    }
    assert_ok(sae_trainer_train_toy(t, toy, steps - 1));
    assert_ok(sae_trainer_stat(t, SAE_STAT_L0, l0));
    take_params(t, m, w_enc, w_dec);
    sae_bf16_use_kernel(SAE_BF16_AMX);
}

static void test_trainer_same_bits_with_and_without_bf16(void **state)
{
    (void)state;
    size_t count = 768 * 96;
    float *enc[6], *dec[6];
    double l0[6];
    alloc_params(enc, dec, 6);
    sae_toy *toy = runs_toy();
    const struct {
        int64_t arch, ties;
        double chunk; /* 300: the whole batch in one block */
    } runs[] = {{SAE_ARCH_TOPK, 0, 128},      {SAE_ARCH_BATCHTOPK, 0, 128},
                {SAE_ARCH_MATRYOSHKA, 0, 128}, {SAE_ARCH_TOPK, 300, 128},
                {SAE_ARCH_BATCHTOPK, 768, 128}, {SAE_ARCH_BATCHTOPK, 0, 300},
                {SAE_ARCH_MATRYOSHKA, 768, 300}};
    print_message("low-precision kernel: %s\n", sae_bf16_kernel() == SAE_BF16_AMX ? "AMX"
                                                 : sae_bf16_kernel() == SAE_BF16_AVX512
                                                     ? "AVX512-BF16"
                                                 : sae_bf16_kernel() == SAE_BF16_INT16 ? "int16"
                                                                                       : "none");
    /* modes 3 and 4 only where they run a kernel that mode 1 does not */
    int kernel_of[6] = {0, 0, 0, SAE_BF16_AVX512, SAE_BF16_INT16, 0};
    sae_bf16_use_kernel(SAE_BF16_AMX);
    kernel_of[1] = kernel_of[2] = sae_bf16_kernel();
    for (int i = 3; i < 5; i++) {
        sae_bf16_use_kernel(kernel_of[i]);
        kernel_of[i] = sae_bf16_kernel();
    }
    sae_bf16_use_kernel(SAE_BF16_AMX);
    for (size_t r = 0; r < sizeof runs / sizeof runs[0]; r++) {
        for (int i = 0; i < 6; i++) {
            if (i >= 3 && i <= 4 &&
                (kernel_of[i] == kernel_of[1] || kernel_of[i] == kernel_of[i - 1]))
                continue;
            train_sparse(toy, runs[r].arch, i, runs[r].ties, runs[r].chunk, enc[i], dec[i],
                         &l0[i]);
            if (memcmp(enc[0], enc[i], count * sizeof(float)) != 0 ||
                memcmp(dec[0], dec[i], count * sizeof(float)) != 0)
                fail_msg("arch %lld, %lld tied rows: mode %d differs from float scores",
                         (long long)runs[r].arch, (long long)runs[r].ties, i);
        }
        print_message("arch %lld, %lld tied rows: L0 %.2f\n", (long long)runs[r].arch,
                      (long long)runs[r].ties, l0[1]);
        assert_true(l0[1] > 0.0 && l0[1] <= 6.0 + 1e-9);
    }
    free_params(enc, dec, 6);
    sae_toy_free(toy);
}

/* A BatchTopK trainer (no pre-bias, learning rate 0) with the given encoder and blocks of
 * `chunk` rows, after one step on the n rows x (d values each). */
static sae_trainer *batch_step(int64_t d, int64_t l, int64_t k, const float *w_enc,
                               const float *b_enc, const float *x, int64_t n, int64_t chunk,
                               sae_model **mout)
{
    sae_config *mc = test_config(SAE_KIND_MODEL, "d_in", (double)d, "n_latents", (double)l,
                                 "arch", (double)SAE_ARCH_BATCHTOPK, "k", (double)k, "pre_bias",
                                 0.0, NULL);
    sae_config *rc = test_config(SAE_KIND_TRAINER, "batch_size", (double)n, "lr", 0.0,
                                 "chunk_rows", (double)chunk, NULL);
    sae_model *m = NULL;
    sae_trainer *t = NULL;
    assert_ok(sae_model_create(&m, mc, NULL));
    assert_ok(sae_model_set_tensor(m, SAE_TENSOR_W_ENC, w_enc, l));
    assert_ok(sae_model_set_tensor(m, SAE_TENSOR_B_ENC, b_enc, l));
    assert_ok(sae_trainer_create(&t, m, rc, NULL));
    sae_config_free(mc);
    sae_config_free(rc);
    assert_ok(sae_trainer_step(t, x, n, d));
    assert_int_equal(t->ws.chunk, chunk);
    *mout = m;
    return t;
}

/* BatchTopK with fewer than K positive scores, all of them subnormal (inputs 1e-20,
 * encoder weights about 3e-20: bounds and margins below FLT_MIN too): the cut is 0 and
 * every positive score is kept, with the batch in one block and in four. */
static void test_batch_cut_keeps_subnormal_scores(void **state)
{
    (void)state;
    float w_enc[8 * 16], x[8 * 8], zero[16] = {0};
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < 16; j++) /* latents 0-2 score > 0 on every row, the rest < 0 */
            w_enc[i * 16 + j] = (j < 3 ? 1.0f : -1.0f) * (1.0f + 0.1f * (float)(i + j)) * 3e-20f;
    for (int r = 0; r < 8; r++)
        for (int i = 0; i < 8; i++)
            x[r * 8 + i] = (1.0f + 0.05f * (float)(r * i % 5)) * 1e-20f;
    for (int blocks = 1; blocks <= 4; blocks *= 4) {
        sae_model *m;
        sae_trainer *t = batch_step(8, 16, 4, w_enc, zero, x, 8, 8 / blocks, &m);
        double l0;
        assert_ok(sae_trainer_stat(t, SAE_STAT_L0, &l0));
        if (l0 != 3.0)
            fail_msg("%d block(s): L0 %g, want 3 (every positive score)", blocks, l0);
        for (int64_t e = 0; e < t->ws.codes.row_ptr[8]; e++)
            assert_true(t->ws.codes.val[e] > 0.0f && t->ws.codes.val[e] < FLT_MIN);
        sae_trainer_free(t);
        sae_model_free(m);
    }
}

/* BatchTopK, K = 2 (batch 2, k 1), with one positive lower bound: the cut is 0, so an
 * exact score of 2^-22 whose lower bound is negative (its margin is wider) is kept. Rows
 * x0 = (1, 0), x1 = (1 + 2^-22, 1); latent 0: w = (2, -10), b = 0 (scores 2 and about -8);
 * latent 1: w = (1, 0), b = -1 (scores 0 and 2^-22). */
static void test_batch_cut_below_k_positive_bounds(void **state)
{
    (void)state;
    float w_enc[4] = {2.0f, 1.0f, -10.0f, 0.0f}; /* d_in x n_latents */
    float b_enc[2] = {0.0f, -1.0f}, x[4] = {1.0f, 0.0f, 1.0f + 0x1p-22f, 1.0f};
    for (int chunk = 1; chunk <= 2; chunk++) {
        sae_model *m;
        sae_trainer *t = batch_step(2, 2, 1, w_enc, b_enc, x, 2, chunk, &m);
        const sae_codes *c = &t->ws.codes;
        if (c->row_ptr[2] != 2 || c->row_ptr[1] != 1 || c->idx[0] != 0 || c->idx[1] != 1)
            fail_msg("blocks of %d rows: %lld codes, want latent 0 of row 0 and latent 1 of row 1",
                     chunk, (long long)c->row_ptr[2]);
        assert_true(c->val[0] == 2.0f && c->val[1] == 0x1p-22f);
        assert_true(t->ws.margin[chunk == 2 ? 1 : 0] > 0x1p-22f); /* row 1: lower bound < 0 */
        sae_trainer_free(t);
        sae_model_free(m);
    }
}

/* W_enc and W_dec after steps of a BatchTopK trainer (d 96, 768 latents, batch 300 in
 * blocks of `chunk` rows, bfloat16 scores where a kernel runs) whose floor hint is, before
 * every step: 0 the one the step before left, 1 none, 2 far above any cut. */
static void train_hinted(const sae_toy *toy, int hint, double chunk, int threads, float *w_enc,
                         float *w_dec, int *misses)
{
    sae_config *mc = test_config(SAE_KIND_MODEL, "d_in", 96.0, "n_latents", 768.0, "arch",
                                 (double)SAE_ARCH_BATCHTOPK, "k", 6.0, "model_seed", 5.0, NULL);
    sae_config *rc = test_config(SAE_KIND_TRAINER, "batch_size", 300.0, "lr", 3e-3,
                                 "bf16_scores", 1.0, "chunk_rows", chunk, "n_threads",
                                 (double)threads, "thread_min_work", 0.0, NULL);
    sae_model *m = NULL;
    sae_trainer *t = NULL;
    assert_ok(sae_model_create(&m, mc, NULL));
    assert_ok(sae_trainer_create(&t, m, rc, NULL));
    sae_config_free(mc);
    sae_config_free(rc);
    for (int s = 0; s < 6; s++) {
        if (hint > 0)
            t->ws.floor_hint = hint == 1 ? 0.0f : 1e30f;
        assert_ok(sae_trainer_train_toy(t, toy, 1));
    }
    *misses = (int)t->ws.hint_misses;
    take_params(t, m, w_enc, w_dec);
}

/* The lower heap's floor hint (the cut of the step before, a little lower) changes no bit:
 * the same parameters with it, without it, and with a hint above every cut (each step then
 * selects again without it), in several blocks and in one, on one thread and two. */
static void test_batch_floor_hint_changes_nothing(void **state)
{
    (void)state;
    size_t count = 768 * 96;
    float *enc[3], *dec[3];
    alloc_params(enc, dec, 3);
    sae_toy *toy = runs_toy();
    for (int run = 0; run < 4; run++) {
        double chunk = run % 2 ? 300.0 : 128.0;
        int threads = run < 2 ? 1 : 2, misses[3];
        for (int h = 0; h < 3; h++)
            train_hinted(toy, h, chunk, threads, enc[h], dec[h], &misses[h]);
        assert_int_equal(misses[1], 0);
        assert_int_equal(misses[2], 6); /* every step retried */
        for (int h = 1; h < 3; h++)
            if (memcmp(enc[0], enc[h], count * sizeof(float)) != 0 ||
                memcmp(dec[0], dec[h], count * sizeof(float)) != 0)
                fail_msg("blocks of %g rows, %d thread(s): hint mode %d differs", chunk, threads,
                         h);
    }
    free_params(enc, dec, 3);
    sae_toy_free(toy);
}

/* The ReLU screen's candidate lists (sae_relu_candidates_at): on every level this CPU runs,
 * exactly the entries that are not <= the float below -err (NaN included), in order, for
 * rows of 1 to 70 and 4,096 entries with values on both sides of -err, and with rooms that
 * hold every candidate, only some (the count stays the total and nothing is written past
 * the room) or none. */
static void test_relu_candidates_every_level(void **state)
{
    (void)state;
    enum { L = 4096, PAD = 32 };
    float *a = test_malloc(L * sizeof(float));
    int32_t *want = test_malloc(L * sizeof(int32_t)), *got = test_malloc((L + PAD) * sizeof(int32_t));
    const double err = 0.25;
    const float lo = nextafterf(-0.25f, -INFINITY);
    const float edge[] = {-0.25f, lo, nextafterf(-0.25f, 0.0f), NAN, -INFINITY, INFINITY, 0.0f, -1.0f};
    uint32_t seed = 7;
    for (int64_t l = 1; l <= L; l = l < 70 ? l + 1 : L) {
        for (int dens = 0; dens < 3; dens++) { /* few, about half, nearly all candidates */
            for (int64_t j = 0; j < l; j++) {
                uint32_t u = lcg(&seed) % 100u;
                a[j] = u < (dens == 0 ? 5u : dens == 1 ? 50u : 95u) ? edge[lcg(&seed) % 8u]
                                                                   : -1.0f - (float)(u % 7u);
            }
            int64_t total = 0;
            for (int64_t j = 0; j < l; j++)
                if (!(a[j] <= lo))
                    want[total++] = (int32_t)j;
            const int64_t rooms[] = {0, total / 2, total > 0 ? total - 1 : 0, total, total + 16, l};
            for (int level = 0; level <= 2; level++)
                for (size_t q = 0; q < sizeof rooms / sizeof rooms[0]; q++) {
                    int64_t room = rooms[q];
                    for (int64_t e = 0; e < room + PAD && e < L + PAD; e++)
                        got[e] = -7;
                    int64_t n = sae_relu_candidates_at(level, a, l, err, got, room);
                    if (n != total)
                        fail_msg("level %d, %lld entries, room %lld: %lld candidates, want %lld",
                                 level, (long long)l, (long long)room, (long long)n,
                                 (long long)total);
                    int64_t listed = SAE_MIN(total, room);
                    for (int64_t e = 0; e < listed; e++)
                        assert_int_equal(got[e], want[e]);
                    for (int64_t e = room; e < room + PAD && e < L + PAD; e++)
                        assert_int_equal(got[e], -7); /* nothing past the room */
                }
        }
        if (l == L)
            break;
    }
    test_free(a);
    test_free(want);
    test_free(got);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_bound_holds),
        cmocka_unit_test(test_refine_selects_exactly),
        cmocka_unit_test(test_trainer_same_bits_with_and_without_bf16),
        cmocka_unit_test(test_batch_cut_keeps_subnormal_scores),
        cmocka_unit_test(test_batch_cut_below_k_positive_bounds),
        cmocka_unit_test(test_batch_floor_hint_changes_nothing),
        cmocka_unit_test(test_relu_candidates_every_level),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
