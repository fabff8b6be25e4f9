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
#include "core/parallel.h"
#include "linalg/lanes.h"
#include "train/regularisers.h"

#include <string.h>

static inline int64_t group_of(const sae_model *m, int32_t j)
{
    int64_t g = 0;
    while (j >= m->widths[g])
        g++;
    return g;
}

#if SAE_HAVE_V8
/* out = src + v0 w0 + ... (nr = 8, 4 or 1 rows), left to right, eight floats at a time; src
 * may be out. */
SAE_LANES_INLINE void add_rows_v8(const float *src, const float *const *wr, const float *v, int nr,
                                  int64_t d, float *out)
{
    int64_t i = 0;
    for (; i + 8 <= d; i += 8) {
        sae_v8 acc, t;
        SAE_V8_LOAD(acc, src + i);
        for (int c = 0; c < nr; c++) {
            SAE_V8_LOAD(t, wr[c] + i);
            acc = acc + v[c] * t;
        }
        SAE_V8_STORE(out + i, acc);
    }
    for (; i < d; i++) {
        float acc = src[i];
        for (int c = 0; c < nr; c++)
            acc = acc + v[c] * wr[c][i];
        out[i] = acc;
    }
}
#endif

/* out = src + sum_a val[a] w[idx[a]] (src may be out), the additions in the order of
 * sae_gather_rows after a copy of src, so the same bits. */
SAE_LANES_INLINE void decode_rows(const float *src, const float *w, int64_t d, const int32_t *idx,
                                  const float *val, int64_t cnt, float *out)
{
#if SAE_HAVE_V8
    for (int64_t a = 0; a < cnt; src = out) { /* the first pass reads src, later ones out */
        int nr = cnt - a >= 8 ? 8 : cnt - a >= 4 ? 4 : 1;
        const float *wr[8];
        for (int c = 0; c < nr; c++)
            wr[c] = w + (int64_t)idx[a + c] * d;
        if (nr == 8) /* constant row counts: the inner loops unroll */
            add_rows_v8(src, wr, val + a, 8, d, out);
        else if (nr == 4)
            add_rows_v8(src, wr, val + a, 4, d, out);
        else
            add_rows_v8(src, wr, val + a, 1, d, out);
        a += nr;
    }
    if (src != out) /* no entries */
        memcpy(out, src, (size_t)d * sizeof(float));
#else
    if (src != out)
        memcpy(out, src, (size_t)d * sizeof(float));
    sae_gather_rows(w, d, idx, val, cnt, out);
#endif
}

/* Lanes [0, nb) of one block: gg = two_n * (acc - x), s += (acc - x)^2 in double (the
 * residual goes through a local array: then GCC vectorises the float and double halves). */
static inline void residual_block(const float *acc, const float *x, float two_n, float *gg,
                                  int nb, double *s)
{
    float e[SAE_LANES] = {0};
    for (int q = 0; q < nb; q++)
        e[q] = acc[q] - x[q];
    for (int q = 0; q < nb; q++)
        gg[q] = two_n * e[q];
    for (int q = 0; q < SAE_LANES; q++)
        s[q] += (double)e[q] * e[q];
}

/* gg = two_n * (acc - x); returns sum (acc - x)^2 in double lanes. */
static inline double residual_grad(const float *acc, const float *x, float two_n, float *gg,
                                   int64_t d)
{
    double s[SAE_LANES] = {0};
    int64_t i = 0;
    for (; i + SAE_LANES <= d; i += SAE_LANES)
        residual_block(acc + i, x + i, two_n, gg + i, SAE_LANES, s);
    if (i < d)
        residual_block(acc + i, x + i, two_n, gg + i, (int)(d - i), s);
    return sae_lanes_sumd(s);
}

/* First entry at or after a of a row's codes (sorted by latent) outside prefix group g. */
static inline int64_t group_end(const sae_model *m, const int32_t *idx, int64_t a, int64_t end,
                                int64_t g)
{
    if (g == m->n_widths - 1) /* the last width is n_latents */
        return end;
    while (a < end && idx[a] < m->widths[g])
        a++;
    return a;
}

/* out[e] = gov . w[idx[e]] for e < cnt, eight or four latents at a time where there are. */
SAE_LANES_INLINE void grad_dots(const float *gov, const float *w, int64_t d, const int32_t *idx,
                                int64_t cnt, float *out)
{
    int64_t e = 0;
#if SAE_HAVE_V8
    for (; e + 8 <= cnt; e += 8) {
        const float *rows[8];
        for (int c = 0; c < 8; c++)
            rows[c] = w + (int64_t)idx[e + c] * d;
        sae_dotf8_lanes(gov, rows, d, out + e);
    }
    for (; e + 4 <= cnt; e += 4) {
        const float *rows[4];
        for (int c = 0; c < 4; c++)
            rows[c] = w + (int64_t)idx[e + c] * d;
        sae_dotf4_lanes(gov, rows, d, out + e);
    }
#endif
    for (; e < cnt; e++)
        out[e] = sae_dotf_lanes(gov, w + (int64_t)idx[e] * d, d);
}

/* One row: prefix reconstructions, residuals, suffix-summed output gradients go, and
 * dLoss/dz of every active code; row losses in row_loss (all prefixes) and row_sp (full
 * width only, for the MSE statistic). */
SAE_LANES_INLINE void reconstruct_row(const sae_model *m, sae_train_ws *w, float two_n, int64_t r)
{
    int64_t d = m->d, ng = m->n_widths;
    const int32_t *idx = w->codes.idx;
    const float *val = w->codes.val, *x = w->x + r * d;
    float *go = w->go + r * ng * d;
    /* one group: accumulate in go itself (no residual buffer; see residual_view) */
    float *acc = ng == 1 ? go : w->r + r * d;
    int64_t start = w->codes.row_ptr[r], end = w->codes.row_ptr[r + 1];
    double total = 0.0, last = 0.0;
    for (int64_t g = 0, a = start; g < ng; g++) {
        int64_t a0 = a;
        a = group_end(m, idx, a, end, g);
        decode_rows(g == 0 ? m->b_dec : acc, m->w_dec, d, idx + a0, val + a0, a - a0, acc);
        last = residual_grad(acc, x, two_n, go + g * d, d);
        total += last;
    }
    for (int64_t i = 0; i < d && ng > 1; i++)
        acc[i] -= x[i]; /* w->r holds the full-width residual */
    for (int64_t g = ng - 2; g >= 0; g--) /* suffix sums: prefix g feeds every later group */
        for (int64_t i = 0; i < d; i++)
            go[g * d + i] += go[(g + 1) * d + i];
    w->row_loss[r] = total;
    w->row_sp[r] = last;
    for (int64_t g = 0, a = start; g < ng; g++) { /* latents of group g: its output gradient */
        int64_t a0 = a;
        a = group_end(m, idx, a, end, g);
        grad_dots(go + g * d, m->w_dec, d, idx + a0, a - a0, w->gval + a0);
    }
}

/* Rows [0, nr) of one group's codes c (ReLU's sparse blocks): go = two_n (xhat - x),
 * row_loss = ||xhat - x||^2, gval[e] = go . W_dec,idx[e] (no sparsity term). */
SAE_LANES_CLONES
void sae_train_code_rows(const sae_model *m, const sae_codes *c, const float *x, int64_t nr,
                         float two_n, int nt, float *go, double *row_loss, float *gval)
{
    int64_t d = m->d;
    SAE_FOR_THREADS(nt, r, nr, {
        int64_t a0 = c->row_ptr[r], cnt = c->row_ptr[r + 1] - a0;
        float *g = go + r * d; /* the reconstruction, then the residual's gradient */
        decode_rows(m->b_dec, m->w_dec, d, c->idx + a0, c->val + a0, cnt, g);
        row_loss[r] = residual_grad(g, x + r * d, two_n, g, d);
        grad_dots(g, m->w_dec, d, c->idx + a0, cnt, gval + a0);
    });
}

SAE_LANES_CLONES
static void reconstruct_rows(sae_trainer *t, int64_t n)
{
    const sae_model *m = t->model;
    sae_train_ws *w = &t->ws;
    float two_n = (float)(2.0 / (double)n);
    int nt = sae_train_threads(t);
    SAE_FOR_THREADS_DYNAMIC(nt, r, n, reconstruct_row(m, w, two_n, r));
}

/* The full-width residual xhat - x of every row: w->r (Matryoshka) or (n/2) go. */
static const float *residual_view(const sae_trainer *t, int64_t n, float *scale)
{
    int one = t->model->n_widths == 1;
    *scale = one ? (float)((double)n / 2.0) : 1.0f;
    return one ? t->ws.go : t->ws.r;
}

/* Lanes [0, nb) of one block: ga = scale * (ga + rs * res), s += (ga + rs * res)^2. */
static inline void aux_block(float *ga, const float *res, float rs, float scale, int nb,
                             double *s)
{
    float ra[SAE_LANES] = {0}; /* ehat - e */
    for (int q = 0; q < nb; q++)
        ra[q] = ga[q] + rs * res[q];
    for (int q = 0; q < nb; q++)
        ga[q] = scale * ra[q];
    for (int q = 0; q < SAE_LANES; q++)
        s[q] += (double)ra[q] * ra[q];
}

/* ga = scale * (ga + rs * res); returns the sum of (ga + rs * res)^2 before scaling. */
static inline double aux_residual(float *ga, const float *res, float rs, float scale, int64_t d)
{
    double s[SAE_LANES] = {0};
    int64_t i = 0;
    for (; i + SAE_LANES <= d; i += SAE_LANES)
        aux_block(ga + i, res + i, rs, scale, SAE_LANES, s);
    if (i < d)
        aux_block(ga + i, res + i, rs, scale, (int)(d - i), s);
    return sae_lanes_sumd(s);
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
    double *mean = w->dacc;
    memset(mean, 0, (size_t)d * sizeof(double));
    for (int64_t r = 0; r < n; r++)
        for (int64_t i = 0; i < d; i++)
            mean[i] += rs * resid[r * d + i];
    for (int64_t i = 0; i < d; i++)
        mean[i] /= (double)n;
    double vs[SAE_LANES] = {0}; /* lane i % SAE_LANES of every row */
    for (int64_t r = 0; r < n; r++) {
        const float *res = resid + r * d;
        int64_t i = 0;
        for (; i + SAE_LANES <= d; i += SAE_LANES)
            for (int q = 0; q < SAE_LANES; q++) {
                double e = rs * res[i + q] - mean[i + q];
                vs[q] += e * e;
            }
        for (int q = 0; i + q < d; q++) {
            double e = rs * res[i + q] - mean[i + q];
            vs[q] += e * e;
        }
    }
    double var = sae_lanes_sumd(vs) / (double)n;
    if (!(var > 0.0) || w->aux.row_ptr[n] == 0) {
        w->aux.row_ptr[n] = 0;
        memset(w->aux.row_ptr, 0, (size_t)(n + 1) * sizeof(int64_t));
        return 0.0;
    }
    float scale = (float)(2.0 * t->o.aux_coef / ((double)n * var));
    int nt = sae_train_threads(t);
    SAE_FOR_THREADS(nt, r, n, {
        float *ga = w->ga + r * d;
        const float *res = resid + r * d; /* (xhat - x) / rs = -e / rs */
        int64_t a0 = w->aux.row_ptr[r], a1 = w->aux.row_ptr[r + 1];
        memset(ga, 0, (size_t)d * sizeof(float));
        sae_gather_rows(m->w_dec, d, w->aux.idx + a0, w->aux.val + a0, a1 - a0, ga);
        w->row_aux[r] = aux_residual(ga, res, rs, scale, d);
        for (int64_t e = a0; e < a1; e++)
            w->aux_gval[e] = sae_dotf_lanes(ga, m->w_dec + (int64_t)w->aux.idx[e] * d, d);
    });
    double s = 0.0;
    for (int64_t r = 0; r < n; r++)
        s += w->row_aux[r];
    return t->o.aux_coef * s / ((double)n * var);
}

#if SAE_HAVE_V8
#  define COL_V 2 /* vectors per block: 16 floats of the decoder row and 16 of the encoder row */

/* Elements [i0, i0 + 8 COL_V) of latent j's rows, kept in registers over the entries
 * q0..q1: gd += value * vec, ge += dLoss/dz * xc, entry after entry as in column_grads.
 * zero: start from 0 rather than from gd and ge. gd and ge must be distinct. */
static inline void column_block(const float *xcs, const int64_t *ent, const int32_t *erow,
                                const float *val, const float *gval, const float *vecs,
                                int64_t vec_stride, int64_t q0, int64_t q1, int64_t d, int64_t i0,
                                int zero, float *gd, float *ge)
{
    sae_v8 ad[COL_V] = {{0}}, ae[COL_V] = {{0}}, t;
    for (int c = 0; c < COL_V && !zero; c++) {
        SAE_V8_LOAD(ad[c], gd + i0 + 8 * c);
        SAE_V8_LOAD(ae[c], ge + i0 + 8 * c);
    }
    for (int64_t q = q0; q < q1; q++) {
        int64_t e = ent[q], r = erow[q];
        const float *vec = vecs + r * vec_stride + i0, *xc = xcs + r * d + i0;
        float v = val[e], gv = gval[e];
        for (int c = 0; c < COL_V; c++) {
            SAE_V8_LOAD(t, vec + 8 * c);
            ad[c] += v * t;
        }
        for (int c = 0; c < COL_V; c++) {
            SAE_V8_LOAD(t, xc + 8 * c);
            ae[c] += gv * t;
        }
    }
    for (int c = 0; c < COL_V; c++) {
        SAE_V8_STORE(gd + i0 + 8 * c, ad[c]);
        SAE_V8_STORE(ge + i0 + 8 * c, ae[c]);
    }
}
#endif

/* Latent j's entries of one column view (see sae_train_add_column); zero: the rows start
 * from 0 instead of their contents. Per element the additions happen in entry order; with
 * tied weights (gd == ge) each entry adds its decoder term, then its encoder term. */
SAE_LANES_INLINE double column_grads(const float *xcs, const int64_t *col_ptr, const int64_t *ent,
                           const int32_t *erow, const float *val, const float *gval,
                           const float *vecs, int64_t vec_stride, int64_t j, int64_t d,
                           float *gd, float *ge, int zero)
{
    int64_t q0 = col_ptr[j], q1 = col_ptr[j + 1], i0 = 0;
#if SAE_HAVE_V8
    for (; gd != ge && i0 + 8 * COL_V <= d; i0 += 8 * COL_V)
        column_block(xcs, ent, erow, val, gval, vecs, vec_stride, q0, q1, d, i0, zero, gd, ge);
#endif
    if (zero && i0 < d) {
        memset(gd + i0, 0, (size_t)(d - i0) * sizeof(float));
        memset(ge + i0, 0, (size_t)(d - i0) * sizeof(float));
    }
    for (int64_t q = q0; q < q1 && i0 < d; q++) {
        int64_t e = ent[q], r = erow[q];
        const float *vec = vecs + r * vec_stride, *xc = xcs + r * d;
        float v = val[e], gv = gval[e];
        for (int64_t i = i0; i < d; i++) {
            gd[i] += v * vec[i];
            ge[i] += gv * xc[i];
        }
    }
    double bs = 0.0;
    for (int64_t q = q0; q < q1; q++)
        bs += gval[ent[q]];
    return bs;
}

/* Add latent j's entries of one column view: decoder row += value * row gradient vector,
 * encoder row += dLoss/dz * centred input; returns the sum of dLoss/dz. */
SAE_LANES_CLONES
double sae_train_add_column(const float *xcs, const int64_t *col_ptr, const int64_t *ent,
                            const int32_t *erow, const float *val, const float *gval,
                            const float *vecs, int64_t vec_stride, int64_t j, int64_t d,
                            float *gd, float *ge)
{
    return column_grads(xcs, col_ptr, ent, erow, val, gval, vecs, vec_stride, j, d, gd, ge, 0);
}

/* Latent j: decoder and encoder rows, b_enc, the pre-bias sum (rows in order). */
SAE_LANES_INLINE void scatter_latent(const sae_model *m, sae_train_ws *w, float *gdec, float *genc,
                                  float *gbenc, int use_aux, int64_t j)
{
    int64_t d = m->d, ng = m->n_widths;
    float *gd = gdec + j * d, *ge = genc + j * d;
    /* main codes: the output gradient of latent j's Matryoshka group */
    /* encoder rows from the raw inputs: sum g (x - b_dec) = sum g x - (sum g) b_dec */
    double bs = column_grads(w->x, w->col_ptr, w->ent, w->erow, w->codes.val, w->gval,
                             w->go + group_of(m, (int32_t)j) * d, ng * d, j, d, gd, ge, 1);
    if (use_aux)
        bs += column_grads(w->x, w->aux_col_ptr, w->aux_ent, w->aux_erow, w->aux.val,
                           w->aux_gval, w->ga, d, j, d, gd, ge, 0);
    if (m->pre_bias && bs != 0.0)
        for (int64_t i = 0; i < d; i++)
            ge[i] -= (float)bs * m->b_dec[i];
    gbenc[j] = (float)bs;
    w->colsum[j] = bs;
    w->fired[j] = w->col_ptr[j + 1] > w->col_ptr[j];
}

/* Per latent (parallel, rows in order): decoder and encoder rows, b_enc, pre-bias sums. */
SAE_LANES_CLONES
static void scatter_grads(sae_trainer *t, int64_t n, int use_aux)
{
    const sae_model *m = t->model;
    sae_train_ws *w = &t->ws;
    const sae_model_layout *lay = &m->lay;
    int64_t l = m->n_latents;
    float *gdec = t->grad + lay->w_dec, *genc = m->tied ? gdec : t->grad + lay->w_enc_t;
    float *gbenc = t->grad + lay->b_enc;
    sae_codes_transpose(w->codes.row_ptr, w->codes.idx, n, l, w->col_ptr, w->ent, w->erow);
    if (use_aux)
        sae_codes_transpose(w->aux.row_ptr, w->aux.idx, n, l, w->aux_col_ptr, w->aux_ent,
                            w->aux_erow);
    int nt = sae_train_threads(t);
    SAE_FOR_THREADS_DYNAMIC(nt, j, l, scatter_latent(m, w, gdec, genc, gbenc, use_aux, j));
}

/* b_dec, elements [i0, i1): every prefix reconstruction contains it; the pre-bias feeds
 * the encoder. Each element sums the rows, then the latents, in order. */
SAE_LANES_CLONES
static void b_dec_grad_cols(sae_trainer *t, int64_t n, int64_t i0, int64_t i1)
{
    const sae_model *m = t->model;
    sae_train_ws *w = &t->ws;
    int64_t d = m->d, l = m->n_latents, ng = m->n_widths;
    double *acc = w->dacc;
    for (int64_t i = i0; i < i1; i++)
        acc[i] = 0.0;
    for (int64_t r = 0; r < n; r++)
        for (int64_t i = i0; i < i1; i++)
            acc[i] += w->go[r * ng * d + i];
    if (m->pre_bias)
        for (int64_t j = 0; j < l; j++)
            if (w->colsum[j] != 0.0)
                for (int64_t i = i0; i < i1; i++)
                    acc[i] -= w->colsum[j] * m->w_enc_t[j * d + i];
    float *gb = t->grad + m->lay.b_dec;
    for (int64_t i = i0; i < i1; i++)
        gb[i] = (float)acc[i];
}

/* In blocks of 64 elements, on the trainer's threads. */
static void b_dec_grad(sae_trainer *t, int64_t n)
{
    int64_t d = t->model->d;
    SAE_FOR_THREADS(sae_train_threads(t), b, (d + 63) / 64,
                    b_dec_grad_cols(t, n, b * 64, SAE_MIN(d, b * 64 + 64)));
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
    int32_t st = sae_train_select_codes(t, n, use_aux);
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
