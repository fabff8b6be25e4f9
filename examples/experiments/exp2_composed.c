/* Experiment 2: SAEs find composed features (Anders, Neo, Hoelscher-Obermaier, Howard,
 * "Sparse autoencoders find composed features in small toy models", LessWrong, 2024).
 *
 * Toy: two sets of mutually exclusive features, {x1, x2} and {y1, y2}; every sample has
 * exactly one feature of each set, so it is a x_i + b y_j. Directions are orthonormal in
 * d = 8. Amplitudes are either correlated (a = b, one draw from U[0.5, 1.5)) or independent
 * (a, b drawn separately). SAEs: ReLU with 4 latents (as many as true features), swept over
 * the L1 coefficient, several seeds. Each latent is classified as a true feature, a
 * composition (x_i + y_j)/sqrt2 or neither (cosine >= 0.9).
 *
 * Loss comparison: for each L1 coefficient lambda the training objective per sample is
 * ||x - xhat||^2 + lambda sum_j z_j ||d_j|| (docs/training.md). We evaluate it for the
 * trained SAE (its own encoder), and for two ideal dictionaries with the best decoder bias
 * and the best non-negative codes per sample (a small coordinate-descent solve): the true
 * features, and the four composed directions. With correlated amplitudes the composed
 * dictionary is the better one for every lambda > 0 (one activation c sqrt2 instead of two
 * of c): Till's remark in the post's comments that the optimum is the diagonal. */
#include "exp_util.h"
#include "svg.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { N_FEAT = 4, D = 8, N_LAT = 4, N_DIRS = 8, MAX_L1 = 8, N_MODES = 2 };
enum { CORRELATED, INDEPENDENT };
static const char *const mode_name[N_MODES] = {"correlated amplitudes",
                                               "independent amplitudes"};

typedef struct setup {
    int n_l1, n_seeds;
    int64_t steps, n_eval;
    double l1[MAX_L1];
} setup;

/* Per mode and L1 value, averaged over seeds. */
typedef struct point {
    double n_true, n_composed, mmcs;
    double loss_trained, loss_true, loss_composed;
} point;

static sae_toy *set_toy(int mode, int64_t seed)
{
    sae_config *c = exp_config(SAE_KIND_TOY, "n_features", (double)N_FEAT, "d", (double)D,
                               "seed", (double)seed, "dict", (double)SAE_TOY_DICT_ROTATED,
                               "fire_prob", 0.5, "set_mode", (double)SAE_TOY_EXACTLY_ONE,
                               "mag_lo", 0.5, "mag_hi", 1.5, NULL);
    const int64_t sets[N_FEAT] = {0, 0, 1, 1}, groups[N_FEAT] = {0, 0, 0, 0};
    sae_toy *toy = NULL;
    if (c != NULL && exp_set_i64s(c, SAE_TOY_SET_IDS, sets, N_FEAT) == 0 &&
        (mode == INDEPENDENT || exp_set_i64s(c, SAE_TOY_MAG_GROUPS, groups, N_FEAT) == 0))
        toy = exp_toy(c);
    sae_config_free(c);
    return toy;
}

/* Rows 0-3: the true features x1 x2 y1 y2; rows 4-7: (x_i + y_j)/sqrt2. */
static int directions(const sae_toy *toy, float dirs[N_DIRS * D])
{
    EXP_TRY(sae_toy_dictionary(toy, dirs, D), sae_toy_errmsg(toy));
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++)
            for (int k = 0; k < D; k++)
                dirs[(4 + 2 * i + j) * D + k] =
                    (float)((dirs[i * D + k] + dirs[(2 + j) * D + k]) / sqrt(2.0));
    return 0;
}

static double cosine(const float *a, const float *b)
{
    double ab = 0, aa = 0, bb = 0;
    for (int k = 0; k < D; k++)
        ab += (double)a[k] * b[k], aa += (double)a[k] * a[k], bb += (double)b[k] * b[k];
    return aa > 0 && bb > 0 ? ab / sqrt(aa * bb) : 0;
}

/* Best non-negative codes of one row r (length D) for dict: min over z >= 0 of
 * ||r - z dict||^2 + lambda sum_j z_j ||d_j|| by coordinate descent from z = 0 (convex).
 * Leaves the residual in r and returns the sparsity term. */
static double best_codes(double *r, const float *dict, const double *norm, int m, double lambda)
{
    double z[N_DIRS] = {0}, l1 = 0;
    for (int it = 0; it < 60; it++)
        for (int j = 0; j < m; j++) {
            if (norm[j] <= 0)
                continue;
            double g = 0;
            for (int k = 0; k < D; k++)
                g += dict[j * D + k] * r[k];
            double zj = fmax(0, z[j] + (g - 0.5 * lambda * norm[j]) / (norm[j] * norm[j]));
            for (int k = 0; k < D; k++)
                r[k] -= (zj - z[j]) * dict[j * D + k];
            z[j] = zj;
        }
    for (int j = 0; j < m; j++)
        l1 += lambda * z[j] * norm[j];
    return l1;
}

/* The objective of a dictionary with its best decoder bias and best codes: the mean over
 * samples of ||x - b - z dict||^2 + lambda sum_j z_j ||d_j||, alternating best codes for
 * a fixed bias b and the best bias (mean residual) for fixed codes. The SAEs have a
 * decoder bias too, so ideal dictionaries are compared on the same footing. */
static double best_code_loss(const float *x, int64_t n, const float *dict, int m, double lambda)
{
    double norm[N_DIRS], b[D] = {0}, loss = 0;
    for (int j = 0; j < m; j++) {
        norm[j] = 0;
        for (int k = 0; k < D; k++)
            norm[j] += (double)dict[j * D + k] * dict[j * D + k];
        norm[j] = sqrt(norm[j]);
    }
    for (int outer = 0; outer < 8; outer++) {
        double mean_res[D] = {0};
        loss = 0;
        for (int64_t row = 0; row < n; row++) {
            double r[D];
            for (int k = 0; k < D; k++)
                r[k] = x[row * D + k] - b[k];
            loss += best_codes(r, dict, norm, m, lambda);
            for (int k = 0; k < D; k++)
                loss += r[k] * r[k], mean_res[k] += r[k] / (double)n;
        }
        for (int k = 0; k < D; k++)
            b[k] += mean_res[k];
    }
    return loss / (double)n;
}

/* The training objective of the model itself on x. */
static int trained_loss(const sae_model *m, const float *x, int64_t n, double lambda,
                        double *loss)
{
    float *z = malloc(sizeof(float) * (size_t)(n * N_LAT)), *xh = malloc(sizeof(float) * (size_t)(n * D));
    float w[N_LAT * D];
    int rc = z == NULL || xh == NULL;
    if (rc == 0 && (sae_model_encode(m, x, n, D, z, N_LAT) != SAE_OK ||
                    sae_model_decode(m, z, n, N_LAT, xh, D) != SAE_OK ||
                    sae_model_get_tensor(m, SAE_TENSOR_W_DEC, w, D) != SAE_OK))
        rc = exp_fail("encode/decode", SAE_E_INTERNAL, sae_model_errmsg(m));
    double total = 0;
    for (int64_t r = 0; rc == 0 && r < n; r++) {
        for (int k = 0; k < D; k++)
            total += (double)(xh[r * D + k] - x[r * D + k]) * (xh[r * D + k] - x[r * D + k]);
        for (int j = 0; j < N_LAT; j++) {
            double nj = 0;
            for (int k = 0; k < D; k++)
                nj += (double)w[j * D + k] * w[j * D + k];
            total += lambda * z[r * N_LAT + j] * sqrt(nj);
        }
    }
    *loss = total / (double)n;
    free(z);
    free(xh);
    return rc;
}

/* Classifies the decoder rows and fills the loss comparison of one trained model. */
static int evaluate(const sae_model *m, const float dirs[N_DIRS * D], const float *x,
                    int64_t n, double lambda, point *p, float cos_out[N_DIRS * N_LAT])
{
    float w[N_LAT * D];
    EXP_TRY(sae_model_get_tensor(m, SAE_TENSOR_W_DEC, w, D), sae_model_errmsg(m));
    double mmcs = 0;
    for (int f = 0; f < N_FEAT; f++) {
        double best = -1;
        for (int j = 0; j < N_LAT; j++)
            best = fmax(best, cosine(dirs + f * D, w + j * D));
        mmcs += best / N_FEAT;
    }
    for (int j = 0; j < N_LAT; j++) {
        int best = 0;
        double bc = -2;
        for (int r = 0; r < N_DIRS; r++) {
            double c = cosine(dirs + r * D, w + j * D);
            if (cos_out != NULL)
                cos_out[r * N_LAT + j] = (float)c;
            if (c > bc)
                bc = c, best = r;
        }
        p->n_true += bc >= 0.9 && best < N_FEAT;
        p->n_composed += bc >= 0.9 && best >= N_FEAT;
    }
    p->mmcs += mmcs;
    double loss;
    if (trained_loss(m, x, n, lambda, &loss) != 0)
        return 1;
    p->loss_trained += loss;
    p->loss_true += best_code_loss(x, n, dirs, N_FEAT, lambda);
    p->loss_composed += best_code_loss(x, n, dirs + N_FEAT * D, N_FEAT, lambda);
    return 0;
}

/* Trains one SAE per L1 value on one toy stream and adds their evaluation into pts. */
static int sweep_seed(const setup *s, int mode, int64_t seed, int64_t threads, point *pts,
                      float *example_cos, int example_l1)
{
    sae_toy *toy = set_toy(mode, seed);
    sae_model *models[MAX_L1] = {NULL};
    sae_trainer *trainers[MAX_L1] = {NULL};
    float dirs[N_DIRS * D], *x = malloc(sizeof(float) * (size_t)(s->n_eval * D));
    int rc = toy == NULL || x == NULL || directions(toy, dirs);
    for (int i = 0; i < s->n_l1 && rc == 0; i++) {
        sae_config *mc = exp_config(SAE_KIND_MODEL, "d_in", (double)D, "n_latents",
                                    (double)N_LAT, "arch", (double)SAE_ARCH_RELU,
                                    "model_seed", (double)(seed + 1000), NULL);
        sae_config *tc = exp_config(SAE_KIND_TRAINER, "lr", 3e-3, "l1_coefficient", s->l1[i],
                                    "batch_size", 256.0, "n_threads", (double)threads, NULL);
        models[i] = exp_model(mc);
        trainers[i] = exp_trainer(models[i], tc);
        rc = trainers[i] == NULL;
        sae_config_free(mc);
        sae_config_free(tc);
    }
    if (rc == 0) {
        int32_t st = sae_trainer_train_toy_many(trainers, s->n_l1, toy, s->steps);
        if (st != SAE_OK)
            rc = exp_fail("sae_trainer_train_toy_many", st, sae_trainer_errmsg(trainers[0]));
    }
    /* evaluation samples far beyond the training stream */
    if (rc == 0 && sae_toy_sample(toy, (uint64_t)1 << 40, s->n_eval, x, D) != SAE_OK)
        rc = exp_fail("sae_toy_sample", SAE_E_INTERNAL, sae_toy_errmsg(toy));
    for (int i = 0; i < s->n_l1 && rc == 0; i++)
        rc = evaluate(models[i], dirs, x, s->n_eval, s->l1[i], &pts[i],
                      i == example_l1 ? example_cos : NULL);
    for (int i = 0; i < s->n_l1; i++) {
        sae_trainer_free(trainers[i]);
        sae_model_free(models[i]);
    }
    sae_toy_free(toy);
    free(x);
    return rc;
}

static void print_table(const setup *s, int mode, const point *pts)
{
    printf("\n%s (mean of %d seeds; 'true'/'composed' = latents within cosine 0.9)\n",
           mode_name[mode], s->n_seeds);
    printf("  %8s %6s %9s %7s | %12s %12s %14s\n", "L1", "true", "composed", "MMCS",
           "loss of SAE", "true dict", "composed dict");
    for (int i = 0; i < s->n_l1; i++) {
        const point *p = &pts[i];
        printf("  %8.4f %6.2f %9.2f %7.4f | %12.5f %12.5f %14.5f\n", s->l1[i], p->n_true,
               p->n_composed, p->mmcs, p->loss_trained, p->loss_true, p->loss_composed);
    }
}

static int write_figures(const exp_args *args, const setup *s, point pts[N_MODES][MAX_L1],
                         float cos[N_MODES][N_DIRS * N_LAT], const int example[N_MODES])
{
    char path[1024];
    double y[N_MODES][4][MAX_L1];
    for (int m = 0; m < N_MODES; m++)
        for (int i = 0; i < s->n_l1; i++) {
            y[m][0][i] = pts[m][i].n_true, y[m][1][i] = pts[m][i].n_composed;
            /* loss relative to the true-feature dictionary with its best codes */
            y[m][2][i] = pts[m][i].loss_trained / pts[m][i].loss_true;
            y[m][3][i] = pts[m][i].loss_composed / pts[m][i].loss_true;
        }
    int rc = 0;
    if (exp_figure_path(args, "exp2_l1_sweep.svg", path, sizeof path) == 0) {
        svg_figure *f = svg_figure_create(2, 2, "Experiment 2: composed features across the "
                                                "L1 coefficient (4 latents, 4 true features)");
        for (int m = 0; m < N_MODES; m++) {
            svg_series lat[2] = {{"true-feature latents", s->l1, y[m][0], s->n_l1},
                                 {"composed latents", s->l1, y[m][1], s->n_l1}};
            svg_series loss[2] = {{"trained SAE", s->l1, y[m][2], s->n_l1},
                                  {"composed dictionary", s->l1, y[m][3], s->n_l1}};
            svg_lines(f, m, mode_name[m], lat, 2, "L1 coefficient", "latents (mean of seeds)",
                      1, NAN);
            svg_lines(f, 2 + m, "loss / loss of the true-feature dictionary", loss, 2,
                      "L1 coefficient", "relative loss", 1, NAN);
        }
        rc |= svg_figure_save(f, path);
        printf("wrote %s\n", path);
    }
    if (exp_figure_path(args, "exp2_cosine.svg", path, sizeof path) == 0) {
        svg_figure *f = svg_figure_create(2, 1, "Experiment 2: cosine of x1 x2 y1 y2 and the "
                                                "compositions x_i+y_j (rows) with latents");
        for (int m = 0; m < N_MODES; m++) {
            char title[128];
            snprintf(title, sizeof title, "%s, L1 %.3g, first seed", mode_name[m],
                     s->l1[example[m]]);
            svg_heatmap(f, m, title, cos[m], N_DIRS, N_LAT, N_LAT, -1, 1, "latent",
                        "rows 0-3 true, 4-7 composed");
        }
        rc |= svg_figure_save(f, path);
        printf("wrote %s\n", path);
    }
    return rc != 0;
}

static double max_over(const setup *s, const point *pts, int composed)
{
    double m = 0;
    for (int i = 0; i < s->n_l1; i++)
        m = fmax(m, composed ? pts[i].n_composed : pts[i].n_true);
    return m;
}

static void check(const setup *s, point pts[N_MODES][MAX_L1])
{
    int n = s->n_l1, ideal_composed = 1;
    for (int i = 0; i < n; i++)
        ideal_composed &= pts[CORRELATED][i].loss_composed < pts[CORRELATED][i].loss_true;
    const point *lo = &pts[INDEPENDENT][0];
    printf("\nexpected outcomes (Anders et al. 2024; Till's comment):\n");
    exp_expect(max_over(s, pts[CORRELATED], 0) == 0, "correlated amplitudes: no latent is a "
               "true feature at any L1 value (most true-feature latents: %.2f)",
               max_over(s, pts[CORRELATED], 0));
    exp_expect(max_over(s, pts[CORRELATED], 1) >= 3.5, "correlated amplitudes: there is an L1 "
               "range where (nearly) all latents are compositions (most: %.2f of 4, >= 3.5)",
               max_over(s, pts[CORRELATED], 1));
    exp_expect(ideal_composed, "correlated amplitudes: the composed dictionary has the lower "
               "objective than the true one at every L1 value (the optimum is the diagonal)");
    exp_expect(max_over(s, pts[INDEPENDENT], 0) >= 3.5, "independent amplitudes: there is an "
               "L1 range where the true features are recovered (most true-feature latents: %.2f "
               "of 4, >= 3.5)", max_over(s, pts[INDEPENDENT], 0));
    exp_expect(lo->loss_true < lo->loss_composed, "independent amplitudes, lowest L1: the true "
               "dictionary has the lower objective (%.5f vs %.5f)", lo->loss_true,
               lo->loss_composed);
}

int main(int argc, char **argv)
{
    exp_args args;
    if (exp_parse_args(argc, argv, NULL, &args) != 0)
        return 2;
    setup s = args.quick ? (setup){5, 3, 6000, 1000, {0.01, 0.03, 0.1, 0.2, 0.3}}
                         : (setup){8, 5, 6000, 5000, {0.003, 0.01, 0.03, 0.1, 0.2, 0.3, 0.6, 1.0}};
    printf("libsae %s, %s\n", sae_version_string(), sae_build_info());
    printf("Experiment 2 (Anders et al. 2024): sets {x1,x2} and {y1,y2}, one of each per sample, "
           "orthonormal in %d dims; ReLU SAEs with %d latents, %lld steps of 256, %d seeds per "
           "point\n", D, N_LAT, (long long)s.steps, s.n_seeds);
    point pts[N_MODES][MAX_L1];
    float cos[N_MODES][N_DIRS * N_LAT];
    memset(pts, 0, sizeof pts);
    const int example[N_MODES] = {s.n_l1 / 2, 0};
    int rc = 0;
    for (int m = 0; m < N_MODES && rc == 0; m++) {
        for (int k = 0; k < s.n_seeds && rc == 0; k++)
            rc = sweep_seed(&s, m, args.seed + k, args.threads, pts[m],
                            k == 0 ? cos[m] : NULL, example[m]);
        for (int i = 0; i < s.n_l1; i++) {
            point *p = &pts[m][i];
            double w = 1.0 / s.n_seeds;
            p->n_true *= w, p->n_composed *= w, p->mmcs *= w, p->loss_trained *= w;
            p->loss_true *= w, p->loss_composed *= w;
        }
        if (rc == 0)
            print_table(&s, m, pts[m]);
    }
    if (rc == 0)
        rc = write_figures(&args, &s, pts, cos, example);
    if (rc == 0)
        check(&s, pts);
    return rc != 0 ? 1 : exp_exit_status(&args);
}
