/* Cosine similarity between true features and latent directions, and its summaries. */
#include "metrics_internal.h"

#include "linalg/linalg.h"

#include <string.h>

/* 1/||row|| of each of n rows (0 for zero rows). */
static void inverse_row_norms(const float *a, int64_t n, int64_t d, int64_t lda, float *inv)
{
    for (int64_t i = 0; i < n; i++) {
        double nr = sae_norm_f64(a + i * lda, d);
        inv[i] = nr > 0 ? (float)(1.0 / nr) : 0.0f;
    }
}

/* 1/||column|| of each of l columns of a d x l matrix. */
static void inverse_col_norms(const float *b, int64_t l, int64_t d, int64_t ldb, float *inv,
                              double *acc)
{
    for (int64_t j = 0; j < l; j++)
        acc[j] = 0;
    for (int64_t k = 0; k < d; k++) {
        const float *row = b + k * ldb;
        for (int64_t j = 0; j < l; j++)
            acc[j] += (double)row[j] * row[j];
    }
    for (int64_t j = 0; j < l; j++)
        inv[j] = acc[j] > 0 ? (float)(1.0 / sqrt(acc[j])) : 0.0f;
}

int32_t sae_metrics_cosine(const sae_alloc *al, const float *a, int64_t n, int64_t lda,
                           const float *b, int64_t l, int64_t ldb, int b_cols_are_latents,
                           int64_t d, int threads, float *cos)
{
    float *inv_a = sae_malloc(al, (size_t)n * sizeof *inv_a);
    float *inv_b = sae_malloc(al, (size_t)l * sizeof *inv_b);
    double *acc = b_cols_are_latents ? sae_malloc(al, (size_t)l * sizeof *acc) : NULL;
    int32_t st = SAE_E_NOMEM;
    if (inv_a == NULL || inv_b == NULL || (b_cols_are_latents && acc == NULL))
        goto done;
    inverse_row_norms(a, n, d, lda, inv_a);
    if (b_cols_are_latents)
        inverse_col_norms(b, l, d, ldb, inv_b, acc);
    else
        inverse_row_norms(b, l, d, ldb, inv_b);
    /* One GEMM on the raw arrays, then scale: no normalised copies of N x d or L x d. */
    st = sae_gemm(0, b_cols_are_latents ? 0 : 1, n, l, d, 1.0f, a, lda, b, ldb, 0.0f, cos, l);
    if (st != SAE_OK)
        goto done;
    SAE_M_PARALLEL_FOR(threads > 0 ? threads : 1)
    for (int64_t i = 0; i < n; i++) {
        float *row = cos + i * l;
        for (int64_t j = 0; j < l; j++) {
            float c = row[j] * inv_a[i] * inv_b[j];
            /* rounding can leave |c| slightly above 1 */
            row[j] = c > 1.0f ? 1.0f : (c < -1.0f ? -1.0f : c);
        }
    }
done:
    sae_free(al, inv_a);
    sae_free(al, inv_b);
    sae_free(al, acc);
    return st;
}

void sae_metrics_maxima(const float *m, int64_t n, int64_t l, float *row_max, int32_t *row_arg,
                        float *col_max, int32_t *col_arg)
{
    for (int64_t j = 0; j < l; j++) {
        col_max[j] = -INFINITY;
        col_arg[j] = -1;
    }
    for (int64_t i = 0; i < n; i++) {
        const float *row = m + i * l;
        float best = -INFINITY;
        int32_t arg = -1;
        for (int64_t j = 0; j < l; j++) {
            float c = row[j];
            if (c > best) {
                best = c;
                arg = (int32_t)j;
            }
            if (c > col_max[j]) {
                col_max[j] = c;
                col_arg[j] = (int32_t)i;
            }
        }
        row_max[i] = best;
        row_arg[i] = arg;
    }
}

void sae_metrics_keep_top(double *key, int32_t *idx, int64_t *n, int64_t k, double kv, int32_t iv)
{
    int64_t pos;
    if (*n < k) {
        pos = (*n)++;
        while (pos > 0 && key[pos - 1] > kv) { /* insertion from the top */
            key[pos] = key[pos - 1];
            idx[pos] = idx[pos - 1];
            pos--;
        }
    } else {
        if (kv <= key[0])
            return;
        pos = 0; /* drop the smallest, shift the smaller ones down */
        while (pos + 1 < *n && key[pos + 1] < kv) {
            key[pos] = key[pos + 1];
            idx[pos] = idx[pos + 1];
            pos++;
        }
    }
    key[pos] = kv;
    idx[pos] = iv;
}

double sae_metrics_mean(const float *v, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++)
        s += v[i];
    return n > 0 ? s / (double)n : NAN;
}

double sae_metrics_frac_at_least(const float *v, int64_t n, double t)
{
    int64_t c = 0;
    for (int64_t i = 0; i < n; i++)
        c += (double)v[i] >= t;
    return n > 0 ? (double)c / (double)n : NAN;
}

/* Maxima, MMCS both ways and recovered fractions of one cosine matrix (decoder or encoder). */
int32_t sae_metrics_recovery(sae_meval *e, sae_mresults *r, const float *cos, int encoder)
{
    const sae_msettings *s = e->set;
    int32_t a_true = encoder ? SAE_ARRAY_ENC_MAX_COS_TRUE : SAE_ARRAY_MAX_COS_TRUE;
    int32_t a_learned = encoder ? SAE_ARRAY_ENC_MAX_COS_LEARNED : SAE_ARRAY_MAX_COS_LEARNED;
    int32_t a_frac = encoder ? SAE_ARRAY_ENC_FRAC_RECOVERED : SAE_ARRAY_FRAC_RECOVERED;
    float *mt = sae_mresults_array(e->al, r, a_true, 1, e->n);
    float *ml = sae_mresults_array(e->al, r, a_learned, 1, e->l);
    float *fr = sae_mresults_array(e->al, r, a_frac, 1, s->n_thresholds);
    float *th = encoder ? NULL : sae_mresults_array(e->al, r, SAE_ARRAY_THRESHOLDS, 1, s->n_thresholds);
    float *at = encoder ? NULL : sae_mresults_array(e->al, r, SAE_ARRAY_ARGMAX_TRUE, 1, e->n);
    float *alr = encoder ? NULL : sae_mresults_array(e->al, r, SAE_ARRAY_ARGMAX_LEARNED, 1, e->l);
    int32_t *arg_t = sae_malloc(e->al, (size_t)e->n * sizeof *arg_t);
    int32_t *arg_l = sae_malloc(e->al, (size_t)e->l * sizeof *arg_l);
    int32_t st = SAE_E_NOMEM;
    if (mt == NULL || ml == NULL || fr == NULL || arg_t == NULL || arg_l == NULL ||
        (!encoder && (th == NULL || at == NULL || alr == NULL)))
        goto done;
    sae_metrics_maxima(cos, e->n, e->l, mt, arg_t, ml, arg_l);
    for (int64_t k = 0; k < s->n_thresholds; k++) {
        fr[k] = (float)sae_metrics_frac_at_least(mt, e->n, s->thresholds[k]);
        if (th)
            th[k] = (float)s->thresholds[k];
    }
    if (!encoder) {
        for (int64_t i = 0; i < e->n; i++)
            at[i] = (float)arg_t[i];
        for (int64_t j = 0; j < e->l; j++)
            alr[j] = (float)arg_l[j];
    }
    sae_mresults_set(r, encoder ? SAE_METRIC_ENC_MMCS_TRUE : SAE_METRIC_MMCS_TRUE,
                     sae_metrics_mean(mt, e->n));
    sae_mresults_set(r, encoder ? SAE_METRIC_ENC_MMCS_LEARNED : SAE_METRIC_MMCS_LEARNED,
                     sae_metrics_mean(ml, e->l));
    sae_mresults_set(r, encoder ? SAE_METRIC_ENC_FRAC_RECOVERED : SAE_METRIC_FRAC_RECOVERED,
                     sae_metrics_frac_at_least(mt, e->n, s->threshold));
    st = SAE_OK;
done:
    sae_free(e->al, arg_t);
    sae_free(e->al, arg_l);
    return st;
}
