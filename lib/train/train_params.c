/* Parameters of trainers (SAE_KIND_TRAINER) and their cross-checks. */
#include "core/core.h"

#include <sae/train.h>

static const sae_param_def trainer_params[] = {
    {SAE_TRAINER_LR, "lr", SAE_TYPE_F64, 0, 10, 1e-3, "Adam learning rate"},
    {SAE_TRAINER_L1_COEFF, "l1_coefficient", SAE_TYPE_F64, 0, 1e6, 1e-3, "weight of the sparsity penalty"},
    {SAE_TRAINER_BATCH_SIZE, "batch_size", SAE_TYPE_I64, 1, 1 << 24, 1024, "rows per step when training from a toy"},
    {SAE_TRAINER_ADAM_BETA1, "adam_beta1", SAE_TYPE_F64, 0, 0.999999, 0.9, "Adam first-moment decay"},
    {SAE_TRAINER_ADAM_BETA2, "adam_beta2", SAE_TYPE_F64, 0, 0.99999999, 0.999, "Adam second-moment decay"},
    {SAE_TRAINER_ADAM_EPS, "adam_eps", SAE_TYPE_F64, 1e-30, 1, 1e-8, "Adam epsilon"},
    {SAE_TRAINER_N_THREADS, "n_threads", SAE_TYPE_I64, 1, 256, 1, "threads used inside a step"},
    {SAE_TRAINER_FIRST_SAMPLE, "first_sample", SAE_TYPE_I64, 0, 9007199254740991.0, 0, "toy index of the first training row"},
    /* regularisers (lib/train/reg_*.c, docs/regularisers.md) */
    {SAE_REG_ORTHO_COEFF, "ortho_coefficient", SAE_TYPE_F64, 0, 1e6, 0, "weight of the decoder orthogonality penalty (0 = off)"},
    {SAE_REG_ORTHO_SHAPE, "ortho_shape", SAE_TYPE_I64, 0, 2, SAE_ORTHO_SHAPE_SQUARE, "penalty of one cosine: 0 |c|, 1 c^2, 2 log-barrier (sharp near 1)"},
    {SAE_REG_ORTHO_AGGREGATE, "ortho_aggregate", SAE_TYPE_I64, 0, 1, SAE_ORTHO_AGGREGATE_PAIRS, "0 mean over all pairs, 1 mean over latents of the closest neighbour's penalty"},
    {SAE_REG_ORTHO_MODE, "ortho_mode", SAE_TYPE_I64, 0, 1, SAE_ORTHO_MODE_EXACT, "0 exact (quadratic in latents), 1 random chunks per step (linear)"},
    {SAE_REG_ORTHO_CHUNK, "ortho_chunk", SAE_TYPE_I64, 2, 1 << 20, 1024, "latents per random chunk in chunked mode"},
    {SAE_REG_ORTHO_SHARP_EPS, "ortho_sharp_eps", SAE_TYPE_F64, 1e-6, 1e3, 0.01, "softening e of the log-barrier shape; smaller = sharper near |c| = 1"},
    {SAE_REG_ORTHO_SEED, "ortho_seed", SAE_TYPE_I64, 0, 9007199254740991.0, 0, "seed of the random chunking (the stream index is the step)"},
    {SAE_REG_LOWACT_COEFF, "lowact_coefficient", SAE_TYPE_F64, 0, 1e6, 0, "weight of the low-activation penalty for tied SAEs (0 = off)"},
    {SAE_REG_LOWACT_THRESHOLD, "lowact_threshold", SAE_TYPE_F64, 1e-12, 1e12, 1.0, "activations in (0, threshold) count as low; put it between the low and high peaks"},
};

const sae_kind_def sae_trainer_kind = {SAE_KIND_TRAINER, "trainer", trainer_params,
                                       (int32_t)(sizeof trainer_params / sizeof trainer_params[0]),
                                       NULL};
