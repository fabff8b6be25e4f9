/* CBLAS wrapper: the one place sizes become BLAS ints, and where a large product is split
 * into fixed blocks for the caller's threads. */
#include "linalg.h"
#include "linalg/lanes.h"

#include "core/core.h"
#include "core/parallel.h"

#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <string.h>

/* Weak reference: non-NULL only when OpenBLAS is loaded in the process (as in
 * lib/core/version.c). */
extern int openblas_get_num_threads(void) __attribute__((weak));

/* A split product has blocks of at least GEMM_MIN_BLOCK_WORK multiply-adds and
 * GEMM_MIN_EXTENT rows or columns (each BLAS block packs the whole other operand again: on
 * the medium decoder product, 256 x 256 x 4096, eight blocks cost one thread 10-15 %, two
 * blocks 2-4 %; the small kernel packs nothing of A, so its blocks go down to
 * GEMM_MIN_EXTENT_SMALL, which splits the narrow weight gradients of toy shapes), at most
 * GEMM_MAX_BLOCKS of them (enough to balance 2-8 threads when some are slowed down), with
 * boundaries on multiples of GEMM_ALIGN (the kernels' tiles). */
#define GEMM_MIN_BLOCK_WORK 2097152.0
#define GEMM_MIN_EXTENT 128
#define GEMM_MIN_EXTENT_SMALL 32
#define GEMM_MAX_BLOCKS 8
#define GEMM_ALIGN 16

static int fits(int64_t v) { return v >= 0 && v <= INT_MAX; }

static int sizes_fit(int64_t m, int64_t n, int64_t k, int64_t lda, int64_t ldb, int64_t ldc)
{
    return fits(m) && fits(n) && fits(k) && fits(lda) && fits(ldb) && fits(ldc);
}

/* One product (sizes checked, m, n >= 1): in the small kernel when `small`, else in the
 * BLAS. With row0, C = row0 + alpha op(A) op(B) (the kernel adds row0 in its store; for the
 * BLAS, C's rows are set to row0 and beta is 1). */
static void product(int small, int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
                    float alpha, const float *a, int64_t lda, const float *b, int64_t ldb,
                    float beta, float *c, int64_t ldc, const float *row0)
{
    if (small) {
        sae_gemm_small(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, row0, 0);
        return;
    }
    if (row0 != NULL) {
        for (int64_t r = 0; r < m; r++)
            memcpy(c + r * ldc, row0, (size_t)n * sizeof(float));
        beta = 1.0f;
    }
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, (int)m, (int)n, (int)k, alpha, a, (int)lda, b,
                (int)ldb, beta, c, (int)ldc);
}

int32_t sae_gemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                 const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
                 int64_t ldc)
{
    if (!sizes_fit(m, n, k, lda, ldb, ldc))
        return SAE_E_SIZE;
    if (m == 0 || n == 0)
        return SAE_OK;
    product(sae_gemm_small_fits(trans_b, m, n, k), trans_a, trans_b, m, n, k, alpha, a, lda, b,
            ldb, beta, c, ldc, NULL);
    return SAE_OK;
}

int sae_blas_threads(void)
{
    return openblas_get_num_threads != NULL ? openblas_get_num_threads() : 0;
}

int64_t sae_gemm_block(int trans_b, int64_t m, int64_t n, int64_t k)
{
    int64_t dim = n > m ? n : m;
    double work = (double)m * (double)n * (double)k;
    int small = sae_gemm_small_fits(trans_b, m, n, k);
    if (!(small || sae_blas_threads() == 1) || work < 2.0 * GEMM_MIN_BLOCK_WORK)
        return dim;
    int64_t extent = small ? GEMM_MIN_EXTENT_SMALL : GEMM_MIN_EXTENT;
    double nb = SAE_MIN(work / GEMM_MIN_BLOCK_WORK,
                        (double)SAE_MIN((int64_t)GEMM_MAX_BLOCKS, dim / extent));
    if (nb < 2.0)
        return dim;
    int64_t blocks = (int64_t)nb, bs = (dim + blocks - 1) / blocks;
    return (bs + GEMM_ALIGN - 1) / GEMM_ALIGN * GEMM_ALIGN;
}

int32_t sae_gemm_blocked(int nt, int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
                         float alpha, const float *a, int64_t lda, const float *b, int64_t ldb,
                         float beta, float *c, int64_t ldc, const float *row0)
{
    if (!sizes_fit(m, n, k, lda, ldb, ldc))
        return SAE_E_SIZE;
    if (m == 0 || n == 0)
        return SAE_OK;
    int small = sae_gemm_small_fits(trans_b, m, n, k); /* decided on the whole product */
    int by_cols = n > m; /* split the longer side of C; every block keeps the whole k */
    int64_t dim = by_cols ? n : m, bs = sae_gemm_block(trans_b, m, n, k), nb = (dim + bs - 1) / bs;
    /* threads only for several blocks (OpenMP is not entered for one) */
    SAE_FOR_THREADS_GREEDY(nb > 1 ? nt : 1, q, nb, {
        int64_t o = q * bs, len = SAE_MIN(bs, dim - o);
        int64_t bm = by_cols ? m : len, bn = by_cols ? len : n;
        const float *ab = by_cols ? a : a + (trans_a ? o : o * lda);
        const float *bb = by_cols ? b + (trans_b ? o * ldb : o) : b;
        float *cb = by_cols ? c + o : c + o * ldc;
        product(small, trans_a, trans_b, bm, bn, k, alpha, ab, lda, bb, ldb, beta, cb, ldc,
                row0 != NULL ? row0 + (by_cols ? o : 0) : NULL);
    });
    return SAE_OK;
}

SAE_LANES_CLONES /* the encoder's row norms every TopK-family step: same bits at any width */
double sae_dot_f64(const float *x, const float *y, int64_t n)
{
    return sae_dotd_lanes(x, y, n);
}

double sae_norm_f64(const float *x, int64_t n) { return sqrt(sae_dot_f64(x, x, n)); }
