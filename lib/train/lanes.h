/* Reductions in a fixed number of lanes: element i goes to partial sum i % SAE_LANES and the
 * partial sums meet in a fixed tree. The order depends only on the length, never on the
 * vector width the compiler picks or on the thread count, and the independent partial
 * sums let GCC vectorise without -ffast-math (a single accumulator is a serial chain). */
#ifndef SAE_LIB_TRAIN_LANES_H
#define SAE_LIB_TRAIN_LANES_H

#include "model/parallel.h"

#include <stdint.h>
#include <string.h>

#define SAE_LANES 8

/* Lane reductions and element-wise loops give the same bits at every vector width (and
 * the library is built without FMA contraction), so x86-64 builds may let the hot loops pick
 * AVX2 at load time (GCC function multi-versioning, as in lib/toy/sample.c). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__) && \
    !defined(__SANITIZE_ADDRESS__) && !defined(SAE_NO_CLONES)
#  define SAE_LANES_CLONES __attribute__((target_clones("avx2", "default")))
#else
#  define SAE_LANES_CLONES
#endif
/* Bodies of such loops: inlined, so that they are compiled for each clone. */
#if defined(__GNUC__)
#  define SAE_LANES_INLINE static inline __attribute__((always_inline))
#else
#  define SAE_LANES_INLINE static inline
#endif

/* Loops whose iterations are independent: a parallel region only when it has more than
 * one thread (libgomp forks and joins a team even for num_threads(1)). */
#define SAE_FOR_THREADS(nt, var, n, ...) SAE_FOR_THREADS_AS(SAE_PARALLEL_FOR, nt, var, n, __VA_ARGS__)
#define SAE_FOR_THREADS_DYNAMIC(nt, var, n, ...)                                             \
    SAE_FOR_THREADS_AS(SAE_PARALLEL_FOR_DYNAMIC, nt, var, n, __VA_ARGS__)
#define SAE_FOR_THREADS_AS(pragma, nt, var, n, ...)                                          \
    do {                                                                                     \
        if ((nt) > 1) {                                                                      \
            pragma(nt)                                                                       \
            for (int64_t var = 0; var < (n); var++)                                          \
                __VA_ARGS__;                                                                 \
        } else {                                                                             \
            for (int64_t var = 0; var < (n); var++)                                          \
                __VA_ARGS__;                                                                 \
        }                                                                                    \
    } while (0)

static inline float sae_lanes_sumf(const float *s)
{
    return ((s[0] + s[4]) + (s[2] + s[6])) + ((s[1] + s[5]) + (s[3] + s[7]));
}

static inline double sae_lanes_sumd(const double *s)
{
    return ((s[0] + s[4]) + (s[2] + s[6])) + ((s[1] + s[5]) + (s[3] + s[7]));
}

/* sum a[i] * b[i] in float lanes */
static inline float sae_dotf_lanes(const float *a, const float *b, int64_t d)
{
    float s[SAE_LANES] = {0};
    int64_t i = 0;
    for (; i + SAE_LANES <= d; i += SAE_LANES)
        for (int q = 0; q < SAE_LANES; q++)
            s[q] += a[i + q] * b[i + q];
    for (int q = 0; i + q < d; q++)
        s[q] += a[i + q] * b[i + q];
    return sae_lanes_sumf(s);
}

/* sum a[i] * b[i] in double lanes */
static inline double sae_dotd_lanes(const float *a, const float *b, int64_t d)
{
    double s[SAE_LANES] = {0};
    int64_t i = 0;
    for (; i + SAE_LANES <= d; i += SAE_LANES)
        for (int q = 0; q < SAE_LANES; q++)
            s[q] += (double)a[i + q] * (double)b[i + q];
    for (int q = 0; i + q < d; q++)
        s[q] += (double)a[i + q] * (double)b[i + q];
    return sae_lanes_sumd(s);
}

/* Four-float vectors (GCC and Clang): element-wise arithmetic, so the bits are those of
 * the scalar code. Unaligned loads and stores through memcpy. */
#if defined(__GNUC__)
#  define SAE_HAVE_V4 1
typedef float sae_v4 __attribute__((vector_size(16)));

static inline sae_v4 sae_v4_load(const float *p)
{
    sae_v4 v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void sae_v4_store(float *p, sae_v4 v) { memcpy(p, &v, sizeof v); }

/* out[c] = sae_dotf_lanes(a, b[c], d) for c < 4, bit for bit: lanes 0-3 and 4-7 of each sum
 * are two vectors, and lo + hi followed by (0 + 2) + (1 + 3) is sae_lanes_sumf's tree. The
 * four products share each load of a. */
static inline void sae_dotf4_lanes(const float *a, const float *const *b, int64_t d, float *out)
{
    sae_v4 lo[4] = {{0}}, hi[4] = {{0}};
    int64_t i = 0;
    for (; i + SAE_LANES <= d; i += SAE_LANES) {
        sae_v4 al = sae_v4_load(a + i), ah = sae_v4_load(a + i + 4);
        for (int c = 0; c < 4; c++) {
            lo[c] += al * sae_v4_load(b[c] + i);
            hi[c] += ah * sae_v4_load(b[c] + i + 4);
        }
    }
    for (int c = 0; c < 4; c++) {
        float s[SAE_LANES];
        sae_v4_store(s, lo[c]);
        sae_v4_store(s + 4, hi[c]);
        for (int q = 0; i + q < d; q++)
            s[q] += a[i + q] * b[c][i + q];
        out[c] = sae_lanes_sumf(s);
    }
}
#else
#  define SAE_HAVE_V4 0
#endif

#endif
