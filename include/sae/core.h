/*
 * libsae core: versions, status codes, allocator hook, parameter registry,
 * configuration handles and callback types.
 *
 * Conventions (see docs/architecture.md and docs/abi.md):
 *  - every fallible call returns int32_t status: SAE_OK (0) or a negative code;
 *  - new objects come back through a `T **out` first argument; free(NULL) is a no-op;
 *  - a failed call leaves every handle as it was (only its error message changes);
 *  - arrays are caller memory, row-major float32 with explicit rows, cols and ld;
 *  - no I/O, no global state, no init call.
 */
#ifndef SAE_CORE_H
#define SAE_CORE_H

#include <stddef.h>
#include <stdint.h>

#ifndef SAE_API
#  if defined(_WIN32)
#    if defined(sae_EXPORTS)
#      define SAE_API __declspec(dllexport)
#    elif defined(SAE_STATIC)
#      define SAE_API
#    else
#      define SAE_API __declspec(dllimport)
#    endif
#  elif defined(__GNUC__) && __GNUC__ >= 4
#    define SAE_API __attribute__((visibility("default")))
#  else
#    define SAE_API
#  endif
#endif

#ifndef SAE_NODISCARD
#  if defined(__GNUC__) && __GNUC__ >= 4
#    define SAE_NODISCARD __attribute__((warn_unused_result))
#  else
#    define SAE_NODISCARD
#  endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- version ---------------------------------------------------------- */
/** Major version of this header: changes with the SONAME, on an ABI break. */
#define SAE_VERSION_MAJOR 0
/** Minor version of this header: grows when functions or enum values are added. */
#define SAE_VERSION_MINOR 1
/** Patch version of this header: fixes without interface changes. */
#define SAE_VERSION_PATCH 0
/** Version of this header as one number; compare with sae_version_number(). */
#define SAE_VERSION_NUMBER (SAE_VERSION_MAJOR * 10000 + SAE_VERSION_MINOR * 100 + SAE_VERSION_PATCH)

/** Runtime version: major*10000 + minor*100 + patch. Compare with SAE_VERSION_NUMBER. */
SAE_API uint32_t sae_version_number(void);
/** Runtime version as "MAJOR.MINOR.PATCH" (static storage). */
SAE_API const char *sae_version_string(void);
/** One line naming the BLAS in use, threading support and compiler (static storage). */
SAE_API const char *sae_build_info(void);

/* ---- status codes: values are pinned forever -------------------------- */
/** Status codes returned by every fallible function (values pinned forever). */
typedef enum sae_status {
    SAE_OK = 0,                  /**< success */
    SAE_E_NULL = -1,             /**< a required pointer argument is NULL */
    SAE_E_SIZE = -2,             /**< zero, negative or overflowing size, or ld < cols */
    SAE_E_NONFINITE = -3,        /**< NaN or Inf in a parameter or input */
    SAE_E_RANGE = -4,            /**< value outside its documented bounds */
    SAE_E_UNKNOWN_KEY = -5,      /**< unknown parameter key, name, kind or enum value */
    SAE_E_TYPE = -6,             /**< parameter accessed with the wrong type */
    SAE_E_NOMEM = -7,            /**< allocation failed */
    SAE_E_BUFFER_TOO_SMALL = -8, /**< output buffer too small; the needed size is reported */
    SAE_E_CONFIG = -9,           /**< configuration is inconsistent (see sae_config_validate) */
    SAE_E_MISMATCH = -10,        /**< handles or arrays of incompatible dimensions */
    SAE_E_STATE = -11,           /**< call not valid in the handle's current state */
    SAE_E_CANCELLED = -12,       /**< a progress callback asked to stop */
    SAE_E_DIVERGED = -13,        /**< training produced NaN/Inf; last good state kept */
    SAE_E_CORRUPT = -14,         /**< serialized buffer truncated or corrupt */
    SAE_E_FORMAT_VERSION = -15,  /**< serialized buffer of an unsupported format version */
    SAE_E_NOT_SUPPORTED = -16,   /**< valid request this build or architecture cannot do */
    SAE_E_INTERNAL = -17,        /**< unexpected internal failure (a bug: please report) */
    SAE_E_INVALID = -18          /**< argument invalid for a reason not covered above */
} sae_status;

/** Static English text for a status code; never NULL. */
SAE_API const char *sae_status_str(int32_t status);

/* ---- allocator hook ---------------------------------------------------- */
/**
 * Optional allocator, passed by pointer at creation and copied into the handle.
 * alloc must return memory aligned to `align` (a power of two <= 4096) or NULL.
 * NULL allocator pointer = the C library's aligned allocation.
 */
typedef struct sae_allocator {
    /** Return `size` bytes aligned to `align`, or NULL when out of memory. */
    void *(*alloc)(void *user, size_t size, size_t align);
    /** Release memory from `alloc`; never called with NULL. */
    void (*free)(void *user, void *ptr);
    /** Passed unchanged to both functions. */
    void *user;
} sae_allocator;

/* ---- callbacks ---------------------------------------------------------- */
/** Severity of a log message (values pinned). */
typedef enum sae_log_level {
    SAE_LOG_DEBUG = 0, /**< detail for developers */
    SAE_LOG_INFO = 1,  /**< progress and decisions */
    SAE_LOG_WARN = 2,  /**< something unusual that the call handled */
    SAE_LOG_ERROR = 3  /**< the call is about to fail */
} sae_log_level;

/** Log callback; called synchronously on the calling thread. */
typedef void (*sae_log_fn)(void *user, int32_t level, const char *message);
/**
 * Progress callback; called synchronously on the calling thread.
 * Return non-zero to stop: the running call returns SAE_E_CANCELLED and leaves a
 * consistent state that can continue.
 */
typedef int32_t (*sae_progress_fn)(void *user, int64_t step, int64_t total, double value);

/* ---- parameters and configurations -------------------------------------- */
/** Kinds of configuration; each handle kind has its own parameter set. */
typedef enum sae_kind {
    SAE_KIND_TOY = 1,
    SAE_KIND_MODEL = 2,
    SAE_KIND_TRAINER = 3,
    SAE_KIND_METRICS = 4
} sae_kind;

/** Parameter value types. */
typedef enum sae_param_type {
    SAE_TYPE_I64 = 1,       /**< integer (also enums and flags) */
    SAE_TYPE_F64 = 2,       /**< real */
    SAE_TYPE_F64_ARRAY = 3, /**< array of reals (e.g. per-feature probabilities) */
    SAE_TYPE_I64_ARRAY = 4  /**< array of integers (e.g. hierarchy parents) */
} sae_param_type;

/** Opaque configuration: every parameter of one kind (sae_kind), with its value. */
typedef struct sae_config sae_config;

/** Find a parameter key by its name (e.g. "l1_coefficient"). */
SAE_API SAE_NODISCARD int32_t sae_param_lookup(const char *name, int32_t *key);
/** Name of a parameter key, or NULL if unknown. */
SAE_API const char *sae_param_name(int32_t key);
/** One-line documentation of a parameter, or NULL if unknown. */
SAE_API const char *sae_param_doc(int32_t key);
/** Kind, type, bounds and default of a parameter (any out pointer may be NULL). */
SAE_API SAE_NODISCARD int32_t sae_param_info(int32_t key, int32_t *kind, int32_t *type,
                                             double *lo, double *hi, double *dflt);
/** Number of parameters of a kind, for enumeration with sae_param_key_at. */
SAE_API SAE_NODISCARD int32_t sae_param_count(int32_t kind, int32_t *count);
/** The index-th parameter key of a kind. */
SAE_API SAE_NODISCARD int32_t sae_param_key_at(int32_t kind, int32_t index, int32_t *key);

/** A new configuration of `kind` with every parameter at its default. */
SAE_API SAE_NODISCARD int32_t sae_config_create(sae_config **out, int32_t kind,
                                                const sae_allocator *alloc);
/** Free a configuration; NULL is a no-op. */
SAE_API void sae_config_free(sae_config *cfg);
/** An independent copy of src (same allocator). */
SAE_API SAE_NODISCARD int32_t sae_config_clone(sae_config **out, const sae_config *src);
/** Kind of a configuration (SAE_KIND_*), or 0 for NULL. */
SAE_API int32_t sae_config_kind(const sae_config *cfg);

/** Set an integer parameter; out of bounds gives SAE_E_RANGE, a real one SAE_E_TYPE. */
SAE_API SAE_NODISCARD int32_t sae_config_set_i64(sae_config *cfg, int32_t key, int64_t value);
/** Set a real parameter; NaN/Inf give SAE_E_NONFINITE, out of bounds SAE_E_RANGE. */
SAE_API SAE_NODISCARD int32_t sae_config_set_f64(sae_config *cfg, int32_t key, double value);
/** Read an integer parameter. */
SAE_API SAE_NODISCARD int32_t sae_config_get_i64(const sae_config *cfg, int32_t key, int64_t *value);
/** Read a real parameter. */
SAE_API SAE_NODISCARD int32_t sae_config_get_f64(const sae_config *cfg, int32_t key, double *value);
/** Set an array parameter (copied). n = 0 clears it. */
SAE_API SAE_NODISCARD int32_t sae_config_set_f64_array(sae_config *cfg, int32_t key,
                                                       const double *values, int64_t n);
/** Set an integer-array parameter (copied). n = 0 clears it. */
SAE_API SAE_NODISCARD int32_t sae_config_set_i64_array(sae_config *cfg, int32_t key,
                                                       const int64_t *values, int64_t n);
/**
 * Copy an array parameter out. *n receives its length; if cap < length the call
 * returns SAE_E_BUFFER_TOO_SMALL and copies nothing (a negative cap is SAE_E_SIZE).
 * dst may be NULL when cap is 0.
 */
SAE_API SAE_NODISCARD int32_t sae_config_get_f64_array(const sae_config *cfg, int32_t key,
                                                       double *dst, int64_t cap, int64_t *n);
/** Copy an integer-array parameter out; same contract as sae_config_get_f64_array(). */
SAE_API SAE_NODISCARD int32_t sae_config_get_i64_array(const sae_config *cfg, int32_t key,
                                                       int64_t *dst, int64_t cap, int64_t *n);
/** Set a scalar parameter by name; integers must be given as exact whole numbers. */
SAE_API SAE_NODISCARD int32_t sae_config_set_by_name(sae_config *cfg, const char *name,
                                                     double value);
/** Reset one parameter (key) to its default. */
SAE_API SAE_NODISCARD int32_t sae_config_reset(sae_config *cfg, int32_t key);
/**
 * Check the whole configuration for consistency. On failure, writes a readable reason
 * (NUL-terminated, truncated to cap) into msg when msg is not NULL.
 */
SAE_API SAE_NODISCARD int32_t sae_config_validate(const sae_config *cfg, char *msg, size_t cap);
/** Detailed message of the last failed call on this configuration ("" if none). */
SAE_API const char *sae_config_errmsg(const sae_config *cfg);

#ifdef __cplusplus
}
#endif
#endif /* SAE_CORE_H */
