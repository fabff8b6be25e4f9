/* Low-activation penalty for tied SAEs (Chanin, Till et al., "Broken Latents", LessWrong,
 * 2025). The post sketches the term as the squared cosine similarity between an input and
 * a latent's direction, charged when the latent fires at low magnitude; libsae makes it
 * precise (docs/regularisers.md):
 *
 *   P = (1/n) sum_b sum_i h(z_bi) cos^2(x_b, w_i),   h(z) = 1 - z/tau on 0 < z < tau, else 0.
 *
 * A latent that fires weakly on an input is pushed either to stop firing on it (the cosine
 * term turns its direction away) or to fire above tau (h falls as z grows), so each latent's
 * activation histogram keeps a single peak above tau. h is continuous at tau and the term
 * is 0 for latents that do not fire. */
#include "train/regularisers.h"


#include "core/core.h"
#include "linalg/linalg.h"

#include <sae/train.h>

size_t sae_reg_lowact_work_floats(const sae_config *trainer_cfg, int64_t n, int64_t n_latents,
                                  int64_t d)
{
    (void)d;
    if (sae_cfg_f64(trainer_cfg, SAE_REG_LOWACT_COEFF) == 0.0)
        return 0;
    return (size_t)n + (size_t)n_latents; /* inverse norms of the inputs and the directions */
}

/* Gradient of h(z) c^2 w.r.t. w_i, scaled by alpha: alpha h 2c inv_w (x_b inv_x - c w_i inv_w). */
static void add_direction_grad(float *g_row, double alpha, const float *x_b, double inv_x,
                               const float *w_i, double inv_w, double c, int64_t d)
{
    double a = alpha * inv_w * inv_x, b = -alpha * c * inv_w * inv_w;
    for (int64_t k = 0; k < d; k++)
        g_row[k] += (float)(a * (double)x_b[k] + b * (double)w_i[k]);
}

double sae_reg_lowact(const sae_config *trainer_cfg, const float *x, int64_t n, int64_t d,
                      int64_t ldx, const float *w, int64_t n_latents, int64_t ldw,
                      const float *pre, const float *z, float *g_pre, float *g_w, int64_t ldg,
                      float *work)
{
    (void)pre; /* dz/dpre = 1 wherever z > 0 for ReLU, TopK, BatchTopK and JumpReLU */
    double coeff = sae_cfg_f64(trainer_cfg, SAE_REG_LOWACT_COEFF);
    if (coeff == 0.0 || n < 1 || n_latents < 1 || d < 1)
        return 0.0;
    double tau = sae_cfg_f64(trainer_cfg, SAE_REG_LOWACT_THRESHOLD);
    float *inv_x = work, *inv_w = work + n;
    (void)sae_reg_inverse_norms(x, n, d, ldx, inv_x);
    (void)sae_reg_inverse_norms(w, n_latents, d, ldw, inv_w);
    double scale = coeff / (double)n, sum = 0.0;
    for (int64_t b = 0; b < n; b++) {
        const float *x_b = x + b * ldx;
        for (int64_t i = 0; i < n_latents; i++) {
            double zi = z[b * n_latents + i];
            if (!(zi > 0.0 && zi < tau) || inv_x[b] == 0.0f || inv_w[i] == 0.0f)
                continue;
            const float *w_i = w + i * ldw;
            double c = sae_dot_f64(x_b, w_i, d) * inv_x[b] * inv_w[i];
            double h = 1.0 - zi / tau;
            sum += h * c * c;
            g_pre[b * n_latents + i] += (float)(-scale * c * c / tau);
            add_direction_grad(g_w + i * ldg, scale * h * 2.0 * c, x_b, inv_x[b], w_i, inv_w[i],
                               c, d);
        }
    }
    return scale * sum;
}
