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
};

const sae_kind_def sae_trainer_kind = {SAE_KIND_TRAINER, "trainer", trainer_params,
                                       (int32_t)(sizeof trainer_params / sizeof trainer_params[0]),
                                       NULL};
