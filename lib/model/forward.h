/* Forward-pass pieces shared by sae_model_encode and the trainer. */
#ifndef SAE_LIB_MODEL_FORWARD_H
#define SAE_LIB_MODEL_FORWARD_H

#include "model/model_internal.h"

/* xc (n x d, contiguous) = x - b_dec when the model subtracts its pre-encoder bias, else x. */
void sae_fwd_center(const sae_model *m, const float *x, int64_t n, int64_t ldx, float *xc);
/* s (n x n_latents, stride lds) = xc W_enc^T + (add_bias ? b_enc : 0), in the fixed
 * blocks of sae_gemm_blocked on up to nt threads (the same bits for every nt). */
int32_t sae_fwd_scores(const sae_model *m, int nt, const float *xc, int64_t ldxc, int64_t n,
                       float *s, int64_t lds, int add_bias);
/* Gated magnitude pre-activation of latent j from its raw score (no bias). */
static inline float sae_gated_mag_pre(const sae_model *m, int64_t j, float score)
{
    return expf(m->r_mag[j]) * score + m->b_mag[j];
}

#endif
