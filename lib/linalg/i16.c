/* Approximate scores from int16 operands, for CPUs without bfloat16 dot products (AVX2's
 * VPMADDWD multiplies 16 int16 pairs per instruction where VFMADD231PS multiplies 8
 * floats; on Zen 3 the kernel runs about 1.5x the float rate). Each row is scaled by its
 * norm: q = round(x / s), s = ||x|| / 32767, so |q_i| <= 32767 and, by Cauchy-Schwarz,
 * every partial sum of q_x . q_w is at most ||q_x|| ||q_w|| < 2^31: the int32 sums are
 * exact, in any order, and the score s_x s_w (q_x . q_w) + b differs from the float one
 * only by the quantisation (reported per row as ||x - s q||) and three roundings. Layout:
 * the bfloat16 kernels' panels (lib/linalg/bf16.c), a pair of int16 in each word. */
#include "linalg/i16.h"

#include "core/core.h"

#include <math.h>

#define Q_MAX 32767.0

/* Row quantised into words out[p * tile] (pairs of int16, low half first; zero past k up
 * to np pairs); its scale into *scale and ||row - scale q|| (rounded up) into *resid. */
static void quantise_row(const float *row, int64_t k, int64_t np, int64_t tile, uint32_t *out,
                         float *scale, double *resid)
{
    double ss = 0.0;
    for (int64_t i = 0; i < k; i++)
        ss += (double)row[i] * (double)row[i];
    float s = (float)(sqrt(ss) / Q_MAX);
    double inv = s > 0.0f ? 1.0 / (double)s : 0.0;
    double r2 = 0.0;
    for (int64_t p = 0; p < np; p++) {
        int32_t q[2] = {0, 0};
        for (int h = 0; h < 2; h++) {
            int64_t i = 2 * p + h;
            if (i >= k)
                break;
            double v = nearbyint((double)row[i] * inv);
            v = v > Q_MAX ? Q_MAX : v < -Q_MAX ? -Q_MAX : v;
            q[h] = (int32_t)v;
            double e = (double)row[i] - (double)s * v; /* s v is exact in double */
            r2 += e * e;
        }
        out[p * tile] = (uint32_t)(uint16_t)q[0] | (uint32_t)(uint16_t)q[1] << 16;
    }
    *scale = s;
    *resid = sqrt(r2) * (1.0 + 1e-9);
}

#if SAE_HAVE_I16_KERNEL
#  include <immintrin.h>
#  define I16_FN __attribute__((target("avx2,fma")))

/* Lanes j < n of a mask for maskload/maskstore (n in 0..8, or more: all). */
I16_FN static inline __m256i lanes(int64_t n)
{
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)SAE_MIN(n, 8)), idx);
}

/* x[0..8), zero past n (masked loads are slow on Zen 3: only for the tail). */
I16_FN static inline __m256 load8(const float *x, int64_t n)
{
    return n >= 8 ? _mm256_loadu_ps(x) : _mm256_maskload_ps(x, lanes(n));
}

I16_FN static inline double hsum_ps(__m256 a, __m256 b)
{
    float t[16];
    _mm256_storeu_ps(t, a);
    _mm256_storeu_ps(t + 8, b);
    double s = 0.0;
    for (int i = 0; i < 16; i++)
        s += (double)t[i];
    return s;
}

/* quantise_row 16 values at a time. The residual lanes x - s q are rounded once (FMA), and
 * the squares summed in float, at most ceil(k / 16) + 1 terms in each of 16 lanes: the
 * factor 1 + 4 (k + 16) u covers both (u = 2^-24). Rows whose scale is below 1e-30 (where
 * 1 / s may overflow float) go to quantise_row. */
I16_FN static void quantise_row_avx2(const float *row, int64_t k, int64_t np, int64_t tile,
                                     uint32_t *out, float *scale, double *resid)
{
    __m256 ss0 = _mm256_setzero_ps(), ss1 = _mm256_setzero_ps();
    for (int64_t i = 0; i < k; i += 16) {
        __m256 v0 = load8(row + i, k - i), v1 = load8(row + i + 8, k - i - 8);
        ss0 = _mm256_fmadd_ps(v0, v0, ss0), ss1 = _mm256_fmadd_ps(v1, v1, ss1);
    }
    float s = (float)(sqrt(hsum_ps(ss0, ss1)) / Q_MAX);
    if (!(s >= 1e-30f)) {
        quantise_row(row, k, np, tile, out, scale, resid);
        return;
    }
    const __m256 vs = _mm256_set1_ps(s), vinv = _mm256_set1_ps(1.0f / s);
    const __m256i qmax = _mm256_set1_epi32((int)Q_MAX), qmin = _mm256_set1_epi32(-(int)Q_MAX);
    __m256 r2[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
    uint32_t words[8];
    for (int64_t p = 0; p < np; p += 8) { /* np is a multiple of 8 */
        __m256i q[2];
        for (int h = 0; h < 2; h++) {
            int64_t i = 2 * p + 8 * h;
            __m256 v = load8(row + i, k - i); /* zero past k */
            __m256i qi = _mm256_cvtps_epi32(_mm256_mul_ps(v, vinv)); /* nearest, ties even */
            qi = _mm256_max_epi32(_mm256_min_epi32(qi, qmax), qmin);
            __m256 e = _mm256_fnmadd_ps(vs, _mm256_cvtepi32_ps(qi), v);
            r2[h] = _mm256_fmadd_ps(e, e, r2[h]);
            q[h] = qi;
        }
        /* packs interleaves the 128-bit halves: put the pairs back in order */
        __m256i packed = _mm256_permute4x64_epi64(_mm256_packs_epi32(q[0], q[1]), 0xd8);
        _mm256_storeu_si256((__m256i *)words, packed);
        for (int j = 0; j < 8; j++)
            out[(p + j) * tile] = words[j];
    }
    *scale = s;
    double e2 = hsum_ps(r2[0], r2[1]) * (1.0 + 4.0 * (double)(k + 16) * 5.9604644775390625e-08);
    *resid = sqrt(e2) * (1.0 + 1e-9);
}
#endif

void sae_i16_pack(const float *x, int64_t n, int64_t k, int64_t ldx, int64_t np, int64_t tile,
                  uint32_t *out, double *resid, float *scale)
{
    int64_t rows = (n + tile - 1) / tile * tile;
    for (int64_t r = 0; r < rows; r++) {
        uint32_t *col = out + r / tile * tile * np + r % tile;
        if (r < n) {
            double e;
#if SAE_HAVE_I16_KERNEL
            quantise_row_avx2(x + r * ldx, k, np, tile, col, &scale[r], &e);
#else
            quantise_row(x + r * ldx, k, np, tile, col, &scale[r], &e);
#endif
            if (resid != NULL)
                resid[r] = e;
        } else {
            for (int64_t p = 0; p < np; p++)
                col[p * tile] = 0u;
        }
    }
}

#if SAE_HAVE_I16_KERNEL
#  define HALF_R 6  /* rows of a register tile: half an A panel */
#  define HALF_C 16 /* columns: half a B panel */

/* One HALF_R x HALF_C tile: a = rows of an A panel (SAE_BF16_MR words per pair), b =
 * columns of a B panel (SAE_BF16_NR words per pair), np >= 1 pairs (sae_bf16_pairs pads to
 * whole tile rows); scores of `rows` x `cols` stored. */
I16_FN static void tile_i16(const uint32_t *a, const uint32_t *b, int64_t np, const float *asc,
                            const float *bsc, const float *bias, int64_t rows, int64_t cols,
                            float *c, int64_t ldc)
{
    __m256i acc[HALF_R][2];
#  pragma GCC unroll 6
    for (int i = 0; i < HALF_R; i++)
        acc[i][0] = acc[i][1] = _mm256_setzero_si256();
    /* GCC spills two of the twelve accumulators of this loop (sixteen registers in all):
     * written out, they stay in registers */
#  define ROW_STEP(off, c0, c1)                                                            \
        "vpbroadcastd " #off "(%[a]), %%ymm14\n\t"                                        \
        "vpmaddwd %%ymm12, %%ymm14, %%ymm15\n\t"                                          \
        "vpaddd %%ymm15, %[" #c0 "], %[" #c0 "]\n\t"                                      \
        "vpmaddwd %%ymm13, %%ymm14, %%ymm15\n\t"                                          \
        "vpaddd %%ymm15, %[" #c1 "], %[" #c1 "]\n\t"
    const uint32_t *ap = a, *bp = b;
    int64_t left = np;
    __asm__("1:\n\t"
            "vmovdqu (%[b]), %%ymm12\n\t"
            "vmovdqu 32(%[b]), %%ymm13\n\t"
            ROW_STEP(0, a00, a01) ROW_STEP(4, a10, a11) ROW_STEP(8, a20, a21)
            ROW_STEP(12, a30, a31) ROW_STEP(16, a40, a41) ROW_STEP(20, a50, a51)
            "add $48, %[a]\n\t"  /* SAE_BF16_MR words */
            "add $128, %[b]\n\t" /* SAE_BF16_NR words */
            "dec %[left]\n\t"
            "jnz 1b"
            : [a00] "+x"(acc[0][0]), [a01] "+x"(acc[0][1]), [a10] "+x"(acc[1][0]),
              [a11] "+x"(acc[1][1]), [a20] "+x"(acc[2][0]), [a21] "+x"(acc[2][1]),
              [a30] "+x"(acc[3][0]), [a31] "+x"(acc[3][1]), [a40] "+x"(acc[4][0]),
              [a41] "+x"(acc[4][1]), [a50] "+x"(acc[5][0]), [a51] "+x"(acc[5][1]),
              [a] "+r"(ap), [b] "+r"(bp), [left] "+r"(left)
            :
            : "xmm12", "xmm13", "xmm14", "xmm15", "cc", "memory");
#  undef ROW_STEP
    __m256i m0 = lanes(cols), m1 = lanes(cols - 8);
    __m256 s0 = _mm256_maskload_ps(bsc, m0), s1 = _mm256_maskload_ps(bsc + 8, m1);
    __m256 z0 = _mm256_setzero_ps(), z1 = _mm256_setzero_ps();
    if (bias != NULL)
        z0 = _mm256_maskload_ps(bias, m0), z1 = _mm256_maskload_ps(bias + 8, m1);
#  pragma GCC unroll 6
    for (int i = 0; i < HALF_R; i++) { /* unrolled, so that acc stays in registers */
        if (i == rows)
            break;
        __m256 si = _mm256_set1_ps(asc[i]);
        __m256 v0 = _mm256_mul_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(acc[i][0]), s0), si);
        __m256 v1 = _mm256_mul_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(acc[i][1]), s1), si);
        v0 = _mm256_add_ps(v0, z0), v1 = _mm256_add_ps(v1, z1);
        if (cols == HALF_C) { /* masked stores are slow on some CPUs (Zen 3) */
            _mm256_storeu_ps(c + i * ldc, v0);
            _mm256_storeu_ps(c + i * ldc + 8, v1);
        } else {
            _mm256_maskstore_ps(c + i * ldc, m0, v0);
            _mm256_maskstore_ps(c + i * ldc + 8, m1, v1);
        }
    }
}

_Static_assert(SAE_BF16_MR == 12 && SAE_BF16_NR == 32, "tile_i16's strides");

void sae_i16_panels(const uint32_t *a, const float *asc, int64_t n, const uint32_t *b,
                    const float *bsc, int64_t l, int64_t np, const float *bias, float *c,
                    int64_t ldc, int64_t q0, int64_t q1)
{
    const int64_t ta = SAE_BF16_MR, tb = SAE_BF16_NR;
    for (int64_t q = q0; q < q1; q++) {
        /* half a column panel stays in L1 over all rows (a whole one is 48 KB at d 768) */
        for (int64_t j0 = q * tb; j0 < SAE_MIN((q + 1) * tb, l); j0 += HALF_C) {
            const uint32_t *bp = b + q * tb * np + (j0 - q * tb);
            for (int64_t r0 = 0; r0 < n; r0 += HALF_R) {
                const uint32_t *ap = a + r0 / ta * ta * np + r0 % ta;
                tile_i16(ap, bp, np, asc + r0, bsc + j0, bias != NULL ? bias + j0 : NULL,
                         SAE_MIN((int64_t)HALF_R, n - r0), SAE_MIN((int64_t)HALF_C, l - j0),
                         c + r0 * ldc + j0, ldc);
            }
        }
    }
}
#endif
