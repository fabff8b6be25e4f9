/* The toy generator handle: creation, copies, queries. */
#include "toy_internal.h"

#include <math.h>
#include <string.h>

static void toy_release(sae_toy *t)
{
    sae_toy_firing_free(t);
    sae_toy_magnitude_free(t);
    sae_free(&t->alloc, t->dict);
    sae_free(&t->alloc, t->marginal);
    sae_config_free(t->cfg);
}

void sae_toy_free(sae_toy *t)
{
    if (t == NULL)
        return;
    toy_release(t);
    sae_alloc al = t->alloc;
    sae_free(&al, t);
}

/* Samples drawn to estimate E||x||^2 for "normalize" (relative error about
 * CV(||x||^2) / 128). */
#define TOY_SCALE_ROWS 16384

/* Scale samples so that E||x||^2 = d: magnitudes and noise are multiplied by
 * s = sqrt(d / E||x||^2), with E estimated on samples of a private domain. */
static int32_t normalise_scale(sae_toy *t)
{
    double msq;
    int32_t st = sae_toy_mean_sq_norm(t, TOY_SCALE_ROWS, &msq);
    if (st != SAE_OK)
        return st;
    if (msq > 0) {
        double s = sqrt((double)t->d / msq);
        t->mag.scale = (float)s;
        t->noise_std = (float)(t->noise_std * s);
    }
    return SAE_OK;
}

/* Build every part from t->cfg. src, when not NULL, is a handle built from the same
 * configuration: its dictionary and scale are copied instead of being recomputed
 * (clones do not retrain the superposition model). */
static int32_t toy_build(sae_toy *t, const sae_toy *src)
{
    const sae_config *c = t->cfg;
    t->n = sae_cfg_i64(c, SAE_TOY_N_FEATURES);
    t->d = sae_cfg_i64(c, SAE_TOY_D);
    t->seed = (uint64_t)sae_cfg_i64(c, SAE_TOY_SEED);
    t->n_threads = (int32_t)sae_cfg_i64(c, SAE_TOY_N_THREADS);
    t->noise_std = (float)sae_cfg_f64(c, SAE_TOY_NOISE_STD);
    sae_toy_ziggurat_init(&t->zig);
    t->dict = sae_malloc(&t->alloc, (size_t)(t->n * t->d) * sizeof *t->dict);
    t->marginal = sae_calloc(&t->alloc, (size_t)t->n, sizeof *t->marginal);
    if (!t->dict || !t->marginal)
        return SAE_E_NOMEM;
    int32_t st = sae_toy_firing_build(t);
    if (st == SAE_OK)
        st = sae_toy_magnitude_build(t);
    if (st != SAE_OK)
        return st;
    if (src != NULL) {
        memcpy(t->dict, src->dict, (size_t)(t->n * t->d) * sizeof *t->dict);
        t->mag.scale = src->mag.scale;
        t->noise_std = src->noise_std;
        t->tms_loss = src->tms_loss;
        return SAE_OK;
    }
    st = sae_toy_dict_build(t);
    if (st == SAE_OK && sae_cfg_i64(c, SAE_TOY_NORMALIZE))
        st = normalise_scale(t);
    return st;
}

static int32_t toy_new(sae_toy **out, const sae_config *cfg, const sae_allocator *alloc,
                       const sae_toy *src)
{
    sae_alloc al;
    sae_alloc_init(&al, alloc);
    sae_toy *t = sae_calloc(&al, 1, sizeof *t);
    if (t == NULL)
        return SAE_E_NOMEM;
    t->alloc = al;
    sae_err_init(&t->err);
    int32_t st = sae_config_clone(&t->cfg, cfg);
    if (st == SAE_OK)
        st = toy_build(t, src);
    if (st != SAE_OK) {
        sae_toy_free(t);
        return st;
    }
    *out = t;
    return SAE_OK;
}

int32_t sae_toy_create(sae_toy **out, const sae_config *cfg, const sae_allocator *alloc)
{
    if (out == NULL || cfg == NULL)
        return SAE_E_NULL;
    if (sae_config_kind(cfg) != SAE_KIND_TOY)
        return SAE_E_CONFIG;
    int32_t st = sae_config_validate(cfg, NULL, 0);
    if (st == SAE_E_NOMEM) /* validation itself allocates: out of memory is not a bad config */
        return st;
    if (st != SAE_OK)
        return SAE_E_CONFIG;
    return toy_new(out, cfg, alloc, NULL);
}

int32_t sae_toy_clone(sae_toy **out, const sae_toy *src)
{
    if (out == NULL || src == NULL)
        return SAE_E_NULL;
    int32_t st = toy_new(out, src->cfg, src->alloc.a.alloc ? &src->alloc.a : NULL, src);
    if (st != SAE_OK)
        return sae_fail(&src->err, st, "clone failed: %s", sae_status_str(st));
    return SAE_OK;
}

const char *sae_toy_errmsg(const sae_toy *t) { return t ? t->err.msg : "toy is NULL"; }

int32_t sae_toy_dims(const sae_toy *t, int64_t *n_features, int64_t *d)
{
    if (t == NULL)
        return SAE_E_NULL;
    if (n_features == NULL && d == NULL)
        return sae_fail(&t->err, SAE_E_NULL, "dims: both outputs are NULL");
    if (n_features != NULL)
        *n_features = t->n;
    if (d != NULL)
        *d = t->d;
    return SAE_OK;
}

int32_t sae_toy_dictionary(const sae_toy *t, float *dst, int64_t ld)
{
    if (t == NULL)
        return SAE_E_NULL;
    int32_t st = sae_check_matrix(&t->err, dst, t->n, t->d, ld, "dst");
    if (st != SAE_OK)
        return st;
    for (int64_t j = 0; j < t->n; j++)
        memcpy(dst + j * ld, t->dict + j * t->d, (size_t)t->d * sizeof *dst);
    return SAE_OK;
}

int32_t sae_toy_fire_probs(const sae_toy *t, double *dst, int64_t cap)
{
    if (t == NULL)
        return SAE_E_NULL;
    if (dst == NULL)
        return sae_fail(&t->err, SAE_E_NULL, "dst is NULL");
    if (cap < 0)
        return sae_fail(&t->err, SAE_E_SIZE, "cap is negative (%lld)", (long long)cap);
    if (cap < t->n)
        return sae_fail(&t->err, SAE_E_BUFFER_TOO_SMALL, "fire_probs needs %lld entries, cap is %lld",
                        (long long)t->n, (long long)cap);
    memcpy(dst, t->marginal, (size_t)t->n * sizeof *dst);
    return SAE_OK;
}

int32_t sae_toy_get_config(const sae_toy *t, sae_config **out)
{
    if (t == NULL)
        return SAE_E_NULL;
    if (out == NULL)
        return sae_fail(&t->err, SAE_E_NULL, "out is NULL");
    int32_t st = sae_config_clone(out, t->cfg);
    if (st != SAE_OK)
        return sae_fail(&t->err, st, "copying the configuration failed: %s", sae_status_str(st));
    return SAE_OK;
}

int32_t sae_toy_info(const sae_toy *t, int32_t key, double *value)
{
    if (t == NULL)
        return SAE_E_NULL;
    if (value == NULL)
        return sae_fail(&t->err, SAE_E_NULL, "value is NULL");
    switch (key) {
    case SAE_TOY_INFO_SCALE: *value = t->mag.scale; return SAE_OK;
    case SAE_TOY_INFO_MEAN_ACTIVE: {
        double s = 0;
        for (int64_t j = 0; j < t->n; j++)
            s += t->marginal[j];
        *value = s;
        return SAE_OK;
    }
    case SAE_TOY_INFO_P_EMPTY: *value = t->fire.p_empty; return SAE_OK;
    case SAE_TOY_INFO_TMS_LOSS: *value = t->tms_loss; return SAE_OK;
    case SAE_TOY_INFO_GENERATOR_VERSION: *value = SAE_TOY_GENERATOR_VERSION; return SAE_OK;
    default: return sae_fail(&t->err, SAE_E_UNKNOWN_KEY, "unknown toy info key %d", (int)key);
    }
}
