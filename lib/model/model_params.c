/* Parameters of SAE models (SAE_KIND_MODEL) and their cross-checks. */
#include "core/core.h"

#include <sae/model.h>

static const sae_param_def model_params[] = {
    {SAE_MODEL_D_IN, "d_in", SAE_TYPE_I64, 1, 1 << 20, 64, "input dimension"},
    {SAE_MODEL_N_LATENTS, "n_latents", SAE_TYPE_I64, 1, 1 << 24, 64, "number of latents"},
    {SAE_MODEL_ARCH, "arch", SAE_TYPE_I64, 1, 1, SAE_ARCH_RELU, "architecture (sae_arch)"},
    {SAE_MODEL_SEED, "model_seed", SAE_TYPE_I64, 0, 9007199254740991.0, 0, "seed of parameter initialisation"},
    {SAE_MODEL_PRE_BIAS, "pre_bias", SAE_TYPE_I64, 0, 1, 1, "subtract b_dec from inputs before encoding"},
};

static int32_t model_validate(const sae_config *c, char *msg, size_t cap)
{
    int64_t d = sae_cfg_i64(c, SAE_MODEL_D_IN), l = sae_cfg_i64(c, SAE_MODEL_N_LATENTS);
    if (l > (INT64_C(1) << 34) / d)
        return sae_reason(msg, cap, SAE_E_CONFIG, "d_in x n_latents = %lld x %lld is too large",
                          (long long)d, (long long)l);
    return SAE_OK;
}

const sae_kind_def sae_model_kind = {SAE_KIND_MODEL, "model", model_params,
                                     (int32_t)(sizeof model_params / sizeof model_params[0]),
                                     model_validate};
