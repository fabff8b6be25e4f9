/* The model handle's layout, shared with lib/train (the trainer updates parameters in
 * place) and lib/io (checkpoints must resume bit-exactly). Not installed.
 *
 * Every trainable float lives in ONE flat array `params`, so the optimiser, gradient
 * clipping and checkpoints walk a single vector; the named pointers below are views into
 * it. Encoder weights are stored transposed (w_enc_t, n_latents x d_in, one contiguous row
 * per latent) because the sparse TopK kernels gather and scatter whole latent rows; the
 * public tensor SAE_TENSOR_W_ENC keeps the SAELens d_in x n_latents layout and is
 * transposed on copy. A tied model has no encoder segment: w_enc_t == w_dec. */
#ifndef SAE_LIB_MODEL_INTERNAL_H
#define SAE_LIB_MODEL_INTERNAL_H

#include <stdatomic.h>
#include <stdint.h>

#include "core/core.h"

#include <sae/model.h>

/* Offsets (in floats) of each segment of `params`; -1 when the architecture has none. */
typedef struct sae_model_layout {
    int64_t w_enc_t;   /* n_latents x d_in (untied only) */
    int64_t b_enc;     /* n_latents (Gated: the gate bias b_gate) */
    int64_t w_dec;     /* n_latents x d_in */
    int64_t b_dec;     /* d_in */
    int64_t threshold; /* n_latents (JumpReLU) */
    int64_t r_mag;     /* n_latents (Gated: log scale of the magnitude path) */
    int64_t b_mag;     /* n_latents (Gated: bias of the magnitude path) */
    int64_t total;     /* floats in params */
} sae_model_layout;

struct sae_model {
    atomic_int refs; /* the caller's reference + one per trainer */
    sae_alloc al;
    sae_err err;
    sae_config *cfg; /* private copy of the creation configuration */

    int64_t d, n_latents;
    int32_t arch; /* sae_arch */
    int32_t pre_bias, tied;
    int64_t k;         /* TopK / BatchTopK / Matryoshka: active latents per row */
    int64_t n_widths;  /* Matryoshka prefix widths (last == n_latents); 1 otherwise */
    int64_t *widths;   /* n_widths entries, strictly increasing */

    sae_model_layout lay;
    float *params; /* lay.total floats, SAE_ALIGN-aligned */
    float *w_enc_t, *b_enc, *w_dec, *b_dec, *threshold, *r_mag, *b_mag; /* views; NULL if absent */

    /* BatchTopK / Matryoshka inference threshold (EMA of the smallest kept activation,
     * Bussmann et al. 2024); valid once the trainer has taken a step. */
    double batch_threshold;
    int32_t batch_threshold_valid;
};

/* Architecture families: the sparse path keeps (index, value) codes and never a dense
 * n x n_latents activation matrix. */
static inline int sae_arch_is_sparse(int32_t arch)
{
    return arch == SAE_ARCH_TOPK || arch == SAE_ARCH_BATCHTOPK || arch == SAE_ARCH_MATRYOSHKA;
}
static inline int sae_arch_is_batch(int32_t arch)
{
    return arch == SAE_ARCH_BATCHTOPK || arch == SAE_ARCH_MATRYOSHKA;
}

/* Reference counting: a trainer takes a reference for its lifetime. */
void sae_model_retain(sae_model *m);
void sae_model_release(sae_model *m);

/* Layout of an architecture (pure; used by create, clone and tests). */
sae_model_layout sae_model_layout_for(int32_t arch, int tied, int64_t d, int64_t n_latents);
/* Point the named views into params according to lay. */
void sae_model_bind(sae_model *m);
/* Deterministic initialisation from the configuration's model_seed. */
void sae_model_init_params(sae_model *m);

#endif
