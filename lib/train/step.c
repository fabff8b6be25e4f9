/* One optimisation step: loss and gradient, divergence checks, gradient clipping, Adam
 * (Kingma & Ba 2015), decoder constraints, dead-latent bookkeeping, schedules. */
#include "train/trainer_internal.h"

#include "core/parallel.h"
#include "linalg/lanes.h"

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
SAE_LANES_CLONES
static void project_decoder_grad(const sae_model *m, float *gdec, int nt)
{
    int64_t d = m->d;
    SAE_FOR_THREADS(nt, j, m->n_latents, {
        const float *w = m->w_dec + j * d;
        float *g = gdec + j * d;
        double ww = sae_dotd_lanes(w, w, d);
        if (ww > 0.0) {
            float c = (float)(sae_dotd_lanes(g, w, d) / ww);
            for (int64_t i = 0; i < d; i++)
                g[i] -= c * w[i];
        }
    });
}

typedef struct adam_consts {
    float b1, b2, c1, c2, lr, eps, scale; /* scale: gradient clipping factor */
} adam_consts;

SAE_LANES_INLINE float adam_new_param(const adam_consts *k, float p, float g, float *m, float *v)
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
    SAE_FOR_THREADS(nt, b, N_BLOCKS, {
        int64_t lo = b * per, hi = SAE_MIN(n, lo + per);
        int any = 0;
        for (int64_t i = lo; i < hi; i++) {
            float m = t->adam_m[i], v = t->adam_v[i];
            any |= !isfinite(adam_new_param(k, p[i], g[i], &m, &v));
        }
        bad[b] = any;
    });
    for (int b = 0; b < N_BLOCKS; b++)
        if (bad[b])
            return 0;
    return 1;
}

/* What one read of p, g, m, v tells: the sum of g^2, the largest |p|, |m| and v, and nan:
 * 0 when every p, m, v is finite (else NaN). */
typedef struct adam_scan {
    double g2;
    float p, m, v, nan;
} adam_scan;

/* Lanes [0, nb) of one block of SAE_LANES parameters into the lane accumulators. */
static inline void scan_lanes(const float *p, const float *g, const float *m, const float *v,
                              int nb, double *g2, float *pm, float *mm, float *vm, float *z)
{
    for (int q = 0; q < nb; q++) {
        float ap = fabsf(p[q]), am = fabsf(m[q]);
        g2[q] += (double)g[q] * (double)g[q];
        pm[q] = ap > pm[q] ? ap : pm[q];
        mm[q] = am > mm[q] ? am : mm[q];
        vm[q] = v[q] > vm[q] ? v[q] : vm[q];
        z[q] += (ap - ap) + (am - am) + (v[q] - v[q]); /* NaN once anything is not finite */
    }
}

SAE_LANES_INLINE void scan_block(const sae_trainer *t, int64_t lo, int64_t hi, adam_scan *out)
{
    const float *p = t->model->params, *g = t->grad, *m = t->adam_m, *v = t->adam_v;
    double g2[SAE_LANES] = {0};
    float pm[SAE_LANES] = {0}, mm[SAE_LANES] = {0}, vm[SAE_LANES] = {0}, z[SAE_LANES] = {0};
    int64_t i = lo;
    for (; i + SAE_LANES <= hi; i += SAE_LANES)
        scan_lanes(p + i, g + i, m + i, v + i, SAE_LANES, g2, pm, mm, vm, z);
    if (i < hi)
        scan_lanes(p + i, g + i, m + i, v + i, (int)(hi - i), g2, pm, mm, vm, z);
    adam_scan r = {sae_lanes_sumd(g2), 0.0f, 0.0f, 0.0f, sae_lanes_sumf(z)};
    for (int q = 0; q < SAE_LANES; q++) {
        r.p = pm[q] > r.p ? pm[q] : r.p;
        r.m = mm[q] > r.m ? mm[q] : r.m;
        r.v = vm[q] > r.v ? vm[q] : r.v;
    }
    *out = r;
}

/* One read of p, g, m, v in fixed blocks; the squared gradient norm is +inf when it is not
 * finite. */
SAE_LANES_CLONES
static adam_scan adam_scan_all(const sae_trainer *t, int nt)
{
    int64_t n = t->model->lay.total, per = (n + N_BLOCKS - 1) / N_BLOCKS;
    adam_scan part[N_BLOCKS];
    SAE_FOR_THREADS(nt, b, N_BLOCKS,
                    scan_block(t, SAE_MIN(n, b * per), SAE_MIN(n, b * per + per), &part[b]));
    adam_scan s = {0.0, 0.0f, 0.0f, 0.0f, 0.0f};
    for (int b = 0; b < N_BLOCKS; b++) {
        s.g2 += part[b].g2;
        s.nan += part[b].nan;
        s.p = part[b].p > s.p ? part[b].p : s.p;
        s.m = part[b].m > s.m ? part[b].m : s.m;
        s.v = part[b].v > s.v ? part[b].v : s.v;
    }
    s.g2 = isfinite(s.g2) ? s.g2 : INFINITY;
    return s;
}

/* Does the scan prove that the update with constants k keeps every parameter finite?
 * |g k->scale| <= sqrt(g2) k->scale, so |m'| <= max|m| + that, v' <= max v + that^2, and
 * the step is at most lr c1 |m'| / eps; every bound carries a factor 2 for rounding and
 * must stay far below FLT_MAX. When it does not, the caller runs the exact check. */
static int adam_bounded(const adam_consts *k, const adam_scan *s)
{
    const double big = 1e36;
    if (!(s->nan == 0.0f) || !(k->b1 >= 0.0f && k->b1 <= 1.0f) ||
        !(k->b2 >= 0.0f && k->b2 <= 1.0f) || !(k->eps > 0.0f) || !(k->lr >= 0.0f) ||
        !(k->scale >= 0.0f) || !(k->c1 >= 0.0f) || !(k->c2 >= 0.0f))
        return 0;
    double gb = 2.0 * sqrt(s->g2) * k->scale;
    double mb = 2.0 * ((double)s->m + gb), vb = 2.0 * ((double)s->v + gb * gb);
    double step = 2.0 * (double)k->lr * mb * (double)k->c1 / (double)k->eps;
    /* the float expression forms lr (m c1) before dividing: bound that product too */
    return gb * gb < big && mb * k->c1 < big && vb * k->c2 < big &&
           (double)k->lr * mb * (double)k->c1 < big && (double)s->p + step < big;
}

SAE_LANES_CLONES
static void adam_apply(sae_trainer *t, const adam_consts *k, int nt)
{
    float *p = t->model->params, *m = t->adam_m, *v = t->adam_v;
    const float *g = t->grad;
    int64_t n = t->model->lay.total;
    SAE_FOR_THREADS(nt, i, n, p[i] = adam_new_param(k, p[i], g[i], &m[i], &v[i]));
}

SAE_LANES_CLONES
static void renormalise_decoder(sae_model *m, int nt)
{
    int64_t d = m->d;
    SAE_FOR_THREADS(nt, j, m->n_latents, {
        float *w = m->w_dec + j * d;
        double nrm = sqrt(sae_dotd_lanes(w, w, d));
        if (nrm > 0.0) {
            float inv = (float)(1.0 / nrm);
            for (int64_t i = 0; i < d; i++)
                w[i] *= inv;
        }
    });
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
    sae_train_set_rows(t, n);
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
    adam_scan sc = adam_scan_all(t, nt);
    g2 = sc.g2;
    t->last.grad_norm = sqrt(g2);
    if (!isfinite(t->last.loss) || !isfinite(g2)) {
        undo_step(t, &good, b_dec_from_batch);
        return sae_fail(&t->err, SAE_E_DIVERGED,
                        "step %lld: loss or gradient is not finite; model kept at step %lld",
                        (long long)t->step + 1, (long long)t->step);
    }
    if (t->o.grad_clip > 0.0 && t->last.grad_norm > t->o.grad_clip) {
        k.scale = (float)(t->o.grad_clip / t->last.grad_norm);
    }
    int ok = adam_bounded(&k, &sc) || adam_would_stay_finite(t, &k, nt);
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
