/* Trainer handle: creation, public training loops, callbacks, statistics. */
#include "train/trainer_internal.h"

#include <sae/toy.h>

#include "core/parallel.h"
#include "toy/sampler.h"

#include <string.h>

static void read_opts(sae_train_opts *o, const sae_config *c)
{
    o->lr = sae_cfg_f64(c, SAE_TRAINER_LR);
    o->lr_end = sae_cfg_f64(c, SAE_TRAINER_LR_END);
    o->l1 = sae_cfg_f64(c, SAE_TRAINER_L1_COEFF);
    o->beta1 = sae_cfg_f64(c, SAE_TRAINER_ADAM_BETA1);
    o->beta2 = sae_cfg_f64(c, SAE_TRAINER_ADAM_BETA2);
    o->eps = sae_cfg_f64(c, SAE_TRAINER_ADAM_EPS);
    o->grad_clip = sae_cfg_f64(c, SAE_TRAINER_GRAD_CLIP);
    o->aux_coef = sae_cfg_f64(c, SAE_TRAINER_AUX_COEFF);
    o->bandwidth = sae_cfg_f64(c, SAE_TRAINER_JUMPRELU_BANDWIDTH);
    o->thr_lr = sae_cfg_f64(c, SAE_TRAINER_THRESHOLD_LR);
    o->batch = sae_cfg_i64(c, SAE_TRAINER_BATCH_SIZE);
    o->threads = sae_cfg_i64(c, SAE_TRAINER_N_THREADS);
    o->l1_warmup = sae_cfg_i64(c, SAE_TRAINER_L1_WARMUP_STEPS);
    o->lr_warmup = sae_cfg_i64(c, SAE_TRAINER_LR_WARMUP_STEPS);
    o->lr_decay_steps = sae_cfg_i64(c, SAE_TRAINER_LR_DECAY_STEPS);
    o->aux_k = sae_cfg_i64(c, SAE_TRAINER_AUX_K);
    o->dead_steps = sae_cfg_i64(c, SAE_TRAINER_DEAD_STEPS);
    o->resample_every = sae_cfg_i64(c, SAE_TRAINER_RESAMPLE_EVERY);
    o->chunk_rows = sae_cfg_i64(c, SAE_TRAINER_CHUNK_ROWS);
    o->thread_min_work = sae_cfg_i64(c, SAE_TRAINER_THREAD_MIN_WORK);
    o->first_sample = (uint64_t)sae_cfg_i64(c, SAE_TRAINER_FIRST_SAMPLE);
    o->seed = (uint64_t)sae_cfg_i64(c, SAE_TRAINER_SEED);
    o->bf16 = (int32_t)sae_cfg_i64(c, SAE_TRAINER_BF16_SCORES);
    o->lr_schedule = (int32_t)sae_cfg_i64(c, SAE_TRAINER_LR_SCHEDULE);
    o->renorm = (int32_t)sae_cfg_i64(c, SAE_TRAINER_DECODER_RENORM);
    o->l1_dec_norm = (int32_t)sae_cfg_i64(c, SAE_TRAINER_L1_DECODER_NORM);
    o->b_dec_init = (int32_t)sae_cfg_i64(c, SAE_TRAINER_B_DEC_INIT);
    o->ortho_on = sae_cfg_f64(c, SAE_REG_ORTHO_COEFF) > 0.0;
    o->lowact_on = sae_cfg_f64(c, SAE_REG_LOWACT_COEFF) > 0.0;
}

static void trainer_destroy(sae_trainer *t)
{
    sae_alloc al = t->al;
    sae_train_ws_free(t);
    sae_free(&al, t->adam_m);
    sae_free(&al, t->adam_v);
    sae_free(&al, t->grad);
    sae_free(&al, t->since_fired);
    sae_config_free(t->cfg);
    sae_model_release(t->model);
    sae_free(&al, t);
}

/* Combinations the trainer cannot run; message on the model (there is no trainer yet). */
static int32_t check_supported(const sae_model *m, const sae_train_opts *o)
{
    if (o->lowact_on && !m->tied)
        return sae_fail(&m->err, SAE_E_NOT_SUPPORTED,
                        "lowact_coefficient > 0 needs a tied model (tied = 1)");
    if (o->lowact_on && m->arch != SAE_ARCH_RELU && m->arch != SAE_ARCH_JUMPRELU)
        return sae_fail(&m->err, SAE_E_NOT_SUPPORTED,
                        "the low-activation penalty supports relu and jumprelu models");
    return SAE_OK;
}

int32_t sae_trainer_create(sae_trainer **out, sae_model *model, const sae_config *cfg,
                           const sae_allocator *alloc)
{
    if (out == NULL || model == NULL || cfg == NULL)
        return SAE_E_NULL;
    *out = NULL;
    if (sae_config_kind(cfg) != SAE_KIND_TRAINER || sae_config_validate(cfg, NULL, 0) != SAE_OK)
        return SAE_E_CONFIG;
    sae_train_opts o;
    read_opts(&o, cfg);
    int32_t st = check_supported(model, &o);
    if (st != SAE_OK)
        return st;
    sae_alloc al;
    sae_alloc_init(&al, alloc);
    sae_trainer *t = sae_calloc(&al, 1, sizeof *t);
    if (t == NULL)
        return SAE_E_NOMEM;
    t->al = al;
    sae_err_init(&t->err);
    t->o = o;
    sae_model_retain(model);
    t->model = model;
    int64_t p = model->lay.total, l = model->n_latents;
    t->sparse_div = SAE_SPARSE_BLOCK_DIV;
    t->step_threads = (int32_t)o.threads;
    t->aux_k = (int32_t)SAE_MIN(o.aux_k > 0 ? o.aux_k : SAE_MAX(model->d / 2, 1), l);
    if (!sae_arch_is_sparse(model->arch))
        t->o.aux_coef = 0.0; /* AuxK belongs to the TopK family */
    t->adam_m = sae_calloc(&al, (size_t)p, sizeof(float));
    t->adam_v = sae_calloc(&al, (size_t)p, sizeof(float));
    t->grad = sae_calloc(&al, (size_t)p, sizeof(float));
    t->since_fired = sae_calloc(&al, (size_t)l, sizeof(int64_t));
    st = sae_config_clone(&t->cfg, cfg);
    if (st == SAE_OK && (t->adam_m == NULL || t->adam_v == NULL || t->grad == NULL ||
                         t->since_fired == NULL))
        st = SAE_E_NOMEM;
    if (st == SAE_OK)
        st = sae_train_ws_reserve(t, o.batch);
    if (st != SAE_OK) {
        trainer_destroy(t);
        return SAE_E_NOMEM;
    }
    t->sample_pos = o.first_sample;
    *out = t;
    return SAE_OK;
}

void sae_trainer_free(sae_trainer *trainer)
{
    if (trainer != NULL)
        trainer_destroy(trainer);
}

const char *sae_trainer_errmsg(const sae_trainer *trainer)
{
    return trainer != NULL ? trainer->err.msg : "trainer is NULL";
}

sae_model *sae_trainer_model(const sae_trainer *trainer)
{
    return trainer != NULL ? trainer->model : NULL;
}

int32_t sae_trainer_set_callbacks(sae_trainer *trainer, sae_log_fn log, sae_progress_fn progress,
                                  void *user)
{
    if (trainer == NULL)
        return SAE_E_NULL;
    trainer->log = log;
    trainer->progress = progress;
    trainer->user = user;
    return SAE_OK;
}

/* Copy rows [r0, r1) of x (stride ldx) into the batch buffer up to the first non-finite
 * one; returns its index, or r1. */
static int64_t copy_rows(sae_trainer *t, const float *x, int64_t ldx, int64_t r0, int64_t r1)
{
    int64_t d = t->model->d;
    for (int64_t r = r0; r < r1; r++) {
        const float *src = x + r * ldx;
        if (!sae_all_finite_f32(src, d))
            return r;
        memcpy(t->ws.x + r * d, src, (size_t)d * sizeof(float));
    }
    return r1;
}

/* Copy n rows of x into the batch buffer, one part per thread, rejecting non-finite
 * values (the first such row is named whatever the thread count). */
static int32_t load_rows(sae_trainer *t, const float *x, int64_t n, int64_t ldx)
{
    int64_t parts = SAE_MIN((int64_t)sae_train_threads(t), n), stop[256]; /* threads <= 256 */
    SAE_FOR_THREADS(parts, p, parts,
                    stop[p] = copy_rows(t, x, ldx, n * p / parts, n * (p + 1) / parts));
    for (int64_t p = 0; p < parts; p++)
        if (stop[p] < n * (p + 1) / parts)
            return sae_fail(&t->err, SAE_E_NONFINITE, "row %lld of x is not finite",
                            (long long)stop[p]);
    return SAE_OK;
}

/* After a step: progress callback (may cancel). */
static int32_t report(sae_trainer *t, int64_t done, int64_t total)
{
    if (t->progress != NULL && t->progress(t->user, done, total, t->last.loss) != 0)
        return sae_fail(&t->err, SAE_E_CANCELLED, "cancelled by the progress callback after step %lld",
                        (long long)t->step);
    return SAE_OK;
}

int32_t sae_trainer_step(sae_trainer *trainer, const float *x, int64_t n, int64_t ldx)
{
    if (trainer == NULL)
        return SAE_E_NULL;
    sae_trainer *t = trainer;
    int32_t st = sae_check_matrix(&t->err, x, n, t->model->d, ldx, "x");
    if (st != SAE_OK)
        return st;
    if (sae_train_ws_reserve(t, n) != SAE_OK)
        return sae_fail(&t->err, SAE_E_NOMEM, "step: out of memory for %lld rows", (long long)n);
    sae_train_set_rows(t, n);
    if ((st = load_rows(t, x, n, ldx)) != SAE_OK)
        return st;
    if ((st = sae_train_step_rows(t, n)) != SAE_OK)
        return st;
    return report(t, 1, 1);
}

int32_t sae_trainer_train_data(sae_trainer *trainer, const float *x, int64_t n_rows, int64_t ldx,
                               int64_t n_steps)
{
    if (trainer == NULL)
        return SAE_E_NULL;
    sae_trainer *t = trainer;
    int32_t st = sae_check_matrix(&t->err, x, n_rows, t->model->d, ldx, "x");
    if (st != SAE_OK)
        return st;
    if (n_steps < 0)
        return sae_fail(&t->err, SAE_E_SIZE, "n_steps = %lld is negative", (long long)n_steps);
    int64_t b = t->o.batch, d = t->model->d, cursor = 0;
    /* every row before the first step: a bad row late in x must not leave steps half-done */
    if (n_steps > 0 && (st = sae_check_finite_array(&t->err, x, n_rows, d, ldx, "x")) != SAE_OK)
        return st;
    for (int64_t s = 0; s < n_steps; s++) {
        /* batch_size rows starting at the cursor, wrapping around the end of x */
        for (int64_t r = 0; r < b; r++) {
            const float *src = x + ((cursor + r) % n_rows) * ldx;
            if (!sae_all_finite_f32(src, d))
                return sae_fail(&t->err, SAE_E_NONFINITE, "row %lld of x is not finite",
                                (long long)((cursor + r) % n_rows));
            memcpy(t->ws.x + r * d, src, (size_t)d * sizeof(float));
        }
        cursor = (cursor + b) % n_rows;
        if ((st = sae_train_step_rows(t, b)) != SAE_OK || (st = report(t, s + 1, n_steps)) != SAE_OK)
            return st;
    }
    return SAE_OK;
}

static int32_t check_toy(sae_trainer *t, const sae_toy *toy)
{
    int64_t nf = 0, d = 0;
    if (toy == NULL)
        return sae_fail(&t->err, SAE_E_NULL, "toy is NULL");
    if (sae_toy_dims(toy, &nf, &d) != SAE_OK || d != t->model->d)
        return sae_fail(&t->err, SAE_E_MISMATCH, "toy d = %lld but the model's d_in = %lld",
                        (long long)d, (long long)t->model->d);
    return SAE_OK;
}

int32_t sae_trainer_train_toy(sae_trainer *trainer, const sae_toy *toy, int64_t n_steps)
{
    sae_trainer *const one[1] = {trainer};
    if (trainer == NULL)
        return SAE_E_NULL;
    return sae_trainer_train_toy_many(one, 1, toy, n_steps);
}

static int32_t check_many(sae_trainer *const *ts, int64_t count, const sae_toy *toy, int64_t n_steps)
{
    sae_trainer *t0 = ts[0];
    int32_t st = check_toy(t0, toy);
    if (st != SAE_OK)
        return st;
    if (n_steps < 0)
        return sae_fail(&t0->err, SAE_E_SIZE, "n_steps = %lld is negative", (long long)n_steps);
    for (int64_t i = 0; i < count; i++) /* scratch lost to an earlier failed allocation */
        if (ts[i] != NULL && sae_train_ws_reserve(ts[i], ts[i]->o.batch) != SAE_OK)
            return sae_fail(&ts[i]->err, SAE_E_NOMEM, "train_toy: out of memory");
    for (int64_t i = 1; i < count; i++) {
        if (ts[i] == NULL)
            return sae_fail(&t0->err, SAE_E_NULL, "trainers[%lld] is NULL", (long long)i);
        if (ts[i]->model->d != t0->model->d || ts[i]->o.batch != t0->o.batch ||
            ts[i]->sample_pos != t0->sample_pos)
            return sae_fail(&ts[i]->err, SAE_E_MISMATCH,
                            "trainers[%lld] differs from trainers[0] in d_in, batch_size or "
                            "sample position", (long long)i);
        for (int64_t j = 0; j < i; j++)
            if (ts[j] == ts[i])
                return sae_fail(&ts[i]->err, SAE_E_INVALID, "trainers[%lld] appears twice",
                                (long long)i);
    }
    return SAE_OK;
}

int32_t sae_trainer_train_toy_many(sae_trainer *const *trainers, int64_t count, const sae_toy *toy,
                                   int64_t n_steps)
{
    if (trainers == NULL || count < 1)
        return trainers == NULL ? SAE_E_NULL : SAE_E_SIZE;
    if (trainers[0] == NULL)
        return SAE_E_NULL;
    int32_t st = check_many(trainers, count, toy, n_steps);
    if (st != SAE_OK)
        return st;
    sae_trainer *t0 = trainers[0];
    int64_t b = t0->o.batch, d = t0->model->d;
    toy_pool *pool; /* one sampling workspace per call: the steps allocate nothing */
    if ((st = sae_toy_sampler_create(toy, b, &pool)) != SAE_OK)
        return sae_fail(&t0->err, st, "toy sampling workspace: %s", sae_toy_errmsg(toy));
    for (int64_t s = 0; s < n_steps && st == SAE_OK; s++) {
        double since = sae_train_now();
        st = sae_toy_sample_with(toy, pool, t0->sample_pos, b, t0->ws.x, d);
        double sampled = sae_train_now() - since;
        for (int64_t i = 0; i < count; i++)
            trainers[i]->phase_s[SAE_PHASE_GENERATE] += sampled;
        if (st != SAE_OK) {
            st = sae_fail(&t0->err, st, "toy sampling failed: %s", sae_toy_errmsg(toy));
            break;
        }
        for (int64_t i = 0; i < count && st == SAE_OK; i++) {
            sae_trainer *t = trainers[i];
            if (i > 0)
                memcpy(t->ws.x, t0->ws.x, (size_t)(b * d) * sizeof(float));
            if ((st = sae_train_step_rows(t, b)) == SAE_OK)
                t->sample_pos += (uint64_t)b;
        }
        for (int64_t i = 0; i < count && st == SAE_OK; i++)
            st = report(trainers[i], s + 1, n_steps);
    }
    sae_toy_sampler_free(toy, pool);
    return st;
}

int32_t sae_trainer_stat(const sae_trainer *trainer, int32_t which, double *value)
{
    if (trainer == NULL)
        return SAE_E_NULL;
    if (value == NULL)
        return sae_fail(&trainer->err, SAE_E_NULL, "stat: value is NULL");
    const sae_train_stats *s = &trainer->last;
    switch (which) {
    case SAE_STAT_STEP: *value = (double)trainer->step; break;
    case SAE_STAT_LOSS: *value = s->loss; break;
    case SAE_STAT_MSE: *value = s->mse; break;
    case SAE_STAT_SPARSITY: *value = s->sparsity; break;
    case SAE_STAT_L0: *value = s->l0; break;
    case SAE_STAT_DEAD: *value = (double)s->dead; break;
    case SAE_STAT_LR: *value = s->lr; break;
    case SAE_STAT_AUX: *value = s->aux; break;
    case SAE_STAT_REG: *value = s->reg; break;
    case SAE_STAT_GRAD_NORM: *value = s->grad_norm; break;
    case SAE_STAT_SAMPLES: *value = (double)trainer->sample_pos; break;
    case SAE_STAT_SPARSITY_COEFF: *value = s->coeff; break;
    case SAE_STAT_THRESHOLD: *value = trainer->model->batch_threshold; break;
    default:
        if (which >= SAE_STAT_TIME_GENERATE && which <= SAE_STAT_TIME_CONSTRAIN) {
            *value = trainer->phase_s[which - SAE_STAT_TIME_GENERATE];
            break;
        }
        return sae_fail(&trainer->err, SAE_E_UNKNOWN_KEY, "unknown statistic %d", (int)which);
    }
    return SAE_OK;
}
