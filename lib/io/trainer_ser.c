/* Trainer checkpoints in the native format: the model sections, the trainer
 * configuration and the trainer state (Adam moments, optimiser step, next toy sample,
 * steps since each latent fired, whether b_dec was initialised, the last step's
 * statistics). Everything else in a trainer is derived from its configuration or is
 * scratch, so a loaded trainer continues with the same bits as the one that was saved
 * (the trainer's RNG streams are keyed by (seed, step), the toy by sample index). */
#include "io/io_internal.h"
#include "train/trainer_internal.h"

#include <string.h>

/* Bytes of the state section for P parameters and L latents. */
static uint64_t state_size(uint64_t P, uint64_t L)
{
    return 8 + 8 + 4 + 4 + 9 * 8 + 8 + 8 + 8 * P + 8 + 8 * L;
}

static void write_state(sae_wbuf *w, const sae_trainer *t)
{
    const sae_train_stats *s = &t->last;
    int64_t P = t->model->lay.total, L = t->model->n_latents;
    sae_wr_i64(w, t->step);
    sae_wr_u64(w, t->sample_pos);
    sae_wr_u32(w, (uint32_t)(t->b_dec_done != 0));
    sae_wr_u32(w, (uint32_t)t->aux_k);
    const double stats[9] = {s->loss, s->mse, s->sparsity, s->aux, s->reg, s->l0, s->lr, s->coeff,
                             s->grad_norm};
    sae_wr_f64_array(w, stats, 9);
    sae_wr_i64(w, s->dead);
    sae_wr_u64(w, (uint64_t)P);
    sae_wr_f32_matrix(w, t->adam_m, 1, P, P);
    sae_wr_f32_matrix(w, t->adam_v, 1, P, P);
    sae_wr_u64(w, (uint64_t)L);
    sae_wr_i64_array(w, t->since_fired, L);
}

int32_t sae_trainer_serialize(const sae_trainer *trainer, void *buf, size_t cap, size_t *written)
{
    if (trainer == NULL)
        return SAE_E_NULL;
    if (written == NULL)
        return sae_fail(&trainer->err, SAE_E_NULL, "trainer_serialize: written is NULL");
    sae_wbuf w;
    sae_wbuf_init(&w, buf, cap);
    sae_fmt_begin(&w, SAE_OBJECT_TRAINER);
    sae_io_write_model_sections(&w, trainer->model);
    size_t at = sae_fmt_section_begin(&w, SAE_TAG_TRAINER_CFG);
    sae_io_write_config(&w, trainer->cfg);
    sae_fmt_section_end(&w, at);
    at = sae_fmt_section_begin(&w, SAE_TAG_TRAINER_STATE);
    write_state(&w, trainer);
    sae_fmt_section_end(&w, at);
    return sae_fmt_finish(&w, written, &trainer->err, "trainer_serialize", cap);
}

/* ---- reading -------------------------------------------------------------------- */

/* Fill a freshly created trainer from the state section (its size already checked). */
static int32_t read_state(sae_rbuf r, sae_trainer *t, sae_io_msg m)
{
    sae_train_stats *s = &t->last;
    int64_t P = t->model->lay.total, L = t->model->n_latents;
    int64_t step = sae_rd_i64(&r);
    uint64_t sample_pos = sae_rd_u64(&r);
    uint32_t b_dec_done = sae_rd_u32(&r), aux_k = sae_rd_u32(&r);
    double v[9];
    for (int k = 0; k < 9; k++)
        v[k] = sae_rd_f64(&r);
    int64_t dead = sae_rd_i64(&r);
    if (step < 0 || b_dec_done > 1 || aux_k != (uint32_t)t->aux_k || dead < 0 || dead > L)
        return sae_io_fail(m, SAE_E_CORRUPT, "trainer state: step %lld, aux_k %u (expected %d), "
                           "dead %lld are inconsistent", (long long)step, (unsigned)aux_k,
                           (int)t->aux_k, (long long)dead);
    if ((uint64_t)sae_rd_u64(&r) != (uint64_t)P ||
        !sae_rd_f32_matrix(&r, t->adam_m, 1, P, P) || !sae_rd_f32_matrix(&r, t->adam_v, 1, P, P) ||
        (uint64_t)sae_rd_u64(&r) != (uint64_t)L)
        return sae_io_fail(m, SAE_E_CORRUPT, "trainer state does not match the model's size");
    for (int64_t j = 0; j < L; j++)
        if ((t->since_fired[j] = sae_rd_i64(&r)) < 0)
            return sae_io_fail(m, SAE_E_CORRUPT, "trainer state: negative since_fired[%lld]", (long long)j);
    if (r.bad || sae_rbuf_left(&r) != 0)
        return sae_io_fail(m, SAE_E_CORRUPT, "trainer state section has the wrong size");
    if (!sae_all_finite_f32(t->adam_m, P) || !sae_all_finite_f32(t->adam_v, P))
        return sae_io_fail(m, SAE_E_NONFINITE, "Adam moments hold NaN or infinity");
    t->step = step;
    t->sample_pos = sample_pos;
    t->b_dec_done = (int32_t)b_dec_done;
    *s = (sae_train_stats){v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], dead};
    return SAE_OK;
}

static int32_t build_trainer(const sae_rbuf *body, const sae_allocator *alloc, sae_trainer **out,
                             sae_io_msg m)
{
    int32_t st;
    if ((st = sae_fmt_require(&body[3], "trainer configuration", m)) != SAE_OK ||
        (st = sae_fmt_require(&body[4], "trainer state", m)) != SAE_OK)
        return st;
    sae_model *mdl;
    if ((st = sae_io_read_model(&body[0], &body[1], &body[2], alloc, &mdl, m)) != SAE_OK)
        return st;
    sae_config *cfg = NULL;
    sae_trainer *t = NULL;
    uint64_t want = state_size((uint64_t)mdl->lay.total, (uint64_t)mdl->n_latents);
    if (body[4].len != want)
        st = sae_io_fail(m, SAE_E_CORRUPT, "trainer state has %zu bytes, the model needs %llu",
                         body[4].len, (unsigned long long)want);
    else if ((st = sae_io_read_section_config(body[3], SAE_KIND_TRAINER, "trainer", alloc, &cfg,
                                                  m)) == SAE_OK &&
             (st = sae_trainer_create(&t, mdl, cfg, alloc)) != SAE_OK)
        sae_io_fail(m, st, "creating the trainer failed: %s", sae_status_str(st));
    sae_config_free(cfg);
    sae_model_free(mdl); /* the trainer holds its own reference */
    if (st == SAE_OK)
        st = read_state(body[4], t, m);
    if (st != SAE_OK) {
        sae_trainer_free(t);
        return st;
    }
    *out = t;
    return SAE_OK;
}

int32_t sae_trainer_deserialize(sae_trainer **out, const void *buf, size_t len,
                                const sae_allocator *alloc, char *msg, size_t msg_cap)
{
    sae_io_msg m;
    sae_rbuf payload, body[5];
    const uint32_t tags[5] = {SAE_TAG_MODEL_CFG, SAE_TAG_TENSORS, SAE_TAG_MODEL_STATE,
                              SAE_TAG_TRAINER_CFG, SAE_TAG_TRAINER_STATE};
    int32_t st = sae_io_reader_start(out, msg, msg_cap, &m);
    if (st == SAE_OK)
        st = sae_fmt_open(buf, len, SAE_OBJECT_TRAINER, &payload, m);
    if (st == SAE_OK)
        st = sae_fmt_sections(payload, tags, 5, body, m);
    if (st == SAE_OK)
        st = build_trainer(body, alloc, out, m);
    return st;
}
