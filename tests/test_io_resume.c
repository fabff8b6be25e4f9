/* Trainer checkpoints resume bit-exactly: N steps, save, load into a fresh trainer, M
 * more steps gives the same parameters, Adam moments and statistics as N + M steps in
 * one go, for every architecture and a spread of trainer configurations (schedules,
 * warm-ups, resampling across the save point, AuxK, clipping, regularisers, b_dec
 * initialisation, two threads). */
#include "test_util.h"

#include "train/trainer_internal.h"

#include <stdlib.h>
#include <string.h>

enum { D = 8, L = 16, N_STEPS = 7, M_STEPS = 6 };

typedef struct tcase {
    const char *name;
    int32_t arch;
    int tied;
    const char *k1; double v1;
    const char *k2; double v2;
    const char *k3; double v3;
} tcase;

static sae_toy *make_toy(void)
{
    sae_config *c = test_config(SAE_KIND_TOY, "n_features", 24.0, "d", (double)D, "seed", 5.0,
                                "fire_prob", 0.15, NULL);
    sae_toy *t;
    assert_ok(sae_toy_create(&t, c, NULL));
    sae_config_free(c);
    return t;
}

static sae_trainer *make_trainer(const tcase *tc)
{
    sae_config *mc = test_config(SAE_KIND_MODEL, "arch", (double)tc->arch, "d_in", (double)D,
                                 "n_latents", (double)L, "k", 3.0, "tied", (double)tc->tied,
                                 "model_seed", 17.0, NULL);
    if (tc->arch == SAE_ARCH_MATRYOSHKA) {
        int64_t widths[3] = {4, 8, L};
        assert_ok(sae_config_set_i64_array(mc, SAE_MODEL_MATRYOSHKA_WIDTHS, widths, 3));
    }
    sae_model *m;
    assert_ok(sae_model_create(&m, mc, NULL));
    sae_config_free(mc);
    sae_config *tcfg = test_config(SAE_KIND_TRAINER, "batch_size", 32.0, "lr", 3e-3,
                                   "trainer_seed", 9.0, NULL);
    const char *keys[3] = {tc->k1, tc->k2, tc->k3};
    double vals[3] = {tc->v1, tc->v2, tc->v3};
    for (int i = 0; i < 3; i++)
        if (keys[i] != NULL && sae_config_set_by_name(tcfg, keys[i], vals[i]) != SAE_OK)
            fail_msg("%s: %s", tc->name, sae_config_errmsg(tcfg));
    sae_trainer *t;
    int32_t st = sae_trainer_create(&t, m, tcfg, NULL);
    if (st != SAE_OK)
        fail_msg("%s: trainer_create: %s", tc->name, sae_status_str(st));
    sae_model_free(m);
    sae_config_free(tcfg);
    return t;
}

static void assert_trainers_equal(const tcase *tc, const sae_trainer *a, const sae_trainer *b)
{
    const sae_model *ma = a->model, *mb = b->model;
    size_t p = sizeof(float) * (size_t)ma->lay.total;
    if (memcmp(ma->params, mb->params, p) != 0)
        fail_msg("%s: parameters differ after resuming", tc->name);
    if (memcmp(a->adam_m, b->adam_m, p) != 0 || memcmp(a->adam_v, b->adam_v, p) != 0)
        fail_msg("%s: Adam moments differ after resuming", tc->name);
    assert_memory_equal(&ma->batch_threshold, &mb->batch_threshold, sizeof(double));
    assert_memory_equal(a->since_fired, b->since_fired, sizeof(int64_t) * (size_t)L);
    for (int32_t s = SAE_STAT_STEP; s <= SAE_STAT_THRESHOLD; s++) {
        double x, y;
        assert_ok(sae_trainer_stat(a, s, &x));
        assert_ok(sae_trainer_stat(b, s, &y));
        if (memcmp(&x, &y, sizeof x) != 0)
            fail_msg("%s: statistic %d differs: %.17g vs %.17g", tc->name, (int)s, x, y);
    }
}

static void run_case(const tcase *tc, const sae_toy *toy)
{
    sae_trainer *once = make_trainer(tc), *first = make_trainer(tc);
    assert_ok(sae_trainer_train_toy(once, toy, N_STEPS + M_STEPS));
    assert_ok(sae_trainer_train_toy(first, toy, N_STEPS));
    size_t need, got;
    assert_ok(sae_trainer_serialize(first, NULL, 0, &need));
    uint8_t *buf = malloc(need);
    assert_ok(sae_trainer_serialize(first, buf, need, &got));
    sae_trainer_free(first); /* the checkpoint alone carries the run on */
    sae_trainer *resumed = NULL;
    char msg[256];
    int32_t st = sae_trainer_deserialize(&resumed, buf, need, NULL, msg, sizeof msg);
    if (st != SAE_OK)
        fail_msg("%s: deserialize: %s (%s)", tc->name, sae_status_str(st), msg);
    double step;
    assert_ok(sae_trainer_stat(resumed, SAE_STAT_STEP, &step));
    assert_int_equal((int64_t)step, N_STEPS);
    assert_ok(sae_trainer_train_toy(resumed, toy, M_STEPS));
    assert_trainers_equal(tc, once, resumed);
    /* saving the resumed trainer gives the same bytes as saving the uninterrupted one */
    size_t n1, n2;
    assert_ok(sae_trainer_serialize(once, NULL, 0, &n1));
    assert_ok(sae_trainer_serialize(resumed, NULL, 0, &n2));
    assert_int_equal(n1, n2);
    uint8_t *b1 = malloc(n1), *b2 = malloc(n2);
    assert_ok(sae_trainer_serialize(once, b1, n1, &n1));
    assert_ok(sae_trainer_serialize(resumed, b2, n2, &n2));
    assert_memory_equal(b1, b2, n1);
    free(b1);
    free(b2);
    free(buf);
    sae_trainer_free(resumed);
    sae_trainer_free(once);
}

static const tcase cases[] = {
    {"relu default", SAE_ARCH_RELU, 0, NULL, 0, NULL, 0, NULL, 0},
    {"relu tied, b_dec mean", SAE_ARCH_RELU, 1, "b_dec_init", 1, NULL, 0, NULL, 0},
    {"relu cosine lr, warm-ups", SAE_ARCH_RELU, 0, "lr_schedule", 2, "lr_decay_steps", 13,
     "l1_warmup_steps", 5},
    {"relu linear lr, lr warm-up, clip", SAE_ARCH_RELU, 0, "lr_schedule", 1, "lr_warmup_steps", 4,
     "grad_clip", 0.05},
    {"relu resampling across the save", SAE_ARCH_RELU, 0, "dead_steps", 2, "resample_every", 4,
     "l1_coefficient", 5.0},
    {"relu tiny batch: dead latents, resampling", SAE_ARCH_RELU, 0, "batch_size", 2, "dead_steps", 2,
     "resample_every", 3},
    {"topk tiny batch: dead latents feed AuxK", SAE_ARCH_TOPK, 0, "batch_size", 2, "dead_steps", 2,
     "aux_k", 2},
    {"relu ortho chunked", SAE_ARCH_RELU, 0, "ortho_coefficient", 0.1, "ortho_mode", 1,
     "ortho_chunk", 4},
    {"relu two threads, geomedian", SAE_ARCH_RELU, 0, "n_threads", 2, "b_dec_init", 2,
     "thread_min_work", 0},
    {"topk", SAE_ARCH_TOPK, 0, NULL, 0, NULL, 0, NULL, 0},
    {"topk auxk dead", SAE_ARCH_TOPK, 0, "dead_steps", 1, "aux_k", 4, NULL, 0},
    {"batchtopk", SAE_ARCH_BATCHTOPK, 0, NULL, 0, NULL, 0, NULL, 0},
    {"jumprelu", SAE_ARCH_JUMPRELU, 0, "l1_coefficient", 0.01, NULL, 0, NULL, 0},
    {"gated", SAE_ARCH_GATED, 0, NULL, 0, NULL, 0, NULL, 0},
    {"matryoshka", SAE_ARCH_MATRYOSHKA, 0, "dead_steps", 3, NULL, 0, NULL, 0},
    {"matryoshka two threads", SAE_ARCH_MATRYOSHKA, 0, "n_threads", 2, "thread_min_work", 0, NULL,
     0},
};

static void test_resume_bit_exact(void **state)
{
    (void)state;
    sae_toy *toy = make_toy();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run_case(&cases[i], toy);
    sae_toy_free(toy);
}

/* A checkpoint taken from inside a progress callback (the state is consistent there) is
 * the same as one taken after a run of that many steps. */
typedef struct snap {
    sae_trainer *t;
    int64_t at;
    uint8_t *buf;
    size_t len;
} snap;

static int32_t snapshot(void *user, int64_t step, int64_t total, double loss)
{
    (void)total, (void)loss;
    snap *s = user;
    if (step == s->at) {
        assert_ok(sae_trainer_serialize(s->t, NULL, 0, &s->len));
        s->buf = malloc(s->len);
        assert_ok(sae_trainer_serialize(s->t, s->buf, s->len, &s->len));
    }
    return 0;
}

static void test_checkpoint_from_callback(void **state)
{
    (void)state;
    sae_toy *toy = make_toy();
    sae_trainer *a = make_trainer(&cases[8]), *b = make_trainer(&cases[8]);
    snap s = {a, 5, NULL, 0};
    assert_ok(sae_trainer_set_callbacks(a, NULL, snapshot, &s));
    assert_ok(sae_trainer_train_toy(a, toy, 9));
    assert_non_null(s.buf);
    assert_ok(sae_trainer_train_toy(b, toy, 5));
    size_t n;
    assert_ok(sae_trainer_serialize(b, NULL, 0, &n));
    uint8_t *want = malloc(n);
    assert_ok(sae_trainer_serialize(b, want, n, &n));
    assert_int_equal(n, s.len);
    assert_memory_equal(want, s.buf, n);
    free(want);
    free(s.buf);
    sae_trainer_free(a);
    sae_trainer_free(b);
    sae_toy_free(toy);
}

/* Damaged checkpoints are refused with a message and leave *out alone. */
static void test_checkpoint_damage(void **state)
{
    (void)state;
    sae_toy *toy = make_toy();
    sae_trainer *t = make_trainer(&cases[4]);
    assert_ok(sae_trainer_train_toy(t, toy, 3));
    size_t len;
    assert_ok(sae_trainer_serialize(t, NULL, 0, &len));
    uint8_t *buf = malloc(len), *bad = malloc(len);
    assert_ok(sae_trainer_serialize(t, buf, len, &len));
    assert_status(sae_trainer_serialize(t, buf, len - 1, &len), SAE_E_BUFFER_TOO_SMALL);
    for (size_t i = 0; i < len; i += 7) {
        memcpy(bad, buf, len);
        bad[i] ^= 0x40;
        sae_trainer *out = (sae_trainer *)bad;
        char msg[256] = "";
        int32_t st = sae_trainer_deserialize(&out, bad, len, NULL, msg, sizeof msg);
        assert_true(st == SAE_E_CORRUPT || st == SAE_E_FORMAT_VERSION || st == SAE_E_NOT_SUPPORTED ||
                    st == SAE_E_MISMATCH);
        assert_true(out == (sae_trainer *)bad);
        assert_true(msg[0] != '\0');
    }
    for (size_t n = 0; n < len; n += 5) {
        sae_trainer *out = NULL;
        assert_status(sae_trainer_deserialize(&out, buf, n, NULL, NULL, 0), SAE_E_CORRUPT);
        assert_null(out);
    }
    /* a model buffer is not a checkpoint */
    size_t mlen;
    assert_ok(sae_model_serialize(sae_trainer_model(t), NULL, 0, &mlen));
    uint8_t *mbuf = malloc(mlen);
    assert_ok(sae_model_serialize(sae_trainer_model(t), mbuf, mlen, &mlen));
    sae_trainer *out = NULL;
    assert_status(sae_trainer_deserialize(&out, mbuf, mlen, NULL, NULL, 0), SAE_E_MISMATCH);
    /* ...but the model inside a checkpoint is a model */
    free(mbuf);
    free(bad);
    free(buf);
    sae_trainer_free(t);
    sae_toy_free(toy);
}

/* Every allocation failure while loading a checkpoint: SAE_E_NOMEM, nothing leaked. */
static void test_checkpoint_nomem(void **state)
{
    (void)state;
    sae_toy *toy = make_toy();
    sae_trainer *t = make_trainer(&cases[7]);
    assert_ok(sae_trainer_train_toy(t, toy, 2));
    size_t len;
    assert_ok(sae_trainer_serialize(t, NULL, 0, &len));
    uint8_t *buf = malloc(len);
    assert_ok(sae_trainer_serialize(t, buf, len, &len));
    int ok = 0;
    for (int64_t k = 1; k < 400 && !ok; k++) {
        test_alloc ta = {0, 0, k};
        sae_allocator al = test_alloc_hook(&ta);
        sae_trainer *out = NULL;
        int32_t st = sae_trainer_deserialize(&out, buf, len, &al, NULL, 0);
        if (st == SAE_OK) {
            ok = 1;
            sae_trainer_free(out);
        } else {
            assert_status(st, SAE_E_NOMEM);
            assert_null(out);
        }
        assert_int_equal(ta.live, 0);
    }
    assert_true(ok);
    free(buf);
    sae_trainer_free(t);
    sae_toy_free(toy);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resume_bit_exact),
        cmocka_unit_test(test_checkpoint_from_callback),
        cmocka_unit_test(test_checkpoint_damage),
        cmocka_unit_test(test_checkpoint_nomem),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
