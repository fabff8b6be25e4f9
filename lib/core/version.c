/* Version queries and a one-line description of the build and the BLAS running. */
#include "core.h"

#include "linalg/bf16.h"

#include <stdio.h>

#ifndef SAE_BLAS_NAME
#  define SAE_BLAS_NAME "unknown"
#endif

/* Weak references: non-NULL only when that BLAS is loaded in the process. */
extern char *openblas_get_config(void) __attribute__((weak));
extern int openblas_get_num_threads(void) __attribute__((weak));
extern const char *bli_info_get_version_str(void) __attribute__((weak));

#define SAE_STR2(x) #x
#define SAE_STR(x) SAE_STR2(x)

uint32_t sae_version_number(void) { return SAE_VERSION_NUMBER; }

const char *sae_version_string(void)
{
    return SAE_STR(SAE_VERSION_MAJOR) "." SAE_STR(SAE_VERSION_MINOR) "." SAE_STR(SAE_VERSION_PATCH);
}

static const char *blas_running(char *buf, size_t cap)
{
    if (openblas_get_config != NULL) {
        int threads = openblas_get_num_threads != NULL ? openblas_get_num_threads() : -1;
        snprintf(buf, cap, "OpenBLAS (%s; %d threads)", openblas_get_config(), threads);
    } else if (bli_info_get_version_str != NULL) {
        snprintf(buf, cap, "BLIS %s", bli_info_get_version_str());
    } else {
        snprintf(buf, cap, "generic CBLAS (reference or unidentified)");
    }
    return buf;
}

const char *sae_build_info(void)
{
    /* Thread-local so concurrent callers never see a half-written line. */
    static _Thread_local char info[512];
    char blas[256];
    snprintf(info, sizeof info,
             "libsae %s; blas: %s; linked against pkg-config module '%s'; low-precision scores: %s; "
             "openmp: %s; compiler: %s",
             sae_version_string(), blas_running(blas, sizeof blas), SAE_BLAS_NAME,
             sae_bf16_kernel() == SAE_BF16_AMX      ? "AMX"
             : sae_bf16_kernel() == SAE_BF16_AVX512 ? "AVX512-BF16"
             : sae_bf16_kernel() == SAE_BF16_INT16  ? "AVX2-INT16"
                                                    : "none",
#ifdef _OPENMP
             "yes",
#else
             "no",
#endif
#if defined(__clang__)
             "clang " __clang_version__
#elif defined(__GNUC__)
             "gcc " __VERSION__
#else
             "unknown"
#endif
    );
    return info;
}
