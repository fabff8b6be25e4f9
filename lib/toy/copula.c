/* Gaussian copula of firing: z = L e with L L^T = C (Cholesky), feature i fires when
 * z_i > Phi^-1(1 - p_i), which keeps every marginal at p_i while C sets the
 * co-firing (Nelsen, An Introduction to Copulas, 2006; as in SAELens' synthetic module). */
#include "toy_internal.h"

#include <math.h>
#include <string.h>

/* Standard normal CDF and its inverse. The inverse starts from Acklam's rational
 * approximation (relative error 1.15e-9) and takes one Halley step on erfc, which
 * brings it to double precision. */
double sae_toy_norm_cdf(double z) { return 0.5 * erfc(-z / sqrt(2.0)); }

double sae_toy_norm_inv(double p)
{
    static const double a[] = {-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
                               1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00};
    static const double b[] = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                               6.680131188771972e+01, -1.328068155288572e+01};
    static const double c[] = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                               -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00};
    static const double d[] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                               3.754408661907416e+00};
    if (p <= 0)
        return -HUGE_VAL;
    if (p >= 1)
        return HUGE_VAL;
    double x;
    if (p < 0.02425) {
        double q = sqrt(-2 * log(p));
        x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
            ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
    } else if (p > 1 - 0.02425) {
        double q = sqrt(-2 * log1p(-p));
        x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
            ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
    } else {
        double q = p - 0.5, r = q * q;
        x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
            (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
    }
    double e = sae_toy_norm_cdf(x) - p;
    double u = e * 2.5066282746310002 * exp(x * x / 2);
    return x - u / (1 + x * u / 2);
}

/* Packed lower triangle: row i holds L[i][0..i] at offset i(i+1)/2. */
static inline int64_t tri(int64_t i) { return i * (i + 1) / 2; }

int32_t sae_toy_cholesky_psd(const double *C, int64_t m, double tol, double *L, int64_t *bad,
                             double *bad_value)
{
    for (int64_t j = 0; j < m; j++) {
        double s = C[j * m + j];
        for (int64_t k = 0; k < j; k++)
            s -= L[tri(j) + k] * L[tri(j) + k];
        if (s < -tol) {
            *bad = j, *bad_value = s;
            return 1;
        }
        /* a (numerically) zero pivot: column j is dependent on the previous ones;
         * a PSD matrix then has a zero residual column, anything else is indefinite */
        double ljj = s > tol ? sqrt(s) : 0.0;
        L[tri(j) + j] = ljj;
        for (int64_t i = j + 1; i < m; i++) {
            double r = C[i * m + j];
            for (int64_t k = 0; k < j; k++)
                r -= L[tri(i) + k] * L[tri(j) + k];
            if (ljj == 0) {
                if (fabs(r) > sqrt(tol) * 10) {
                    *bad = j, *bad_value = r;
                    return 1;
                }
                L[tri(i) + j] = 0;
            } else {
                L[tri(i) + j] = r / ljj;
            }
        }
    }
    return 0;
}

int32_t sae_toy_copula_build(sae_toy *t, const double *C, const int64_t *feat, int64_t m, double tol)
{
    toy_copula *cp = &t->fire.copula;
    cp->m = m;
    cp->L = sae_malloc(&t->alloc, (size_t)tri(m) * sizeof *cp->L);
    cp->tau = sae_malloc(&t->alloc, (size_t)m * sizeof *cp->tau);
    cp->feat = sae_malloc(&t->alloc, (size_t)m * sizeof *cp->feat);
    if (!cp->L || !cp->tau || !cp->feat)
        return SAE_E_NOMEM;
    int64_t bad;
    double bad_value;
    if (sae_toy_cholesky_psd(C, m, tol, cp->L, &bad, &bad_value) != 0)
        return SAE_E_CONFIG; /* the validator has already refused such matrices */
    for (int64_t i = 0; i < m; i++) {
        cp->feat[i] = (int32_t)(feat ? feat[i] : i);
        cp->tau[i] = -sae_toy_norm_inv(t->fire.p[cp->feat[i]]); /* = Phi^-1(1 - p), exact for small p */
    }
    return SAE_OK;
}

void sae_toy_copula_free(sae_toy *t)
{
    toy_copula *cp = &t->fire.copula;
    sae_free(&t->alloc, cp->L);
    sae_free(&t->alloc, cp->tau);
    sae_free(&t->alloc, cp->feat);
    memset(cp, 0, sizeof *cp);
}

/* Append the correlated features that fire; e and z are scratch of length m. */
int64_t sae_toy_copula_draw(const toy_copula *cp, const toy_ziggurat *zig, sae_rng *r, double *e,
                            int32_t *out, int64_t k)
{
    for (int64_t i = 0; i < cp->m; i++)
        e[i] = sae_toy_ziggurat_normal(zig, r);
    for (int64_t i = 0; i < cp->m; i++) {
        const double *row = cp->L + tri(i);
        double z = 0;
        for (int64_t j = 0; j <= i; j++)
            z += row[j] * e[j];
        if (z > cp->tau[i])
            out[k++] = cp->feat[i];
    }
    return k;
}
