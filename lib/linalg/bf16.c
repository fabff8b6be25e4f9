/* Approximate scores C = A B^T in bfloat16 with float accumulation (AVX512-BF16's
 * VDPBF16PS), for selections that are then made exact by rescoring their candidates in
 * float (lib/model/refine.c). The kernel computes each element as the same fixed sequence of
 * pair products whatever the blocking or thread count, so its output is reproducible; it
 * is only used on CPUs that report avx512bf16. */
#include "linalg/bf16.h"

#include "core/core.h"

#include <string.h>

#define MR SAE_BF16_MR
#define NR SAE_BF16_NR

/* Round a finite float to the nearest bfloat16, ties to even (the upper 16 bits). */
static inline uint32_t to_bf16(float v)
{
    uint32_t u = sae_f32_bits(v);
    return (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
}

static inline uint32_t pair(const float *row, int64_t k, int64_t p)
{
    uint32_t lo = to_bf16(row[2 * p]);
    uint32_t hi = 2 * p + 1 < k ? to_bf16(row[2 * p + 1]) : 0u;
    return lo | hi << 16;
}

int64_t sae_bf16_pairs(int64_t k) { return (k + 1) / 2; }

int64_t sae_bf16_panel_rows(int64_t n, int64_t tile) { return (n + tile - 1) / tile * tile; }

/* Panel layout: panels of `tile` rows; inside a panel, pair p of row i is at p * tile + i.
 * Rows past n are zero. */
static void pack(const float *x, int64_t n, int64_t k, int64_t ldx, int64_t tile, uint32_t *out)
{
    int64_t np = sae_bf16_pairs(k), rows = sae_bf16_panel_rows(n, tile);
    for (int64_t r0 = 0; r0 < rows; r0 += tile) {
        uint32_t *panel = out + r0 * np;
        for (int64_t i = 0; i < tile; i++) {
            int64_t r = r0 + i;
            if (r >= n) {
                for (int64_t p = 0; p < np; p++)
                    panel[p * tile + i] = 0u;
                continue;
            }
            const float *row = x + r * ldx;
            for (int64_t p = 0; p < np; p++)
                panel[p * tile + i] = pair(row, k, p);
        }
    }
}

void sae_bf16_pack_rows(const float *x, int64_t n, int64_t k, int64_t ldx, uint32_t *out)
{
    pack(x, n, k, ldx, MR, out);
}

void sae_bf16_pack_cols(const float *w, int64_t n, int64_t k, int64_t ldw, uint32_t *out)
{
    pack(w, n, k, ldw, NR, out);
}

#if SAE_HAVE_BF16_KERNEL
#  include <immintrin.h>
#  define BF16_FN __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

int sae_bf16_available(void)
{
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bf16");
}

/* One MR x NR tile: a = row panel, b = column panel, np pairs; bias added, `rows` rows and
 * `cols` columns stored. */
BF16_FN static void tile_kernel(const uint32_t *a, const uint32_t *b, int64_t np,
                                const float *bias, int64_t rows, int64_t cols, float *c,
                                int64_t ldc)
{
    __m512 acc[MR][2];
#  pragma GCC unroll 12
    for (int i = 0; i < MR; i++)
        acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    for (int64_t p = 0; p < np; p++) {
        __m512bh b0 = (__m512bh)_mm512_loadu_si512(b + p * NR);
        __m512bh b1 = (__m512bh)_mm512_loadu_si512(b + p * NR + 16);
        const uint32_t *ap = a + p * MR;
#  pragma GCC unroll 12
        for (int i = 0; i < MR; i++) {
            __m512bh av = (__m512bh)_mm512_set1_epi32((int)ap[i]);
            acc[i][0] = _mm512_dpbf16_ps(acc[i][0], av, b0);
            acc[i][1] = _mm512_dpbf16_ps(acc[i][1], av, b1);
        }
    }
    __m512 bv0 = _mm512_setzero_ps(), bv1 = _mm512_setzero_ps();
    __mmask16 m0 = cols >= 16 ? 0xffff : (__mmask16)((1u << cols) - 1u);
    __mmask16 m1 = cols >= 32 ? 0xffff : cols <= 16 ? 0 : (__mmask16)((1u << (cols - 16)) - 1u);
    if (bias != NULL) {
        bv0 = _mm512_maskz_loadu_ps(m0, bias);
        bv1 = _mm512_maskz_loadu_ps(m1, bias + 16);
    }
#  pragma GCC unroll 12
    for (int64_t i = 0; i < MR; i++) {
        if (i == rows)
            break;
        _mm512_mask_storeu_ps(c + i * ldc, m0, _mm512_add_ps(acc[i][0], bv0));
        _mm512_mask_storeu_ps(c + i * ldc + 16, m1, _mm512_add_ps(acc[i][1], bv1));
    }
}

void sae_bf16_scores(int nt, const uint32_t *a, int64_t n, const uint32_t *b, int64_t l,
                     int64_t k, const float *bias, float *c, int64_t ldc)
{
    int64_t np = sae_bf16_pairs(k), panels = (l + NR - 1) / NR;
    (void)nt;
#  ifdef _OPENMP
#    pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
#  endif
    for (int64_t q = 0; q < panels; q++) { /* a column panel stays in L1 over all rows */
        int64_t j0 = q * NR;
        const uint32_t *bp = b + j0 * np;
        int64_t cols = SAE_MIN((int64_t)NR, l - j0);
        for (int64_t r0 = 0; r0 < n; r0 += MR)
            tile_kernel(a + r0 * np, bp, np, bias != NULL ? bias + j0 : NULL,
                        SAE_MIN((int64_t)MR, n - r0), cols, c + r0 * ldc + j0, ldc);
    }
}
#else
int sae_bf16_available(void) { return 0; }

void sae_bf16_scores(int nt, const uint32_t *a, int64_t n, const uint32_t *b, int64_t l,
                     int64_t k, const float *bias, float *c, int64_t ldc)
{
    (void)nt, (void)a, (void)n, (void)b, (void)l, (void)k, (void)bias, (void)c, (void)ldc;
}
#endif
