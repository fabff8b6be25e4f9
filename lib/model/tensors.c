/* Named tensors of a model: shapes, copy out, overwrite (SAELens layout). */
#include "model/model_internal.h"

#include <string.h>

/* Where a tensor lives: base pointer, shape, and whether it is stored transposed. */
typedef struct tensor_ref {
    float *base;
    int64_t rows, cols;
    int transposed; /* W_enc is kept as n_latents x d_in internally */
    int read_only;
} tensor_ref;

static int32_t tensor_find(const sae_model *m, int32_t which, tensor_ref *t)
{
    memset(t, 0, sizeof *t);
    t->rows = 1;
    switch (which) {
    case SAE_TENSOR_W_ENC:
        t->base = m->w_enc_t, t->rows = m->d, t->cols = m->n_latents, t->transposed = 1;
        break;
    case SAE_TENSOR_B_ENC:
        t->base = m->b_enc, t->cols = m->n_latents;
        break;
    case SAE_TENSOR_W_DEC:
        t->base = m->w_dec, t->rows = m->n_latents, t->cols = m->d;
        break;
    case SAE_TENSOR_B_DEC:
        t->base = m->b_dec, t->cols = m->d;
        break;
    case SAE_TENSOR_THRESHOLD:
        if (m->arch != SAE_ARCH_JUMPRELU && !sae_arch_is_batch(m->arch))
            return sae_fail(&m->err, SAE_E_NOT_SUPPORTED, "this architecture has no threshold");
        t->base = m->threshold, t->cols = m->n_latents, t->read_only = m->threshold == NULL;
        break;
    case SAE_TENSOR_R_MAG:
    case SAE_TENSOR_B_MAG:
        if (m->arch != SAE_ARCH_GATED)
            return sae_fail(&m->err, SAE_E_NOT_SUPPORTED, "only gated models have r_mag and b_mag");
        t->base = which == SAE_TENSOR_R_MAG ? m->r_mag : m->b_mag, t->cols = m->n_latents;
        break;
    default:
        return sae_fail(&m->err, SAE_E_UNKNOWN_KEY, "unknown tensor %d", (int)which);
    }
    return SAE_OK;
}

int32_t sae_model_tensor_shape(const sae_model *model, int32_t which, int64_t *rows,
                               int64_t *cols)
{
    if (model == NULL)
        return SAE_E_NULL;
    if (rows == NULL || cols == NULL)
        return sae_fail(&model->err, SAE_E_NULL, "tensor_shape: rows or cols is NULL");
    tensor_ref t;
    int32_t st = tensor_find(model, which, &t);
    if (st != SAE_OK)
        return st;
    *rows = t.rows;
    *cols = t.cols;
    return SAE_OK;
}

int32_t sae_model_get_tensor(const sae_model *model, int32_t which, float *dst, int64_t ld)
{
    if (model == NULL)
        return SAE_E_NULL;
    tensor_ref t;
    int32_t st = tensor_find(model, which, &t);
    if (st == SAE_OK)
        st = sae_check_matrix(&model->err, dst, t.rows, t.cols, ld, "dst");
    if (st != SAE_OK)
        return st;
    if (t.base == NULL) { /* BatchTopK threshold: one learned value for every latent */
        float v = model->batch_threshold_valid ? (float)model->batch_threshold : 0.0f;
        for (int64_t j = 0; j < t.cols; j++)
            dst[j] = v;
        return SAE_OK;
    }
    for (int64_t r = 0; r < t.rows; r++)
        for (int64_t c = 0; c < t.cols; c++)
            dst[r * ld + c] = t.transposed ? t.base[c * t.rows + r] : t.base[r * t.cols + c];
    return SAE_OK;
}

int32_t sae_model_set_tensor(sae_model *model, int32_t which, const float *src, int64_t ld)
{
    if (model == NULL)
        return SAE_E_NULL;
    tensor_ref t;
    int32_t st = tensor_find(model, which, &t);
    if (st == SAE_OK)
        st = sae_check_matrix(&model->err, src, t.rows, t.cols, ld, "src");
    if (st == SAE_OK)
        st = sae_check_finite_array(&model->err, src, t.rows, t.cols, ld, "src");
    if (st != SAE_OK)
        return st;
    if (t.read_only)
        return sae_fail(&model->err, SAE_E_NOT_SUPPORTED,
                        "the BatchTopK threshold is learned by the trainer, not set");
    if (which == SAE_TENSOR_THRESHOLD) {
        for (int64_t j = 0; j < t.cols; j++)
            if (src[j] < 0.0f)
                return sae_fail(&model->err, SAE_E_RANGE, "threshold[%lld] is negative",
                                (long long)j);
    }
    for (int64_t r = 0; r < t.rows; r++)
        for (int64_t c = 0; c < t.cols; c++) {
            float v = src[r * ld + c];
            if (t.transposed)
                t.base[c * t.rows + r] = v;
            else
                t.base[r * t.cols + c] = v;
        }
    return SAE_OK;
}
