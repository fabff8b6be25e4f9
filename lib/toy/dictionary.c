/* Ground-truth dictionaries: the N true feature directions (rows of t->dict). */
#include "toy_internal.h"

#include "linalg/linalg.h"

#include <string.h>

/* Row j: i.i.d. standard normal entries from stream (seed, j, DICTIONARY), normalised.
 * The direction is uniform on the sphere (Muller 1959). A zero draw is impossible in
 * practice; it is redrawn to keep the rows unit. */
static void dict_gaussian(sae_toy *t)
{
    for (int64_t j = 0; j < t->n; j++) {
        float *row = t->dict + j * t->d;
        sae_rng r;
        sae_rng_init(&r, t->seed, (uint64_t)j, SAE_STREAM_DICTIONARY);
        double norm;
        do {
            for (int64_t k = 0; k < t->d; k++)
                row[k] = (float)sae_rng_normal(&r);
            norm = sae_norm_f64(row, t->d);
        } while (norm < 1e-12);
        for (int64_t k = 0; k < t->d; k++)
            row[k] = (float)(row[k] / norm);
    }
}

int32_t sae_toy_dict_build(sae_toy *t)
{
    dict_gaussian(t);
    return SAE_OK;
}
