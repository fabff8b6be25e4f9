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
 * `step` seeds the random chunking (mode "chunked"), so results are reproducible.
 * The gradient of each row is orthogonal to that row (it goes through the normalisation),
 * so it commutes with a unit-norm decoder projection. work: sae_reg_ortho_work_floats
 * floats, aligned for int32 (the chunked mode keeps a permutation there). */
double sae_reg_ortho(const sae_config *trainer_cfg, const float *w, int64_t n_latents, int64_t d,
                     int64_t ldw, uint64_t step, float *g, int64_t ldg, float *work);

/* 1/|row|, or 0 for a row without direction (norm below 1e-20 or not finite): such rows
 * are skipped by both regularisers. The plural form fills inv (rows entries) and returns
 * the number of usable rows. */
float sae_reg_inverse_norm(const float *row, int64_t d);
int64_t sae_reg_inverse_norms(const float *a, int64_t rows, int64_t d, int64_t ld, float *inv);

/* Helpers of the orthogonality penalty, exposed for tests and callers that want the
 * same numbers (docs/regularisers.md).
 * sae_reg_ortho_shape: f(c) of an ortho_shape value (sae_ortho_shape), f'(c) in *deriv.
 * sae_reg_ortho_chunks: chunks the chunked mode splits n_valid usable latents into (balanced
 *   sizes, differing by at most one; the largest in *max_size when not NULL).
 * sae_reg_ortho_partition: the usable (non-zero) rows of W in the random order of this
 *   (seed, step), written to perm (n_latents entries); returns how many there are.
 * sae_reg_ortho_chunk_range: chunk c of that order is perm[start, start + size). */
double sae_reg_ortho_shape(int32_t shape, double sharp_eps, double c, double *deriv);
int64_t sae_reg_ortho_chunks(int64_t n_valid, int64_t chunk, int64_t *max_size);
int64_t sae_reg_ortho_partition(const float *w, int64_t n_latents, int64_t d, int64_t ldw,
                                uint64_t seed, uint64_t step, int32_t *perm);
void sae_reg_ortho_chunk_range(int64_t n_valid, int64_t n_chunks, int64_t c, int64_t *start,
                               int64_t *size);

/* Floats of scratch the low-activation penalty needs for a batch of n rows. */
size_t sae_reg_lowact_work_floats(const sae_config *trainer_cfg, int64_t n, int64_t n_latents,
                                  int64_t d);

/* Low-activation penalty of the Broken Latents work, for tied SAEs.
 * x: n x d inputs as the encoder sees them (after any pre-encoder bias), stride ldx;
 * w: n_latents x d latent directions (tied: encoder = decoder), stride ldw;
 * pre: n x n_latents pre-activations, z: n x n_latents activations (stride n_latents).
 * Adds coeff * gradients into g_pre (n x n_latents, the gradient w.r.t. pre-activations)
 * and g_w (n_latents x d, stride ldg), and returns coeff * Penalty.
 * P = (1/n) sum_b sum_i h(z_bi) cos^2(x_b, w_i), h(z) = 1 - z/tau on 0 < z < tau, else 0
 * (docs/regularisers.md). The penalty reads z only: g_pre receives dP/dz where z > 0,
 * which is dP/dpre for ReLU, TopK, BatchTopK and JumpReLU (z = pre where z > 0); `pre`
 * is accepted for architectures where that would not hold and is unused today.
 * Every n rows of the batch must be passed in one call (the mean is over n). */
double sae_reg_lowact(const sae_config *trainer_cfg, const float *x, int64_t n, int64_t d,
                      int64_t ldx, const float *w, int64_t n_latents, int64_t ldw,
                      const float *pre, const float *z, float *g_pre, float *g_w, int64_t ldg,
                      float *work);

#endif
