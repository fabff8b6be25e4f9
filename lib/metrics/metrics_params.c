/* Parameters of metrics (SAE_KIND_METRICS). */
#include "core/core.h"

#include <sae/metrics.h>

static const sae_param_def metrics_params[] = {
    {SAE_METRICS_THRESHOLD, "recovery_threshold", SAE_TYPE_F64, -1, 1, 0.9, "cosine at or above which a true feature counts as recovered"},
    {SAE_METRICS_COMPUTE, "metrics_compute", SAE_TYPE_I64, 0, SAE_MG_ALL, SAE_MG_ALL, "OR of sae_metrics_group bits: which metrics sae_metrics_compute evaluates"},
    {SAE_METRICS_THRESHOLDS, "recovery_thresholds", SAE_TYPE_F64_ARRAY, -1, 1, 0, "cosine thresholds of the recovered-fraction curve (empty = 0.5 0.7 0.8 0.9 0.95 0.99)"},
    {SAE_METRICS_N_EVAL, "n_eval", SAE_TYPE_I64, 1, 1 << 24, 4096, "samples drawn from the toy for activation-based metrics"},
    {SAE_METRICS_EVAL_FIRST, "eval_first", SAE_TYPE_I64, 0, 9007199254740991.0, 1099511627776.0, "index of the first evaluation sample (default 2^40: away from training indices)"},
    {SAE_METRICS_FIRE_THRESHOLD, "fire_threshold", SAE_TYPE_F64, 0, 1e30, 0, "a latent fires on a sample when its code is greater than this"},
    {SAE_METRICS_COMPOSE_CANDIDATES, "compose_candidates", SAE_TYPE_I64, 1, 4096, 16, "true features with the highest cosine that a latent's decomposition may use"},
    {SAE_METRICS_COMPOSE_MAX_TERMS, "compose_max_terms", SAE_TYPE_I64, 1, 64, 4, "largest number of true features in a latent's decomposition"},
    {SAE_METRICS_COMPOSE_MIN_WEIGHT, "compose_min_weight", SAE_TYPE_F64, 0, 1, 0.2, "non-negative weight at or above which a feature counts in a decomposition"},
    {SAE_METRICS_COMPOSE_MAX_RESIDUAL, "compose_max_residual", SAE_TYPE_F64, 0, 1, 0.3, "residual norm (unit decoder row) at or below which a fit explains the latent"},
    {SAE_METRICS_COMPOSE_SINGLE_COS, "compose_single_cos", SAE_TYPE_F64, -1, 1, 0.9, "cosine at or above which one true feature alone explains a latent"},
    {SAE_METRICS_JOINT_MIN, "joint_min", SAE_TYPE_F64, 0, 1, 0.5, "joint composition: min P(latent fires | a and b active) and P(a and b | latent fires)"},
    {SAE_METRICS_MARGINAL_MAX, "marginal_max", SAE_TYPE_F64, 0, 1, 0.2, "joint composition: max P(latent fires | exactly one of a, b active)"},
    {SAE_METRICS_HIST_BINS, "hist_bins", SAE_TYPE_I64, 2, 4096, 32, "bins of every histogram"},
    {SAE_METRICS_PEAK_MIN_HEIGHT, "peak_min_height", SAE_TYPE_F64, 0, 1, 0.1, "a histogram peak is at least this fraction of the highest bin"},
    {SAE_METRICS_PEAK_MAX_VALLEY, "peak_max_valley", SAE_TYPE_F64, 0, 1, 0.5, "peaks are separate when the valley between them is below this fraction of the lower one"},
    {SAE_METRICS_PEAK_MIN_FIRES, "peak_min_fires", SAE_TYPE_I64, 1, 1 << 30, 50, "latents firing fewer times in the sample get no peak count"},
    {SAE_METRICS_DENSE_THRESHOLD, "dense_threshold", SAE_TYPE_F64, 0, 1, 0.1, "firing frequency above which a latent counts as dense"},
    {SAE_METRICS_SBW_N, "sbw_n", SAE_TYPE_I64, -1, 1 << 24, -1, "n of the n-th decoder projection s_n; -1 = ceil(2 x the toy's mean active features)"},
    {SAE_METRICS_SBW_MAX_N, "sbw_max_n", SAE_TYPE_I64, 0, 4096, 64, "s_n is also reported for n = 0..sbw_max_n (clamped to L - 1)"},
    {SAE_METRICS_SBW_SAMPLES, "sbw_samples", SAE_TYPE_I64, 1, 1 << 24, 1024, "evaluation samples used by s_n (at most n_eval)"},
    {SAE_METRICS_KEEP_COSINE, "keep_cosine", SAE_TYPE_I64, 0, 1, 1, "1 keep the N x L cosine matrices for copy-out; 0 keep only summaries"},
    {SAE_METRICS_N_THREADS, "metrics_threads", SAE_TYPE_I64, 1, 256, 1, "threads of the matching, composition and scan loops (results do not depend on it)"},
};

const sae_kind_def sae_metrics_kind = {SAE_KIND_METRICS, "metrics", metrics_params,
                                       (int32_t)(sizeof metrics_params / sizeof metrics_params[0]),
                                       NULL};
