/*
 * SAE models: parameters and the forward pass (encode, decode) on caller buffers.
 * encode/decode take a const model and may run concurrently on the same handle.
 * Models are reference counted: a trainer keeps its model alive, so handles may be
 * freed in any order.
 */
#ifndef SAE_MODEL_H
#define SAE_MODEL_H

#include <sae/core.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sae_model sae_model;

/** Architectures (values pinned). */
typedef enum sae_arch {
    SAE_ARCH_RELU = 1,       /**< ReLU encoder, L1 sparsity penalty (set on the trainer) */
    SAE_ARCH_TOPK = 2,       /**< k largest ReLU activations per row (Gao et al. 2024) */
    SAE_ARCH_BATCHTOPK = 3,  /**< k x rows largest activations per batch; a learned global
                                  threshold at inference (Bussmann et al. 2024) */
    SAE_ARCH_JUMPRELU = 4,   /**< z = pre * H(pre - theta), per-latent thresholds, L0 penalty
                                  (Rajamanoharan et al. 2024b) */
    SAE_ARCH_GATED = 5,      /**< gate and magnitude paths sharing directions
                                  (Rajamanoharan et al. 2024a) */
    SAE_ARCH_MATRYOSHKA = 6  /**< BatchTopK whose nested prefixes each reconstruct
                                  (Bussmann et al. 2025; Nabeshima 2024) */
} sae_arch;

/** Parameter keys of SAE_KIND_MODEL configurations (values pinned; range 2000-2999). */
typedef enum sae_model_param {
    SAE_MODEL_D_IN = 2000,        /**< "d_in": input dimension */
    SAE_MODEL_N_LATENTS = 2001,   /**< "n_latents": dictionary size */
    SAE_MODEL_ARCH = 2002,        /**< "arch": an sae_arch value */
    SAE_MODEL_SEED = 2003,        /**< "model_seed": seeds parameter initialisation */
    SAE_MODEL_PRE_BIAS = 2004,    /**< "pre_bias": subtract b_dec before encoding (0/1) */
    SAE_MODEL_K = 2005,           /**< "k": active latents per row (TopK, BatchTopK, Matryoshka) */
    SAE_MODEL_TIED = 2006,        /**< "tied": encoder = decoder transpose, one shared tensor (0/1) */
    SAE_MODEL_JUMPRELU_INIT_THRESHOLD = 2007, /**< "jumprelu_init_threshold": initial theta */
    SAE_MODEL_MATRYOSHKA_WIDTHS = 2008,       /**< "matryoshka_widths": prefix sizes (i64 array,
                                                   strictly increasing, last = n_latents) */
    SAE_MODEL_DECODER_INIT_NORM = 2009,       /**< "decoder_init_norm": norm of initial decoder rows */
    SAE_MODEL_INIT_TRANSPOSE = 2010           /**< "init_transpose": initialise the encoder as
                                                   the decoder's transpose (0/1) */
} sae_model_param;

/** Parameter tensors, in the SAELens layout (values pinned). */
typedef enum sae_tensor {
    SAE_TENSOR_W_ENC = 1, /**< d_in x n_latents */
    SAE_TENSOR_B_ENC = 2, /**< n_latents */
    SAE_TENSOR_W_DEC = 3, /**< n_latents x d_in; row j is latent j's decoder direction */
    SAE_TENSOR_B_DEC = 4, /**< d_in */
    SAE_TENSOR_THRESHOLD = 5, /**< n_latents: JumpReLU thresholds; BatchTopK/Matryoshka: the
                                   learned global threshold repeated (SAELens saves BatchTopK as
                                   JumpReLU); read-only for BatchTopK */
    SAE_TENSOR_R_MAG = 6, /**< n_latents: Gated magnitude log-scales (W_mag = W_enc * exp(r_mag)) */
    SAE_TENSOR_B_MAG = 7  /**< n_latents: Gated magnitude bias (b_enc is the gate bias) */
} sae_tensor;

SAE_API SAE_NODISCARD int32_t sae_model_create(sae_model **out, const sae_config *cfg,
                                               const sae_allocator *alloc);
/** Drop the caller's reference; the model is destroyed when no trainer holds it. */
SAE_API void sae_model_free(sae_model *model);
SAE_API SAE_NODISCARD int32_t sae_model_clone(sae_model **out, const sae_model *src);
SAE_API const char *sae_model_errmsg(const sae_model *model);
SAE_API SAE_NODISCARD int32_t sae_model_dims(const sae_model *model, int64_t *d_in,
                                             int64_t *n_latents);
/** Read a model parameter (SAE_MODEL_*) as the model holds it. */
SAE_API SAE_NODISCARD int32_t sae_model_get_i64(const sae_model *model, int32_t key, int64_t *value);
SAE_API SAE_NODISCARD int32_t sae_model_get_f64(const sae_model *model, int32_t key, double *value);

/** Latent codes z (n x n_latents) of inputs x (n x d_in). */
SAE_API SAE_NODISCARD int32_t sae_model_encode(const sae_model *model, const float *x, int64_t n,
                                               int64_t ldx, float *z, int64_t ldz);
/** Reconstructions xhat (n x d_in) of codes z (n x n_latents). */
SAE_API SAE_NODISCARD int32_t sae_model_decode(const sae_model *model, const float *z, int64_t n,
                                               int64_t ldz, float *xhat, int64_t ldxh);
/** Shape of a tensor (rows, cols; vectors have rows = 1). */
SAE_API SAE_NODISCARD int32_t sae_model_tensor_shape(const sae_model *model, int32_t which,
                                                     int64_t *rows, int64_t *cols);
/** Copy a tensor out (row-major, row stride ld >= cols). */
SAE_API SAE_NODISCARD int32_t sae_model_get_tensor(const sae_model *model, int32_t which,
                                                   float *dst, int64_t ld);
/** Overwrite a tensor (finite values only; the shape must match). */
SAE_API SAE_NODISCARD int32_t sae_model_set_tensor(sae_model *model, int32_t which,
                                                   const float *src, int64_t ld);

#ifdef __cplusplus
}
#endif
#endif
