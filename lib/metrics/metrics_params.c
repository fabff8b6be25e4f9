/* Parameters of metrics (SAE_KIND_METRICS). */
#include "core/core.h"

#include <sae/metrics.h>

static const sae_param_def metrics_params[] = {
    {SAE_METRICS_THRESHOLD, "recovery_threshold", SAE_TYPE_F64, -1, 1, 0.9, "cosine at or above which a true feature counts as recovered"},
};

const sae_kind_def sae_metrics_kind = {SAE_KIND_METRICS, "metrics", metrics_params,
                                       (int32_t)(sizeof metrics_params / sizeof metrics_params[0]),
                                       NULL};
