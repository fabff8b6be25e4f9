/* Loss and gradient of the dense architectures (ReLU, JumpReLU, Gated), in blocks of
 * chunk rows so the n x n_latents scratch stays bounded. Formulas: docs/training.md.
 *
 *   L = (1/n) sum_r ||xhat_r - x_r||^2 + lambda (1/n) sum_r S(r) [+ Gated aux] [+ regularisers]
 *
 * ReLU:     S = sum_j w_j z_j,  w_j = ||W_dec,j|| (l1_decoder_norm) or 1
 * JumpReLU: S = sum_j H(pre_j - theta_j); theta gets the straight-through pseudo-gradient
 *           with a rectangle kernel of width eps (Rajamanoharan et al. 2024b)
 * Gated:    S = sum_j w_j ReLU(pi_gate,j); aux = (1/n) sum_r ||ReLU(pi_gate) W_dec' + b_dec' - x||^2
 *           with W_dec', b_dec' held constant (Rajamanoharan et al. 2024a) */
#include "train/trainer_internal.h"

#include "linalg/lanes.h"
#include "linalg/linalg.h"
#include "model/forward.h"
#include "core/parallel.h"
#include "train/regularisers.h"
#include "train/relu_fused.h"

#include <string.h>

#define COL_BLOCK 64

/* dLoss/dz: ReLU needs no pre-activations once z is known, so it reuses their buffer. */
static float *gz_buffer(const sae_train_ws *w) { return w->gz != NULL ? w->gz : w->pre; }

/* Gradient views into t->grad (tied: the encoder gradient is the decoder gradient). */
typedef struct grads {
    float *w_enc_t, *b_enc, *w_dec, *b_dec, *threshold, *r_mag, *b_mag;
} grads;

static grads grad_views(sae_trainer *t)
{
    const sae_model_layout *l = &t->model->lay;
    float *g = t->grad;
    grads v = {NULL, g + l->b_enc, g + l->w_dec, g + l->b_dec, NULL, NULL, NULL};
    v.w_enc_t = t->model->tied ? v.w_dec : g + l->w_enc_t;
    if (l->threshold >= 0)
        v.threshold = g + l->threshold;
    if (l->r_mag >= 0)
        v.r_mag = g + l->r_mag, v.b_mag = g + l->b_mag;
    return v;
}

/* Per-latent sparsity weights w_j: decoder row norms or 1. */
static void sparsity_weights(sae_trainer *t)
{
    const sae_model *m = t->model;
    int nt = sae_train_threads(t);
    SAE_FOR_THREADS(nt, j, m->n_latents,
                    t->ws.dec_norm[j] = t->o.l1_dec_norm ? (float)sae_norm_f64(m->w_dec + j * m->d, m->d)
                                                         : 1.0f);
}

/* Branch-free selections on bit patterns: floating-point compares may trap, which stops
 * GCC from vectorising the select (without -fno-trapping-math); integer masks do not
 * (sae_f32_bits, lib/core/core.h). */
/* max(v, 0) for finite v (a set sign bit gives +0). */
static inline float relu_bits(float v)
{
    uint32_t b = sae_f32_bits(v);
    return sae_f32_from_bits(b & ((b >> 31) - 1u));
}
/* v where z != +0, else +0 (z is a ReLU code, never negative). */
static inline float where_nonzero(float z, float v)
{
    return sae_f32_from_bits(sae_f32_bits(v) & (sae_f32_bits(z) != 0u ? 0xffffffffu : 0u));
}

/* ReLU activations of nr <= RELU_ROWS rows (strides ldp, ldz), their weighted L1 and L0: per row,
 * eight float lanes over blocks of 64 latents, each block's lanes added into double in a
 * fixed order. The rows' chains of additions are independent, so they run side by side (one
 * row at a time, the step waited on each addition's latency); each row's operations and
 * their order are the same whatever nr, so are its bits. GCC's vectoriser turns the lane
 * loop into shuffles, so GNU C spells the lanes as a vector (the same per-lane operations,
 * so the same bits, at every width). */
#define RELU_ROWS 4
SAE_LANES_CLONES
static void relu_rows(const float *restrict p, int64_t ldp, const float *restrict wj, int64_t l,
                      float *restrict z, int64_t ldz, double *pen, double *l0, int nr)
{
    double s[RELU_ROWS] = {0}, c[RELU_ROWS] = {0};
    for (int64_t j0 = 0; j0 < l; j0 += 64) {
        int64_t e = SAE_MIN(l, j0 + 64), j = j0;
        float acc[RELU_ROWS][8] = {{0}};
        uint32_t cnt[RELU_ROWS][8] = {{0}};
#if defined(__GNUC__)
        typedef float v8f __attribute__((vector_size(32)));
        typedef uint32_t v8u __attribute__((vector_size(32)));
        v8f va[RELU_ROWS] = {{0}};
        v8u vc[RELU_ROWS] = {{0}};
        for (; j + 8 <= e; j += 8) {
            v8f w;
            memcpy(&w, wj + j, sizeof w);
#  pragma GCC unroll 4
            for (int r = 0; r < RELU_ROWS; r++) {
                if (r >= nr)
                    break;
                v8u b;
                memcpy(&b, p + r * ldp + j, sizeof b);
                b &= (b >> 31) - 1u; /* relu_bits */
                v8f zj = (v8f)b;
                memcpy(z + r * ldz + j, &zj, sizeof zj);
                va[r] += w * zj;
                vc[r] -= (v8u)(b != 0u); /* true is all ones */
            }
        }
        memcpy(acc, va, sizeof acc);
        memcpy(cnt, vc, sizeof cnt);
#else
        for (; j + 8 <= e; j += 8)
            for (int r = 0; r < nr; r++)
                for (int q = 0; q < 8; q++) {
                    float zj = relu_bits(p[r * ldp + j + q]);
                    z[r * ldz + j + q] = zj;
                    acc[r][q] += wj[j + q] * zj;
                    cnt[r][q] += sae_f32_bits(zj) != 0u;
                }
#endif
        for (int r = 0; r < nr; r++)
            for (int64_t t = j; t < e; t++) {
                float zj = relu_bits(p[r * ldp + t]);
                z[r * ldz + t] = zj;
                acc[r][0] += wj[t] * zj;
                cnt[r][0] += sae_f32_bits(zj) != 0u;
            }
        /* every row's chain, the absent ones on zeros: four chains in registers side by
         * side; the counts are whole numbers, exact in any order */
#pragma GCC unroll 8
        for (int q = 0; q < 8; q++)
#pragma GCC unroll 4
            for (int r = 0; r < RELU_ROWS; r++)
                s[r] += (double)acc[r][q];
#pragma GCC unroll 4
        for (int r = 0; r < RELU_ROWS; r++) {
            uint32_t t = 0;
            for (int q = 0; q < 8; q++)
                t += cnt[r][q];
            c[r] += (double)t;
        }
    }
    for (int r = 0; r < nr; r++)
        pen[r] = s[r], l0[r] = c[r];
}

/* relu_rows over n rows, RELU_ROWS at a time (also the fused block's pass, relu_fused.h). */
static void relu_block_rows(const float *p, int64_t ldp, const float *wj, int64_t l, float *z,
                            int64_t ldz, double *pen, double *l0, int64_t n)
{
    for (int64_t r = 0; r < n; r += RELU_ROWS)
        relu_rows(p + r * ldp, ldp, wj, l, z + r * ldz, ldz, pen + r, l0 + r,
                  (int)SAE_MIN((int64_t)RELU_ROWS, n - r));
}

/* Activations of row r of the block (batch row r0 + r) for JumpReLU and Gated, its
 * penalty S and L0. */
static void activate_row(sae_trainer *t, int64_t r, int64_t r0)
{
    const sae_model *m = t->model;
    sae_train_ws *w = &t->ws;
    int64_t l = m->n_latents;
    const float *p = w->pre + r * l;
    float *z = w->z + r * l, *gate = w->gate ? w->gate + r * l : NULL;
    double s = 0.0, l0 = 0.0;
    for (int64_t j = 0; j < l; j++) {
        float zj;
        if (m->arch == SAE_ARCH_JUMPRELU) {
            zj = p[j] > m->threshold[j] ? p[j] : 0.0f;
            s += p[j] > m->threshold[j];
        } else if (m->arch == SAE_ARCH_GATED) {
            float g = p[j] + m->b_enc[j], mag = sae_gated_mag_pre(m, j, p[j]);
            gate[j] = g > 0.0f ? g : 0.0f;
            zj = g > 0.0f && mag > 0.0f ? mag : 0.0f;
            s += (double)w->dec_norm[j] * gate[j];
        } else {
            zj = p[j] > 0.0f ? p[j] : 0.0f;
            s += (double)w->dec_norm[j] * zj;
        }
        z[j] = zj;
        l0 += zj != 0.0f;
    }
    w->row_sp[r0 + r] = s;
    w->row_loss[r0 + r] = l0; /* L0 until decode_residual overwrites it */
}

/* Activations of a block (rows of pre), per-row penalty S and L0. */
static void activate_block(sae_trainer *t, int64_t nc, int64_t r0)
{
    sae_train_ws *w = &t->ws;
    int64_t l = t->model->n_latents;
    int nt = sae_train_threads(t);
    if (t->model->arch == SAE_ARCH_RELU) /* row_loss: L0 until decode_residual overwrites it */
        SAE_FOR_THREADS(nt, g, (nc + RELU_ROWS - 1) / RELU_ROWS, {
            int64_t r = g * RELU_ROWS;
            relu_rows(w->pre + r * l, l, w->dec_norm, l, w->z + r * l, l, &w->row_sp[r0 + r],
                      &w->row_loss[r0 + r], (int)SAE_MIN((int64_t)RELU_ROWS, nc - r));
        });
    else
        SAE_FOR_THREADS(nt, r, nc, activate_row(t, r, r0));
}

/* out -= x over one row of length d; returns the squared norm of the result, summed in
 * eight double lanes (one accumulator is a serial chain of additions). */
SAE_LANES_CLONES
static double residual_row(float *restrict out, const float *restrict x, int64_t d)
{
    double acc[SAE_LANES] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + SAE_LANES <= d; i += SAE_LANES)
        for (int q = 0; q < SAE_LANES; q++) {
            float e = out[i + q] - x[i + q];
            out[i + q] = e;
            acc[q] += (double)e * e;
        }
    for (; i < d; i++) {
        float e = out[i] - x[i];
        out[i] = e;
        acc[0] += (double)e * e;
    }
    return sae_lanes_sumd(acc);
}

/* rows of out (nc x d) = b_dec + a W_dec - x; returns nothing, row losses in loss[]. */
static int32_t decode_residual(sae_trainer *t, const float *a, int64_t nc, const float *x,
                               float *out, double *loss)
{
    const sae_model *m = t->model;
    int64_t d = m->d;
    int nt = sae_train_threads(t);
    int32_t st = sae_gemm_blocked(nt, 0, 0, nc, d, m->n_latents, 1.0f, a, m->n_latents, m->w_dec,
                                  d, 1.0f, out, d, m->b_dec);
    SAE_FOR_THREADS(nt, r, nc, loss[r] = residual_row(out + r * d, x + r * d, d));
    return st;
}

/* Columns [0, bw) of nc rows (stride l) of relu_grad_block, with their sums. */
SAE_LANES_CLONES
static void relu_grad_cols(const float *z0, float *gz0, int64_t nc, int64_t l, int64_t bw,
                           const float *c, float *zs, float *gs)
{
    for (int64_t r = 0; r < nc; r++) {
        const float *restrict z = z0 + r * l;
        float *restrict gz = gz0 + r * l;
        for (int64_t q = 0; q < bw; q++) {
            float ge = where_nonzero(z[q], gz[q] + c[q]);
            gz[q] = ge;
            zs[q] += z[q];
            gs[q] += ge;
        }
    }
}

/* Latents [j0, j0 + n) of a ReLU block: their column sums of z (zs) and of dLoss/dpre (gs)
 * into the step's sums and, unless the low-activation penalty still has to add to the
 * gradient, into b_enc's gradient. */
static void relu_latent_sums(sae_trainer *t, const grads *g, int64_t j0, int64_t n,
                             const float *zs, const float *gs)
{
    sae_train_ws *w = &t->ws;
    for (int64_t q = 0; q < n; q++) {
        w->lsum[j0 + q] += zs[q];
        w->fired[j0 + q] |= zs[q] > 0.0f; /* ReLU codes are >= 0 */
        if (!t->o.lowact_on) {
            g->b_enc[j0 + q] += gs[q];
            w->colsum[j0 + q] += gs[q];
        }
    }
}

/* ReLU: dLoss/dpre = 1[z > 0] (dLoss/dz + lambda/n w_j) in place, with the per-latent sums
 * of one block of columns kept in locals (fixed row order). The bias sums are fused in
 * unless the low-activation penalty still has to add to the gradient. */
static void relu_grad_columns(sae_trainer *t, const grads *g, int64_t b, int64_t nc,
                              double coeff_n)
{
    sae_train_ws *w = &t->ws;
    int64_t l = t->model->n_latents, j0 = b * COL_BLOCK, bw = SAE_MIN(l, j0 + COL_BLOCK) - j0;
    float c[COL_BLOCK] = {0}, zs[COL_BLOCK] = {0}, gs[COL_BLOCK] = {0};
    for (int64_t q = 0; q < bw; q++)
        c[q] = (float)(coeff_n * w->dec_norm[j0 + q]);
    relu_grad_cols(w->z + j0, gz_buffer(w) + j0, nc, l, bw, c, zs, gs);
    relu_latent_sums(t, g, j0, bw, zs, gs);
}

static void relu_grad_block(sae_trainer *t, int64_t nc, double coeff_n)
{
    grads g = grad_views(t);
    int64_t nb = (t->model->n_latents + COL_BLOCK - 1) / COL_BLOCK;
    int nt = sae_train_threads(t);
    SAE_FOR_THREADS(nt, b, nb, relu_grad_columns(t, &g, b, nc, coeff_n));
}

/* Columns [b COL_BLOCK, (b + 1) COL_BLOCK) of encoder_grad_block for JumpReLU and Gated. */
static void encoder_grad_columns(sae_trainer *t, const grads *g, int64_t b, int64_t nc,
                                 double coeff_n)
{
    const sae_model *m = t->model;
    sae_train_ws *w = &t->ws;
    int64_t l = m->n_latents;
    double inv_eps = 1.0 / t->o.bandwidth;
    for (int64_t r = 0; r < nc; r++) {
        const float *p = w->pre + r * l, *z = w->z + r * l;
        float *gz = gz_buffer(w) + r * l;
        for (int64_t j = b * COL_BLOCK; j < SAE_MIN(l, (b + 1) * COL_BLOCK); j++) {
            float ge;
            if (m->arch == SAE_ARCH_JUMPRELU) {
                float th = m->threshold[j], u = (p[j] - th) * (float)inv_eps;
                /* rectangle kernel K(u) = 1 on |u| < 1/2: pseudo-derivatives
                 * dz/dtheta = -(theta/eps) K, dH/dtheta = -(1/eps) K */
                if (u > -0.5f && u < 0.5f)
                    g->threshold[j] -= (float)(inv_eps * ((double)th * gz[j] + coeff_n));
                ge = p[j] > th ? gz[j] : 0.0f;
            } else if (m->arch == SAE_ARCH_GATED) {
                float gpi = p[j] + m->b_enc[j], er = expf(m->r_mag[j]);
                float gm = z[j] > 0.0f ? gz[j] : 0.0f;
                float gg = gpi > 0.0f ? (float)(coeff_n * w->dec_norm[j]) + w->ggate[r * l + j]
                                      : 0.0f;
                g->r_mag[j] += gm * er * p[j];
                g->b_mag[j] += gm;
                g->b_enc[j] += gg;
                w->colsum[j] += gg + er * gm;
                w->lsum[j] += w->gate[r * l + j];
                gz[j] = gg + er * gm;
                w->fired[j] |= z[j] > 0.0f;
                continue;
            } else {
                ge = z[j] > 0.0f ? gz[j] + (float)(coeff_n * w->dec_norm[j]) : 0.0f;
            }
            gz[j] = ge;
            w->lsum[j] += z[j];
            w->fired[j] |= z[j] != 0.0f;
        }
    }
}

/* Encoder-side gradient of a block, in place in gz, and every per-latent sum
 * (biases, thresholds, Gated magnitudes, pre-bias column sums, L1 sums, fired). */
static void encoder_grad_block(sae_trainer *t, int64_t nc, double coeff_n)
{
    if (t->model->arch == SAE_ARCH_RELU) {
        relu_grad_block(t, nc, coeff_n);
        return;
    }
    grads g = grad_views(t);
    int64_t nb = (t->model->n_latents + COL_BLOCK - 1) / COL_BLOCK;
    int nt = sae_train_threads(t);
    SAE_FOR_THREADS(nt, b, nb, encoder_grad_columns(t, &g, b, nc, coeff_n));
}

/* Bias gradient and pre-bias column sums of the (possibly regularised) encoder gradient. */
static void encoder_bias_sums(sae_trainer *t, int64_t nc)
{
    const sae_model *m = t->model;
    sae_train_ws *w = &t->ws;
    grads g = grad_views(t);
    int64_t l = m->n_latents;
    int nt = sae_train_threads(t);
    if (m->arch == SAE_ARCH_GATED || (m->arch == SAE_ARCH_RELU && !t->o.lowact_on))
        return; /* done in encoder_grad_block (Gated: the gate bias differs from the encoder
                   input gradient; ReLU: fused) */
    SAE_FOR_THREADS(nt, j, l, {
        double s = 0.0;
        for (int64_t r = 0; r < nc; r++)
            s += gz_buffer(w)[r * l + j];
        g.b_enc[j] += (float)s;
        w->colsum[j] += s;
    });
}

/* Gated gate path: reconstruction from ReLU(pi_gate) through a frozen decoder. */
static int32_t gated_aux_block(sae_trainer *t, int64_t n, int64_t nc, const float *x,
                               int64_t r0, double *aux)
{
    const sae_model *m = t->model;
    sae_train_ws *w = &t->ws;
    int64_t d = m->d, l = m->n_latents;
    int32_t st = decode_residual(t, w->gate, nc, x, w->xaux, w->row_aux + r0);
    float two_n = (float)(2.0 / (double)n);
    for (int64_t i = 0; i < nc * d; i++)
        w->gaux[i] = two_n * w->xaux[i];
    for (int64_t r = 0; r < nc; r++)
        *aux += w->row_aux[r0 + r];
    if (st == SAE_OK)
        st = sae_gemm_blocked(sae_train_threads(t), 0, 1, nc, l, d, 1.0f, w->gaux, d, m->w_dec, d,
                              0.0f, w->ggate, l, NULL);
    return st;
}

/* One row z of ReLU codes into idx/val [at, end). ReLU codes are never negative, so a zero
 * is the bit pattern 0 and eight zeros are skipped with one test. */
static void row_codes(const float *z, int64_t l, int64_t at, int64_t end, int32_t *idx,
                      float *val)
{
    int64_t j = 0;
    for (; j + 8 <= l && at + 8 <= end; j += 8) {
        uint32_t b[8];
        memcpy(b, z + j, sizeof b);
        if ((b[0] | b[1] | b[2] | b[3] | b[4] | b[5] | b[6] | b[7]) == 0u)
            continue;
        for (int q = 0; q < 8; q++) { /* branch-free: a zero is overwritten next */
            idx[at] = (int32_t)(j + q);
            val[at] = z[j + q];
            at += b[q] != 0u;
        }
    }
    for (; j < l; j++) /* the row's last entries: no writes past its end */
        if (z[j] != 0.0f) {
            idx[at] = (int32_t)j;
            val[at++] = z[j];
        }
}

/* Codes of a ReLU block in compressed rows into c (z already computed densely; the rows'
 * L0 in row_loss, see activate_block). */
static void block_codes(sae_trainer *t, sae_codes *c, int64_t nc, int64_t r0)
{
    sae_train_ws *w = &t->ws;
    int64_t l = t->model->n_latents;
    int nt = sae_train_threads(t);
    c->row_ptr[0] = 0;
    for (int64_t r = 0; r < nc; r++)
        c->row_ptr[r + 1] = c->row_ptr[r] + (int64_t)w->row_loss[r0 + r];
    SAE_FOR_THREADS(nt, r, nc,
                    row_codes(w->z + r * l, l, c->row_ptr[r], c->row_ptr[r + 1], c->idx, c->val));
}

/* Latent j's gradient rows, b_enc and sums from the pending codes (flush_sparse). */
static void flush_latent(sae_trainer *t, const grads *g, int64_t j, const float *xs, int shift)
{
    const sae_model *m = t->model;
    sae_train_ws *w = &t->ws;
    int64_t d = m->d;
    float *ge = g->w_enc_t + j * d;
    double bs = sae_train_add_column(xs, w->col_ptr, w->ent, w->erow, w->codes.val, w->gval,
                                     w->go, d, j, d, g->w_dec + j * d, ge);
    for (int64_t i = 0; shift && i < d; i++)
        ge[i] -= (float)bs * m->b_dec[i];
    double zs = 0.0;
    for (int64_t q = w->col_ptr[j]; q < w->col_ptr[j + 1]; q++)
        zs += w->codes.val[w->ent[q]];
    g->b_enc[j] += (float)bs;
    w->colsum[j] += bs;
    w->lsum[j] += zs;
    w->fired[j] = 1;
}

/* The latent-wise gradients of the pending sparse blocks, in one pass over the latents
 * (one read and write of each touched gradient row per pass, not per block): W_dec row +=
 * value x output gradient, W_enc row += dLoss/dz x centred input, b_enc, and finish_grads'
 * sums. One block pending and its centred rows still in xc (the usual case: its codes
 * outnumber the latents) reads them; otherwise the inputs are centred after the sum,
 * sum g (x - b_dec) = sum g x - (sum g) b_dec. */
static void flush_sparse(sae_trainer *t)
{
    const sae_model *m = t->model;
    sae_train_ws *w = &t->ws;
    if (w->pend_rows == 0)
        return;
    double since = sae_train_now();
    grads g = grad_views(t);
    int64_t d = m->d, l = m->n_latents, p0 = w->pend_row0;
    int centred = w->xc_row0 == p0 && w->pend_rows <= w->chunk;
    const float *xs = centred ? w->xc : w->x + p0 * d;
    int shift = m->pre_bias && !centred;
    int nt = sae_train_threads(t);
    sae_codes_transpose(w->codes.row_ptr, w->codes.idx, w->pend_rows, l, w->col_ptr, w->ent,
                        w->erow);
    SAE_FOR_THREADS_DYNAMIC(nt, j, l, {
        if (w->col_ptr[j + 1] > w->col_ptr[j])
            flush_latent(t, &g, j, xs, shift);
    });
    w->pend_rows = w->pend_nnz = 0; /* pend_row0 stays: where the codes last started */
    sae_train_tick(t, SAE_PHASE_BACKWARD, &since);
}

/* Room for one more sparse block's codes after the pending ones; rows from 0, entries
 * after the pending entries. The pending gradients are taken first once they have as many
 * entries as there are latents: then the gradient rows' read and write is paid for, and
 * more pending rows would only spill the rows the entries read out of cache (medium, about
 * 30 k entries per block: 24 ms slower per step with all blocks pending; large, about 3 k:
 * 35 ms faster). Fewer than n_latents pending entries leave a block's room (workspace.c). */
static sae_codes pending_view(sae_trainer *t)
{
    sae_train_ws *w = &t->ws;
    if (w->pend_nnz >= t->model->n_latents)
        flush_sparse(t);
    sae_codes c = {w->codes.row_ptr + w->pend_rows, w->codes.idx + w->pend_nnz,
                   w->codes.val + w->pend_nnz, w->block_room};
    return c;
}

/* Sparse ReLU block (its codes in c, from pending_view): decode by gathering active
 * decoder rows; dLoss/dz only at active entries (a dot product each); the block then joins
 * the pending ones, whose gradients flush_sparse scatters per latent. Same mathematics as
 * the dense block (tested against the same finite differences, and against it). */
static void relu_sparse_block(sae_trainer *t, sae_codes *c, int64_t n, int64_t r0, int64_t nc,
                              double coeff_n, double *sums)
{
    const sae_model *m = t->model;
    sae_train_ws *w = &t->ws;
    int64_t d = m->d, nnz = c->row_ptr[nc];
    if (w->pend_rows == 0)
        w->pend_row0 = r0;
    /* output gradients of the pending rows from the start of go: one block's stay in cache */
    float two_n = (float)(2.0 / (double)n), *go = w->go + (r0 - w->pend_row0) * d,
          *gval = w->gval + w->pend_nnz;
    sae_train_code_rows(m, c, w->x + r0 * d, nc, two_n, sae_train_threads(t), go,
                        w->row_loss + r0, gval);
    for (int64_t e = 0; e < nnz; e++) /* the sparsity term of dLoss/dz */
        gval[e] += (float)(coeff_n * w->dec_norm[c->idx[e]]);
    for (int64_t r = 0; r < nc; r++) {
        sums[0] += w->row_loss[r0 + r];
        sums[1] += w->row_sp[r0 + r];
        for (int64_t i = 0; i < d; i++)
            w->dacc[i] += go[r * d + i];
    }
    for (int64_t r = 0; r <= nc; r++) /* offsets into the pending codes */
        c->row_ptr[r] += w->pend_nnz;
    w->pend_rows += nc;
    w->pend_nnz += nnz;
}

/* go = dLoss/dxhat = scale res (nc rows of length d; scale 2/n), and its column sums into
 * acc (b_dec's gradient), row after row. */
SAE_LANES_CLONES
static void output_grad(const float *restrict res, int64_t nc, int64_t d, float scale,
                        float *restrict go, double *restrict acc)
{
    for (int64_t r = 0; r < nc; r++)
        for (int64_t i = 0; i < d; i++) {
            go[r * d + i] = scale * res[r * d + i];
            acc[i] += go[r * d + i];
        }
}

/* Whether the block goes through the fused kernel (relu_fused.c), on the calling thread:
 * its scratch exists (ReLU without the low-activation penalty, toy widths), one thread, or
 * at most thread_min_work multiply-adds per product in a step that has more threads (one
 * thread fused beat two unfused there: nc 1,024 rows, d 32 x 128 latents 2.4M against 1.8M
 * samples/s, d 128 x 256 latents, 2^25, 525k against 452k; d 64 x 1,024 latents, 2^26,
 * lost), and every product of the block would run in the small kernel, whose results the
 * fused block reproduces (so the thread count still changes nothing). */
static int fused_block_ok(const sae_trainer *t, int64_t nc)
{
    const sae_model *m = t->model;
    int64_t d = m->d, l = m->n_latents;
    double work = (double)nc * (double)l * (double)d;
    return t->ws.fused != NULL &&
           (sae_train_threads(t) == 1 || work <= (double)t->o.thread_min_work) &&
           sae_gemm_small_fits(1, nc, l, d) && /* encoder, dLoss/dz */
           sae_gemm_small_fits(0, nc, d, l) && /* decoder */
           sae_gemm_small_fits(0, l, d, nc);   /* the two weight gradients */
}

/* The fused kernel's view of rows [r0, r0 + nc), centred in ws.xc; packs the weights on the
 * step's first fused block. */
static sae_relu_fused fused_view(sae_trainer *t, int64_t n, int64_t r0, int64_t nc,
                                 double coeff_n)
{
    const sae_model *m = t->model;
    sae_train_ws *w = &t->ws;
    grads g = grad_views(t);
    int64_t d = m->d, l = m->n_latents;
    if (!w->fused_ready) {
        sae_relu_fused_prepare(m->w_enc_t, m->w_dec, w->dec_norm, coeff_n, l, d, w->fused);
        w->fused_ready = 1;
    }
    sae_relu_fused f = {nc, d, l, w->x + r0 * d, w->xc, m->b_enc, m->w_dec, m->b_dec,
                        w->dec_norm, (float)(2.0 / (double)n), w->z, w->row_sp + r0,
                        w->row_loss + r0, w->row_loss + r0, w->dacc, g.w_dec, g.w_enc_t,
                        NULL, NULL, w->fused, relu_block_rows, residual_row, output_grad};
    return f;
}

/* The fused backward of a dense block, and its row and latent sums. */
static void fused_backward(sae_trainer *t, sae_relu_fused *f, int64_t r0, double *sums)
{
    sae_train_ws *w = &t->ws;
    grads g = grad_views(t);
    sae_relu_fused_backward(f);
    for (int64_t r = 0; r < f->n; r++) {
        sums[0] += w->row_loss[r0 + r];
        sums[1] += w->row_sp[r0 + r];
    }
    relu_latent_sums(t, &g, 0, f->l, f->zs, f->gs);
}

/* Forward and backward of rows [r0, r0 + nc). */
static int32_t dense_block(sae_trainer *t, int64_t n, int64_t r0, int64_t nc, double coeff_n,
                           double *sums)
{
    const sae_model *m = t->model;
    sae_train_ws *w = &t->ws;
    grads g = grad_views(t);
    int64_t d = m->d, l = m->n_latents;
    const float *x = w->x + r0 * d, *xc = w->xc;
    float *res = w->r;
    double since = sae_train_now();
    sae_fwd_center(m, x, nc, d, w->xc);
    w->xc_row0 = r0;
    int nt = sae_train_threads(t);
    if (w->bf_enc != NULL && w->screen_next) { /* expected sparse: screen, exact where needed */
        sae_train_tick(t, SAE_PHASE_ENCODE, &since);
        sae_codes c = pending_view(t);
        if (sae_train_relu_screen(t, nc, r0, &c)) {
            since = sae_train_now();
            for (int64_t r = 0; r < nc; r++)
                sums[2] += w->row_loss[r0 + r];
            relu_sparse_block(t, &c, n, r0, nc, coeff_n, sums);
            sae_train_tick(t, SAE_PHASE_BACKWARD, &since);
            if (w->pend_nnz >= l) /* while its centred rows are at hand: see pending_view */
                flush_sparse(t);
            return SAE_OK;
        }
        since = sae_train_now();
    }
    int fused = fused_block_ok(t, nc);
    sae_relu_fused f;
    int32_t st = SAE_OK;
    if (fused) { /* scores and activations in one pass (charged to the encoder) */
        f = fused_view(t, n, r0, nc, coeff_n);
        sae_relu_fused_encode(&f);
        sae_train_tick(t, SAE_PHASE_ENCODE, &since);
    } else {
        st = sae_fwd_scores(m, nt, xc, d, nc, w->pre, l, m->arch != SAE_ARCH_GATED);
        if (st != SAE_OK)
            return st;
        sae_train_tick(t, SAE_PHASE_ENCODE, &since);
        activate_block(t, nc, r0);
        sae_train_tick(t, SAE_PHASE_ACTIVATE, &since);
    }
    double l0 = 0.0;
    for (int64_t r = 0; r < nc; r++)
        l0 += w->row_loss[r0 + r]; /* L0, see activate_block */
    sums[2] += l0;
    w->screen_next = w->codes.idx != NULL && l0 * (double)t->sparse_div <= (double)(nc * l);
    if (w->screen_next) {
        sae_codes c = pending_view(t);
        since = sae_train_now();
        block_codes(t, &c, nc, r0);
        relu_sparse_block(t, &c, n, r0, nc, coeff_n, sums);
        sae_train_tick(t, SAE_PHASE_BACKWARD, &since);
        if (w->pend_nnz >= l)
            flush_sparse(t);
        return SAE_OK;
    }
    flush_sparse(t); /* the dense path reuses go from row 0 */
    since = sae_train_now();
    if (fused) { /* decode and backward in one pass (charged to the backward) */
        fused_backward(t, &f, r0, sums);
        sae_train_tick(t, SAE_PHASE_BACKWARD, &since);
        return SAE_OK;
    }
    st = decode_residual(t, w->z, nc, x, res, w->row_loss + r0);
    sae_train_tick(t, SAE_PHASE_DECODE, &since);
    output_grad(res, nc, d, (float)(2.0 / (double)n), w->go, w->dacc);
    for (int64_t r = 0; r < nc; r++) {
        sums[0] += w->row_loss[r0 + r];
        sums[1] += w->row_sp[r0 + r];
    }
    /* dW_dec += z^T go; dLoss/dz = go W_dec^T */
    if (st == SAE_OK)
        st = sae_gemm_blocked(nt, 1, 0, l, d, nc, 1.0f, w->z, l, w->go, d, 1.0f, g.w_dec, d, NULL);
    if (st == SAE_OK)
        st = sae_gemm_blocked(nt, 0, 1, nc, l, d, 1.0f, w->go, d, m->w_dec, d, 0.0f, gz_buffer(w), l,
                              NULL);
    if (st == SAE_OK && m->arch == SAE_ARCH_GATED)
        st = gated_aux_block(t, n, nc, x, r0, &sums[3]);
    if (st != SAE_OK)
        return st;
    encoder_grad_block(t, nc, coeff_n);
    if (t->o.lowact_on) /* whole batch in one block (workspace.c) */
        sums[4] += sae_reg_lowact(t->cfg, xc, nc, d, d, m->w_enc_t, l, d, w->pre, w->z, gz_buffer(w),
                                  g.w_enc_t, d, w->lowact_work);
    encoder_bias_sums(t, nc);
    /* dW_enc^T += G^T xc */
    st = sae_gemm_blocked(nt, 1, 0, l, d, nc, 1.0f, gz_buffer(w), l, xc, d, 1.0f, g.w_enc_t, d,
                          NULL);
    sae_train_tick(t, SAE_PHASE_BACKWARD, &since);
    return st;
}

/* Terms that depend on the whole batch: b_dec, decoder-norm L1, orthogonality. */
static void finish_grads(sae_trainer *t, double coeff_n, double *reg)
{
    const sae_model *m = t->model;
    sae_train_ws *w = &t->ws;
    grads g = grad_views(t);
    int64_t d = m->d, l = m->n_latents;
    int nt = sae_train_threads(t);
    if (m->pre_bias) /* xc = x - b_dec: dL/db_dec -= sum_j colsum_j W_enc,j */
        for (int64_t j = 0; j < l; j++)
            if (w->colsum[j] != 0.0)
                for (int64_t i = 0; i < d; i++)
                    w->dacc[i] -= w->colsum[j] * m->w_enc_t[j * d + i];
    for (int64_t i = 0; i < d; i++)
        g.b_dec[i] = (float)w->dacc[i];
    if (t->o.l1_dec_norm && m->arch != SAE_ARCH_JUMPRELU && coeff_n != 0.0) {
        /* d/dW_dec,j of lambda/n sum_r ||W_dec,j|| a_rj = lambda/n (sum_r a_rj) W_dec,j / ||W_dec,j|| */
        SAE_FOR_THREADS(nt, j, l, {
            if (w->dec_norm[j] > 0.0f && w->lsum[j] != 0.0) {
                float c = (float)(coeff_n * w->lsum[j] / w->dec_norm[j]);
                for (int64_t i = 0; i < d; i++)
                    g.w_dec[j * d + i] += c * m->w_dec[j * d + i];
            }
        });
    }
    if (t->o.ortho_on)
        *reg += sae_reg_ortho(t->cfg, m->w_dec, l, d, d, (uint64_t)t->step, g.w_dec, d,
                              w->ortho_work);
}

int32_t sae_train_dense_loss_grad(sae_trainer *t, int64_t n)
{
    sae_model *m = t->model;
    sae_train_ws *w = &t->ws;
    int64_t l = m->n_latents, d = m->d;
    double coeff = sae_train_coeff_at(&t->o, t->step), coeff_n = coeff / (double)n;
    memset(t->grad, 0, (size_t)m->lay.total * sizeof(float));
    memset(w->lsum, 0, (size_t)l * sizeof(double));
    memset(w->colsum, 0, (size_t)l * sizeof(double));
    memset(w->dacc, 0, (size_t)d * sizeof(double));
    memset(w->fired, 0, (size_t)l);
    w->screen_ready = 0; /* the encoder is packed again when a block is screened */
    w->fused_ready = 0;  /* and for the fused blocks */
    w->pend_rows = w->pend_nnz = 0;
    w->xc_row0 = -1;
    sparsity_weights(t);
    double sums[5] = {0, 0, 0, 0, 0}; /* mse, sparsity, L0, gated aux, lowact */
    for (int64_t r0 = 0; r0 < n; r0 += w->chunk) {
        int32_t st = dense_block(t, n, r0, SAE_MIN(w->chunk, n - r0), coeff_n, sums);
        if (st != SAE_OK)
            return st;
    }
    flush_sparse(t);
    double reg = sums[4], since = sae_train_now();
    finish_grads(t, coeff_n, &reg);
    sae_train_tick(t, SAE_PHASE_BACKWARD, &since);
    sae_train_stats *s = &t->last;
    s->mse = sums[0] / (double)n;
    s->sparsity = sums[1] / (double)n;
    s->l0 = sums[2] / (double)n;
    s->aux = sums[3] / (double)n;
    s->reg = reg;
    s->coeff = coeff;
    s->loss = s->mse + coeff * s->sparsity + s->aux + s->reg;
    w->batch_min = 0.0;
    return SAE_OK;
}
