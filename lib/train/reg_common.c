/* Shared by the regularisers: inverse row norms with one definition of "zero row". */
#include "train/regularisers.h"

#include <math.h>

#include "linalg/linalg.h"

/* Below this norm a row has no direction: cosines with it are undefined. */
#define REG_MIN_NORM 1e-20

float sae_reg_inverse_norm(const float *row, int64_t d)
{
    double nrm = sae_norm_f64(row, d);
    return nrm >= REG_MIN_NORM && isfinite(nrm) ? (float)(1.0 / nrm) : 0.0f;
}

int64_t sae_reg_inverse_norms(const float *a, int64_t rows, int64_t d, int64_t ld, float *inv)
{
    int64_t usable = 0;
    for (int64_t i = 0; i < rows; i++) {
        inv[i] = sae_reg_inverse_norm(a + i * ld, d);
        usable += inv[i] != 0.0f;
    }
    return usable;
}
