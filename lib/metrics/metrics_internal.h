/* Private interface of lib/metrics: the handle, its results and the core math on raw
 * arrays (tested directly by tests/test_metrics_core.c). */
#ifndef SAE_LIB_METRICS_INTERNAL_H
#define SAE_LIB_METRICS_INTERNAL_H

#include "core/core.h"

#include <sae/metrics.h>

/* OpenMP loops over disjoint outputs; serial without OpenMP. Results never depend on the
 * thread count: every reduction is done afterwards in a fixed order. */
#define SAE_M_PRAGMA(x) _Pragma(#x)
#ifdef _OPENMP
#  include <omp.h>
#  define SAE_M_PARALLEL_FOR(nt) SAE_M_PRAGMA(omp parallel for num_threads(nt) schedule(dynamic, 16))
#  define SAE_M_THREAD() omp_get_thread_num()
#else
#  define SAE_M_PARALLEL_FOR(nt)
#  define SAE_M_THREAD() 0
#endif

/* One past the largest value of each result enum. */
#define SAE_M_SCALARS 32
#define SAE_M_ARRAYS 33
#define SAE_M_LISTS 9
#define SAE_M_MAX_THRESHOLDS 64

typedef struct sae_marray {
    int64_t rows, cols; /* 0 x 0: not computed */
    float *data;
} sae_marray;

typedef struct sae_mlist {
    int64_t n;
    int present;
    int64_t *data;
} sae_mlist;

typedef struct sae_mresults {
    int valid;
    double scalar[SAE_M_SCALARS];
    int scalar_set[SAE_M_SCALARS];
    sae_marray array[SAE_M_ARRAYS];
    sae_mlist list[SAE_M_LISTS];
} sae_mresults;

/* Parameters read once at creation. */
typedef struct sae_msettings {
    int64_t groups;
    double threshold;
    double thresholds[SAE_M_MAX_THRESHOLDS];
    int64_t n_thresholds;
    int64_t n_eval, sbw_samples, sbw_n, sbw_max_n;
    uint64_t eval_first;
    double fire_threshold;
    int64_t compose_candidates, compose_max_terms;
    double compose_min_weight, compose_max_residual, compose_single_cos;
    double joint_min, marginal_max;
    int64_t hist_bins, peak_min_fires;
    double peak_min_height, peak_max_valley, dense_threshold;
    int keep_cosine;
    int threads;
} sae_msettings;

struct sae_metrics {
    sae_alloc al;
    sae_err err;
    sae_msettings set;
    sae_mresults res;
};

/* ---- results ----------------------------------------------------------------------- */
void sae_mresults_init(sae_mresults *r);
void sae_mresults_clear(const sae_alloc *al, sae_mresults *r);
void sae_mresults_set(sae_mresults *r, int32_t which, double value);
/* Allocate array `which` (rows x cols, zeroed); NULL when out of memory. */
float *sae_mresults_array(const sae_alloc *al, sae_mresults *r, int32_t which, int64_t rows,
                          int64_t cols);
/* Allocate list `which` of n integers; NULL when out of memory (n may be 0). */
int64_t *sae_mresults_list(const sae_alloc *al, sae_mresults *r, int32_t which, int64_t n);

/* ---- similarity (similarity.c) ----------------------------------------------------- */
/* Cosine N x L (ld = L) between the rows of a (N x d, lda) and the latent directions of b:
 * rows of b (L x d, ldb) when b_cols_are_latents = 0, columns of b (d x L, ldb) when 1.
 * Zero-norm directions give cosine 0. */
int32_t sae_metrics_cosine(const sae_alloc *al, const float *a, int64_t n, int64_t lda,
                           const float *b, int64_t l, int64_t ldb, int b_cols_are_latents,
                           int64_t d, int threads, float *cos);
/* Row and column maxima of an n x l matrix (ld = l) with their arg (first on ties). */
void sae_metrics_maxima(const float *m, int64_t n, int64_t l, float *row_max, int32_t *row_arg,
                        float *col_max, int32_t *col_arg);
double sae_metrics_mean(const float *v, int64_t n);
/* Keep the k largest (key, idx) pairs in arrays sorted ascending by key, *n <= k in use. */
void sae_metrics_keep_top(double *key, int32_t *idx, int64_t *n, int64_t k, double kv, int32_t iv);
double sae_metrics_frac_at_least(const float *v, int64_t n, double t);

/* ---- exact assignment (assign.c) --------------------------------------------------- */
/* Maximise sum score(i, match[i]) over one-to-one matchings of min(n_rows, n_cols)
 * pairs; score(i, j) = s[i * rs + j * cs]. row_match (length n_rows) and col_match (length
 * n_cols) receive the partner or -1. *total gets the matched sum, *min_reduced the
 * certificate (most negative reduced cost over all n_rows x n_cols pairs, >= -tol). threads only splits the dense scans. */
int32_t sae_lap_max(const sae_alloc *al, const float *s, int64_t n_rows, int64_t n_cols,
                    int64_t rs, int64_t cs, int threads, int32_t *row_match,
                    int32_t *col_match, double *total, double *min_reduced);

/* ---- composition (compose.c) ------------------------------------------------------- */
typedef struct sae_fit {
    int32_t n_terms;    /* features with weight >= min_weight */
    int32_t n_used;     /* features with non-zero weight (<= max_terms) */
    int32_t feature[64];
    double weight[64];  /* sorted by decreasing weight */
    double residual;    /* || u - sum w_k f_k || for unit u */
} sae_fit;

/* Non-negative sparse fit (Lawson-Hanson active set, at most max_terms <= 64 features)
 * of a unit vector u over k candidate unit features cand[0..k) (rows of f, ldf), whose
 * cosines with u are b[0..k). work holds sae_metrics_nnls_work(k, max_terms) doubles. */
int64_t sae_metrics_nnls_work(int64_t k, int64_t max_terms);
void sae_metrics_nnls_fit(const float *f, int64_t ldf, int64_t d, const int32_t *cand,
                          const double *b, int64_t k, int64_t max_terms, double min_weight,
                          double *work, sae_fit *out);

/* ---- histograms (activation.c) ----------------------------------------------------- */
/* Peaks of a histogram: local maxima >= min_height * highest bin, merged when the lowest
 * bin between two is not below max_valley times the lower of them. */
int32_t sae_metrics_count_peaks(const float *hist, int64_t bins, double min_height,
                                double max_valley);
/* The k-th largest (0-based) of v[0..n); reorders v. */
float sae_metrics_kth_largest(float *v, int64_t n, int64_t k);

/* ---- the groups (called by sae_metrics_compute) ------------------------------------ */
typedef struct sae_meval {
    const sae_msettings *set;
    const sae_alloc *al;
    const sae_err *err;
    int64_t n, l, d;     /* true features, latents, dimension */
    const float *dict;   /* N x d unit rows */
    const float *w_dec;  /* L x d */
    const float *w_enc;  /* d x L */
    const float *b_dec;  /* d */
    const float *cos;    /* N x L decoder cosines */
    const int32_t *arg_learned; /* L: best feature per latent */
    const sae_model *model;
    const sae_toy *toy;
} sae_meval;

int32_t sae_metrics_recovery(sae_meval *e, sae_mresults *r, const float *cos, int encoder);
int32_t sae_metrics_matching(sae_meval *e, sae_mresults *r, const float *cos, int encoder);
int32_t sae_metrics_composition(sae_meval *e, sae_mresults *r);
int32_t sae_metrics_activation(sae_meval *e, sae_mresults *r, float *counts_scratch);
int32_t sae_metrics_decoder_pairs(sae_meval *e, sae_mresults *r);

#endif
