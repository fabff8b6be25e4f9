/*
 * Toy-model generators: a ground-truth dictionary of N unit feature directions in d
 * dimensions, a firing model, a magnitude model and noise. Sample i is a pure function
 * of (seed, i): identical for any batch split, start index or thread count.
 */
#ifndef SAE_TOY_H
#define SAE_TOY_H

#include <sae/core.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sae_toy sae_toy;

/** Parameter keys of SAE_KIND_TOY configurations (values pinned; range 1000-1999). */
typedef enum sae_toy_param {
    SAE_TOY_N_FEATURES = 1000, /**< "n_features": number of true features N */
    SAE_TOY_D = 1001,          /**< "d": dimension of the activations */
    SAE_TOY_SEED = 1002,       /**< "seed": seeds dictionary, firing, magnitudes, noise */
    SAE_TOY_FIRE_PROB = 1003,  /**< "fire_prob": firing probability of every feature */
    SAE_TOY_FIRE_PROBS = 1004, /**< "fire_probs": per-feature probabilities (array, length N) */
    SAE_TOY_MAG_LO = 1005,     /**< "mag_lo": lower end of uniform magnitudes */
    SAE_TOY_MAG_HI = 1006      /**< "mag_hi": upper end of uniform magnitudes */
} sae_toy_param;

/** Build a generator from a SAE_KIND_TOY configuration (copied). Invalid
 * configurations return SAE_E_CONFIG; sae_config_validate gives the reason. */
SAE_API SAE_NODISCARD int32_t sae_toy_create(sae_toy **out, const sae_config *cfg,
                                             const sae_allocator *alloc);
SAE_API void sae_toy_free(sae_toy *toy);
SAE_API SAE_NODISCARD int32_t sae_toy_clone(sae_toy **out, const sae_toy *src);
/** Detailed message of the last failed call on this handle ("" if none). */
SAE_API const char *sae_toy_errmsg(const sae_toy *toy);
SAE_API SAE_NODISCARD int32_t sae_toy_dims(const sae_toy *toy, int64_t *n_features, int64_t *d);

/** Fill x (n x d, row stride ldx) with samples first .. first+n-1. */
SAE_API SAE_NODISCARD int32_t sae_toy_sample(const sae_toy *toy, uint64_t first, int64_t n,
                                             float *x, int64_t ldx);
/**
 * Samples plus their ground-truth codes in compressed sparse rows: row_ptr (n+1
 * entries), feature indices and magnitudes of the active features of each sample.
 * x may be NULL (codes only). If cap is smaller than the number of active features,
 * returns SAE_E_BUFFER_TOO_SMALL with *needed set and writes nothing.
 */
SAE_API SAE_NODISCARD int32_t sae_toy_sample_codes(const sae_toy *toy, uint64_t first, int64_t n,
                                                   float *x, int64_t ldx, int64_t *row_ptr,
                                                   int32_t *feature, float *magnitude,
                                                   int64_t cap, int64_t *needed);
/** Copy the dictionary (N x d, unit rows) into dst with row stride ld. */
SAE_API SAE_NODISCARD int32_t sae_toy_dictionary(const sae_toy *toy, float *dst, int64_t ld);
/** Copy the marginal firing probability of each feature (length N). */
SAE_API SAE_NODISCARD int32_t sae_toy_fire_probs(const sae_toy *toy, double *dst, int64_t cap);

#ifdef __cplusplus
}
#endif
#endif
