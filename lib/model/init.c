/* Deterministic parameter initialisation from (model_seed, latent index).
 * Decoder rows: Gaussian directions scaled to decoder_init_norm. Encoder: the decoder's
 * transpose (Conerly et al. 2024; Gao et al. 2024 "tied init") or independent rows of the
 * same norm. Biases 0; JumpReLU thresholds jumprelu_init_threshold; Gated r_mag = 0. */
#include "model/model_internal.h"

#include "linalg/linalg.h"
#include "rng/rng.h"

#include <string.h>

/* Row of d Gaussian values scaled to Euclidean norm `norm`; stream (seed, index, INIT). */
static void random_row(float *row, int64_t d, uint64_t seed, uint64_t index, double norm)
{
    sae_rng r;
    sae_rng_init(&r, seed, index, SAE_STREAM_INIT);
    double s = 0.0;
    for (int64_t i = 0; i < d; i++) {
        double g = sae_rng_normal(&r);
        row[i] = (float)g;
        s += g * g;
    }
    double scale = s > 0.0 ? norm / sqrt(s) : 0.0;
    if (s == 0.0)
        row[0] = (float)norm; /* probability zero, but keep the row usable */
    for (int64_t i = 0; i < d && s > 0.0; i++)
        row[i] = (float)(row[i] * scale);
}

void sae_model_init_params(sae_model *m)
{
    uint64_t seed = (uint64_t)sae_cfg_i64(m->cfg, SAE_MODEL_SEED);
    double norm = sae_cfg_f64(m->cfg, SAE_MODEL_DECODER_INIT_NORM);
    int transpose = (int)sae_cfg_i64(m->cfg, SAE_MODEL_INIT_TRANSPOSE);
    int64_t d = m->d, l = m->n_latents;
    memset(m->params, 0, (size_t)m->lay.total * sizeof(float));
    for (int64_t j = 0; j < l; j++)
        random_row(m->w_dec + j * d, d, seed, (uint64_t)j, norm);
    if (!m->tied) {
        for (int64_t j = 0; j < l; j++) {
            if (transpose)
                memcpy(m->w_enc_t + j * d, m->w_dec + j * d, (size_t)d * sizeof(float));
            else
                random_row(m->w_enc_t + j * d, d, seed, (uint64_t)(l + j), norm);
        }
    }
    if (m->threshold != NULL) {
        float t = (float)sae_cfg_f64(m->cfg, SAE_MODEL_JUMPRELU_INIT_THRESHOLD);
        for (int64_t j = 0; j < l; j++)
            m->threshold[j] = t;
    }
    m->batch_threshold = 0.0;
    m->batch_threshold_valid = 0;
}
