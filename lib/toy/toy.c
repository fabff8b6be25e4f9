/* The toy generator handle: creation, copies, queries. */
#include "toy_internal.h"

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

/* Build every part from t->cfg. dict_src, when not NULL, is copied instead of being
 * built (clones reuse the parent's dictionary rather than recomputing it). */
static int32_t toy_build(sae_toy *t, const float *dict_src)
{
    const sae_config *c = t->cfg;
    t->n = sae_cfg_i64(c, SAE_TOY_N_FEATURES);
    t->d = sae_cfg_i64(c, SAE_TOY_D);
    t->seed = (uint64_t)sae_cfg_i64(c, SAE_TOY_SEED);
    t->n_threads = 1;
    t->dict = sae_malloc(&t->alloc, (size_t)(t->n * t->d) * sizeof *t->dict);
    t->marginal = sae_calloc(&t->alloc, (size_t)t->n, sizeof *t->marginal);
    if (!t->dict || !t->marginal)
        return SAE_E_NOMEM;
    int32_t st = sae_toy_firing_build(t);
    if (st == SAE_OK)
        st = sae_toy_magnitude_build(t);
    if (st != SAE_OK)
        return st;
    if (dict_src != NULL) {
        memcpy(t->dict, dict_src, (size_t)(t->n * t->d) * sizeof *t->dict);
        return SAE_OK;
    }
    return sae_toy_dict_build(t);
}

static int32_t toy_new(sae_toy **out, const sae_config *cfg, const sae_allocator *alloc,
                       const float *dict_src)
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
        st = toy_build(t, dict_src);
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
    if (sae_config_validate(cfg, NULL, 0) != SAE_OK)
        return SAE_E_CONFIG;
    return toy_new(out, cfg, alloc, NULL);
}

int32_t sae_toy_clone(sae_toy **out, const sae_toy *src)
{
    if (out == NULL || src == NULL)
        return SAE_E_NULL;
    int32_t st = toy_new(out, src->cfg, src->alloc.a.alloc ? &src->alloc.a : NULL, src->dict);
    if (st != SAE_OK)
        return sae_fail(&src->err, st, "clone failed: %s", sae_status_str(st));
    return SAE_OK;
}

const char *sae_toy_errmsg(const sae_toy *t) { return t ? t->err.msg : "toy is NULL"; }

int32_t sae_toy_dims(const sae_toy *t, int64_t *n_features, int64_t *d)
{
    if (t == NULL)
        return SAE_E_NULL;
    if (n_features == NULL || d == NULL)
        return sae_fail(&t->err, SAE_E_NULL, "n_features and d must not be NULL");
    *n_features = t->n;
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
    if (cap < t->n)
        return sae_fail(&t->err, SAE_E_BUFFER_TOO_SMALL, "fire_probs needs %lld entries, cap is %lld",
                        (long long)t->n, (long long)cap);
    memcpy(dst, t->marginal, (size_t)t->n * sizeof *dst);
    return SAE_OK;
}
