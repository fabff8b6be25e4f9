/* Reductions in a fixed number of lanes: element i goes to partial sum i % SAE_LANES and the
 * partial sums meet in a fixed tree. The order depends only on the length, never on the
 * vector width the compiler picks or on the thread count, and the independent partial
 * sums let GCC vectorise without -ffast-math (a single accumulator is a serial chain). */
#ifndef SAE_LIB_LINALG_LANES_H
#define SAE_LIB_LINALG_LANES_H

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

/* Eight-float vectors (GCC and Clang; two SSE registers or one AVX register): element-wise
 * arithmetic, so the bits are those of the scalar code. Unaligned loads and stores through
 * memcpy (macros: a 32-byte vector passed by value would change the ABI without AVX). */
#if defined(__GNUC__)
#  define SAE_HAVE_V8 1
typedef float sae_v8 __attribute__((vector_size(32)));
#  define SAE_V8_LOAD(v, p) memcpy(&(v), (p), sizeof(sae_v8))
#  define SAE_V8_STORE(p, v) memcpy((p), &(v), sizeof(sae_v8))

/* The four partial-sum vectors acc[0..4) of a whole-vector length reduced as sae_lanes_sumf
 * reduces each: halves, a 4 x 4 transpose, then the pairs (lane c of the result: out[c]). */
static inline __attribute__((always_inline)) void sae_lanes_sum4(const sae_v8 *acc, float *out)
{
#  if defined(__has_builtin) && __has_builtin(__builtin_shufflevector)
    typedef float v4 __attribute__((vector_size(16)));
    v4 t[4];
    for (int c = 0; c < 4; c++) /* lane q: s_q + s_(q+4) */
        t[c] = __builtin_shufflevector(acc[c], acc[c], 0, 1, 2, 3) +
               __builtin_shufflevector(acc[c], acc[c], 4, 5, 6, 7);
    v4 lo01 = __builtin_shufflevector(t[0], t[1], 0, 4, 1, 5);
    v4 hi01 = __builtin_shufflevector(t[0], t[1], 2, 6, 3, 7);
    v4 lo23 = __builtin_shufflevector(t[2], t[3], 0, 4, 1, 5);
    v4 hi23 = __builtin_shufflevector(t[2], t[3], 2, 6, 3, 7);
    v4 r0 = __builtin_shufflevector(lo01, lo23, 0, 1, 4, 5); /* lane c: t[c][0] */
    v4 r1 = __builtin_shufflevector(lo01, lo23, 2, 3, 6, 7);
    v4 r2 = __builtin_shufflevector(hi01, hi23, 0, 1, 4, 5);
    v4 r3 = __builtin_shufflevector(hi01, hi23, 2, 3, 6, 7);
    v4 sum = (r0 + r2) + (r1 + r3); /* sae_lanes_sumf's tree */
    memcpy(out, &sum, sizeof sum);
#  else
    for (int c = 0; c < 4; c++) {
        float s[SAE_LANES];
        SAE_V8_STORE(s, acc[c]);
        out[c] = sae_lanes_sumf(s);
    }
#  endif
}

/* out[c] = sae_dotf_lanes(a, b[c], d) for c < nc (4 or 8), bit for bit (vector lane q is
 * partial sum q); the products share each load of a, and nc independent sums keep the
 * adders busy. */
static inline __attribute__((always_inline)) void
sae_dotf_group_lanes(const float *a, const float *const *b, int64_t d, float *out, int nc)
{
    sae_v8 acc[8] = {{0}};
    int64_t i = 0;
    for (; i + SAE_LANES <= d; i += SAE_LANES) {
        sae_v8 av, bv;
        SAE_V8_LOAD(av, a + i);
        for (int c = 0; c < nc; c++) {
            SAE_V8_LOAD(bv, b[c] + i);
            acc[c] += av * bv;
        }
    }
    if (i == d) {
        for (int c = 0; c < nc; c += 4)
            sae_lanes_sum4(acc + c, out + c);
        return;
    }
    for (int c = 0; c < nc; c++) {
        float s[SAE_LANES];
        SAE_V8_STORE(s, acc[c]);
        for (int q = 0; i + q < d; q++)
            s[q] += a[i + q] * b[c][i + q];
        out[c] = sae_lanes_sumf(s);
    }
}

static inline __attribute__((always_inline)) void
sae_dotf4_lanes(const float *a, const float *const *b, int64_t d, float *out)
{
    sae_dotf_group_lanes(a, b, d, out, 4);
}

static inline __attribute__((always_inline)) void
sae_dotf8_lanes(const float *a, const float *const *b, int64_t d, float *out)
{
    sae_dotf_group_lanes(a, b, d, out, 8);
}
#else
#  define SAE_HAVE_V8 0
#endif

#endif
