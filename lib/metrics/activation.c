/*
 * Metrics over an evaluation sample drawn from the toy (samples eval_first ..
 * eval_first + n_eval - 1, with their ground-truth codes), encoded in chunks.
 *
 * Pass A: firing counts, feature x latent co-firing counts, reconstruction, L0,
 *         absorption counts, n-th decoder projections, per-latent maxima.
 * Pass B: activation histograms (ranges from pass A) and joint-firing statistics of each
 *         latent's top pair of co-firing features (pairs from pass A).
 */
#include "metrics_internal.h"

#include "linalg/linalg.h"

#include <string.h>

#define CHUNK 256

typedef struct evalbuf {
    float *x, *z, *xhat, *proj;
    int64_t *row_ptr;
    int32_t *feature;
    float *magnitude;
    int64_t cap;
    int32_t *fired;    /* CHUNK x L: latents firing in each sample of the chunk */
    int64_t *n_fired;  /* CHUNK */
    int64_t *stamp;    /* N: sample index + 1 when the feature is active */
    int64_t *child_on; /* N: sample index + 1 when a child of the feature is active */
} evalbuf;

typedef struct acc {
    int64_t *fires, *active;  /* L, N */
    uint32_t *cofire;         /* N x L or NULL */
    float *zmax;              /* L */
    double sq_err, sum_sq, l0_sum, true_l0_sum;
    double *x_sum;            /* d */
    float *l0_hist;           /* L + 1 */
    float *sbw;               /* sbw_samples x L */
    /* hierarchy */
    const int64_t *parents;   /* N or NULL */
    int64_t *n_with, *off_with, *n_alone, *off_alone; /* N */
    const float *parent_latent; /* N: argmax decoder cosine per feature */
    /* pass B */
    int32_t *pair;            /* L x 2 */
    int64_t *joint;           /* L x 6: n_ab, f_ab, n_a, f_a, n_b, f_b */
    float *hist;              /* L x bins */
} acc;

static int32_t grow_codes(const sae_alloc *al, evalbuf *b, int64_t need)
{
    sae_free(al, b->feature);
    sae_free(al, b->magnitude);
    b->cap = need + need / 2 + 64;
    b->feature = sae_malloc(al, (size_t)b->cap * sizeof *b->feature);
    b->magnitude = sae_malloc(al, (size_t)b->cap * sizeof *b->magnitude);
    return b->feature && b->magnitude ? SAE_OK : SAE_E_NOMEM;
}

/* Draw rows [first, first + n) with codes and encode them. */
static int32_t load_chunk(sae_meval *e, evalbuf *b, uint64_t first, int64_t n)
{
    int64_t need = 0;
    int32_t st = sae_toy_sample_codes(e->toy, first, n, b->x, e->d, b->row_ptr, b->feature,
                                      b->magnitude, b->cap, &need);
    if (st == SAE_E_BUFFER_TOO_SMALL) {
        st = grow_codes(e->al, b, need);
        if (st == SAE_OK)
            st = sae_toy_sample_codes(e->toy, first, n, b->x, e->d, b->row_ptr, b->feature,
                                      b->magnitude, b->cap, &need);
    }
    if (st != SAE_OK)
        return sae_fail(e->err, st, "metrics: sampling the toy failed: %s", sae_toy_errmsg(e->toy));
    st = sae_model_encode(e->model, b->x, n, e->d, b->z, e->l);
    if (st != SAE_OK)
        return sae_fail(e->err, st, "metrics: encoding failed: %s", sae_model_errmsg(e->model));
    return SAE_OK;
}

/* ---- pass A ------------------------------------------------------------------------- */

static void absorption_counts(const sae_meval *e, acc *a, evalbuf *b, int64_t row,
                              int64_t tag, const float *zrow)
{
    int64_t lo = b->row_ptr[row], hi = b->row_ptr[row + 1];
    for (int64_t q = lo; q < hi; q++) {
        int64_t p = a->parents[b->feature[q]];
        if (p >= 0)
            b->child_on[p] = tag;
    }
    for (int64_t q = lo; q < hi; q++) {
        int32_t f = b->feature[q];
        if (a->n_with[f] < 0) /* not a parent */
            continue;
        int64_t lat = (int64_t)a->parent_latent[f];
        int off = lat < 0 || !(zrow[lat] > e->set->fire_threshold);
        if (b->child_on[f] == tag) {
            a->n_with[f]++;
            a->off_with[f] += off;
        } else {
            a->n_alone[f]++;
            a->off_alone[f] += off;
        }
    }
}

static void sample_stats(const sae_meval *e, acc *a, evalbuf *b, int64_t row, int64_t global)
{
    const float *zrow = b->z + row * e->l;
    int32_t *fired = b->fired + row * e->l;
    double thr = e->set->fire_threshold;
    int64_t nf = 0;
    for (int64_t j = 0; j < e->l; j++)
        if (zrow[j] > thr) {
            fired[nf++] = (int32_t)j;
            a->fires[j]++;
            if (zrow[j] > a->zmax[j])
                a->zmax[j] = zrow[j];
        }
    b->n_fired[row] = nf;
    a->l0_sum += (double)nf;
    a->l0_hist[nf] += 1.0f;
    int64_t lo = b->row_ptr[row], hi = b->row_ptr[row + 1];
    a->true_l0_sum += (double)(hi - lo);
    for (int64_t q = lo; q < hi; q++)
        a->active[b->feature[q]]++;
    if (a->parents)
        absorption_counts(e, a, b, row, global + 1, zrow);
}

/* Co-firing counts of a chunk: each task owns a range of features (rows of the count
 * matrix), so tasks never write the same entry and the counts are exact integers. */
static void cofire_counts(const sae_meval *e, acc *a, const evalbuf *b, int64_t n)
{
    int64_t n_tasks = 4 * (int64_t)e->set->threads;
    SAE_M_PARALLEL_FOR(e->set->threads)
    for (int64_t task = 0; task < n_tasks; task++) {
        int64_t f0 = e->n * task / n_tasks, f1 = e->n * (task + 1) / n_tasks;
        for (int64_t i = 0; i < n; i++) {
            const int32_t *fired = b->fired + i * e->l;
            for (int64_t q = b->row_ptr[i]; q < b->row_ptr[i + 1]; q++) {
                int64_t f = b->feature[q];
                if (f < f0 || f >= f1)
                    continue;
                uint32_t *crow = a->cofire + f * e->l;
                for (int64_t t = 0; t < b->n_fired[i]; t++)
                    crow[fired[t]]++;
            }
        }
    }
}

static int32_t reconstruction(const sae_meval *e, acc *a, evalbuf *b, int64_t n)
{
    int32_t st = sae_model_decode(e->model, b->z, n, e->l, b->xhat, e->d);
    if (st != SAE_OK)
        return sae_fail(e->err, st, "metrics: decoding failed: %s", sae_model_errmsg(e->model));
    for (int64_t i = 0; i < n; i++) {
        const float *x = b->x + i * e->d, *xh = b->xhat + i * e->d;
        for (int64_t k = 0; k < e->d; k++) {
            double r = (double)x[k] - xh[k];
            a->sq_err += r * r;
            a->sum_sq += (double)x[k] * x[k];
            a->x_sum[k] += x[k];
        }
    }
    return SAE_OK;
}

/* Projections (x - b_dec) W_dec^T of rows [done, done + n) kept for s_n. */
static int32_t sbw_projections(const sae_meval *e, acc *a, evalbuf *b, int64_t done, int64_t n)
{
    int64_t rows = SAE_MIN(n, e->set->sbw_samples - done);
    if (rows <= 0)
        return SAE_OK;
    for (int64_t i = 0; i < rows; i++)
        for (int64_t k = 0; k < e->d; k++)
            b->proj[i * e->d + k] = b->x[i * e->d + k] - e->b_dec[k];
    return sae_gemm(0, 1, rows, e->l, e->d, 1.0f, b->proj, e->d, e->w_dec, e->d, 0.0f,
                    a->sbw + done * e->l, e->l);
}

/* Run fn on each chunk of the evaluation sample after drawing and encoding it. */
typedef int32_t (*chunk_fn)(sae_meval *e, acc *a, evalbuf *b, int64_t done, int64_t n);

static int32_t for_each_chunk(sae_meval *e, acc *a, evalbuf *b, chunk_fn fn)
{
    const sae_msettings *s = e->set;
    for (int64_t done = 0; done < s->n_eval; done += CHUNK) {
        int64_t n = SAE_MIN(CHUNK, s->n_eval - done);
        int32_t st = load_chunk(e, b, s->eval_first + (uint64_t)done, n);
        if (st == SAE_OK)
            st = fn(e, a, b, done, n);
        if (st != SAE_OK)
            return st;
    }
    return SAE_OK;
}

static int32_t chunk_a(sae_meval *e, acc *a, evalbuf *b, int64_t done, int64_t n)
{
    int32_t st = SAE_OK;
    for (int64_t i = 0; i < n; i++)
        sample_stats(e, a, b, i, done + i);
    if (a->cofire)
        cofire_counts(e, a, b, n);
    if (e->set->groups & SAE_MG_RECONSTRUCTION)
        st = reconstruction(e, a, b, n);
    if (st == SAE_OK && (e->set->groups & SAE_MG_SBW))
        st = sbw_projections(e, a, b, done, n);
    return st;
}

/* ---- pass B ------------------------------------------------------------------------- */

static void joint_counts(const sae_meval *e, acc *a, evalbuf *b, int64_t row, int64_t tag)
{
    const float *zrow = b->z + row * e->l;
    for (int64_t q = b->row_ptr[row]; q < b->row_ptr[row + 1]; q++)
        b->stamp[b->feature[q]] = tag;
    for (int64_t j = 0; j < e->l; j++) {
        int32_t fa = a->pair[2 * j], fb = a->pair[2 * j + 1];
        if (fa < 0 || fb < 0)
            continue;
        int on_a = b->stamp[fa] == tag, on_b = b->stamp[fb] == tag;
        if (!on_a && !on_b)
            continue;
        int fire = zrow[j] > e->set->fire_threshold;
        int64_t *c = a->joint + 6 * j + (on_a && on_b ? 0 : (on_a ? 2 : 4));
        c[0]++;
        c[1] += fire;
    }
}

static void hist_counts(const sae_meval *e, acc *a, const float *zrow)
{
    int64_t bins = e->set->hist_bins;
    for (int64_t j = 0; j < e->l; j++) {
        float z = zrow[j];
        if (!(z > e->set->fire_threshold) || !(a->zmax[j] > 0))
            continue;
        int64_t bin = (int64_t)((double)z / a->zmax[j] * (double)bins);
        a->hist[j * bins + (bin >= bins ? bins - 1 : bin)] += 1.0f;
    }
}

static int32_t chunk_b(sae_meval *e, acc *a, evalbuf *b, int64_t done, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        if (a->pair)
            joint_counts(e, a, b, i, done + i + 1);
        if (a->hist)
            hist_counts(e, a, b->z + i * e->l);
    }
    return SAE_OK;
}

/* ---- results ------------------------------------------------------------------------ */

static int32_t detection_results(sae_meval *e, sae_mresults *r, acc *a)
{
    float *bl = sae_mresults_array(e->al, r, SAE_ARRAY_BEST_LATENT, 1, e->n);
    float *bp = sae_mresults_array(e->al, r, SAE_ARRAY_BEST_PRECISION, 1, e->n);
    float *br = sae_mresults_array(e->al, r, SAE_ARRAY_BEST_RECALL, 1, e->n);
    float *bf = sae_mresults_array(e->al, r, SAE_ARRAY_BEST_F1, 1, e->n);
    if (!bl || !bp || !br || !bf)
        return SAE_E_NOMEM;
    SAE_M_PARALLEL_FOR(e->set->threads)
    for (int64_t f = 0; f < e->n; f++) {
        const uint32_t *crow = a->cofire + f * e->l;
        double best = -1;
        int64_t arg = -1;
        for (int64_t j = 0; j < e->l && a->active[f] > 0; j++) {
            double f1 = 2.0 * crow[j] / (double)(a->fires[j] + a->active[f]);
            if (f1 > best) {
                best = f1;
                arg = j;
            }
        }
        bl[f] = (float)arg;
        if (arg < 0) {
            bp[f] = br[f] = bf[f] = NAN;
            continue;
        }
        double tp = crow[arg];
        bp[f] = a->fires[arg] > 0 ? (float)(tp / (double)a->fires[arg]) : 0.0f;
        br[f] = (float)(tp / (double)a->active[f]);
        bf[f] = (float)best;
    }
    double f1_sum = 0; /* in feature order, whatever the thread count */
    int64_t counted = 0;
    for (int64_t f = 0; f < e->n; f++)
        if (bl[f] >= 0) {
            f1_sum += 2.0 * a->cofire[f * e->l + (int64_t)bl[f]] /
                      (double)(a->fires[(int64_t)bl[f]] + a->active[f]);
            counted++;
        }
    sae_mresults_set(r, SAE_METRIC_MEAN_BEST_F1, counted ? f1_sum / (double)counted : NAN);
    return SAE_OK;
}

/* Top two co-firing features of each latent (pair[2j] < pair[2j+1]; -1 if fewer). */
static void top_pairs(const sae_meval *e, acc *a)
{
    uint32_t *best = (uint32_t *)a->joint; /* scratch: 2 counts per latent, zeroed below */
    for (int64_t j = 0; j < e->l; j++) {
        a->pair[2 * j] = a->pair[2 * j + 1] = -1;
        best[2 * j] = best[2 * j + 1] = 0;
    }
    for (int64_t f = 0; f < e->n; f++) {
        const uint32_t *crow = a->cofire + f * e->l;
        for (int64_t j = 0; j < e->l; j++) {
            uint32_t c = crow[j];
            if (c <= best[2 * j + 1])
                continue;
            if (c > best[2 * j]) {
                best[2 * j + 1] = best[2 * j];
                a->pair[2 * j + 1] = a->pair[2 * j];
                best[2 * j] = c;
                a->pair[2 * j] = (int32_t)f;
            } else {
                best[2 * j + 1] = c;
                a->pair[2 * j + 1] = (int32_t)f;
            }
        }
    }
    memset(a->joint, 0, (size_t)(6 * e->l) * sizeof(int64_t));
    for (int64_t j = 0; j < e->l; j++)
        if (a->pair[2 * j] > a->pair[2 * j + 1] && a->pair[2 * j + 1] >= 0) {
            int32_t t = a->pair[2 * j];
            a->pair[2 * j] = a->pair[2 * j + 1];
            a->pair[2 * j + 1] = t;
        }
}

static double ratio(int64_t num, int64_t den)
{
    return den > 0 ? (double)num / (double)den : NAN;
}

static int32_t joint_results(sae_meval *e, sae_mresults *r, acc *a)
{
    const sae_msettings *s = e->set;
    float *jf = sae_mresults_array(e->al, r, SAE_ARRAY_JOINT_FIRE, e->l, 4);
    int64_t *rec = sae_malloc(e->al, (size_t)(3 * e->l) * sizeof(int64_t));
    int32_t st = SAE_E_NOMEM;
    if (jf == NULL || rec == NULL)
        goto done;
    int64_t n_rec = 0;
    for (int64_t j = 0; j < e->l; j++) {
        const int64_t *c = a->joint + 6 * j;
        double p_ab = ratio(c[1], c[0]), p_a = ratio(c[3], c[2]), p_b = ratio(c[5], c[4]);
        double prec = ratio(c[1], a->fires[j]);
        jf[4 * j] = (float)p_ab;
        jf[4 * j + 1] = (float)p_a;
        jf[4 * j + 2] = (float)p_b;
        jf[4 * j + 3] = (float)prec;
        /* marginals must be measured: a pair never seen apart cannot be told from one feature */
        if (p_ab >= s->joint_min && prec >= s->joint_min && p_a <= s->marginal_max &&
            p_b <= s->marginal_max) {
            rec[n_rec++] = j;
            rec[n_rec++] = a->pair[2 * j];
            rec[n_rec++] = a->pair[2 * j + 1];
        }
    }
    int64_t *dst = sae_mresults_list(e->al, r, SAE_LIST_JOINT_COMPOSED, n_rec);
    if (dst == NULL)
        goto done;
    if (n_rec)
        memcpy(dst, rec, (size_t)n_rec * sizeof(int64_t));
    sae_mresults_set(r, SAE_METRIC_N_JOINT_COMPOSED, (double)(n_rec / 3));
    st = SAE_OK;
done:
    sae_free(e->al, rec);
    return st;
}

/* Least-squares share of the parent in the child latent's unit decoder direction:
 * u = a f_c + b f_p + residual, share = b / a. */
static double parent_share(const sae_meval *e, int64_t parent, int64_t child, int64_t lat)
{
    const float *u = e->w_dec + lat * e->d;
    const float *fc = e->dict + child * e->d, *fp = e->dict + parent * e->d;
    double nu = sae_norm_f64(u, e->d);
    if (!(nu > 0))
        return NAN;
    double g = sae_dot_f64(fc, fp, e->d), yc = sae_dot_f64(u, fc, e->d) / nu,
           yp = sae_dot_f64(u, fp, e->d) / nu, det = 1.0 - g * g;
    if (!(det > 1e-12))
        return NAN;
    double ca = (yc - g * yp) / det, cb = (yp - g * yc) / det;
    return ca > 0 ? cb / ca : NAN;
}

static int32_t absorption_results(sae_meval *e, sae_mresults *r, acc *a)
{
    float *rate = sae_mresults_array(e->al, r, SAE_ARRAY_ABSORPTION, 1, e->n);
    float *carried = sae_mresults_array(e->al, r, SAE_ARRAY_PARENT_CARRIED, 1, e->n);
    int64_t edges = 0;
    for (int64_t f = 0; f < e->n; f++)
        edges += a->parents[f] >= 0;
    int64_t *rec = sae_mresults_list(e->al, r, SAE_LIST_HIERARCHY_EDGES, 4 * edges);
    double *share_sum = sae_calloc(e->al, (size_t)e->n, sizeof(double));
    int64_t *share_n = sae_calloc(e->al, (size_t)e->n, sizeof(int64_t));
    int32_t st = SAE_E_NOMEM;
    if (!rate || !carried || !rec || !share_sum || !share_n)
        goto done;
    int64_t q = 0;
    for (int64_t c = 0; c < e->n; c++) {
        int64_t p = a->parents[c];
        if (p < 0)
            continue;
        int64_t lp = (int64_t)a->parent_latent[p], lc = (int64_t)a->parent_latent[c];
        rec[q++] = p, rec[q++] = c, rec[q++] = lp, rec[q++] = lc;
        double sh = lc >= 0 ? parent_share(e, p, c, lc) : NAN;
        if (sh == sh) {
            share_sum[p] += sh;
            share_n[p]++;
        }
    }
    double rate_sum = 0, gap_sum = 0;
    int64_t n_par = 0, n_gap = 0;
    for (int64_t p = 0; p < e->n; p++) {
        double rt = a->n_with[p] > 0 ? ratio(a->off_with[p], a->n_with[p]) : NAN;
        rate[p] = (float)rt;
        carried[p] = share_n[p] > 0 ? (float)(share_sum[p] / (double)share_n[p]) : NAN;
        if (rt == rt) {
            rate_sum += rt;
            n_par++;
            if (a->n_alone[p] > 0) {
                gap_sum += (1.0 - ratio(a->off_alone[p], a->n_alone[p])) - (1.0 - rt);
                n_gap++;
            }
        }
    }
    sae_mresults_set(r, SAE_METRIC_ABSORPTION_MEAN, n_par ? rate_sum / (double)n_par : NAN);
    sae_mresults_set(r, SAE_METRIC_ABSORPTION_GAP, n_gap ? gap_sum / (double)n_gap : NAN);
    sae_mresults_set(r, SAE_METRIC_N_PARENTS, (double)n_par);
    st = SAE_OK;
done:
    sae_free(e->al, share_sum);
    sae_free(e->al, share_n);
    return st;
}

static int32_t reconstruction_results(sae_meval *e, sae_mresults *r, acc *a)
{
    const sae_msettings *s = e->set;
    double n = (double)s->n_eval, mean_sq = 0;
    for (int64_t k = 0; k < e->d; k++)
        mean_sq += (a->x_sum[k] / n) * (a->x_sum[k] / n);
    double var = a->sum_sq - n * mean_sq;
    sae_mresults_set(r, SAE_METRIC_MSE, a->sq_err / (n * (double)e->d));
    sae_mresults_set(r, SAE_METRIC_FVU, var > 0 ? a->sq_err / var : NAN);
    sae_mresults_set(r, SAE_METRIC_L0_MEAN, a->l0_sum / n);
    sae_mresults_set(r, SAE_METRIC_TRUE_L0_MEAN, a->true_l0_sum / n);
    float *freq = sae_mresults_array(e->al, r, SAE_ARRAY_FIRE_FREQ, 1, e->l);
    float *dens = sae_mresults_array(e->al, r, SAE_ARRAY_DENSITY_HIST, 1, s->hist_bins);
    float *l0h = sae_mresults_array(e->al, r, SAE_ARRAY_L0_HIST, 1, e->l + 1);
    int64_t dead = 0, dense = 0;
    for (int64_t j = 0; j < e->l; j++)
        dead += a->fires[j] == 0;
    int64_t *dl = sae_mresults_list(e->al, r, SAE_LIST_DEAD, dead);
    if (!freq || !dens || !l0h || !dl)
        return SAE_E_NOMEM;
    memcpy(l0h, a->l0_hist, (size_t)(e->l + 1) * sizeof(float));
    dead = 0;
    for (int64_t j = 0; j < e->l; j++) {
        double fr = (double)a->fires[j] / n;
        freq[j] = (float)fr;
        if (a->fires[j] == 0) {
            dl[dead++] = j;
            continue;
        }
        dense += fr > s->dense_threshold;
        double pos = (log10(fr) + 8.0) / 8.0 * (double)s->hist_bins;
        int64_t bin = pos < 0 ? 0 : (int64_t)pos;
        dens[bin >= s->hist_bins ? s->hist_bins - 1 : bin] += 1.0f;
    }
    sae_mresults_set(r, SAE_METRIC_FRAC_DEAD, (double)dead / (double)e->l);
    sae_mresults_set(r, SAE_METRIC_FRAC_DENSE, (double)dense / (double)e->l);
    return SAE_OK;
}

static int32_t histogram_results(sae_meval *e, sae_mresults *r, acc *a)
{
    const sae_msettings *s = e->set;
    float *h = sae_mresults_array(e->al, r, SAE_ARRAY_ACT_HIST, e->l, s->hist_bins);
    float *hm = sae_mresults_array(e->al, r, SAE_ARRAY_ACT_HIST_MAX, 1, e->l);
    float *np = sae_mresults_array(e->al, r, SAE_ARRAY_N_PEAKS, 1, e->l);
    if (!h || !hm || !np)
        return SAE_E_NOMEM;
    memcpy(h, a->hist, (size_t)(e->l * s->hist_bins) * sizeof(float));
    int64_t eligible = 0, multi = 0;
    for (int64_t j = 0; j < e->l; j++) {
        hm[j] = a->zmax[j];
        if (a->fires[j] < s->peak_min_fires)
            continue;
        int32_t p = sae_metrics_count_peaks(h + j * s->hist_bins, s->hist_bins,
                                            s->peak_min_height, s->peak_max_valley);
        np[j] = (float)p;
        eligible++;
        multi += p >= 2;
    }
    int64_t *lst = sae_mresults_list(e->al, r, SAE_LIST_MULTI_PEAK, multi);
    if (lst == NULL)
        return SAE_E_NOMEM;
    multi = 0;
    for (int64_t j = 0; j < e->l; j++)
        if (np[j] >= 2)
            lst[multi++] = j;
    sae_mresults_set(r, SAE_METRIC_FRAC_MULTI_PEAK, eligible ? (double)multi / (double)eligible : NAN);
    return SAE_OK;
}

static int32_t sbw_results(sae_meval *e, sae_mresults *r, acc *a)
{
    const sae_msettings *s = e->set;
    int64_t rows = s->sbw_samples, total = rows * e->l;
    int64_t n = s->sbw_n;
    if (n < 0) {
        double mean_active = 0;
        int32_t st = sae_toy_info(e->toy, SAE_TOY_INFO_MEAN_ACTIVE, &mean_active);
        if (st != SAE_OK)
            return sae_fail(e->err, st, "metrics: %s", sae_toy_errmsg(e->toy));
        n = (int64_t)ceil(2.0 * mean_active);
    }
    n = SAE_MIN(n, e->l - 1);
    sae_mresults_set(r, SAE_METRIC_SBW_N, (double)n);
    sae_mresults_set(r, SAE_METRIC_SBW_SN, sae_metrics_kth_largest(a->sbw, total, n * rows));
    int64_t max_n = SAE_MIN(s->sbw_max_n, e->l - 1);
    float *curve = sae_mresults_array(e->al, r, SAE_ARRAY_SBW_CURVE, 1, max_n + 1);
    if (curve == NULL)
        return SAE_E_NOMEM;
    /* descending order statistics at n * rows, largest index first: each selection leaves
     * the larger values in front, so the next one only searches that prefix */
    int64_t end = total;
    for (int64_t q = max_n; q >= 0; q--) {
        curve[q] = sae_metrics_kth_largest(a->sbw, end, q * rows);
        end = q * rows + 1;
    }
    return SAE_OK;
}

/* ---- driver --------------------------------------------------------------------------- */

static void *zalloc(const sae_alloc *al, int64_t n, size_t size, int *fail)
{
    void *p = sae_calloc(al, (size_t)(n > 0 ? n : 1), size);
    *fail |= p == NULL;
    return p;
}

static int32_t read_parents(sae_meval *e, acc *a, int64_t **out)
{
    sae_config *cfg = NULL;
    int32_t st = sae_toy_get_config(e->toy, &cfg);
    if (st != SAE_OK)
        return sae_fail(e->err, st, "metrics: reading the toy configuration failed: %s", sae_toy_errmsg(e->toy));
    int64_t n = 0;
    st = sae_config_get_i64_array(cfg, SAE_TOY_PARENTS, NULL, 0, &n);
    if ((st == SAE_OK || st == SAE_E_BUFFER_TOO_SMALL) && n == e->n) {
        *out = sae_malloc(e->al, (size_t)n * sizeof(int64_t));
        st = *out ? sae_config_get_i64_array(cfg, SAE_TOY_PARENTS, *out, n, &n) : SAE_E_NOMEM;
    } else {
        st = SAE_OK; /* no hierarchy */
    }
    sae_config_free(cfg);
    if (st == SAE_OK && *out) {
        a->parents = *out;
        for (int64_t f = 0; f < e->n; f++)
            a->n_with[f] = -1;
        for (int64_t f = 0; f < e->n; f++)
            if ((*out)[f] >= 0 && (*out)[f] < e->n)
                a->n_with[(*out)[f]] = 0;
    }
    return st;
}

int32_t sae_metrics_activation(sae_meval *e, sae_mresults *r, float *counts_scratch)
{
    const sae_msettings *s = e->set;
    const sae_alloc *al = e->al;
    int64_t g = s->groups, l = e->l, n = e->n, d = e->d;
    int act = (g & SAE_MG_ACTIVATION) != 0, hist = (g & SAE_MG_HISTOGRAMS) != 0;
    int fail = 0;
    evalbuf b = {0};
    acc a = {0};
    int64_t *parents = NULL;
    b.x = zalloc(al, CHUNK * d, sizeof(float), &fail);
    b.z = zalloc(al, CHUNK * l, sizeof(float), &fail);
    b.xhat = zalloc(al, CHUNK * d, sizeof(float), &fail);
    b.proj = zalloc(al, CHUNK * d, sizeof(float), &fail);
    b.row_ptr = zalloc(al, CHUNK + 1, sizeof(int64_t), &fail);
    b.fired = zalloc(al, CHUNK * l, sizeof(int32_t), &fail);
    b.n_fired = zalloc(al, CHUNK, sizeof(int64_t), &fail);
    b.stamp = zalloc(al, n, sizeof(int64_t), &fail);
    b.child_on = zalloc(al, n, sizeof(int64_t), &fail);
    a.fires = zalloc(al, l, sizeof(int64_t), &fail);
    a.active = zalloc(al, n, sizeof(int64_t), &fail);
    a.zmax = zalloc(al, l, sizeof(float), &fail);
    a.x_sum = zalloc(al, d, sizeof(double), &fail);
    a.l0_hist = zalloc(al, l + 1, sizeof(float), &fail);
    if (g & SAE_MG_SBW)
        a.sbw = zalloc(al, s->sbw_samples * l, sizeof(float), &fail);
    if (act) {
        a.n_with = zalloc(al, n, sizeof(int64_t), &fail);
        a.off_with = zalloc(al, n, sizeof(int64_t), &fail);
        a.n_alone = zalloc(al, n, sizeof(int64_t), &fail);
        a.off_alone = zalloc(al, n, sizeof(int64_t), &fail);
        a.pair = zalloc(al, 2 * l, sizeof(int32_t), &fail);
        a.joint = zalloc(al, 6 * l, sizeof(int64_t), &fail);
        a.cofire = (uint32_t *)counts_scratch;
        fail |= counts_scratch == NULL;
    }
    if (hist)
        a.hist = zalloc(al, l * s->hist_bins, sizeof(float), &fail);
    int32_t st = fail ? SAE_E_NOMEM : SAE_OK;
    if (st == SAE_OK)
        st = grow_codes(al, &b, CHUNK * 8);
    if (st == SAE_OK && act) {
        memset(a.cofire, 0, (size_t)n * (size_t)l * sizeof(uint32_t));
        a.parent_latent = r->array[SAE_ARRAY_ARGMAX_TRUE].data;
        if (a.parent_latent != NULL)
            st = read_parents(e, &a, &parents);
    }
    if (st == SAE_OK)
        st = for_each_chunk(e, &a, &b, chunk_a);
    if (st == SAE_OK && act) {
        st = detection_results(e, r, &a);
        top_pairs(e, &a);
    }
    if (st == SAE_OK && (act || hist))
        st = for_each_chunk(e, &a, &b, chunk_b);
    if (st == SAE_OK && act)
        st = joint_results(e, r, &a);
    if (st == SAE_OK && act && a.parents)
        st = absorption_results(e, r, &a);
    if (st == SAE_OK && act && !a.parents) { /* no hierarchy: nothing to absorb */
        sae_mresults_set(r, SAE_METRIC_ABSORPTION_MEAN, NAN);
        sae_mresults_set(r, SAE_METRIC_ABSORPTION_GAP, NAN);
        sae_mresults_set(r, SAE_METRIC_N_PARENTS, 0);
    }
    if (st == SAE_OK && (g & SAE_MG_RECONSTRUCTION))
        st = reconstruction_results(e, r, &a);
    if (st == SAE_OK && hist)
        st = histogram_results(e, r, &a);
    if (st == SAE_OK && (g & SAE_MG_SBW))
        st = sbw_results(e, r, &a);
    void *ptrs[] = {b.x, b.z, b.xhat, b.proj, b.row_ptr, b.feature, b.magnitude, b.fired, b.n_fired,
                    b.stamp, b.child_on, a.fires, a.active, a.zmax, a.x_sum, a.l0_hist, a.sbw,
                    a.n_with, a.off_with, a.n_alone, a.off_alone, a.pair, a.joint, a.hist, parents};
    for (size_t k = 0; k < sizeof ptrs / sizeof ptrs[0]; k++)
        sae_free(al, ptrs[k]);
    return st;
}

/* ---- helpers tested directly ----------------------------------------------------------- */

int32_t sae_metrics_count_peaks(const float *hist, int64_t bins, double min_height,
                                double max_valley)
{
    double top = 0;
    for (int64_t k = 0; k < bins; k++)
        top = hist[k] > top ? hist[k] : top;
    if (!(top > 0))
        return 0;
    int32_t peaks = 0;
    double last_peak = 0, valley = INFINITY;
    for (int64_t k = 0; k < bins; k++) {
        double h = hist[k], left = k > 0 ? hist[k - 1] : -1, right = k + 1 < bins ? hist[k + 1] : -1;
        if (peaks > 0 && h < valley)
            valley = h;
        /* plateau: count its first bin only */
        int is_max = h >= min_height * top && h > left && h >= right;
        if (!is_max)
            continue;
        if (peaks == 0) {
            peaks = 1;
        } else if (valley < max_valley * SAE_MIN(last_peak, h)) {
            peaks++;
        } else if (h <= last_peak) {
            continue; /* a shoulder of the previous peak */
        }
        last_peak = h;
        valley = INFINITY;
    }
    return peaks;
}

float sae_metrics_kth_largest(float *v, int64_t n, int64_t k)
{
    int64_t lo = 0, hi = n - 1;
    while (lo < hi) {
        /* median of three as pivot; descending partition (Hoare) */
        int64_t mid = lo + (hi - lo) / 2;
        float a = v[lo], b = v[mid], c = v[hi];
        float pivot = (a > b) ? ((b > c) ? b : (a > c ? c : a)) : ((a > c) ? a : (b > c ? c : b));
        int64_t i = lo, j = hi;
        while (i <= j) {
            while (v[i] > pivot)
                i++;
            while (v[j] < pivot)
                j--;
            if (i <= j) {
                float t = v[i];
                v[i] = v[j];
                v[j] = t;
                i++;
                j--;
            }
        }
        if (k <= j)
            hi = j;
        else if (k >= i)
            lo = i;
        else
            return v[k];
    }
    return v[k];
}
