/* Low-activation penalty for tied SAEs (Broken Latents, 2025). Stub: coefficient 0 only. */
#include "train/regularisers.h"

#include "core/core.h"

#include <sae/train.h>

size_t sae_reg_lowact_work_floats(const sae_config *trainer_cfg, int64_t n, int64_t n_latents,
                                  int64_t d)
{
    (void)n, (void)n_latents, (void)d;
    if (sae_cfg_f64(trainer_cfg, SAE_REG_LOWACT_COEFF) == 0.0)
        return 0;
    return 0;
}

double sae_reg_lowact(const sae_config *trainer_cfg, const float *x, int64_t n, int64_t d,
                      int64_t ldx, const float *w, int64_t n_latents, int64_t ldw,
                      const float *pre, const float *z, float *g_pre, float *g_w, int64_t ldg,
                      float *work)
{
    (void)x, (void)n, (void)d, (void)ldx, (void)w, (void)n_latents, (void)ldw, (void)pre, (void)z;
    (void)g_pre, (void)g_w, (void)ldg, (void)work;
    if (sae_cfg_f64(trainer_cfg, SAE_REG_LOWACT_COEFF) == 0.0)
        return 0.0;
    return 0.0;
}
