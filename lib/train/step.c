/* One optimisation step: loss and gradient, divergence checks, gradient clipping, Adam
 * (Kingma & Ba 2015), decoder constraints, dead-latent bookkeeping, schedules. */
#include "train/trainer_internal.h"

#include "linalg/linalg.h"
#include "model/parallel.h"

#include <string.h>

#define PI 3.14159265358979323846
/* Reductions are split into this many fixed blocks whatever the thread count, so sums
 * (and therefore results) do not depend on it. */
#define N_BLOCKS 64

double sae_train_lr_at(const sae_train_opts *o, int64_t step)
{
    if (step < o->lr_warmup)
        return o->lr * (double)(step + 1) / (double)o->lr_warmup;
    int64_t t = step - o->lr_warmup;
    if (o->lr_schedule == SAE_LR_CONSTANT || o->lr_decay_steps == 0)
        return o->lr;
    if (t >= o->lr_decay_steps)
        return o->lr_end;
    double f = (double)t / (double)o->lr_decay_steps;
    if (o->lr_schedule == SAE_LR_LINEAR)
        return o->lr + (o->lr_end - o->lr) * f;
    return o->lr_end + (o->lr - o->lr_end) * 0.5 * (1.0 + cos(PI * f));
}

double sae_train_coeff_at(const sae_train_opts *o, int64_t step)
{
    if (step < o->l1_warmup)
        return o->l1 * (double)(step + 1) / (double)o->l1_warmup;
    return o->l1;
}

int32_t sae_train_loss_grad(sae_trainer *t, int64_t n)
{
    return sae_arch_is_sparse(t->model->arch) ? sae_train_sparse_loss_grad(t, n)
                                              : sae_train_dense_loss_grad(t, n);
}

/* Remove from each decoder-row gradient its component along the row (the row stays on
 * the unit sphere to first order; dictionary_learning's ConstrainedAdam, Gao et al.). */
static void project_decoder_grad(const sae_model *m, float *gdec, int nt)
{
    int64_t d = m->d;
    SAE_PARALLEL_FOR(nt)
    for (int64_t j = 0; j < m->n_latents; j++) {
        const float *w = m->w_dec + j * d;
        float *g = gdec + j * d;
        double ww = sae_dot_f64(w, w, d);
        if (ww <= 0.0)
            continue;
        float c = (float)(sae_dot_f64(g, w, d) / ww);
        for (int64_t i = 0; i < d; i++)
            g[i] -= c * w[i];
    }
}

typedef struct adam_consts {
    float b1, b2, c1, c2, lr, eps, scale; /* scale: gradient clipping factor */
} adam_consts;

static inline float adam_new_param(const adam_consts *k, float p, float g, float *m, float *v)
{
    g *= k->scale;
    *m = k->b1 * *m + (1.0f - k->b1) * g;
    *v = k->b2 * *v + (1.0f - k->b2) * g * g;
    return p - k->lr * (*m * k->c1) / (sqrtf(*v * k->c2) + k->eps);
}

/* Would the update leave every parameter finite? (read-only pass) */
static int adam_would_stay_finite(const sae_trainer *t, const adam_consts *k, int nt)
{
    const float *p = t->model->params, *g = t->grad;
    int64_t n = t->model->lay.total, per = (n + N_BLOCKS - 1) / N_BLOCKS;
    int bad[N_BLOCKS];
    SAE_PARALLEL_FOR(nt)
    for (int b = 0; b < N_BLOCKS; b++) {
        int64_t lo = b * per, hi = SAE_MIN(n, lo + per);
        int any = 0;
        for (int64_t i = lo; i < hi; i++) {
            float m = t->adam_m[i], v = t->adam_v[i];
            any |= !isfinite(adam_new_param(k, p[i], g[i], &m, &v));
        }
        bad[b] = any;
    }
    for (int b = 0; b < N_BLOCKS; b++)
        if (bad[b])
            return 0;
    return 1;
}

/* One read of p, g, m, v: the squared gradient norm (fixed blocks; +inf when anything is
 * not finite) and whether the update with constants k would keep every parameter finite. */
static int norm_and_check(const sae_trainer *t, const adam_consts *k, int nt, double *g2)
{
    const float *p = t->model->params, *g = t->grad;
    int64_t n = t->model->lay.total, per = (n + N_BLOCKS - 1) / N_BLOCKS;
    double part[N_BLOCKS];
    int bad[N_BLOCKS];
    SAE_PARALLEL_FOR(nt)
    for (int b = 0; b < N_BLOCKS; b++) {
        int64_t lo = b * per, hi = SAE_MIN(n, lo + per);
        double s = 0.0;
        int any = 0;
        for (int64_t i = lo; i < hi; i++) {
            float m = t->adam_m[i], v = t->adam_v[i];
            s += (double)g[i] * (double)g[i];
            any |= !isfinite(adam_new_param(k, p[i], g[i], &m, &v));
        }
        part[b] = s;
        bad[b] = any;
    }
    double s = 0.0;
    int ok = 1;
    for (int b = 0; b < N_BLOCKS; b++) {
        s += part[b];
        ok &= !bad[b];
    }
    *g2 = isfinite(s) ? s : INFINITY;
    return ok;
}

static void adam_apply(sae_trainer *t, const adam_consts *k, int nt)
{
    float *p = t->model->params;
    const float *g = t->grad;
    int64_t n = t->model->lay.total;
    SAE_PARALLEL_FOR(nt)
    for (int64_t i = 0; i < n; i++)
        p[i] = adam_new_param(k, p[i], g[i], &t->adam_m[i], &t->adam_v[i]);
}

static void renormalise_decoder(sae_model *m, int nt)
{
    int64_t d = m->d;
    SAE_PARALLEL_FOR(nt)
    for (int64_t j = 0; j < m->n_latents; j++) {
        float *w = m->w_dec + j * d;
        double nrm = sae_norm_f64(w, d);
        if (nrm > 0.0) {
            float inv = (float)(1.0 / nrm);
            for (int64_t i = 0; i < d; i++)
                w[i] *= inv;
        }
    }
}

/* Everything that happens once the update is known to be good. */
static void commit(sae_trainer *t, int64_t n)
{
    sae_model *m = t->model;
    int nt = sae_train_threads(t);
    if (t->o.renorm)
        renormalise_decoder(m, nt);
    if (m->threshold != NULL) /* JumpReLU: a negative threshold means nothing */
        for (int64_t j = 0; j < m->n_latents; j++)
            if (m->threshold[j] < 0.0f)
                m->threshold[j] = 0.0f;
    if (sae_arch_is_batch(m->arch) && t->ws.batch_min > 0.0) {
        if (!m->batch_threshold_valid)
            m->batch_threshold = t->ws.batch_min;
        else
            m->batch_threshold += t->o.thr_lr * (t->ws.batch_min - m->batch_threshold);
        m->batch_threshold_valid = 1;
    }
    int64_t dead = 0;
    for (int64_t j = 0; j < m->n_latents; j++) {
        t->since_fired[j] = t->ws.fired[j] ? 0 : t->since_fired[j] + 1;
        dead += t->since_fired[j] >= t->o.dead_steps;
    }
    t->last.dead = dead;
    t->step++;
    if (t->o.resample_every > 0 && t->step % t->o.resample_every == 0)
        sae_train_resample(t, n);
}

/* A failed step leaves the trainer as it was: the statistics of the last good step, and
 * b_dec as it was before this step initialised it from the batch (ws.dvec holds it; it is
 * free until the step commits). */
static void undo_step(sae_trainer *t, const sae_train_stats *good, int b_dec_from_batch)
{
    t->last = *good;
    if (b_dec_from_batch) {
        memcpy(t->model->b_dec, t->ws.dvec, (size_t)t->model->d * sizeof(float));
        t->b_dec_done = 0;
    }
}

int32_t sae_train_step_rows(sae_trainer *t, int64_t n)
{
    sae_model *m = t->model;
    int nt = sae_train_threads(t);
    int b_dec_from_batch =
        !t->b_dec_done && t->step == 0 && t->o.b_dec_init != SAE_B_DEC_INIT_KEEP;
    if (b_dec_from_batch) {
        memcpy(t->ws.dvec, m->b_dec, (size_t)m->d * sizeof(float));
        sae_train_init_b_dec(t, n);
    }
    t->b_dec_done = 1;
    sae_train_stats good = t->last; /* a diverged step must leave the statistics as they were */
    int32_t st = sae_train_loss_grad(t, n);
    if (st != SAE_OK) {
        undo_step(t, &good, b_dec_from_batch);
        return sae_fail(&t->err, st, "step: sizes exceed the BLAS integer range");
    }
    double lr = sae_train_lr_at(&t->o, t->step), tt = (double)(t->step + 1), g2;
    adam_consts k = {(float)t->o.beta1, (float)t->o.beta2,
                     (float)(1.0 / (1.0 - pow(t->o.beta1, tt))),
                     (float)(1.0 / (1.0 - pow(t->o.beta2, tt))), (float)lr, (float)t->o.eps, 1.0f};
    /* the parallel component is discarded anyway: project first, then measure and clip
     * (dictionary_learning's order) */
    double since = sae_train_now();
    if (t->o.renorm)
        project_decoder_grad(m, t->grad + m->lay.w_dec, nt);
    sae_train_tick(t, SAE_PHASE_CONSTRAIN, &since);
    int ok = norm_and_check(t, &k, nt, &g2);
    t->last.grad_norm = sqrt(g2);
    if (!isfinite(t->last.loss) || !isfinite(g2)) {
        undo_step(t, &good, b_dec_from_batch);
        return sae_fail(&t->err, SAE_E_DIVERGED,
                        "step %lld: loss or gradient is not finite; model kept at step %lld",
                        (long long)t->step + 1, (long long)t->step);
    }
    if (t->o.grad_clip > 0.0 && t->last.grad_norm > t->o.grad_clip) {
        k.scale = (float)(t->o.grad_clip / t->last.grad_norm);
        ok = adam_would_stay_finite(t, &k, nt);
    }
    if (!ok) {
        undo_step(t, &good, b_dec_from_batch);
        return sae_fail(&t->err, SAE_E_DIVERGED,
                        "step %lld: the update would make parameters non-finite; model kept at "
                        "step %lld", (long long)t->step + 1, (long long)t->step);
    }
    adam_apply(t, &k, nt);
    t->last.lr = lr;
    sae_train_tick(t, SAE_PHASE_OPTIMISE, &since);
    commit(t, n);
    sae_train_tick(t, SAE_PHASE_CONSTRAIN, &since);
    return SAE_OK;
}
