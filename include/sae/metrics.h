/*
 * Metrics: compare a model with a toy's ground truth (docs/metrics.md gives every
 * formula and its source). sae_metrics_compute evaluates the groups enabled by the
 * "metrics_compute" parameter; results are then read as scalars (sae_metric), arrays
 * of float (sae_metric_array) or lists of integers (sae_metric_list).
 * Metrics never modify a model or a toy (const handles); separate metrics handles may
 * evaluate the same model and toy concurrently.
 */
#ifndef SAE_METRICS_H
#define SAE_METRICS_H

#include <sae/core.h>
#include <sae/model.h>
#include <sae/toy.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Opaque metrics handle: settings from a SAE_KIND_METRICS configuration plus the results
 *  of the last successful sae_metrics_compute. */
typedef struct sae_metrics sae_metrics;

/** Parameter keys of SAE_KIND_METRICS configurations (values pinned; range 4000-4999). */
typedef enum sae_metrics_param {
    SAE_METRICS_THRESHOLD = 4000, /**< "recovery_threshold": cosine above which a feature counts as recovered */
    SAE_METRICS_COMPUTE = 4001,   /**< "metrics_compute": OR of sae_metrics_group bits to evaluate */
    SAE_METRICS_THRESHOLDS = 4002, /**< "recovery_thresholds": extra cosine thresholds (array; empty = 0.5 0.7 0.8 0.9 0.95 0.99) */
    SAE_METRICS_N_EVAL = 4003,    /**< "n_eval": samples drawn from the toy for activation-based metrics */
    SAE_METRICS_EVAL_FIRST = 4004, /**< "eval_first": index of the first evaluation sample */
    SAE_METRICS_FIRE_THRESHOLD = 4005, /**< "fire_threshold": a latent fires when its code is > this */
    SAE_METRICS_COMPOSE_CANDIDATES = 4006, /**< "compose_candidates": true features (highest cosine) a latent's decomposition may use */
    SAE_METRICS_COMPOSE_MAX_TERMS = 4007,  /**< "compose_max_terms": at most this many features in a decomposition */
    SAE_METRICS_COMPOSE_MIN_WEIGHT = 4008, /**< "compose_min_weight": weight at or above which a feature is significant */
    SAE_METRICS_COMPOSE_MAX_RESIDUAL = 4009, /**< "compose_max_residual": residual norm at or below which a fit explains the latent */
    SAE_METRICS_COMPOSE_SINGLE_COS = 4010,  /**< "compose_single_cos": cosine at or above which one feature alone explains a latent */
    SAE_METRICS_JOINT_MIN = 4011,     /**< "joint_min": min P(latent fires | both features active) for joint composition */
    SAE_METRICS_MARGINAL_MAX = 4012,  /**< "marginal_max": max P(latent fires | only one of the two active) */
    SAE_METRICS_HIST_BINS = 4013,     /**< "hist_bins": bins of every histogram */
    SAE_METRICS_PEAK_MIN_HEIGHT = 4014, /**< "peak_min_height": a peak is at least this fraction of the highest bin */
    SAE_METRICS_PEAK_MAX_VALLEY = 4015, /**< "peak_max_valley": two peaks are separate when the valley between them falls below this fraction of the lower one */
    SAE_METRICS_PEAK_MIN_FIRES = 4016,  /**< "peak_min_fires": latents firing fewer times get no peak count */
    SAE_METRICS_DENSE_THRESHOLD = 4017, /**< "dense_threshold": firing frequency above which a latent is dense */
    SAE_METRICS_SBW_N = 4018,      /**< "sbw_n": n of the n-th decoder projection s_n (-1 = ceil(2 x true mean L0)) */
    SAE_METRICS_SBW_MAX_N = 4019,  /**< "sbw_max_n": s_n is also reported for n = 0..sbw_max_n */
    SAE_METRICS_SBW_SAMPLES = 4020, /**< "sbw_samples": evaluation samples used by s_n (at most n_eval) */
    SAE_METRICS_KEEP_COSINE = 4021, /**< "keep_cosine": 1 keep the N x L cosine matrices for copy-out, 0 only summaries */
    SAE_METRICS_N_THREADS = 4022    /**< "metrics_threads": threads of the non-BLAS loops (results do not depend on it) */
} sae_metrics_param;

/** Groups of metrics, OR-ed into "metrics_compute" (values pinned). */
typedef enum sae_metrics_group {
    SAE_MG_RECOVERY = 1,        /**< decoder cosines, MMCS, maxima, recovered fractions */
    SAE_MG_MATCHING = 2,        /**< exact one-to-one matching of the decoder cosines */
    SAE_MG_ENCODER = 4,         /**< the same two groups computed from encoder directions */
    SAE_MG_COMPOSITION = 8,     /**< decoder-based composition (non-negative sparse fits) */
    SAE_MG_ACTIVATION = 16,     /**< evaluation sample: detection P/R/F1, joint firing, absorption */
    SAE_MG_HISTOGRAMS = 32,     /**< per-latent activation histograms and multi-peak detector */
    SAE_MG_RECONSTRUCTION = 64, /**< MSE, FVU, L0, dead/dense, firing densities */
    SAE_MG_DECODER_PAIRS = 128, /**< pairwise cosine statistics of decoder rows */
    SAE_MG_SBW = 256,           /**< n-th decoder projection (Sparse but Wrong L0 proxy) */
    SAE_MG_ALL = 511            /**< everything (default) */
} sae_metrics_group;

/** Scalar results (values pinned). NaN when not applicable (e.g. no parent features). */
typedef enum sae_metric {
    SAE_METRIC_MMCS_TRUE = 1,    /**< mean over true features of max cosine to any decoder row */
    SAE_METRIC_MMCS_LEARNED = 2, /**< mean over latents of max cosine to any true feature */
    SAE_METRIC_FRAC_RECOVERED = 3, /**< fraction of true features with max cosine >= threshold */
    SAE_METRIC_MATCH_MEAN_COS = 4, /**< mean cosine of the optimal one-to-one matching (decoder) */
    SAE_METRIC_MATCH_FRAC_RECOVERED = 5, /**< fraction of true features whose matched cosine >= threshold */
    SAE_METRIC_ENC_MMCS_TRUE = 6,    /**< as MMCS_TRUE with encoder directions */
    SAE_METRIC_ENC_MMCS_LEARNED = 7, /**< as MMCS_LEARNED with encoder directions */
    SAE_METRIC_ENC_FRAC_RECOVERED = 8, /**< as FRAC_RECOVERED with encoder directions */
    SAE_METRIC_ENC_MATCH_MEAN_COS = 9, /**< mean cosine of the optimal matching of encoder directions */
    SAE_METRIC_N_COMPOSED = 10,      /**< latents flagged composed from their decoder direction */
    SAE_METRIC_N_SINGLE = 11,        /**< latents explained by one true feature */
    SAE_METRIC_N_UNEXPLAINED = 12,   /**< latents neither single nor composed */
    SAE_METRIC_N_JOINT_COMPOSED = 13, /**< latents flagged composed from joint firing statistics */
    SAE_METRIC_MEAN_BEST_F1 = 14,    /**< mean over features active in the sample of the best latent's F1 */
    SAE_METRIC_ABSORPTION_MEAN = 15, /**< mean absorption rate over parents with an active child in the sample */
    SAE_METRIC_N_PARENTS = 16,       /**< parents that entered the absorption mean */
    SAE_METRIC_FRAC_MULTI_PEAK = 17, /**< fraction of (sufficiently firing) latents with >= 2 histogram peaks */
    SAE_METRIC_MSE = 18,             /**< mean over samples and dimensions of (x - xhat)^2 */
    SAE_METRIC_FVU = 19,             /**< sum ||x - xhat||^2 / sum ||x - mean x||^2 */
    SAE_METRIC_L0_MEAN = 20,         /**< mean number of firing latents per sample */
    SAE_METRIC_TRUE_L0_MEAN = 21,    /**< mean number of active true features per sample */
    SAE_METRIC_FRAC_DEAD = 22,       /**< fraction of latents that never fire in the sample */
    SAE_METRIC_FRAC_DENSE = 23,      /**< fraction of latents firing more often than dense_threshold */
    SAE_METRIC_DEC_COS_MEAN = 24,    /**< mean pairwise cosine of decoder rows (i < j) */
    SAE_METRIC_DEC_ABS_COS_MEAN = 25, /**< mean pairwise |cosine| */
    SAE_METRIC_DEC_COS_MAX = 26,     /**< largest pairwise cosine */
    SAE_METRIC_DEC_MAX_COS_MEAN = 27, /**< mean over latents of the max cosine to another latent */
    SAE_METRIC_SBW_SN = 28,          /**< s_n at n = sbw_n */
    SAE_METRIC_SBW_N = 29,           /**< the n used */
    SAE_METRIC_ABSORPTION_GAP = 30,  /**< mean over parents of recall(parent alone) - recall(with child) */
    SAE_METRIC_MATCH_COST_GAP = 31   /**< optimality certificate of the decoder matching: most negative reduced cost (>= -1e-9) */
} sae_metric;

/** Array results (values pinned); rows x cols, vectors have rows = 1. Indices are stored
 *  as exact floats (-1 = none); NaN marks entries that do not apply. */
typedef enum sae_metric_array {
    SAE_ARRAY_COSINE = 1,          /**< N x L cosine similarity, true features x decoder rows */
    SAE_ARRAY_MAX_COS_TRUE = 2,    /**< length N: per true feature, max cosine */
    SAE_ARRAY_MAX_COS_LEARNED = 3, /**< length L: per latent, max cosine */
    SAE_ARRAY_THRESHOLDS = 4,      /**< length T: the recovery thresholds used */
    SAE_ARRAY_FRAC_RECOVERED = 5,  /**< length T: fraction of features with max cosine >= each threshold */
    SAE_ARRAY_MATCH_LATENT = 6,    /**< length N: latent matched to each feature (-1 = none) */
    SAE_ARRAY_MATCH_COS = 7,       /**< length N: cosine of that pair (NaN = unmatched) */
    SAE_ARRAY_ENC_COSINE = 8,      /**< N x L cosines with encoder directions (keep_cosine = 1) */
    SAE_ARRAY_ENC_MAX_COS_TRUE = 9, /**< length N */
    SAE_ARRAY_ENC_MAX_COS_LEARNED = 10, /**< length L */
    SAE_ARRAY_ENC_FRAC_RECOVERED = 11,  /**< length T */
    SAE_ARRAY_ENC_MATCH_LATENT = 12,    /**< length N */
    SAE_ARRAY_ARGMAX_TRUE = 13,    /**< length N: latent of max decoder cosine per feature */
    SAE_ARRAY_ARGMAX_LEARNED = 14, /**< length L: feature of max decoder cosine per latent */
    SAE_ARRAY_COMPOSE_N_TERMS = 15, /**< length L: significant features in the latent's fit */
    SAE_ARRAY_COMPOSE_RESIDUAL = 16, /**< length L: residual norm of the fit (unit decoder row) */
    SAE_ARRAY_BEST_LATENT = 17,    /**< length N: latent with the best F1 as detector (-1 = feature never active) */
    SAE_ARRAY_BEST_PRECISION = 18, /**< length N */
    SAE_ARRAY_BEST_RECALL = 19,    /**< length N */
    SAE_ARRAY_BEST_F1 = 20,        /**< length N */
    SAE_ARRAY_ABSORPTION = 21,     /**< length N: absorption rate of each parent (NaN if none) */
    SAE_ARRAY_PARENT_CARRIED = 22, /**< length N: mean over children of the parent share in the child latent */
    SAE_ARRAY_ACT_HIST = 23,       /**< L x hist_bins: histogram of each latent's firing values */
    SAE_ARRAY_ACT_HIST_MAX = 24,   /**< length L: upper edge of each latent's histogram */
    SAE_ARRAY_N_PEAKS = 25,        /**< length L: peaks found (0 for latents firing too rarely) */
    SAE_ARRAY_L0_HIST = 26,        /**< length L+1: samples with 0..L firing latents */
    SAE_ARRAY_FIRE_FREQ = 27,      /**< length L: firing frequency of each latent */
    SAE_ARRAY_DENSITY_HIST = 28,   /**< length hist_bins: latents by log10 firing frequency in [-8, 0] (dead ones excluded) */
    SAE_ARRAY_DEC_COS_HIST = 29,   /**< length hist_bins: decoder pair cosines over [-1, 1] */
    SAE_ARRAY_DEC_MAX_COS = 30,    /**< length L: per latent, max cosine to another latent */
    SAE_ARRAY_SBW_CURVE = 31,      /**< length sbw_max_n + 1: s_n for n = 0.. */
    SAE_ARRAY_JOINT_FIRE = 32      /**< L x 4: P(fire | a and b), P(fire | a only), P(fire | b only), P(a and b | fire) for the latent's top pair */
} sae_metric_array;

/** Integer list results (values pinned), read with sae_metrics_list_size/copy_list. */
typedef enum sae_metric_list {
    SAE_LIST_UNMATCHED_FEATURES = 1, /**< features left without a latent by the matching */
    SAE_LIST_UNMATCHED_LATENTS = 2,  /**< latents left without a feature by the matching */
    SAE_LIST_COMPOSED = 3,   /**< records (latent, k, f_1 .. f_k): decoder-composed latents */
    SAE_LIST_JOINT_COMPOSED = 4, /**< records (latent, a, b): latents firing on the joint a and b */
    SAE_LIST_MULTI_PEAK = 5, /**< latents whose histogram has >= 2 peaks */
    SAE_LIST_DEAD = 6,       /**< latents that never fired in the sample */
    SAE_LIST_ENC_UNMATCHED_FEATURES = 7, /**< as 1 for the encoder matching */
    SAE_LIST_HIERARCHY_EDGES = 8 /**< records (parent, child, parent latent, child latent), one per hierarchy edge */
} sae_metric_list;

/** Create a metrics handle from a SAE_KIND_METRICS configuration (read once, not kept).
 *  Invalid configurations return SAE_E_CONFIG; sae_config_validate gives the reason. */
SAE_API SAE_NODISCARD int32_t sae_metrics_create(sae_metrics **out, const sae_config *cfg,
                                                 const sae_allocator *alloc);
/** Free a metrics handle and its results; NULL is a no-op. */
SAE_API void sae_metrics_free(sae_metrics *metrics);
/** Detailed message of the last failed call on this handle ("" if none). */
SAE_API const char *sae_metrics_errmsg(const sae_metrics *metrics);
/** Compute the enabled metrics of model against toy's ground truth. On failure the
 * previous results stay as they were. */
SAE_API SAE_NODISCARD int32_t sae_metrics_compute(sae_metrics *metrics, const sae_model *model,
                                                  const sae_toy *toy);
/** Read a scalar result (sae_metric). SAE_E_STATE when nothing was computed yet or its
 *  group was not enabled; SAE_E_UNKNOWN_KEY for other values. */
SAE_API SAE_NODISCARD int32_t sae_metrics_get(const sae_metrics *metrics, int32_t which,
                                              double *value);
/** Shape of an array result (rows x cols; vectors have rows = 1). */
SAE_API SAE_NODISCARD int32_t sae_metrics_array_shape(const sae_metrics *metrics, int32_t which,
                                                      int64_t *rows, int64_t *cols);
/** Copy an array result into dst (row stride ld >= cols). */
SAE_API SAE_NODISCARD int32_t sae_metrics_copy_array(const sae_metrics *metrics, int32_t which,
                                                     float *dst, int64_t ld);
/** Number of integers in a list result. */
SAE_API SAE_NODISCARD int32_t sae_metrics_list_size(const sae_metrics *metrics, int32_t which,
                                                    int64_t *n);
/** Copy a list result; cap < size gives SAE_E_BUFFER_TOO_SMALL with *n = size. dst may be
 * NULL when cap is 0. */
SAE_API SAE_NODISCARD int32_t sae_metrics_copy_list(const sae_metrics *metrics, int32_t which,
                                                    int64_t *dst, int64_t cap, int64_t *n);

#ifdef __cplusplus
}
#endif
#endif
