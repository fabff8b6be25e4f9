/* Dense kernels: CBLAS behind int64 sizes checked before conversion to int. */
#ifndef SAE_LIB_LINALG_H
#define SAE_LIB_LINALG_H

#include <stdint.h>

/* Row-major C = alpha * op(A) * op(B) + beta * C, op(A) is m x k, op(B) is k x n.
 * Returns 0, or SAE_E_SIZE when a dimension does not fit a BLAS int. */
int32_t sae_gemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                 const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
                 int64_t ldc);

/* Sum in double of x[i]*y[i]. */
double sae_dot_f64(const float *x, const float *y, int64_t n);
/* Euclidean norm accumulated in double. */
double sae_norm_f64(const float *x, int64_t n);

#endif
