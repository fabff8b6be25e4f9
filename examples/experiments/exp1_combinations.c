/* Experiment 1: do SAEs find the true features, or their common combinations?
 * (D. Till, "Do sparse autoencoders find 'true features'?", LessWrong, 2024.)
 *
 * Toy: orthonormal features in triples {a, b, c}; each pair of a triple fires together
 * with probability 0.05 per sample and each member also fires alone with probability
 * 0.005, so about 90% of a combo feature's firings are inside a pair. A second group of
 * "single" features fires only alone, with probabilities log-spaced from 0.03 down to
 * 0.002 (the rare ones, below 0.01, test Till's claim that rare features may be missed). Magnitudes U[0.5, 1.5).
 * Two ReLU SAEs with one latent per true feature train on the same stream from the same
 * initialisation: a plain L1 SAE, and the same SAE with the decoder orthogonality penalty
 * Till proposes (mean over latents of the squared cosine to the nearest other decoder
 * row, coefficient 3; docs/regularisers.md). The L1 penalty pays
 * for one activation instead of two when a latent learns (a + b)/sqrt2, so the plain SAE
 * learns compositions; the penalty charges their overlap (cosine 1/2) and the true
 * features come out. docs/experiments.md shows the figures and the published claim. */
#include "exp_util.h"
#include "svg.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { PLAIN, ORTHO, N_SAES };
static const char *const sae_name[N_SAES] = {"L1 only", "L1 + orthogonality"};

typedef struct setup {
    int64_t n_triples, n_singles, n_features, steps, n_seeds;
} setup;

/* What one SAE achieved on one seed. */
typedef struct outcome {
    double mmcs, frac, composed, mse, fvu, l0, dec_max_cos;
    double rare; /* fraction of rare singles (P(fire) < 0.01) recovered */
    float *max_cos_true;  /* per feature */
    float *cosine;        /* features x latents */
    float *latent_max_cos; /* per latent: max cosine to another latent */
} outcome;

static double single_prob(const setup *s, int64_t i)
{
    return s->n_singles > 1 ? 0.03 * pow(0.002 / 0.03, (double)i / (double)(s->n_singles - 1))
                            : 0.03;
}

static sae_toy *combo_toy(const setup *s, int64_t seed)
{
    int64_t n = s->n_features, combos[64 * 9], len = 0;
    sae_config *c = exp_config(SAE_KIND_TOY, "n_features", (double)n, "d", (double)n,
                               "seed", (double)seed, "dict", (double)SAE_TOY_DICT_ROTATED,
                               "fire_profile", (double)SAE_TOY_FIRE_CALLER, "mag_lo", 0.5,
                               "mag_hi", 1.5, NULL);
    if (c == NULL)
        return NULL;
    double probs[256], q = 0.05;
    for (int64_t j = 0; j < n; j++) /* singles: log-spaced from 0.03 down to 0.002 */
        probs[j] = j < 3 * s->n_triples ? 0.005 : single_prob(s, j - 3 * s->n_triples);
    for (int64_t t = 0; t < s->n_triples; t++) {
        int64_t a = 3 * t, pairs[3][2] = {{a, a + 1}, {a, a + 2}, {a + 1, a + 2}};
        for (int p = 0; p < 3; p++) {
            if (len > 0)
                combos[len++] = -1;
            combos[len++] = pairs[p][0];
            combos[len++] = pairs[p][1];
        }
    }
    sae_toy *toy = NULL;
    if (exp_set_f64s(c, SAE_TOY_FIRE_PROBS, probs, n) == 0 &&
        exp_set_i64s(c, SAE_TOY_COMBOS, combos, len) == 0 &&
        exp_set_f64s(c, SAE_TOY_COMBO_PROBS, &q, 1) == 0)
        toy = exp_toy(c);
    sae_config_free(c);
    return toy;
}

/* Trains the plain and the penalised SAE on the same stream (one call, same init). */
static int train_pair(const setup *s, const sae_toy *toy, int64_t seed, int64_t threads,
                      sae_model *models[N_SAES])
{
    sae_trainer *trainers[N_SAES] = {NULL, NULL};
    int rc = 0;
    for (int v = 0; v < N_SAES && rc == 0; v++) {
        sae_config *mc = exp_config(SAE_KIND_MODEL, "d_in", (double)s->n_features, "n_latents",
                                    (double)s->n_features, "arch", (double)SAE_ARCH_RELU,
                                    "model_seed", (double)(seed + 100), NULL);
        sae_config *tc = exp_config(SAE_KIND_TRAINER, "lr", 3e-3, "l1_coefficient", 0.1,
                                    "batch_size", 256.0, "n_threads", (double)threads,
                                    "ortho_coefficient", v == ORTHO ? 3.0 : 0.0,
                                    "ortho_shape", (double)SAE_ORTHO_SHAPE_SQUARE,
                                    "ortho_aggregate", (double)SAE_ORTHO_AGGREGATE_NEAREST,
                                    "ortho_mode", (double)SAE_ORTHO_MODE_EXACT, NULL);
        models[v] = exp_model(mc);
        trainers[v] = exp_trainer(models[v], tc);
        rc = trainers[v] == NULL;
        sae_config_free(mc);
        sae_config_free(tc);
    }
    if (rc == 0) {
        int32_t st = sae_trainer_train_toy_many(trainers, N_SAES, toy, s->steps);
        if (st != SAE_OK)
            rc = exp_fail("sae_trainer_train_toy_many", st, sae_trainer_errmsg(trainers[0]));
    }
    for (int v = 0; v < N_SAES; v++)
        sae_trainer_free(trainers[v]); /* the models live on */
    return rc;
}

static int measure(const setup *s, sae_metrics *metrics, const sae_model *model,
                   const sae_toy *toy, outcome *o)
{
    EXP_TRY(sae_metrics_compute(metrics, model, toy), sae_metrics_errmsg(metrics));
    int64_t r, c;
    o->mmcs = exp_metric(metrics, SAE_METRIC_MMCS_TRUE);
    o->frac = exp_metric(metrics, SAE_METRIC_FRAC_RECOVERED);
    o->composed = exp_metric(metrics, SAE_METRIC_N_COMPOSED);
    o->mse = exp_metric(metrics, SAE_METRIC_MSE);
    o->fvu = exp_metric(metrics, SAE_METRIC_FVU);
    o->l0 = exp_metric(metrics, SAE_METRIC_L0_MEAN);
    o->dec_max_cos = exp_metric(metrics, SAE_METRIC_DEC_MAX_COS_MEAN);
    o->max_cos_true = exp_array(metrics, SAE_ARRAY_MAX_COS_TRUE, &r, &c);
    o->cosine = exp_array(metrics, SAE_ARRAY_COSINE, &r, &c);
    o->latent_max_cos = exp_array(metrics, SAE_ARRAY_DEC_MAX_COS, &r, &c);
    if (o->max_cos_true == NULL || o->cosine == NULL || o->latent_max_cos == NULL)
        return 1;
    int n_rare = 0, found = 0;
    for (int64_t i = 0; i < s->n_singles; i++)
        if (single_prob(s, i) < 0.01) {
            n_rare++;
            found += o->max_cos_true[3 * s->n_triples + i] >= 0.9f;
        }
    o->rare = n_rare > 0 ? (double)found / n_rare : NAN;
    return 0;
}

static void free_outcome(outcome *o)
{
    free(o->max_cos_true);
    free(o->cosine);
    free(o->latent_max_cos);
}

/* Latent order for the heat map: by best-matching feature, then by cosine. */
static const float *sort_cos;
static int64_t sort_n, sort_l;
static int best_feature(int64_t latent, float *cos)
{
    int best = 0;
    for (int64_t i = 1; i < sort_n; i++)
        if (sort_cos[i * sort_l + latent] > sort_cos[best * sort_l + latent])
            best = (int)i;
    *cos = sort_cos[best * sort_l + latent];
    return best;
}
static int by_feature(const void *a, const void *b)
{
    float ca, cb;
    int fa = best_feature(*(const int64_t *)a, &ca), fb = best_feature(*(const int64_t *)b, &cb);
    return fa != fb ? (fa > fb) - (fa < fb) : (ca < cb) - (ca > cb);
}

static void sorted_by_feature(const float *cos, int64_t n, int64_t l, float *out)
{
    int64_t order[256];
    for (int64_t j = 0; j < l; j++)
        order[j] = j;
    sort_cos = cos, sort_n = n, sort_l = l;
    qsort(order, (size_t)l, sizeof order[0], by_feature);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < l; j++)
            out[i * l + j] = cos[i * l + order[j]];
}

/* Each of l random unit directions in n dimensions: max cosine to the others. */
static void random_max_cos(int64_t n, int64_t l, uint64_t seed, double *out)
{
    double *v = malloc(sizeof(double) * (size_t)(n * l));
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    for (int64_t i = 0; i < n * l; i += 2) { /* Box-Muller from a xorshift stream */
        double u[2];
        for (int k = 0; k < 2; k++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            u[k] = ((double)(x >> 11) + 0.5) / 9007199254740992.0;
        }
        double r = sqrt(-2 * log(u[0]));
        v[i] = r * cos(6.283185307179586 * u[1]);
        if (i + 1 < n * l)
            v[i + 1] = r * sin(6.283185307179586 * u[1]);
    }
    for (int64_t j = 0; j < l; j++) {
        double norm = 0;
        for (int64_t k = 0; k < n; k++)
            norm += v[j * n + k] * v[j * n + k];
        for (int64_t k = 0; k < n; k++)
            v[j * n + k] /= sqrt(norm);
    }
    for (int64_t j = 0; j < l; j++) {
        out[j] = -1;
        for (int64_t o = 0; o < l; o++) {
            double dot = 0;
            for (int64_t k = 0; o != j && k < n; k++)
                dot += v[j * n + k] * v[o * n + k];
            out[j] = fmax(out[j], dot);
        }
    }
    free(v);
}

static void print_features(const setup *s, const outcome o[N_SAES])
{
    printf("\nper true feature, first seed: max cosine with any decoder row\n");
    printf("  %-8s %-7s %8s %10s %20s\n", "feature", "kind", "P(fire)", sae_name[PLAIN],
           sae_name[ORTHO]);
    for (int64_t i = 0; i < s->n_features; i++) {
        int combo = i < 3 * s->n_triples;
        printf("  %-8lld %-7s %8.4f %10.3f %20.3f\n", (long long)i, combo ? "combo" : "single",
               combo ? 0.105 : single_prob(s, i - 3 * s->n_triples), o[PLAIN].max_cos_true[i],
               o[ORTHO].max_cos_true[i]);
    }
}

static int write_figures(const exp_args *args, const setup *s, const outcome o[N_SAES])
{
    char path[1024];
    int64_t n = s->n_features;
    float *sorted = malloc(sizeof(float) * (size_t)(n * n));
    double *dec[3], *best[2];
    for (int k = 0; k < 3; k++)
        dec[k] = malloc(sizeof(double) * (size_t)n);
    for (int k = 0; k < 2; k++)
        best[k] = malloc(sizeof(double) * (size_t)n);
    int rc = 0;
    if (exp_figure_path(args, "exp1_cosine.svg", path, sizeof path) == 0) {
        svg_figure *f = svg_figure_create(2, 1, "Experiment 1: cosine of true features (rows) "
                                                "and decoder rows (columns)");
        for (int v = 0; v < N_SAES; v++) {
            sorted_by_feature(o[v].cosine, n, n, sorted);
            svg_heatmap(f, v, sae_name[v], sorted, (int)n, (int)n, (int)n, -1, 1,
                        "latent (sorted by best feature)", "true feature");
        }
        rc |= svg_figure_save(f, path);
        printf("wrote %s\n", path);
    }
    if (exp_figure_path(args, "exp1_decoder_similarity.svg", path, sizeof path) == 0) {
        for (int64_t j = 0; j < n; j++) {
            dec[0][j] = o[PLAIN].latent_max_cos[j];
            dec[1][j] = o[ORTHO].latent_max_cos[j];
            best[0][j] = o[PLAIN].max_cos_true[j];
            best[1][j] = o[ORTHO].max_cos_true[j];
        }
        random_max_cos(n, n, 7, dec[2]);
        svg_series hd[3] = {{sae_name[PLAIN], NULL, dec[0], (int)n},
                            {sae_name[ORTHO], NULL, dec[1], (int)n},
                            {"random directions", NULL, dec[2], (int)n}};
        svg_series hb[2] = {{sae_name[PLAIN], NULL, best[0], (int)n},
                            {sae_name[ORTHO], NULL, best[1], (int)n}};
        svg_figure *f = svg_figure_create(2, 1, "Experiment 1: decoder similarity and recovery");
        svg_histogram(f, 0, "each latent's max cosine to another latent", hd, 3, 22, -0.1, 1,
                      "max cosine", 0);
        svg_histogram(f, 1, "each true feature's max cos to a latent", hb, 2, 20, 0, 1,
                      "max cosine", 0);
        rc |= svg_figure_save(f, path);
        printf("wrote %s\n", path);
    }
    free(sorted);
    for (int k = 0; k < 3; k++)
        free(dec[k]);
    for (int k = 0; k < 2; k++)
        free(best[k]);
    return rc != 0;
}

/* Adds one seed's outcome into the running means. */
static void accumulate(outcome *mean, const outcome *o, double w)
{
    mean->mmcs += w * o->mmcs, mean->frac += w * o->frac, mean->composed += w * o->composed;
    mean->mse += w * o->mse, mean->fvu += w * o->fvu, mean->l0 += w * o->l0;
    mean->dec_max_cos += w * o->dec_max_cos, mean->rare += w * o->rare;
}

static void print_row(const char *label, const outcome *o)
{
    printf("  %-26s %7.4f %9.3f %6.3f %9.2f %9.2e %7.4f %6.2f %12.3f\n", label, o->mmcs,
           o->frac, o->rare, o->composed, o->mse, o->fvu, o->l0, o->dec_max_cos);
}

static int check(const setup *s, const outcome mean[N_SAES])
{
    printf("\nexpected outcomes (Till 2024):\n");
    exp_expect(mean[PLAIN].composed >= 1.0,
               "the L1 SAE learns composed latents: %.2f per seed (>= 1)", mean[PLAIN].composed);
    exp_expect(mean[PLAIN].frac <= 0.85,
               "the L1 SAE misses true features: recovered %.3f (<= 0.85)", mean[PLAIN].frac);
    exp_expect(mean[ORTHO].frac >= mean[PLAIN].frac + 0.15,
               "the penalty recovers more true features: %.3f vs %.3f (>= +0.15)",
               mean[ORTHO].frac, mean[PLAIN].frac);
    exp_expect(mean[ORTHO].composed <= 0.5 * mean[PLAIN].composed,
               "the penalty leaves fewer composed latents: %.2f vs %.2f (<= half)",
               mean[ORTHO].composed, mean[PLAIN].composed);
    exp_expect(mean[ORTHO].rare >= mean[PLAIN].rare && mean[ORTHO].rare >= 0.75,
               "rare single features: the penalised SAE recovers %.3f, the L1 SAE %.3f "
               "(no fewer, and >= 0.75)", mean[ORTHO].rare, mean[PLAIN].rare);
    exp_expect(mean[ORTHO].fvu <= mean[PLAIN].fvu + 0.02,
               "comparable reconstruction: FVU %.4f vs %.4f (<= +0.02)", mean[ORTHO].fvu,
               mean[PLAIN].fvu);
    (void)s;
    return 0;
}

static int run(const exp_args *args, const setup *s)
{
    sae_config *mcfg = exp_config(SAE_KIND_METRICS, "keep_cosine", 1.0, "n_eval", 20000.0,
                                  "metrics_compute", (double)(SAE_MG_RECOVERY |
                                  SAE_MG_COMPOSITION | SAE_MG_RECONSTRUCTION |
                                  SAE_MG_DECODER_PAIRS), NULL);
    sae_metrics *metrics = exp_metrics(mcfg);
    sae_config_free(mcfg);
    if (metrics == NULL)
        return 1;
    outcome mean[N_SAES], first[N_SAES];
    memset(mean, 0, sizeof mean);
    memset(first, 0, sizeof first);
    int rc = 0;
    printf("\n  %-26s %7s %9s %6s %9s %9s %7s %6s %12s\n", "seed / SAE", "MMCS", "recovered",
           "rare", "composed", "MSE", "FVU", "L0", "dec max cos");
    for (int64_t k = 0; k < s->n_seeds && rc == 0; k++) {
        int64_t seed = args->seed + k;
        sae_toy *toy = combo_toy(s, seed);
        sae_model *models[N_SAES] = {NULL, NULL};
        rc = toy == NULL || train_pair(s, toy, seed, args->threads, models);
        for (int v = 0; v < N_SAES && rc == 0; v++) {
            outcome o = {0};
            rc = measure(s, metrics, models[v], toy, &o);
            char label[64];
            snprintf(label, sizeof label, "seed %lld %s", (long long)seed, sae_name[v]);
            print_row(label, &o);
            accumulate(&mean[v], &o, 1.0 / (double)s->n_seeds);
            if (k == 0)
                first[v] = o;
            else
                free_outcome(&o);
        }
        for (int v = 0; v < N_SAES; v++)
            sae_model_free(models[v]);
        sae_toy_free(toy);
    }
    if (rc == 0) {
        for (int v = 0; v < N_SAES; v++) {
            char label[64];
            snprintf(label, sizeof label, "mean %s", sae_name[v]);
            print_row(label, &mean[v]);
        }
        print_features(s, first);
        rc = write_figures(args, s, first) || check(s, mean);
    }
    for (int v = 0; v < N_SAES; v++)
        free_outcome(&first[v]);
    sae_metrics_free(metrics);
    return rc;
}

int main(int argc, char **argv)
{
    exp_args args;
    if (exp_parse_args(argc, argv, NULL, &args) != 0)
        return 2;
    setup s = args.quick ? (setup){4, 4, 16, 8000, 4} : (setup){8, 8, 32, 10000, 4};
    printf("libsae %s, %s\n", sae_version_string(), sae_build_info());
    printf("Experiment 1 (Till 2024): %lld features in %lld dims: %lld triples whose pairs "
           "fire together (p 0.05 per pair, 0.005 alone) and %lld singles (p 0.03 to 0.002); ReLU "
           "SAEs with %lld latents, L1 0.1, %lld steps of 256, %lld seeds\n",
           (long long)s.n_features, (long long)s.n_features, (long long)s.n_triples,
           (long long)s.n_singles, (long long)s.n_features, (long long)s.steps,
           (long long)s.n_seeds);
    int rc = run(&args, &s);
    return rc != 0 ? 1 : exp_exit_status(&args);
}
