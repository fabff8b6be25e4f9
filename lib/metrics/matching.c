/* Optimal one-to-one matching of true features and latents on a cosine matrix. */
#include "metrics_internal.h"

static int32_t unmatched_list(const sae_meval *e, sae_mresults *r, int32_t which,
                              const int32_t *match, int64_t n)
{
    int64_t cnt = 0;
    for (int64_t i = 0; i < n; i++)
        cnt += match[i] < 0;
    int64_t *dst = sae_mresults_list(e->al, r, which, cnt);
    if (dst == NULL)
        return SAE_E_NOMEM;
    cnt = 0;
    for (int64_t i = 0; i < n; i++)
        if (match[i] < 0)
            dst[cnt++] = i;
    return SAE_OK;
}

int32_t sae_metrics_matching(sae_meval *e, sae_mresults *r, const float *cos, int encoder)
{
    int32_t *row = sae_malloc(e->al, (size_t)e->n * sizeof *row);
    int32_t *col = sae_malloc(e->al, (size_t)e->l * sizeof *col);
    float *lat = sae_mresults_array(e->al, r, encoder ? SAE_ARRAY_ENC_MATCH_LATENT : SAE_ARRAY_MATCH_LATENT, 1, e->n);
    float *mc = encoder ? NULL : sae_mresults_array(e->al, r, SAE_ARRAY_MATCH_COS, 1, e->n);
    int32_t st = SAE_E_NOMEM;
    if (row == NULL || col == NULL || lat == NULL || (!encoder && mc == NULL))
        goto done;
    double total = 0, gap = 0;
    st = sae_lap_max(e->al, cos, e->n, e->l, e->l, 1, e->set->threads, row, col, &total, &gap);
    if (st != SAE_OK)
        goto done;
    int64_t recovered = 0;
    for (int64_t i = 0; i < e->n; i++) {
        lat[i] = (float)row[i];
        float c = row[i] >= 0 ? cos[i * e->l + row[i]] : NAN;
        if (mc)
            mc[i] = c;
        recovered += row[i] >= 0 && (double)c >= e->set->threshold;
    }
    double pairs = (double)SAE_MIN(e->n, e->l);
    if (encoder) {
        sae_mresults_set(r, SAE_METRIC_ENC_MATCH_MEAN_COS, total / pairs);
        st = unmatched_list(e, r, SAE_LIST_ENC_UNMATCHED_FEATURES, row, e->n);
    } else {
        sae_mresults_set(r, SAE_METRIC_MATCH_MEAN_COS, total / pairs);
        sae_mresults_set(r, SAE_METRIC_MATCH_FRAC_RECOVERED, (double)recovered / (double)e->n);
        sae_mresults_set(r, SAE_METRIC_MATCH_COST_GAP, gap);
        st = unmatched_list(e, r, SAE_LIST_UNMATCHED_FEATURES, row, e->n);
        if (st == SAE_OK)
            st = unmatched_list(e, r, SAE_LIST_UNMATCHED_LATENTS, col, e->l);
    }
done:
    sae_free(e->al, row);
    sae_free(e->al, col);
    return st;
}
