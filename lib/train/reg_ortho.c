/* Orthogonality penalty on decoder rows.
 *
 * Till (LessWrong, 2024) proposes penalising the cosine similarity of decoder directions,
 * in particular each latent's similarity to its closest neighbour; OrtSAE (Korznikov et
 * al., arXiv 2509.22033, 2025) makes it linear in the number of latents by computing it
 * inside random chunks of latents each step. Formulas and their derivation:
 * docs/regularisers.md.
 *
 * Everything works on the raw rows w_i and their inverse norms, so the normalised rows
 * u_i = w_i / |w_i| are never stored: c_ij = <w_i, w_j> inv_i inv_j, and the gradient of
 * any function of the c_ij goes through the normalisation as
 *   dP/dw_i = inv_i (g_i - <g_i, u_i> u_i),   g_i = dP/du_i.
 * Rows whose norm is (numerically) zero have inv = 0 and are left out of every sum. */
#include "train/regularisers.h"

#include <math.h>
#include <string.h>

#include "core/core.h"
#include "linalg/linalg.h"
#include "core/parallel.h"
#include "rng/rng.h"

#include <sae/train.h>

/* Rows of the cosine block computed per BLAS call in exact mode: the scratch stays
 * O(ORTHO_BLOCK * n_latents) instead of O(n_latents^2). */
#define ORTHO_BLOCK 256

typedef struct ortho_opts {
    double coeff;
    int shape, aggregate, mode, threads;
    int64_t chunk;
    double sharp_norm, sharp_e; /* log((1+e)/e) and e of the log-barrier shape */
    uint64_t seed;
} ortho_opts;

static ortho_opts ortho_read(const sae_config *cfg)
{
    ortho_opts o;
    o.coeff = sae_cfg_f64(cfg, SAE_REG_ORTHO_COEFF);
    o.shape = (int)sae_cfg_i64(cfg, SAE_REG_ORTHO_SHAPE);
    o.aggregate = (int)sae_cfg_i64(cfg, SAE_REG_ORTHO_AGGREGATE);
    o.mode = (int)sae_cfg_i64(cfg, SAE_REG_ORTHO_MODE);
    o.threads = (int)sae_cfg_i64(cfg, SAE_TRAINER_N_THREADS);
    o.chunk = sae_cfg_i64(cfg, SAE_REG_ORTHO_CHUNK);
    o.sharp_e = sae_cfg_f64(cfg, SAE_REG_ORTHO_SHARP_EPS);
    o.sharp_norm = log((1.0 + o.sharp_e) / o.sharp_e);
    o.seed = (uint64_t)sae_cfg_i64(cfg, SAE_REG_ORTHO_SEED);
    return o;
}

/* f(c) and f'(c); norm = log((1+e)/e) is passed in so the hot loop does not recompute it. */
static double shape_eval(int32_t shape, double e, double norm, double c, double *deriv)
{
    switch (shape) {
    case SAE_ORTHO_SHAPE_ABS:
        *deriv = c > 0 ? 1.0 : (c < 0 ? -1.0 : 0.0);
        return fabs(c);
    case SAE_ORTHO_SHAPE_SHARP: {
        /* log((1+e)/(1+e-c^2)) / log((1+e)/e): 0 at c = 0 and 1 at |c| = 1, about
         * c^2 / ((1+e) norm) for small c, slope 2c / ((1+e-c^2) norm) growing fastest near 1. */
        double gap = 1.0 + e - c * c;
        *deriv = 2.0 * c / (gap * norm);
        return log((1.0 + e) / gap) / norm;
    }
    default: /* SAE_ORTHO_SHAPE_SQUARE */
        *deriv = 2.0 * c;
        return c * c;
    }
}

double sae_reg_ortho_shape(int32_t shape, double sharp_eps, double c, double *deriv)
{
    return shape_eval(shape, sharp_eps, log((1.0 + sharp_eps) / sharp_eps), c, deriv);
}

static double shape_of(const ortho_opts *o, double c, double *deriv)
{
    return shape_eval(o->shape, o->sharp_e, o->sharp_norm, c, deriv);
}

/* A group of rows whose pairs are penalised together: all latents (exact mode) or one
 * chunk gathered into contiguous memory (chunked mode). map[i] is the latent index of row
 * i, i.e. the row of G it updates (NULL: identity). */
typedef struct ortho_group {
    const float *w;
    int64_t m, d, ldw;
    const float *inv;
    const int32_t *map;
} ortho_group;

static int64_t group_latent(const ortho_group *gr, int64_t i) { return gr->map ? gr->map[i] : i; }

/* g_row += alpha * (a * w_a + b * w_b), the building block of the normalised gradient. */
static void add_two_rows(float *g_row, double alpha, double a, const float *w_a, double b,
                         const float *w_b, int64_t d)
{
    for (int64_t k = 0; k < d; k++)
        g_row[k] += (float)(alpha * (a * (double)w_a[k] + b * (double)w_b[k]));
}

/* Row i of a block of cosines: f summed over j, and T_ij = f'(c_ij) inv_j / N written over
 * the cosines, so that g_i = sum_j T_ij w_j; returns <g_i, u_i> = sum_j f'(c_ij) c_ij / N. */
static double pairs_row(const ortho_opts *o, const ortho_group *gr, int64_t i, double inv_n,
                        float *crow, double *fsum)
{
    double inv_i = gr->inv[i], si = 0.0, sum = 0.0;
    for (int64_t j = 0; j < gr->m; j++) {
        double inv_j = gr->inv[j];
        if (j == i || inv_i == 0.0 || inv_j == 0.0) {
            crow[j] = 0.0f;
            continue;
        }
        double c = (double)crow[j] * inv_i * inv_j, fp;
        sum += shape_of(o, c, &fp);
        crow[j] = (float)(fp * inv_j * inv_n);
        si += fp * c * inv_n;
    }
    *fsum = sum;
    return si;
}

/* Mean over pairs: rows [r0, r0+nb) of the group, their cosines in cblk (nb x m). Rows are
 * independent (each writes its own row of cblk, gbuf and G), so they run in parallel;
 * the per-row sums are added in row order. */
static double pairs_block(const ortho_opts *o, const ortho_group *gr, int64_t r0, int64_t nb,
                          double inv_n, float *cblk, float *gbuf, float *g, int64_t ldg)
{
    double s[ORTHO_BLOCK], fsum[ORTHO_BLOCK]; /* <g_i, u_i> and sum_j f(c_ij) per row */
    SAE_FOR_THREADS(o->threads, b, nb,
                    s[b] = pairs_row(o, gr, r0 + b, inv_n, cblk + b * gr->m, &fsum[b]));
    (void)sae_gemm(0, 0, nb, gr->d, gr->m, 1.0f, cblk, gr->m, gr->w, gr->ldw, 0.0f, gbuf, gr->d);
    SAE_FOR_THREADS(o->threads, b, nb, {
        int64_t i = r0 + b;
        double inv_i = gr->inv[i];
        if (inv_i != 0.0)
            add_two_rows(g + group_latent(gr, i) * ldg, o->coeff * inv_i, 1.0, gbuf + b * gr->d,
                         -s[b] * inv_i, gr->w + i * gr->ldw, gr->d);
    });
    double sum = 0.0;
    for (int64_t b = 0; b < nb; b++)
        sum += fsum[b];
    return 0.5 * sum * inv_n; /* every pair was seen from both of its rows */
}

/* The j != i with the largest |c_ij| (the first on ties), or -1; its cosine in *c_nn. */
static int64_t nearest_of(const ortho_group *gr, int64_t i, const float *crow, double *c_nn)
{
    int64_t nn = -1;
    double inv_i = gr->inv[i], best = -1.0;
    if (inv_i == 0.0)
        return -1;
    for (int64_t j = 0; j < gr->m; j++) {
        if (j == i || gr->inv[j] == 0.0f)
            continue;
        double c = (double)crow[j] * inv_i * gr->inv[j];
        if (fabs(c) > best) {
            best = fabs(c);
            *c_nn = c;
            nn = j;
        }
    }
    return nn;
}

/* Closest neighbour. The searches run in parallel; the gradient of f(c_i,nn) reaches both
 * rows, so a latent's direction keeps moving when it is the neighbour of another, whether
 * or not it fires (Till), and those updates are applied in row order since two rows may
 * share a neighbour. */
static double nearest_block(const ortho_opts *o, const ortho_group *gr, int64_t r0, int64_t nb,
                            double inv_n, const float *cblk, float *g, int64_t ldg)
{
    int64_t nn[ORTHO_BLOCK];
    double c_nn[ORTHO_BLOCK];
    SAE_FOR_THREADS(o->threads, b, nb, nn[b] = nearest_of(gr, r0 + b, cblk + b * gr->m, &c_nn[b]));
    double sum = 0.0;
    for (int64_t b = 0; b < nb; b++) {
        if (nn[b] < 0)
            continue;
        int64_t i = r0 + b, n = nn[b];
        double fp, c = c_nn[b], inv_i = gr->inv[i], inv_n_row = gr->inv[n];
        sum += shape_of(o, c, &fp);
        double a = o->coeff * fp * inv_n;
        const float *w_i = gr->w + i * gr->ldw, *w_n = gr->w + n * gr->ldw;
        /* dc/dw_i = inv_i (u_n - c u_i),  dc/dw_n = inv_n (u_i - c u_n) */
        add_two_rows(g + group_latent(gr, i) * ldg, a * inv_i, inv_n_row, w_n, -c * inv_i, w_i,
                     gr->d);
        add_two_rows(g + group_latent(gr, n) * ldg, a * inv_n_row, inv_i, w_i, -c * inv_n_row,
                     w_n, gr->d);
    }
    return sum * inv_n;
}

/* Penalty of one group, rows in blocks of at most ORTHO_BLOCK; inv_n = 1 / denominator. */
static double group_penalty(const ortho_opts *o, const ortho_group *gr, double inv_n, float *cblk,
                            float *gbuf, float *g, int64_t ldg)
{
    double total = 0.0;
    for (int64_t r0 = 0; r0 < gr->m; r0 += ORTHO_BLOCK) {
        int64_t nb = SAE_MIN(ORTHO_BLOCK, gr->m - r0);
        (void)sae_gemm(0, 1, nb, gr->m, gr->d, 1.0f, gr->w + r0 * gr->ldw, gr->ldw, gr->w,
                       gr->ldw, 0.0f, cblk, gr->m);
        if (o->aggregate == SAE_ORTHO_AGGREGATE_NEAREST)
            total += nearest_block(o, gr, r0, nb, inv_n, cblk, g, ldg);
        else
            total += pairs_block(o, gr, r0, nb, inv_n, cblk, gbuf, g, ldg);
    }
    return total;
}

/* ---- chunking ------------------------------------------------------------ */

int64_t sae_reg_ortho_chunks(int64_t n_valid, int64_t chunk, int64_t *max_size)
{
    int64_t n_chunks = n_valid <= chunk ? 1 : (n_valid + chunk - 1) / chunk;
    if (max_size != NULL)
        *max_size = (n_valid + n_chunks - 1) / n_chunks;
    return n_chunks;
}

int64_t sae_reg_ortho_partition(const float *w, int64_t n_latents, int64_t d, int64_t ldw,
                                uint64_t seed, uint64_t step, int32_t *perm)
{
    int64_t n_valid = 0;
    for (int64_t i = 0; i < n_latents; i++)
        if (sae_reg_inverse_norm(w + i * ldw, d) != 0.0f)
            perm[n_valid++] = (int32_t)i;
    sae_rng r;
    sae_rng_init(&r, seed, step, SAE_STREAM_EXTRA);
    for (int64_t i = n_valid - 1; i > 0; i--) { /* Fisher-Yates */
        int64_t j = (int64_t)sae_rng_below(&r, (uint64_t)i + 1);
        int32_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    return n_valid;
}

void sae_reg_ortho_chunk_range(int64_t n_valid, int64_t n_chunks, int64_t c, int64_t *start,
                               int64_t *size)
{
    int64_t base = n_valid / n_chunks, extra = n_valid % n_chunks;
    *start = c * base + SAE_MIN(c, extra);
    *size = base + (c < extra);
}

/* Denominator: pairs inside chunks (mean over pairs) or usable latents (nearest). */
static double chunked_denominator(const ortho_opts *o, int64_t n_valid, int64_t n_chunks)
{
    if (o->aggregate == SAE_ORTHO_AGGREGATE_NEAREST)
        return (double)n_valid;
    double pairs = 0.0;
    for (int64_t c = 0; c < n_chunks; c++) {
        int64_t start, size;
        sae_reg_ortho_chunk_range(n_valid, n_chunks, c, &start, &size);
        pairs += 0.5 * (double)size * (double)(size - 1);
    }
    return pairs;
}

static double ortho_chunked(const ortho_opts *o, const float *w, int64_t n_latents, int64_t d,
                            int64_t ldw, uint64_t step, float *g, int64_t ldg, float *work)
{
    int64_t kc = SAE_MIN(o->chunk, n_latents);
    int32_t *perm = (int32_t *)work;
    float *inv = work + n_latents, *rows = inv + kc, *cblk = rows + kc * d, *gbuf = cblk + kc * kc;
    int64_t n_valid = sae_reg_ortho_partition(w, n_latents, d, ldw, o->seed, step, perm);
    if (n_valid < 2)
        return 0.0;
    int64_t n_chunks = sae_reg_ortho_chunks(n_valid, o->chunk, NULL);
    double denom = chunked_denominator(o, n_valid, n_chunks);
    if (denom <= 0.0)
        return 0.0;
    double total = 0.0;
    for (int64_t c = 0; c < n_chunks; c++) {
        int64_t start, size;
        sae_reg_ortho_chunk_range(n_valid, n_chunks, c, &start, &size);
        for (int64_t i = 0; i < size; i++)
            memcpy(rows + i * d, w + (int64_t)perm[start + i] * ldw, (size_t)d * sizeof(float));
        (void)sae_reg_inverse_norms(rows, size, d, d, inv);
        ortho_group gr = {rows, size, d, d, inv, perm + start};
        total += group_penalty(o, &gr, 1.0 / denom, cblk, gbuf, g, ldg);
    }
    return total;
}

static double ortho_exact(const ortho_opts *o, const float *w, int64_t n_latents, int64_t d,
                          int64_t ldw, float *g, int64_t ldg, float *work)
{
    int64_t nb = SAE_MIN(ORTHO_BLOCK, n_latents);
    float *inv = work, *cblk = inv + n_latents, *gbuf = cblk + nb * n_latents;
    int64_t n_valid = sae_reg_inverse_norms(w, n_latents, d, ldw, inv);
    if (n_valid < 2)
        return 0.0;
    double denom = o->aggregate == SAE_ORTHO_AGGREGATE_NEAREST
                       ? (double)n_valid
                       : 0.5 * (double)n_valid * (double)(n_valid - 1);
    ortho_group gr = {w, n_latents, d, ldw, inv, NULL};
    return group_penalty(o, &gr, 1.0 / denom, cblk, gbuf, g, ldg);
}

/* ---- interface ------------------------------------------------------------ */

size_t sae_reg_ortho_work_floats(const sae_config *trainer_cfg, int64_t n_latents, int64_t d)
{
    ortho_opts o = ortho_read(trainer_cfg);
    if (o.coeff == 0.0 || n_latents < 2)
        return 0;
    size_t L = (size_t)n_latents, D = (size_t)d;
    if (o.mode == SAE_ORTHO_MODE_CHUNKED) {
        size_t kc = (size_t)SAE_MIN(o.chunk, n_latents);
        return L + kc + kc * D + kc * kc + kc * D; /* perm, inv, rows, cosines, gradient */
    }
    size_t nb = (size_t)SAE_MIN(ORTHO_BLOCK, n_latents);
    return L + nb * L + nb * D; /* inv, cosine block, gradient block */
}

double sae_reg_ortho(const sae_config *trainer_cfg, const float *w, int64_t n_latents, int64_t d,
                     int64_t ldw, uint64_t step, float *g, int64_t ldg, float *work)
{
    ortho_opts o = ortho_read(trainer_cfg);
    if (o.coeff == 0.0 || n_latents < 2 || d < 1)
        return 0.0;
    double p = o.mode == SAE_ORTHO_MODE_CHUNKED
                   ? ortho_chunked(&o, w, n_latents, d, ldw, step, g, ldg, work)
                   : ortho_exact(&o, w, n_latents, d, ldw, g, ldg, work);
    return o.coeff * p;
}
