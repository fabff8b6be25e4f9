/* Decoder and activation regularisers as pure functions on raw arrays, so the trainer
 * step can call them without knowing their details and tests can check them against
 * finite differences. Each reads its coefficient and options from the trainer config;
 * a coefficient of 0 makes it return 0 without touching anything. */
#ifndef SAE_LIB_TRAIN_REGULARISERS_H
#define SAE_LIB_TRAIN_REGULARISERS_H

#include <stddef.h>
#include <stdint.h>

#include <sae/core.h>

/* Floats of scratch the orthogonality penalty needs for these sizes (allocate once). */
size_t sae_reg_ortho_work_floats(const sae_config *trainer_cfg, int64_t n_latents, int64_t d);

/* Orthogonality penalty on decoder rows W (n_latents x d, row stride ldw).
 * Adds coeff * dPenalty/dW into G (same shape, stride ldg) and returns coeff * Penalty.
 * `step` seeds the random chunking (mode "chunked"), so results are reproducible. */
double sae_reg_ortho(const sae_config *trainer_cfg, const float *w, int64_t n_latents, int64_t d,
                     int64_t ldw, uint64_t step, float *g, int64_t ldg, float *work);

/* Floats of scratch the low-activation penalty needs for a batch of n rows. */
size_t sae_reg_lowact_work_floats(const sae_config *trainer_cfg, int64_t n, int64_t n_latents,
                                  int64_t d);

/* Low-activation penalty of the Broken Latents work, for tied SAEs.
 * x: n x d inputs as the encoder sees them (after any pre-encoder bias), stride ldx;
 * w: n_latents x d latent directions (tied: encoder = decoder), stride ldw;
 * pre: n x n_latents pre-activations, z: n x n_latents activations (stride n_latents).
 * Adds coeff * gradients into g_pre (n x n_latents, the gradient w.r.t. pre-activations)
 * and g_w (n_latents x d, stride ldg), and returns coeff * Penalty. */
double sae_reg_lowact(const sae_config *trainer_cfg, const float *x, int64_t n, int64_t d,
                      int64_t ldx, const float *w, int64_t n_latents, int64_t ldw,
                      const float *pre, const float *z, float *g_pre, float *g_w, int64_t ldg,
                      float *work);

#endif
