/* Experiment 3: feature absorption and broken latents (D. Chanin, T. Dulka, J. Bloom et
 * al., "Toy models of feature absorption in SAEs", LessWrong, 2024, and "A is for
 * Absorption", arXiv 2409.14507; D. Chanin, D. Till et al., "Broken Latents: studying SAEs
 * and feature co-occurrence in toy models", LessWrong, 2025).
 *
 * Toy: 5 orthonormal features in 16 dimensions. Feature 0 is a parent and feature 1 its
 * child: the child fires only with the parent (P(child | parent) = 0.4) and the parent
 * also fires alone. Features 2-4 fire independently. Magnitudes are 1 (no variation, so
 * absorption can be complete). ReLU SAEs with decoder-norm weighted L1:
 *   untied, 5 latents          absorption expected: the parent latent goes quiet when the
 *                              child fires and the child latent writes the parent too;
 *   tied, 7 latents (more)     tying removes absorption while there are enough latents;
 *   tied, 4 latents (fewer)    a latent has to mix co-occurring features: absorption, and
 *                              its activation histogram has several peaks;
 *   tied, 4 latents + the low-activation penalty (docs/regularisers.md, experimental).
 * Absorption rate: P(parent latent silent | parent and child active); the share of the
 * parent carried by the child latent; peaks of each latent's activation histogram
 * (docs/metrics.md section 4). */
#include "exp_util.h"
#include "svg.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { N = 5, D = 16, MAX_L = 8, N_VARIANTS = 5, N_EVAL = 20000, HIST_BINS = 40 };
enum { UNTIED, TIED_SAME, TIED_MORE, TIED_FEWER, TIED_FEWER_LOWACT };

typedef struct variant {
    const char *name;
    int tied;
    int64_t latents;
    double lowact;
} variant;

static const variant variants[N_VARIANTS] = {
    {"untied, 5 latents", 0, 5, 0.0},
    {"tied, 5 latents", 1, 5, 0.0},
    {"tied, 7 latents", 1, 7, 0.0},
    {"tied, 4 latents", 1, 4, 0.0},
    {"tied, 4 latents + low-act", 1, 4, 0.1},
};

typedef struct outcome {
    double absorption, gap, carried, mmcs, frac, multi_peak, fvu;
    double absorbing; /* 1 when absorption >= 0.5 (mean: fraction of seeds) */
    double shared;    /* 1 when one latent is the best match of parent and child */
    double shared_multi; /* 1 when that shared latent's histogram has >= 2 peaks */
    int parent_latent, child_latent, max_peaks;
} outcome;

typedef struct setup {
    int64_t steps, n_seeds;
} setup;

static sae_toy *hierarchy_toy(int64_t seed)
{
    sae_config *c = exp_config(SAE_KIND_TOY, "n_features", (double)N, "d", (double)D, "seed",
                               (double)seed, "dict", (double)SAE_TOY_DICT_ROTATED,
                               "fire_profile", (double)SAE_TOY_FIRE_CALLER, "mag_model",
                               (double)SAE_TOY_MAG_CONSTANT, "mag_mean", 1.0, NULL);
    const int64_t parents[N] = {-1, 0, -1, -1, -1};
    const double probs[N] = {0.25, 0.4, 0.2, 0.2, 0.2};
    sae_toy *toy = NULL;
    if (c != NULL && exp_set_i64s(c, SAE_TOY_PARENTS, parents, N) == 0 &&
        exp_set_f64s(c, SAE_TOY_FIRE_PROBS, probs, N) == 0)
        toy = exp_toy(c);
    sae_config_free(c);
    return toy;
}

static int train_variants(const setup *s, const sae_toy *toy, int64_t seed, int64_t threads,
                          sae_model *models[N_VARIANTS])
{
    sae_trainer *trainers[N_VARIANTS] = {NULL};
    int rc = 0;
    for (int v = 0; v < N_VARIANTS && rc == 0; v++) {
        sae_config *mc = exp_config(SAE_KIND_MODEL, "d_in", (double)D, "n_latents",
                                    (double)variants[v].latents, "arch", (double)SAE_ARCH_RELU,
                                    "tied", (double)variants[v].tied, "model_seed",
                                    (double)(seed + 31), NULL);
        sae_config *tc = exp_config(SAE_KIND_TRAINER, "lr", 3e-3, "l1_coefficient", 0.03,
                                    "batch_size", 256.0, "n_threads", (double)threads,
                                    "lowact_coefficient", variants[v].lowact,
                                    "lowact_threshold", 0.6, NULL);
        models[v] = exp_model(mc);
        trainers[v] = exp_trainer(models[v], tc);
        rc = trainers[v] == NULL;
        sae_config_free(mc);
        sae_config_free(tc);
    }
    if (rc == 0) {
        int32_t st = sae_trainer_train_toy_many(trainers, N_VARIANTS, toy, s->steps);
        if (st != SAE_OK)
            rc = exp_fail("sae_trainer_train_toy_many", st, sae_trainer_errmsg(trainers[0]));
    }
    for (int v = 0; v < N_VARIANTS; v++)
        sae_trainer_free(trainers[v]);
    return rc;
}

static int measure(sae_metrics *metrics, const sae_model *m, const sae_toy *toy, outcome *o)
{
    EXP_TRY(sae_metrics_compute(metrics, m, toy), sae_metrics_errmsg(metrics));
    int64_t r, c;
    float *carried = exp_array(metrics, SAE_ARRAY_PARENT_CARRIED, &r, &c);
    float *argmax = exp_array(metrics, SAE_ARRAY_ARGMAX_TRUE, &r, &c);
    float *peaks = exp_array(metrics, SAE_ARRAY_N_PEAKS, &r, &c);
    int rc = carried == NULL || argmax == NULL || peaks == NULL;
    if (rc == 0) {
        o->absorption = exp_metric(metrics, SAE_METRIC_ABSORPTION_MEAN);
        o->gap = exp_metric(metrics, SAE_METRIC_ABSORPTION_GAP);
        o->mmcs = exp_metric(metrics, SAE_METRIC_MMCS_TRUE);
        o->frac = exp_metric(metrics, SAE_METRIC_FRAC_RECOVERED);
        o->multi_peak = exp_metric(metrics, SAE_METRIC_FRAC_MULTI_PEAK);
        o->fvu = exp_metric(metrics, SAE_METRIC_FVU);
        o->carried = carried[0];
        o->parent_latent = (int)argmax[0];
        o->child_latent = (int)argmax[1];
        o->absorbing = o->absorption >= 0.5;
        o->shared = o->parent_latent == o->child_latent;
        o->shared_multi = o->shared && peaks[o->parent_latent] >= 2;
        o->max_peaks = 0;
        for (int64_t j = 0; j < c; j++)
            o->max_peaks = peaks[j] > o->max_peaks ? (int)peaks[j] : o->max_peaks;
    }
    free(carried);
    free(argmax);
    free(peaks);
    return rc;
}

/* The firing values of one latent over the evaluation sample (into vals; count in *n). */
static int latent_values(const sae_model *m, const sae_toy *toy, int latent, double *vals,
                         int *n)
{
    int64_t d, l;
    EXP_TRY(sae_model_dims(m, &d, &l), sae_model_errmsg(m));
    float *x = malloc(sizeof(float) * N_EVAL * D), *z = malloc(sizeof(float) * N_EVAL * (size_t)l);
    int rc = x == NULL || z == NULL;
    if (rc == 0 && (sae_toy_sample(toy, (uint64_t)1 << 40, N_EVAL, x, D) != SAE_OK ||
                    sae_model_encode(m, x, N_EVAL, D, z, l) != SAE_OK))
        rc = exp_fail("sample/encode", SAE_E_INTERNAL, sae_model_errmsg(m));
    *n = 0;
    for (int i = 0; rc == 0 && i < N_EVAL; i++)
        if (z[(size_t)i * l + latent] > 0)
            vals[(*n)++] = z[(size_t)i * l + latent];
    free(x);
    free(z);
    return rc;
}

static void print_row(const char *label, const outcome *o)
{
    printf("  %-32s %10.3f %9.2f %7.3f %8.3f %7.4f %9.3f %7.2f %11.2f %8.4f\n", label,
           o->absorption, o->absorbing, o->gap, o->carried, o->mmcs, o->frac, o->shared,
           o->shared_multi, o->fvu);
}

static int write_figures(const exp_args *args, sae_model *const models[N_VARIANTS],
                         const sae_toy *toy, const outcome first[N_VARIANTS])
{
    char path[1024];
    if (exp_figure_path(args, "exp3_activation_histograms.svg", path, sizeof path) != 0)
        return 0;
    double *vals[2] = {malloc(sizeof(double) * N_EVAL), malloc(sizeof(double) * N_EVAL)};
    int rc = vals[0] == NULL || vals[1] == NULL;
    svg_figure *f = svg_figure_create(3, 2, "Experiment 3: activations of the parent's latent "
                                            "(blue) and the child's latent (red), first seed");
    for (int v = 0; v < N_VARIANTS && rc == 0; v++) {
        int n[2];
        rc = latent_values(models[v], toy, first[v].parent_latent, vals[0], &n[0]) ||
             latent_values(models[v], toy, first[v].child_latent, vals[1], &n[1]);
        double hi = 0;
        for (int k = 0; k < 2 && rc == 0; k++)
            for (int i = 0; i < n[k]; i++)
                hi = fmax(hi, vals[k][i]);
        char t0[64], t1[64], title[160];
        snprintf(t0, sizeof t0, "parent latent %d", first[v].parent_latent);
        snprintf(t1, sizeof t1, "child latent %d", first[v].child_latent);
        snprintf(title, sizeof title, "%s (absorption %.2f)", variants[v].name,
                 first[v].absorption);
        svg_series s[2] = {{t0, NULL, vals[0], n[0]}, {t1, NULL, vals[1], n[1]}};
        if (rc == 0)
            svg_histogram(f, v, title, s, first[v].parent_latent == first[v].child_latent ? 1 : 2,
                          HIST_BINS, 0, hi > 0 ? hi * 1.05 : 1, "activation (firing samples)", 1);
    }
    rc |= svg_figure_save(f, path) != 0;
    if (rc == 0)
        printf("wrote %s\n", path);
    free(vals[0]);
    free(vals[1]);
    return rc;
}

static void check(const outcome mean[N_VARIANTS])
{
    printf("\nexpected outcomes (Chanin et al. 2024; Chanin, Till et al. 2025):\n");
    exp_expect(mean[UNTIED].absorbing >= 0.999, "the untied SAE absorbs in every seed "
               "(fraction of seeds %.2f, mean absorption %.3f)", mean[UNTIED].absorbing,
               mean[UNTIED].absorption);
    double tied = 0.5 * (mean[TIED_SAME].absorption + mean[TIED_MORE].absorption);
    exp_expect(tied <= mean[UNTIED].absorption - 0.25, "tying reduces absorption with at "
               "least as many latents as features: mean %.3f vs %.3f untied (<= -0.25)", tied,
               mean[UNTIED].absorption);
    exp_expect(mean[TIED_SAME].absorbing < 0.999 && mean[TIED_MORE].absorbing < 0.999,
               "some tied seeds are absorption-free (absorbing seeds: %.2f with 5 latents, "
               "%.2f with 7)", mean[TIED_SAME].absorbing, mean[TIED_MORE].absorbing);
    exp_expect(mean[TIED_FEWER].shared >= 0.999 && mean[TIED_FEWER].shared_multi >= 0.999,
               "with fewer latents than features, tied SAEs merge parent and child into one "
               "latent with a multi-peak activation histogram in every seed (%.2f, %.2f)",
               mean[TIED_FEWER].shared, mean[TIED_FEWER].shared_multi);
    exp_expect(mean[TIED_MORE].shared_multi == 0.0, "with more latents, no such broken latent "
               "(%.2f)", mean[TIED_MORE].shared_multi);
}

int main(int argc, char **argv)
{
    exp_args args;
    if (exp_parse_args(argc, argv, NULL, &args) != 0)
        return 2;
    setup s = args.quick ? (setup){8000, 6} : (setup){15000, 12};
    printf("libsae %s, %s\n", sae_version_string(), sae_build_info());
    printf("Experiment 3 (Chanin et al. 2024, 2025): %d features in %d dims, feature 1 a child "
           "of feature 0 (P = 0.25, P(child | parent) = 0.4), features 2-4 independent "
           "(P = 0.2), magnitude 1; ReLU SAEs, L1 0.03, %lld steps of 256, %lld seeds\n", N, D,
           (long long)s.steps, (long long)s.n_seeds);
    sae_config *mcfg = exp_config(SAE_KIND_METRICS, "n_eval", (double)N_EVAL, NULL);
    sae_metrics *metrics = exp_metrics(mcfg);
    sae_config_free(mcfg);
    outcome mean[N_VARIANTS], first[N_VARIANTS];
    memset(mean, 0, sizeof mean);
    int rc = metrics == NULL;
    printf("\n  %-32s %10s %9s %7s %8s %7s %9s %7s %11s %8s\n", "seed / SAE", "absorption",
           "absorbing", "gap", "carried", "MMCS", "recovered", "shared", "shared+peaks", "FVU");
    for (int64_t k = 0; k < s.n_seeds && rc == 0; k++) {
        int64_t seed = args.seed + k;
        sae_toy *toy = hierarchy_toy(seed);
        sae_model *models[N_VARIANTS] = {NULL};
        rc = toy == NULL || train_variants(&s, toy, seed, args.threads, models);
        for (int v = 0; v < N_VARIANTS && rc == 0; v++) {
            outcome o;
            rc = measure(metrics, models[v], toy, &o);
            char label[96];
            snprintf(label, sizeof label, "seed %lld %s", (long long)seed, variants[v].name);
            print_row(label, &o);
            double w = 1.0 / (double)s.n_seeds;
            mean[v].absorption += w * o.absorption, mean[v].gap += w * o.gap;
            mean[v].carried += w * o.carried, mean[v].mmcs += w * o.mmcs;
            mean[v].frac += w * o.frac, mean[v].multi_peak += w * o.multi_peak;
            mean[v].fvu += w * o.fvu, mean[v].absorbing += w * o.absorbing;
            mean[v].shared += w * o.shared, mean[v].shared_multi += w * o.shared_multi;
            mean[v].max_peaks = o.max_peaks > mean[v].max_peaks ? o.max_peaks : mean[v].max_peaks;
            if (k == 0)
                first[v] = o;
        }
        if (rc == 0 && k == 0)
            rc = write_figures(&args, models, toy, first);
        for (int v = 0; v < N_VARIANTS; v++)
            sae_model_free(models[v]);
        sae_toy_free(toy);
    }
    if (rc == 0) {
        for (int v = 0; v < N_VARIANTS; v++) {
            char label[96];
            snprintf(label, sizeof label, "mean %s", variants[v].name);
            print_row(label, &mean[v]);
        }
        check(mean);
    }
    sae_metrics_free(metrics);
    return rc != 0 ? 1 : exp_exit_status(&args);
}
