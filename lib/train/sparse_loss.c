/* Loss and gradient of the TopK family (TopK, BatchTopK, Matryoshka) on (index, value)
 * codes: only the encoder product is dense; decoding, the decoder gradient and the
 * encoder gradient touch the k active latents of each row (Gao et al. 2024, and the
 * sparse kernels of EleutherAI's sparsify). Formulas: docs/training.md.
 *
 *   L = sum_g (1/n) sum_r ||xhat^(g)_r - x_r||^2 + alpha * AuxK
 *   xhat^(g) = b_dec + sum_{active j < width_g} z_j W_dec,j   (one group unless Matryoshka)
 *   AuxK = (1/n) sum_r ||e_r - ehat_r||^2 / Var(e),  e = x - xhat (held constant),
 *          ehat = sum over the aux_k largest positive pre-activations of dead latents. */
#include "train/trainer_internal.h"

#include "linalg/linalg.h"
#include "model/forward.h"
#include "model/parallel.h"
#include "train/regularisers.h"

#include <string.h>

static inline int64_t group_of(const sae_model *m, int32_t j)
{
    int64_t g = 0;
    while (j >= m->widths[g])
        g++;
    return g;
}

static inline float dotf(const float *a, const float *b, int64_t d)
{
    float s = 0.0f;
    for (int64_t i = 0; i < d; i++)
        s += a[i] * b[i];
    return s;
}

/* Move per-row slots (stride `stride`, counts in row_ptr[r+1]) into compressed rows. */
static void compact_codes(sae_codes *c, int64_t n, int64_t stride)
{
    c->row_ptr[0] = 0;
    for (int64_t r = 0; r < n; r++) {
        int64_t cnt = c->row_ptr[r + 1], at = c->row_ptr[r];
        if (at != r * stride) {
            memmove(c->idx + at, c->idx + r * stride, (size_t)cnt * sizeof *c->idx);
            memmove(c->val + at, c->val + r * stride, (size_t)cnt * sizeof *c->val);
        }
        c->row_ptr[r + 1] = at + cnt;
    }
}

/* Encoder product block by block; per-row TopK, the batch heap, and AuxK candidates. */
static int32_t select_codes(sae_trainer *t, int64_t n, int use_aux)
{
    const sae_model *m = t->model;
    sae_train_ws *w = &t->ws;
    int64_t d = m->d, l = m->n_latents, k = m->k, ka = t->aux_k;
    SAE_MAYBE_UNUSED int nt = sae_train_threads(t);
    int batch = sae_arch_is_batch(m->arch);
    if (batch)
        sae_batch_heap_reset(&w->heap, n * k);
    for (int64_t r0 = 0; r0 < n; r0 += w->chunk) {
        int64_t nc = SAE_MIN(w->chunk, n - r0);
        double since = sae_train_now();
        sae_fwd_center(m, w->x + r0 * d, nc, d, w->xc); /* one block of centred rows */
        int32_t st = sae_fwd_scores(m, nt, w->xc, d, nc, w->pre, l, 1);
        if (st != SAE_OK)
            return st;
        sae_train_tick(t, SAE_PHASE_ENCODE, &since);
        if (!batch) {
            SAE_PARALLEL_FOR(nt)
            for (int64_t r = 0; r < nc; r++) {
                int64_t at = (r0 + r) * k;
                w->codes.row_ptr[r0 + r + 1] =
                    sae_topk_row(w->pre + r * l, l, k, NULL, w->codes.idx + at, w->codes.val + at);
            }
        } else {
            for (int64_t r = 0; r < nc; r++)
                sae_batch_heap_offer_row(&w->heap, w->pre + r * l, l, r0 + r);
        }
        if (use_aux) {
            SAE_PARALLEL_FOR(nt)
            for (int64_t r = 0; r < nc; r++) {
                int64_t at = (r0 + r) * ka;
                w->aux.row_ptr[r0 + r + 1] =
                    sae_topk_row(w->pre + r * l, l, ka, w->dead, w->aux.idx + at, w->aux.val + at);
            }
        }
        sae_train_tick(t, SAE_PHASE_ACTIVATE, &since);
    }
    double since = sae_train_now();
    if (batch) {
        w->batch_min = sae_batch_heap_min(&w->heap);
        sae_batch_heap_to_codes(&w->heap, n, l, &w->codes);
    } else {
        w->batch_min = 0.0;
        compact_codes(&w->codes, n, k);
    }
    if (use_aux)
        compact_codes(&w->aux, n, ka);
    sae_train_tick(t, SAE_PHASE_ACTIVATE, &since);
    return SAE_OK;
}

/* Per row: prefix reconstructions, residuals, suffix-summed output gradients go, and
 * dLoss/dz of every active code. Returns nothing; row losses in row_loss (all prefixes)
 * and row_sp (full width only, for the MSE statistic). */
static void reconstruct_rows(sae_trainer *t, int64_t n)
{
    const sae_model *m = t->model;
    sae_train_ws *w = &t->ws;
    int64_t d = m->d, ng = m->n_widths;
    float two_n = (float)(2.0 / (double)n);
    SAE_MAYBE_UNUSED int nt = sae_train_threads(t);
    SAE_PARALLEL_FOR(nt)
    for (int64_t r = 0; r < n; r++) {
        const int32_t *idx = w->codes.idx;
        const float *val = w->codes.val, *x = w->x + r * d;
        float *go = w->go + r * ng * d;
        /* one group: accumulate in go itself (no residual buffer; see residual_view) */
        float *acc = ng == 1 ? go : w->r + r * d;
        int64_t a = w->codes.row_ptr[r], end = w->codes.row_ptr[r + 1];
        double total = 0.0, last = 0.0;
        memcpy(acc, m->b_dec, (size_t)d * sizeof(float));
        for (int64_t g = 0; g < ng; g++) {
            int64_t a0 = a;
            while (a < end && idx[a] < m->widths[g])
                a++;
            sae_gather_rows(m->w_dec, d, idx + a0, val + a0, a - a0, acc);
            float *gg = go + g * d;
            double s = 0.0;
            for (int64_t i = 0; i < d; i++) {
                float e = acc[i] - x[i];
                gg[i] = two_n * e;
                s += (double)e * e;
            }
            total += s;
            last = s;
        }
        for (int64_t i = 0; i < d && ng > 1; i++)
            acc[i] -= x[i]; /* w->r holds the full-width residual */
        for (int64_t g = ng - 2; g >= 0; g--) /* suffix sums: prefix g feeds every later group */
            for (int64_t i = 0; i < d; i++)
                go[g * d + i] += go[(g + 1) * d + i];
        w->row_loss[r] = total;
        w->row_sp[r] = last;
        for (int64_t e = w->codes.row_ptr[r]; e < end; e++) {
            int32_t j = idx[e];
            w->gval[e] = dotf(go + group_of(m, j) * d, m->w_dec + (int64_t)j * d, d);
        }
    }
}

/* The full-width residual xhat - x of every row: w->r (Matryoshka) or (n/2) go. */
static const float *residual_view(const sae_trainer *t, int64_t n, float *scale)
{
    int one = t->model->n_widths == 1;
    *scale = one ? (float)((double)n / 2.0) : 1.0f;
    return one ? t->ws.go : t->ws.r;
}

/* AuxK (Gao et al. 2024): dead latents reconstruct the residual e = x - xhat (constant),
 * normalised by Var(e) over the batch as in OpenAI's and dictionary_learning's trainers. */
static double auxk_rows(sae_trainer *t, int64_t n)
{
    const sae_model *m = t->model;
    sae_train_ws *w = &t->ws;
    int64_t d = m->d;
    float rs;
    const float *resid = residual_view(t, n, &rs);
    memset(w->dacc, 0, (size_t)d * sizeof(double));
    for (int64_t r = 0; r < n; r++)
        for (int64_t i = 0; i < d; i++)
            w->dacc[i] += rs * resid[r * d + i];
    double var = 0.0;
    for (int64_t r = 0; r < n; r++)
        for (int64_t i = 0; i < d; i++) {
            double e = rs * resid[r * d + i] - w->dacc[i] / (double)n;
            var += e * e;
        }
    var /= (double)n;
    if (!(var > 0.0) || w->aux.row_ptr[n] == 0) {
        w->aux.row_ptr[n] = 0;
        memset(w->aux.row_ptr, 0, (size_t)(n + 1) * sizeof(int64_t));
        return 0.0;
    }
    float scale = (float)(2.0 * t->o.aux_coef / ((double)n * var));
    SAE_MAYBE_UNUSED int nt = sae_train_threads(t);
    SAE_PARALLEL_FOR(nt)
    for (int64_t r = 0; r < n; r++) {
        float *ga = w->ga + r * d;
        const float *res = resid + r * d; /* (xhat - x) / rs = -e / rs */
        int64_t a0 = w->aux.row_ptr[r], a1 = w->aux.row_ptr[r + 1];
        memset(ga, 0, (size_t)d * sizeof(float));
        sae_gather_rows(m->w_dec, d, w->aux.idx + a0, w->aux.val + a0, a1 - a0, ga);
        double s = 0.0;
        for (int64_t i = 0; i < d; i++) {
            float ra = ga[i] + rs * res[i]; /* ehat - e */
            s += (double)ra * ra;
            ga[i] = scale * ra;
        }
        w->row_aux[r] = s;
        for (int64_t e = a0; e < a1; e++)
            w->aux_gval[e] = dotf(ga, m->w_dec + (int64_t)w->aux.idx[e] * d, d);
    }
    double s = 0.0;
    for (int64_t r = 0; r < n; r++)
        s += w->row_aux[r];
    return t->o.aux_coef * s / ((double)n * var);
}

/* Add latent j's entries of one column view: decoder row += value * row gradient vector,
 * encoder row += dLoss/dz * centred input; returns the sum of dLoss/dz. */
double sae_train_add_column(const float *xcs, const int64_t *col_ptr, const int64_t *ent,
                            const int32_t *erow, const float *val, const float *gval,
                            const float *vecs, int64_t vec_stride, int64_t j, int64_t d,
                            float *gd, float *ge)
{
    double bs = 0.0;
    for (int64_t q = col_ptr[j]; q < col_ptr[j + 1]; q++) {
        int64_t e = ent[q], r = erow[q];
        const float *vec = vecs + r * vec_stride, *xc = xcs + r * d;
        float v = val[e], gv = gval[e];
        for (int64_t i = 0; i < d; i++)
            gd[i] += v * vec[i];
        for (int64_t i = 0; i < d; i++)
            ge[i] += gv * xc[i];
        bs += gv;
    }
    return bs;
}

/* Per latent (parallel, rows in order): decoder and encoder rows, b_enc, pre-bias sums. */
static void scatter_grads(sae_trainer *t, int64_t n, int use_aux)
{
    const sae_model *m = t->model;
    sae_train_ws *w = &t->ws;
    const sae_model_layout *lay = &m->lay;
    int64_t d = m->d, l = m->n_latents, ng = m->n_widths;
    float *gdec = t->grad + lay->w_dec, *genc = m->tied ? gdec : t->grad + lay->w_enc_t;
    float *gbenc = t->grad + lay->b_enc;
    sae_codes_transpose(w->codes.row_ptr, w->codes.idx, n, l, w->col_ptr, w->ent, w->erow);
    if (use_aux)
        sae_codes_transpose(w->aux.row_ptr, w->aux.idx, n, l, w->aux_col_ptr, w->aux_ent,
                            w->aux_erow);
    SAE_MAYBE_UNUSED int nt = sae_train_threads(t);
    SAE_PARALLEL_FOR_DYNAMIC(nt)
    for (int64_t j = 0; j < l; j++) {
        float *gd = gdec + j * d, *ge = genc + j * d;
        memset(gd, 0, (size_t)d * sizeof(float));
        if (!m->tied)
            memset(ge, 0, (size_t)d * sizeof(float));
        /* main codes: the output gradient of latent j's Matryoshka group */
        /* encoder rows from the raw inputs: sum g (x - b_dec) = sum g x - (sum g) b_dec */
        double bs = sae_train_add_column(w->x, w->col_ptr, w->ent, w->erow, w->codes.val, w->gval,
                                         w->go + group_of(m, (int32_t)j) * d, ng * d, j, d,
                                         gd, ge);
        if (use_aux)
            bs += sae_train_add_column(w->x, w->aux_col_ptr, w->aux_ent, w->aux_erow, w->aux.val,
                                       w->aux_gval, w->ga, d, j, d, gd, ge);
        if (m->pre_bias && bs != 0.0)
            for (int64_t i = 0; i < d; i++)
                ge[i] -= (float)bs * m->b_dec[i];
        gbenc[j] = (float)bs;
        w->colsum[j] = bs;
        w->fired[j] = w->col_ptr[j + 1] > w->col_ptr[j];
    }
}

/* b_dec: every prefix reconstruction contains it; the pre-bias feeds the encoder. */
static void b_dec_grad(sae_trainer *t, int64_t n)
{
    const sae_model *m = t->model;
    sae_train_ws *w = &t->ws;
    int64_t d = m->d, l = m->n_latents, ng = m->n_widths;
    memset(w->dacc, 0, (size_t)d * sizeof(double));
    for (int64_t r = 0; r < n; r++)
        for (int64_t i = 0; i < d; i++)
            w->dacc[i] += w->go[r * ng * d + i];
    if (m->pre_bias)
        for (int64_t j = 0; j < l; j++)
            if (w->colsum[j] != 0.0)
                for (int64_t i = 0; i < d; i++)
                    w->dacc[i] -= w->colsum[j] * m->w_enc_t[j * d + i];
    float *gb = t->grad + m->lay.b_dec;
    for (int64_t i = 0; i < d; i++)
        gb[i] = (float)w->dacc[i];
}

int32_t sae_train_sparse_loss_grad(sae_trainer *t, int64_t n)
{
    sae_model *m = t->model;
    sae_train_ws *w = &t->ws;
    int64_t l = m->n_latents;
    int64_t n_dead = 0;
    for (int64_t j = 0; j < l; j++) {
        w->dead[j] = t->since_fired[j] >= t->o.dead_steps;
        n_dead += w->dead[j];
    }
    int use_aux = t->o.aux_coef > 0.0 && n_dead > 0;
    int32_t st = select_codes(t, n, use_aux);
    if (st != SAE_OK)
        return st;
    double since = sae_train_now();
    reconstruct_rows(t, n);
    sae_train_tick(t, SAE_PHASE_DECODE, &since);
    double aux = use_aux ? auxk_rows(t, n) : 0.0;
    scatter_grads(t, n, use_aux);
    b_dec_grad(t, n);
    double reg = 0.0;
    if (t->o.ortho_on)
        reg = sae_reg_ortho(t->cfg, m->w_dec, l, m->d, m->d, (uint64_t)t->step,
                            t->grad + m->lay.w_dec, m->d, w->ortho_work);
    sae_train_tick(t, SAE_PHASE_BACKWARD, &since);
    double total = 0.0, full = 0.0;
    for (int64_t r = 0; r < n; r++)
        total += w->row_loss[r], full += w->row_sp[r];
    sae_train_stats *s = &t->last;
    s->mse = full / (double)n;
    s->sparsity = (total - full) / (double)n; /* Matryoshka: the narrower prefixes' error */
    s->l0 = (double)w->codes.row_ptr[n] / (double)n;
    s->aux = aux;
    s->reg = reg;
    s->coeff = 0.0;
    s->loss = total / (double)n + aux + reg;
    return SAE_OK;
}
