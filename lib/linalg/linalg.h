/* Dense kernels: CBLAS behind int64 sizes checked before conversion to int. */
#ifndef SAE_LIB_LINALG_H
#define SAE_LIB_LINALG_H

#include <stdint.h>

/* Row-major C = alpha * op(A) * op(B) + beta * C, op(A) is m x k, op(B) is k x n.
 * Returns 0, or SAE_E_SIZE when a dimension does not fit a BLAS int. */
int32_t sae_gemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                 const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
                 int64_t ldc);

/* Threads of the BLAS in this process: OpenBLAS's pool size, 0 when unknown (another BLAS). */
int sae_blas_threads(void);

/* Rows (or columns, when n > m) of C per block of sae_gemm_blocked: a function of the
 * shape only, never of a thread count, so every thread count runs the same calls on the
 * same blocks and gets the same bits. The whole of the longer side (no split) unless each
 * block runs on one thread (the small kernel, or a BLAS known to run one thread per call,
 * sae_blas_threads() == 1: a threaded BLAS already parallelises each call, and two pools on
 * the same cores only compete) and the product is large enough to be worth splitting. */
int64_t sae_gemm_block(int trans_b, int64_t m, int64_t n, int64_t k);

/* sae_gemm over blocks of sae_gemm_block() rows or columns of C (each keeps the whole k
 * sum), the blocks run on up to nt OpenMP threads. With row0 != NULL (n floats), C's rows
 * are first set to row0 and beta is taken as 1: C = row0 + alpha op(A) op(B). */
int32_t sae_gemm_blocked(int nt, int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
                         float alpha, const float *a, int64_t lda, const float *b, int64_t ldb,
                         float beta, float *c, int64_t ldc, const float *row0);

/* Small products in libsae's own kernel (lib/linalg/gemm_small.c): 1 when this CPU runs
 * its vector tiles (AVX-512F), and whether a product of this shape goes there instead of
 * the BLAS (small enough, and for op(B) = B^T, k small enough to repack B on the stack). */
int sae_gemm_small_available(void);
int sae_gemm_small_fits(int trans_b, int64_t m, int64_t n, int64_t k);
/* The product of sae_gemm in the small kernel (caller: m, n >= 1 and, with trans_b, k within
 * sae_gemm_small_fits). With row0 != NULL (n floats) C = row0 + alpha op(A) op(B) and C is
 * not read (the bits of setting C's rows to row0 and taking beta = 1). portable = 1 runs
 * its scalar tiles (fmaf), the same bits as the vector tiles, on any CPU (tests; slow). */
void sae_gemm_small(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                    const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                    float *c, int64_t ldc, const float *row0, int portable);

/* C += op(A) B in the small kernel, each element's chain of fused multiply-adds going on
 * from C's value over p < k as if the product's k had gone on: two calls over k1 and then
 * k2 rows of B give the bits of one call over k1 + k2 with beta 0 (on C = 0 first).
 * Caller: m, n >= 1, n within sae_gemm_small_fits. */
void sae_gemm_small_chain(int trans_a, int64_t m, int64_t n, int64_t k, const float *a,
                          int64_t lda, const float *b, int64_t ldb, float *c, int64_t ldc,
                          int portable);

/* The small kernel's vector tiles exist in this build (x86-64 GCC on Linux, no sanitizer):
 * then, on a CPU with AVX-512F (sae_gemm_small_available), one tile of 8 rows x up to 32
 * columns of C = alpha A B + (row0 or beta C), A(r, p) = a[r sai + p sap], B(p, j) =
 * b[p ldb + j] for j < nr, each element one chain of fused multiply-adds over p < k: the
 * small kernel's own tiles, for callers that keep a tile's operands in cache (train/). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__) && \
    !defined(__SANITIZE_ADDRESS__) && !defined(SAE_NO_CLONES)
#  define SAE_SMALL_TILES 1
void sae_gemm_small_tile8(const float *a, int64_t sai, int64_t sap, const float *b, int64_t ldb,
                          int64_t k, float alpha, float beta, const float *row0, int nr, float *c,
                          int64_t ldc);
#endif

/* Sum in double of x[i]*y[i], in the fixed lanes of lanes.h (sae_dotd_lanes). */
double sae_dot_f64(const float *x, const float *y, int64_t n);
/* Euclidean norm accumulated in double. */
double sae_norm_f64(const float *x, int64_t n);

#endif
