/* Small products without the BLAS: C = alpha op(A) op(B) + beta C in register tiles of
 * SMALL_MR rows x SMALL_NR columns, each element of C one chain of fused multiply-adds over
 * k in order, so the bits do not depend on how C is split into tiles or blocks. At toy
 * shapes (d = 32, 128 latents, 1,024 rows) a BLAS call spends an eighth of its time packing
 * operands that fit in L1/L2 anyway, and OPENBLAS_CORETYPE may hold it to 8-float vectors;
 * this kernel reads A and B in place (only op(B) = B^T is repacked, a panel at a time) in
 * 16-float vectors. */
#include "linalg/linalg.h"

#include "core/core.h"

#include <math.h>

#define SMALL_MR 8  /* rows of C per tile: 16 accumulators with two vectors per row */
#define SMALL_NR 32 /* columns of C per tile */
/* The columns of C, n (or k for op(B) = B^T, whose panels of k x SMALL_NR floats are
 * repacked on the stack: 16 KB), stay within SMALL_MAX_COLS. Measured against OpenBLAS with
 * one thread (docs/performance.md): faster at d <= 128 up to the largest shapes tried,
 * slower at d = 256, where the BLAS's cache blocking over k pays. */
#define SMALL_MAX_COLS 128
/* Against a threaded BLAS, which runs one product on all its threads while this kernel runs
 * on the caller's, only products up to this many multiply-adds (two OpenBLAS threads won
 * from about 2^27 on; below 2^23 they are slower than one). */
#define SMALL_MAX_WORK_THREADED 67108864.0

/* A(i, p) = a[i * sai + p * sap], B(p, j) = b[p * ldb + j - b_col0]. */
typedef struct small_op {
    const float *a;
    int64_t sai, sap;
    const float *b;
    int64_t ldb, b_col0, k;
    float alpha, beta;
    float *c;
    int64_t ldc;
    const float *row0; /* C = row0 + alpha op(A) op(B) when set (C not read) */
    int chain;         /* the chains start from C's values (alpha 1, beta 0, no row0) */
} small_op;

static inline float finish(const small_op *g, float acc, const float *c, int64_t j)
{
    float o = g->alpha * acc;
    if (g->row0 != NULL)
        return o + g->row0[j];
    return g->beta != 0.0f ? o + g->beta * *c : o; /* beta 0: C is not read (as in the BLAS) */
}

/* Rows [i0, i0 + mr) x columns [j0, j0 + nr) of C, one element at a time. */
static void tile_scalar(const small_op *g, int64_t i0, int mr, int64_t j0, int nr)
{
    for (int r = 0; r < mr; r++)
        for (int j = 0; j < nr; j++) {
            const float *ap = g->a + (i0 + r) * g->sai, *bp = g->b + (j0 + j - g->b_col0);
            float *cp = g->c + (i0 + r) * g->ldc + j0 + j;
            float acc = g->chain ? *cp : 0.0f;
            for (int64_t p = 0; p < g->k; p++)
                acc = fmaf(ap[p * g->sap], bp[p * g->ldb], acc);
            *cp = finish(g, acc, cp, j0 + j);
        }
}

#if SAE_SMALL_TILES
#  define SMALL_HAVE_AVX512 1
#  include <immintrin.h>
#  define AVX512_FN __attribute__((target("avx512f")))

/* The tile of tile_scalar in 16-float vectors (the same operations per element: the same
 * bits). The accumulators are named variables: as an array GCC keeps them on the stack. */
#  define ACC_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)
#  define ACC_DECL(r)                                                                        \
      __m512 c0_##r = chain ? _mm512_maskz_loadu_ps(m0, c + r * ldc) : _mm512_setzero_ps(),  \
             c1_##r = chain ? _mm512_maskz_loadu_ps(m1, c + r * ldc + 16) : _mm512_setzero_ps();
#  define ACC_FMA(r)                                                                         \
      {                                                                                      \
          __m512 av = _mm512_set1_ps(ap[r * sai]);                                           \
          c0_##r = _mm512_fmadd_ps(av, b0, c0_##r);                                          \
          c1_##r = _mm512_fmadd_ps(av, b1, c1_##r);                                          \
      }
#  define ACC_STORE(r) store_row(c + r * ldc, ctx, m0, m1, c0_##r, c1_##r);

/* What a tile's store needs besides the accumulators. */
typedef struct store_ctx {
    float alpha, beta;
    const float *row0;
} store_ctx;

AVX512_FN static inline void store_row(float *cp, const store_ctx *g, __mmask16 m0, __mmask16 m1,
                                       __m512 acc0, __m512 acc1)
{
    __m512 alpha = _mm512_set1_ps(g->alpha), beta = _mm512_set1_ps(g->beta), o0 = acc0, o1 = acc1;
    if (g->alpha != 1.0f) /* 1 x: the same bits */
        o0 = _mm512_mul_ps(alpha, acc0), o1 = _mm512_mul_ps(alpha, acc1);
    if (g->row0 != NULL) {
        o0 = _mm512_add_ps(o0, _mm512_maskz_loadu_ps(m0, g->row0));
        o1 = _mm512_add_ps(o1, _mm512_maskz_loadu_ps(m1, g->row0 + 16));
    } else if (g->beta != 0.0f) {
        o0 = _mm512_add_ps(o0, _mm512_mul_ps(beta, _mm512_maskz_loadu_ps(m0, cp)));
        o1 = _mm512_add_ps(o1, _mm512_mul_ps(beta, _mm512_maskz_loadu_ps(m1, cp + 16)));
    }
    _mm512_mask_storeu_ps(cp, m0, o0);
    _mm512_mask_storeu_ps(cp + 16, m1, o1);
}

static inline __mmask16 lanes_lo(int nr) { return nr >= 16 ? 0xffff : (__mmask16)((1u << nr) - 1u); }
static inline __mmask16 lanes_hi(int nr)
{
    return nr >= 32 ? 0xffff : nr > 16 ? (__mmask16)((1u << (nr - 16)) - 1u) : 0;
}

/* Eight rows of tile_at; chain is a constant in each caller below, so neither
 * version tests it. */
AVX512_FN static inline __attribute__((always_inline)) void
tile8(const float *a, int64_t sai, int64_t sap, const float *b, int64_t ldb, int64_t k,
      const store_ctx *ctx, const int chain, __mmask16 m0, __mmask16 m1, float *c, int64_t ldc)
{
    const float *ap = a, *bp = b;
    ACC_ROWS(ACC_DECL)
    for (int64_t p = 0; p < k; p++, ap += sap, bp += ldb) {
        __m512 b0 = _mm512_maskz_loadu_ps(m0, bp), b1 = _mm512_maskz_loadu_ps(m1, bp + 16);
        ACC_ROWS(ACC_FMA)
    }
    ACC_ROWS(ACC_STORE)
}

/* Rows [0, mr <= 8) x columns [0, nr <= 32) of C = alpha A B + (row0 or beta C), A(r, p) =
 * a[r sai + p sap], B(p, j) = b[p ldb + j]; with chain the chains start from C. */
AVX512_FN static void tile_at(const float *a, int64_t sai, int64_t sap, const float *b,
                              int64_t ldb, int64_t k, float alpha, float beta, const float *row0,
                              int chain, int mr, int nr, float *c, int64_t ldc)
{
    __mmask16 m0 = lanes_lo(nr), m1 = lanes_hi(nr);
    store_ctx st = {alpha, beta, row0};
    if (mr == SMALL_MR) {
        if (chain)
            tile8(a, sai, sap, b, ldb, k, &st, 1, m0, m1, c, ldc);
        else
            tile8(a, sai, sap, b, ldb, k, &st, 0, m0, m1, c, ldc);
        return;
    }
    for (int r = 0; r < mr; r++) { /* fewer rows: one at a time */
        const float *a1 = a + r * sai, *b1p = b;
        __m512 c0 = chain ? _mm512_maskz_loadu_ps(m0, c + r * ldc) : _mm512_setzero_ps();
        __m512 c1 = chain ? _mm512_maskz_loadu_ps(m1, c + r * ldc + 16) : _mm512_setzero_ps();
        for (int64_t p = 0; p < k; p++, a1 += sap, b1p += ldb) {
            __m512 av = _mm512_set1_ps(*a1);
            c0 = _mm512_fmadd_ps(av, _mm512_maskz_loadu_ps(m0, b1p), c0);
            c1 = _mm512_fmadd_ps(av, _mm512_maskz_loadu_ps(m1, b1p + 16), c1);
        }
        store_row(c + r * ldc, &st, m0, m1, c0, c1);
    }
}

AVX512_FN void sae_gemm_small_tile8(const float *a, int64_t sai, int64_t sap, const float *b,
                                    int64_t ldb, int64_t k, float alpha, float beta,
                                    const float *row0, int nr, float *c, int64_t ldc)
{
    tile_at(a, sai, sap, b, ldb, k, alpha, beta, row0, 0, SMALL_MR, nr, c, ldc);
}

AVX512_FN static void tile_avx512(const small_op *g, int64_t i0, int mr, int64_t j0, int nr)
{
    tile_at(g->a + i0 * g->sai, g->sai, g->sap, g->b + (j0 - g->b_col0), g->ldb, g->k, g->alpha,
            g->beta, g->row0 != NULL ? g->row0 + j0 : NULL, g->chain, mr, nr,
            g->c + i0 * g->ldc + j0, g->ldc);
}
#else
#  define SMALL_HAVE_AVX512 0
#endif

int sae_gemm_small_available(void)
{
#if SMALL_HAVE_AVX512
    return __builtin_cpu_supports("avx512f") != 0;
#else
    return 0;
#endif
}

int sae_gemm_small_fits(int trans_b, int64_t m, int64_t n, int64_t k)
{
    if (!sae_gemm_small_available() || (trans_b ? k : n) > SMALL_MAX_COLS)
        return 0;
    return sae_blas_threads() == 1 || (double)m * (double)n * (double)k <= SMALL_MAX_WORK_THREADED;
}

typedef void (*tile_fn)(const small_op *g, int64_t i0, int mr, int64_t j0, int nr);

/* All tiles of rows [0, m) and columns [j0, j0 + nr) of C. */
static void tiles(tile_fn fn, const small_op *g, int64_t m, int64_t j0, int nr)
{
    for (int64_t i = 0; i < m; i += SMALL_MR)
        fn(g, i, (int)SAE_MIN((int64_t)SMALL_MR, m - i), j0, nr);
}

static tile_fn tile_kind(int portable)
{
#if SMALL_HAVE_AVX512
    if (!portable && sae_gemm_small_available())
        return tile_avx512;
#else
    (void)portable;
#endif
    return tile_scalar;
}

/* Every tile of C with B read in place. */
static void all_tiles(tile_fn fn, const small_op *g, int64_t m, int64_t n)
{
    for (int64_t j = 0; j < n; j += SMALL_NR)
        tiles(fn, g, m, j, (int)SAE_MIN((int64_t)SMALL_NR, n - j));
}

void sae_gemm_small_chain(int trans_a, int64_t m, int64_t n, int64_t k, const float *a,
                          int64_t lda, const float *b, int64_t ldb, float *c, int64_t ldc,
                          int portable)
{
    small_op g = {a, trans_a ? 1 : lda, trans_a ? lda : 1, b, ldb, 0, k, 1.0f, 0.0f, c, ldc, NULL, 1};
    all_tiles(tile_kind(portable), &g, m, n);
}

void sae_gemm_small(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                    const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                    float *c, int64_t ldc, const float *row0, int portable)
{
    tile_fn fn = tile_kind(portable);
    small_op g = {a, trans_a ? 1 : lda, trans_a ? lda : 1, b, ldb, 0, k, alpha, beta, c, ldc, row0, 0};
    if (!trans_b) {
        all_tiles(fn, &g, m, n);
        return;
    }
    /* op(B)(p, j) = b[j * ldb + p]: a panel of SMALL_NR columns laid out as B(p, j) */
    float panel[SMALL_MAX_COLS * SMALL_NR];
    for (int64_t j0 = 0; j0 < n; j0 += SMALL_NR) {
        int nr = (int)SAE_MIN((int64_t)SMALL_NR, n - j0);
        for (int64_t p = 0; p < k; p++)
            for (int j = 0; j < nr; j++)
                panel[p * SMALL_NR + j] = b[(j0 + j) * ldb + p];
        small_op gp = g;
        gp.b = panel;
        gp.ldb = SMALL_NR;
        gp.b_col0 = j0;
        tiles(fn, &gp, m, j0, nr);
    }
}
