/* int16 score products for lib/linalg/bf16.c (see lib/linalg/i16.c); private to lib/linalg. */
#ifndef SAE_LIB_LINALG_I16_H
#define SAE_LIB_LINALG_I16_H

#include "linalg/bf16.h"

#include <stdint.h>

#define SAE_HAVE_I16_KERNEL SAE_HAVE_BF16_KERNEL

/* Quantise n rows of length k into panels of `tile` rows, np pair words per row (rows past
 * n zero); scale[r] (n entries) and, when resid is not NULL, resid[r] = ||row - scale q||. */
void sae_i16_pack(const float *x, int64_t n, int64_t k, int64_t ldx, int64_t np, int64_t tile,
                  uint32_t *out, double *resid, float *scale);

/* Scores of column panels q0..q1 (SAE_BF16_NR columns each) against n packed rows (panels
 * of SAE_BF16_MR rows): c[r][j] = asc[r] bsc[j] (q_r . q_j) + bias[j] (bias may be NULL). */
void sae_i16_panels(const uint32_t *a, const float *asc, int64_t n, const uint32_t *b,
                    const float *bsc, int64_t l, int64_t np, const float *bias, float *c,
                    int64_t ldc, int64_t q0, int64_t q1);

#endif
