/* Experiment 4: Sparse but Wrong (D. Chanin et al., "Sparse but Wrong: Incorrect L0 Leads
 * to Incorrect Features in Sparse Autoencoders", arXiv 2508.16560, 2025).
 *
 * Toy (the paper's): 50 orthonormal features in 100 dimensions with firing probabilities
 * falling linearly from 0.388 to 0.05 (true mean L0 about 11), firing correlated through
 * a Gaussian copula with a random correlation matrix, magnitudes N(1, 0.15) clipped at 0.
 * TopK and BatchTopK SAEs with 50 latents are trained for each k of a grid around the true
 * L0 on the same sample stream. For each k: recovery of the true features, feature mixing
 * (the part of each decoder row outside its best feature), reconstruction, and the
 * paper's proxy, the n-th decoder projection s_n at n = 2 x the true L0 (docs/metrics.md),
 * which should bottom out at the true L0. */
#include "exp_util.h"
#include "svg.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { N = 50, D = 100, L = 50, MAX_K = 12, N_ARCH = 2, N_FACTORS = 8 };
static const int32_t arch_id[N_ARCH] = {SAE_ARCH_TOPK, SAE_ARCH_BATCHTOPK};
static const char *const arch_name[N_ARCH] = {"TopK", "BatchTopK"};

typedef struct setup {
    int n_k;
    int64_t k[MAX_K], steps, batch;
} setup;

typedef struct point {
    double mmcs, frac, mixing, fvu, l0, sn;
} point;

/* A random correlation matrix from a factor model: C = normalise(A A^T + diag) with
 * N_FACTORS Gaussian factors, so features share causes with varied, mostly positive
 * strengths (the loadings have a positive mean). Deterministic in seed. */
static void correlation_matrix(uint64_t seed, double *c)
{
    double a[N * N_FACTORS];
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 12345;
    for (int i = 0; i < N * N_FACTORS; i += 2) {
        double u[2];
        for (int k = 0; k < 2; k++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            u[k] = ((double)(x >> 11) + 0.5) / 9007199254740992.0;
        }
        double r = sqrt(-2 * log(u[0]));
        a[i] = 0.3 + r * cos(6.283185307179586 * u[1]);
        a[i + 1] = 0.3 + r * sin(6.283185307179586 * u[1]);
    }
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            double s = i == j ? 1.0 : 0.0; /* keeps the matrix well conditioned */
            for (int f = 0; f < N_FACTORS; f++)
                s += a[i * N_FACTORS + f] * a[j * N_FACTORS + f];
            c[i * N + j] = s;
        }
    double d[N];
    for (int i = 0; i < N; i++)
        d[i] = sqrt(c[i * N + i]);
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++)
            c[i * N + j] = i == j ? 1.0 : c[i * N + j] / (d[i] * d[j]);
}

static sae_toy *correlated_toy(int64_t seed)
{
    sae_config *c = exp_config(SAE_KIND_TOY, "n_features", (double)N, "d", (double)D,
                               "seed", (double)seed, "dict", (double)SAE_TOY_DICT_ROTATED,
                               "fire_profile", (double)SAE_TOY_FIRE_CALLER, "mag_model",
                               (double)SAE_TOY_MAG_CLIPPED_NORMAL, "mag_mean", 1.0, "mag_std",
                               0.15, NULL);
    double probs[N], *corr = malloc(sizeof(double) * N * N);
    for (int i = 0; i < N; i++)
        probs[i] = 0.345 * (double)(N - i - 1) / N + 0.05;
    sae_toy *toy = NULL;
    if (c != NULL && corr != NULL) {
        correlation_matrix((uint64_t)seed, corr);
        if (exp_set_f64s(c, SAE_TOY_FIRE_PROBS, probs, N) == 0 &&
            exp_set_f64s(c, SAE_TOY_CORR, corr, (int64_t)N * N) == 0)
            toy = exp_toy(c);
    }
    free(corr);
    sae_config_free(c);
    return toy;
}

/* Mean over latents of sqrt(1 - c^2), c = the latent's best cosine with a true feature:
 * the share of its decoder row that belongs to other features (0 = a pure feature). */
static double mixing(const float *cos)
{
    double m = 0;
    for (int j = 0; j < L; j++) {
        double best = 0;
        for (int i = 0; i < N; i++)
            best = fmax(best, cos[i * L + j]);
        m += sqrt(fmax(0, 1 - best * best)) / L;
    }
    return m;
}

static int measure(sae_metrics *metrics, const sae_model *m, const sae_toy *toy, point *p,
                   float *cos_out)
{
    EXP_TRY(sae_metrics_compute(metrics, m, toy), sae_metrics_errmsg(metrics));
    int64_t r, c;
    float *cos = exp_array(metrics, SAE_ARRAY_COSINE, &r, &c);
    if (cos == NULL)
        return exp_fail("cosine matrix", SAE_E_STATE, sae_metrics_errmsg(metrics));
    p->mmcs = exp_metric(metrics, SAE_METRIC_MMCS_TRUE);
    p->frac = exp_metric(metrics, SAE_METRIC_FRAC_RECOVERED);
    p->fvu = exp_metric(metrics, SAE_METRIC_FVU);
    p->l0 = exp_metric(metrics, SAE_METRIC_L0_MEAN);
    p->sn = exp_metric(metrics, SAE_METRIC_SBW_SN);
    p->mixing = mixing(cos);
    if (cos_out != NULL)
        memcpy(cos_out, cos, sizeof(float) * N * L);
    free(cos);
    return 0;
}

/* Trains every (architecture, k) on one stream and measures each model. */
static int sweep(const setup *s, const sae_toy *toy, int64_t seed, int64_t threads,
                 sae_metrics *metrics, point pts[N_ARCH][MAX_K], float *cos[3],
                 const int example[3])
{
    int n = N_ARCH * s->n_k, rc = 0;
    sae_model *models[N_ARCH * MAX_K] = {NULL};
    sae_trainer *trainers[N_ARCH * MAX_K] = {NULL};
    for (int t = 0; t < n && rc == 0; t++) {
        sae_config *mc = exp_config(SAE_KIND_MODEL, "d_in", (double)D, "n_latents", (double)L,
                                    "arch", (double)arch_id[t / s->n_k], "k",
                                    (double)s->k[t % s->n_k], "model_seed", (double)seed + 7,
                                    NULL);
        sae_config *tc = exp_config(SAE_KIND_TRAINER, "lr", 3e-3, "batch_size",
                                    (double)s->batch, "n_threads", (double)threads, NULL);
        models[t] = exp_model(mc);
        trainers[t] = exp_trainer(models[t], tc);
        rc = trainers[t] == NULL;
        sae_config_free(mc);
        sae_config_free(tc);
    }
    if (rc == 0) {
        int32_t st = sae_trainer_train_toy_many(trainers, n, toy, s->steps);
        if (st != SAE_OK)
            rc = exp_fail("sae_trainer_train_toy_many", st, sae_trainer_errmsg(trainers[0]));
    }
    for (int t = 0; t < n && rc == 0; t++) {
        int a = t / s->n_k, i = t % s->n_k;
        float *out = NULL;
        for (int e = 0; e < 3; e++)
            if (a == 1 && i == example[e]) /* heat maps of the BatchTopK SAEs */
                out = cos[e];
        rc = measure(metrics, models[t], toy, &pts[a][i], out);
    }
    for (int t = 0; t < n; t++) {
        sae_trainer_free(trainers[t]);
        sae_model_free(models[t]);
    }
    return rc;
}

static void print_table(const setup *s, point pts[N_ARCH][MAX_K], double n_used)
{
    for (int a = 0; a < N_ARCH; a++) {
        printf("\n%s SAEs (s_n at n = %.0f)\n", arch_name[a], n_used);
        printf("  %4s %7s %9s %8s %8s %6s %9s\n", "k", "MMCS", "recovered", "mixing", "FVU",
               "L0", "s_n");
        for (int i = 0; i < s->n_k; i++) {
            const point *p = &pts[a][i];
            printf("  %4lld %7.4f %9.3f %8.4f %8.4f %6.2f %9.4f\n", (long long)s->k[i], p->mmcs,
                   p->frac, p->mixing, p->fvu, p->l0, p->sn);
        }
    }
}

/* Sorted-by-feature copy of a features x latents cosine matrix (latents ordered by their
 * best feature), so a clean solution shows as a diagonal. */
static void sort_latents(const float *cos, float *out)
{
    int order[L], best[L];
    for (int j = 0; j < L; j++) {
        order[j] = j, best[j] = 0;
        for (int i = 1; i < N; i++)
            if (cos[i * L + j] > cos[best[j] * L + j])
                best[j] = i;
    }
    for (int a = 1; a < L; a++) /* insertion sort by best feature */
        for (int b = a; b > 0 && best[order[b]] < best[order[b - 1]]; b--) {
            int t = order[b];
            order[b] = order[b - 1], order[b - 1] = t;
        }
    for (int i = 0; i < N; i++)
        for (int j = 0; j < L; j++)
            out[i * L + j] = cos[i * L + order[j]];
}

static int write_figures(const exp_args *args, const setup *s, point pts[N_ARCH][MAX_K],
                         float *cos[3], const int example[3], double true_l0)
{
    char path[1024];
    double ks[MAX_K], y[N_ARCH][4][MAX_K];
    for (int i = 0; i < s->n_k; i++) {
        ks[i] = (double)s->k[i];
        for (int a = 0; a < N_ARCH; a++) {
            y[a][0][i] = pts[a][i].mmcs, y[a][1][i] = pts[a][i].mixing;
            y[a][2][i] = pts[a][i].sn, y[a][3][i] = pts[a][i].fvu;
        }
    }
    int rc = 0;
    if (exp_figure_path(args, "exp4_l0_sweep.svg", path, sizeof path) == 0) {
        svg_figure *f = svg_figure_create(2, 2, "Experiment 4: SAE k against the true L0 "
                                                "(dashed line)");
        static const char *const title[4] = {"MMCS (recovery)", "mixing (share of a latent "
                                             "outside its feature)", "proxy: n-th decoder "
                                             "projection s_n", "FVU (reconstruction)"};
        for (int q = 0; q < 4; q++) {
            svg_series ser[N_ARCH] = {{arch_name[0], ks, y[0][q], s->n_k},
                                      {arch_name[1], ks, y[1][q], s->n_k}};
            svg_lines(f, q, title[q], ser, N_ARCH, "k (SAE L0)", "", 0, true_l0);
        }
        rc |= svg_figure_save(f, path);
        printf("wrote %s\n", path);
    }
    if (exp_figure_path(args, "exp4_cosine.svg", path, sizeof path) == 0) {
        svg_figure *f = svg_figure_create(3, 1, "Experiment 4: BatchTopK cosine of true "
                                                "features (rows) and latents (columns)");
        float sorted[N * L];
        for (int e = 0; e < 3; e++) {
            char t[64];
            snprintf(t, sizeof t, "k = %lld", (long long)s->k[example[e]]);
            sort_latents(cos[e], sorted);
            svg_heatmap(f, e, t, sorted, N, L, L, -1, 1, "latent (sorted)", "true feature");
        }
        rc |= svg_figure_save(f, path);
        printf("wrote %s\n", path);
    }
    return rc != 0;
}

/* The k the proxy picks: s_n falls by orders of magnitude while k is below the true L0
 * and flattens above it, so the pick is the elbow, the first k whose s_n is within an
 * order of magnitude of the smallest s_n of the sweep (the plain argmin lands one or two
 * steps into the flat part). */
static int proxy_pick(const setup *s, const point *pts)
{
    double lo = pts[0].sn;
    for (int i = 1; i < s->n_k; i++)
        lo = fmin(lo, pts[i].sn);
    int i = 0;
    while (i < s->n_k - 1 && pts[i].sn > 10 * lo)
        i++;
    return i;
}

static void check(const setup *s, point pts[N_ARCH][MAX_K], double true_l0)
{
    printf("\nexpected outcomes (Chanin et al. 2025), true L0 %.2f:\n", true_l0);
    int at = 0; /* grid point nearest the true L0 */
    for (int i = 1; i < s->n_k; i++)
        if (fabs((double)s->k[i] - true_l0) < fabs((double)s->k[at] - true_l0))
            at = i;
    const point *p = pts[1]; /* BatchTopK, the architecture of the paper */
    int pick = proxy_pick(s, p), last = s->n_k - 1;
    exp_expect(abs(pick - at) <= 1, "BatchTopK: the proxy's elbow (first s_n within 10x of "
               "the minimum) is at k = %lld, within one grid step of the true L0 (k = %lld)",
               (long long)s->k[pick], (long long)s->k[at]);
    exp_expect(p[0].mixing > p[at].mixing + 0.1, "BatchTopK: k too low mixes features: "
               "mixing %.3f at k = %lld vs %.3f at the true L0 (> +0.1)", p[0].mixing,
               (long long)s->k[0], p[at].mixing);
    exp_expect(p[last].mixing > p[at].mixing + 0.1, "BatchTopK: k too high gives mixed "
               "(degenerate) latents too: mixing %.3f at k = %lld vs %.3f (> +0.1)",
               p[last].mixing, (long long)s->k[last], p[at].mixing);
    int best = 0;
    for (int i = 1; i < s->n_k; i++)
        best = p[i].mmcs > p[best].mmcs ? i : best;
    exp_expect(abs(best - at) <= 1 && p[best].mmcs >= 0.9, "BatchTopK: recovery peaks at "
               "the true L0 (within one grid step): best MMCS %.4f at k = %lld (>= 0.9)",
               p[best].mmcs, (long long)s->k[best]);
    exp_expect(pts[0][0].mixing > pts[0][at].mixing + 0.1, "TopK: k too low mixes features "
               "as well: mixing %.3f at k = %lld vs %.3f at k = %lld (> +0.1)",
               pts[0][0].mixing, (long long)s->k[0], pts[0][at].mixing, (long long)s->k[at]);
}

int main(int argc, char **argv)
{
    exp_args args;
    if (exp_parse_args(argc, argv, NULL, &args) != 0)
        return 2;
    setup s = args.quick ? (setup){5, {5, 8, 11, 14, 18}, 2000, 512}
                         : (setup){9, {3, 5, 7, 9, 11, 13, 15, 18, 22}, 5000, 512};
    printf("libsae %s, %s\n", sae_version_string(), sae_build_info());
    sae_toy *toy = correlated_toy(args.seed);
    double true_l0 = 0;
    if (toy == NULL || sae_toy_info(toy, SAE_TOY_INFO_MEAN_ACTIVE, &true_l0) != SAE_OK)
        return 1;
    printf("Experiment 4 (Chanin et al. 2025): %d correlated features in %d dims, true mean "
           "L0 %.2f; TopK and BatchTopK SAEs with %d latents, k in a grid of %d, %lld steps "
           "of %lld\n", N, D, true_l0, L, s.n_k, (long long)s.steps, (long long)s.batch);
    sae_config *mcfg = exp_config(SAE_KIND_METRICS, "keep_cosine", 1.0, "n_eval", 4096.0,
                                  "metrics_compute", (double)(SAE_MG_RECOVERY |
                                  SAE_MG_RECONSTRUCTION | SAE_MG_SBW), NULL);
    sae_metrics *metrics = exp_metrics(mcfg);
    sae_config_free(mcfg);
    point pts[N_ARCH][MAX_K];
    float *cos[3];
    for (int e = 0; e < 3; e++)
        cos[e] = calloc(N * L, sizeof(float));
    const int example[3] = {0, s.n_k / 2, s.n_k - 1};
    int rc = metrics == NULL || cos[0] == NULL || cos[1] == NULL || cos[2] == NULL;
    if (rc == 0)
        rc = sweep(&s, toy, args.seed, args.threads, metrics, pts, cos, example);
    if (rc == 0) {
        print_table(&s, pts, exp_metric(metrics, SAE_METRIC_SBW_N));
        rc = write_figures(&args, &s, pts, cos, example, true_l0);
        check(&s, pts, true_l0);
    }
    for (int e = 0; e < 3; e++)
        free(cos[e]);
    sae_metrics_free(metrics);
    sae_toy_free(toy);
    return rc != 0 ? 1 : exp_exit_status(&args);
}
