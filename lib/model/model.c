/* Model handle: creation, reference counting, clone, tensors and read-back of parameters. */
#include "model/model_internal.h"

#include <string.h>

sae_model_layout sae_model_layout_for(int32_t arch, int tied, int64_t d, int64_t n_latents)
{
    sae_model_layout lay = {-1, -1, -1, -1, -1, -1, -1, 0};
    int64_t at = 0, ld = n_latents * d;
    if (!tied) {
        lay.w_enc_t = at;
        at += ld;
    }
    lay.w_dec = at;
    at += ld;
    lay.b_enc = at;
    at += n_latents;
    lay.b_dec = at;
    at += d;
    if (arch == SAE_ARCH_JUMPRELU) {
        lay.threshold = at;
        at += n_latents;
    }
    if (arch == SAE_ARCH_GATED) {
        lay.r_mag = at;
        at += n_latents;
        lay.b_mag = at;
        at += n_latents;
    }
    lay.total = at;
    return lay;
}

static float *view(float *base, int64_t off) { return off < 0 ? NULL : base + off; }

void sae_model_bind(sae_model *m)
{
    m->w_dec = view(m->params, m->lay.w_dec);
    m->w_enc_t = m->tied ? m->w_dec : view(m->params, m->lay.w_enc_t);
    m->b_enc = view(m->params, m->lay.b_enc);
    m->b_dec = view(m->params, m->lay.b_dec);
    m->threshold = view(m->params, m->lay.threshold);
    m->r_mag = view(m->params, m->lay.r_mag);
    m->b_mag = view(m->params, m->lay.b_mag);
}

static void model_destroy(sae_model *m)
{
    sae_alloc al = m->al;
    sae_free(&al, m->params);
    sae_free(&al, m->widths);
    sae_config_free(m->cfg);
    sae_free(&al, m);
}

void sae_model_retain(sae_model *m) { atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed); }

void sae_model_release(sae_model *m)
{
    if (m != NULL && atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1)
        model_destroy(m);
}

void sae_model_free(sae_model *model) { sae_model_release(model); }

const char *sae_model_errmsg(const sae_model *model)
{
    return model != NULL ? model->err.msg : "model is NULL";
}

/* Allocate a handle with the shape fields of cfg (already validated) and its params. */
static int32_t model_alloc(sae_model **out, const sae_config *cfg, const sae_allocator *alloc)
{
    sae_alloc al;
    sae_alloc_init(&al, alloc);
    sae_model *m = sae_calloc(&al, 1, sizeof *m);
    if (m == NULL)
        return SAE_E_NOMEM;
    atomic_init(&m->refs, 1);
    m->al = al;
    sae_err_init(&m->err);
    m->d = sae_cfg_i64(cfg, SAE_MODEL_D_IN);
    m->n_latents = sae_cfg_i64(cfg, SAE_MODEL_N_LATENTS);
    m->arch = (int32_t)sae_cfg_i64(cfg, SAE_MODEL_ARCH);
    m->pre_bias = (int32_t)sae_cfg_i64(cfg, SAE_MODEL_PRE_BIAS);
    m->tied = (int32_t)sae_cfg_i64(cfg, SAE_MODEL_TIED);
    m->k = sae_arch_is_sparse(m->arch) ? sae_cfg_i64(cfg, SAE_MODEL_K) : 0;
    int64_t nw = 0;
    const int64_t *w = sae_cfg_i64_array(cfg, SAE_MODEL_MATRYOSHKA_WIDTHS, &nw);
    m->n_widths = nw > 0 ? nw : 1;
    m->widths = sae_malloc(&al, (size_t)m->n_widths * sizeof *m->widths);
    m->lay = sae_model_layout_for(m->arch, m->tied, m->d, m->n_latents);
    m->params = sae_malloc(&al, (size_t)m->lay.total * sizeof(float));
    int32_t st = sae_config_clone(&m->cfg, cfg);
    if (m->widths == NULL || m->params == NULL || st != SAE_OK) {
        model_destroy(m);
        return SAE_E_NOMEM;
    }
    if (nw > 0)
        memcpy(m->widths, w, (size_t)nw * sizeof *w);
    else
        m->widths[0] = m->n_latents;
    sae_model_bind(m);
    *out = m;
    return SAE_OK;
}

int32_t sae_model_create(sae_model **out, const sae_config *cfg, const sae_allocator *alloc)
{
    if (out == NULL || cfg == NULL)
        return SAE_E_NULL;
    *out = NULL;
    if (sae_config_kind(cfg) != SAE_KIND_MODEL)
        return SAE_E_CONFIG;
    if (sae_config_validate(cfg, NULL, 0) != SAE_OK)
        return SAE_E_CONFIG;
    sae_model *m = NULL;
    int32_t st = model_alloc(&m, cfg, alloc);
    if (st != SAE_OK)
        return st;
    sae_model_init_params(m);
    *out = m;
    return SAE_OK;
}

int32_t sae_model_clone(sae_model **out, const sae_model *src)
{
    if (out == NULL)
        return SAE_E_NULL;
    *out = NULL;
    if (src == NULL)
        return SAE_E_NULL;
    sae_model *m = NULL;
    int32_t st = model_alloc(&m, src->cfg, src->al.a.alloc ? &src->al.a : NULL);
    if (st != SAE_OK)
        return sae_fail(&src->err, st, "clone: out of memory");
    memcpy(m->params, src->params, (size_t)src->lay.total * sizeof(float));
    m->batch_threshold = src->batch_threshold;
    m->batch_threshold_valid = src->batch_threshold_valid;
    *out = m;
    return SAE_OK;
}

int32_t sae_model_dims(const sae_model *model, int64_t *d_in, int64_t *n_latents)
{
    if (model == NULL)
        return SAE_E_NULL;
    if (d_in == NULL && n_latents == NULL)
        return sae_fail(&model->err, SAE_E_NULL, "dims: both outputs are NULL");
    if (d_in != NULL)
        *d_in = model->d;
    if (n_latents != NULL)
        *n_latents = model->n_latents;
    return SAE_OK;
}

int32_t sae_model_get_i64(const sae_model *model, int32_t key, int64_t *value)
{
    if (model == NULL)
        return SAE_E_NULL;
    if (value == NULL)
        return sae_fail(&model->err, SAE_E_NULL, "get_i64: value is NULL");
    int32_t st = sae_config_get_i64(model->cfg, key, value);
    if (st != SAE_OK)
        return sae_fail(&model->err, st, "get_i64: %s", sae_config_errmsg(model->cfg));
    return SAE_OK;
}

int32_t sae_model_get_f64(const sae_model *model, int32_t key, double *value)
{
    if (model == NULL)
        return SAE_E_NULL;
    if (value == NULL)
        return sae_fail(&model->err, SAE_E_NULL, "get_f64: value is NULL");
    int32_t st = sae_config_get_f64(model->cfg, key, value);
    if (st != SAE_OK)
        return sae_fail(&model->err, st, "get_f64: %s", sae_config_errmsg(model->cfg));
    return SAE_OK;
}
