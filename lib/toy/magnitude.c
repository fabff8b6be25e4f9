/* Magnitude models: how strongly an active feature fires. */
#include "toy_internal.h"

int32_t sae_toy_magnitude_build(sae_toy *t)
{
    toy_magnitude *m = &t->mag;
    m->lo = sae_malloc(&t->alloc, (size_t)t->n * sizeof *m->lo);
    m->hi = sae_malloc(&t->alloc, (size_t)t->n * sizeof *m->hi);
    if (!m->lo || !m->hi)
        return SAE_E_NOMEM;
    float lo = (float)sae_cfg_f64(t->cfg, SAE_TOY_MAG_LO), hi = (float)sae_cfg_f64(t->cfg, SAE_TOY_MAG_HI);
    for (int64_t j = 0; j < t->n; j++) {
        m->lo[j] = lo;
        m->hi[j] = hi;
    }
    return SAE_OK;
}

void sae_toy_magnitude_free(sae_toy *t)
{
    sae_free(&t->alloc, t->mag.lo);
    sae_free(&t->alloc, t->mag.hi);
    t->mag.lo = t->mag.hi = NULL;
}

void sae_toy_magnitudes(const sae_toy *t, uint64_t index, uint32_t domain, const int32_t *active,
                        int64_t k, float *mag, toy_scratch *s)
{
    (void)s;
    sae_rng r;
    sae_rng_init(&r, t->seed, index, SAE_STREAM_MAGNITUDE + domain);
    const toy_magnitude *m = &t->mag;
    for (int64_t a = 0; a < k; a++) {
        int32_t j = active[a];
        mag[a] = m->lo[j] + (m->hi[j] - m->lo[j]) * sae_rng_uniformf(&r);
    }
}
