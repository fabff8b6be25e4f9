/* Trainer behaviour through the public API: recovery of toy features (MMCS), callbacks,
 * cancellation, divergence, sweeps on one stream, allocation-free steps. */
#include "test_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct setup {
    sae_toy *toy;
    sae_model *model;
    sae_trainer *trainer;
} setup;

static sae_toy *easy_toy(void)
{
    sae_config *c = test_config(SAE_KIND_TOY, "n_features", 32.0, "d", 64.0, "seed", 7.0,
                                "fire_prob", 0.05, NULL);
    sae_toy *toy = NULL;
    assert_ok(sae_toy_create(&toy, c, NULL));
    sae_config_free(c);
    return toy;
}

/* Mean over true features of the best |cosine| with any decoder row (Sharkey et al. 2022). */
static double mmcs(const sae_toy *toy, const sae_model *m)
{
    int64_t nf, d, dd, l;
    assert_ok(sae_toy_dims(toy, &nf, &d));
    assert_ok(sae_model_dims(m, &dd, &l));
    float *f = malloc((size_t)(nf * d) * sizeof *f), *w = malloc((size_t)(l * d) * sizeof *w);
    assert_ok(sae_toy_dictionary(toy, f, d));
    assert_ok(sae_model_get_tensor(m, SAE_TENSOR_W_DEC, w, d));
    double total = 0.0;
    for (int64_t i = 0; i < nf; i++) {
        double best = 0.0, fn = 0.0;
        for (int64_t c = 0; c < d; c++)
            fn += (double)f[i * d + c] * f[i * d + c];
        for (int64_t j = 0; j < l; j++) {
            double dot = 0.0, wn = 0.0;
            for (int64_t c = 0; c < d; c++) {
                dot += (double)f[i * d + c] * w[j * d + c];
                wn += (double)w[j * d + c] * w[j * d + c];
            }
            double cs = wn > 0.0 ? fabs(dot) / sqrt(fn * wn) : 0.0;
            if (cs > best)
                best = cs;
        }
        total += best;
    }
    free(f);
    free(w);
    return total / (double)nf;
}

static sae_model *make_model(double arch, double l, double k)
{
    sae_config *c = test_config(SAE_KIND_MODEL, "d_in", 64.0, "n_latents", l, "arch", arch,
                                "model_seed", 3.0, "k", k, NULL);
    sae_model *m = NULL;
    assert_ok(sae_model_create(&m, c, NULL));
    sae_config_free(c);
    return m;
}

typedef struct recipe {
    const char *name;
    double arch, k, tied;
    const char *keys[6];
    double vals[6];
    int64_t steps;
} recipe;

/* Train one recipe on the foundation's easy toy (N = 32, d = 64, p = 0.05, 64 latents). */
static double train_recipe(const recipe *rc)
{
    sae_toy *toy = easy_toy();
    sae_config *mc = test_config(SAE_KIND_MODEL, "d_in", 64.0, "n_latents", 64.0, "arch",
                                 rc->arch, "model_seed", 3.0, "k", rc->k, "tied", rc->tied, NULL);
    if (rc->arch == SAE_ARCH_MATRYOSHKA) {
        int64_t w[3] = {16, 32, 64};
        assert_ok(sae_config_set_i64_array(mc, SAE_MODEL_MATRYOSHKA_WIDTHS, w, 3));
    }
    sae_model *m = NULL;
    assert_ok(sae_model_create(&m, mc, NULL));
    sae_config *tc = test_config(SAE_KIND_TRAINER, "batch_size", test_small_scale() ? 64.0 : 256.0,
                                 "lr", 3e-3, NULL);
    for (int i = 0; i < 6 && rc->keys[i] != NULL; i++)
        assert_ok(sae_config_set_by_name(tc, rc->keys[i], rc->vals[i]));
    sae_trainer *t = NULL;
    assert_ok(sae_trainer_create(&t, m, tc, NULL));
    double before = mmcs(toy, m);
    assert_ok(sae_trainer_train_toy(t, toy, test_small_scale() ? rc->steps / 5 : rc->steps));
    double v = mmcs(toy, m), l0, mse, dead;
    if (test_small_scale()) /* a fifth of the steps: training must at least be under way */
        assert_true(v >= before + 0.1);
    assert_ok(sae_trainer_stat(t, SAE_STAT_L0, &l0));
    assert_ok(sae_trainer_stat(t, SAE_STAT_MSE, &mse));
    assert_ok(sae_trainer_stat(t, SAE_STAT_DEAD, &dead));
    print_message("%-26s mmcs %.4f  L0 %.2f  mse %.5f  dead %.0f\n", rc->name, v, l0, mse, dead);
    sae_trainer_free(t);
    sae_model_free(m); /* trainer freed first here; the other order is tested elsewhere */
    sae_config_free(tc);
    sae_config_free(mc);
    sae_toy_free(toy);
    return v;
}

static const recipe recipes[] = {
    {"relu (decoder-norm L1)", SAE_ARCH_RELU, 8, 0, {"l1_coefficient", "decoder_renorm"}, {0.03, 0}, 1500},
    {"relu (L1, unit decoder)", SAE_ARCH_RELU, 8, 0, {"l1_coefficient", "l1_decoder_norm"}, {0.03, 0}, 1500},
    {"relu tied", SAE_ARCH_RELU, 8, 1, {"l1_coefficient"}, {0.03}, 1500},
    {"topk k=2", SAE_ARCH_TOPK, 2, 0, {NULL}, {0}, 1500},
    /* BatchTopK spends k x rows activations where the rows need them: k = 1 < the true mean
     * L0 of 1.6 still recovers every feature, while k = 2 leaves budget for mixtures */
    {"batchtopk k=1", SAE_ARCH_BATCHTOPK, 1, 0, {NULL}, {0}, 1500},
    {"jumprelu", SAE_ARCH_JUMPRELU, 8, 0, {"l1_coefficient"}, {0.01}, 1500},
    {"gated", SAE_ARCH_GATED, 8, 0, {"l1_coefficient"}, {0.3}, 1500},
    {"matryoshka k=1 (16,32,64)", SAE_ARCH_MATRYOSHKA, 1, 0, {NULL}, {0}, 1500},
};

/* MMCS every recipe must reach: 0.95 after the full run; after the fifth of it that
 * SAE_TEST_SCALE=small trains on batches of 64 (under valgrind), well above the ~0.4 of
 * the initialisation. */
static double recovery_bar(void) { return test_small_scale() ? 0.55 : 0.95; }

static void test_every_architecture_recovers_easy_toy(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof recipes / sizeof recipes[0]; i++) {
        double v = train_recipe(&recipes[i]);
        if (v < recovery_bar() && !getenv("SAE_TEST_SURVEY"))
            fail_msg("%s: mmcs %.4f < %.2f", recipes[i].name, v, recovery_bar());
    }
}


/* ---- behaviour ------------------------------------------------------------------------ */

static sae_trainer *small_trainer(double arch, const char *k1, double v1, const char *k2,
                                  double v2, const sae_allocator *al, sae_model **mout)
{
    sae_config *mc = test_config(SAE_KIND_MODEL, "d_in", 64.0, "n_latents", 48.0, "arch", arch,
                                 "k", 2.0, "model_seed", 5.0, NULL);
    if (arch == SAE_ARCH_MATRYOSHKA) {
        int64_t w[2] = {16, 48};
        assert_ok(sae_config_set_i64_array(mc, SAE_MODEL_MATRYOSHKA_WIDTHS, w, 2));
    }
    sae_model *m = NULL;
    assert_ok(sae_model_create(&m, mc, al));
    /* thread_min_work 0: n_threads is honoured at this toy size (tests of threads) */
    sae_config *tc = test_config(SAE_KIND_TRAINER, "batch_size", 64.0, "lr", 3e-3,
                                 "l1_coefficient", 0.1, "thread_min_work", 0.0, NULL);
    if (k1 != NULL)
        assert_ok(sae_config_set_by_name(tc, k1, v1));
    if (k2 != NULL)
        assert_ok(sae_config_set_by_name(tc, k2, v2));
    sae_trainer *t = NULL;
    assert_ok(sae_trainer_create(&t, m, tc, al));
    sae_config_free(mc);
    sae_config_free(tc);
    *mout = m;
    return t;
}

static void snapshot(const sae_model *m, float *w)
{
    assert_ok(sae_model_get_tensor(m, SAE_TENSOR_W_DEC, w, 64));
}

typedef struct progress_log {
    int64_t calls, last_step, cancel_at;
    sae_trainer *t;
    double lr[16], coeff[16];
    float w[48 * 64];
} progress_log;

static int32_t on_progress(void *user, int64_t step, int64_t total, double loss)
{
    progress_log *p = user;
    assert_true(step == p->last_step + 1 && step <= total && isfinite(loss));
    p->last_step = step;
    if (p->calls < 16) {
        assert_ok(sae_trainer_stat(p->t, SAE_STAT_LR, &p->lr[p->calls]));
        assert_ok(sae_trainer_stat(p->t, SAE_STAT_SPARSITY_COEFF, &p->coeff[p->calls]));
    }
    p->calls++;
    snapshot(sae_trainer_model(p->t), p->w);
    return p->cancel_at > 0 && p->calls == p->cancel_at;
}

static void test_progress_cancel_and_continue(void **state)
{
    (void)state;
    sae_toy *toy = easy_toy();
    sae_model *m;
    sae_trainer *t = small_trainer(SAE_ARCH_RELU, NULL, 0, NULL, 0, NULL, &m);
    progress_log p = {0};
    p.t = t, p.cancel_at = 3;
    assert_ok(sae_trainer_set_callbacks(t, NULL, on_progress, &p));
    assert_status(sae_trainer_train_toy(t, toy, 10), SAE_E_CANCELLED);
    double step, samples;
    assert_ok(sae_trainer_stat(t, SAE_STAT_STEP, &step));
    assert_ok(sae_trainer_stat(t, SAE_STAT_SAMPLES, &samples));
    assert_close(step, 3, 0);
    assert_close(samples, 3 * 64, 0);
    p.cancel_at = 0, p.last_step = 0;
    assert_ok(sae_trainer_train_toy(t, toy, 4));
    assert_ok(sae_trainer_stat(t, SAE_STAT_STEP, &step));
    assert_close(step, 7, 0);
    /* a cancelled run continued equals an uninterrupted one */
    sae_model *m2;
    sae_trainer *t2 = small_trainer(SAE_ARCH_RELU, NULL, 0, NULL, 0, NULL, &m2);
    assert_ok(sae_trainer_train_toy(t2, toy, 7));
    float a[48 * 64], b[48 * 64];
    snapshot(m, a);
    snapshot(m2, b);
    assert_memory_equal(a, b, sizeof a);
    sae_trainer_free(t2);
    sae_model_free(m2);
    /* freeing the model first keeps it alive for the trainer */
    sae_model_free(m);
    p.last_step = 0;
    assert_ok(sae_trainer_train_toy(t, toy, 1));
    sae_trainer_free(t);
    sae_toy_free(toy);
}

static void test_schedules(void **state)
{
    (void)state;
    sae_toy *toy = easy_toy();
    sae_model *m;
    sae_trainer *t = small_trainer(SAE_ARCH_RELU, "lr_warmup_steps", 4, "lr_schedule",
                                   SAE_LR_COSINE, NULL, &m);
    sae_trainer_free(t);
    sae_model_free(m);
    sae_config *tc = test_config(SAE_KIND_TRAINER, "batch_size", 64.0, "lr", 0.01, "lr_end", 0.001,
                                 "lr_warmup_steps", 4.0, "lr_schedule", (double)SAE_LR_COSINE,
                                 "lr_decay_steps", 8.0, "l1_coefficient", 0.2, "l1_warmup_steps",
                                 5.0, NULL);
    sae_config *mc = test_config(SAE_KIND_MODEL, "d_in", 64.0, "n_latents", 48.0, NULL);
    assert_ok(sae_model_create(&m, mc, NULL));
    assert_ok(sae_trainer_create(&t, m, tc, NULL));
    progress_log p = {0};
    p.t = t;
    assert_ok(sae_trainer_set_callbacks(t, NULL, on_progress, &p));
    assert_ok(sae_trainer_train_toy(t, toy, 14));
    const double pi = 3.14159265358979323846;
    for (int s = 0; s < 14; s++) {
        double want;
        if (s < 4)
            want = 0.01 * (s + 1) / 4.0;
        else if (s - 4 < 8)
            want = 0.001 + 0.009 * 0.5 * (1 + cos(pi * (s - 4) / 8.0));
        else
            want = 0.001;
        assert_close(p.lr[s], want, 1e-12);
        assert_close(p.coeff[s], s < 5 ? 0.2 * (s + 1) / 5.0 : 0.2, 1e-12);
    }
    sae_trainer_free(t);
    sae_model_free(m);
    sae_config_free(tc);
    sae_config_free(mc);
    sae_toy_free(toy);
}

static void test_divergence_keeps_last_good_step(void **state)
{
    (void)state;
    sae_toy *toy = easy_toy();
    sae_model *m;
    sae_trainer *t = small_trainer(SAE_ARCH_RELU, "lr", 1e11, "decoder_renorm", 0, NULL, &m);
    progress_log *p = calloc(1, sizeof *p);
    p->t = t;
    assert_ok(sae_trainer_set_callbacks(t, NULL, on_progress, p));
    snapshot(m, p->w);
    assert_status(sae_trainer_train_toy(t, toy, 200), SAE_E_DIVERGED);
    double step;
    assert_ok(sae_trainer_stat(t, SAE_STAT_STEP, &step));
    assert_close(step, (double)p->calls, 0);
    float now[48 * 64];
    snapshot(m, now);
    assert_memory_equal(now, p->w, sizeof now);
    for (int i = 0; i < 48 * 64; i++)
        assert_true(isfinite(now[i]));
    print_message("diverged after %lld good steps: %s\n", (long long)p->calls, sae_trainer_errmsg(t));
    free(p);
    sae_trainer_free(t);
    sae_model_free(m);
    sae_toy_free(toy);
}

/* A sweep trained on one stream equals the same trainers trained one by one. */
static void test_many_equals_independent(void **state)
{
    (void)state;
    sae_toy *toy = easy_toy();
    const double archs[3] = {SAE_ARCH_RELU, SAE_ARCH_TOPK, SAE_ARCH_BATCHTOPK};
    sae_model *ma[3], *mb[3];
    sae_trainer *ta[3], *tb[3];
    for (int i = 0; i < 3; i++) {
        ta[i] = small_trainer(archs[i], "l1_coefficient", 0.05 * (i + 1), NULL, 0, NULL, &ma[i]);
        tb[i] = small_trainer(archs[i], "l1_coefficient", 0.05 * (i + 1), NULL, 0, NULL, &mb[i]);
        assert_ok(sae_trainer_train_toy(tb[i], toy, 12));
    }
    assert_ok(sae_trainer_train_toy_many(ta, 3, toy, 12));
    for (int i = 0; i < 3; i++) {
        float a[48 * 64], b[48 * 64];
        snapshot(ma[i], a);
        snapshot(mb[i], b);
        assert_memory_equal(a, b, sizeof a);
        sae_trainer_free(ta[i]);
        sae_trainer_free(tb[i]);
        sae_model_free(ma[i]);
        sae_model_free(mb[i]);
    }
    sae_toy_free(toy);
}

/* No heap allocation inside a step once the first step has run, for every architecture
 * and the optional machinery (AuxK, resampling, orthogonality, schedules, clipping). */
static void test_no_allocation_after_first_step(void **state)
{
    (void)state;
    for (int arch = SAE_ARCH_RELU; arch <= SAE_ARCH_MATRYOSHKA; arch++) {
        test_alloc counts = {0, 0, 0};
        sae_allocator al = test_alloc_hook(&counts);
        /* the toy shares the counting allocator: its sampling must not allocate per step */
        sae_config *tc = test_config(SAE_KIND_TOY, "n_features", 32.0, "d", 64.0, "seed", 7.0,
                                     "fire_prob", 0.05, NULL);
        sae_toy *toy = NULL;
        assert_ok(sae_toy_create(&toy, tc, &al));
        sae_config_free(tc);
        sae_model *m;
        sae_trainer *t = small_trainer(arch, "dead_steps", 2, "resample_every", 3, &al, &m);
        assert_ok(sae_trainer_train_toy(t, toy, 1));
        int64_t before = counts.calls;
        assert_ok(sae_trainer_train_toy(t, toy, 1));
        int64_t per_call = counts.calls - before; /* the call's sampling workspace */
        before = counts.calls;
        assert_ok(sae_trainer_train_toy(t, toy, 12));
        if (counts.calls - before != per_call)
            fail_msg("arch %d: %lld allocations in a 12-step call, %lld in a 1-step call", arch,
                     (long long)(counts.calls - before), (long long)per_call);
        before = counts.calls;
        float x[64 * 64];
        assert_ok(sae_toy_sample(toy, 0, 64, x, 64));
        counts.calls = before; /* plain sampling may allocate per call; steps on data may not */
        assert_ok(sae_trainer_step(t, x, 64, 64));
        assert_ok(sae_trainer_train_data(t, x, 64, 64, 5));
        if (counts.calls != before)
            fail_msg("arch %d: %lld allocations in steps on caller data", arch,
                     (long long)(counts.calls - before));
        sae_trainer_free(t);
        sae_model_free(m);
        sae_toy_free(toy);
        assert_int_equal(counts.live, 0);
    }
}

/* Caller data with a row stride, cycling: equals explicit steps on the same rows. */
/* The same for the TopK family on the low-precision encoder path (bf16_scores: d_in >= 64
 * and d_in x n_latents >= 65,536, lib/train/workspace.c; where the CPU runs no kernel this
 * is the float path again), with AuxK. */
static void test_no_allocation_low_precision(void **state)
{
    (void)state;
    const int64_t archs[] = {SAE_ARCH_TOPK, SAE_ARCH_BATCHTOPK};
    for (size_t a = 0; a < 2; a++) {
        test_alloc counts = {0, 0, 0};
        sae_allocator al = test_alloc_hook(&counts);
        sae_config *mc = test_config(SAE_KIND_MODEL, "d_in", 64.0, "n_latents", 2048.0, "arch",
                                     (double)archs[a], "k", 4.0, NULL);
        sae_config *tc = test_config(SAE_KIND_TRAINER, "batch_size", 64.0, "lr", 1e-3,
                                     "bf16_scores", 1.0, "aux_coefficient", 0.03, NULL);
        sae_model *m = NULL;
        sae_trainer *t = NULL;
        assert_ok(sae_model_create(&m, mc, &al));
        assert_ok(sae_trainer_create(&t, m, tc, &al));
        float x[64 * 64];
        sae_toy *toy = easy_toy();
        assert_ok(sae_toy_sample(toy, 0, 64, x, 64));
        sae_toy_free(toy);
        assert_ok(sae_trainer_step(t, x, 64, 64));
        int64_t before = counts.calls;
        assert_ok(sae_trainer_train_data(t, x, 64, 64, 4));
        if (counts.calls != before)
            fail_msg("arch %lld: %lld allocations in steps after the first", (long long)archs[a],
                     (long long)(counts.calls - before));
        sae_trainer_free(t);
        sae_model_free(m);
        sae_config_free(mc);
        sae_config_free(tc);
        assert_int_equal(counts.live, 0);
    }
}

static void test_train_data_stride_and_cycle(void **state)
{
    (void)state;
    sae_toy *toy = easy_toy();
    enum { ROWS = 100, LD = 70 };
    float *x = calloc(ROWS * LD, sizeof *x), *batch = calloc(64 * 64, sizeof *batch);
    assert_ok(sae_toy_sample(toy, 0, ROWS, x, LD));
    sae_model *ma, *mb;
    sae_trainer *ta = small_trainer(SAE_ARCH_TOPK, NULL, 0, NULL, 0, NULL, &ma);
    sae_trainer *tb = small_trainer(SAE_ARCH_TOPK, NULL, 0, NULL, 0, NULL, &mb);
    assert_ok(sae_trainer_train_data(ta, x, ROWS, LD, 3));
    for (int s = 0; s < 3; s++) {
        for (int r = 0; r < 64; r++)
            memcpy(batch + r * 64, x + ((s * 64 + r) % ROWS) * LD, 64 * sizeof(float));
        assert_ok(sae_trainer_step(tb, batch, 64, 64));
    }
    float a[48 * 64], b[48 * 64];
    snapshot(ma, a);
    snapshot(mb, b);
    assert_memory_equal(a, b, sizeof a);
    x[5] = NAN;
    assert_status(sae_trainer_train_data(ta, x, ROWS, LD, 1), SAE_E_NONFINITE);
    assert_status(sae_trainer_train_data(ta, x, ROWS, 10, 1), SAE_E_SIZE);
    assert_status(sae_trainer_train_data(ta, NULL, ROWS, LD, 1), SAE_E_NULL);
    sae_trainer_free(ta);
    sae_trainer_free(tb);
    sae_model_free(ma);
    sae_model_free(mb);
    free(x);
    free(batch);
    sae_toy_free(toy);
}

/* The thread count changes nothing in the result. */
static void test_threads_do_not_change_results(void **state)
{
    (void)state;
    sae_toy *toy = easy_toy();
    for (int arch = SAE_ARCH_RELU; arch <= SAE_ARCH_MATRYOSHKA; arch++) {
        sae_model *ma, *mb;
        sae_trainer *ta = small_trainer(arch, "n_threads", 1, "dead_steps", 3, NULL, &ma);
        sae_trainer *tb = small_trainer(arch, "n_threads", 2, "dead_steps", 3, NULL, &mb);
        assert_ok(sae_trainer_train_toy(ta, toy, 10));
        assert_ok(sae_trainer_train_toy(tb, toy, 10));
        float a[48 * 64], b[48 * 64];
        snapshot(ma, a);
        snapshot(mb, b);
        if (memcmp(a, b, sizeof a) != 0)
            fail_msg("arch %d: 1 and 2 threads differ", arch);
        if (arch == SAE_ARCH_RELU) { /* rows are checked in parts: the first bad row named */
            float x[64 * 64];
            for (int i = 0; i < 64 * 64; i++)
                x[i] = (float)(i % 7) * 0.1f;
            x[45 * 64 + 3] = INFINITY, x[50 * 64] = NAN; /* both in the second thread's part */
            x[40 * 64 + 63] = NAN;
            assert_status(sae_trainer_step(tb, x, 64, 64), SAE_E_NONFINITE);
            assert_non_null(strstr(sae_trainer_errmsg(tb), "row 40 "));
            x[20 * 64 + 1] = NAN; /* in the first part */
            assert_status(sae_trainer_step(tb, x, 64, 64), SAE_E_NONFINITE);
            assert_non_null(strstr(sae_trainer_errmsg(tb), "row 20 "));
            snapshot(mb, b);
            assert_memory_equal(a, b, sizeof a); /* nothing changed */
        }
        sae_trainer_free(ta);
        sae_trainer_free(tb);
        sae_model_free(ma);
        sae_model_free(mb);
    }
    sae_toy_free(toy);
}

/* BatchTopK: the inference threshold starts at the smallest kept activation and then
 * follows an EMA. Identity encoder and decoder, no biases, k = 1, rows
 * (0.9, 0.1), (0.3, 0.5): the 2 kept values are 0.9 and 0.5, so theta = 0.5; next batch
 * (0.2, 0.8), (0.6, 0.1) keeps 0.8, 0.6: theta = 0.5 + 0.01 (0.6 - 0.5) = 0.501. */
static void test_batchtopk_threshold_by_hand(void **state)
{
    (void)state;
    sae_config *mc = test_config(SAE_KIND_MODEL, "d_in", 2.0, "n_latents", 2.0, "arch",
                                 (double)SAE_ARCH_BATCHTOPK, "k", 1.0, "pre_bias", 0.0, NULL);
    sae_model *m = NULL;
    assert_ok(sae_model_create(&m, mc, NULL));
    float eye[4] = {1, 0, 0, 1}, zero[2] = {0, 0};
    assert_ok(sae_model_set_tensor(m, SAE_TENSOR_W_ENC, eye, 2));
    assert_ok(sae_model_set_tensor(m, SAE_TENSOR_W_DEC, eye, 2));
    assert_ok(sae_model_set_tensor(m, SAE_TENSOR_B_ENC, zero, 2));
    assert_ok(sae_model_set_tensor(m, SAE_TENSOR_B_DEC, zero, 2));
    sae_config *tc = test_config(SAE_KIND_TRAINER, "batch_size", 2.0, "lr", 0.0,
                                 "decoder_renorm", 0.0, NULL);
    sae_trainer *t = NULL;
    assert_ok(sae_trainer_create(&t, m, tc, NULL));
    float b1[4] = {0.9f, 0.1f, 0.3f, 0.5f}, b2[4] = {0.2f, 0.8f, 0.6f, 0.1f};
    double thr, l0;
    assert_ok(sae_trainer_step(t, b1, 2, 2));
    assert_ok(sae_trainer_stat(t, SAE_STAT_THRESHOLD, &thr));
    assert_ok(sae_trainer_stat(t, SAE_STAT_L0, &l0));
    assert_close(thr, 0.5, 1e-7);
    assert_close(l0, 1.0, 0);
    assert_ok(sae_trainer_step(t, b2, 2, 2));
    assert_ok(sae_trainer_stat(t, SAE_STAT_THRESHOLD, &thr));
    assert_close(thr, 0.501, 1e-7);
    /* inference: JumpReLU with the learned threshold */
    float z[4], th[2];
    assert_ok(sae_model_encode(m, b1, 2, 2, z, 2));
    assert_close(z[0], 0.9, 1e-7);
    assert_close(z[1], 0.0, 0);
    assert_close(z[2], 0.0, 0);
    assert_close(z[3], 0.0, 0); /* 0.5 < 0.501 */
    assert_ok(sae_model_get_tensor(m, SAE_TENSOR_THRESHOLD, th, 2));
    assert_close(th[1], 0.501, 1e-7);
    sae_trainer_free(t);
    sae_model_free(m);
    sae_config_free(mc);
    sae_config_free(tc);
}

/* b_dec initialisation: points (0,0) x3 and (10,0): mean (2.5, 0), geometric median (0, 0). */
/* ReLU's L0, decoder-norm-weighted L1 and MSE against a hand count: 11 latents (a block
 * of eight lanes and a tail), d 10 (the same), decoder rows of different norms, no update. */
static void test_relu_stats_by_hand(void **state)
{
    (void)state;
    enum { L = 11, D = 10 };
    sae_config *mc = test_config(SAE_KIND_MODEL, "d_in", (double)D, "n_latents", (double)L,
                                 "arch", (double)SAE_ARCH_RELU, "pre_bias", 0.0, NULL);
    sae_model *m = NULL;
    assert_ok(sae_model_create(&m, mc, NULL));
    float w_enc[D * L] = {0}, w_dec[L * D] = {0}, b_enc[L] = {0}, b_dec[D] = {0};
    for (int j = 0; j < L; j++) { /* W_enc is d_in x n_latents */
        w_enc[j] = (float)(j % 3 - 1) * 0.25f * (float)(j + 1); /* input row e_0 */
        w_enc[L + j] = (float)((j + 1) % 4 - 1.5) * 0.5f;       /* input row e_1 */
        w_dec[j * D] = 0.6f * (float)(j + 1), w_dec[j * D + 1] = 0.8f * (float)(j + 1);
        w_dec[j * D + D - 1] = 0.3f * (float)(j + 1); /* in the tail of the lanes */
    }
    assert_ok(sae_model_set_tensor(m, SAE_TENSOR_W_ENC, w_enc, L));
    assert_ok(sae_model_set_tensor(m, SAE_TENSOR_W_DEC, w_dec, D));
    assert_ok(sae_model_set_tensor(m, SAE_TENSOR_B_ENC, b_enc, L));
    assert_ok(sae_model_set_tensor(m, SAE_TENSOR_B_DEC, b_dec, D));
    sae_config *tc = test_config(SAE_KIND_TRAINER, "batch_size", 2.0, "lr", 0.0,
                                 "decoder_renorm", 0.0, "l1_decoder_norm", 1.0, NULL);
    sae_trainer *t = NULL;
    assert_ok(sae_trainer_create(&t, m, tc, NULL));
    float x[2 * D] = {0};
    x[0] = 1.0f, x[D + 1] = 1.0f;
    assert_ok(sae_trainer_step(t, x, 2, D));
    double count = 0.0, l1 = 0.0, sq = 0.0, l0, sparsity, mse;
    for (int r = 0; r < 2; r++) {
        double xhat[D] = {0};
        for (int j = 0; j < L; j++) {
            double z = w_enc[r * L + j] > 0.0f ? w_enc[r * L + j] : 0.0;
            double norm = 0.0;
            for (int i = 0; i < D; i++)
                norm += (double)w_dec[j * D + i] * w_dec[j * D + i];
            count += z > 0.0;
            l1 += sqrt(norm) * z;
            for (int i = 0; i < D; i++)
                xhat[i] += z * w_dec[j * D + i];
        }
        for (int i = 0; i < D; i++)
            sq += (xhat[i] - x[r * D + i]) * (xhat[i] - x[r * D + i]);
    }
    assert_ok(sae_trainer_stat(t, SAE_STAT_L0, &l0));
    assert_ok(sae_trainer_stat(t, SAE_STAT_SPARSITY, &sparsity));
    assert_ok(sae_trainer_stat(t, SAE_STAT_MSE, &mse));
    assert_close(l0, count / 2.0, 0);
    assert_close(sparsity, l1 / 2.0, 1e-6 * l1);
    assert_close(mse, sq / 2.0, 1e-5 * sq);
    sae_trainer_free(t);
    sae_model_free(m);
    sae_config_free(mc);
    sae_config_free(tc);
}

static void test_b_dec_init(void **state)
{
    (void)state;
    float x[8] = {0, 0, 0, 0, 0, 0, 10, 0};
    for (int mode = SAE_B_DEC_INIT_MEAN; mode <= SAE_B_DEC_INIT_GEOMEDIAN; mode++) {
        sae_config *mc = test_config(SAE_KIND_MODEL, "d_in", 2.0, "n_latents", 3.0, NULL);
        sae_model *m = NULL;
        assert_ok(sae_model_create(&m, mc, NULL));
        sae_config *tc = test_config(SAE_KIND_TRAINER, "batch_size", 4.0, "lr", 0.0,
                                     "b_dec_init", (double)mode, NULL);
        sae_trainer *t = NULL;
        assert_ok(sae_trainer_create(&t, m, tc, NULL));
        assert_ok(sae_trainer_step(t, x, 4, 2));
        float b[2];
        assert_ok(sae_model_get_tensor(m, SAE_TENSOR_B_DEC, b, 2));
        assert_close(b[0], mode == SAE_B_DEC_INIT_MEAN ? 2.5 : 0.0, 1e-4);
        assert_close(b[1], 0.0, 1e-7);
        sae_trainer_free(t);
        sae_model_free(m);
        sae_config_free(mc);
        sae_config_free(tc);
    }
}

static int64_t resample_logs;
static void on_log(void *user, int32_t level, const char *msg)
{
    (void)user;
    if (level == SAE_LOG_INFO && strstr(msg, "resampled") != NULL)
        resample_logs++;
}

/* Resampling revives dead latents and training still recovers the features. */
static void test_resampling(void **state)
{
    (void)state;
    recipe rc = {"relu + resampling", SAE_ARCH_RELU, 8, 0,
                 {"l1_coefficient", "resample_every", "dead_steps"}, {0.03, 250, 100}, 1500};
    resample_logs = 0;
    (void)on_log;
    double v = train_recipe(&rc);
    assert_true(v >= recovery_bar());
    sae_toy *toy = easy_toy();
    sae_model *m;
    sae_trainer *t = small_trainer(SAE_ARCH_RELU, "resample_every", 20, "dead_steps", 10, NULL, &m);
    assert_ok(sae_trainer_set_callbacks(t, on_log, NULL, NULL));
    /* kill latent 7: zero encoder row and a very negative bias */
    float *b = calloc(48, sizeof *b);
    assert_ok(sae_model_get_tensor(m, SAE_TENSOR_B_ENC, b, 48));
    b[7] = -100.0f;
    assert_ok(sae_model_set_tensor(m, SAE_TENSOR_B_ENC, b, 48));
    assert_ok(sae_trainer_train_toy(t, toy, 20));
    assert_true(resample_logs >= 1);
    assert_ok(sae_model_get_tensor(m, SAE_TENSOR_B_ENC, b, 48));
    assert_close(b[7], 0.0, 0); /* revived: bias reset */
    free(b);
    sae_trainer_free(t);
    sae_model_free(m);
    sae_toy_free(toy);
}

/* Clipping: with adam_eps = 1 an update is at most lr * |clipped gradient| per parameter. */
static void test_gradient_clipping(void **state)
{
    (void)state;
    sae_toy *toy = easy_toy();
    float before[48 * 64], after[48 * 64];
    double change[2];
    for (int clip = 0; clip <= 1; clip++) {
        sae_model *m;
        sae_trainer *t = small_trainer(SAE_ARCH_RELU, "adam_eps", 1.0, "grad_clip",
                                       clip ? 1e-6 : 0.0, NULL, &m);
        snapshot(m, before);
        assert_ok(sae_trainer_train_toy(t, toy, 1));
        snapshot(m, after);
        double norm, mx = 0.0;
        assert_ok(sae_trainer_stat(t, SAE_STAT_GRAD_NORM, &norm));
        assert_true(norm > 1e-3); /* reported before clipping */
        for (int i = 0; i < 48 * 64; i++)
            mx = fmax(mx, fabs((double)after[i] - before[i]));
        change[clip] = mx;
        sae_trainer_free(t);
        sae_model_free(m);
    }
    /* decoder rows are renormalised after the step, which can only shrink the change
     * relative to the row norm; 3e-3 = lr, 1e-6 = clip */
    assert_true(change[1] <= 3e-3 * 1e-6 * 1.01);
    assert_true(change[0] > 100.0 * change[1]);
    sae_toy_free(toy);
}

/* After training, BatchTopK inference (the learned threshold, no batch selection) keeps
 * about k latents per row on fresh data. */
static void test_batchtopk_inference_l0(void **state)
{
    (void)state;
    sae_toy *toy = easy_toy();
    sae_model *m;
    sae_trainer *t = small_trainer(SAE_ARCH_BATCHTOPK, "batch_size", 256, NULL, 0, NULL, &m);
    assert_ok(sae_trainer_train_toy(t, toy, 600));
    enum { ROWS = 2048 };
    float *x = malloc((size_t)ROWS * 64 * sizeof *x), *z = malloc((size_t)ROWS * 48 * sizeof *z);
    assert_ok(sae_toy_sample(toy, 1000000, ROWS, x, 64));
    assert_ok(sae_model_encode(m, x, ROWS, 64, z, 48));
    double nnz = 0;
    for (int i = 0; i < ROWS * 48; i++)
        nnz += z[i] != 0.0f;
    double l0 = nnz / ROWS, thr;
    assert_ok(sae_trainer_stat(t, SAE_STAT_THRESHOLD, &thr));
    print_message("batchtopk k=2: inference L0 %.3f, threshold %.4f\n", l0, thr);
    assert_true(thr > 0.0);
    assert_true(l0 > 1.5 && l0 < 2.5);
    free(x);
    free(z);
    sae_trainer_free(t);
    sae_model_free(m);
    sae_toy_free(toy);
}

/* The phase timers: zero at creation, non-negative, growing with work; generation is
 * charged only when the trainer draws from a toy. */
static void test_phase_timers(void **state)
{
    (void)state;
    sae_model *m;
    for (double arch = SAE_ARCH_RELU; arch <= SAE_ARCH_TOPK; arch++) {
        sae_trainer *t = small_trainer(arch, NULL, 0, NULL, 0, NULL, &m);
        double v[7], total = 0;
        for (int32_t p = 0; p < 7; p++) {
            assert_ok(sae_trainer_stat(t, SAE_STAT_TIME_GENERATE + p, &v[p]));
            assert_true(v[p] == 0.0);
        }
        float *x = calloc(256 * 64, sizeof *x);
        for (int i = 0; i < 256 * 64; i++)
            x[i] = (float)((i * 37) % 11) / 11.0f;
        for (int s = 0; s < 5; s++)
            assert_ok(sae_trainer_step(t, x, 256, 64));
        for (int32_t p = 0; p < 7; p++) {
            assert_ok(sae_trainer_stat(t, SAE_STAT_TIME_GENERATE + p, &v[p]));
            assert_true(v[p] >= 0.0);
            total += v[p];
        }
        assert_true(v[0] == 0.0); /* caller data: nothing generated */
        assert_true(total > 0.0);
        sae_toy *toy = easy_toy();
        assert_ok(sae_trainer_train_toy(t, toy, 3));
        double gen;
        assert_ok(sae_trainer_stat(t, SAE_STAT_TIME_GENERATE, &gen));
        assert_true(gen > 0.0);
        free(x);
        sae_toy_free(toy);
        sae_trainer_free(t);
        sae_model_free(m);
    }
}

static void test_argument_checks(void **state)
{
    (void)state;
    sae_model *m;
    sae_trainer *t = small_trainer(SAE_ARCH_RELU, NULL, 0, NULL, 0, NULL, &m);
    float x[64] = {0};
    double v;
    assert_status(sae_trainer_step(NULL, x, 1, 64), SAE_E_NULL);
    assert_status(sae_trainer_step(t, NULL, 1, 64), SAE_E_NULL);
    assert_status(sae_trainer_step(t, x, 0, 64), SAE_E_SIZE);
    assert_status(sae_trainer_step(t, x, 1, 63), SAE_E_SIZE);
    assert_status(sae_trainer_stat(t, 999, &v), SAE_E_UNKNOWN_KEY);
    assert_status(sae_trainer_stat(t, SAE_STAT_LOSS, NULL), SAE_E_NULL);
    assert_status(sae_trainer_train_toy(t, NULL, 1), SAE_E_NULL);
    assert_status(sae_trainer_train_toy_many(NULL, 1, NULL, 1), SAE_E_NULL);
    sae_trainer *dup[2] = {t, t};
    sae_toy *toy = easy_toy();
    assert_status(sae_trainer_train_toy_many(dup, 2, toy, 1), SAE_E_INVALID);
    assert_status(sae_trainer_create(&t, m, NULL, NULL), SAE_E_NULL);
    sae_config *wrong = test_config(SAE_KIND_MODEL, NULL);
    sae_trainer *t2 = NULL;
    assert_status(sae_trainer_create(&t2, m, wrong, NULL), SAE_E_CONFIG);
    sae_config_free(wrong);
    sae_config *lowact = test_config(SAE_KIND_TRAINER, "lowact_coefficient", 1.0, NULL);
    assert_status(sae_trainer_create(&t2, m, lowact, NULL), SAE_E_NOT_SUPPORTED);
    assert_null(t2);
    sae_config_free(lowact);
    sae_trainer_free(NULL);
    sae_trainer_free(t);
    sae_model_free(m);
    sae_toy_free(toy);
}

int main(void)
{
#ifdef SAE_TRAIN_RECOVERY
    /* the long recovery runs (label slow: kept out of the valgrind pass) */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_architecture_recovers_easy_toy),
        cmocka_unit_test(test_resampling),
    };
#else
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_progress_cancel_and_continue),
        cmocka_unit_test(test_schedules),
        cmocka_unit_test(test_divergence_keeps_last_good_step),
        cmocka_unit_test(test_many_equals_independent),
        cmocka_unit_test(test_no_allocation_after_first_step),
        cmocka_unit_test(test_no_allocation_low_precision),
        cmocka_unit_test(test_train_data_stride_and_cycle),
        cmocka_unit_test(test_threads_do_not_change_results),
        cmocka_unit_test(test_batchtopk_threshold_by_hand),
        cmocka_unit_test(test_relu_stats_by_hand),
        cmocka_unit_test(test_b_dec_init),
        cmocka_unit_test(test_gradient_clipping),
        cmocka_unit_test(test_batchtopk_inference_l0),
        cmocka_unit_test(test_phase_timers),
        cmocka_unit_test(test_argument_checks),
    };
#endif
    return cmocka_run_group_tests(tests, NULL, NULL);
}
