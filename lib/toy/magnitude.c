/* Magnitude models: how strongly an active feature fires. Every model is a function of
 * one standard draw per active feature (a uniform u or a normal z); features of the same
 * amplitude group share part of that draw, which correlates their magnitudes. */
#include "toy_internal.h"

#include <math.h>
#include <string.h>

/* Per-feature value of a parameter: the array when set, else the scalar. */
static void per_feature(const sae_config *c, int32_t scalar_key, int32_t array_key, int64_t n,
                        float *dst)
{
    int64_t len;
    const double *v = sae_cfg_f64_array(c, array_key, &len);
    double s = sae_cfg_f64(c, scalar_key);
    for (int64_t j = 0; j < n; j++)
        dst[j] = (float)(len == n ? v[j] : s);
}

static int32_t groups_build(sae_toy *t)
{
    toy_magnitude *m = &t->mag;
    int64_t len;
    const int64_t *g = sae_cfg_i64_array(t->cfg, SAE_TOY_MAG_GROUPS, &len);
    if (len != t->n)
        return SAE_OK;
    m->group = sae_malloc(&t->alloc, (size_t)t->n * sizeof *m->group);
    if (m->group == NULL)
        return SAE_E_NOMEM;
    for (int64_t j = 0; j < t->n; j++) {
        m->group[j] = (int32_t)g[j];
        m->n_groups = SAE_MAX(m->n_groups, g[j] + 1);
    }
    double rho = sae_cfg_f64(t->cfg, SAE_TOY_MAG_GROUP_CORR);
    m->w_shared = sqrt(rho);
    m->w_own = sqrt(1 - rho);
    return SAE_OK;
}

int32_t sae_toy_magnitude_build(sae_toy *t)
{
    toy_magnitude *m = &t->mag;
    m->model = (int32_t)sae_cfg_i64(t->cfg, SAE_TOY_MAG_MODEL);
    m->scale = 1.0f;
    m->a = sae_malloc(&t->alloc, (size_t)t->n * sizeof *m->a);
    m->b = sae_malloc(&t->alloc, (size_t)t->n * sizeof *m->b);
    if (!m->a || !m->b)
        return SAE_E_NOMEM;
    if (m->model == SAE_TOY_MAG_UNIFORM) {
        per_feature(t->cfg, SAE_TOY_MAG_LO, SAE_TOY_MAG_LOS, t->n, m->a);
        per_feature(t->cfg, SAE_TOY_MAG_HI, SAE_TOY_MAG_HIS, t->n, m->b);
    } else {
        per_feature(t->cfg, SAE_TOY_MAG_MEAN, SAE_TOY_MAG_MEANS, t->n, m->a);
        per_feature(t->cfg, SAE_TOY_MAG_STD, SAE_TOY_MAG_STDS, t->n, m->b);
    }
    return groups_build(t);
}

void sae_toy_magnitude_free(sae_toy *t)
{
    sae_free(&t->alloc, t->mag.a);
    sae_free(&t->alloc, t->mag.b);
    sae_free(&t->alloc, t->mag.group);
    t->mag.a = t->mag.b = NULL;
    t->mag.group = NULL;
}

/* Magnitude of feature j from a uniform u in [0, 1) or its normal score z. The uniform
 * and exponential models use u, the normal models z; with groups both are derived
 * from the same z (u = Phi(z)), so the correlation carries over. */
static float magnitude_of(const toy_magnitude *m, int32_t j, double u, double z)
{
    float a = m->a[j], b = m->b[j];
    switch (m->model) {
    case SAE_TOY_MAG_UNIFORM: return a + (b - a) * (float)u;
    case SAE_TOY_MAG_CONSTANT: return a;
    case SAE_TOY_MAG_FOLDED_NORMAL: return (float)fabs(a + b * z);
    case SAE_TOY_MAG_CLIPPED_NORMAL: return (float)fmax(0.0, a + b * z);
    default: return (float)(-a * log1p(-u)); /* exponential, mean a */
    }
}

static int needs_normal(int32_t model)
{
    return model == SAE_TOY_MAG_FOLDED_NORMAL || model == SAE_TOY_MAG_CLIPPED_NORMAL;
}

/* Latent normal of group g in this sample: drawn on first use, in the order the sorted
 * active list meets the groups. */
static double group_latent(const toy_ziggurat *z, int32_t g, sae_rng *rg, toy_scratch *s)
{
    if (s->gstamp[g] != s->stamp) {
        s->gstamp[g] = s->stamp;
        s->gval[g] = sae_toy_ziggurat_normal(z, rg);
    }
    return s->gval[g];
}

void sae_toy_magnitudes(const sae_toy *t, uint64_t index, uint32_t domain, const int32_t *active,
                        int64_t k, float *mag, toy_scratch *s)
{
    const toy_magnitude *m = &t->mag;
    sae_rng r, rg;
    sae_rng_init(&r, t->seed, index, SAE_STREAM_MAGNITUDE + domain);
    if (m->group == NULL) {
        for (int64_t a = 0; a < k; a++) {
            int32_t j = active[a];
            double u = 0, z = 0;
            if (needs_normal(m->model))
                z = sae_toy_ziggurat_normal(&t->zig, &r);
            else if (m->model != SAE_TOY_MAG_CONSTANT)
                u = m->model == SAE_TOY_MAG_UNIFORM ? (double)sae_rng_uniformf(&r) : sae_rng_uniform(&r);
            mag[a] = magnitude_of(m, j, u, z) * m->scale;
        }
        return;
    }
    sae_rng_init(&rg, t->seed, index, TOY_STREAM_MAG_GROUP + domain);
    s->stamp++;
    for (int64_t a = 0; a < k; a++) {
        int32_t j = active[a], g = m->group[j];
        double z = sae_toy_ziggurat_normal(&t->zig, &r);
        if (g >= 0)
            z = m->w_shared * group_latent(&t->zig, g, &rg, s) + m->w_own * z;
        /* u = Phi(z), kept away from 1 so that log1p(-u) stays finite */
        double u = fmin(sae_toy_norm_cdf(z), 1 - 0x1p-53);
        mag[a] = magnitude_of(m, j, u, z) * m->scale;
    }
}
