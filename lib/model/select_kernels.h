/* Kernels shared by the per-row and the batch top-k selection (private to lib/model):
 * block and column-maximum screens, with AVX2 versions chosen at run time on x86-64. */
#ifndef SAE_LIB_MODEL_SELECT_KERNELS_H
#define SAE_LIB_MODEL_SELECT_KERNELS_H

#include "core/core.h"
#include "model/sparse.h"

#include <string.h>

#define TOPK_BLOCK 16
#define TOPK_COLS_MAX 512  /* column maxima kept on the stack */
#define TOPK_RANK_COLS 64  /* up to this many columns the floor is found by counting */
#define TOPK_CAND 512      /* candidates kept on the stack */
#define TOPK_RANK_CAND 64  /* up to this many candidates the k best are found by counting */

/* An AVX2 version of the screens and of the appends (left-packing the passing lanes with a
 * permutation), chosen at run time on x86-64; it only compares and copies, so it selects
 * the same entries as the portable code (which sanitiser builds test). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__) && \
    !defined(__SANITIZE_ADDRESS__) && !defined(SAE_NO_CLONES)
#  define SELECT_AVX2 1
#  include <immintrin.h>
#  define AVX2_FN __attribute__((target("avx2,popcnt")))

static inline int have_avx2(void)
{
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("popcnt");
}

/* Lane numbers of the set bits of a 4-bit mask, in order. */
static const int32_t pack4[16][4] = {
    {0, 0, 0, 0}, {0, 0, 0, 0}, {1, 0, 0, 0}, {0, 1, 0, 0},
    {2, 0, 0, 0}, {0, 2, 0, 0}, {1, 2, 0, 0}, {0, 1, 2, 0},
    {3, 0, 0, 0}, {0, 3, 0, 0}, {1, 3, 0, 0}, {0, 1, 3, 0},
    {2, 3, 0, 0}, {0, 2, 3, 0}, {1, 2, 3, 0}, {0, 1, 2, 3},
};

/* Bits of the lanes of x[0..8) that pass (allowed values > g, with g >= 0). */
AVX2_FN static inline uint32_t pass8(const float *x, __m256 vg, const uint8_t *allow)
{
    uint32_t m = (uint32_t)_mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(x), vg, _CMP_GT_OQ));
    if (allow != NULL) {
        int64_t a;
        memcpy(&a, allow, sizeof a);
        __m128i zero = _mm_cmpeq_epi8(_mm_cvtsi64_si128(a), _mm_setzero_si128());
        m &= ~(uint32_t)_mm_movemask_epi8(zero);
    }
    return m;
}

/* Appends the indices j + lane of the lanes set in m at ci + c; returns the new c (writes
 * up to 8 entries past it). */
AVX2_FN static inline int64_t pack_idx8(int32_t j, uint32_t m, int32_t *ci, int64_t c)
{
    __m256i iv = _mm256_add_epi32(_mm256_set1_epi32(j), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    for (int h = 0; h < 2; h++) {
        uint32_t mh = (m >> (4 * h)) & 15u;
        __m128i p = _mm_loadu_si128((const __m128i *)pack4[mh]);
        __m128i ih = h ? _mm256_extracti128_si256(iv, 1) : _mm256_castsi256_si128(iv);
        _mm_storeu_si128((__m128i *)(ci + c),
                         _mm_castps_si128(_mm_permutevar_ps(_mm_castsi128_ps(ih), p)));
        c += __builtin_popcount(mh);
    }
    return c;
}

/* Appends the lanes of x[0..8) set in m, with indices j.., at cv/ci + c; returns the new c
 * (writes up to 8 entries past it). */
AVX2_FN static inline int64_t pack8(const float *x, int32_t j, uint32_t m, float *cv, int32_t *ci,
                                    int64_t c)
{
    __m256 v = _mm256_loadu_ps(x);
    for (int h = 0, at = 0; h < 2; h++) {
        uint32_t mh = (m >> (4 * h)) & 15u;
        __m128i p = _mm_loadu_si128((const __m128i *)pack4[mh]);
        __m128 vh = h ? _mm256_extractf128_ps(v, 1) : _mm256_castps256_ps128(v);
        _mm_storeu_ps(cv + c + at, _mm_permutevar_ps(vh, p));
        at += __builtin_popcount(mh);
    }
    return pack_idx8(j, m, ci, c);
}

/* Nonzero when a value of x[0..32) is > g. */
AVX2_FN static inline int any32(const float *x, __m256 vg)
{
    __m256 a = _mm256_or_ps(_mm256_cmp_ps(_mm256_loadu_ps(x), vg, _CMP_GT_OQ),
                            _mm256_cmp_ps(_mm256_loadu_ps(x + 8), vg, _CMP_GT_OQ));
    __m256 b = _mm256_or_ps(_mm256_cmp_ps(_mm256_loadu_ps(x + 16), vg, _CMP_GT_OQ),
                            _mm256_cmp_ps(_mm256_loadu_ps(x + 24), vg, _CMP_GT_OQ));
    return _mm256_movemask_ps(_mm256_or_ps(a, b));
}

/* The largest m[i] with at least k of m[0..nb) >= it (nb a multiple of 8, at most
 * TOPK_RANK_COLS): the counts of all i are kept in vectors, one broadcast m[j] at a time. */
AVX2_FN static inline float rank_floor_avx2(const float *m, int64_t nb, int64_t k)
{
    __m256i cnt[TOPK_RANK_COLS / 8];
    int64_t nv = nb / 8;
    for (int64_t v = 0; v < nv; v++)
        cnt[v] = _mm256_setzero_si256();
    for (int64_t j = 0; j < nb; j++) {
        __m256 b = _mm256_set1_ps(m[j]);
        for (int64_t v = 0; v < nv; v++) /* m[8v + lane] <= m[j]: subtract the -1 masks */
            cnt[v] = _mm256_sub_epi32(
                cnt[v], _mm256_castps_si256(_mm256_cmp_ps(_mm256_loadu_ps(m + 8 * v), b, _CMP_LE_OQ)));
    }
    __m256 best = _mm256_setzero_ps();
    __m256i km1 = _mm256_set1_epi32((int32_t)(k - 1));
    for (int64_t v = 0; v < nv; v++) {
        __m256 sel = _mm256_castsi256_ps(_mm256_cmpgt_epi32(cnt[v], km1));
        best = _mm256_max_ps(best, _mm256_and_ps(_mm256_loadu_ps(m + 8 * v), sel));
    }
    best = _mm256_max_ps(best, _mm256_permute2f128_ps(best, best, 1));
    best = _mm256_max_ps(best, _mm256_permute_ps(best, 0x4e));
    best = _mm256_max_ps(best, _mm256_permute_ps(best, 0xb1));
    return _mm256_cvtss_f32(best);
}

/* m[b] = max(0, row[j] with j mod nb == b) for b < nb (nb a multiple of 8). The new value
 * is the first operand of max, so a NaN never replaces the running maximum. */
AVX2_FN static inline void col_max_avx2(const float *row, int64_t l, int64_t nb, float *m)
{
    int64_t full = l / nb * nb;
    for (int64_t v = 0; v < nb; v += 8) {
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
        int64_t t = 0;
        for (; t + 2 * nb <= full; t += 2 * nb) {
            a0 = _mm256_max_ps(_mm256_loadu_ps(row + t + v), a0);
            a1 = _mm256_max_ps(_mm256_loadu_ps(row + t + nb + v), a1);
        }
        if (t < full)
            a0 = _mm256_max_ps(_mm256_loadu_ps(row + t + v), a0);
        _mm256_storeu_ps(m + v, _mm256_max_ps(a1, a0));
    }
    for (int64_t q = full; q < l; q++) {
        float x = row[q], *mb = m + (q - full);
        *mb = x > *mb ? x : *mb;
    }
}

/* rk[a] = how many of cv[0..cpad) come before cv[a]: larger, or equal at a smaller place. */
AVX2_FN static inline void rank_avx2(const float *cv, int64_t c, int64_t cpad, int32_t *rk)
{
    for (int64_t a = 0; a < c; a++) {
        __m256 v = _mm256_set1_ps(cv[a]);
        int32_t r = 0;
        for (int64_t b = 0; b < cpad; b += 8) {
            __m256 x = _mm256_loadu_ps(cv + b);
            uint32_t gt = (uint32_t)_mm256_movemask_ps(_mm256_cmp_ps(x, v, _CMP_GT_OQ));
            uint32_t eq = (uint32_t)_mm256_movemask_ps(_mm256_cmp_ps(x, v, _CMP_EQ_OQ));
            int64_t below = a - b; /* lanes before a */
            uint32_t lo = below >= 8 ? 0xffu : below <= 0 ? 0u : (1u << below) - 1u;
            r += __builtin_popcount(gt | (eq & lo));
        }
        rk[a] = r;
    }
}
#endif

#if defined(__GNUC__)
#  define SELECT_INLINE static inline __attribute__((always_inline))
#else
#  define SELECT_INLINE static inline
#endif

/* m[b] = max(0, allowed row[j] with j mod nb == b) for b < nb. */
SELECT_INLINE void col_max(const float *row, int64_t l, const uint8_t *allow, int64_t nb, float *m)
{
    for (int64_t b = 0; b < nb; b++)
        m[b] = 0.0f;
    int64_t t = 0;
    for (; t + nb <= l; t += nb)
        for (int64_t b = 0; b < nb; b++) {
            float v = allow == NULL || allow[t + b] ? row[t + b] : 0.0f;
            m[b] = v > m[b] ? v : m[b];
        }
    for (int64_t b = 0; t + b < l; b++) {
        float v = allow == NULL || allow[t + b] ? row[t + b] : 0.0f;
        m[b] = v > m[b] ? v : m[b];
    }
}

/* col_max, with an AVX2 version for unmasked rows and nb a multiple of 8: 8 columns at a
 * time in registers (two accumulators), instead of maxima kept in memory. */
SELECT_INLINE void col_max_w(const float *row, int64_t l, const uint8_t *allow, int64_t nb,
                             float *m, int wide)
{
#ifdef SELECT_AVX2
    if (wide && allow == NULL && nb % 8 == 0) {
        col_max_avx2(row, l, nb, m);
        return;
    }
#else
    (void)wide;
#endif
    col_max(row, l, allow, nb, m);
}

#endif
