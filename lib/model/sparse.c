/* Sparse codes: gathering decoder rows and the column view (see sparse.h). */
#include "model/sparse.h"

#include <string.h>

/* ---- gather / transpose --------------------------------------------------------------- */

void sae_gather_rows(const float *w, int64_t d, const int32_t *idx, const float *val, int64_t cnt,
                     float *restrict out) /* out never overlaps the rows it sums */
{
    /* four rows per pass (one load and store of out for four rows); the additions keep the
     * order of one row at a time, so the bits do not depend on the grouping */
    int64_t a = 0;
    for (; a + 4 <= cnt; a += 4) {
        const float *w0 = w + (int64_t)idx[a] * d, *w1 = w + (int64_t)idx[a + 1] * d;
        const float *w2 = w + (int64_t)idx[a + 2] * d, *w3 = w + (int64_t)idx[a + 3] * d;
        float v0 = val[a], v1 = val[a + 1], v2 = val[a + 2], v3 = val[a + 3];
        for (int64_t i = 0; i < d; i++)
            out[i] = out[i] + v0 * w0[i] + v1 * w1[i] + v2 * w2[i] + v3 * w3[i];
    }
    for (; a < cnt; a++) {
        const float *wr = w + (int64_t)idx[a] * d;
        float v = val[a];
        for (int64_t i = 0; i < d; i++)
            out[i] += v * wr[i];
    }
}

void sae_codes_transpose(const int64_t *row_ptr, const int32_t *idx, int64_t n_rows,
                         int64_t n_latents, int64_t *col_ptr, int64_t *ent, int32_t *erow)
{
    memset(col_ptr, 0, (size_t)(n_latents + 1) * sizeof *col_ptr);
    int64_t nnz = row_ptr[n_rows];
    for (int64_t e = 0; e < nnz; e++)
        col_ptr[idx[e] + 1]++;
    for (int64_t j = 0; j < n_latents; j++)
        col_ptr[j + 1] += col_ptr[j];
    /* fill in row order so each column lists its rows ascending; col_ptr doubles as cursor */
    for (int64_t r = 0; r < n_rows; r++) {
        for (int64_t e = row_ptr[r]; e < row_ptr[r + 1]; e++) {
            int64_t at = col_ptr[idx[e]]++;
            ent[at] = e;
            erow[at] = (int32_t)r;
        }
    }
    for (int64_t j = n_latents; j > 0; j--)
        col_ptr[j] = col_ptr[j - 1];
    col_ptr[0] = 0;
}
