/* Approximate scores C = A B^T in bfloat16 with float accumulation, for selections that
 * are then made exact by rescoring their candidates in float (lib/model/refine.c). Three
 * kernels: AMX tiles (TDPBF16PS, 16 x 16 x 32 per instruction) where the CPU has AMX-BF16
 * and Linux grants the tile state, else AVX512-BF16's VDPBF16PS, else (AVX2 only) int16
 * operands with exact integer sums (lib/linalg/i16.c). Each computes every element as the
 * same fixed sequence of pair products whatever the blocking or thread count, so its
 * output is reproducible on one CPU; which kernel ran never changes a selection (the
 * rescoring makes it exact). */
#define _DEFAULT_SOURCE /* syscall(2) for the AMX permission */
#include "linalg/bf16.h"

#include "core/core.h"
#include "linalg/i16.h"

#include <math.h>
#include <string.h>

#define MR SAE_BF16_MR
#define NR SAE_BF16_NR
#define KP 16 /* pairs per AMX tile row: the pair count is padded to a multiple */
#define AMX_MB 32 /* rows per AMX block (two A tiles) */

/* Round a finite float to the nearest bfloat16, ties to even (the upper 16 bits). */
static inline uint32_t to_bf16(float v)
{
    uint32_t u = sae_f32_bits(v);
    return (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
}

static inline uint32_t pair(const float *row, int64_t k, int64_t p)
{
    uint32_t lo = 2 * p < k ? to_bf16(row[2 * p]) : 0u;
    uint32_t hi = 2 * p + 1 < k ? to_bf16(row[2 * p + 1]) : 0u;
    return lo | hi << 16;
}

int64_t sae_bf16_pairs(int64_t k) { return ((k + 1) / 2 + KP - 1) / KP * KP; }

int64_t sae_bf16_panel_rows(int64_t n, int64_t tile) { return (n + tile - 1) / tile * tile; }

static inline float from_bf16(uint32_t h) { return sae_f32_from_bits(h << 16); }

#if SAE_HAVE_BF16_KERNEL
static double residual_avx512(const float *row, int64_t k);
#endif

/* ||row - bf16(row)|| (the differences are exact in float, the squares in double). */
static double residual_scalar(const float *row, int64_t k)
{
    double s = 0.0;
    for (int64_t i = 0; i < k; i++) {
        double e = (double)(row[i] - from_bf16(to_bf16(row[i])));
        s += e * e;
    }
    return sqrt(s) * (1.0 + 1e-12);
}

/* The same, rounded up. */
static double residual(const float *row, int64_t k)
{
#if SAE_HAVE_BF16_KERNEL
    if (sae_bf16_kernel() >= SAE_BF16_AVX512)
        return residual_avx512(row, k);
#endif
    return residual_scalar(row, k);
}

/* Panel layout: panels of `tile` rows; inside a panel, pair p of row i is at p * tile + i.
 * Rows past n are zero. resid (if not NULL) gets each row's rounding residual. */
static void pack(const float *x, int64_t n, int64_t k, int64_t ldx, int64_t tile, uint32_t *out,
                 double *resid)
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
            if (resid != NULL)
                resid[r] = residual(row, k);
        }
    }
}

int64_t sae_bf16_tile_rows(void) { return sae_bf16_kernel() == SAE_BF16_AMX ? AMX_MB : MR; }

/* The A operand: MR-row panels for VDPBF16PS; for AMX, plain rows (a panel of one row)
 * padded with zero rows to whole blocks. */
int64_t sae_bf16_rows_words(int64_t n, int64_t k)
{
    return sae_bf16_panel_rows(n, sae_bf16_tile_rows()) * sae_bf16_pairs(k);
}

int64_t sae_bf16_cols_words(int64_t l, int64_t k)
{
    return sae_bf16_panel_rows(l, NR) * sae_bf16_pairs(k);
}

void sae_bf16_pack_rows(const float *x, int64_t n, int64_t k, int64_t ldx, uint32_t *out,
                        double *resid, float *scale)
{
    if (sae_bf16_kernel() == SAE_BF16_INT16) {
        sae_i16_pack(x, n, k, ldx, sae_bf16_pairs(k), MR, out, resid, scale);
    } else if (sae_bf16_kernel() == SAE_BF16_AMX) {
        pack(x, n, k, ldx, 1, out, resid);
        int64_t pad = sae_bf16_panel_rows(n, AMX_MB) - n;
        memset(out + n * sae_bf16_pairs(k), 0, (size_t)(pad * sae_bf16_pairs(k)) * 4);
    } else {
        pack(x, n, k, ldx, MR, out, resid);
    }
}

void sae_bf16_pack_cols(const float *w, int64_t n, int64_t k, int64_t ldw, uint32_t *out,
                        double *resid, float *scale)
{
    if (sae_bf16_kernel() == SAE_BF16_INT16)
        sae_i16_pack(w, n, k, ldw, sae_bf16_pairs(k), NR, out, resid, scale);
    else
        pack(w, n, k, ldw, NR, out, resid);
}

#if SAE_HAVE_BF16_KERNEL
#  include <immintrin.h>
#  define BF16_FN __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

/* residual() in 16 float lanes: the rounding of to_bf16 on 16 values at once, the squared
 * differences summed per lane (at most ceil(k / 16) terms each), then in double; the
 * factor covers the float sums' rounding (gamma of k terms, with slack). A square below
 * float's normal range loses up to 2^-149 to underflow, which the factor covers only if
 * the sum is not tiny: tiny sums (rows of subnormal residuals) are redone in double. */
BF16_FN static double residual_avx512(const float *row, int64_t k)
{
    const __m512i one = _mm512_set1_epi32(1), half = _mm512_set1_epi32(0x7fff);
    const __m512i high = _mm512_set1_epi32((int)0xffff0000u);
    __m512 acc = _mm512_setzero_ps();
    for (int64_t i = 0; i < k; i += 16) {
        __mmask16 m = k - i >= 16 ? 0xffff : (__mmask16)((1u << (k - i)) - 1u);
        __m512 v = _mm512_maskz_loadu_ps(m, row + i);
        __m512i u = _mm512_castps_si512(v);
        __m512i bump = _mm512_add_epi32(half, _mm512_and_si512(_mm512_srli_epi32(u, 16), one));
        __m512i r = _mm512_and_si512(_mm512_add_epi32(u, bump), high);
        __m512 e = _mm512_sub_ps(v, _mm512_castsi512_ps(r));
        acc = _mm512_fmadd_ps(e, e, acc);
    }
    float lanes[16];
    _mm512_storeu_ps(lanes, acc);
    double s = 0.0;
    for (int i = 0; i < 16; i++)
        s += (double)lanes[i];
    if (s < 0x1p-90)
        return residual_scalar(row, k);
    return sqrt(s * (1.0 + 4.0 * (double)(k + 16) * 5.9604644775390625e-08)) * (1.0 + 1e-12);
}

#  include <cpuid.h>
#  include <sys/syscall.h>
#  include <unistd.h>
#  define AMX_FN __attribute__((target("amx-tile,amx-bf16,avx512f")))
#  define ARCH_REQ_XCOMP_PERM 0x1023
#  define XFEATURE_XTILEDATA 18

/* The kernel in use (SAE_BF16_NONE, _AVX512, _AMX); 0 = not probed yet. */
static int kernel_in_use;

/* AMX-TILE and AMX-BF16 reported by CPUID, and the tile data state granted to this process
 * by Linux (one arch_prctl, as every AMX user must make; it only enlarges signal frames). */
static int amx_usable(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(d & (1u << 24)) || !(d & (1u << 22)))
        return 0;
    return syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
}

/* The best kernel up to `limit` that this CPU runs. */
static int probe_kernel(int limit)
{
    int bf16 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bf16");
    if (limit >= SAE_BF16_AMX && bf16 && amx_usable())
        return SAE_BF16_AMX;
    if (limit >= SAE_BF16_AVX512 && bf16)
        return SAE_BF16_AVX512;
    if (limit >= SAE_BF16_INT16 && __builtin_cpu_supports("avx2"))
        return SAE_BF16_INT16;
    return SAE_BF16_NONE;
}

int sae_bf16_kernel(void)
{
    int k = __atomic_load_n(&kernel_in_use, __ATOMIC_RELAXED);
    if (k == 0) { /* idempotent: concurrent first callers agree */
        k = probe_kernel(SAE_BF16_AMX);
        __atomic_store_n(&kernel_in_use, k, __ATOMIC_RELAXED);
    }
    return k;
}

void sae_bf16_use_kernel(int kernel)
{
    __atomic_store_n(&kernel_in_use, probe_kernel(kernel), __ATOMIC_RELAXED);
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

/* The tile configuration of palette 1: C tiles 0-3 (16 x 16 floats), A tiles 4-5
 * (16 rows x 16 pairs), B tiles 6-7 (16 pairs x 16 columns); every row is 64 bytes. */
typedef struct amx_config {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} amx_config;

/* One 32 x 32 block: rows r0.. of the packed rows (np pairs each), column panel bp;
 * bias added, `rows` x `cols` stored. */
AMX_FN static void amx_block(const uint32_t *a, const uint32_t *bp, int64_t np,
                             const float *bias, int64_t rows, int64_t cols, float *c, int64_t ldc)
{
    float out[AMX_MB * NR] __attribute__((aligned(64)));
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    for (int64_t p = 0; p < np; p += KP) {
        _tile_loadd(4, a + p, np * 4);
        _tile_loadd(5, a + 16 * np + p, np * 4);
        _tile_loadd(6, bp + p * NR, NR * 4);
        _tile_loadd(7, bp + p * NR + 16, NR * 4);
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
    }
    _tile_stored(0, out, NR * 4);
    _tile_stored(1, out + 16, NR * 4);
    _tile_stored(2, out + 16 * NR, NR * 4);
    _tile_stored(3, out + 16 * NR + 16, NR * 4);
    __mmask16 m0 = cols >= 16 ? 0xffff : (__mmask16)((1u << cols) - 1u);
    __mmask16 m1 = cols >= 32 ? 0xffff : cols <= 16 ? 0 : (__mmask16)((1u << (cols - 16)) - 1u);
    __m512 bv0 = _mm512_setzero_ps(), bv1 = _mm512_setzero_ps();
    if (bias != NULL) {
        bv0 = _mm512_maskz_loadu_ps(m0, bias);
        bv1 = _mm512_maskz_loadu_ps(m1, bias + 16);
    }
    for (int64_t i = 0; i < rows; i++) {
        _mm512_mask_storeu_ps(c + i * ldc, m0, _mm512_add_ps(_mm512_load_ps(out + i * NR), bv0));
        _mm512_mask_storeu_ps(c + i * ldc + 16, m1,
                              _mm512_add_ps(_mm512_load_ps(out + i * NR + 16), bv1));
    }
}

/* Column panels q0..q1 on the AMX kernel: configure the tiles of this thread, then every
 * row block of each panel (the panel stays in L1 while the rows stream from L2). */
AMX_FN static void amx_panels(const uint32_t *a, int64_t n, const uint32_t *b, int64_t l,
                              int64_t np, const float *bias, float *c, int64_t ldc, int64_t q0,
                              int64_t q1)
{
    amx_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 8; t++)
        cfg.colsb[t] = 64, cfg.rows[t] = 16;
    _tile_loadconfig(&cfg);
    for (int64_t q = q0; q < q1; q++) {
        int64_t j0 = q * NR, cols = SAE_MIN((int64_t)NR, l - j0);
        for (int64_t r0 = 0; r0 < n; r0 += AMX_MB)
            amx_block(a + r0 * np, b + j0 * np, np, bias != NULL ? bias + j0 : NULL,
                      SAE_MIN((int64_t)AMX_MB, n - r0), cols, c + r0 * ldc + j0, ldc);
    }
    _tile_release();
}

static void avx512_panels(const uint32_t *a, int64_t n, const uint32_t *b, int64_t l,
                          int64_t np, const float *bias, float *c, int64_t ldc, int64_t q0,
                          int64_t q1)
{
    for (int64_t q = q0; q < q1; q++) { /* a column panel stays in L1 over all rows */
        int64_t j0 = q * NR, cols = SAE_MIN((int64_t)NR, l - j0);
        for (int64_t r0 = 0; r0 < n; r0 += MR)
            tile_kernel(a + r0 * np, b + j0 * np, np, bias != NULL ? bias + j0 : NULL,
                        SAE_MIN((int64_t)MR, n - r0), cols, c + r0 * ldc + j0, ldc);
    }
}

/* Column panels q0..q1 on the kernel in use. */
static void panel_range(int kernel, const uint32_t *a, const float *ascale, int64_t n,
                        const uint32_t *b, const float *bscale, int64_t l, int64_t np,
                        const float *bias, float *c, int64_t ldc, int64_t q0, int64_t q1)
{
    if (kernel == SAE_BF16_AMX)
        amx_panels(a, n, b, l, np, bias, c, ldc, q0, q1);
    else if (kernel == SAE_BF16_AVX512)
        avx512_panels(a, n, b, l, np, bias, c, ldc, q0, q1);
    else
        sae_i16_panels(a, ascale, n, b, bscale, l, np, bias, c, ldc, q0, q1);
}

void sae_bf16_scores(const uint32_t *a, const float *ascale, int64_t n, const uint32_t *b,
                     const float *bscale, int64_t l, int64_t k, const float *bias, float *c,
                     int64_t ldc)
{
    panel_range(sae_bf16_kernel(), a, ascale, n, b, bscale, l, sae_bf16_pairs(k), bias, c, ldc,
                0, (l + NR - 1) / NR);
}
#else
int sae_bf16_kernel(void) { return SAE_BF16_NONE; }

void sae_bf16_use_kernel(int kernel) { (void)kernel; }

void sae_bf16_scores(const uint32_t *a, const float *ascale, int64_t n, const uint32_t *b,
                     const float *bscale, int64_t l, int64_t k, const float *bias, float *c,
                     int64_t ldc)
{
    (void)a, (void)ascale, (void)n, (void)b, (void)bscale, (void)l, (void)k;
    (void)bias, (void)c, (void)ldc;
}
#endif
