/* Parameters of toy generators (SAE_KIND_TOY) and their cross-checks. */
#include "core/core.h"

#include <sae/toy.h>

static const sae_param_def toy_params[] = {
    {SAE_TOY_N_FEATURES, "n_features", SAE_TYPE_I64, 1, 1 << 24, 32, "number of true features N"},
    {SAE_TOY_D, "d", SAE_TYPE_I64, 1, 1 << 20, 64, "dimension of the activations"},
    {SAE_TOY_SEED, "seed", SAE_TYPE_I64, 0, 9007199254740991.0, 0, "seed of every random choice"},
    {SAE_TOY_FIRE_PROB, "fire_prob", SAE_TYPE_F64, 0, 1, 0.05, "firing probability of every feature"},
    {SAE_TOY_FIRE_PROBS, "fire_probs", SAE_TYPE_F64_ARRAY, 0, 1, 0, "per-feature firing probabilities (length N)"},
    {SAE_TOY_MAG_LO, "mag_lo", SAE_TYPE_F64, 0, 1e6, 0, "lower end of uniform magnitudes"},
    {SAE_TOY_MAG_HI, "mag_hi", SAE_TYPE_F64, 0, 1e6, 1, "upper end of uniform magnitudes"},
};

static int32_t toy_validate(const sae_config *c, char *msg, size_t cap)
{
    int64_t n = sae_cfg_i64(c, SAE_TOY_N_FEATURES), d = sae_cfg_i64(c, SAE_TOY_D);
    if (n > (INT64_C(1) << 34) / d)
        return sae_reason(msg, cap, SAE_E_CONFIG, "n_features x d = %lld x %lld is too large",
                          (long long)n, (long long)d);
    int64_t np;
    sae_cfg_f64_array(c, SAE_TOY_FIRE_PROBS, &np);
    if (np != 0 && np != n)
        return sae_reason(msg, cap, SAE_E_CONFIG, "fire_probs has %lld values, n_features is %lld",
                          (long long)np, (long long)n);
    if (sae_cfg_f64(c, SAE_TOY_MAG_LO) > sae_cfg_f64(c, SAE_TOY_MAG_HI))
        return sae_reason(msg, cap, SAE_E_CONFIG, "mag_lo must not exceed mag_hi");
    return SAE_OK;
}

const sae_kind_def sae_toy_kind = {SAE_KIND_TOY, "toy", toy_params,
                                   (int32_t)(sizeof toy_params / sizeof toy_params[0]),
                                   toy_validate};
