/* A dense ReLU block at toy widths (d <= 128) without passes over the whole block between
 * its five products: the encoder and the activations eight rows at a time, then the decoder,
 * the residual, dLoss/dz and its mask for 32 rows at a time, whose codes, output gradients
 * and dLoss/dpre stay in L1 while both weight gradients take their rank-32 updates. Every
 * value is the one the unfused path computes: the products run the small kernel's tile
 * (lib/linalg/gemm_small.c) or continue its chains (each gradient element one chain of fused
 * multiply-adds over the rows in order: sae_gemm_small_chain), and the per-row passes are dense.c's own. So the
 * results do not depend on which path ran (tests/test_train_grad.c). Tiny ReLU steps
 * (d 32, 128 latents, 1,024 rows) took 6-9 % less time, d 128 with 256 latents 30 % less
 * (docs/performance.md). */
#include "train/relu_fused.h"

#include "core/core.h"
#include "linalg/linalg.h"

#include <string.h>

#define FR 8  /* rows per register tile */
#define GR 32 /* rows per group of the backward: its rank-GR gradient updates load and store
                 each gradient row once per 32 rows (once per 8 cost twice the time) */
#define FP 32 /* latents per panel, columns per chunk */

static int64_t padded(int64_t l) { return (l + FP - 1) / FP * FP; }

size_t sae_relu_fused_floats(int64_t d, int64_t l)
{
    int64_t lp = padded(l);
    /* two sets of packed panels, two group buffers of GR x lp, three of GR x d, the dz
     * tile, the sparsity terms and two column sums, the two gradient accumulators */
    return (size_t)(2 * lp * d + 2 * GR * lp + 3 * GR * d + FR * FP + 3 * lp + 2 * l * d);
}

void sae_relu_fused_pack(const float *w, int64_t l, int64_t d, float *panels)
{
    int64_t lp = padded(l);
    for (int64_t j0 = 0; j0 < lp; j0 += FP)
        for (int64_t k = 0; k < d; k++)
            for (int64_t q = 0; q < FP; q++)
                panels[j0 * d + k * FP + q] = j0 + q < l ? w[(j0 + q) * d + k] : 0.0f;
}

#if SAE_SMALL_TILES
#  include <immintrin.h>
#  define AVX512_FN __attribute__((target("avx512f")))

int sae_relu_fused_available(int64_t d)
{
    return d >= 1 && d <= SAE_RELU_FUSED_MAX_D && sae_gemm_small_available();
}

/* out(r, 0..nr) = sum_k a(r, k) b(k, .) (+ bias) for FR rows, a(r, k) = a[r lda + k]: the
 * small kernel's tile (alpha 1, beta 0), whose bits the unfused products have. */
static inline void tile(const float *a, int64_t lda, const float *b, int64_t ldb, int64_t kn,
                        const float *bias, int64_t nr, float *out, int64_t ldo)
{
    sae_gemm_small_tile8(a, lda, 1, b, ldb, kn, 1.0f, 0.0f, bias, (int)SAE_MIN(nr, (int64_t)FP),
                         out, ldo);
}

/* g(j, .) += sum_r a(r, j) b(r, .) for j < l, r < mr (a: mr x lp, b: mr x d, g: l x d), the
 * chains going on from g: every element is the one chain over all the block's rows in order
 * that the unfused product makes. */
static void rank_update(const float *a, int64_t lp, const float *b, int64_t d, int64_t l, int mr,
                        float *g)
{
    sae_gemm_small_chain(1, l, d, mr, a, lp, b, d, g, d, 0);
}

/* dLoss/dpre = where z != +0: dLoss/dz + c (as relu_grad_cols), and the column sums of z and
 * of it in row order, for the 32 latents of one panel (dz: FR x 32). */
AVX512_FN static void mask_grad(const float *z, int64_t lp, const float *dz, const float *c,
                                int mr, float *gz, float *zs, float *gs)
{
    for (int h = 0; h < 2; h++) {
        __m512 vc = _mm512_loadu_ps(c + 16 * h), vzs = _mm512_loadu_ps(zs + 16 * h),
               vgs = _mm512_loadu_ps(gs + 16 * h);
        for (int r = 0; r < mr; r++) {
            __m512 vz = _mm512_loadu_ps(z + r * lp + 16 * h);
            __m512 v = _mm512_add_ps(_mm512_loadu_ps(dz + r * FP + 16 * h), vc);
            __mmask16 on = _mm512_test_epi32_mask(_mm512_castps_si512(vz), _mm512_castps_si512(vz));
            v = _mm512_maskz_mov_ps(on, v);
            _mm512_storeu_ps(gz + r * lp + 16 * h, v);
            vzs = _mm512_add_ps(vzs, vz);
            vgs = _mm512_add_ps(vgs, v);
        }
        _mm512_storeu_ps(zs + 16 * h, vzs);
        _mm512_storeu_ps(gs + 16 * h, vgs);
    }
}

/* Buffers carved from the scratch (sae_relu_fused_floats). */
typedef struct fused_bufs {
    float *enc, *dect, *pz, *zb, *xg, *res, *go, *dz, *c, *zs, *gs, *gdec, *genc;
} fused_bufs;

static fused_bufs carve(float *s, int64_t d, int64_t l)
{
    int64_t lp = padded(l);
    fused_bufs b;
    b.enc = s, s += lp * d;
    b.dect = s, s += lp * d;
    b.pz = s, s += GR * lp;
    b.zb = s, s += GR * lp;
    b.xg = s, s += GR * d;
    b.res = s, s += GR * d;
    b.go = s, s += GR * d;
    b.dz = s, s += FR * FP;
    b.c = s, s += lp;
    b.zs = s, s += lp;
    b.gs = s, s += lp;
    b.gdec = s, s += l * d;
    b.genc = s;
    return b;
}

void sae_relu_fused_prepare(const float *w_enc_t, const float *w_dec, const float *wj,
                            double coeff_n, int64_t l, int64_t d, float *scratch)
{
    fused_bufs b = carve(scratch, d, l);
    sae_relu_fused_pack(w_enc_t, l, d, b.enc);
    sae_relu_fused_pack(w_dec, l, d, b.dect);
    for (int64_t j = 0; j < padded(l); j++) /* as relu_grad_columns rounds it */
        b.c[j] = j < l ? (float)(coeff_n * wj[j]) : 0.0f;
}

/* Rows [g0, g0 + mr) of the block through the encoder: scores into pz, then dense.c's
 * codes into z (stride l), penalties and L0. */
AVX512_FN static void encode_group(const sae_relu_fused *f, const fused_bufs *b, int64_t g0,
                                   int mr)
{
    int64_t d = f->d, l = f->l, lp = padded(l);
    const float *x = f->xc + g0 * d;
    if (mr < FR) { /* the last rows, padded with zeros */
        memset(b->xg, 0, (size_t)(FR * d) * sizeof(float));
        memcpy(b->xg, x, (size_t)(mr * d) * sizeof(float));
        x = b->xg;
    }
    for (int64_t j0 = 0; j0 < lp; j0 += FP)
        tile(x, d, b->enc + j0 * d, FP, d, f->b_enc + j0, l - j0, b->pz + j0, lp);
    f->relu_rows(b->pz, lp, f->wj, l, f->z + g0 * l, l, f->row_sp + g0, f->row_l0 + g0, mr);
}

/* Rows [g0, g0 + mr) (mr <= GR): decode, residual and output gradient, dLoss/dpre with its
 * column sums, in tiles of FR rows, then the rank-mr updates of both gradient accumulators.
 * The codes are read in place when their rows need no padding. */
AVX512_FN static void backward_group(const sae_relu_fused *f, const fused_bufs *b, int64_t g0,
                                     int mr)
{
    int64_t d = f->d, l = f->l, lp = padded(l);
    const float *z = f->z + g0 * l;
    int tiles = (mr + FR - 1) / FR;
    if (lp != l || mr < tiles * FR) {
        memset(b->zb, 0, (size_t)(tiles * FR * lp) * sizeof(float));
        for (int r = 0; r < mr; r++)
            memcpy(b->zb + r * lp, z + r * l, (size_t)l * sizeof(float));
        z = b->zb;
    }
    for (int64_t c = 0; c < d; c += FP) /* xhat = b_dec + z W_dec */
        for (int t = 0; t < tiles; t++)
            tile(z + t * FR * lp, lp, f->w_dec + c, d, l, f->b_dec + c, d - c,
                 b->res + t * FR * d + c, d);
    memset(b->go + mr * d, 0, (size_t)((tiles * FR - mr) * d) * sizeof(float));
    for (int r = 0; r < mr; r++) {
        f->row_loss[g0 + r] = f->residual_row(b->res + r * d, f->x + (g0 + r) * d, d);
        f->output_grad(b->res + r * d, 1, d, f->two_n, b->go + r * d, f->dacc);
    }
    for (int64_t j0 = 0; j0 < lp; j0 += FP) /* dLoss/dz = go W_dec^T, then the mask */
        for (int t = 0; t < tiles; t++) {
            int tr = (int)SAE_MIN((int64_t)FR, mr - t * FR);
            tile(b->go + t * FR * d, d, b->dect + j0 * d, FP, d, NULL, FP, b->dz, FP);
            mask_grad(z + t * FR * lp + j0, lp, b->dz, b->c + j0, tr, b->pz + t * FR * lp + j0,
                      b->zs + j0, b->gs + j0);
        }
    rank_update(z, lp, b->go, d, l, mr, b->gdec);
    rank_update(b->pz, lp, f->xc + g0 * d, d, l, mr, b->genc);
}

void sae_relu_fused_encode(const sae_relu_fused *f)
{
    fused_bufs b = carve(f->scratch, f->d, f->l);
    for (int64_t g0 = 0; g0 < f->n; g0 += FR)
        encode_group(f, &b, g0, (int)SAE_MIN((int64_t)FR, f->n - g0));
}

void sae_relu_fused_backward(sae_relu_fused *f)
{
    int64_t d = f->d, l = f->l, lp = padded(l);
    fused_bufs b = carve(f->scratch, d, l);
    memset(b.zs, 0, (size_t)(2 * lp) * sizeof(float)); /* zs and gs */
    memset(b.gdec, 0, (size_t)(2 * l * d) * sizeof(float));
    for (int64_t g0 = 0; g0 < f->n; g0 += GR)
        backward_group(f, &b, g0, (int)SAE_MIN((int64_t)GR, f->n - g0));
    /* the block's products are added as the small kernel adds them: C = acc + C */
    for (int64_t i = 0; i < l * d; i++)
        f->g_dec[i] += b.gdec[i];
    for (int64_t i = 0; i < l * d; i++)
        f->g_enc[i] += b.genc[i];
    f->zs = b.zs, f->gs = b.gs;
}
#else
int sae_relu_fused_available(int64_t d)
{
    (void)d;
    return 0;
}
void sae_relu_fused_prepare(const float *w_enc_t, const float *w_dec, const float *wj,
                            double coeff_n, int64_t l, int64_t d, float *scratch)
{
    (void)w_enc_t, (void)w_dec, (void)wj, (void)coeff_n, (void)l, (void)d, (void)scratch;
}
void sae_relu_fused_encode(const sae_relu_fused *f) { (void)f; }
void sae_relu_fused_backward(sae_relu_fused *f) { (void)f; }
#endif
