/* Pairwise cosine similarity of decoder rows (i < j), blocked so that the L x L matrix is
 * never stored: mean, mean |cos|, max, each latent's max to another latent, histogram. */
#include "metrics_internal.h"

#include "linalg/linalg.h"

#include <string.h>

#define PAIR_BLOCK 1024

typedef struct pair_acc {
    double sum, abs_sum, max;
    float *row_max; /* L */
    double *hist;   /* bins over [-1, 1] */
    int64_t bins;
} pair_acc;

static void block_stats(pair_acc *p, const float *c, int64_t i0, int64_t ni, int64_t j0,
                        int64_t nj)
{
    double scale = (double)p->bins / 2.0;
    for (int64_t a = 0; a < ni; a++) {
        int64_t gi = i0 + a;
        const float *row = c + a * nj;
        /* only j > i: skip the diagonal block's lower triangle */
        int64_t start = j0 > gi ? 0 : gi - j0 + 1;
        for (int64_t b = start; b < nj; b++) {
            double v = row[b];
            p->sum += v;
            p->abs_sum += fabs(v);
            if (v > p->max)
                p->max = v;
            if (row[b] > p->row_max[gi])
                p->row_max[gi] = row[b];
            if (row[b] > p->row_max[j0 + b])
                p->row_max[j0 + b] = row[b];
            int64_t bin = (int64_t)((v + 1.0) * scale);
            p->hist[bin < 0 ? 0 : (bin >= p->bins ? p->bins - 1 : bin)] += 1.0;
        }
    }
}

int32_t sae_metrics_decoder_pairs(sae_meval *e, sae_mresults *r)
{
    int64_t l = e->l, d = e->d, bins = e->set->hist_bins;
    float *unit = sae_malloc(e->al, (size_t)(l * d) * sizeof(float));
    float *blk = sae_malloc(e->al, (size_t)PAIR_BLOCK * PAIR_BLOCK * sizeof(float));
    pair_acc p = {0, 0, -INFINITY, NULL, NULL, bins};
    p.row_max = sae_mresults_array(e->al, r, SAE_ARRAY_DEC_MAX_COS, 1, l);
    p.hist = sae_calloc(e->al, (size_t)bins, sizeof(double));
    float *h = sae_mresults_array(e->al, r, SAE_ARRAY_DEC_COS_HIST, 1, bins);
    int32_t st = SAE_E_NOMEM;
    if (!unit || !blk || !p.row_max || !p.hist || !h)
        goto done;
    for (int64_t j = 0; j < l; j++) {
        double nr = sae_norm_f64(e->w_dec + j * d, d);
        float inv = nr > 0 ? (float)(1.0 / nr) : 0.0f;
        for (int64_t k = 0; k < d; k++)
            unit[j * d + k] = e->w_dec[j * d + k] * inv;
        p.row_max[j] = -INFINITY;
    }
    st = SAE_OK;
    for (int64_t i0 = 0; i0 < l && st == SAE_OK; i0 += PAIR_BLOCK) {
        int64_t ni = SAE_MIN(PAIR_BLOCK, l - i0);
        for (int64_t j0 = i0; j0 < l && st == SAE_OK; j0 += PAIR_BLOCK) {
            int64_t nj = SAE_MIN(PAIR_BLOCK, l - j0);
            st = sae_gemm(0, 1, ni, nj, d, 1.0f, unit + i0 * d, d, unit + j0 * d, d, 0.0f, blk, nj);
            if (st == SAE_OK)
                block_stats(&p, blk, i0, ni, j0, nj);
        }
    }
    if (st != SAE_OK)
        goto done;
    double pairs = (double)l * (double)(l - 1) / 2.0;
    for (int64_t k = 0; k < bins; k++)
        h[k] = (float)p.hist[k];
    sae_mresults_set(r, SAE_METRIC_DEC_COS_MEAN, pairs > 0 ? p.sum / pairs : NAN);
    sae_mresults_set(r, SAE_METRIC_DEC_ABS_COS_MEAN, pairs > 0 ? p.abs_sum / pairs : NAN);
    sae_mresults_set(r, SAE_METRIC_DEC_COS_MAX, pairs > 0 ? p.max : NAN);
    if (l < 2)
        for (int64_t j = 0; j < l; j++)
            p.row_max[j] = NAN;
    sae_mresults_set(r, SAE_METRIC_DEC_MAX_COS_MEAN, pairs > 0 ? sae_metrics_mean(p.row_max, l) : NAN);
done:
    sae_free(e->al, unit);
    sae_free(e->al, blk);
    sae_free(e->al, p.hist);
    return st;
}
