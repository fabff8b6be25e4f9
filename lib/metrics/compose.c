/*
 * Decoder-based composition: each latent's unit decoder direction u is fitted by a sparse
 * non-negative combination of true feature directions (Lawson-Hanson NNLS, restricted to
 * the compose_candidates features of highest cosine and to compose_max_terms terms).
 * A latent is "single" when one feature has cosine >= compose_single_cos, "composed" when
 * it is not single, >= 2 features have weight >= compose_min_weight and the residual
 * ||u - sum w_k f_k|| <= compose_max_residual, otherwise "unexplained".
 */
#include "metrics_internal.h"

#include "linalg/linalg.h"

#include <stdlib.h>
#include <string.h>

#define NNLS_EPS 1e-10

int64_t sae_metrics_nnls_work(int64_t k, int64_t max_terms)
{
    int64_t t = SAE_MIN(max_terms, 64);
    return k * t + t * t + 4 * t + 2 * k;
}

/* Solve the t x t SPD system a z = y (Cholesky, a tiny ridge on singular pivots). */
static void spd_solve(double *a, int64_t t, const double *y, double *z)
{
    for (int64_t j = 0; j < t; j++) {
        double s = a[j * t + j];
        for (int64_t k = 0; k < j; k++)
            s -= a[j * t + k] * a[j * t + k];
        a[j * t + j] = sqrt(s > 1e-12 ? s : 1e-12);
        for (int64_t i = j + 1; i < t; i++) {
            double r = a[i * t + j];
            for (int64_t k = 0; k < j; k++)
                r -= a[i * t + k] * a[j * t + k];
            a[i * t + j] = r / a[j * t + j];
        }
    }
    for (int64_t i = 0; i < t; i++) {
        double r = y[i];
        for (int64_t k = 0; k < i; k++)
            r -= a[i * t + k] * z[k];
        z[i] = r / a[i * t + i];
    }
    for (int64_t i = t - 1; i >= 0; i--) {
        double r = z[i];
        for (int64_t k = i + 1; k < t; k++)
            r -= a[k * t + i] * z[k];
        z[i] = r / a[i * t + i];
    }
}

typedef struct nnls {
    const float *f;
    int64_t ldf, d, k;
    const int32_t *cand;
    const double *b;
    double *gcol;   /* slot x k: Gram column of each passive candidate */
    double *sys, *z, *rhs, *w; /* t x t, t, t, t (w per slot) */
    double *grad;   /* k */
    int64_t *slot;  /* passive candidate of each slot */
    int64_t np;
} nnls;

static void add_passive(nnls *s, int64_t a)
{
    double *col = s->gcol + s->np * s->k;
    const float *fa = s->f + (int64_t)s->cand[a] * s->ldf;
    for (int64_t c = 0; c < s->k; c++)
        col[c] = c == a ? 1.0 : sae_dot_f64(fa, s->f + (int64_t)s->cand[c] * s->ldf, s->d);
    s->slot[s->np] = a;
    s->w[s->np] = 0;
    s->np++;
}

static void drop_zero_slots(nnls *s)
{
    int64_t out = 0;
    for (int64_t p = 0; p < s->np; p++) {
        if (s->w[p] <= NNLS_EPS)
            continue;
        if (out != p) {
            memcpy(s->gcol + out * s->k, s->gcol + p * s->k, (size_t)s->k * sizeof(double));
            s->slot[out] = s->slot[p];
            s->w[out] = s->w[p];
        }
        out++;
    }
    s->np = out;
}

/* Unconstrained least squares on the passive set into s->z. */
static void passive_solve(nnls *s)
{
    int64_t t = s->np;
    for (int64_t p = 0; p < t; p++) {
        for (int64_t q = 0; q < t; q++)
            s->sys[p * t + q] = s->gcol[q * s->k + s->slot[p]];
        s->rhs[p] = s->b[s->slot[p]];
    }
    spd_solve(s->sys, t, s->rhs, s->z);
}

/* Inner loop of Lawson-Hanson: move towards the LS solution while keeping w >= 0. */
static void inner_loop(nnls *s)
{
    for (int guard = 0; guard < 64 && s->np > 0; guard++) {
        passive_solve(s);
        double alpha = 1.0;
        for (int64_t p = 0; p < s->np; p++)
            if (s->z[p] <= NNLS_EPS) {
                double a = s->w[p] / (s->w[p] - s->z[p]);
                alpha = a < alpha ? a : alpha;
            }
        for (int64_t p = 0; p < s->np; p++)
            s->w[p] += alpha * (s->z[p] - s->w[p]);
        if (alpha >= 1.0)
            return;
        drop_zero_slots(s);
    }
}

static int64_t best_gradient(nnls *s, double *gmax)
{
    int64_t arg = -1;
    *gmax = NNLS_EPS;
    for (int64_t a = 0; a < s->k; a++) {
        double g = s->b[a];
        for (int64_t p = 0; p < s->np; p++)
            g -= s->gcol[p * s->k + a] * s->w[p];
        int passive = 0;
        for (int64_t p = 0; p < s->np; p++)
            passive |= s->slot[p] == a;
        if (!passive && g > *gmax) {
            *gmax = g;
            arg = a;
        }
    }
    return arg;
}

static void write_fit(nnls *s, double min_weight, sae_fit *out)
{
    double quad = 0, lin = 0;
    for (int64_t p = 0; p < s->np; p++) {
        lin += s->w[p] * s->b[s->slot[p]];
        for (int64_t q = 0; q < s->np; q++)
            quad += s->w[p] * s->w[q] * s->gcol[q * s->k + s->slot[p]];
    }
    double r2 = 1.0 - 2.0 * lin + quad;
    out->residual = sqrt(r2 > 0 ? r2 : 0);
    out->n_used = (int32_t)s->np;
    out->n_terms = 0;
    /* sort slots by decreasing weight (t <= 64: insertion sort) */
    for (int64_t p = 0; p < s->np; p++) {
        int64_t q = p;
        double wv = s->w[p];
        int32_t fv = s->cand[s->slot[p]];
        while (q > 0 && out->weight[q - 1] < wv) {
            out->weight[q] = out->weight[q - 1];
            out->feature[q] = out->feature[q - 1];
            q--;
        }
        out->weight[q] = wv;
        out->feature[q] = fv;
        out->n_terms += wv >= min_weight;
    }
}

void sae_metrics_nnls_fit(const float *f, int64_t ldf, int64_t d, const int32_t *cand,
                          const double *b, int64_t k, int64_t max_terms, double min_weight,
                          double *work, sae_fit *out)
{
    int64_t t = SAE_MIN(max_terms, 64);
    nnls s = {f, ldf, d, k, cand, b, work, NULL, NULL, NULL, NULL, NULL, NULL, 0};
    s.sys = work + k * t;
    s.z = s.sys + t * t;
    s.rhs = s.z + t;
    s.w = s.rhs + t;
    s.grad = s.w + t;
    int64_t slots[64];
    s.slot = slots;
    for (int iter = 0; iter < 4 * t + 4; iter++) {
        double g;
        if (s.np >= t)
            break;
        int64_t a = best_gradient(&s, &g);
        if (a < 0)
            break;
        add_passive(&s, a);
        inner_loop(&s);
    }
    write_fit(&s, min_weight, out);
}

/* ---- the group ----------------------------------------------------------------------- */

typedef struct latent_top {
    double *key;
    int32_t *idx;
    int64_t *cnt;
} latent_top;

/* Candidates of every latent: row-wise passes over the N x L cosines, one block of
 * latent columns per task (each latent's candidates depend only on its column). */
static void collect_candidates(const sae_meval *e, int64_t k, latent_top *t)
{
    int64_t n_blocks = (e->l + 255) / 256;
    SAE_M_PARALLEL_FOR(e->set->threads)
    for (int64_t blk = 0; blk < n_blocks; blk++) {
        int64_t j0 = blk * 256, j1 = SAE_MIN(e->l, j0 + 256);
        for (int64_t j = j0; j < j1; j++)
            t->cnt[j] = 0;
        for (int64_t i = 0; i < e->n; i++) {
            const float *row = e->cos + i * e->l;
            for (int64_t j = j0; j < j1; j++) {
                double c = row[j];
                if (t->cnt[j] == k && c <= t->key[j * k])
                    continue;
                sae_metrics_keep_top(t->key + j * k, t->idx + j * k, &t->cnt[j], k, c, (int32_t)i);
            }
        }
    }
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Fit latent j; class 1 single, 2 composed, 0 unexplained; composed features into feat
 * (increasing index, n_terms of them). */
static int fit_latent(const sae_meval *e, const latent_top *top, int64_t j, int64_t t,
                      double *work, double *b, int32_t *cand, float *nt, float *res,
                      int64_t *feat)
{
    const sae_msettings *s = e->set;
    int64_t k = SAE_MIN(s->compose_candidates, e->n), kj = top->cnt[j];
    for (int64_t c = 0; c < kj; c++) { /* descending cosine */
        cand[c] = top->idx[j * k + kj - 1 - c];
        b[c] = top->key[j * k + kj - 1 - c];
    }
    sae_fit fit;
    sae_metrics_nnls_fit(e->dict, e->d, e->d, cand, b, kj, t, s->compose_min_weight, work, &fit);
    nt[j] = (float)fit.n_terms;
    res[j] = (float)fit.residual;
    if (kj > 0 && b[0] >= s->compose_single_cos)
        return 1;
    if (fit.n_terms < 2 || fit.residual > s->compose_max_residual)
        return 0;
    for (int32_t q = 0; q < fit.n_terms; q++)
        feat[q] = fit.feature[q];
    qsort(feat, (size_t)fit.n_terms, sizeof(int64_t), cmp_i64);
    return 2;
}

/* Records (latent, k, f_1..f_k) of the composed latents, in latent order. */
static int32_t composed_list(const sae_meval *e, sae_mresults *r, const uint8_t *cls,
                             const float *nt, const int64_t *feat, int64_t t)
{
    int64_t n_rec = 0, composed = 0, single = 0;
    for (int64_t j = 0; j < e->l; j++) {
        single += cls[j] == 1;
        composed += cls[j] == 2;
        n_rec += cls[j] == 2 ? 2 + (int64_t)nt[j] : 0;
    }
    int64_t *dst = sae_mresults_list(e->al, r, SAE_LIST_COMPOSED, n_rec);
    if (dst == NULL)
        return SAE_E_NOMEM;
    n_rec = 0;
    for (int64_t j = 0; j < e->l; j++) {
        if (cls[j] != 2)
            continue;
        dst[n_rec++] = j;
        dst[n_rec++] = (int64_t)nt[j];
        for (int64_t q = 0; q < (int64_t)nt[j]; q++)
            dst[n_rec++] = feat[j * t + q];
    }
    sae_mresults_set(r, SAE_METRIC_N_COMPOSED, (double)composed);
    sae_mresults_set(r, SAE_METRIC_N_SINGLE, (double)single);
    sae_mresults_set(r, SAE_METRIC_N_UNEXPLAINED, (double)(e->l - composed - single));
    return SAE_OK;
}

int32_t sae_metrics_composition(sae_meval *e, sae_mresults *r)
{
    const sae_msettings *s = e->set;
    int64_t k = SAE_MIN(s->compose_candidates, e->n), t = SAE_MIN(s->compose_max_terms, k);
    int64_t nth = s->threads, wl = sae_metrics_nnls_work(k, t);
    latent_top top;
    top.key = sae_malloc(e->al, (size_t)(e->l * k) * sizeof(double));
    top.idx = sae_malloc(e->al, (size_t)(e->l * k) * sizeof(int32_t));
    top.cnt = sae_malloc(e->al, (size_t)e->l * sizeof(int64_t));
    double *work = sae_malloc(e->al, (size_t)(nth * (wl + k)) * sizeof(double));
    int32_t *cand = sae_malloc(e->al, (size_t)(nth * k) * sizeof(int32_t));
    int64_t *feat = sae_malloc(e->al, (size_t)(e->l * t) * sizeof(int64_t));
    uint8_t *cls = sae_malloc(e->al, (size_t)e->l);
    float *nt = sae_mresults_array(e->al, r, SAE_ARRAY_COMPOSE_N_TERMS, 1, e->l);
    float *res = sae_mresults_array(e->al, r, SAE_ARRAY_COMPOSE_RESIDUAL, 1, e->l);
    int32_t st = SAE_E_NOMEM;
    if (!top.key || !top.idx || !top.cnt || !work || !cand || !feat || !cls || !nt || !res)
        goto done;
    collect_candidates(e, k, &top);
    SAE_M_PARALLEL_FOR(s->threads)
    for (int64_t j = 0; j < e->l; j++) {
        int64_t th = SAE_M_THREAD();
        double *w = work + th * (wl + k);
        cls[j] = (uint8_t)fit_latent(e, &top, j, t, w, w + wl, cand + th * k, nt, res, feat + j * t);
    }
    st = composed_list(e, r, cls, nt, feat, t);
done:
    sae_free(e->al, top.key);
    sae_free(e->al, top.idx);
    sae_free(e->al, top.cnt);
    sae_free(e->al, work);
    sae_free(e->al, cand);
    sae_free(e->al, feat);
    sae_free(e->al, cls);
    return st;
}
