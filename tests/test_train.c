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

static void test_relu_recovers_easy_toy(void **state)
{
    (void)state;
    sae_toy *toy = easy_toy();
    sae_model *m = make_model(SAE_ARCH_RELU, 64.0, 8.0);
    sae_config *tc = test_config(SAE_KIND_TRAINER, "lr", 3e-3, "l1_coefficient", 0.03,
                                 "batch_size", 256.0, NULL);
    sae_trainer *t = NULL;
    assert_ok(sae_trainer_create(&t, m, tc, NULL));
    assert_ok(sae_trainer_train_toy(t, toy, 1500));
    double v = mmcs(toy, m), l0, mse;
    assert_ok(sae_trainer_stat(t, SAE_STAT_L0, &l0));
    assert_ok(sae_trainer_stat(t, SAE_STAT_MSE, &mse));
    print_message("relu: mmcs %.4f l0 %.2f mse %.5f\n", v, l0, mse);
    assert_true(v >= 0.95);
    sae_trainer_free(t);
    sae_model_free(m);
    sae_config_free(tc);
    sae_toy_free(toy);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_relu_recovers_easy_toy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
