/*
 * Trainers: loss, gradients, Adam, schedules, constraints. A trainer holds a
 * reference to its model and updates it in place, one step at a time.
 */
#ifndef SAE_TRAIN_H
#define SAE_TRAIN_H

#include <sae/core.h>
#include <sae/model.h>
#include <sae/toy.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sae_trainer sae_trainer;

/** Parameter keys of SAE_KIND_TRAINER configurations (values pinned; range 3000-3999). */
typedef enum sae_trainer_param {
    SAE_TRAINER_LR = 3000,             /**< "lr": Adam learning rate */
    SAE_TRAINER_L1_COEFF = 3001,       /**< "l1_coefficient": weight of the sparsity penalty */
    SAE_TRAINER_BATCH_SIZE = 3002,     /**< "batch_size": rows per step when training from a toy */
    SAE_TRAINER_ADAM_BETA1 = 3003,     /**< "adam_beta1" */
    SAE_TRAINER_ADAM_BETA2 = 3004,     /**< "adam_beta2" */
    SAE_TRAINER_ADAM_EPS = 3005,       /**< "adam_eps" */
    SAE_TRAINER_N_THREADS = 3006,      /**< "n_threads": threads used inside a step */
    SAE_TRAINER_FIRST_SAMPLE = 3007,   /**< "first_sample": toy index of the first training row */
    SAE_TRAINER_DECODER_RENORM = 3008, /**< "decoder_renorm": unit-norm decoder rows: project the
                                            parallel gradient out, renormalise after each step (0/1) */
    SAE_TRAINER_L1_DECODER_NORM = 3009, /**< "l1_decoder_norm": weight each latent's L1 by its
                                             decoder row norm (Anthropic 2024) (0/1) */
    SAE_TRAINER_L1_WARMUP_STEPS = 3010, /**< "l1_warmup_steps": linear warm-up of the sparsity coefficient */
    SAE_TRAINER_LR_WARMUP_STEPS = 3011, /**< "lr_warmup_steps": linear warm-up of the learning rate */
    SAE_TRAINER_LR_SCHEDULE = 3012,     /**< "lr_schedule": decay after warm-up (sae_lr_schedule) */
    SAE_TRAINER_LR_DECAY_STEPS = 3013,  /**< "lr_decay_steps": steps from lr to lr_end */
    SAE_TRAINER_LR_END = 3014,          /**< "lr_end": learning rate at the end of the decay */
    SAE_TRAINER_GRAD_CLIP = 3015,       /**< "grad_clip": maximum global gradient norm (0 = off) */
    SAE_TRAINER_AUX_K = 3016,           /**< "aux_k": dead latents in the AuxK loss (0 = d_in/2) */
    SAE_TRAINER_AUX_COEFF = 3017,       /**< "aux_coefficient": AuxK weight (TopK family; 0 = off) */
    SAE_TRAINER_DEAD_STEPS = 3018,      /**< "dead_steps": a latent silent this many steps is dead */
    SAE_TRAINER_RESAMPLE_EVERY = 3019,  /**< "resample_every": resample dead latents every this
                                             many steps (Anthropic 2023; 0 = off) */
    SAE_TRAINER_JUMPRELU_BANDWIDTH = 3020, /**< "jumprelu_bandwidth": width of the rectangle kernel
                                                of the straight-through estimator */
    SAE_TRAINER_B_DEC_INIT = 3021,      /**< "b_dec_init": b_dec from the first batch (sae_b_dec_init) */
    SAE_TRAINER_THRESHOLD_LR = 3022,    /**< "batchtopk_threshold_lr": EMA rate of the BatchTopK
                                             inference threshold */
    SAE_TRAINER_CHUNK_ROWS = 3023,      /**< "chunk_rows": rows per dense block inside a step
                                             (bounds the n x n_latents scratch) */
    SAE_TRAINER_SEED = 3024,            /**< "trainer_seed": seeds resampling choices */
    SAE_TRAINER_BF16_SCORES = 3025,     /**< "bf16_scores": TopK-family encoder scores first in
                                             low precision (bfloat16 where the CPU has AMX-BF16
                                             or AVX512-BF16, else int16 on AVX2), then the
                                             candidates rescored in float (same codes either
                                             way); ReLU: the same for blocks expected to be
                                             sparse (values as exact float dot products) */
    SAE_TRAINER_THREAD_MIN_WORK = 3026  /**< "thread_min_work": a step whose rows x n_latents x
                                             d_in is below this runs on one thread whatever
                                             "n_threads" (0: always n_threads); results do
                                             not depend on it */
} sae_trainer_param;

/** Values of "lr_schedule" (pinned). */
typedef enum sae_lr_schedule {
    SAE_LR_CONSTANT = 0, /**< lr after warm-up */
    SAE_LR_LINEAR = 1,   /**< linear from lr to lr_end over lr_decay_steps */
    SAE_LR_COSINE = 2    /**< half cosine from lr to lr_end over lr_decay_steps */
} sae_lr_schedule;

/** Values of "b_dec_init" (pinned). */
typedef enum sae_b_dec_init {
    SAE_B_DEC_INIT_KEEP = 0,      /**< keep the model's b_dec */
    SAE_B_DEC_INIT_MEAN = 1,      /**< mean of the first batch */
    SAE_B_DEC_INIT_GEOMEDIAN = 2  /**< geometric median of the first batch (Weiszfeld) */
} sae_b_dec_init;

/** Parameter keys of the decoder/activation regularisers (trainer kind; values pinned;
 *  range 3100-3199). See docs/regularisers.md. */
typedef enum sae_reg_param {
    SAE_REG_ORTHO_COEFF = 3100,      /**< "ortho_coefficient": weight of the orthogonality penalty (0 = off) */
    SAE_REG_ORTHO_SHAPE = 3101,      /**< "ortho_shape": penalty of one cosine (sae_ortho_shape) */
    SAE_REG_ORTHO_AGGREGATE = 3102,  /**< "ortho_aggregate": how pair penalties combine (sae_ortho_aggregate) */
    SAE_REG_ORTHO_MODE = 3103,       /**< "ortho_mode": exact quadratic or random chunks (sae_ortho_mode) */
    SAE_REG_ORTHO_CHUNK = 3104,      /**< "ortho_chunk": latents per random chunk in chunked mode */
    SAE_REG_ORTHO_SHARP_EPS = 3105,  /**< "ortho_sharp_eps": softening of the log-barrier shape */
    SAE_REG_ORTHO_SEED = 3106,       /**< "ortho_seed": seed of the random chunking (with the step) */
    SAE_REG_LOWACT_COEFF = 3150,     /**< "lowact_coefficient": weight of the low-activation penalty (0 = off) */
    SAE_REG_LOWACT_THRESHOLD = 3151  /**< "lowact_threshold": activations in (0, threshold) count as low */
} sae_reg_param;

/** Values of "ortho_shape": penalty f(c) of a cosine similarity c (pinned). */
typedef enum sae_ortho_shape {
    SAE_ORTHO_SHAPE_ABS = 0,    /**< f(c) = |c| */
    SAE_ORTHO_SHAPE_SQUARE = 1, /**< f(c) = c^2 */
    SAE_ORTHO_SHAPE_SHARP = 2   /**< f(c) = log((1+e)/(1+e-c^2)) / log((1+e)/e), e = ortho_sharp_eps */
} sae_ortho_shape;

/** Values of "ortho_aggregate" (pinned). */
typedef enum sae_ortho_aggregate {
    SAE_ORTHO_AGGREGATE_PAIRS = 0,   /**< mean of f over all pairs of latents */
    SAE_ORTHO_AGGREGATE_NEAREST = 1  /**< mean over latents of f at the closest neighbour (Till) */
} sae_ortho_aggregate;

/** Values of "ortho_mode" (pinned). */
typedef enum sae_ortho_mode {
    SAE_ORTHO_MODE_EXACT = 0,   /**< all pairs: O(L^2 d) */
    SAE_ORTHO_MODE_CHUNKED = 1  /**< pairs inside random chunks of ortho_chunk latents: O(L chunk d) */
} sae_ortho_mode;

/** Per-step statistics (values pinned). */
typedef enum sae_stat {
    SAE_STAT_STEP = 1,      /**< steps taken so far */
    SAE_STAT_LOSS = 2,      /**< total loss of the last step */
    SAE_STAT_MSE = 3,       /**< reconstruction term: mean over rows of ||x - xhat||^2 */
    SAE_STAT_SPARSITY = 4,  /**< sparsity term (before its coefficient) */
    SAE_STAT_L0 = 5,        /**< mean number of active latents per row */
    SAE_STAT_DEAD = 6,      /**< latents that have not fired within the dead window */
    SAE_STAT_LR = 7,        /**< learning rate used by the last step */
    SAE_STAT_AUX = 8,       /**< auxiliary term (AuxK, or the Gated gate-path reconstruction), weighted */
    SAE_STAT_REG = 9,       /**< regularisers (orthogonality + low-activation), weighted */
    SAE_STAT_GRAD_NORM = 10, /**< global gradient norm before clipping */
    SAE_STAT_SAMPLES = 11,  /**< next toy sample index */
    SAE_STAT_SPARSITY_COEFF = 12, /**< sparsity coefficient after warm-up */
    SAE_STAT_THRESHOLD = 13, /**< BatchTopK/Matryoshka inference threshold */
    /* Where the time goes: wall-clock seconds this trainer has spent in each phase of its
     * steps since it was created (not saved in checkpoints). train_toy_many counts the
     * shared sampling once for every trainer of the call. Dense ReLU blocks that run fused
     * (inputs up to 128 wide on CPUs with AVX-512F) count their activations as encoder
     * time and their reconstruction as backward time. */
    SAE_STAT_TIME_GENERATE = 14, /**< drawing samples from the toy (train_toy*) */
    SAE_STAT_TIME_ENCODE = 15,   /**< encoder pre-activations (the encoder GEMM) */
    SAE_STAT_TIME_ACTIVATE = 16, /**< activation: ReLU/JumpReLU/gates, top-k and batch top-k selection */
    SAE_STAT_TIME_DECODE = 17,   /**< reconstruction and residuals */
    SAE_STAT_TIME_BACKWARD = 18, /**< gradients of every parameter, AuxK, regularisers */
    SAE_STAT_TIME_OPTIMISE = 19, /**< gradient norm, finiteness checks, clipping, Adam */
    SAE_STAT_TIME_CONSTRAIN = 20 /**< decoder projection and renormalisation, thresholds, dead-latent bookkeeping, resampling */
} sae_stat;

/** A trainer for `model` (a reference is taken). */
SAE_API SAE_NODISCARD int32_t sae_trainer_create(sae_trainer **out, sae_model *model,
                                                 const sae_config *cfg, const sae_allocator *alloc);
SAE_API void sae_trainer_free(sae_trainer *trainer);
SAE_API const char *sae_trainer_errmsg(const sae_trainer *trainer);
/** The model being trained (borrowed; valid while the trainer lives). */
SAE_API sae_model *sae_trainer_model(const sae_trainer *trainer);
/** Log and progress callbacks; progress gets (step, total, loss) after each step. */
SAE_API SAE_NODISCARD int32_t sae_trainer_set_callbacks(sae_trainer *trainer, sae_log_fn log,
                                                        sae_progress_fn progress, void *user);
/** One optimisation step on the batch x (n x d_in). */
SAE_API SAE_NODISCARD int32_t sae_trainer_step(sae_trainer *trainer, const float *x, int64_t n,
                                               int64_t ldx);
/** n_steps steps on caller activations: batches of batch_size rows cycle through x. */
SAE_API SAE_NODISCARD int32_t sae_trainer_train_data(sae_trainer *trainer, const float *x,
                                                     int64_t n_rows, int64_t ldx, int64_t n_steps);
/** n_steps steps on fresh samples of the toy, continuing from the trainer's position. */
SAE_API SAE_NODISCARD int32_t sae_trainer_train_toy(sae_trainer *trainer, const sae_toy *toy,
                                                    int64_t n_steps);
/**
 * Train `count` trainers on ONE stream: each step generates a batch once and feeds it to
 * every trainer (an L1 or k sweep). All trainers need the toy's d_in, the same batch_size
 * and the same next sample index. Stops at the first failure (that trainer's status;
 * every trainer is left at a consistent step).
 */
SAE_API SAE_NODISCARD int32_t sae_trainer_train_toy_many(sae_trainer *const *trainers,
                                                         int64_t count, const sae_toy *toy,
                                                         int64_t n_steps);
/** A statistic of the last step (SAE_STAT_*). */
SAE_API SAE_NODISCARD int32_t sae_trainer_stat(const sae_trainer *trainer, int32_t which,
                                               double *value);

#ifdef __cplusplus
}
#endif
#endif
