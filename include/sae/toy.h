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
    SAE_TOY_MAG_HI = 1006,     /**< "mag_hi": upper end of uniform magnitudes */
    /* threads */
    SAE_TOY_N_THREADS = 1007,      /**< "toy_threads": threads used by one sampling call (results do not depend on it) */
    /* firing probabilities */
    SAE_TOY_FIRE_PROFILE = 1008,   /**< "fire_profile": sae_toy_fire_profile */
    SAE_TOY_FIRE_PROB_MAX = 1009,  /**< "fire_prob_max": probability of feature 0 in the linear and Zipf profiles */
    SAE_TOY_FIRE_PROB_MIN = 1010,  /**< "fire_prob_min": probability of feature N-1 in the linear and rescaled Zipf profiles */
    SAE_TOY_ZIPF_EXPONENT = 1011,  /**< "zipf_exponent": a in p_j proportional to (j+1)^-a */
    /* dictionary */
    SAE_TOY_DICT = 1012,           /**< "dict": sae_toy_dict, how the feature directions are made */
    SAE_TOY_DICT_VALUES = 1013,    /**< "dict_values": caller directions, N x d row-major (array) */
    SAE_TOY_DICT_NORMALIZE = 1014, /**< "dict_normalize": 1 normalise caller rows, 0 reject rows that are not unit */
    SAE_TOY_DICT_PAIRS = 1015,     /**< "dict_pairs": feature pairs (i0, j0, i1, j1, ...) given a target cosine (array) */
    SAE_TOY_DICT_PAIR_COS = 1016,  /**< "dict_pair_cos": cosine of each pair, or one value for all (array) */
    /* structure of firing */
    SAE_TOY_PARENTS = 1017,        /**< "parents": parent of each feature, -1 = root (array, length N) */
    SAE_TOY_SIBLINGS = 1018,       /**< "siblings": sae_toy_exclusive rule among the children of one parent */
    SAE_TOY_SET_IDS = 1019,        /**< "set_ids": mutually exclusive set of each feature, -1 = none (array, length N) */
    SAE_TOY_SET_MODE = 1020,       /**< "set_mode": SAE_TOY_AT_MOST_ONE or SAE_TOY_EXACTLY_ONE */
    SAE_TOY_CORR = 1021,           /**< "corr_matrix": M x M correlation matrix of a Gaussian copula (array) */
    SAE_TOY_CORR_FEATURES = 1022,  /**< "corr_features": the M features it correlates (array; empty = 0..M-1) */
    SAE_TOY_CORR_TOL = 1023,       /**< "corr_tol": tolerance of the symmetry, unit-diagonal and PSD checks */
    SAE_TOY_COMBOS = 1024,         /**< "combos": feature groups separated by -1, e.g. {0,1,-1,2,3,4} (array) */
    SAE_TOY_COMBO_PROBS = 1025,    /**< "combo_probs": probability that each group fires together (array) */
    SAE_TOY_MIN_ONE_ACTIVE = 1026, /**< "min_one_active": 1 = every sample has at least one active feature */
    /* magnitudes */
    SAE_TOY_MAG_MODEL = 1027,      /**< "mag_model": sae_toy_mag_model */
    SAE_TOY_MAG_MEAN = 1028,       /**< "mag_mean": mean of the constant, normal and exponential models */
    SAE_TOY_MAG_STD = 1029,        /**< "mag_std": std of the normal models */
    SAE_TOY_MAG_LOS = 1030,        /**< "mag_los": per-feature mag_lo (array) */
    SAE_TOY_MAG_HIS = 1031,        /**< "mag_his": per-feature mag_hi (array) */
    SAE_TOY_MAG_MEANS = 1032,      /**< "mag_means": per-feature mag_mean (array) */
    SAE_TOY_MAG_STDS = 1033,       /**< "mag_stds": per-feature mag_std (array) */
    SAE_TOY_MAG_GROUPS = 1034,     /**< "mag_groups": amplitude group of each feature, -1 = none (array, length N) */
    SAE_TOY_MAG_GROUP_CORR = 1035, /**< "mag_group_corr": correlation of the amplitudes inside a group (1 = equal draws) */
    /* noise and scale */
    SAE_TOY_NOISE_STD = 1036,      /**< "noise_std": std of additive isotropic Gaussian noise */
    SAE_TOY_NORMALIZE = 1037,      /**< "normalize": 1 = scale samples so that E||x||^2 = d */
    /* superposition toy model (dict = SAE_TOY_DICT_SUPERPOSITION) */
    SAE_TOY_TMS_STEPS = 1038,      /**< "tms_steps": Adam steps training the superposition model */
    SAE_TOY_TMS_BATCH = 1039,      /**< "tms_batch": rows per step */
    SAE_TOY_TMS_LR = 1040,         /**< "tms_lr": Adam learning rate */
    SAE_TOY_TMS_IMPORTANCE_DECAY = 1041, /**< "tms_importance_decay": importance of feature j is decay^j */
    SAE_TOY_TMS_IMPORTANCES = 1042 /**< "tms_importances": per-feature importances (array) */
} sae_toy_param;

/** Values of "fire_profile" (pinned): per-feature firing probabilities p_j, j = 0..N-1.
 *  A "fire_probs" array, when set, always takes precedence. */
typedef enum sae_toy_fire_profile {
    SAE_TOY_FIRE_CONSTANT = 0,      /**< p_j = fire_prob */
    SAE_TOY_FIRE_LINEAR = 1,        /**< linear from fire_prob_max (j = 0) to fire_prob_min (j = N-1) */
    SAE_TOY_FIRE_ZIPF = 2,          /**< p_j = fire_prob_max * (j+1)^-zipf_exponent */
    SAE_TOY_FIRE_ZIPF_RESCALED = 3, /**< (j+1)^-a min-max rescaled into [fire_prob_min, fire_prob_max] (SAELens) */
    SAE_TOY_FIRE_CALLER = 4         /**< p_j = fire_probs[j] (required) */
} sae_toy_fire_profile;

/** Values of "dict" (pinned). */
typedef enum sae_toy_dict {
    SAE_TOY_DICT_GAUSSIAN = 0,      /**< i.i.d. Gaussian directions normalised (any N vs d) */
    SAE_TOY_DICT_AXES = 1,          /**< standard basis vectors e_0..e_{N-1} (N <= d) */
    SAE_TOY_DICT_ROTATED = 2,       /**< orthonormal, randomly rotated (N <= d) */
    SAE_TOY_DICT_CALLER = 3,        /**< dict_values */
    SAE_TOY_DICT_SUPERPOSITION = 4  /**< columns of W of a trained ReLU output model (Elhage et al. 2022) */
} sae_toy_dict;

/** Exclusivity rules of "siblings" and "set_mode" (pinned). */
typedef enum sae_toy_exclusive {
    SAE_TOY_INDEPENDENT = 0, /**< each member fires on its own */
    SAE_TOY_AT_MOST_ONE = 1, /**< at most one member fires; p_j are the category probabilities */
    SAE_TOY_EXACTLY_ONE = 2  /**< exactly one member fires, chosen with weights p_j */
} sae_toy_exclusive;

/** Values of "mag_model" (pinned): magnitude m of an active feature. */
typedef enum sae_toy_mag_model {
    SAE_TOY_MAG_UNIFORM = 0,        /**< m ~ U[mag_lo, mag_hi) */
    SAE_TOY_MAG_CONSTANT = 1,       /**< m = mag_mean */
    SAE_TOY_MAG_FOLDED_NORMAL = 2,  /**< m = |mag_mean + mag_std z| */
    SAE_TOY_MAG_CLIPPED_NORMAL = 3, /**< m = max(0, mag_mean + mag_std z) */
    SAE_TOY_MAG_EXPONENTIAL = 4     /**< m ~ Exponential with mean mag_mean */
} sae_toy_mag_model;

/** Scalar facts about a generator, read with sae_toy_info (values pinned). */
typedef enum sae_toy_info_key {
    SAE_TOY_INFO_SCALE = 1,       /**< factor applied to samples and magnitudes ("normalize"; else 1) */
    SAE_TOY_INFO_MEAN_ACTIVE = 2, /**< expected number of active features per sample (sum of fire_probs) */
    SAE_TOY_INFO_P_EMPTY = 3,     /**< probability of a sample without active features before min_one_active */
    SAE_TOY_INFO_TMS_LOSS = 4,    /**< final importance-weighted loss of the superposition model (else 0) */
    SAE_TOY_INFO_GENERATOR_VERSION = 5 /**< SAE_TOY_GENERATOR_VERSION of the library running */
} sae_toy_info_key;

/** Version of the sampling algorithms: the same configuration and seed give the same
 * samples in every library with the same generator version. It grows whenever a change
 * would alter samples; serialized toys record it and another version is refused. */
#define SAE_TOY_GENERATOR_VERSION 1

/** Build a generator from a SAE_KIND_TOY configuration (copied). Invalid
 * configurations return SAE_E_CONFIG; sae_config_validate gives the reason. */
SAE_API SAE_NODISCARD int32_t sae_toy_create(sae_toy **out, const sae_config *cfg,
                                             const sae_allocator *alloc);
SAE_API void sae_toy_free(sae_toy *toy);
SAE_API SAE_NODISCARD int32_t sae_toy_clone(sae_toy **out, const sae_toy *src);
/** Detailed message of the last failed call on this handle ("" if none). */
SAE_API const char *sae_toy_errmsg(const sae_toy *toy);
/** Number of true features N and dimension d; either output may be NULL, not both. */
SAE_API SAE_NODISCARD int32_t sae_toy_dims(const sae_toy *toy, int64_t *n_features, int64_t *d);

/** Fill x (n x d, row stride ldx) with samples first .. first+n-1. */
SAE_API SAE_NODISCARD int32_t sae_toy_sample(const sae_toy *toy, uint64_t first, int64_t n,
                                             float *x, int64_t ldx);
/**
 * Samples plus their ground-truth codes in compressed sparse rows: row_ptr (n+1
 * entries), feature indices (ascending within a row) and magnitudes of the active
 * features of each sample, so that x[i] = sum over the row of magnitude * dictionary
 * row (+ noise). x may be NULL (codes only). If cap is smaller than the number of active
 * features, returns SAE_E_BUFFER_TOO_SMALL with *needed set and writes nothing
 * (feature and magnitude may be NULL when cap is 0: a size query). needed may be NULL.
 */
SAE_API SAE_NODISCARD int32_t sae_toy_sample_codes(const sae_toy *toy, uint64_t first, int64_t n,
                                                   float *x, int64_t ldx, int64_t *row_ptr,
                                                   int32_t *feature, float *magnitude,
                                                   int64_t cap, int64_t *needed);
/** Copy the dictionary (N x d) into dst with row stride ld. Rows are unit vectors,
 *  except for the superposition model, whose rows are the columns W_j of its trained W. */
SAE_API SAE_NODISCARD int32_t sae_toy_dictionary(const sae_toy *toy, float *dst, int64_t ld);
/** Copy the marginal firing probability P(feature j active) of each feature (length N),
 *  after hierarchy, sets, combinations and min_one_active are taken into account.
 *  cap < N gives SAE_E_BUFFER_TOO_SMALL; a negative cap is SAE_E_SIZE. */
SAE_API SAE_NODISCARD int32_t sae_toy_fire_probs(const sae_toy *toy, double *dst, int64_t cap);
/** A copy of the generator's configuration (the caller frees it): hierarchy, sets,
 *  combinations and every other setting can be read from it. */
SAE_API SAE_NODISCARD int32_t sae_toy_get_config(const sae_toy *toy, sae_config **out);
/** One scalar fact about the generator (sae_toy_info_key). */
SAE_API SAE_NODISCARD int32_t sae_toy_info(const sae_toy *toy, int32_t key, double *value);

#ifdef __cplusplus
}
#endif
#endif
