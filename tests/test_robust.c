/* Numerical robustness, divergence and cancellation: extreme input scales, constant
 * inputs, latents that never fire and zero-norm decoder rows give finite results or a
 * clear error; a step that produces NaN/Inf returns SAE_E_DIVERGED with the model at its
 * last good step; a cancelling progress callback leaves a trainer that continues exactly
 * as an uninterrupted one. */
#include "rel_util.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define ROWS REL_BATCH

static int model_finite(const sae_model *m)
{
    for (int32_t which = 1; which <= 16; which++) {
        int64_t r, c;
        if (sae_model_tensor_shape(m, which, &r, &c) != SAE_OK)
            continue;
        float t[4096];
        assert_true(r * c <= 4096);
        assert_ok(sae_model_get_tensor(m, which, t, c));
        if (!rel_all_finite(t, r * c))
            return 0;
    }
    return 1;
}

static int stats_finite(const sae_trainer *t)
{
    int32_t ids[] = {SAE_STAT_LOSS, SAE_STAT_MSE, SAE_STAT_SPARSITY, SAE_STAT_L0};
    for (int i = 0; i < 4; i++) {
        double v;
        assert_ok(sae_trainer_stat(t, ids[i], &v));
        if (!isfinite(v))
            return 0;
    }
    return 1;
}

static double stat(const sae_trainer *t, int32_t which)
{
    double v = -1;
    assert_ok(sae_trainer_stat(t, which, &v));
    return v;
}

/* Whether the fixture has what a body needs (modules land one by one). */
static int have(const rel_fixture *f, int trainer)
{
    return f->model != NULL && f->toy != NULL && (!trainer || f->trainer != NULL);
}

/* A step either succeeds with a finite model and statistics, or returns DIVERGED with
 * the trainer exactly as before. Returns the status. */
static int32_t checked_step(sae_trainer *t, const float *x, int64_t n, const char *what)
{
    uint64_t before = rel_digest_trainer(t), model_before = rel_digest_model(sae_trainer_model(t));
    double steps = stat(t, SAE_STAT_STEP);
    int32_t st = sae_trainer_step(t, x, n, REL_D);
    if (st == SAE_OK) {
        if (!model_finite(sae_trainer_model(t)) || !stats_finite(t))
            fail_msg("%s: step returned SAE_OK with NaN/Inf in the model or statistics", what);
    } else if (st == SAE_E_DIVERGED) {
        if (rel_digest_model(sae_trainer_model(t)) != model_before)
            fail_msg("%s: SAE_E_DIVERGED but the model is not at its last good step", what);
        if (stat(t, SAE_STAT_STEP) != steps)
            fail_msg("%s: SAE_E_DIVERGED but the step count moved from %g to %g", what, steps,
                     stat(t, SAE_STAT_STEP));
        if (rel_digest_trainer(t) != before)
            fail_msg("%s: SAE_E_DIVERGED but the trainer statistics changed", what);
        if (sae_trainer_errmsg(t)[0] == '\0')
            fail_msg("%s: SAE_E_DIVERGED without a message", what);
    } else {
        fail_msg("%s: step returned %d (%s)", what, (int)st, sae_status_str(st));
    }
    return st;
}

/* ---- divergence ---------------------------------------------------------------- */

static void divergence_keeps_last_good_step_body(rel_fixture *f)
{
    if (!have(f, 1))
        return;
    assert_ok(sae_trainer_train_toy(f->trainer, f->toy, 5));
    static float x[ROWS * REL_D];
    const float scales[] = {1e20f, 1e30f, 1e37f};
    int diverged = 0;
    for (int i = 0; i < 3; i++) {
        memcpy(x, f->batch, sizeof f->batch);
        for (int k = 0; k < ROWS * REL_D; k++)
            x[k] = x[k] * scales[i] + (k % 2 ? scales[i] : -scales[i]);
        char what[64];
        snprintf(what, sizeof what, "inputs of scale %g", (double)scales[i]);
        int32_t st = checked_step(f->trainer, x, ROWS, what);
        print_message("  %s: %s\n", what, sae_status_str(st));
        diverged += st == SAE_E_DIVERGED;
    }
    assert_true(diverged > 0);
    /* the trainer continues normally after a divergence */
    assert_ok(sae_trainer_step(f->trainer, f->batch, ROWS, REL_D));
    assert_true(model_finite(f->model));
}

/* The very first step of a fresh trainer diverges: nothing may change, not even the
 * data-dependent initialisation of b_dec that a first step may do. */
/* pattern 0: columns of constant sign (the mean centres them exactly);
 * pattern 1: rows of mixed sign (the mean is finite, the centred rows overflow). */
static void first_step_divergence(rel_fixture *f, int64_t b_dec_init, int pattern)
{
    sae_model *m = NULL;
    sae_trainer *t = NULL;
    sae_config *c = NULL;
    assert_ok(sae_config_clone(&c, f->cfg[SAE_KIND_TRAINER]));
    int32_t key;
    if (sae_param_lookup("b_dec_init", &key) == SAE_OK)
        assert_ok(sae_config_set_i64(c, key, b_dec_init));
    assert_ok(sae_model_create(&m, f->cfg[SAE_KIND_MODEL], NULL));
    assert_ok(sae_trainer_create(&t, m, c, NULL));
    static float x[ROWS * REL_D];
    for (int k = 0; k < ROWS * REL_D; k++)
        x[k] = ((pattern ? k / REL_D : k) % 3 ? 3e38f : -3e38f);
    uint64_t before = rel_digest_model(m);
    char what[96];
    snprintf(what, sizeof what, "first step at scale 3e38 (pattern %d), b_dec_init %lld", pattern,
             (long long)b_dec_init);
    int32_t st = checked_step(t, x, ROWS, what);
    print_message("  %s: %s\n", what, sae_status_str(st));
    if (st == SAE_E_DIVERGED)
        assert_true(rel_digest_model(m) == before);
    sae_trainer_free(t);
    sae_model_free(m);
    sae_config_free(c);
}

static void first_step_divergence_body(rel_fixture *f)
{
    if (!have(f, 1))
        return;
    for (int64_t init = 0; init <= 2; init++)
        for (int pattern = 0; pattern <= 1; pattern++)
            first_step_divergence(f, init, pattern);
}

/* The largest learning rate the registry allows, for many steps: finite or DIVERGED. */
static void huge_learning_rate_body(rel_fixture *f)
{
    if (!have(f, 0))
        return;
    double hi;
    assert_ok(sae_param_info(SAE_TRAINER_LR, NULL, NULL, NULL, &hi, NULL));
    sae_config *c = NULL;
    assert_ok(sae_config_clone(&c, f->cfg[SAE_KIND_TRAINER]));
    assert_ok(sae_config_set_f64(c, SAE_TRAINER_LR, hi));
    sae_trainer *t = NULL;
    assert_ok(sae_trainer_create(&t, f->model, c, NULL));
    int32_t st = SAE_OK;
    static float x[ROWS * REL_D];
    for (int s = 0; s < 200 && st == SAE_OK; s++) {
        assert_ok(sae_toy_sample(f->toy, (uint64_t)s * ROWS, ROWS, x, REL_D));
        for (int k = 0; k < ROWS * REL_D; k++)
            x[k] *= 1e6f;
        st = checked_step(t, x, ROWS, "lr at its upper bound");
    }
    print_message("  lr = %g, inputs x 1e6, 200 steps: %s after %g steps\n", hi,
                  sae_status_str(st), stat(t, SAE_STAT_STEP));
    sae_trainer_free(t);
    sae_config_free(c);
}

/* ---- cancellation ---------------------------------------------------------------- */

typedef struct cancel_at {
    int64_t at, seen;
} cancel_at;

/* Cancels at its at-th call (whatever step numbering the call uses). */
static int32_t cancel_progress(void *user, int64_t step, int64_t total, double value)
{
    cancel_at *c = user;
    (void)step;
    (void)total;
    (void)value;
    c->seen++;
    return c->seen >= c->at;
}

static sae_trainer *fresh_trainer(const rel_fixture *f, sae_model **model)
{
    sae_trainer *t = NULL;
    assert_ok(sae_model_create(model, f->cfg[SAE_KIND_MODEL], NULL));
    assert_ok(sae_trainer_create(&t, *model, f->cfg[SAE_KIND_TRAINER], NULL));
    return t;
}

static void cancel_then_continue_body(rel_fixture *f)
{
    if (!have(f, 1))
        return;
    sae_model *m1, *m2;
    sae_trainer *stopped = fresh_trainer(f, &m1), *straight = fresh_trainer(f, &m2);
    cancel_at c = {3, 0};
    assert_ok(sae_trainer_set_callbacks(stopped, NULL, cancel_progress, &c));
    assert_status(sae_trainer_train_toy(stopped, f->toy, 10), SAE_E_CANCELLED);
    assert_true(sae_trainer_errmsg(stopped)[0] != '\0');
    double done = stat(stopped, SAE_STAT_STEP);
    print_message("  cancelled at progress step 3: %g steps done, %lld callbacks\n", done,
                  (long long)c.seen);
    assert_true(done >= 1 && done <= 10);
    assert_true(model_finite(m1) && stats_finite(stopped));
    /* continue without the callback; together the same steps as an uninterrupted run */
    assert_ok(sae_trainer_set_callbacks(stopped, NULL, NULL, NULL));
    assert_ok(sae_trainer_train_toy(stopped, f->toy, 10 - (int64_t)done));
    assert_ok(sae_trainer_train_toy(straight, f->toy, 10));
    assert_close(stat(stopped, SAE_STAT_STEP), 10, 0);
    assert_true(rel_digest_trainer(stopped) == rel_digest_trainer(straight));
    /* the same for caller data: cancelled after its 2nd step, then 4 more = 6 straight */
    c.at = 2;
    c.seen = 0;
    assert_ok(sae_trainer_set_callbacks(stopped, NULL, cancel_progress, &c));
    assert_status(sae_trainer_train_data(stopped, f->batch, ROWS, REL_D, 6), SAE_E_CANCELLED);
    assert_close(stat(stopped, SAE_STAT_STEP), 12, 0);
    assert_true(model_finite(m1));
    assert_ok(sae_trainer_set_callbacks(stopped, NULL, NULL, NULL));
    assert_ok(sae_trainer_train_data(stopped, f->batch, ROWS, REL_D, 4));
    assert_ok(sae_trainer_train_data(straight, f->batch, ROWS, REL_D, 6));
    assert_true(rel_digest_trainer(stopped) == rel_digest_trainer(straight));
    /* a callback that cancels at once: one step taken, nothing half-done */
    c.at = 1;
    c.seen = 0;
    assert_ok(sae_trainer_set_callbacks(stopped, NULL, cancel_progress, &c));
    assert_status(sae_trainer_step(stopped, f->batch, ROWS, REL_D), SAE_E_CANCELLED);
    assert_ok(sae_trainer_step(straight, f->batch, ROWS, REL_D));
    assert_true(rel_digest_trainer(stopped) == rel_digest_trainer(straight));
    sae_trainer_free(stopped);
    sae_trainer_free(straight);
    sae_model_free(m1);
    sae_model_free(m2);
}

/* ---- extreme inputs ----------------------------------------------------------------- */

/* encode/decode of inputs at scale s: finite outputs or a clear error (never NaN out) */
static void forward_at_scale(const sae_model *m, float s)
{
    float x[ROWS * REL_D], z[ROWS * REL_L], xh[ROWS * REL_D];
    rel_fill(x, ROWS, REL_D, REL_D, s, 21);
    int32_t st = sae_model_encode(m, x, ROWS, REL_D, z, REL_L);
    if (st == SAE_OK) {
        if (!rel_all_finite(z, ROWS * REL_L))
            fail_msg("encode of inputs at scale %g returned SAE_OK with NaN/Inf codes", (double)s);
        st = sae_model_decode(m, z, ROWS, REL_L, xh, REL_D);
        if (st == SAE_OK && !rel_all_finite(xh, ROWS * REL_D))
            fail_msg("decode at scale %g returned SAE_OK with NaN/Inf", (double)s);
    }
    if (st != SAE_OK && st != SAE_E_NONFINITE && st != SAE_E_RANGE)
        fail_msg("forward at scale %g: status %d (%s)", (double)s, (int)st, sae_status_str(st));
    if (st != SAE_OK)
        print_message("  forward at scale %g: %s (%s)\n", (double)s, sae_status_str(st),
                      sae_model_errmsg(m));
}

static void extreme_scales_body(rel_fixture *f)
{
    if (!have(f, 0))
        return;
    const float scales[] = {0.0f, 1e-38f, 1e-30f, 1e-10f, 1e10f, 1e20f, 1e30f, 1e37f, 3e38f};
    for (int i = 0; i < 9; i++)
        forward_at_scale(f->model, scales[i]);
    if (f->trainer != NULL) {
        float x[ROWS * REL_D];
        for (int i = 0; i < 9; i++) {
            rel_fill(x, ROWS, REL_D, REL_D, scales[i], 22);
            char what[64];
            snprintf(what, sizeof what, "train step at scale %g", (double)scales[i]);
            (void)checked_step(f->trainer, x, ROWS, what);
        }
    }
}

static void constant_inputs_body(rel_fixture *f)
{
    if (!have(f, 1))
        return;
    const float values[] = {0.0f, 1.0f, -3.0f, 1e-20f};
    float x[ROWS * REL_D];
    for (int v = 0; v < 4; v++) {
        for (int k = 0; k < ROWS * REL_D; k++)
            x[k] = values[v];
        for (int s = 0; s < 20; s++)
            assert_status(checked_step(f->trainer, x, ROWS, "constant inputs"), SAE_OK);
        forward_at_scale(f->model, 1.0f);
    }
    if (f->metrics != NULL) {
        assert_ok(sae_metrics_compute(f->metrics, f->model, f->toy));
        double v;
        assert_ok(sae_metrics_get(f->metrics, SAE_METRIC_MMCS_TRUE, &v));
        assert_true(isfinite(v));
    }
}

/* Every latent has a bias so negative that it never fires. */
static void latents_never_fire_body(rel_fixture *f)
{
    if (!have(f, 1))
        return;
    float b[REL_L];
    for (int j = 0; j < REL_L; j++)
        b[j] = -1e6f;
    assert_ok(sae_model_set_tensor(f->model, SAE_TENSOR_B_ENC, b, REL_L));
    float z[ROWS * REL_L];
    assert_ok(sae_model_encode(f->model, f->batch, ROWS, REL_D, z, REL_L));
    for (int k = 0; k < ROWS * REL_L; k++)
        assert_true(z[k] == 0.0f);
    for (int s = 0; s < 10; s++)
        assert_status(checked_step(f->trainer, f->batch, ROWS, "dead latents"), SAE_OK);
    assert_close(stat(f->trainer, SAE_STAT_L0), 0, 0);
    if (f->metrics != NULL) {
        assert_ok(sae_metrics_compute(f->metrics, f->model, f->toy));
        double v;
        for (int32_t which = SAE_METRIC_MMCS_TRUE; which <= SAE_METRIC_FRAC_RECOVERED; which++) {
            assert_ok(sae_metrics_get(f->metrics, which, &v));
            assert_true(isfinite(v));
        }
    }
}

/* Zero decoder rows: rejected with a clear error, or handled without NaN anywhere. */
static void zero_rows(rel_fixture *f, int n_zero)
{
    float w[REL_L * REL_D];
    assert_ok(sae_model_get_tensor(f->model, SAE_TENSOR_W_DEC, w, REL_D));
    memset(w, 0, sizeof(float) * (size_t)(n_zero * REL_D));
    uint64_t before = rel_digest_model(f->model);
    int32_t st = sae_model_set_tensor(f->model, SAE_TENSOR_W_DEC, w, REL_D);
    print_message("  set_tensor with %d zero decoder rows: %s\n", n_zero, sae_status_str(st));
    if (st != SAE_OK) {
        assert_true(st == SAE_E_RANGE || st == SAE_E_INVALID);
        assert_true(rel_digest_model(f->model) == before);
        return;
    }
    forward_at_scale(f->model, 1.0f);
    float cos[REL_N * REL_L];
    assert_ok(sae_metrics_compute(f->metrics, f->model, f->toy));
    assert_ok(sae_metrics_copy_array(f->metrics, SAE_ARRAY_COSINE, cos, REL_L));
    assert_true(rel_all_finite(cos, REL_N * REL_L));
    for (int s = 0; s < 5; s++)
        assert_status(checked_step(f->trainer, f->batch, ROWS, "zero decoder rows"), SAE_OK);
}

static void zero_norm_decoder_rows_body(rel_fixture *f)
{
    if (!have(f, 1))
        return;
    if (f->metrics == NULL)
        return;
    zero_rows(f, 1);
    zero_rows(f, REL_L);
}


/* ---- degenerate generators ------------------------------------------------------------ */

typedef struct degenerate {
    const char *name;
    double fire, mag_lo, mag_hi;
    int n, d, l;
} degenerate;

/* Metrics whose value always applies: finite for any toy and model (others may be NaN,
 * "does not apply", docs/metrics.md; never Inf). */
static const int32_t always_defined[] = {SAE_METRIC_MMCS_TRUE, SAE_METRIC_MMCS_LEARNED,
                                         SAE_METRIC_FRAC_RECOVERED, SAE_METRIC_MSE,
                                         SAE_METRIC_L0_MEAN, SAE_METRIC_TRUE_L0_MEAN,
                                         SAE_METRIC_FRAC_DEAD, SAE_METRIC_FRAC_DENSE};

static void check_metrics_defined(const sae_metrics *mt, const char *what)
{
    for (size_t i = 0; i < sizeof always_defined / sizeof always_defined[0]; i++) {
        double v;
        assert_ok(sae_metrics_get(mt, always_defined[i], &v));
        if (!isfinite(v))
            fail_msg("%s: metric %d is %g", what, (int)always_defined[i], v);
    }
    for (int32_t w = 1; w <= 64; w++) {
        double v;
        if (sae_metrics_get(mt, w, &v) == SAE_OK && isinf(v))
            fail_msg("%s: metric %d is infinite", what, (int)w);
    }
}

static void run_degenerate(const degenerate *g)
{
    sae_config *tc = test_config(SAE_KIND_TOY, "n_features", (double)g->n, "d", (double)g->d,
                                 "fire_prob", g->fire, "mag_lo", g->mag_lo, "mag_hi", g->mag_hi, NULL);
    sae_config *mc = test_config(SAE_KIND_MODEL, "d_in", (double)g->d, "n_latents", (double)g->l, NULL);
    sae_config *rc = test_config(SAE_KIND_TRAINER, "batch_size", 32.0, NULL);
    sae_config *xc = test_config(SAE_KIND_METRICS, "n_eval", 256.0, NULL);
    sae_toy *toy = NULL;
    sae_model *m = NULL;
    sae_trainer *t = NULL;
    sae_metrics *mt = NULL;
    assert_ok(sae_toy_create(&toy, tc, NULL));
    assert_ok(sae_model_create(&m, mc, NULL));
    assert_ok(sae_trainer_create(&t, m, rc, NULL));
    assert_ok(sae_trainer_train_toy(t, toy, 20));
    if (!model_finite(m) || !stats_finite(t))
        fail_msg("%s: training left NaN/Inf", g->name);
    assert_ok(sae_metrics_create(&mt, xc, NULL));
    assert_ok(sae_metrics_compute(mt, m, toy));
    check_metrics_defined(mt, g->name);
    print_message("  %s: trained and measured\n", g->name);
    sae_metrics_free(mt);
    sae_trainer_free(t);
    sae_model_free(m);
    sae_toy_free(toy);
    sae_config_free(tc);
    sae_config_free(mc);
    sae_config_free(rc);
    sae_config_free(xc);
}

static void test_degenerate_generators(void **state)
{
    (void)state;
    if (!REL_HAVE(sae_toy_create) || !REL_HAVE(sae_trainer_create) || !REL_HAVE(sae_metrics_create))
        skip();
    const degenerate cases[] = {
        {"nothing fires", 0.0, 0.0, 1.0, 8, 6, 10},   {"everything fires", 1.0, 0.0, 1.0, 8, 6, 10},
        {"zero magnitudes", 0.3, 0.0, 0.0, 8, 6, 10}, {"one feature, one dim, one latent", 0.5, 0.0, 1.0, 1, 1, 1},
        {"magnitudes 1e6", 0.3, 1e6, 1e6, 8, 6, 10},  {"more latents than a batch", 0.05, 0.0, 1.0, 64, 8, 128},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run_degenerate(&cases[i]);
}

/* ---- every model variant ------------------------------------------------------------ */

static void each_variant(void (*body)(rel_fixture *f))
{
    for (int v = 0; v < rel_n_variants; v++) {
        rel_fixture f;
        if (rel_fixture_init_variant(&f, NULL, &rel_variants[v])) {
            print_message("  [%s]\n", rel_variants[v].name);
            body(&f);
        } else {
            print_message("  [%s] not supported by this build\n", rel_variants[v].name);
        }
        rel_fixture_free(&f);
    }
}

/* test_<name>: <name>_body for every model variant */
#define VARIANT_TEST(name)                                                                 \
    static void test_##name(void **state)                                                  \
    {                                                                                      \
        (void)state;                                                                       \
        each_variant(name##_body);                                                         \
    }
VARIANT_TEST(divergence_keeps_last_good_step)
VARIANT_TEST(first_step_divergence)
VARIANT_TEST(huge_learning_rate)
VARIANT_TEST(cancel_then_continue)
VARIANT_TEST(extreme_scales)
VARIANT_TEST(constant_inputs)
VARIANT_TEST(latents_never_fire)
VARIANT_TEST(zero_norm_decoder_rows)
int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_divergence_keeps_last_good_step),
        cmocka_unit_test(test_first_step_divergence),
        cmocka_unit_test(test_huge_learning_rate),
        cmocka_unit_test(test_cancel_then_continue),
        cmocka_unit_test(test_extreme_scales),
        cmocka_unit_test(test_constant_inputs),
        cmocka_unit_test(test_latents_never_fire),
        cmocka_unit_test(test_zero_norm_decoder_rows),
        cmocka_unit_test(test_degenerate_generators),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
