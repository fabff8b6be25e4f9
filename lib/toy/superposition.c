/* The superposition toy model of Elhage et al. (2022), "Toy Models of Superposition":
 * h = W x (W is d x N), x' = ReLU(W^T h + b), trained with Adam on the
 * importance-weighted MSE  L = mean over rows of sum_i I_i (x_i - x'_i)^2,  with the
 * rows x drawn from this generator's own firing and magnitude models. The trained
 * columns W_i become the dictionary, so the samples are the hidden activations h = W x.
 * Single-threaded double arithmetic in a fixed order: W depends only on the config. */
#include "toy_internal.h"

#include <math.h>
#include <string.h>

typedef struct tms {
    int64_t n, d, batch;
    double *w, *b;         /* W[k * n + i], b[i] */
    double *gw, *gb;       /* gradients */
    double *mw, *vw, *mb, *vb; /* Adam moments */
    double *imp;           /* importances */
    double *x, *h, *y, *g, *dh; /* one row */
} tms;

static void tms_free(const sae_alloc *al, tms *m)
{
    double **bufs[] = {&m->w, &m->b, &m->gw, &m->gb, &m->mw, &m->vw, &m->mb, &m->vb,
                       &m->imp, &m->x, &m->h, &m->y, &m->g, &m->dh};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) {
        sae_free(al, *bufs[i]);
        *bufs[i] = NULL;
    }
}

static int32_t tms_alloc(const sae_alloc *al, tms *m)
{
    size_t nd = (size_t)(m->n * m->d), n = (size_t)m->n, d = (size_t)m->d;
    m->w = sae_calloc(al, nd, sizeof(double));
    m->gw = sae_calloc(al, nd, sizeof(double));
    m->mw = sae_calloc(al, nd, sizeof(double));
    m->vw = sae_calloc(al, nd, sizeof(double));
    m->b = sae_calloc(al, n, sizeof(double));
    m->gb = sae_calloc(al, n, sizeof(double));
    m->mb = sae_calloc(al, n, sizeof(double));
    m->vb = sae_calloc(al, n, sizeof(double));
    m->imp = sae_calloc(al, n, sizeof(double));
    m->x = sae_calloc(al, n, sizeof(double));
    m->y = sae_calloc(al, n, sizeof(double));
    m->g = sae_calloc(al, n, sizeof(double));
    m->h = sae_calloc(al, d, sizeof(double));
    m->dh = sae_calloc(al, d, sizeof(double));
    if (!m->w || !m->gw || !m->mw || !m->vw || !m->b || !m->gb || !m->mb || !m->vb || !m->imp ||
        !m->x || !m->y || !m->g || !m->h || !m->dh) {
        tms_free(al, m);
        return SAE_E_NOMEM;
    }
    return SAE_OK;
}

static void tms_init(const sae_toy *t, tms *m)
{
    /* Xavier-normal initialisation, std sqrt(2 / (n + d)) (Glorot and Bengio 2010) */
    sae_rng r;
    sae_rng_init(&r, t->seed, 0, TOY_STREAM_TMS_INIT);
    double sd = sqrt(2.0 / (double)(m->n + m->d));
    for (int64_t i = 0; i < m->n * m->d; i++)
        m->w[i] = sd * sae_rng_normal(&r);
    int64_t len;
    const double *imp = sae_cfg_f64_array(t->cfg, SAE_TOY_TMS_IMPORTANCES, &len);
    double decay = sae_cfg_f64(t->cfg, SAE_TOY_TMS_IMPORTANCE_DECAY);
    for (int64_t i = 0; i < m->n; i++)
        m->imp[i] = len == m->n ? imp[i] : pow(decay, (double)i);
}

/* Forward and backward pass of one sparse row (features f, values v); returns its loss. */
static double tms_row(tms *m, const int32_t *f, const float *v, int64_t k)
{
    const int64_t n = m->n, d = m->d;
    for (int64_t a = 0; a < k; a++)
        m->x[f[a]] = v[a];
    for (int64_t c = 0; c < d; c++) {
        double s = 0;
        for (int64_t a = 0; a < k; a++)
            s += m->w[c * n + f[a]] * v[a];
        m->h[c] = s;
    }
    memcpy(m->y, m->b, (size_t)n * sizeof *m->y);
    for (int64_t c = 0; c < d; c++)
        for (int64_t i = 0; i < n; i++)
            m->y[i] += m->w[c * n + i] * m->h[c];
    double loss = 0, scale = 2.0 / (double)m->batch;
    for (int64_t i = 0; i < n; i++) {
        double out = m->y[i] > 0 ? m->y[i] : 0, e = out - m->x[i];
        loss += m->imp[i] * e * e;
        m->g[i] = m->y[i] > 0 ? scale * m->imp[i] * e : 0;
        m->gb[i] += m->g[i];
    }
    for (int64_t c = 0; c < d; c++) {
        double s = 0;
        for (int64_t i = 0; i < n; i++) {
            s += m->w[c * n + i] * m->g[i];
            m->gw[c * n + i] += m->h[c] * m->g[i]; /* through x' = W^T h */
        }
        m->dh[c] = s;
    }
    for (int64_t a = 0; a < k; a++) { /* through h = W x */
        for (int64_t c = 0; c < d; c++)
            m->gw[c * n + f[a]] += m->dh[c] * v[a];
        m->x[f[a]] = 0;
    }
    return loss;
}

static void adam(double *p, double *g, double *mo, double *ve, int64_t len, double lr, double c1,
                 double c2)
{
    const double b1 = 0.9, b2 = 0.999, eps = 1e-8;
    for (int64_t i = 0; i < len; i++) {
        mo[i] = b1 * mo[i] + (1 - b1) * g[i];
        ve[i] = b2 * ve[i] + (1 - b2) * g[i] * g[i];
        p[i] -= lr * (mo[i] / c1) / (sqrt(ve[i] / c2) + eps);
        g[i] = 0;
    }
}

int32_t sae_toy_tms_train(sae_toy *t)
{
    tms m = {0};
    m.n = t->n, m.d = t->d, m.batch = sae_cfg_i64(t->cfg, SAE_TOY_TMS_BATCH);
    int64_t steps = sae_cfg_i64(t->cfg, SAE_TOY_TMS_STEPS);
    double lr = sae_cfg_f64(t->cfg, SAE_TOY_TMS_LR);
    toy_scratch s;
    if (tms_alloc(&t->alloc, &m) != SAE_OK)
        return SAE_E_NOMEM;
    if (sae_toy_scratch_alloc(t, &s) != SAE_OK) {
        tms_free(&t->alloc, &m);
        return SAE_E_NOMEM;
    }
    tms_init(t, &m);
    double loss = 0, p1 = 1, p2 = 1;
    for (int64_t step = 0; step < steps; step++) {
        loss = 0;
        for (int64_t r = 0; r < m.batch; r++) {
            uint64_t index = (uint64_t)(step * m.batch + r);
            int64_t k = sae_toy_fire(t, index, TOY_DOMAIN_TMS, &s);
            sae_toy_magnitudes(t, index, TOY_DOMAIN_TMS, s.active, k, s.mag, &s);
            loss += tms_row(&m, s.active, s.mag, k);
        }
        p1 *= 0.9, p2 *= 0.999;
        adam(m.w, m.gw, m.mw, m.vw, m.n * m.d, lr, 1 - p1, 1 - p2);
        adam(m.b, m.gb, m.mb, m.vb, m.n, lr, 1 - p1, 1 - p2);
    }
    t->tms_loss = loss / (double)m.batch;
    for (int64_t i = 0; i < t->n; i++) /* dictionary row i = column i of W */
        for (int64_t c = 0; c < t->d; c++)
            t->dict[i * t->d + c] = (float)m.w[c * m.n + i];
    sae_toy_scratch_free(t, &s);
    tms_free(&t->alloc, &m);
    return SAE_OK;
}
