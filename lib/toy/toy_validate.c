/* Cross-parameter checks of toy configurations. Each check names the parameter at
 * fault; sae_toy_create refuses any configuration that fails here. */
#include "toy_internal.h"

#include <math.h>
#include <string.h>

#define R(...) sae_reason(msg, cap, SAE_E_CONFIG, __VA_ARGS__)
#define LL(x) ((long long)(x))
/* slack for sums of probabilities that should stay <= 1 */
#define PROB_SLACK 1e-9
/* largest copula: the Cholesky factor costs m^2/2 doubles and m^3/6 operations */
#define MAX_CORR_M 8192

/* ---- shared helpers ---------------------------------------------------------- */

void sae_toy_base_probs(const sae_config *c, int64_t n, double *p)
{
    int64_t np;
    const double *given = sae_cfg_f64_array(c, SAE_TOY_FIRE_PROBS, &np);
    int64_t profile = sae_cfg_i64(c, SAE_TOY_FIRE_PROFILE);
    double pmax = sae_cfg_f64(c, SAE_TOY_FIRE_PROB_MAX), pmin = sae_cfg_f64(c, SAE_TOY_FIRE_PROB_MIN);
    double a = sae_cfg_f64(c, SAE_TOY_ZIPF_EXPONENT), last = pow((double)n, -a);
    for (int64_t j = 0; j < n; j++) {
        double v;
        if (np == n)
            v = given[j];
        else if (profile == SAE_TOY_FIRE_LINEAR)
            v = n == 1 ? pmax : pmax + (pmin - pmax) * (double)j / (double)(n - 1);
        else if (profile == SAE_TOY_FIRE_ZIPF)
            v = pmax * pow((double)(j + 1), -a);
        else if (profile == SAE_TOY_FIRE_ZIPF_RESCALED)
            v = n == 1 || last == 1 ? pmax
                                    : pmin + (pmax - pmin) * (pow((double)(j + 1), -a) - last) / (1 - last);
        else
            v = sae_cfg_f64(c, SAE_TOY_FIRE_PROB);
        p[j] = v < 0 ? 0 : v > 1 ? 1 : v;
    }
}

int64_t sae_toy_count_groups(const int64_t *v, int64_t len)
{
    int64_t groups = 0;
    for (int64_t i = 0; i < len; i++)
        if (v[i] >= 0 && (i == 0 || v[i - 1] < 0))
            groups++;
    return groups;
}

/* Scratch for the checks: probabilities, a per-feature mark and a per-feature sum. */
typedef struct vscratch {
    const sae_alloc *al;
    int64_t n;
    double *p, *sum;
    int64_t *mark;
    const int64_t *parents; /* NULL = no hierarchy */
    const int64_t *sets;    /* NULL = no sets */
} vscratch;

static int is_root(const vscratch *v, int64_t j) { return v->parents == NULL || v->parents[j] < 0; }
static int in_set(const vscratch *v, int64_t j) { return v->sets != NULL && v->sets[j] >= 0; }

/* ---- sizes, probabilities, magnitudes ------------------------------------------ */

static int32_t check_sizes(const sae_config *c, char *msg, size_t cap)
{
    int64_t n = sae_cfg_i64(c, SAE_TOY_N_FEATURES), d = sae_cfg_i64(c, SAE_TOY_D);
    if (n > (INT64_C(1) << 34) / d)
        return R("n_features x d = %lld x %lld is too large (limit 2^34 entries)", LL(n), LL(d));
    int64_t steps = sae_cfg_i64(c, SAE_TOY_TMS_STEPS), batch = sae_cfg_i64(c, SAE_TOY_TMS_BATCH);
    if (sae_cfg_i64(c, SAE_TOY_DICT) == SAE_TOY_DICT_SUPERPOSITION && steps > (INT64_C(1) << 50) / batch)
        return R("tms_steps x tms_batch = %lld x %lld is too large", LL(steps), LL(batch));
    return SAE_OK;
}

static int32_t check_length(const sae_config *c, int32_t key, int64_t want, char *msg, size_t cap)
{
    int64_t len;
    const char *name = sae_param_name(key);
    int32_t type;
    if (sae_param_info(key, NULL, &type, NULL, NULL, NULL) != SAE_OK)
        return R("internal: unknown key %d", (int)key);
    if (type == SAE_TYPE_F64_ARRAY)
        sae_cfg_f64_array(c, key, &len);
    else
        sae_cfg_i64_array(c, key, &len);
    if (len != 0 && len != want)
        return R("%s has %lld values, n_features is %lld", name, LL(len), LL(want));
    return SAE_OK;
}

static int32_t check_probs(const sae_config *c, char *msg, size_t cap)
{
    int64_t n = sae_cfg_i64(c, SAE_TOY_N_FEATURES), np;
    int32_t st = check_length(c, SAE_TOY_FIRE_PROBS, n, msg, cap);
    if (st != SAE_OK)
        return st;
    sae_cfg_f64_array(c, SAE_TOY_FIRE_PROBS, &np);
    int64_t profile = sae_cfg_i64(c, SAE_TOY_FIRE_PROFILE);
    if (profile == SAE_TOY_FIRE_CALLER && np == 0)
        return R("fire_profile = caller (4) needs fire_probs");
    if ((profile == SAE_TOY_FIRE_LINEAR || profile == SAE_TOY_FIRE_ZIPF_RESCALED) && np == 0 &&
        sae_cfg_f64(c, SAE_TOY_FIRE_PROB_MIN) > sae_cfg_f64(c, SAE_TOY_FIRE_PROB_MAX))
        return R("fire_prob_min must not exceed fire_prob_max");
    return SAE_OK;
}

static int32_t check_magnitudes(const sae_config *c, char *msg, size_t cap)
{
    int64_t n = sae_cfg_i64(c, SAE_TOY_N_FEATURES);
    const int32_t arrays[] = {SAE_TOY_MAG_LOS, SAE_TOY_MAG_HIS, SAE_TOY_MAG_MEANS, SAE_TOY_MAG_STDS,
                              SAE_TOY_MAG_GROUPS, SAE_TOY_TMS_IMPORTANCES};
    for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++) {
        int32_t st = check_length(c, arrays[i], n, msg, cap);
        if (st != SAE_OK)
            return st;
    }
    if (sae_cfg_i64(c, SAE_TOY_MAG_MODEL) != SAE_TOY_MAG_UNIFORM)
        return SAE_OK;
    int64_t nl, nh;
    const double *lo = sae_cfg_f64_array(c, SAE_TOY_MAG_LOS, &nl);
    const double *hi = sae_cfg_f64_array(c, SAE_TOY_MAG_HIS, &nh);
    double lo0 = sae_cfg_f64(c, SAE_TOY_MAG_LO), hi0 = sae_cfg_f64(c, SAE_TOY_MAG_HI);
    if (nl == 0 && nh == 0 && lo0 > hi0)
        return R("mag_lo must not exceed mag_hi");
    for (int64_t j = 0; j < n && (nl > 0 || nh > 0); j++)
        if ((nl ? lo[j] : lo0) > (nh ? hi[j] : hi0))
            return R("feature %lld: mag_lo%s > mag_hi%s", LL(j), nl ? "s" : "", nh ? "s" : "");
    return SAE_OK;
}

/* ---- dictionary ------------------------------------------------------------------ */

static int32_t check_dict_values(const sae_config *c, int64_t n, int64_t d, char *msg, size_t cap)
{
    int64_t len;
    const double *v = sae_cfg_f64_array(c, SAE_TOY_DICT_VALUES, &len);
    if (len != n * d)
        return R("dict = caller (3) needs dict_values of n_features x d = %lld values, got %lld",
                 LL(n * d), LL(len));
    int normalise = (int)sae_cfg_i64(c, SAE_TOY_DICT_NORMALIZE);
    for (int64_t j = 0; j < n; j++) {
        double s = 0;
        for (int64_t k = 0; k < d; k++)
            s += v[j * d + k] * v[j * d + k];
        if (!isfinite(s))
            return R("dict_values row %lld overflows", LL(j));
        if (s < 1e-24)
            return R("dict_values row %lld is zero", LL(j));
        if (!normalise && fabs(sqrt(s) - 1) > 1e-4)
            return R("dict_values row %lld has norm %.6g; set dict_normalize = 1 or pass unit rows",
                     LL(j), sqrt(s));
    }
    return SAE_OK;
}

static int32_t check_pairs(const sae_config *c, vscratch *v, char *msg, size_t cap)
{
    int64_t len, ncos;
    const int64_t *pairs = sae_cfg_i64_array(c, SAE_TOY_DICT_PAIRS, &len);
    sae_cfg_f64_array(c, SAE_TOY_DICT_PAIR_COS, &ncos);
    if (len == 0)
        return ncos == 0 ? SAE_OK : R("dict_pair_cos is set but dict_pairs is empty");
    if (len % 2 != 0)
        return R("dict_pairs has an odd number of values (%lld)", LL(len));
    if (ncos != 1 && ncos != len / 2)
        return R("dict_pair_cos has %lld values; give 1 or one per pair (%lld)", LL(ncos), LL(len / 2));
    if (sae_cfg_i64(c, SAE_TOY_DICT) == SAE_TOY_DICT_SUPERPOSITION)
        return R("dict_pairs cannot be used with dict = superposition (4): W is learned");
    memset(v->mark, 0, (size_t)v->n * sizeof *v->mark);
    for (int64_t i = 0; i < len; i++)
        if (pairs[i] >= v->n)
            return R("dict_pairs[%lld] = %lld is not a feature (n_features = %lld)", LL(i), LL(pairs[i]),
                     LL(v->n));
    /* the second feature of a pair is rotated towards the first: it must not appear in
     * any other pair, or a later rotation would undo an earlier one */
    for (int64_t i = 0; i < len; i++)
        v->mark[pairs[i]]++;
    for (int64_t i = 0; i < len; i += 2) {
        if (pairs[i] == pairs[i + 1])
            return R("dict_pairs: pair %lld joins feature %lld with itself", LL(i / 2), LL(pairs[i]));
        if (v->mark[pairs[i + 1]] != 1)
            return R("dict_pairs: feature %lld is the second of pair %lld and appears in another pair",
                     LL(pairs[i + 1]), LL(i / 2));
    }
    return SAE_OK;
}

static int32_t check_dict(const sae_config *c, vscratch *v, char *msg, size_t cap)
{
    int64_t n = v->n, d = sae_cfg_i64(c, SAE_TOY_D), kind = sae_cfg_i64(c, SAE_TOY_DICT);
    if ((kind == SAE_TOY_DICT_AXES || kind == SAE_TOY_DICT_ROTATED) && n > d)
        return R("dict = %s needs n_features <= d (%lld > %lld)",
                 kind == SAE_TOY_DICT_AXES ? "axes (1)" : "rotated (2)", LL(n), LL(d));
    if (kind == SAE_TOY_DICT_CALLER) {
        int32_t st = check_dict_values(c, n, d, msg, cap);
        if (st != SAE_OK)
            return st;
    } else if (sae_cfg_is_set(c, SAE_TOY_DICT_VALUES)) {
        return R("dict_values is set but dict is %lld, not caller (3)", LL(kind));
    }
    return check_pairs(c, v, msg, cap);
}

/* ---- hierarchy and sets ------------------------------------------------------------ */

static int32_t check_cycles(const vscratch *v, char *msg, size_t cap)
{
    int64_t *state = v->mark; /* 0 unvisited, 1 on the current path, 2 done */
    memset(state, 0, (size_t)v->n * sizeof *state);
    for (int64_t j = 0; j < v->n; j++) {
        int64_t k = j;
        while (k >= 0 && state[k] == 0) {
            state[k] = 1;
            k = v->parents[k];
        }
        if (k >= 0 && state[k] == 1)
            return R("parents: feature %lld is its own ancestor (cycle)", LL(k));
        for (k = j; k >= 0 && state[k] == 1; k = v->parents[k])
            state[k] = 2;
    }
    return SAE_OK;
}

/* Sums of p per label (children of a parent, members of a set) against a rule. */
static int32_t check_exclusive_sums(const vscratch *v, const int64_t *label, int64_t mode,
                                    const char *what, char *msg, size_t cap)
{
    memset(v->sum, 0, (size_t)v->n * sizeof *v->sum);
    memset(v->mark, 0, (size_t)v->n * sizeof *v->mark);
    for (int64_t j = 0; j < v->n; j++)
        if (label[j] >= 0) {
            v->sum[label[j]] += v->p[j];
            v->mark[label[j]] = 1;
        }
    for (int64_t g = 0; g < v->n; g++) {
        if (!v->mark[g])
            continue;
        if (mode == SAE_TOY_AT_MOST_ONE && v->sum[g] > 1 + PROB_SLACK)
            return R("%s %lld: firing probabilities sum to %.6g > 1, impossible with at most one "
                     "firing", what, LL(g), v->sum[g]);
        if (mode == SAE_TOY_EXACTLY_ONE && v->sum[g] <= 0)
            return R("%s %lld: firing probabilities are all 0, impossible with exactly one firing",
                     what, LL(g));
    }
    return SAE_OK;
}

static int32_t check_hierarchy(const sae_config *c, vscratch *v, char *msg, size_t cap)
{
    if (v->parents == NULL)
        return SAE_OK;
    for (int64_t j = 0; j < v->n; j++) {
        if (v->parents[j] >= v->n)
            return R("parents[%lld] = %lld is not a feature (n_features = %lld)", LL(j),
                     LL(v->parents[j]), LL(v->n));
        if (v->parents[j] == j)
            return R("parents[%lld]: feature %lld is its own parent (cycle)", LL(j), LL(j));
    }
    int32_t st = check_cycles(v, msg, cap);
    if (st != SAE_OK)
        return st;
    return check_exclusive_sums(v, v->parents, sae_cfg_i64(c, SAE_TOY_SIBLINGS), "children of feature",
                                msg, cap);
}

static int32_t check_sets(const sae_config *c, vscratch *v, char *msg, size_t cap)
{
    if (v->sets == NULL)
        return SAE_OK;
    for (int64_t j = 0; j < v->n; j++) {
        if (v->sets[j] >= v->n)
            return R("set_ids[%lld] = %lld: set ids must be below n_features (%lld)", LL(j),
                     LL(v->sets[j]), LL(v->n));
        if (v->sets[j] >= 0 && !is_root(v, j))
            return R("set_ids[%lld]: feature %lld has a parent; sets hold root features only", LL(j),
                     LL(j));
    }
    return check_exclusive_sums(v, v->sets, sae_cfg_i64(c, SAE_TOY_SET_MODE), "set", msg, cap);
}

/* ---- correlated firing ----------------------------------------------------------- */

static int32_t check_corr_features(const sae_config *c, vscratch *v, int64_t m, char *msg, size_t cap)
{
    int64_t nf;
    const int64_t *f = sae_cfg_i64_array(c, SAE_TOY_CORR_FEATURES, &nf);
    if (nf != 0 && nf != m)
        return R("corr_features has %lld values, corr_matrix is %lld x %lld", LL(nf), LL(m), LL(m));
    if (nf == 0 && m > v->n)
        return R("corr_matrix is %lld x %lld but n_features is %lld", LL(m), LL(m), LL(v->n));
    memset(v->mark, 0, (size_t)v->n * sizeof *v->mark);
    for (int64_t i = 0; i < m; i++) {
        int64_t j = nf ? f[i] : i;
        if (j >= v->n)
            return R("corr_features[%lld] = %lld is not a feature", LL(i), LL(j));
        if (v->mark[j]++)
            return R("corr_features: feature %lld is listed twice", LL(j));
        if (!is_root(v, j) || in_set(v, j))
            return R("corr_features: feature %lld is %s; correlated features must be free roots",
                     LL(j), is_root(v, j) ? "in a mutually exclusive set" : "a child in the hierarchy");
    }
    return SAE_OK;
}

static int32_t check_corr_matrix(const double *C, int64_t m, double tol, const sae_alloc *al,
                                 char *msg, size_t cap)
{
    for (int64_t i = 0; i < m; i++) {
        if (fabs(C[i * m + i] - 1) > tol)
            return R("corr_matrix[%lld][%lld] = %.6g: the diagonal must be 1 (corr_tol %.3g)", LL(i),
                     LL(i), C[i * m + i], tol);
        for (int64_t j = 0; j < i; j++) {
            if (fabs(C[i * m + j] - C[j * m + i]) > tol)
                return R("corr_matrix is not symmetric: [%lld][%lld] = %.6g, [%lld][%lld] = %.6g",
                         LL(i), LL(j), C[i * m + j], LL(j), LL(i), C[j * m + i]);
            if (fabs(C[i * m + j]) > 1 + tol)
                return R("corr_matrix[%lld][%lld] = %.6g is outside [-1, 1]", LL(i), LL(j), C[i * m + j]);
        }
    }
    double *L = sae_malloc(al, (size_t)(m * (m + 1) / 2) * sizeof *L);
    if (L == NULL)
        return sae_reason(msg, cap, SAE_E_NOMEM, "corr_matrix: out of memory for the PSD check");
    int64_t bad;
    double bad_value;
    int32_t not_psd = sae_toy_cholesky_psd(C, m, tol, L, &bad, &bad_value);
    sae_free(al, L);
    if (not_psd)
        return R("corr_matrix is not positive semidefinite (Cholesky fails at row %lld: residual "
                 "%.6g, corr_tol %.3g)", LL(bad), bad_value, tol);
    return SAE_OK;
}

static int32_t check_corr(const sae_config *c, vscratch *v, char *msg, size_t cap)
{
    int64_t len;
    const double *C = sae_cfg_f64_array(c, SAE_TOY_CORR, &len);
    if (len == 0) {
        sae_cfg_i64_array(c, SAE_TOY_CORR_FEATURES, &len);
        return len == 0 ? SAE_OK : R("corr_features is set but corr_matrix is empty");
    }
    int64_t m = (int64_t)llround(sqrt((double)len));
    if (m * m != len)
        return R("corr_matrix has %lld values, not a square number", LL(len));
    if (m > MAX_CORR_M)
        return R("corr_matrix is %lld x %lld; at most %d correlated features", LL(m), LL(m), MAX_CORR_M);
    int32_t st = check_corr_features(c, v, m, msg, cap);
    if (st != SAE_OK)
        return st;
    return check_corr_matrix(C, m, sae_cfg_f64(c, SAE_TOY_CORR_TOL), v->al, msg, cap);
}

/* ---- combinations, at least one active -------------------------------------------- */

static int32_t check_combos(const sae_config *c, vscratch *v, char *msg, size_t cap)
{
    int64_t len, nq;
    const int64_t *g = sae_cfg_i64_array(c, SAE_TOY_COMBOS, &len);
    sae_cfg_f64_array(c, SAE_TOY_COMBO_PROBS, &nq);
    int64_t groups = sae_toy_count_groups(g, len);
    if (groups == 0)
        return nq == 0 ? SAE_OK : R("combo_probs is set but combos has no group");
    if (nq != 1 && nq != groups)
        return R("combo_probs has %lld values for %lld combos; give 1 or one per combo", LL(nq),
                 LL(groups));
    memset(v->mark, 0, (size_t)v->n * sizeof *v->mark);
    int64_t group = 0;
    for (int64_t i = 0; i < len; i++) {
        if (g[i] < 0) {
            group += i > 0 && g[i - 1] >= 0;
            continue;
        }
        if (g[i] >= v->n)
            return R("combos[%lld] = %lld is not a feature (n_features = %lld)", LL(i), LL(g[i]), LL(v->n));
        if (v->mark[g[i]] == group + 1)
            return R("combos: feature %lld appears twice in combo %lld", LL(g[i]), LL(group));
        v->mark[g[i]] = group + 1;
        if (!is_root(v, g[i]) || in_set(v, g[i]))
            return R("combos: feature %lld (combo %lld) is %s; combinations hold free roots only",
                     LL(g[i]), LL(group), is_root(v, g[i]) ? "in a mutually exclusive set" : "a child");
    }
    return SAE_OK;
}

/* min_one_active redraws empty samples: a non-empty one must be likely enough that the
 * redraws stay cheap. P(non-empty) is estimated as 1 - exp(-(sum of root probabilities +
 * sum of combination probabilities)), exact for rare independent events; a set with
 * "exactly one" makes every sample non-empty. */
#define MIN_P_NONEMPTY 1e-3

static int32_t check_min_one(const sae_config *c, vscratch *v, char *msg, size_t cap)
{
    if (!sae_cfg_i64(c, SAE_TOY_MIN_ONE_ACTIVE))
        return SAE_OK;
    if (v->sets != NULL && sae_cfg_i64(c, SAE_TOY_SET_MODE) == SAE_TOY_EXACTLY_ONE)
        for (int64_t j = 0; j < v->n; j++)
            if (v->sets[j] >= 0)
                return SAE_OK;
    double rate = 0;
    for (int64_t j = 0; j < v->n; j++)
        if (is_root(v, j))
            rate += v->p[j];
    int64_t nq, len;
    const double *q = sae_cfg_f64_array(c, SAE_TOY_COMBO_PROBS, &nq);
    const int64_t *combos = sae_cfg_i64_array(c, SAE_TOY_COMBOS, &len);
    int64_t groups = sae_toy_count_groups(combos, len);
    for (int64_t i = 0; i < groups && nq > 0; i++)
        rate += nq == 1 ? q[0] : q[i];
    double p_nonempty = -expm1(-rate);
    if (p_nonempty < MIN_P_NONEMPTY)
        return R("min_one_active = 1 but a sample has an active feature with probability %.3g "
                 "(< %g): raise the root or combination probabilities", p_nonempty, MIN_P_NONEMPTY);
    return SAE_OK;
}

/* ---- the validator ------------------------------------------------------------------ */

int32_t sae_toy_validate_config(const sae_config *c, char *msg, size_t cap)
{
    int32_t st = check_sizes(c, msg, cap);
    if (st == SAE_OK)
        st = check_probs(c, msg, cap);
    if (st == SAE_OK)
        st = check_magnitudes(c, msg, cap);
    if (st == SAE_OK)
        st = check_length(c, SAE_TOY_PARENTS, sae_cfg_i64(c, SAE_TOY_N_FEATURES), msg, cap);
    if (st == SAE_OK)
        st = check_length(c, SAE_TOY_SET_IDS, sae_cfg_i64(c, SAE_TOY_N_FEATURES), msg, cap);
    if (st != SAE_OK)
        return st;
    vscratch v = {sae_cfg_alloc(c), sae_cfg_i64(c, SAE_TOY_N_FEATURES), NULL, NULL, NULL, NULL, NULL};
    int64_t len;
    v.parents = sae_cfg_i64_array(c, SAE_TOY_PARENTS, &len);
    v.parents = len ? v.parents : NULL;
    v.sets = sae_cfg_i64_array(c, SAE_TOY_SET_IDS, &len);
    v.sets = len ? v.sets : NULL;
    v.p = sae_malloc(v.al, (size_t)v.n * sizeof *v.p);
    v.sum = sae_malloc(v.al, (size_t)v.n * sizeof *v.sum);
    v.mark = sae_malloc(v.al, (size_t)v.n * sizeof *v.mark);
    if (!v.p || !v.sum || !v.mark) {
        st = sae_reason(msg, cap, SAE_E_NOMEM, "out of memory while validating");
    } else {
        sae_toy_base_probs(c, v.n, v.p);
        st = check_dict(c, &v, msg, cap);
        if (st == SAE_OK)
            st = check_hierarchy(c, &v, msg, cap);
        if (st == SAE_OK)
            st = check_sets(c, &v, msg, cap);
        if (st == SAE_OK)
            st = check_corr(c, &v, msg, cap);
        if (st == SAE_OK)
            st = check_combos(c, &v, msg, cap);
        if (st == SAE_OK)
            st = check_min_one(c, &v, msg, cap);
    }
    sae_free(v.al, v.p);
    sae_free(v.al, v.sum);
    sae_free(v.al, v.mark);
    return st;
}
