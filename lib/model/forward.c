/* Inference: sae_model_encode / sae_model_decode on caller buffers. Const and reentrant:
 * scratch is allocated per call through the model's allocator. */
#include "model/forward.h"

#include "linalg/linalg.h"
#include "model/refine.h"
#include "model/sparse.h"

#include <string.h>

void sae_fwd_center(const sae_model *m, const float *x, int64_t n, int64_t ldx, float *xc)
{
    int64_t d = m->d;
    for (int64_t r = 0; r < n; r++) {
        const float *xr = x + r * ldx;
        float *o = xc + r * d;
        if (m->pre_bias)
            for (int64_t i = 0; i < d; i++)
                o[i] = xr[i] - m->b_dec[i];
        else
            memcpy(o, xr, (size_t)d * sizeof(float));
    }
}

int32_t sae_fwd_scores(const sae_model *m, int nt, const float *xc, int64_t ldxc, int64_t n,
                       float *s, int64_t lds, int add_bias)
{
    return sae_gemm_blocked(nt, 0, 1, n, m->n_latents, m->d, 1.0f, xc, ldxc, m->w_enc_t, m->d,
                            0.0f, s, lds, add_bias ? m->b_enc : NULL);
}

/* Dense activations of one row in place: row holds scores s (without bias) on entry. */
static void activate_row(const sae_model *m, float *row, float threshold)
{
    int64_t l = m->n_latents;
    for (int64_t j = 0; j < l; j++) {
        float s = row[j], p = s + m->b_enc[j], z;
        switch (m->arch) {
        case SAE_ARCH_JUMPRELU:
            z = p > m->threshold[j] ? p : 0.0f;
            break;
        case SAE_ARCH_GATED: {
            float mag = sae_gated_mag_pre(m, j, s);
            z = p > 0.0f && mag > 0.0f ? mag : 0.0f;
            break;
        }
        case SAE_ARCH_BATCHTOPK:
        case SAE_ARCH_MATRYOSHKA:
            z = p > threshold && p > 0.0f ? p : 0.0f;
            break;
        default:
            z = p > 0.0f ? p : 0.0f;
        }
        row[j] = z;
    }
}

/* Bound on the float product's error for row x (lib/model/refine.h). */
static double row_err(const sae_model *m, const float *x, double wmax, double bmax)
{
    return sae_score_err(0, m->d, sae_norm_f64(x, m->d), wmax, bmax, 0.0, 0.0);
}

/* Keep the k largest activations of each row (TopK: exactly those of the trainer, rescored
 * from the centred rows xc), or the k*n largest of the batch (BatchTopK before a threshold
 * has been learned). Rows hold pre-activations. */
static int32_t select_sparse(const sae_model *m, float *z, int64_t n, int64_t ldz, int batch,
                             const float *xc, int64_t ldxc)
{
    int64_t l = m->n_latents, k = m->k;
    int64_t cap = batch ? n * k : k;
    int32_t *idx = sae_malloc(&m->al, (size_t)cap * sizeof *idx);
    float *val = sae_malloc(&m->al, (size_t)cap * sizeof *val);
    int64_t *pos = batch ? sae_malloc(&m->al, (size_t)SAE_BATCH_ROOM(cap) * sizeof *pos) : NULL;
    float *hval = batch ? sae_malloc(&m->al, (size_t)SAE_BATCH_ROOM(cap) * sizeof *hval) : NULL;
    int64_t *row_ptr = batch ? sae_malloc(&m->al, (size_t)(n + 1) * sizeof *row_ptr) : NULL;
    int32_t st = SAE_OK;
    if (idx == NULL || val == NULL || (batch && (pos == NULL || row_ptr == NULL || hval == NULL))) {
        st = sae_fail(&m->err, SAE_E_NOMEM, "encode: out of memory");
    } else if (!batch) {
        double wmax, bmax;
        sae_score_scales(m->w_enc_t, m->b_enc, l, m->d, &wmax, &bmax);
        for (int64_t r = 0; r < n; r++) {
            float *row = z + r * ldz;
            const float *x = xc + r * ldxc;
            int64_t cnt = sae_topk_refine_row(row, l, k, NULL, row_err(m, x, wmax, bmax), x,
                                              m->w_enc_t, m->b_enc, m->d, idx, val);
            memset(row, 0, (size_t)l * sizeof(float));
            for (int64_t a = 0; a < cnt; a++)
                row[idx[a]] = val[a];
        }
    } else {
        sae_batch_heap h = {0, 0, hval, pos, 0.0f};
        sae_batch_heap_reset(&h, cap);
        if (ldz == l) /* contiguous rows: one call, with the floor raised up front */
            sae_batch_heap_offer_rows(&h, z, n, l, 0);
        else
            for (int64_t r = 0; r < n; r++)
                sae_batch_heap_offer_row(&h, z + r * ldz, l, r);
        sae_codes c = {row_ptr, idx, val, cap};
        sae_batch_heap_to_codes(&h, n, l, &c);
        for (int64_t r = 0; r < n; r++) {
            float *row = z + r * ldz;
            memset(row, 0, (size_t)l * sizeof(float));
            for (int64_t e = row_ptr[r]; e < row_ptr[r + 1]; e++)
                row[idx[e]] = val[e];
        }
    }
    sae_free(&m->al, idx);
    sae_free(&m->al, val);
    sae_free(&m->al, pos);
    sae_free(&m->al, hval);
    sae_free(&m->al, row_ptr);
    return st;
}

int32_t sae_model_encode(const sae_model *model, const float *x, int64_t n, int64_t ldx, float *z,
                         int64_t ldz)
{
    if (model == NULL)
        return SAE_E_NULL;
    const sae_model *m = model;
    int32_t st = sae_check_matrix(&m->err, x, n, m->d, ldx, "x");
    if (st == SAE_OK)
        st = sae_check_matrix(&m->err, z, n, m->n_latents, ldz, "z");
    if (st == SAE_OK)
        st = sae_check_finite_array(&m->err, x, n, m->d, ldx, "x");
    if (st != SAE_OK)
        return st;
    const float *in = x;
    int64_t ldin = ldx;
    float *xc = NULL;
    if (m->pre_bias) {
        size_t bytes;
        if (!sae_mul_size((size_t)n, (size_t)m->d * sizeof(float), &bytes) ||
            (xc = sae_malloc(&m->al, bytes)) == NULL)
            return sae_fail(&m->err, SAE_E_NOMEM, "encode: out of memory");
        sae_fwd_center(m, x, n, ldx, xc);
        in = xc, ldin = m->d;
    }
    st = sae_fwd_scores(m, 1, in, ldin, n, z, ldz, 0);
    if (st != SAE_OK) {
        sae_free(&m->al, xc);
        return sae_fail(&m->err, st, "encode: sizes exceed the BLAS integer range");
    }
    int batch = sae_arch_is_batch(m->arch) && !m->batch_threshold_valid;
    float thr = (float)m->batch_threshold;
    for (int64_t r = 0; r < n; r++) {
        float *row = z + r * ldz;
        if (m->arch == SAE_ARCH_TOPK || batch) /* pre-activation; selection below */
            for (int64_t j = 0; j < m->n_latents; j++)
                row[j] += m->b_enc[j];
        else
            activate_row(m, row, thr);
    }
    if (m->arch == SAE_ARCH_TOPK || batch)
        st = select_sparse(m, z, n, ldz, batch, in, ldin);
    sae_free(&m->al, xc);
    return st;
}

int32_t sae_model_decode(const sae_model *model, const float *z, int64_t n, int64_t ldz,
                         float *xhat, int64_t ldxh)
{
    if (model == NULL)
        return SAE_E_NULL;
    const sae_model *m = model;
    int32_t st = sae_check_matrix(&m->err, z, n, m->n_latents, ldz, "z");
    if (st == SAE_OK)
        st = sae_check_matrix(&m->err, xhat, n, m->d, ldxh, "xhat");
    if (st == SAE_OK)
        st = sae_check_finite_array(&m->err, z, n, m->n_latents, ldz, "z");
    if (st != SAE_OK)
        return st;
    st = sae_gemm_blocked(1, 0, 0, n, m->d, m->n_latents, 1.0f, z, ldz, m->w_dec, m->d, 1.0f, xhat,
                          ldxh, m->b_dec);
    if (st != SAE_OK)
        return sae_fail(&m->err, st, "decode: sizes exceed the BLAS integer range");
    return SAE_OK;
}
