/* Toy generator: statistics of every firing, magnitude, noise and dictionary model,
 * and configuration-time validation. Tolerances are 5 standard errors. */
#include "test_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define M_PI_ 3.14159265358979323846
#define SAE_MAX_(a, b) ((a) > (b) ? (a) : (b))

/* ---- helpers ------------------------------------------------------------------- */

typedef struct codes {
    int64_t rows, nnz;
    int64_t *ptr;
    int32_t *f;
    float *m;
} codes;

static sae_toy *make_toy(sae_config *c)
{
    sae_toy *t = NULL;
    char msg[256];
    if (sae_config_validate(c, msg, sizeof msg) != SAE_OK)
        fail_msg("invalid config: %s", msg);
    assert_ok(sae_toy_create(&t, c, NULL));
    return t;
}

static codes draw(sae_toy *t, int64_t rows)
{
    codes k = {rows, 0, malloc((size_t)(rows + 1) * sizeof(int64_t)), NULL, NULL};
    int64_t needed;
    int32_t st = sae_toy_sample_codes(t, 0, rows, NULL, 0, k.ptr, NULL, NULL, 0, &needed);
    assert_true(st == SAE_OK || st == SAE_E_BUFFER_TOO_SMALL);
    k.f = malloc((size_t)SAE_MAX_(needed, 1) * sizeof *k.f);
    k.m = malloc((size_t)SAE_MAX_(needed, 1) * sizeof *k.m);
    assert_ok(sae_toy_sample_codes(t, 0, rows, NULL, 0, k.ptr, k.f, k.m, needed, &k.nnz));
    return k;
}

static void codes_free(codes *k)
{
    free(k->ptr);
    free(k->f);
    free(k->m);
}

/* Whether feature j is active in row r (codes are ascending). */
static int active_in(const codes *k, int64_t r, int32_t j)
{
    for (int64_t a = k->ptr[r]; a < k->ptr[r + 1]; a++)
        if (k->f[a] == j)
            return 1;
    return 0;
}

static int64_t count_rows(const codes *k, int32_t i, int32_t j) /* rows with i and j */
{
    int64_t c = 0;
    for (int64_t r = 0; r < k->rows; r++)
        c += active_in(k, r, i) && (j < 0 || active_in(k, r, j));
    return c;
}

static void assert_rate(int64_t count, int64_t rows, double p)
{
    double sd = sqrt(p * (1 - p) / (double)rows);
    assert_close((double)count / (double)rows, p, 5 * sd + 1e-12);
}

/* Empirical rates of all features against the reported marginals. */
static void check_marginals(sae_toy *t, const codes *k, int64_t n)
{
    double *p = malloc((size_t)n * sizeof *p);
    int64_t *count = calloc((size_t)n, sizeof *count);
    assert_ok(sae_toy_fire_probs(t, p, n));
    for (int64_t a = 0; a < k->nnz; a++)
        count[k->f[a]]++;
    for (int64_t j = 0; j < n; j++)
        assert_rate(count[j], k->rows, p[j]);
    free(p);
    free(count);
}

static void set_i64s(sae_config *c, int32_t key, const int64_t *v, int64_t n)
{
    assert_ok(sae_config_set_i64_array(c, key, v, n));
}

static void set_f64s(sae_config *c, int32_t key, const double *v, int64_t n)
{
    assert_ok(sae_config_set_f64_array(c, key, v, n));
}

static void expect_invalid(sae_config *c, const char *needle)
{
    char msg[256];
    sae_toy *t = NULL;
    assert_status(sae_config_validate(c, msg, sizeof msg), SAE_E_CONFIG);
    if (strstr(msg, needle) == NULL)
        fail_msg("reason '%s' does not mention '%s'", msg, needle);
    assert_status(sae_toy_create(&t, c, NULL), SAE_E_CONFIG);
    assert_null(t);
}

/* ---- firing profiles ------------------------------------------------------------ */

static void test_profiles(void **state)
{
    (void)state;
    const int64_t n = 40;
    double p[40];
    struct {
        int profile;
        double want0, want_last;
    } cases[] = {{SAE_TOY_FIRE_LINEAR, 0.3, 0.01},
                 {SAE_TOY_FIRE_ZIPF, 0.3, 0.3 / pow(40, 1.2)},
                 {SAE_TOY_FIRE_ZIPF_RESCALED, 0.3, 0.01}};
    for (int i = 0; i < 3; i++) {
        sae_config *c = test_config(SAE_KIND_TOY, "n_features", 40.0, "d", 8.0, "fire_profile",
                                    (double)cases[i].profile, "zipf_exponent", 1.2, NULL);
        sae_toy *t = make_toy(c);
        assert_ok(sae_toy_fire_probs(t, p, n));
        assert_close(p[0], cases[i].want0, 1e-12);
        assert_close(p[n - 1], cases[i].want_last, 1e-12);
        for (int64_t j = 1; j < n; j++)
            assert_true(p[j] < p[j - 1]);
        if (cases[i].profile == SAE_TOY_FIRE_LINEAR)
            assert_close(p[10] - p[9], p[30] - p[29], 1e-12);
        if (cases[i].profile == SAE_TOY_FIRE_ZIPF)
            assert_close(p[9] / p[4], pow(2.0, -1.2), 1e-12);
        codes k = draw(t, 20000);
        check_marginals(t, &k, n);
        codes_free(&k);
        sae_toy_free(t);
        sae_config_free(c);
    }
    sae_config *c = test_config(SAE_KIND_TOY, "fire_profile", 4.0, NULL);
    expect_invalid(c, "fire_probs");
    sae_config_free(c);
}

/* ---- mutually exclusive sets ------------------------------------------------------ */

static void test_exclusive_sets(void **state)
{
    (void)state;
    const int64_t n = 9, rows = 30000;
    int64_t sets[9] = {0, 0, 0, 5, 5, 5, -1, -1, -1};
    double probs[9] = {0.2, 0.3, 0.1, 0.5, 0.25, 0.25, 0.1, 0.2, 0.3};
    for (int mode = SAE_TOY_AT_MOST_ONE; mode <= SAE_TOY_EXACTLY_ONE; mode++) {
        sae_config *c = test_config(SAE_KIND_TOY, "n_features", 9.0, "d", 4.0, "set_mode",
                                    (double)mode, NULL);
        set_i64s(c, SAE_TOY_SET_IDS, sets, n);
        set_f64s(c, SAE_TOY_FIRE_PROBS, probs, n);
        sae_toy *t = make_toy(c);
        double p[9];
        assert_ok(sae_toy_fire_probs(t, p, n));
        assert_close(p[1], mode == SAE_TOY_AT_MOST_ONE ? 0.3 : 0.5, 1e-12);
        assert_close(p[3], 0.5, 1e-12); /* the second set sums to 1 either way */
        codes k = draw(t, rows);
        check_marginals(t, &k, n);
        for (int64_t r = 0; r < rows; r++) {
            int in0 = 0, in5 = 0;
            for (int64_t a = k.ptr[r]; a < k.ptr[r + 1]; a++) {
                in0 += sets[k.f[a]] == 0;
                in5 += sets[k.f[a]] == 5;
            }
            assert_true(in0 <= 1);
            assert_int_equal(in5, 1);
            if (mode == SAE_TOY_EXACTLY_ONE)
                assert_int_equal(in0, 1);
        }
        codes_free(&k);
        sae_toy_free(t);
        /* a set whose probabilities sum above 1 cannot be "at most one" */
        if (mode == SAE_TOY_AT_MOST_ONE) {
            double bad[9] = {0.6, 0.6, 0.1, 0.5, 0.25, 0.25, 0.1, 0.2, 0.3};
            set_f64s(c, SAE_TOY_FIRE_PROBS, bad, n);
            expect_invalid(c, "set 0");
        }
        sae_config_free(c);
    }
    sae_config *c = test_config(SAE_KIND_TOY, "n_features", 4.0, NULL);
    int64_t too_big[4] = {0, 1, 4, -1};
    set_i64s(c, SAE_TOY_SET_IDS, too_big, 4);
    expect_invalid(c, "set_ids[2]");
    set_i64s(c, SAE_TOY_SET_IDS, too_big, 3);
    expect_invalid(c, "set_ids has 3 values");
    sae_config_free(c);
}

/* ---- hierarchy ------------------------------------------------------------------------ */

/* 0 -> {1, 2}; 1 -> {3, 4}; 3 -> {5}; 6 root without children; 7 -> {8, 9} */
static const int64_t tree_parents[10] = {-1, 0, 0, 1, 1, 3, -1, -1, 7, 7};
static const double tree_p[10] = {0.4, 0.5, 0.3, 0.6, 0.2, 0.5, 0.1, 0.3, 0.45, 0.55};

static void test_hierarchy(void **state)
{
    (void)state;
    const int64_t n = 10, rows = 40000;
    for (int mode = SAE_TOY_INDEPENDENT; mode <= SAE_TOY_EXACTLY_ONE; mode++) {
        sae_config *c = test_config(SAE_KIND_TOY, "n_features", 10.0, "d", 6.0, "siblings",
                                    (double)mode, "seed", 2.0, NULL);
        set_i64s(c, SAE_TOY_PARENTS, tree_parents, n);
        set_f64s(c, SAE_TOY_FIRE_PROBS, tree_p, n);
        sae_toy *t = make_toy(c);
        double p[10];
        assert_ok(sae_toy_fire_probs(t, p, n));
        double c5 = mode == SAE_TOY_EXACTLY_ONE ? 0.6 / 0.8 : 0.6;
        double c1 = mode == SAE_TOY_EXACTLY_ONE ? 0.5 / 0.8 : 0.5;
        assert_close(p[5], 0.4 * c1 * c5 * 0.5 / (mode == SAE_TOY_EXACTLY_ONE ? 0.5 : 1), 1e-12);
        codes k = draw(t, rows);
        check_marginals(t, &k, n);
        for (int64_t r = 0; r < rows; r++) {
            int on[10] = {0};
            for (int64_t a = k.ptr[r]; a < k.ptr[r + 1]; a++)
                on[k.f[a]] = 1;
            for (int64_t j = 0; j < n; j++)
                if (on[j] && tree_parents[j] >= 0)
                    assert_true(on[tree_parents[j]]); /* never a child without its parent */
            if (mode != SAE_TOY_INDEPENDENT) {
                assert_true(on[1] + on[2] <= 1 && on[3] + on[4] <= 1 && on[8] + on[9] <= 1);
                if (mode == SAE_TOY_EXACTLY_ONE && on[7])
                    assert_int_equal(on[8] + on[9], 1);
            }
        }
        /* independent siblings co-fire at p1 p2 given the parent */
        if (mode == SAE_TOY_INDEPENDENT)
            assert_rate(count_rows(&k, 8, 9), rows, 0.3 * 0.45 * 0.55);
        codes_free(&k);
        sae_toy_free(t);
        sae_config_free(c);
    }
}

static void test_hierarchy_invalid(void **state)
{
    (void)state;
    sae_config *c = test_config(SAE_KIND_TOY, "n_features", 5.0, NULL);
    int64_t cycle[5] = {-1, 2, 3, 1, 0};
    set_i64s(c, SAE_TOY_PARENTS, cycle, 5);
    expect_invalid(c, "cycle");
    int64_t self[5] = {-1, 1, -1, -1, -1};
    set_i64s(c, SAE_TOY_PARENTS, self, 5);
    expect_invalid(c, "parents[1]");
    int64_t out[5] = {-1, 7, -1, -1, -1};
    set_i64s(c, SAE_TOY_PARENTS, out, 5);
    expect_invalid(c, "parents[1] = 7");
    /* deep chains are fine: 0 <- 1 <- 2 <- 3 <- 4 */
    int64_t chain[5] = {-1, 0, 1, 2, 3};
    set_i64s(c, SAE_TOY_PARENTS, chain, 5);
    char msg[256];
    assert_ok(sae_config_validate(c, msg, sizeof msg));
    /* at-most-one children whose probabilities sum above 1 */
    int64_t star[5] = {-1, 0, 0, 0, 0};
    set_i64s(c, SAE_TOY_PARENTS, star, 5);
    assert_ok(sae_config_set_i64(c, SAE_TOY_SIBLINGS, SAE_TOY_AT_MOST_ONE));
    assert_ok(sae_config_set_f64(c, SAE_TOY_FIRE_PROB, 0.3));
    expect_invalid(c, "children of feature 0");
    /* a child may not sit in a set */
    assert_ok(sae_config_set_i64(c, SAE_TOY_SIBLINGS, SAE_TOY_INDEPENDENT));
    int64_t sets[5] = {-1, 0, 0, -1, -1};
    set_i64s(c, SAE_TOY_SET_IDS, sets, 5);
    expect_invalid(c, "has a parent");
    sae_config_free(c);
}

/* ---- correlated firing (Gaussian copula) ------------------------------------------- */

/* P(Z1 > a, Z2 > a) for a standard bivariate normal with correlation rho: integrate
 * phi(x) * P(Z2 > a | Z1 = x) over x > a (Simpson, 4000 panels). */
static double bivariate_upper(double a, double rho)
{
    const int panels = 4000;
    double hi = 9, h = (hi - a) / panels, s = 0;
    for (int i = 0; i <= panels; i++) {
        double x = a + h * i, w = i == 0 || i == panels ? 1 : i % 2 ? 4 : 2;
        double cond = 0.5 * erfc((a - rho * x) / sqrt(1 - rho * rho) / sqrt(2.0));
        s += w * exp(-x * x / 2) / sqrt(2 * M_PI_) * cond;
    }
    return s * h / 3;
}

static void test_copula(void **state)
{
    (void)state;
    const int64_t n = 6, rows = 60000;
    /* features 1, 2, 4 correlated: corr(1,2) = 0.6, corr(1,4) = -0.4, corr(2,4) = -0.2 */
    double C[9] = {1, 0.6, -0.4, 0.6, 1, -0.2, -0.4, -0.2, 1};
    int64_t feats[3] = {1, 2, 4};
    sae_config *c = test_config(SAE_KIND_TOY, "n_features", 6.0, "d", 4.0, "fire_prob", 0.3,
                                "seed", 5.0, NULL);
    set_f64s(c, SAE_TOY_CORR, C, 9);
    set_i64s(c, SAE_TOY_CORR_FEATURES, feats, 3);
    sae_toy *t = make_toy(c);
    codes k = draw(t, rows);
    check_marginals(t, &k, n);
    double a = 0.5244005127080407; /* Phi^-1(0.7) */
    assert_rate(count_rows(&k, 1, 2), rows, bivariate_upper(a, 0.6));
    assert_rate(count_rows(&k, 1, 4), rows, bivariate_upper(a, -0.4));
    assert_rate(count_rows(&k, 2, 4), rows, bivariate_upper(a, -0.2));
    assert_rate(count_rows(&k, 0, 1), rows, 0.09); /* uncorrelated features stay independent */
    assert_true(count_rows(&k, 1, 2) > 0.09 * rows * 1.5); /* positive: more co-firing */
    assert_true(count_rows(&k, 1, 4) < 0.09 * rows * 0.6); /* negative: less */
    codes_free(&k);
    sae_toy_free(t);
    sae_config_free(c);
}

static void test_copula_singular_and_invalid(void **state)
{
    (void)state;
    /* correlation 1 is PSD but singular: both features fire together, always */
    double one[4] = {1, 1, 1, 1};
    sae_config *c = test_config(SAE_KIND_TOY, "n_features", 3.0, "d", 4.0, "fire_prob", 0.2, NULL);
    set_f64s(c, SAE_TOY_CORR, one, 4);
    sae_toy *t = make_toy(c);
    codes k = draw(t, 5000);
    assert_int_equal(count_rows(&k, 0, 1), count_rows(&k, 0, -1));
    assert_int_equal(count_rows(&k, 1, -1), count_rows(&k, 0, -1));
    assert_rate(count_rows(&k, 0, -1), 5000, 0.2);
    codes_free(&k);
    sae_toy_free(t);
    /* not PSD: three features pairwise at -0.9 */
    double neg[9] = {1, -0.9, -0.9, -0.9, 1, -0.9, -0.9, -0.9, 1};
    set_f64s(c, SAE_TOY_CORR, neg, 9);
    expect_invalid(c, "not positive semidefinite");
    double asym[4] = {1, 0.5, 0.2, 1};
    set_f64s(c, SAE_TOY_CORR, asym, 4);
    expect_invalid(c, "not symmetric");
    double diag[4] = {2, 0.5, 0.5, 1};
    set_f64s(c, SAE_TOY_CORR, diag, 4);
    expect_invalid(c, "diagonal");
    double big[4] = {1, 1.5, 1.5, 1};
    set_f64s(c, SAE_TOY_CORR, big, 4);
    expect_invalid(c, "outside [-1, 1]");
    double three[3] = {1, 0, 1};
    set_f64s(c, SAE_TOY_CORR, three, 3);
    expect_invalid(c, "square");
    double ok[4] = {1, 0.5, 0.5, 1};
    set_f64s(c, SAE_TOY_CORR, ok, 4);
    int64_t dup[2] = {2, 2};
    set_i64s(c, SAE_TOY_CORR_FEATURES, dup, 2);
    expect_invalid(c, "twice");
    double nan4[4] = {1, NAN, NAN, 1};
    assert_status(sae_config_set_f64_array(c, SAE_TOY_CORR, nan4, 4), SAE_E_NONFINITE);
    sae_config_free(c);
}

/* ---- combinations and at-least-one ---------------------------------------------------- */

static void test_combos(void **state)
{
    (void)state;
    const int64_t n = 8, rows = 40000;
    int64_t groups[] = {0, 1, -1, 2, 3, 4, -1, 1, 5};
    double q[3] = {0.2, 0.1, 0.05}, p = 0.05;
    sae_config *c = test_config(SAE_KIND_TOY, "n_features", 8.0, "d", 4.0, "fire_prob", p, NULL);
    set_i64s(c, SAE_TOY_COMBOS, groups, 9);
    set_f64s(c, SAE_TOY_COMBO_PROBS, q, 3);
    sae_toy *t = make_toy(c);
    double marg[8];
    assert_ok(sae_toy_fire_probs(t, marg, n));
    assert_close(marg[0], 1 - (1 - p) * (1 - q[0]), 1e-12);
    assert_close(marg[1], 1 - (1 - p) * (1 - q[0]) * (1 - q[2]), 1e-12);
    assert_close(marg[6], p, 1e-12);
    codes k = draw(t, rows);
    check_marginals(t, &k, n);
    /* joint rates: the combination or both independently */
    assert_rate(count_rows(&k, 0, 1), rows, q[0] + (1 - q[0]) * p * (1 - (1 - p) * (1 - q[2])));
    assert_rate(count_rows(&k, 2, 4), rows, q[1] + (1 - q[1]) * p * p);
    assert_rate(count_rows(&k, 6, 7), rows, p * p);
    codes_free(&k);
    sae_toy_free(t);
    int64_t dup[] = {0, 0};
    set_i64s(c, SAE_TOY_COMBOS, dup, 2);
    set_f64s(c, SAE_TOY_COMBO_PROBS, q, 1);
    expect_invalid(c, "twice");
    int64_t out[] = {0, 9};
    set_i64s(c, SAE_TOY_COMBOS, out, 2);
    expect_invalid(c, "combos[1] = 9");
    set_i64s(c, SAE_TOY_COMBOS, groups, 9);
    set_f64s(c, SAE_TOY_COMBO_PROBS, q, 2); /* 1 value or 3 (one per combo), not 2 */
    expect_invalid(c, "combo_probs has 2 values for 3 combos");
    sae_config_free(c);
}

/* Overlapping combinations that all fire on top of features that all fire: the members
 * are listed several times before duplicates are removed (more than N entries). */
static void test_overlapping_combos(void **state)
{
    (void)state;
    int64_t groups[] = {0, 1, 2, 3, 4, -1, 0, 1, 2, 3, 4, -1, 4, 3, 2, 1, 0, -1, 1, 2};
    double q = 1;
    sae_config *c = test_config(SAE_KIND_TOY, "n_features", 5.0, "d", 3.0, "fire_prob", 1.0, NULL);
    set_i64s(c, SAE_TOY_COMBOS, groups, 20);
    set_f64s(c, SAE_TOY_COMBO_PROBS, &q, 1);
    sae_toy *t = make_toy(c);
    codes k = draw(t, 50);
    assert_int_equal(k.nnz, 50 * 5);
    for (int64_t a = 0; a < k.nnz; a++)
        assert_int_equal(k.f[a], a % 5);
    codes_free(&k);
    sae_toy_free(t);
    sae_config_free(c);
}

static void test_min_one_active(void **state)
{
    (void)state;
    const int64_t n = 10, rows = 20000;
    sae_config *c = test_config(SAE_KIND_TOY, "n_features", 10.0, "d", 4.0, "fire_prob", 0.04,
                                "min_one_active", 1.0, NULL);
    sae_toy *t = make_toy(c);
    double p0, marg[10];
    assert_ok(sae_toy_info(t, SAE_TOY_INFO_P_EMPTY, &p0));
    assert_close(p0, pow(0.96, 10), 1e-12);
    assert_ok(sae_toy_fire_probs(t, marg, n));
    assert_close(marg[3], 0.04 / (1 - p0), 1e-12);
    codes k = draw(t, rows);
    for (int64_t r = 0; r < rows; r++)
        assert_true(k.ptr[r + 1] > k.ptr[r]);
    check_marginals(t, &k, n);
    codes_free(&k);
    sae_toy_free(t);
    assert_ok(sae_config_set_f64(c, SAE_TOY_FIRE_PROB, 0));
    expect_invalid(c, "min_one_active");
    assert_ok(sae_config_set_f64(c, SAE_TOY_FIRE_PROB, 1e-6)); /* ~1e5 redraws per sample */
    expect_invalid(c, "min_one_active");
    sae_config_free(c);
}

/* ---- magnitudes ------------------------------------------------------------------------ */

static double phi(double x) { return exp(-x * x / 2) / sqrt(2 * M_PI_); }
static double Phi(double x) { return 0.5 * erfc(-x / sqrt(2.0)); }

static void test_magnitude_models(void **state)
{
    (void)state;
    const double mu = 0.8, sd = 1.1, lo = 0.5, hi = 3;
    struct {
        int model;
        double mean, var;
    } cases[] = {
        {SAE_TOY_MAG_UNIFORM, (lo + hi) / 2, (hi - lo) * (hi - lo) / 12},
        {SAE_TOY_MAG_CONSTANT, mu, 0},
        {SAE_TOY_MAG_FOLDED_NORMAL, sd * sqrt(2 / M_PI_) * exp(-mu * mu / (2 * sd * sd)) +
                                        mu * (1 - 2 * Phi(-mu / sd)),
         -1},
        {SAE_TOY_MAG_CLIPPED_NORMAL, mu * Phi(mu / sd) + sd * phi(mu / sd), -1},
        {SAE_TOY_MAG_EXPONENTIAL, mu, mu * mu},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sae_config *c = test_config(SAE_KIND_TOY, "n_features", 20.0, "d", 4.0, "fire_prob", 0.5,
                                    "mag_model", (double)cases[i].model, "mag_mean", mu, "mag_std",
                                    sd, "mag_lo", lo, "mag_hi", hi, NULL);
        sae_toy *t = make_toy(c);
        codes k = draw(t, 4000);
        double s = 0, s2 = 0, mn = 1e30, mx = -1e30;
        for (int64_t a = 0; a < k.nnz; a++) {
            s += k.m[a];
            s2 += (double)k.m[a] * k.m[a];
            mn = fmin(mn, k.m[a]);
            mx = fmax(mx, k.m[a]);
        }
        double mean = s / (double)k.nnz, var = fmax(0, s2 / (double)k.nnz - mean * mean);
        if (cases[i].var >= 0)
            assert_close(var, cases[i].var, 0.05 * cases[i].var + 1e-9);
        assert_close(mean, cases[i].mean, 5 * sqrt(var / (double)k.nnz) + 1e-6);
        assert_true(mn >= 0);
        if (cases[i].model == SAE_TOY_MAG_UNIFORM)
            assert_true(mn >= lo && mx <= hi);
        if (cases[i].model == SAE_TOY_MAG_CLIPPED_NORMAL) /* a point mass at 0 */
            assert_true(mn == 0);
        codes_free(&k);
        sae_toy_free(t);
        sae_config_free(c);
    }
}

static void test_per_feature_magnitudes(void **state)
{
    (void)state;
    double means[4] = {1, 2, 5, 10};
    sae_config *c = test_config(SAE_KIND_TOY, "n_features", 4.0, "d", 4.0, "fire_prob", 0.5,
                                "mag_model", (double)SAE_TOY_MAG_CONSTANT, NULL);
    set_f64s(c, SAE_TOY_MAG_MEANS, means, 4);
    sae_toy *t = make_toy(c);
    codes k = draw(t, 200);
    for (int64_t a = 0; a < k.nnz; a++)
        assert_close(k.m[a], means[k.f[a]], 0);
    codes_free(&k);
    sae_toy_free(t);
    double los[4] = {0, 1, 2, 3}, his[4] = {1, 2, 3, 2.5};
    assert_ok(sae_config_set_i64(c, SAE_TOY_MAG_MODEL, SAE_TOY_MAG_UNIFORM));
    set_f64s(c, SAE_TOY_MAG_LOS, los, 4);
    set_f64s(c, SAE_TOY_MAG_HIS, his, 4);
    expect_invalid(c, "feature 3");
    his[3] = 4;
    set_f64s(c, SAE_TOY_MAG_HIS, his, 4);
    t = make_toy(c);
    k = draw(t, 500);
    for (int64_t a = 0; a < k.nnz; a++)
        assert_true(k.m[a] >= los[k.f[a]] && k.m[a] < his[k.f[a]]);
    codes_free(&k);
    sae_toy_free(t);
    sae_config_free(c);
}

/* Amplitude groups: with correlation 1 the members of a group get equal magnitudes;
 * with rho the magnitudes' correlation is rho (normal model far from 0). */
static void test_amplitude_groups(void **state)
{
    (void)state;
    int64_t groups[4] = {0, 0, -1, -1};
    double rhos[3] = {1, 0.5, 0};
    for (int i = 0; i < 3; i++) {
        sae_config *c = test_config(SAE_KIND_TOY, "n_features", 4.0, "d", 4.0, "fire_prob", 0.7,
                                    "mag_model", (double)SAE_TOY_MAG_CLIPPED_NORMAL, "mag_mean",
                                    20.0, "mag_std", 1.0, "mag_group_corr", rhos[i], NULL);
        set_i64s(c, SAE_TOY_MAG_GROUPS, groups, 4);
        sae_toy *t = make_toy(c);
        codes k = draw(t, 20000);
        double sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0, ux = 0, uy = 0, uxy = 0;
        int64_t both = 0, free_both = 0;
        for (int64_t r = 0; r < k.rows; r++) {
            float m[4] = {-1, -1, -1, -1};
            for (int64_t a = k.ptr[r]; a < k.ptr[r + 1]; a++)
                m[k.f[a]] = k.m[a];
            if (m[0] >= 0 && m[1] >= 0) {
                if (rhos[i] == 1)
                    assert_true(m[0] == m[1]);
                both++;
                sx += m[0], sy += m[1], sxx += (double)m[0] * m[0], syy += (double)m[1] * m[1];
                sxy += (double)m[0] * m[1];
            }
            if (m[2] >= 0 && m[3] >= 0) {
                free_both++;
                ux += m[2], uy += m[3], uxy += (double)m[2] * m[3];
            }
        }
        double nb = (double)both, cov = sxy / nb - sx / nb * sy / nb;
        double corr = cov / sqrt((sxx / nb - sx * sx / nb / nb) * (syy / nb - sy * sy / nb / nb));
        assert_close(corr, rhos[i], 5 * (1 - rhos[i] * rhos[i]) / sqrt(nb) + 1e-6);
        /* ungrouped features stay uncorrelated: |cov| small relative to var 1 */
        double fb = (double)free_both;
        assert_close(uxy / fb - ux / fb * uy / fb, 0, 5 / sqrt(fb));
        codes_free(&k);
        sae_toy_free(t);
        sae_config_free(c);
    }
}

/* ---- noise and normalisation ------------------------------------------------------------- */

static void test_noise_and_normalize(void **state)
{
    (void)state;
    const int64_t d = 64, rows = 2000;
    sae_config *c = test_config(SAE_KIND_TOY, "n_features", 8.0, "d", 64.0, "fire_prob", 0.0,
                                "noise_std", 0.3, NULL);
    sae_toy *t = make_toy(c);
    float *x = malloc((size_t)(rows * d) * sizeof *x);
    assert_ok(sae_toy_sample(t, 0, rows, x, d));
    double s = 0, s2 = 0, cross = 0;
    for (int64_t i = 0; i < rows * d; i++) {
        s += x[i];
        s2 += (double)x[i] * x[i];
        if (i % d != 0)
            cross += (double)x[i] * x[i - 1];
    }
    double cnt = (double)(rows * d);
    assert_close(s / cnt, 0, 5 * 0.3 / sqrt(cnt));
    assert_close(s2 / cnt, 0.09, 5 * 0.09 * sqrt(2 / cnt));
    assert_close(cross / cnt, 0, 5 * 0.09 / sqrt(cnt));
    /* the shape is normal: empirical CDF at several points, including the tails */
    const double at[] = {-3.5, -2.5, -1, -0.3, 0, 0.7, 1.5, 2, 3};
    for (size_t q = 0; q < sizeof at / sizeof at[0]; q++) {
        int64_t below = 0;
        for (int64_t i = 0; i < rows * d; i++)
            below += x[i] < at[q] * 0.3;
        assert_rate(below, rows * d, 0.5 * erfc(-at[q] / sqrt(2.0)));
    }
    sae_toy_free(t);
    sae_config_free(c);

    /* normalize: E||x||^2 = d over fresh samples, within 5 standard errors + 2% */
    c = test_config(SAE_KIND_TOY, "n_features", 200.0, "d", 64.0, "fire_prob", 0.03, "noise_std",
                    0.1, "normalize", 1.0, "mag_model", (double)SAE_TOY_MAG_EXPONENTIAL, NULL);
    t = make_toy(c);
    assert_ok(sae_toy_sample(t, 0, rows, x, d));
    double sq = 0, sq2 = 0;
    for (int64_t r = 0; r < rows; r++) {
        double v = 0;
        for (int64_t k = 0; k < d; k++)
            v += (double)x[r * d + k] * x[r * d + k];
        sq += v, sq2 += v * v;
    }
    double mean = sq / rows, sdv = sqrt(sq2 / rows - mean * mean);
    assert_close(mean, (double)d, 5 * sdv / sqrt((double)rows) + 0.02 * d);
    double scale;
    assert_ok(sae_toy_info(t, SAE_TOY_INFO_SCALE, &scale));
    assert_true(scale > 1); /* 6 active features of mean 1 in 64 dims are too small */
    /* codes carry the scaled magnitudes: x == sum m v still holds */
    float *dict = malloc(200 * 64 * sizeof *dict);
    assert_ok(sae_toy_dictionary(t, dict, d));
    sae_toy_free(t);
    assert_ok(sae_config_set_f64(c, SAE_TOY_NOISE_STD, 0));
    t = make_toy(c);
    int64_t ptr[11], nnz;
    int32_t f[400];
    float m[400];
    assert_ok(sae_toy_sample_codes(t, 0, 10, x, d, ptr, f, m, 400, &nnz));
    for (int64_t r = 0; r < 10; r++)
        for (int64_t k = 0; k < d; k++) {
            double want = 0;
            for (int64_t a = ptr[r]; a < ptr[r + 1]; a++)
                want += (double)m[a] * dict[f[a] * d + k];
            assert_close(x[r * d + k], want, 1e-4 * (1 + fabs(want)));
        }
    free(dict);
    free(x);
    sae_toy_free(t);
    sae_config_free(c);
}

/* Noise shape: chi-square over 34 bins of 10^6 draws (33 degrees of freedom; the
 * threshold 80 is exceeded with probability about 1e-5 by a correct sampler). */
static void test_noise_chi_square(void **state)
{
    (void)state;
    const int64_t d = 1000, rows = 1000;
    sae_config *c = test_config(SAE_KIND_TOY, "n_features", 2.0, "d", 1000.0, "fire_prob", 0.0,
                                "noise_std", 1.0, "seed", 17.0, NULL);
    sae_toy *t = make_toy(c);
    float *x = malloc((size_t)(rows * d) * sizeof *x);
    assert_ok(sae_toy_sample(t, 0, rows, x, d));
    int64_t bins[34] = {0};
    for (int64_t i = 0; i < rows * d; i++) {
        double v = x[i];
        int b = v < -4 ? 0 : v >= 4 ? 33 : 1 + (int)floor((v + 4) / 0.25);
        bins[b]++;
    }
    double chi2 = 0, total = (double)(rows * d);
    for (int b = 0; b < 34; b++) {
        double lo = b == 0 ? -INFINITY : -4 + 0.25 * (b - 1), hi = b == 33 ? INFINITY : -4 + 0.25 * b;
        double p = Phi(hi) - Phi(lo), e = p * total;
        chi2 += (bins[b] - e) * (bins[b] - e) / e;
    }
    if (chi2 > 80)
        fail_msg("chi-square %.1f over 34 bins (33 df)", chi2);
    free(x);
    sae_toy_free(t);
    sae_config_free(c);
}

/* ---- dictionaries -------------------------------------------------------------------------- */

static double row_dot(const float *a, const float *b, int64_t d)
{
    double s = 0;
    for (int64_t k = 0; k < d; k++)
        s += (double)a[k] * b[k];
    return s;
}

static void test_dictionaries(void **state)
{
    (void)state;
    const int64_t n = 12, d = 16;
    float D[12 * 16];
    for (int kind = SAE_TOY_DICT_GAUSSIAN; kind <= SAE_TOY_DICT_ROTATED; kind++) {
        sae_config *c = test_config(SAE_KIND_TOY, "n_features", 12.0, "d", 16.0, "dict",
                                    (double)kind, "seed", 9.0, NULL);
        sae_toy *t = make_toy(c);
        assert_ok(sae_toy_dictionary(t, D, d));
        double max_off = 0;
        for (int64_t i = 0; i < n; i++) {
            assert_close(row_dot(D + i * d, D + i * d, d), 1, 1e-5);
            for (int64_t j = 0; j < i; j++)
                max_off = fmax(max_off, fabs(row_dot(D + i * d, D + j * d, d)));
        }
        if (kind == SAE_TOY_DICT_GAUSSIAN)
            assert_true(max_off > 0.05); /* random directions are not orthogonal */
        else
            assert_true(max_off < 1e-6);
        if (kind == SAE_TOY_DICT_AXES)
            assert_true(D[3 * d + 3] == 1.0f && D[3 * d + 4] == 0.0f);
        if (kind == SAE_TOY_DICT_ROTATED)
            assert_true(fabs(D[3 * d + 3]) < 0.999);
        sae_toy_free(t);
        assert_ok(sae_config_set_i64(c, SAE_TOY_N_FEATURES, 17));
        if (kind != SAE_TOY_DICT_GAUSSIAN)
            expect_invalid(c, "n_features <= d");
        sae_config_free(c);
    }
}

static void test_pair_cosines(void **state)
{
    (void)state;
    const int64_t d = 32;
    int64_t pairs[6] = {0, 1, 0, 2, 5, 6};
    double cos3[3] = {0.95, -0.5, 0.99};
    float D[10 * 32];
    for (int kind = SAE_TOY_DICT_GAUSSIAN; kind <= SAE_TOY_DICT_ROTATED; kind += 2) {
        sae_config *c = test_config(SAE_KIND_TOY, "n_features", 10.0, "d", 32.0, "dict",
                                    (double)kind, NULL);
        set_i64s(c, SAE_TOY_DICT_PAIRS, pairs, 6);
        set_f64s(c, SAE_TOY_DICT_PAIR_COS, cos3, 3);
        sae_toy *t = make_toy(c);
        assert_ok(sae_toy_dictionary(t, D, d));
        for (int p = 0; p < 3; p++)
            assert_close(row_dot(D + pairs[2 * p] * d, D + pairs[2 * p + 1] * d, d), cos3[p], 1e-5);
        for (int j = 0; j < 10; j++)
            assert_close(row_dot(D + j * d, D + j * d, d), 1, 1e-5);
        if (kind == SAE_TOY_DICT_ROTATED) /* rows outside the pairs keep orthogonality */
            assert_close(row_dot(D + 3 * d, D + 1 * d, d), 0, 1e-6);
        sae_toy_free(t);
        int64_t bad[4] = {0, 1, 1, 2};
        set_i64s(c, SAE_TOY_DICT_PAIRS, bad, 4);
        set_f64s(c, SAE_TOY_DICT_PAIR_COS, cos3, 1);
        expect_invalid(c, "feature 1 is the second of pair 0");
        set_i64s(c, SAE_TOY_DICT_PAIRS, bad, 3);
        expect_invalid(c, "odd");
        sae_config_free(c);
    }
}

static void test_caller_dictionary(void **state)
{
    (void)state;
    double v[3 * 4] = {3, 0, 4, 0, 0, 2, 0, 0, 1, 1, 1, 1};
    float D[12];
    sae_config *c = test_config(SAE_KIND_TOY, "n_features", 3.0, "d", 4.0, NULL);
    set_f64s(c, SAE_TOY_DICT_VALUES, v, 12);
    expect_invalid(c, "not caller"); /* given directions would be ignored */
    assert_ok(sae_config_set_f64_array(c, SAE_TOY_DICT_VALUES, NULL, 0));
    assert_ok(sae_config_set_i64(c, SAE_TOY_DICT, SAE_TOY_DICT_CALLER));
    expect_invalid(c, "dict_values");
    set_f64s(c, SAE_TOY_DICT_VALUES, v, 12);
    sae_toy *t = make_toy(c);
    assert_ok(sae_toy_dictionary(t, D, 4));
    assert_close(D[0], 0.6, 1e-7);
    assert_close(D[2], 0.8, 1e-7);
    assert_close(D[5], 1, 0);
    assert_close(D[11], 0.5, 1e-7);
    sae_toy_free(t);
    assert_ok(sae_config_set_i64(c, SAE_TOY_DICT_NORMALIZE, 0));
    expect_invalid(c, "dict_values row 0 has norm 5");
    double unit[12] = {0.6, 0, 0.8, 0, 0, 1, 0, 0, 0.5, 0.5, 0.5, 0.5};
    set_f64s(c, SAE_TOY_DICT_VALUES, unit, 12);
    t = make_toy(c);
    sae_toy_free(t);
    unit[5] = 0;
    assert_ok(sae_config_set_i64(c, SAE_TOY_DICT_NORMALIZE, 1));
    set_f64s(c, SAE_TOY_DICT_VALUES, unit, 12);
    expect_invalid(c, "row 1 is zero");
    unit[5] = INFINITY;
    assert_status(sae_config_set_f64_array(c, SAE_TOY_DICT_VALUES, unit, 12), SAE_E_NONFINITE);
    sae_config_free(c);
}

/* ---- ground truth readable by metrics ------------------------------------------------------- */

static void test_get_config_and_info(void **state)
{
    (void)state;
    sae_config *c = test_config(SAE_KIND_TOY, "n_features", 10.0, "d", 6.0, NULL);
    set_i64s(c, SAE_TOY_PARENTS, tree_parents, 10);
    set_f64s(c, SAE_TOY_FIRE_PROBS, tree_p, 10);
    sae_toy *t = make_toy(c);
    sae_config *got = NULL;
    assert_ok(sae_toy_get_config(t, &got));
    int64_t parents[10], len;
    assert_ok(sae_config_get_i64_array(got, SAE_TOY_PARENTS, parents, 10, &len));
    assert_int_equal(len, 10);
    assert_memory_equal(parents, tree_parents, sizeof parents);
    sae_config_free(got);
    double v, marg[10], sum = 0;
    assert_ok(sae_toy_fire_probs(t, marg, 10));
    for (int j = 0; j < 10; j++)
        sum += marg[j];
    assert_ok(sae_toy_info(t, SAE_TOY_INFO_MEAN_ACTIVE, &v));
    assert_close(v, sum, 1e-12);
    assert_ok(sae_toy_info(t, SAE_TOY_INFO_SCALE, &v));
    assert_close(v, 1, 0);
    assert_status(sae_toy_info(t, 99, &v), SAE_E_UNKNOWN_KEY);
    assert_status(sae_toy_info(t, SAE_TOY_INFO_SCALE, NULL), SAE_E_NULL);
    assert_status(sae_toy_info(NULL, SAE_TOY_INFO_SCALE, &v), SAE_E_NULL);
    assert_status(sae_toy_get_config(t, NULL), SAE_E_NULL);
    assert_status(sae_toy_get_config(NULL, &got), SAE_E_NULL);
    sae_toy_free(t);
    sae_config_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_profiles),
        cmocka_unit_test(test_exclusive_sets),
        cmocka_unit_test(test_hierarchy),
        cmocka_unit_test(test_hierarchy_invalid),
        cmocka_unit_test(test_copula),
        cmocka_unit_test(test_copula_singular_and_invalid),
        cmocka_unit_test(test_combos),
        cmocka_unit_test(test_overlapping_combos),
        cmocka_unit_test(test_min_one_active),
        cmocka_unit_test(test_magnitude_models),
        cmocka_unit_test(test_per_feature_magnitudes),
        cmocka_unit_test(test_amplitude_groups),
        cmocka_unit_test(test_noise_and_normalize),
        cmocka_unit_test(test_noise_chi_square),
        cmocka_unit_test(test_dictionaries),
        cmocka_unit_test(test_pair_cosines),
        cmocka_unit_test(test_caller_dictionary),
        cmocka_unit_test(test_get_config_and_info),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
