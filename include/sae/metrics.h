/*
 * Metrics: compare a model with a toy's ground truth. Metrics never modify a model;
 * separate metrics handles may evaluate the same model concurrently.
 */
#ifndef SAE_METRICS_H
#define SAE_METRICS_H

#include <sae/core.h>
#include <sae/model.h>
#include <sae/toy.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sae_metrics sae_metrics;

/** Parameter keys of SAE_KIND_METRICS configurations (values pinned; range 4000-4999). */
typedef enum sae_metrics_param {
    SAE_METRICS_THRESHOLD = 4000 /**< "recovery_threshold": cosine above which a feature counts as recovered */
} sae_metrics_param;

/** Scalar results (values pinned). */
typedef enum sae_metric {
    SAE_METRIC_MMCS_TRUE = 1,    /**< mean over true features of max cosine to any decoder row */
    SAE_METRIC_MMCS_LEARNED = 2, /**< mean over latents of max cosine to any true feature */
    SAE_METRIC_FRAC_RECOVERED = 3 /**< fraction of true features with max cosine >= threshold */
} sae_metric;

/** Array results (values pinned). */
typedef enum sae_metric_array {
    SAE_ARRAY_COSINE = 1,          /**< N x L cosine similarity, true features x decoder rows */
    SAE_ARRAY_MAX_COS_TRUE = 2,    /**< length N: per true feature, max cosine */
    SAE_ARRAY_MAX_COS_LEARNED = 3  /**< length L: per latent, max cosine */
} sae_metric_array;

SAE_API SAE_NODISCARD int32_t sae_metrics_create(sae_metrics **out, const sae_config *cfg,
                                                 const sae_allocator *alloc);
SAE_API void sae_metrics_free(sae_metrics *metrics);
SAE_API const char *sae_metrics_errmsg(const sae_metrics *metrics);
/** Compute the recovery metrics of model against toy's dictionary. */
SAE_API SAE_NODISCARD int32_t sae_metrics_compute(sae_metrics *metrics, const sae_model *model,
                                                  const sae_toy *toy);
SAE_API SAE_NODISCARD int32_t sae_metrics_get(const sae_metrics *metrics, int32_t which,
                                              double *value);
/** Shape of an array result (rows x cols; vectors have rows = 1). */
SAE_API SAE_NODISCARD int32_t sae_metrics_array_shape(const sae_metrics *metrics, int32_t which,
                                                      int64_t *rows, int64_t *cols);
/** Copy an array result into dst (row stride ld >= cols). */
SAE_API SAE_NODISCARD int32_t sae_metrics_copy_array(const sae_metrics *metrics, int32_t which,
                                                     float *dst, int64_t ld);

#ifdef __cplusplus
}
#endif
#endif
