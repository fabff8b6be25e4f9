/* Orthogonality penalty on decoder rows (Till 2024; OrtSAE 2025). Stub: coefficient 0 only. */
#include "train/regularisers.h"

#include "core/core.h"

#include <sae/train.h>

size_t sae_reg_ortho_work_floats(const sae_config *trainer_cfg, int64_t n_latents, int64_t d)
{
    (void)n_latents;
    (void)d;
    if (sae_cfg_f64(trainer_cfg, SAE_REG_ORTHO_COEFF) == 0.0)
        return 0;
    return 0;
}

double sae_reg_ortho(const sae_config *trainer_cfg, const float *w, int64_t n_latents, int64_t d,
                     int64_t ldw, uint64_t step, float *g, int64_t ldg, float *work)
{
    (void)w, (void)n_latents, (void)d, (void)ldw, (void)step, (void)g, (void)ldg, (void)work;
    if (sae_cfg_f64(trainer_cfg, SAE_REG_ORTHO_COEFF) == 0.0)
        return 0.0;
    return 0.0;
}
