/* libsae demo: generate a toy with known features, train a ReLU SAE on it, and print how
 * well the learned decoder directions recover the true features.
 *
 *   demo [steps] [seed]
 *
 * The toy has N = 32 unit feature directions in d = 64 dimensions, each firing
 * independently with probability 0.05 with a magnitude uniform in [0, 1). The SAE has 64
 * latents, a pre-encoder bias, unit-norm decoder rows, and an L1 penalty weighted by the
 * decoder row norms (Anthropic, "Towards Monosemanticity", 2023). */
#include <sae/sae.h>

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

enum { N_FEATURES = 32, D = 64, N_LATENTS = 64, REPORT_EVERY = 500 };

/* Print the library's message for a failed call and say which call failed. */
static int failed(int32_t status, const char *call, const char *detail)
{
    fprintf(stderr, "demo: %s: %s%s%s\n", call, sae_status_str(status),
            detail != NULL && detail[0] != '\0' ? ": " : "", detail != NULL ? detail : "");
    return 1;
}

/* Return from the calling function when a call fails, with the given detail. */
#define TRY(call, detail) do { int32_t s_ = (call); if (s_ != SAE_OK) \
    return failed(s_, #call, (detail)); } while (0)

static int set_params(sae_config *toy_cfg, sae_config *model_cfg, sae_config *train_cfg,
                      int64_t seed)
{
    TRY(sae_config_set_i64(toy_cfg, SAE_TOY_N_FEATURES, N_FEATURES), sae_config_errmsg(toy_cfg));
    TRY(sae_config_set_i64(toy_cfg, SAE_TOY_D, D), sae_config_errmsg(toy_cfg));
    TRY(sae_config_set_f64(toy_cfg, SAE_TOY_FIRE_PROB, 0.05), sae_config_errmsg(toy_cfg));
    TRY(sae_config_set_i64(toy_cfg, SAE_TOY_SEED, seed), sae_config_errmsg(toy_cfg));
    TRY(sae_config_set_i64(model_cfg, SAE_MODEL_D_IN, D), sae_config_errmsg(model_cfg));
    TRY(sae_config_set_i64(model_cfg, SAE_MODEL_N_LATENTS, N_LATENTS), sae_config_errmsg(model_cfg));
    TRY(sae_config_set_i64(model_cfg, SAE_MODEL_ARCH, SAE_ARCH_RELU), sae_config_errmsg(model_cfg));
    TRY(sae_config_set_i64(model_cfg, SAE_MODEL_SEED, seed), sae_config_errmsg(model_cfg));
    /* Parameters can also be set by name, as bindings do. */
    TRY(sae_config_set_by_name(train_cfg, "lr", 3e-3), sae_config_errmsg(train_cfg));
    TRY(sae_config_set_by_name(train_cfg, "l1_coefficient", 3e-3), sae_config_errmsg(train_cfg));
    TRY(sae_config_set_by_name(train_cfg, "batch_size", 256), sae_config_errmsg(train_cfg));
    return 0;
}

/* Progress callback: one line every REPORT_EVERY steps. */
static int32_t report(void *user, int64_t step, int64_t total, double loss)
{
    (void)user;
    if (step % REPORT_EVERY == 0 || step == total)
        printf("  step %5lld / %lld   loss %.5f\n", (long long)step, (long long)total, loss);
    return 0; /* non-zero would cancel the run */
}

static int compare_floats(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* The recovery table: scalar metrics, then the distribution of per-feature max cosine. */
static int print_recovery(const sae_metrics *metrics, const char *title)
{
    double mmcs_true = 0, mmcs_learned = 0, frac = 0;
    int32_t s = sae_metrics_get(metrics, SAE_METRIC_MMCS_TRUE, &mmcs_true);
    if (s == SAE_OK)
        s = sae_metrics_get(metrics, SAE_METRIC_MMCS_LEARNED, &mmcs_learned);
    if (s == SAE_OK)
        s = sae_metrics_get(metrics, SAE_METRIC_FRAC_RECOVERED, &frac);
    float best[N_FEATURES];
    if (s == SAE_OK)
        s = sae_metrics_copy_array(metrics, SAE_ARRAY_MAX_COS_TRUE, best, N_FEATURES);
    if (s != SAE_OK)
        return failed(s, "sae_metrics_get/copy_array", sae_metrics_errmsg(metrics));

    qsort(best, N_FEATURES, sizeof best[0], compare_floats);
    int above[3] = {0, 0, 0};
    const float cut[3] = {0.99f, 0.9f, 0.5f};
    for (int i = 0; i < N_FEATURES; i++)
        for (int c = 0; c < 3; c++)
            above[c] += best[i] >= cut[c];

    printf("\n%s\n", title);
    printf("  %-44s %8.4f\n", "mean max cosine, true -> learned (MMCS)", mmcs_true);
    printf("  %-44s %8.4f\n", "mean max cosine, learned -> true", mmcs_learned);
    printf("  %-44s %8.4f\n", "fraction of true features recovered (>= 0.9)", frac);
    printf("  per-feature max cosine: min %.3f  q25 %.3f  median %.3f  q75 %.3f  max %.3f\n",
           best[0], best[N_FEATURES / 4], best[N_FEATURES / 2], best[3 * N_FEATURES / 4],
           best[N_FEATURES - 1]);
    printf("  features with max cosine >= 0.99: %2d / %d,  >= 0.9: %2d,  >= 0.5: %2d\n",
           above[0], N_FEATURES, above[1], above[2]);
    return 0;
}

static int run(sae_toy *toy, sae_model *model, sae_trainer *trainer, sae_metrics *metrics,
               int64_t steps)
{
    int32_t s = sae_metrics_compute(metrics, model, toy);
    if (s != SAE_OK)
        return failed(s, "sae_metrics_compute", sae_metrics_errmsg(metrics));
    if (print_recovery(metrics, "before training:"))
        return 1;

    s = sae_trainer_set_callbacks(trainer, NULL, report, NULL);
    if (s != SAE_OK)
        return failed(s, "sae_trainer_set_callbacks", sae_trainer_errmsg(trainer));
    printf("\ntraining %lld steps:\n", (long long)steps);
    clock_t t0 = clock();
    s = sae_trainer_train_toy(trainer, toy, steps);
    if (s != SAE_OK)
        return failed(s, "sae_trainer_train_toy", sae_trainer_errmsg(trainer));
    double seconds = (double)(clock() - t0) / CLOCKS_PER_SEC;
    double mse = 0, l0 = 0;
    if (sae_trainer_stat(trainer, SAE_STAT_MSE, &mse) != SAE_OK ||
        sae_trainer_stat(trainer, SAE_STAT_L0, &l0) != SAE_OK)
        return failed(SAE_E_INTERNAL, "sae_trainer_stat", sae_trainer_errmsg(trainer));
    printf("  last batch: MSE %.2e, L0 %.2f active latents per row (CPU time %.2f s)\n", mse,
           l0, seconds);

    s = sae_metrics_compute(metrics, model, toy);
    if (s != SAE_OK)
        return failed(s, "sae_metrics_compute", sae_metrics_errmsg(metrics));
    return print_recovery(metrics, "after training:");
}

/* Everything the demo creates; zero-initialised, so teardown works from any point. */
typedef struct demo {
    sae_config *toy_cfg, *model_cfg, *train_cfg, *metrics_cfg;
    sae_toy *toy;
    sae_model *model;
    sae_trainer *trainer;
    sae_metrics *metrics;
} demo;

static int setup(demo *d, int64_t seed)
{
    TRY(sae_config_create(&d->toy_cfg, SAE_KIND_TOY, NULL), NULL);
    TRY(sae_config_create(&d->model_cfg, SAE_KIND_MODEL, NULL), NULL);
    TRY(sae_config_create(&d->train_cfg, SAE_KIND_TRAINER, NULL), NULL);
    TRY(sae_config_create(&d->metrics_cfg, SAE_KIND_METRICS, NULL), NULL);
    if (set_params(d->toy_cfg, d->model_cfg, d->train_cfg, seed) != 0)
        return 1;
    /* An inconsistent configuration is refused with SAE_E_CONFIG; the reason is on it. */
    TRY(sae_toy_create(&d->toy, d->toy_cfg, NULL), sae_config_errmsg(d->toy_cfg));
    TRY(sae_model_create(&d->model, d->model_cfg, NULL), sae_config_errmsg(d->model_cfg));
    TRY(sae_trainer_create(&d->trainer, d->model, d->train_cfg, NULL),
        sae_config_errmsg(d->train_cfg));
    TRY(sae_metrics_create(&d->metrics, d->metrics_cfg, NULL), sae_config_errmsg(d->metrics_cfg));
    return 0;
}

static void teardown(demo *d)
{
    /* Any order works: the trainer holds its own reference to the model. */
    sae_model_free(d->model);
    sae_trainer_free(d->trainer);
    sae_metrics_free(d->metrics);
    sae_toy_free(d->toy);
    sae_config_free(d->toy_cfg);
    sae_config_free(d->model_cfg);
    sae_config_free(d->train_cfg);
    sae_config_free(d->metrics_cfg);
}

int main(int argc, char **argv)
{
    int64_t steps = argc > 1 ? strtoll(argv[1], NULL, 10) : 3000;
    int64_t seed = argc > 2 ? strtoll(argv[2], NULL, 10) : 1;
    if (steps <= 0 || seed < 0) {
        fprintf(stderr, "usage: demo [steps > 0] [seed >= 0]\n");
        return 2;
    }
    printf("libsae %s\n%s\n\n", sae_version_string(), sae_build_info());
    printf("toy: %d true features in %d dims, firing probability 0.05, seed %lld\n",
           N_FEATURES, D, (long long)seed);
    printf("SAE: ReLU, %d latents, L1 penalty weighted by decoder norms\n", N_LATENTS);

    demo d = {0};
    int rc = setup(&d, seed);
    if (rc == 0)
        rc = run(d.toy, d.model, d.trainer, d.metrics, steps);
    teardown(&d);
    return rc;
}
