/* Status texts, per-handle error messages and common argument checks. */
#include "core.h"

#include "linalg/lanes.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *sae_status_str(int32_t status)
{
    switch (status) {
    case SAE_OK: return "success";
    case SAE_E_NULL: return "a required pointer argument is NULL";
    case SAE_E_SIZE: return "invalid size or leading dimension";
    case SAE_E_NONFINITE: return "NaN or infinity where a finite number is required";
    case SAE_E_RANGE: return "value out of range";
    case SAE_E_UNKNOWN_KEY: return "unknown parameter, kind or enum value";
    case SAE_E_TYPE: return "parameter accessed with the wrong type";
    case SAE_E_NOMEM: return "out of memory";
    case SAE_E_BUFFER_TOO_SMALL: return "output buffer too small";
    case SAE_E_CONFIG: return "inconsistent configuration";
    case SAE_E_MISMATCH: return "dimensions of handles or arrays do not match";
    case SAE_E_STATE: return "call not valid in the current state";
    case SAE_E_CANCELLED: return "cancelled by a callback";
    case SAE_E_DIVERGED: return "training diverged (NaN or infinity); last good state kept";
    case SAE_E_CORRUPT: return "serialized data truncated or corrupt";
    case SAE_E_FORMAT_VERSION: return "unsupported serialized format version";
    case SAE_E_NOT_SUPPORTED: return "not supported";
    case SAE_E_INTERNAL: return "internal error";
    case SAE_E_INVALID: return "invalid argument";
    default: return "unknown status code";
    }
}

void sae_err_init(sae_err *e)
{
    atomic_flag_clear(&e->lock);
    e->msg[0] = '\0';
}

static void err_vset(const sae_err *ce, const char *fmt, va_list ap)
{
    sae_err *e = (sae_err *)(uintptr_t)ce; /* the message is mutable state by design */
    while (atomic_flag_test_and_set_explicit(&e->lock, memory_order_acquire))
        ;
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    atomic_flag_clear_explicit(&e->lock, memory_order_release);
}

int32_t sae_fail(const sae_err *e, int32_t status, const char *fmt, ...)
{
    if (e != NULL) {
        va_list ap;
        va_start(ap, fmt);
        err_vset(e, fmt, ap);
        va_end(ap);
    }
    return status;
}

void sae_err_clear(const sae_err *ce)
{
    sae_err *e = (sae_err *)(uintptr_t)ce;
    if (e != NULL && e->msg[0] != '\0') {
        while (atomic_flag_test_and_set_explicit(&e->lock, memory_order_acquire))
            ;
        e->msg[0] = '\0';
        atomic_flag_clear_explicit(&e->lock, memory_order_release);
    }
}

int32_t sae_reason(char *msg, size_t cap, int32_t status, const char *fmt, ...)
{
    if (msg != NULL && cap > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, cap, fmt, ap);
        va_end(ap);
    }
    return status;
}

int32_t sae_check_ptr(const sae_err *e, const void *p, const char *what)
{
    if (p == NULL)
        return sae_fail(e, SAE_E_NULL, "%s is NULL", what);
    return SAE_OK;
}

/* Largest element count a matrix may span: keeps byte sizes and BLAS ints sane. */
#define SAE_MAX_ELEMS (INT64_C(1) << 40)

int32_t sae_check_matrix(const sae_err *e, const void *p, int64_t rows, int64_t cols,
                         int64_t ld, const char *what)
{
    if (p == NULL)
        return sae_fail(e, SAE_E_NULL, "%s is NULL", what);
    if (rows <= 0 || cols <= 0)
        return sae_fail(e, SAE_E_SIZE, "%s: rows (%lld) and cols (%lld) must be positive", what,
                        (long long)rows, (long long)cols);
    if (ld < cols)
        return sae_fail(e, SAE_E_SIZE, "%s: leading dimension %lld is smaller than cols %lld",
                        what, (long long)ld, (long long)cols);
    if (rows > SAE_MAX_ELEMS / ld)
        return sae_fail(e, SAE_E_SIZE, "%s: %lld x %lld elements is too large", what,
                        (long long)rows, (long long)ld);
    return SAE_OK;
}

int sae_all_finite_f32(const float *p, int64_t n)
{
    /* accumulate x*0: NaN/Inf make it NaN; branch-free, in eight independent lanes (one
     * accumulator would be a serial chain of additions: 3 cycles an element) */
    float acc[SAE_LANES] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + SAE_LANES <= n; i += SAE_LANES)
        for (int q = 0; q < SAE_LANES; q++)
            acc[q] += p[i + q] * 0.0f;
    for (; i < n; i++)
        acc[0] += p[i] * 0.0f;
    return sae_lanes_sumf(acc) == 0.0f;
}

int32_t sae_check_finite_array(const sae_err *e, const float *p, int64_t rows, int64_t cols,
                               int64_t ld, const char *what)
{
    for (int64_t r = 0; r < rows; r++)
        if (!sae_all_finite_f32(p + r * ld, cols))
            return sae_fail(e, SAE_E_NONFINITE, "%s: row %lld contains NaN or infinity", what,
                            (long long)r);
    return SAE_OK;
}

void sae_log(sae_log_fn fn, void *user, int32_t level, const char *fmt, ...)
{
    if (fn == NULL)
        return;
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fn(user, level, buf);
}
