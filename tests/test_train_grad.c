/* Gradients of every architecture (and regulariser combination) against central finite
 * differences of an independent double-precision reference loss written here from the
 * formulas in docs/training.md; hand-derived cases for the straight-through estimators. */
#include "test_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/model_internal.h"
#include "linalg/bf16.h"
#include "model/refine.h"
#include "model/sparse.h"
#include "train/regularisers.h"
#include "train/relu_fused.h"
#include "train/trainer_internal.h"

enum { D = 8, L = 12, N = 16 };

/* ---- reference loss in double -------------------------------------------------------- */

typedef struct ref {
    const sae_model *m;
    const sae_trainer *t;
    const double *x; /* N x D */
    const double *p0; /* base parameters: detached terms (AuxK residual, Gated aux decoder) */
    int64_t n;
} ref;

static const double *seg(const double *p, int64_t off) { return off < 0 ? NULL : p + off; }

typedef struct views {
    const double *we, *be, *wd, *bd, *th, *rm, *bm;
} views;

static views views_of(const sae_model *m, const double *p)
{
    views v = {seg(p, m->lay.w_enc_t), seg(p, m->lay.b_enc), seg(p, m->lay.w_dec),
               seg(p, m->lay.b_dec),   seg(p, m->lay.threshold), seg(p, m->lay.r_mag),
               seg(p, m->lay.b_mag)};
    if (m->tied)
        v.we = v.wd;
    return v;
}

/* Scores s_rj = xc_r . W_enc,j (no bias) and centred inputs. */
static void scores(const ref *c, const views *v, double *xc, double *s)
{
    const sae_model *m = c->m;
    for (int64_t r = 0; r < c->n; r++) {
        for (int i = 0; i < D; i++)
            xc[r * D + i] = c->x[r * D + i] - (m->pre_bias ? v->bd[i] : 0.0);
        for (int j = 0; j < L; j++) {
            double a = 0.0;
            for (int i = 0; i < D; i++)
                a += xc[r * D + i] * v->we[j * D + i];
            s[r * L + j] = a;
        }
    }
}

static double row_norm(const double *w, int j)
{
    double s = 0.0;
    for (int i = 0; i < D; i++)
        s += w[j * D + i] * w[j * D + i];
    return sqrt(s);
}

/* Keep the k largest positive entries of each row (or of the batch when batch != 0). */
static void keep_top(double *z, int64_t n, int64_t k, int batch)
{
    int64_t groups = batch ? 1 : n, per = batch ? n * L : L, keep = batch ? n * k : k;
    for (int64_t g = 0; g < groups; g++) {
        double *a = z + g * per;
        char drop[N * L];
        for (int64_t e = 0; e < per; e++) {
            int64_t better = 0;
            for (int64_t f = 0; f < per; f++)
                better += a[f] > a[e] || (a[f] == a[e] && f < e);
            drop[e] = !(a[e] > 0.0) || better >= keep;
        }
        for (int64_t e = 0; e < per; e++)
            if (drop[e])
                a[e] = 0.0;
    }
}

/* Codes z and the sparsity penalty (already weighted, summed over rows). */
static double encode_ref(const ref *c, const views *v, const double *s, double *z, double *gate)
{
    const sae_model *m = c->m;
    const sae_trainer *t = c->t;
    double pen = 0.0;
    for (int64_t r = 0; r < c->n; r++)
        for (int j = 0; j < L; j++) {
            double pre = s[r * L + j] + v->be[j], w = t->o.l1_dec_norm ? row_norm(v->wd, j) : 1.0;
            double zz;
            switch (m->arch) {
            case SAE_ARCH_JUMPRELU:
                zz = pre > v->th[j] ? pre : 0.0;
                pen += pre > v->th[j];
                break;
            case SAE_ARCH_GATED: {
                double mag = exp(v->rm[j]) * s[r * L + j] + v->bm[j];
                gate[r * L + j] = pre > 0.0 ? pre : 0.0;
                zz = pre > 0.0 && mag > 0.0 ? mag : 0.0;
                pen += w * gate[r * L + j];
                break;
            }
            default:
                zz = pre > 0.0 ? pre : 0.0;
                if (m->arch == SAE_ARCH_RELU)
                    pen += w * zz;
            }
            z[r * L + j] = zz;
        }
    if (m->arch == SAE_ARCH_TOPK)
        keep_top(z, c->n, m->k, 0);
    if (sae_arch_is_batch(m->arch))
        keep_top(z, c->n, m->k, 1);
    return pen;
}

/* sum_r ||b + a_r[0..width) W - x_r||^2 */
static double recon_error(const ref *c, const double *a, const double *w, const double *b,
                          int64_t width, double *res)
{
    double tot = 0.0;
    for (int64_t r = 0; r < c->n; r++)
        for (int i = 0; i < D; i++) {
            double y = b ? b[i] : 0.0;
            for (int64_t j = 0; j < width; j++)
                y += a[r * L + j] * w[j * D + i];
            double e = y - c->x[r * D + i];
            if (res)
                res[r * D + i] = e;
            tot += e * e;
        }
    return tot;
}

/* AuxK with the residual of the base parameters held constant. */
static double auxk_ref(const ref *c, const double *s, const views *v)
{
    const sae_model *m = c->m;
    const sae_trainer *t = c->t;
    views v0 = views_of(m, c->p0);
    double xc0[N * D], s0[N * L], z0[N * L], g0[N * L], e[N * D];
    scores(c, &v0, xc0, s0);
    encode_ref(c, &v0, s0, z0, g0);
    recon_error(c, z0, v0.wd, v0.bd, L, e); /* e = xhat - x (sign irrelevant below) */
    double mean[D] = {0}, var = 0.0;
    for (int64_t r = 0; r < c->n; r++)
        for (int i = 0; i < D; i++)
            mean[i] += e[r * D + i] / (double)c->n;
    for (int64_t r = 0; r < c->n; r++)
        for (int i = 0; i < D; i++)
            var += (e[r * D + i] - mean[i]) * (e[r * D + i] - mean[i]) / (double)c->n;
    double za[N * L], tot = 0.0;
    for (int64_t r = 0; r < c->n; r++)
        for (int j = 0; j < L; j++) {
            double pre = s[r * L + j] + v->be[j];
            za[r * L + j] = t->since_fired[j] >= t->o.dead_steps && pre > 0.0 ? pre : 0.0;
        }
    keep_top(za, c->n, t->aux_k, 0);
    for (int64_t r = 0; r < c->n; r++)
        for (int i = 0; i < D; i++) {
            double y = 0.0;
            for (int j = 0; j < L; j++)
                y += za[r * L + j] * v->wd[j * D + i];
            double q = y + e[r * D + i]; /* ehat - (x - xhat) */
            tot += q * q;
        }
    return t->o.aux_coef * tot / ((double)c->n * var);
}

/* Regularisers through the library's own functions (their FD tests live in test_reg). */
static double regs_ref(const ref *c, const double *p, const double *xc0, const double *s,
                       const double *z)
{
    const sae_model *m = c->m;
    const sae_trainer *t = c->t;
    double out = 0.0;
    float *wf = calloc(L * D, sizeof(float)), *gf = calloc(L * D, sizeof(float));
    for (int e = 0; e < L * D; e++)
        wf[e] = (float)p[m->lay.w_dec + e];
    if (t->o.ortho_on) {
        float *work = calloc(sae_reg_ortho_work_floats(t->cfg, L, D) + 1, sizeof(float));
        out += sae_reg_ortho(t->cfg, wf, L, D, D, (uint64_t)t->step, gf, D, work);
        free(work);
    }
    if (t->o.lowact_on) {
        float xf[N * D], pf[N * L], zf[N * L], gp[N * L];
        const double *be = p + m->lay.b_enc;
        for (int e = 0; e < N * D; e++)
            xf[e] = (float)xc0[e];
        for (int64_t r = 0; r < c->n; r++)
            for (int j = 0; j < L; j++)
                pf[r * L + j] = (float)(s[r * L + j] + be[j]), zf[r * L + j] = (float)z[r * L + j];
        float *work = calloc(sae_reg_lowact_work_floats(t->cfg, c->n, L, D) + 1, sizeof(float));
        out += sae_reg_lowact(t->cfg, xf, c->n, D, D, wf, L, D, pf, zf, gp, gf, D, work);
        free(work);
    }
    free(wf);
    free(gf);
    return out;
}

static double ref_loss(const ref *c, const double *p)
{
    const sae_model *m = c->m;
    const sae_trainer *t = c->t;
    views v = views_of(m, p);
    double xc[N * D], s[N * L], z[N * L], gate[N * L];
    scores(c, &v, xc, s);
    double pen = encode_ref(c, &v, s, z, gate);
    double loss = 0.0;
    for (int64_t g = 0; g < m->n_widths; g++)
        loss += recon_error(c, z, v.wd, v.bd, m->widths[g], NULL);
    loss = (loss + t->o.l1 * pen) / (double)c->n;
    if (m->arch == SAE_ARCH_GATED) { /* gate path through the base decoder */
        views v0 = views_of(m, c->p0);
        loss += recon_error(c, gate, v0.wd, v0.bd, L, NULL) / (double)c->n;
    }
    if (sae_arch_is_sparse(m->arch) && t->o.aux_coef > 0.0)
        loss += auxk_ref(c, s, &v);
    /* the low-activation penalty sees the encoder input as a constant (docs/training.md) */
    views v0 = views_of(m, c->p0);
    double xc0[N * D], s0[N * L];
    scores(c, &v0, xc0, s0);
    return loss + regs_ref(c, p, xc0, s, z);
}

/* ---- harness ---------------------------------------------------------------------------- */

typedef struct combo {
    int32_t arch;
    int tied, pre_bias, l1_dec_norm, ortho, lowact, dead;
    int sparse_blocks; /* ReLU: force the (index, value) block path */
} combo;

static void random_batch(float *x, uint32_t seed)
{
    srand(seed);
    for (int e = 0; e < N * D; e++)
        x[e] = (float)((rand() / (double)RAND_MAX) * 1.2 - 0.3);
}

static sae_model *combo_model(const combo *cb)
{
    sae_config *c = test_config(SAE_KIND_MODEL, "d_in", (double)D, "n_latents", (double)L,
                                "arch", (double)cb->arch, "tied", (double)cb->tied, "pre_bias",
                                (double)cb->pre_bias, "k", 3.0, "model_seed", 11.0,
                                "init_transpose", 0.0, "jumprelu_init_threshold", 0.05, NULL);
    if (cb->arch == SAE_ARCH_MATRYOSHKA) {
        int64_t w[3] = {3, 7, L};
        assert_ok(sae_config_set_i64_array(c, SAE_MODEL_MATRYOSHKA_WIDTHS, w, 3));
    }
    sae_model *m = NULL;
    assert_ok(sae_model_create(&m, c, NULL));
    sae_config_free(c);
    /* non-trivial biases so every term of the gradient is exercised */
    srand(99);
    for (int64_t e = m->lay.b_enc; e < m->lay.b_enc + L; e++)
        m->params[e] = (float)(rand() / (double)RAND_MAX * 0.2 - 0.05);
    for (int64_t e = m->lay.b_dec; e < m->lay.b_dec + D; e++)
        m->params[e] = (float)(rand() / (double)RAND_MAX * 0.2 - 0.1);
    if (m->r_mag)
        for (int j = 0; j < L; j++)
            m->r_mag[j] = (float)(rand() / (double)RAND_MAX * 0.4 - 0.2),
            m->b_mag[j] = (float)(rand() / (double)RAND_MAX * 0.2 - 0.05);
    return m;
}

static sae_trainer *combo_trainer(sae_model *m, const combo *cb)
{
    sae_config *c = test_config(SAE_KIND_TRAINER, "batch_size", (double)N, "l1_coefficient", 0.3,
                                "l1_decoder_norm", (double)cb->l1_dec_norm, "aux_coefficient",
                                cb->dead ? 0.5 : 0.0, "aux_k", 2.0, "dead_steps", 5.0,
                                "ortho_coefficient", cb->ortho ? 0.7 : 0.0,
                                "lowact_coefficient", cb->lowact ? 0.4 : 0.0, "lowact_threshold",
                                0.3, "chunk_rows", 5.0, NULL);
    sae_trainer *t = NULL;
    assert_ok(sae_trainer_create(&t, m, c, NULL));
    sae_config_free(c);
    if (cb->sparse_blocks) {
        t->sparse_div = 1;
        sae_train_ws_free(t);
        assert_ok(sae_train_ws_reserve(t, N));
    }
    if (cb->dead) /* latents 0, 4, 8 dead for AuxK */
        for (int j = 0; j < L; j += 4)
            t->since_fired[j] = 10;
    return t;
}

/* Compare the trainer's gradient with central differences of ref_loss on every
 * parameter except the JumpReLU thresholds (straight-through: tested by hand below). */
static void check_combo(const combo *cb)
{
    sae_model *m = combo_model(cb);
    sae_trainer *t = combo_trainer(m, cb);
    random_batch(t->ws.x, 5);
    assert_ok(sae_train_loss_grad(t, N));
    int64_t np = m->lay.total;
    double *p = malloc((size_t)np * sizeof *p), *p0 = malloc((size_t)np * sizeof *p0);
    double *x = malloc(N * D * sizeof *x);
    for (int64_t e = 0; e < np; e++)
        p[e] = p0[e] = m->params[e];
    for (int e = 0; e < N * D; e++)
        x[e] = t->ws.x[e];
    ref c = {m, t, x, p0, N};
    double base = ref_loss(&c, p);
    assert_close(t->last.loss, base, 1e-5 * (1.0 + fabs(base)));
    int checked = 0;
    for (int64_t e = 0; e < np; e++) {
        if (m->lay.threshold >= 0 && e >= m->lay.threshold && e < m->lay.threshold + L)
            continue;
        /* steps exactly representable in float, so the float regularisers see them too */
        float f0 = m->params[e];
        double up = (float)(f0 + 1e-4), dn = (float)(f0 - 1e-4);
        double keep = p[e];
        p[e] = up;
        double lp = ref_loss(&c, p);
        p[e] = dn;
        double lm = ref_loss(&c, p);
        p[e] = keep;
        double fd = (lp - lm) / (up - dn), an = t->grad[e];
        if (fabs(fd - an) > 2e-3 * fabs(fd) + 2e-4)
            fail_msg("arch %d tied %d pre_bias %d l1n %d ortho %d lowact %d dead %d: param %lld "
                     "analytic %.8g fd %.8g", cb->arch, cb->tied, cb->pre_bias, cb->l1_dec_norm,
                     cb->ortho, cb->lowact, cb->dead, (long long)e, an, fd);
        checked++;
    }
    assert_true(checked > 100);
    free(p);
    free(p0);
    free(x);
    sae_trainer_free(t);
    sae_model_free(m);
}

static void test_grad_relu(void **state)
{
    (void)state;
    combo cs[] = {{SAE_ARCH_RELU, 0, 1, 1, 0, 0, 0}, {SAE_ARCH_RELU, 0, 0, 0, 0, 0, 0},
                  {SAE_ARCH_RELU, 1, 1, 1, 0, 0, 0}, {SAE_ARCH_RELU, 0, 1, 1, 1, 0, 0},
                  {SAE_ARCH_RELU, 1, 1, 0, 1, 1, 0}, {SAE_ARCH_RELU, 1, 0, 1, 0, 1, 0},
                  {SAE_ARCH_RELU, 0, 1, 1, 0, 0, 0, 1}, {SAE_ARCH_RELU, 1, 1, 1, 1, 0, 0, 1},
                  {SAE_ARCH_RELU, 0, 0, 0, 0, 0, 0, 1}};
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++)
        check_combo(&cs[i]);
}

static void test_grad_topk(void **state)
{
    (void)state;
    combo cs[] = {{SAE_ARCH_TOPK, 0, 1, 0, 0, 0, 0}, {SAE_ARCH_TOPK, 1, 1, 0, 0, 0, 0},
                  {SAE_ARCH_TOPK, 0, 0, 0, 1, 0, 0}, {SAE_ARCH_TOPK, 0, 1, 0, 0, 0, 1},
                  {SAE_ARCH_TOPK, 1, 1, 0, 1, 0, 1}};
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++)
        check_combo(&cs[i]);
}

static void test_grad_batchtopk(void **state)
{
    (void)state;
    combo cs[] = {{SAE_ARCH_BATCHTOPK, 0, 1, 0, 0, 0, 0}, {SAE_ARCH_BATCHTOPK, 1, 0, 0, 1, 0, 0},
                  {SAE_ARCH_BATCHTOPK, 0, 1, 0, 0, 0, 1}};
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++)
        check_combo(&cs[i]);
}

static void test_grad_matryoshka(void **state)
{
    (void)state;
    combo cs[] = {{SAE_ARCH_MATRYOSHKA, 0, 1, 0, 0, 0, 0}, {SAE_ARCH_MATRYOSHKA, 1, 1, 0, 1, 0, 0},
                  {SAE_ARCH_MATRYOSHKA, 0, 0, 0, 0, 0, 1}};
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++)
        check_combo(&cs[i]);
}

static void test_grad_jumprelu(void **state)
{
    (void)state;
    combo cs[] = {{SAE_ARCH_JUMPRELU, 0, 1, 0, 0, 0, 0}, {SAE_ARCH_JUMPRELU, 1, 0, 0, 1, 0, 0},
                  {SAE_ARCH_JUMPRELU, 1, 1, 0, 0, 1, 0}};
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++)
        check_combo(&cs[i]);
}

static void test_grad_gated(void **state)
{
    (void)state;
    combo cs[] = {{SAE_ARCH_GATED, 0, 1, 1, 0, 0, 0}, {SAE_ARCH_GATED, 0, 0, 0, 0, 0, 0},
                  {SAE_ARCH_GATED, 1, 1, 1, 1, 0, 0}};
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++)
        check_combo(&cs[i]);
}

/* ---- hand-derived estimator cases ----------------------------------------------------- */

/* JumpReLU, one row: x = (1, 0), encoder rows (0.5, 0) and (0, 1), decoder = identity,
 * theta = (0.49, 0.2), eps = 0.05, lambda = 0.1, no biases.
 * pre = (0.5, 0): latent 0 fires, |pre0 - theta0| = 0.01 < eps/2 (inside the kernel);
 * latent 1 is silent and |pre1 - theta1| / eps = 4 (outside). xhat = (0.5, 0),
 * dL/dz0 = 2 (xhat - x) . W_dec,0 = -1. Straight-through:
 *   dL/dtheta0 = -(1/eps) (theta0 * dL/dz0 + lambda) = -20 (-0.49 + 0.1) = 7.8, dL/dtheta1 = 0.
 * Loss = 0.25 + 0.1 * 1 = 0.35; dL/dW_enc,0 = dL/dz0 * x = (-1, 0). */
static void test_jumprelu_ste_by_hand(void **state)
{
    (void)state;
    sae_config *mc = test_config(SAE_KIND_MODEL, "d_in", 2.0, "n_latents", 2.0, "arch",
                                 (double)SAE_ARCH_JUMPRELU, "pre_bias", 0.0, NULL);
    sae_model *m = NULL;
    assert_ok(sae_model_create(&m, mc, NULL));
    float wenc[4] = {0.5f, 0.0f, 0.0f, 1.0f}; /* d_in x n_latents */
    float wdec[4] = {1, 0, 0, 1}, zero2[2] = {0, 0}, th[2] = {0.49f, 0.2f};
    assert_ok(sae_model_set_tensor(m, SAE_TENSOR_W_ENC, wenc, 2));
    assert_ok(sae_model_set_tensor(m, SAE_TENSOR_W_DEC, wdec, 2));
    assert_ok(sae_model_set_tensor(m, SAE_TENSOR_B_ENC, zero2, 2));
    assert_ok(sae_model_set_tensor(m, SAE_TENSOR_B_DEC, zero2, 2));
    assert_ok(sae_model_set_tensor(m, SAE_TENSOR_THRESHOLD, th, 2));
    sae_config *tc = test_config(SAE_KIND_TRAINER, "batch_size", 1.0, "l1_coefficient", 0.1,
                                 "jumprelu_bandwidth", 0.05, NULL);
    sae_trainer *t = NULL;
    assert_ok(sae_trainer_create(&t, m, tc, NULL));
    t->ws.x[0] = 1.0f, t->ws.x[1] = 0.0f;
    assert_ok(sae_train_loss_grad(t, 1));
    const float *g = t->grad;
    assert_close(t->last.loss, 0.35, 1e-6);
    assert_close(g[m->lay.threshold + 0], 7.8, 1e-5);
    assert_close(g[m->lay.threshold + 1], 0.0, 0.0);
    assert_close(g[m->lay.w_enc_t + 0], -1.0, 1e-6); /* latent 0, input dim 0 */
    assert_close(g[m->lay.w_enc_t + 1], 0.0, 1e-6);
    sae_trainer_free(t);
    sae_model_free(m);
    sae_config_free(mc);
    sae_config_free(tc);
}

/* A dense ReLU block through the fused kernel gives the bits of the unfused block (its
 * scratch removed; on one thread and on two): shapes whose rows, latents and width leave
 * partial tiles, several blocks (the later ones add to gradients already there), tied
 * weights, no pre-bias or decoder-norm weights, and blocks that go sparse after the fused
 * encoder. */
static void test_relu_fused_blocks_match_unfused(void **state)
{
    (void)state;
    static const struct {
        int64_t d, l, n, chunk, tied, pre_bias, dec_norm, dense_only;
    } cases[] = {
        {37, 203, 45, 16, 0, 1, 1, 1}, {32, 128, 64, 0, 0, 1, 1, 1}, {64, 48, 40, 0, 1, 1, 1, 1},
        {16, 40, 29, 0, 0, 0, 0, 1},   {128, 96, 33, 8, 0, 1, 1, 1}, {20, 64, 48, 16, 0, 1, 1, 0},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int64_t d = cases[c].d, l = cases[c].l, n = cases[c].n;
        sae_trainer *t[3];
        sae_model *m[3];
        for (int v = 0; v < 3; v++) {
            sae_config *mc = test_config(SAE_KIND_MODEL, "d_in", (double)d, "n_latents",
                                         (double)l, "arch", (double)SAE_ARCH_RELU, "model_seed",
                                         3.0, "tied", (double)cases[c].tied, "pre_bias",
                                         (double)cases[c].pre_bias, NULL);
            sae_config *tc = test_config(SAE_KIND_TRAINER, "batch_size", (double)n,
                                         "l1_coefficient", 0.3, "chunk_rows",
                                         (double)cases[c].chunk, "l1_decoder_norm",
                                         (double)cases[c].dec_norm, "n_threads",
                                         v == 2 ? 2.0 : 1.0, "thread_min_work", 0.0, NULL);
            assert_ok(sae_model_create(&m[v], mc, NULL));
            assert_ok(sae_trainer_create(&t[v], m[v], tc, NULL));
            sae_config_free(mc);
            sae_config_free(tc);
            srand(11); /* about half the codes active; mixed: few in the first block */
            double shift = cases[c].dense_only ? -0.15 : -0.6;
            for (int64_t j = 0; j < l; j++)
                m[v]->params[m[v]->lay.b_enc + j] = (float)(shift + 0.3 * rand() / (double)RAND_MAX);
            if (cases[c].dense_only)
                t[v]->sparse_div = INT64_C(1) << 40;
            sae_train_ws_free(t[v]);
            assert_ok(sae_train_ws_reserve(t[v], n));
            if (v > 0) { /* the unfused path */
                sae_free(&t[v]->al, t[v]->ws.fused);
                t[v]->ws.fused = NULL;
            }
            srand(12);
            for (int64_t e = 0; e < n * d; e++) /* rows of growing scale: dense, then sparse */
                t[v]->ws.x[e] = (float)(rand() / (double)RAND_MAX - 0.5) *
                                (cases[c].dense_only ? 1.0f : (float)(e / d) / (float)n * 3.0f);
            assert_ok(sae_train_loss_grad(t[v], n));
        }
        print_message("case %zu: L0 %.2f\n", c, t[0]->last.l0);
        if (!cases[c].dense_only) /* the last block went sparse after the fused encoder */
            assert_true(t[0]->ws.screen_next && t[0]->ws.pend_row0 == n - 16);
        if (sae_relu_fused_available(d) && t[0]->ws.fused == NULL)
            fail_msg("case %zu: the fused scratch is missing", c);
        assert_true(t[0]->last.l0 > 0.0 && t[0]->last.l0 < (double)l);
        for (int v = 1; v < 3; v++) {
            if (memcmp(&t[0]->last.loss, &t[v]->last.loss, sizeof(double)) != 0 ||
                t[0]->last.l0 != t[v]->last.l0)
                fail_msg("case %zu, unfused %d: loss %.17g / %.17g, L0 %g / %g", c, v,
                         t[0]->last.loss, t[v]->last.loss, t[0]->last.l0, t[v]->last.l0);
            for (int64_t e = 0; e < m[0]->lay.total; e++)
                if (memcmp(&t[0]->grad[e], &t[v]->grad[e], sizeof(float)) != 0)
                    fail_msg("case %zu, unfused %d: gradient %lld fused %.9g unfused %.9g", c, v,
                             (long long)e, t[0]->grad[e], t[v]->grad[e]);
        }
        for (int v = 0; v < 3; v++) {
            sae_trainer_free(t[v]);
            sae_model_free(m[v]);
        }
    }
}

/* ReLU blocks on (index, value) codes against the dense blocks, at a shape whose sizes are
 * not multiples of 8 and whose last block is partial, from nearly empty to nearly full
 * rows (so the code packing's eight-at-a-time path and its row-end tail both run). */
static void test_relu_sparse_blocks_match_dense(void **state)
{
    (void)state;
    enum { SD = 37, SL = 203, SN = 48 };
    /* case 3 mixes blocks: rows 16..31 large (a dense block between sparse ones, the first
     * with fewer codes than latents, so it waits and its centred rows are gone); case 4
     * has blocks with fewer codes than latents, whose gradients wait for the next block */
    const double shifts[] = {-0.9, -0.3, 0.4, -0.38, -1.5};
    for (size_t s = 0; s < sizeof shifts / sizeof shifts[0]; s++) {
        int mixed = s == 3, pending = s == 4;
        sae_trainer *t[2];
        sae_model *m[2];
        for (int v = 0; v < 2; v++) {
            sae_config *mc = test_config(SAE_KIND_MODEL, "d_in", (double)SD, "n_latents",
                                         (double)SL, "arch", (double)SAE_ARCH_RELU,
                                         "model_seed", 5.0, NULL);
            sae_config *tc = test_config(SAE_KIND_TRAINER, "batch_size", (double)SN,
                                         "l1_coefficient", 0.2, "chunk_rows", 16.0, NULL);
            assert_ok(sae_model_create(&m[v], mc, NULL));
            assert_ok(sae_trainer_create(&t[v], m[v], tc, NULL));
            sae_config_free(mc);
            sae_config_free(tc);
            srand(7);
            for (int64_t j = 0; j < SL; j++)
                m[v]->params[m[v]->lay.b_enc + j] =
                    (float)(shifts[s] + 0.4 * rand() / (double)RAND_MAX);
            /* always sparse (mixed: the default density test) / always dense */
            t[v]->sparse_div = v == 1 ? INT64_C(1) << 40 : mixed ? SAE_SPARSE_BLOCK_DIV : 1;
            sae_train_ws_free(t[v]);
            assert_ok(sae_train_ws_reserve(t[v], SN));
            srand(8);
            for (int e = 0; e < SN * SD; e++)
                t[v]->ws.x[e] = (float)(rand() / (double)RAND_MAX * 2.0 - 0.8) *
                                (!mixed ? 1.0f : e / SD / 16 == 1 ? 3.0f : 0.0f);
            assert_ok(sae_train_loss_grad(t[v], SN));
        }
        assert_true(t[0]->last.l0 > 0.0 && t[0]->last.l0 < (double)SL);
        if (mixed) /* the last block went sparse after the dense one */
            assert_true(t[0]->ws.pend_row0 == 32 && t[0]->ws.screen_next);
        if (pending) { /* all three blocks waited, and their codes are in place */
            const sae_train_ws *w = &t[0]->ws;
            assert_true(w->pend_row0 == 0 && w->codes.row_ptr[SN] < SL);
            assert_true(w->codes.row_ptr[16] > 0 && w->codes.row_ptr[SN] > w->codes.row_ptr[32]);
        }
        assert_close(t[0]->last.loss, t[1]->last.loss, 1e-6 * (1.0 + t[1]->last.loss));
        assert_close(t[0]->last.l0, t[1]->last.l0, 0.0);
        double scale = 0.0, worst = 0.0; /* sums of both signs: errors relative to the largest */
        for (int64_t e = 0; e < m[0]->lay.total; e++)
            scale = fmax(scale, fabs(t[1]->grad[e]));
        for (int64_t e = 0; e < m[0]->lay.total; e++) {
            double a = t[0]->grad[e], b = t[1]->grad[e];
            worst = fmax(worst, fabs(a - b) / scale);
            if (fabs(a - b) > 1e-5 * scale)
                fail_msg("shift %g: gradient %lld sparse %.9g dense %.9g (largest %.3g)",
                         shifts[s], (long long)e, a, b, scale);
        }
        print_message("shift %g: L0 %.1f, largest difference %.2g of the largest gradient\n",
                      shifts[s], t[0]->last.l0, worst);
        for (int v = 0; v < 2; v++) {
            sae_trainer_free(t[v]);
            sae_model_free(m[v]);
        }
    }
}

/* One ReLU trainer of the screened-block tests: d 64 x 1024 latents (the low-precision
 * product pays from there), 40 rows in blocks of 16, biases that leave a few per cent of
 * the codes active. */
static sae_trainer *screen_trainer(sae_model **m, int low_precision, int64_t sparse_div,
                                   int edge, int threads)
{
    enum { SD = 64, SL = 1024, SN = 40 };
    sae_config *mc = test_config(SAE_KIND_MODEL, "d_in", (double)SD, "n_latents", (double)SL,
                                 "arch", (double)SAE_ARCH_RELU, "model_seed", 3.0, NULL);
    sae_config *tc = test_config(SAE_KIND_TRAINER, "batch_size", (double)SN, "l1_coefficient",
                                 0.2, "chunk_rows", 16.0, "bf16_scores", (double)low_precision,
                                 "n_threads", (double)threads, "thread_min_work", 0.0, NULL);
    sae_trainer *t = NULL;
    assert_ok(sae_model_create(m, mc, NULL));
    assert_ok(sae_trainer_create(&t, *m, tc, NULL));
    sae_config_free(mc);
    sae_config_free(tc);
    srand(9);
    for (int64_t j = 0; j < SL; j++)
        (*m)->params[(*m)->lay.b_enc + j] = (float)(-1.2 + 0.4 * rand() / (double)RAND_MAX);
    for (int64_t e = 0; e < SL * SD; e++) /* decoder rows of unequal norms: weighted L1 */
        (*m)->w_dec[e] *= (float)(0.6 + 0.3 * (double)(e / SD % 3));
    t->sparse_div = sparse_div;
    sae_train_ws_free(t);
    assert_ok(sae_train_ws_reserve(t, SN));
    t->ws.screen_next = 1; /* as if the block before had been sparse */
    srand(10);
    for (int e = 0; e < SN * SD; e++)
        t->ws.x[e] = (float)(rand() / (double)RAND_MAX * 2.0 - 1.0);
    if (edge) { /* the last row's exact scores: +0 for even latents, one ulp above for odd */
        float xc[SD], dot[SL], zero[SL] = {0};
        const sae_model *mm = *m;
        for (int i = 0; i < SD; i++)
            xc[i] = t->ws.x[(SN - 1) * SD + i] - (mm->pre_bias ? mm->b_dec[i] : 0.0f);
        sae_scores_exact(xc, mm->w_enc_t, zero, SD, NULL, SL, dot);
        for (int64_t j = 0; j < SL; j++)
            (*m)->params[mm->lay.b_enc + j] = j % 2 ? nextafterf(-dot[j], INFINITY) : -dot[j];
    }
    assert_ok(sae_train_loss_grad(t, SN));
    return t;
}

/* ReLU blocks screened by the low-precision product (codes recomputed exactly where the
 * bound reaches above 0) against the float product's codes; when the candidates overflow
 * the codes' room, the block falls back to the float product, bit for bit. */
static void test_relu_screened_blocks_match_float(void **state)
{
    (void)state;
    if (!sae_bf16_available()) {
        print_message("no low-precision kernel on this CPU: screening not tested\n");
        return;
    }
    sae_model *m[2];
    sae_trainer *t[2] = {screen_trainer(&m[0], 1, 1, 0, 1), screen_trainer(&m[1], 0, 1, 0, 1)};
    assert_non_null(t[0]->ws.bf_enc);
    assert_true(t[0]->ws.screen_ready); /* the blocks were screened */
    sae_model *m2;
    sae_trainer *t2 = screen_trainer(&m2, 1, 1, 0, 2); /* two threads: the same bits */
    assert_memory_equal(t2->grad, t[0]->grad, (size_t)m[0]->lay.total * sizeof(float));
    assert_true(t2->last.loss == t[0]->last.loss);
    sae_trainer_free(t2);
    sae_model_free(m2);
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) { /* new encoder weights: the packed copy must follow them */
            for (int v = 0; v < 2; v++) {
                for (int64_t e = 0; e < m[v]->n_latents * m[v]->d; e++)
                    m[v]->w_enc_t[e] = -m[v]->w_enc_t[e];
                assert_ok(sae_train_loss_grad(t[v], 40));
            }
        }
        assert_true(t[0]->last.l0 > 5.0 && t[0]->last.l0 < 200.0);
        assert_close(t[0]->last.l0, t[1]->last.l0, 0.0);
        assert_close(t[0]->last.loss, t[1]->last.loss, 1e-6 * (1.0 + t[1]->last.loss));
        double scale = 0.0;
        for (int64_t e = 0; e < m[0]->lay.total; e++)
            scale = fmax(scale, fabs(t[1]->grad[e]));
        for (int64_t e = 0; e < m[0]->lay.total; e++)
            if (fabs(t[0]->grad[e] - t[1]->grad[e]) > 1e-5 * scale)
                fail_msg("pass %d: gradient %lld screened %.9g float %.9g (largest %.3g)", pass,
                         (long long)e, t[0]->grad[e], t[1]->grad[e], scale);
    }
    /* the codes' room: the smallest that takes the last block's candidates, and nothing
     * written past it (sentinels), nor past a room one smaller (which must refuse) */
    sae_train_ws *w = &t[0]->ws;
    int64_t room = w->block_room, lo = 0, hi = room;
    sae_codes c = {w->codes.row_ptr, w->codes.idx, w->codes.val, room};
    assert_int_equal(sae_train_relu_screen(t[0], 8, 32, &c), 1); /* the codes with all the room */
    int64_t want_ptr[9], nnz = c.row_ptr[8];
    int32_t *want_idx = malloc((size_t)nnz * sizeof *want_idx);
    float *want_val = malloc((size_t)nnz * sizeof *want_val);
    memcpy(want_ptr, c.row_ptr, sizeof want_ptr);
    memcpy(want_idx, c.idx, (size_t)nnz * sizeof *want_idx);
    memcpy(want_val, c.val, (size_t)nnz * sizeof *want_val);
    while (lo < hi) { /* smallest room that succeeds */
        int64_t mid = (lo + hi) / 2;
        c.cap = mid;
        if (sae_train_relu_screen(t[0], 8, 32, &c))
            hi = mid;
        else
            lo = mid + 1;
    }
    assert_true(lo >= c.row_ptr[8] && lo < room);
    for (int64_t fit = lo - 1; fit <= lo; fit++) {
        for (int64_t e = fit; e < room; e++)
            c.idx[e] = -7;
        c.cap = fit;
        assert_int_equal(sae_train_relu_screen(t[0], 8, 32, &c), fit == lo);
        for (int64_t e = fit; e < room; e++)
            assert_int_equal(c.idx[e], -7);
    } /* the last call had just enough room (rows over an equal share: a second pass) */
    assert_memory_equal(c.row_ptr, want_ptr, sizeof want_ptr);
    assert_memory_equal(c.idx, want_idx, (size_t)nnz * sizeof *want_idx);
    assert_memory_equal(c.val, want_val, (size_t)nnz * sizeof *want_val);
    free(want_idx);
    free(want_val);
    for (int v = 0; v < 2; v++) {
        sae_trainer_free(t[v]);
        sae_model_free(m[v]);
    }
    /* room for one code: every screen overflows */
    t[0] = screen_trainer(&m[0], 1, INT64_C(1) << 40, 0, 1);
    t[1] = screen_trainer(&m[1], 0, INT64_C(1) << 40, 0, 1);
    assert_true(t[0]->ws.screen_ready && !t[0]->ws.screen_next);
    assert_memory_equal(t[0]->grad, t[1]->grad, (size_t)m[0]->lay.total * sizeof(float));
    assert_true(t[0]->last.loss == t[1]->last.loss);
    for (int v = 0; v < 2; v++) {
        sae_trainer_free(t[v]);
        sae_model_free(m[v]);
    }
}

/* A screened row whose exact scores sit at 0 and one ulp above it: the low-precision
 * scores fall on both sides of 0, and exactly the odd latents must come out active. */
static void test_relu_screen_keeps_codes_at_the_edge(void **state)
{
    (void)state;
    if (!sae_bf16_available()) {
        print_message("no low-precision kernel on this CPU: screening not tested\n");
        return;
    }
    sae_model *m;
    sae_trainer *t = screen_trainer(&m, 1, 1, 1, 1);
    assert_true(t->ws.screen_ready);
    const sae_codes *c = &t->ws.codes; /* the codes of the rows from pend_row0 */
    int64_t last = 40 - 1 - t->ws.pend_row0, a0 = c->row_ptr[last], a1 = c->row_ptr[last + 1];
    assert_int_equal(a1 - a0, m->n_latents / 2);
    for (int64_t a = a0; a < a1; a++) {
        assert_int_equal(c->idx[a], 2 * (a - a0) + 1);
        assert_true(c->val[a] > 0.0f);
    }
    sae_trainer_free(t);
    sae_model_free(m);
}

/* Per-row and batch top-k against a naive selection (ties: lower index / position wins),
 * on rows with negatives, exact ties, masks and lengths that are not multiples of 16; the
 * batch buffer is reduced many times per trial (its room is twice k * ROWS). */
static void test_topk_selection_matches_naive(void **state)
{
    (void)state;
    enum { LMAX = 200, ROWS = 7 };
    float row[ROWS * LMAX], val[ROWS * LMAX], hval[SAE_BATCH_ROOM(12 * ROWS)];
    int32_t idx[ROWS * LMAX];
    int64_t pos[SAE_BATCH_ROOM(12 * ROWS)], row_ptr[ROWS + 1];
    uint8_t allow[LMAX];
    srand(3);
    for (int trial = 0; trial < 300; trial++) {
        int64_t l = 1 + rand() % LMAX, k = 1 + rand() % 12;
        for (int64_t e = 0; e < ROWS * l; e++) /* few distinct values: many ties */
            row[e] = (float)(rand() % 9 - 3) * 0.25f;
        for (int64_t j = 0; j < l; j++)
            allow[j] = (uint8_t)(rand() % 3 != 0);
        for (int masked = 0; masked <= 1; masked++) {
            int64_t cnt = sae_topk_row(row, l, k, masked ? allow : NULL, idx, val);
            int64_t want = 0;
            for (int64_t j = 0; j < l; j++) {
                if (!(row[j] > 0.0f) || (masked && !allow[j]))
                    continue;
                int64_t better = 0;
                for (int64_t q = 0; q < l; q++)
                    better += row[q] > 0.0f && (!masked || allow[q]) &&
                              (row[q] > row[j] || (row[q] == row[j] && q < j));
                if (better < k) {
                    assert_true(want < cnt);
                    assert_int_equal(idx[want], j); /* sorted by index */
                    assert_true(val[want] == row[j]);
                    want++;
                }
            }
            assert_int_equal(cnt, want);
        }
        /* batch: the k * ROWS best positive values over all rows */
        sae_batch_heap h = {0, 0, hval, pos, 0.0f};
        sae_codes c = {row_ptr, idx, val, ROWS * LMAX};
        sae_batch_heap_reset(&h, k * ROWS);
        for (int64_t r = 0; r < ROWS; r++)
            sae_batch_heap_offer_row(&h, row + r * l, l, r);
        sae_batch_heap_to_codes(&h, ROWS, l, &c);
        int64_t at = 0;
        float worst = 0.0f; /* the smallest selected value: the batch threshold */
        for (int64_t e = 0; e < ROWS * l; e++) {
            if (!(row[e] > 0.0f))
                continue;
            int64_t better = 0;
            for (int64_t f = 0; f < ROWS * l; f++)
                better += row[f] > 0.0f && (row[f] > row[e] || (row[f] == row[e] && f < e));
            if (better < k * ROWS) {
                worst = at == 0 || row[e] < worst ? row[e] : worst;
                assert_true(at < row_ptr[ROWS]);
                assert_true(at >= row_ptr[e / l] && at < row_ptr[e / l + 1]); /* its row */
                assert_int_equal(idx[at], e % l);
                at++;
            }
        }
        assert_int_equal(at, row_ptr[ROWS]);
        assert_true(sae_batch_heap_min(&h) == worst);
    }
}

/* A step of rows x n_latents x d_in below thread_min_work runs on one thread, n_threads
 * from there on (default 2^25); thread_min_work 0 always honours n_threads. */
static void test_small_steps_run_on_one_thread(void **state)
{
    (void)state;
    enum { TD = 16, TL = 32, TN = 64 };
    const double work = (double)TN * TL * TD;
    const struct {
        double threads, min_work;
        int expect;
    } cases[] = {{2, -1, 1}, {2, 0, 2}, {2, work, 2}, {2, work + 1, 1}, {1, 0, 1}, {3, work, 3}};
    float x[TN * TD];
    for (int e = 0; e < TN * TD; e++)
        x[e] = (float)((e * 37 % 101) / 50.0 - 1.0);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        sae_config *mc = test_config(SAE_KIND_MODEL, "d_in", (double)TD, "n_latents", (double)TL,
                                     "arch", (double)SAE_ARCH_RELU, NULL);
        sae_config *tc = test_config(SAE_KIND_TRAINER, "n_threads", cases[c].threads, NULL);
        if (cases[c].min_work >= 0)
            assert_ok(sae_config_set_by_name(tc, "thread_min_work", cases[c].min_work));
        else {
            int64_t dflt = 0;
            assert_ok(sae_config_get_i64(tc, SAE_TRAINER_THREAD_MIN_WORK, &dflt));
            assert_int_equal(dflt, INT64_C(1) << 25);
        }
        sae_model *m = NULL;
        sae_trainer *t = NULL;
        assert_ok(sae_model_create(&m, mc, NULL));
        assert_ok(sae_trainer_create(&t, m, tc, NULL));
        assert_ok(sae_trainer_step(t, x, TN, TD));
        if (sae_train_threads(t) != cases[c].expect)
            fail_msg("case %zu: %d threads, expected %d", c, sae_train_threads(t), cases[c].expect);
        sae_trainer_free(t);
        sae_model_free(m);
        sae_config_free(mc);
        sae_config_free(tc);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grad_relu),       cmocka_unit_test(test_grad_topk),
        cmocka_unit_test(test_grad_batchtopk),  cmocka_unit_test(test_grad_matryoshka),
        cmocka_unit_test(test_grad_jumprelu),   cmocka_unit_test(test_grad_gated),
        cmocka_unit_test(test_jumprelu_ste_by_hand),
        cmocka_unit_test(test_topk_selection_matches_naive),
        cmocka_unit_test(test_relu_sparse_blocks_match_dense),
        cmocka_unit_test(test_relu_fused_blocks_match_unfused),
        cmocka_unit_test(test_relu_screened_blocks_match_float),
        cmocka_unit_test(test_relu_screen_keeps_codes_at_the_edge),
        cmocka_unit_test(test_small_steps_run_on_one_thread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
