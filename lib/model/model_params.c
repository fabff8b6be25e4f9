/* Parameters of SAE models (SAE_KIND_MODEL) and their cross-checks. */
#include "core/core.h"

#include <sae/model.h>

static const sae_param_def model_params[] = {
    {SAE_MODEL_D_IN, "d_in", SAE_TYPE_I64, 1, 1 << 20, 64, "input dimension"},
    {SAE_MODEL_N_LATENTS, "n_latents", SAE_TYPE_I64, 1, 1 << 24, 64, "number of latents"},
    {SAE_MODEL_ARCH, "arch", SAE_TYPE_I64, 1, 6, SAE_ARCH_RELU,
     "architecture (sae_arch): 1 relu, 2 topk, 3 batchtopk, 4 jumprelu, 5 gated, 6 matryoshka"},
    {SAE_MODEL_SEED, "model_seed", SAE_TYPE_I64, 0, 9007199254740991.0, 0, "seed of parameter initialisation"},
    {SAE_MODEL_PRE_BIAS, "pre_bias", SAE_TYPE_I64, 0, 1, 1, "subtract b_dec from inputs before encoding"},
    {SAE_MODEL_K, "k", SAE_TYPE_I64, 1, 1 << 20, 8, "active latents per row (topk, batchtopk, matryoshka)"},
    {SAE_MODEL_TIED, "tied", SAE_TYPE_I64, 0, 1, 0, "encoder is the decoder's transpose (one shared tensor)"},
    {SAE_MODEL_JUMPRELU_INIT_THRESHOLD, "jumprelu_init_threshold", SAE_TYPE_F64, 0, 1e6, 0.001,
     "initial JumpReLU threshold of every latent"},
    {SAE_MODEL_MATRYOSHKA_WIDTHS, "matryoshka_widths", SAE_TYPE_I64_ARRAY, 1, 1 << 24, 0,
     "nested prefix sizes, strictly increasing, the last equal to n_latents (matryoshka)"},
    {SAE_MODEL_DECODER_INIT_NORM, "decoder_init_norm", SAE_TYPE_F64, 1e-6, 1e6, 1.0,
     "Euclidean norm of every initial decoder row"},
    {SAE_MODEL_INIT_TRANSPOSE, "init_transpose", SAE_TYPE_I64, 0, 1, 1,
     "initialise the encoder as the decoder's transpose (else independent random rows)"},
};

static int32_t check_widths(const sae_config *c, int64_t l, char *msg, size_t cap)
{
    int64_t n = 0;
    const int64_t *w = sae_cfg_i64_array(c, SAE_MODEL_MATRYOSHKA_WIDTHS, &n);
    int64_t arch = sae_cfg_i64(c, SAE_MODEL_ARCH);
    if (n == 0)
        return arch == SAE_ARCH_MATRYOSHKA
                   ? sae_reason(msg, cap, SAE_E_CONFIG, "matryoshka needs matryoshka_widths")
                   : SAE_OK;
    if (arch != SAE_ARCH_MATRYOSHKA)
        return sae_reason(msg, cap, SAE_E_CONFIG, "matryoshka_widths is set but arch is not matryoshka");
    for (int64_t i = 0; i < n; i++) {
        if (w[i] < 1 || w[i] > l || (i > 0 && w[i] <= w[i - 1]))
            return sae_reason(msg, cap, SAE_E_CONFIG,
                              "matryoshka_widths must increase strictly within [1, n_latents]");
    }
    if (w[n - 1] != l)
        return sae_reason(msg, cap, SAE_E_CONFIG,
                          "the last matryoshka width (%lld) must equal n_latents (%lld)",
                          (long long)w[n - 1], (long long)l);
    return SAE_OK;
}

static int32_t model_validate(const sae_config *c, char *msg, size_t cap)
{
    int64_t d = sae_cfg_i64(c, SAE_MODEL_D_IN), l = sae_cfg_i64(c, SAE_MODEL_N_LATENTS);
    int64_t arch = sae_cfg_i64(c, SAE_MODEL_ARCH), k = sae_cfg_i64(c, SAE_MODEL_K);
    if (l > (INT64_C(1) << 34) / d)
        return sae_reason(msg, cap, SAE_E_CONFIG, "d_in x n_latents = %lld x %lld is too large",
                          (long long)d, (long long)l);
    if ((arch == SAE_ARCH_TOPK || arch == SAE_ARCH_BATCHTOPK || arch == SAE_ARCH_MATRYOSHKA) &&
        k > l)
        return sae_reason(msg, cap, SAE_E_CONFIG, "k = %lld exceeds n_latents = %lld",
                          (long long)k, (long long)l);
    return check_widths(c, l, msg, cap);
}

const sae_kind_def sae_model_kind = {SAE_KIND_MODEL, "model", model_params,
                                     (int32_t)(sizeof model_params / sizeof model_params[0]),
                                     model_validate};
