/* Private core services shared by every lib/ folder: allocation, error messages,
 * argument checks and the parameter registry. Not installed. */
#ifndef SAE_LIB_CORE_H
#define SAE_LIB_CORE_H

#include <sae/core.h>

#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#if defined(__GNUC__)
#  define SAE_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#  define SAE_PRINTF(a, b)
#endif

/* ---- allocation --------------------------------------------------------- */
#define SAE_ALIGN 64

typedef struct sae_alloc {
    sae_allocator a; /* a.alloc == NULL: C library */
} sae_alloc;

void sae_alloc_init(sae_alloc *dst, const sae_allocator *src);
/* All return NULL on failure or overflow; sizes of 0 allocate one byte. */
void *sae_malloc(const sae_alloc *al, size_t size);
void *sae_calloc(const sae_alloc *al, size_t n, size_t size); /* zeroed */
void sae_free(const sae_alloc *al, void *p);
/* n * size without overflow; returns 0 on overflow. */
int sae_mul_size(size_t n, size_t size, size_t *out);

/* ---- per-handle error messages ----------------------------------------- */
#define SAE_ERRMSG_CAP 256
typedef struct sae_err {
    atomic_flag lock; /* only taken on the error path; const calls may fail concurrently */
    char msg[SAE_ERRMSG_CAP];
} sae_err;

void sae_err_init(sae_err *e);
/* Record a message on a handle and return status. e may be NULL. Works through
 * const handles: the message is the only state a failed call changes. */
int32_t sae_fail(const sae_err *e, int32_t status, const char *fmt, ...) SAE_PRINTF(3, 4);
void sae_err_clear(const sae_err *e);

/* ---- argument checks (return SAE_OK or record the failure) ------------- */
int32_t sae_check_ptr(const sae_err *e, const void *p, const char *what);
/* rows >= 1 (or >= 0 when allow_empty), cols >= 1, ld >= cols, rows*ld fits */
int32_t sae_check_matrix(const sae_err *e, const void *p, int64_t rows, int64_t cols,
                         int64_t ld, const char *what);
int32_t sae_check_finite_array(const sae_err *e, const float *p, int64_t rows, int64_t cols,
                               int64_t ld, const char *what);
int sae_all_finite_f32(const float *p, int64_t n);

/* ---- logging helper (callback may be NULL) ------------------------------ */
void sae_log(sae_log_fn fn, void *user, int32_t level, const char *fmt, ...) SAE_PRINTF(4, 5);

/* ---- parameter registry ------------------------------------------------- */
typedef struct sae_param_def {
    int32_t key;
    const char *name;
    int32_t type;        /* sae_param_type */
    double lo, hi, dflt; /* bounds (inclusive) and default for scalars */
    const char *doc;
} sae_param_def;

typedef struct sae_kind_def {
    int32_t kind;
    const char *name;
    const sae_param_def *params;
    int32_t n_params;
    /* cross-parameter checks; writes a reason; NULL = none */
    int32_t (*validate)(const sae_config *cfg, char *msg, size_t cap);
} sae_kind_def;

/* Defined by each module (lib/toy, lib/model, lib/train, lib/metrics). */
extern const sae_kind_def sae_toy_kind;
extern const sae_kind_def sae_model_kind;
extern const sae_kind_def sae_trainer_kind;
extern const sae_kind_def sae_metrics_kind;

const sae_kind_def *sae_kind_find(int32_t kind);

/* Typed reads for modules; the key must belong to the config's kind (checked by tests). */
int64_t sae_cfg_i64(const sae_config *cfg, int32_t key);
double sae_cfg_f64(const sae_config *cfg, int32_t key);
const double *sae_cfg_f64_array(const sae_config *cfg, int32_t key, int64_t *n);
const int64_t *sae_cfg_i64_array(const sae_config *cfg, int32_t key, int64_t *n);
/* Whether the caller set the parameter explicitly (vs default). */
int sae_cfg_is_set(const sae_config *cfg, int32_t key);
const sae_alloc *sae_cfg_alloc(const sae_config *cfg);
/* The configuration's error record, so other folders (io) can leave messages on it. */
const sae_err *sae_cfg_err(const sae_config *cfg);

/* Format a reason into msg (snprintf semantics, msg may be NULL) and return status. */
int32_t sae_reason(char *msg, size_t cap, int32_t status, const char *fmt, ...) SAE_PRINTF(4, 5);

#define SAE_MIN(a, b) ((a) < (b) ? (a) : (b))
#define SAE_MAX(a, b) ((a) > (b) ? (a) : (b))

/* The bit pattern of a float and back (positive floats order like their patterns). */
static inline uint32_t sae_f32_bits(float v)
{
    uint32_t b;
    memcpy(&b, &v, sizeof b);
    return b;
}
static inline float sae_f32_from_bits(uint32_t b)
{
    float v;
    memcpy(&v, &b, sizeof v);
    return v;
}

#endif
