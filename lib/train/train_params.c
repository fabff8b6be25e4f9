/* Parameters of trainers (SAE_KIND_TRAINER) and their cross-checks. */
#include "core/core.h"

#include <sae/train.h>

static const sae_param_def trainer_params[] = {
    {SAE_TRAINER_LR, "lr", SAE_TYPE_F64, 0, 1e12, 1e-3, "Adam learning rate (peak, after warm-up)"},
    {SAE_TRAINER_L1_COEFF, "l1_coefficient", SAE_TYPE_F64, 0, 1e6, 1e-3, "sparsity coefficient: L1 (relu, gated) or L0 (jumprelu)"},
    {SAE_TRAINER_BATCH_SIZE, "batch_size", SAE_TYPE_I64, 1, 1 << 24, 1024, "rows per step when training from a toy"},
    {SAE_TRAINER_ADAM_BETA1, "adam_beta1", SAE_TYPE_F64, 0, 0.999999, 0.9, "Adam first-moment decay"},
    {SAE_TRAINER_ADAM_BETA2, "adam_beta2", SAE_TYPE_F64, 0, 0.99999999, 0.999, "Adam second-moment decay"},
    {SAE_TRAINER_ADAM_EPS, "adam_eps", SAE_TYPE_F64, 1e-30, 1, 1e-8, "Adam epsilon"},
    {SAE_TRAINER_N_THREADS, "n_threads", SAE_TYPE_I64, 1, 256, 1, "threads used inside a step"},
    {SAE_TRAINER_FIRST_SAMPLE, "first_sample", SAE_TYPE_I64, 0, 9007199254740991.0, 0, "toy index of the first training row"},
    {SAE_TRAINER_DECODER_RENORM, "decoder_renorm", SAE_TYPE_I64, 0, 1, 1, "keep decoder rows at unit norm (project the parallel gradient out, renormalise after each step)"},
    {SAE_TRAINER_L1_DECODER_NORM, "l1_decoder_norm", SAE_TYPE_I64, 0, 1, 1, "weight each latent's L1 by its decoder row norm (Anthropic April 2024)"},
    {SAE_TRAINER_L1_WARMUP_STEPS, "l1_warmup_steps", SAE_TYPE_I64, 0, 9007199254740991.0, 0, "steps of linear warm-up of the sparsity coefficient from 0"},
    {SAE_TRAINER_LR_WARMUP_STEPS, "lr_warmup_steps", SAE_TYPE_I64, 0, 9007199254740991.0, 0, "steps of linear warm-up of the learning rate from 0"},
    {SAE_TRAINER_LR_SCHEDULE, "lr_schedule", SAE_TYPE_I64, 0, 2, SAE_LR_CONSTANT, "after warm-up: 0 constant, 1 linear decay, 2 cosine decay (to lr_end over lr_decay_steps)"},
    {SAE_TRAINER_LR_DECAY_STEPS, "lr_decay_steps", SAE_TYPE_I64, 0, 9007199254740991.0, 0, "length of the decay after warm-up (0: no decay)"},
    {SAE_TRAINER_LR_END, "lr_end", SAE_TYPE_F64, 0, 1e12, 0, "learning rate at the end of the decay"},
    {SAE_TRAINER_GRAD_CLIP, "grad_clip", SAE_TYPE_F64, 0, 1e30, 0, "maximum global L2 norm of the gradient (0 = no clipping)"},
    {SAE_TRAINER_AUX_K, "aux_k", SAE_TYPE_I64, 0, 1 << 24, 0, "dead latents used by the AuxK loss (0 = d_in / 2)"},
    {SAE_TRAINER_AUX_COEFF, "aux_coefficient", SAE_TYPE_F64, 0, 1e6, 0.03125, "weight of the AuxK loss for topk/batchtopk/matryoshka (0 = off)"},
    {SAE_TRAINER_DEAD_STEPS, "dead_steps", SAE_TYPE_I64, 1, 9007199254740991.0, 1000, "a latent that has not fired for this many steps is dead"},
    {SAE_TRAINER_RESAMPLE_EVERY, "resample_every", SAE_TYPE_I64, 0, 9007199254740991.0, 0, "resample dead latents every this many steps (0 = never)"},
    {SAE_TRAINER_JUMPRELU_BANDWIDTH, "jumprelu_bandwidth", SAE_TYPE_F64, 1e-9, 1e6, 0.05, "width of the rectangle kernel in the JumpReLU straight-through estimator"},
    {SAE_TRAINER_B_DEC_INIT, "b_dec_init", SAE_TYPE_I64, 0, 2, SAE_B_DEC_INIT_KEEP, "initialise b_dec from the first batch: 0 keep, 1 mean, 2 geometric median"},
    {SAE_TRAINER_THRESHOLD_LR, "batchtopk_threshold_lr", SAE_TYPE_F64, 0, 1, 0.01, "EMA rate of the BatchTopK inference threshold"},
    {SAE_TRAINER_CHUNK_ROWS, "chunk_rows", SAE_TYPE_I64, 0, 1 << 24, 0, "rows per block inside a step (scratch is chunk_rows x n_latents); 0 = about 1M floats per block, 64 to 1024 rows (at least 256: always for dense products, within 4M floats for the TopK family)"},
    {SAE_TRAINER_SEED, "trainer_seed", SAE_TYPE_I64, 0, 9007199254740991.0, 0, "seed of the trainer's random choices (resampling)"},
    {SAE_TRAINER_BF16_SCORES, "bf16_scores", SAE_TYPE_I64, 0, 1, 1, "topk: approximate the encoder product in low precision where the CPU supports it (bfloat16 on AMX or AVX512-BF16, else int16 on AVX2; d_in >= 64, d_in x n_latents >= 65536) and rescore the candidates in float (the codes are the same; only the speed changes); relu: the same for blocks expected to be sparse, whose active values are then exact float dot products"},
    {SAE_TRAINER_THREAD_MIN_WORK, "thread_min_work", SAE_TYPE_I64, 0, 9007199254740991.0, 33554432, "a step whose rows x n_latents x d_in is below this runs on one thread whatever n_threads, and a dense ReLU block at toy widths of at most this much work runs fused on the calling thread: waking threads costs more than they save at toy sizes (0 = always n_threads; results do not depend on it)"},
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
