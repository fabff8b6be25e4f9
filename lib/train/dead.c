/* Data-dependent initialisation of b_dec and resampling of dead latents. */
#include "train/trainer_internal.h"

#include "linalg/linalg.h"
#include "rng/rng.h"

#include <string.h>

#define WEISZFELD_MAX_ITER 100
#define WEISZFELD_TOL 1e-5
#define RESAMPLE_ENCODER_SCALE 0.2 /* Anthropic (Bricken et al. 2023) */

/* Geometric median by Weiszfeld's iterations from the mean (as in Gao et al.'s and
 * dictionary_learning's b_dec initialisation): y <- sum_r x_r / |x_r - y| / sum_r 1/|x_r - y|. */
static void geometric_median(const float *x, int64_t n, int64_t d, double *y, double *next)
{
    for (int it = 0; it < WEISZFELD_MAX_ITER; it++) {
        double wsum = 0.0, shift = 0.0, ynorm = 0.0;
        memset(next, 0, (size_t)d * sizeof(double));
        for (int64_t r = 0; r < n; r++) {
            double dist = 0.0;
            for (int64_t i = 0; i < d; i++) {
                double e = x[r * d + i] - y[i];
                dist += e * e;
            }
            /* a sample on the current estimate gets a huge but finite weight, so an estimate
             * that reached a sample stays there (where Weiszfeld's map is undefined) */
            double wr = 1.0 / SAE_MAX(sqrt(dist), 1e-12);
            wsum += wr;
            for (int64_t i = 0; i < d; i++)
                next[i] += wr * x[r * d + i];
        }
        if (wsum == 0.0)
            return;
        for (int64_t i = 0; i < d; i++) {
            next[i] /= wsum;
            shift += (next[i] - y[i]) * (next[i] - y[i]);
            ynorm += next[i] * next[i];
            y[i] = next[i];
        }
        if (sqrt(shift) <= WEISZFELD_TOL * (sqrt(ynorm) + 1e-12))
            return;
    }
}

void sae_train_init_b_dec(sae_trainer *t, int64_t n)
{
    sae_model *m = t->model;
    int64_t d = m->d;
    double *y = t->ws.dacc;
    memset(y, 0, (size_t)d * sizeof(double));
    for (int64_t r = 0; r < n; r++)
        for (int64_t i = 0; i < d; i++)
            y[i] += t->ws.x[r * d + i];
    for (int64_t i = 0; i < d; i++)
        y[i] /= (double)n;
    if (t->o.b_dec_init == SAE_B_DEC_INIT_GEOMEDIAN)
        geometric_median(t->ws.x, n, d, y, t->ws.dacc2);
    for (int64_t i = 0; i < d; i++)
        m->b_dec[i] = (float)y[i];
}

/* Zero the Adam moments of latent j's parameters. */
static void reset_moments(sae_trainer *t, int64_t j)
{
    const sae_model_layout *l = &t->model->lay;
    int64_t d = t->model->d;
    int64_t rows[] = {l->w_dec, l->w_enc_t};
    for (int i = 0; i < 2; i++)
        if (rows[i] >= 0) {
            memset(t->adam_m + rows[i] + j * d, 0, (size_t)d * sizeof(float));
            memset(t->adam_v + rows[i] + j * d, 0, (size_t)d * sizeof(float));
        }
    int64_t scalars[] = {l->b_enc, l->threshold, l->r_mag, l->b_mag};
    for (int i = 0; i < 4; i++)
        if (scalars[i] >= 0)
            t->adam_m[scalars[i] + j] = 0.0f, t->adam_v[scalars[i] + j] = 0.0f;
}

/* Anthropic's recipe (Bricken et al. 2023, "Towards Monosemanticity"): each dead latent
 * takes an input drawn with probability proportional to its squared reconstruction error;
 * decoder row = that (centred) input normalised, encoder row = the same direction scaled
 * to 0.2 x the mean norm of live encoder rows, b_enc = 0, Adam moments reset. */
void sae_train_resample(sae_trainer *t, int64_t n)
{
    sae_model *m = t->model;
    sae_train_ws *w = &t->ws;
    int64_t d = m->d, l = m->n_latents, n_dead = 0, n_live = 0;
    double total = 0.0, live_norm = 0.0;
    for (int64_t r = 0; r < n; r++)
        total += w->row_loss[r] * w->row_loss[r];
    for (int64_t j = 0; j < l; j++) {
        if (t->since_fired[j] < t->o.dead_steps) {
            live_norm += sae_norm_f64(m->w_enc_t + j * d, d);
            n_live++;
        }
    }
    double enc_norm = RESAMPLE_ENCODER_SCALE * (n_live > 0 ? live_norm / (double)n_live : 1.0);
    if (!(total > 0.0))
        return;
    for (int64_t j = 0; j < l; j++) {
        if (t->since_fired[j] < t->o.dead_steps)
            continue;
        sae_rng rng;
        sae_rng_init(&rng, t->o.seed, (uint64_t)t->step * (uint64_t)l + (uint64_t)j,
                     SAE_STREAM_TRAIN);
        double u = sae_rng_uniform(&rng) * total, c = 0.0;
        int64_t pick = n - 1;
        for (int64_t r = 0; r < n; r++) {
            c += w->row_loss[r] * w->row_loss[r];
            if (u < c) {
                pick = r;
                break;
            }
        }
        float *src = w->dvec; /* the input centred by the current b_dec */
        for (int64_t i = 0; i < d; i++)
            src[i] = w->x[pick * d + i] - (m->pre_bias ? m->b_dec[i] : 0.0f);
        double nrm = sae_norm_f64(src, d);
        if (!(nrm > 0.0))
            continue;
        for (int64_t i = 0; i < d; i++)
            m->w_dec[j * d + i] = (float)(src[i] / nrm);
        if (!m->tied)
            for (int64_t i = 0; i < d; i++)
                m->w_enc_t[j * d + i] = (float)(src[i] / nrm * enc_norm);
        m->b_enc[j] = 0.0f;
        reset_moments(t, j);
        t->since_fired[j] = 0;
        n_dead++;
    }
    sae_log(t->log, t->user, SAE_LOG_INFO, "step %lld: resampled %lld dead latents",
            (long long)t->step, (long long)n_dead);
}
