/* CBLAS wrapper: the one place sizes become BLAS ints. */
#include "linalg.h"

#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <sae/core.h>

static int fits(int64_t v) { return v >= 0 && v <= INT_MAX; }

int32_t sae_gemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                 const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
                 int64_t ldc)
{
    if (!fits(m) || !fits(n) || !fits(k) || !fits(lda) || !fits(ldb) || !fits(ldc))
        return SAE_E_SIZE;
    if (m == 0 || n == 0)
        return SAE_OK;
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, (int)m, (int)n, (int)k, alpha, a, (int)lda,
                b, (int)ldb, beta, c, (int)ldc);
    return SAE_OK;
}

double sae_dot_f64(const float *x, const float *y, int64_t n)
{
    double s = 0.0;
    for (int64_t i = 0; i < n; i++)
        s += (double)x[i] * (double)y[i];
    return s;
}

double sae_norm_f64(const float *x, int64_t n) { return sqrt(sae_dot_f64(x, x, n)); }
