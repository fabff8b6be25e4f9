/* Ground-truth dictionaries: the N true feature directions (rows of t->dict). */
#include "toy_internal.h"

#include "linalg/linalg.h"

#include <math.h>
#include <string.h>

/* Row j: i.i.d. standard normal entries from stream (seed, j, DICTIONARY), normalised.
 * The direction is uniform on the sphere (Muller 1959). A zero draw is impossible in
 * practice; it is redrawn to keep the rows unit. */
static void gaussian_row(const sae_toy *t, int64_t j, double *row)
{
    sae_rng r;
    sae_rng_init(&r, t->seed, (uint64_t)j, SAE_STREAM_DICTIONARY);
    double s;
    do {
        s = 0;
        for (int64_t k = 0; k < t->d; k++) {
            row[k] = sae_rng_normal(&r);
            s += row[k] * row[k];
        }
    } while (s < 1e-24);
    for (int64_t k = 0; k < t->d; k++)
        row[k] /= sqrt(s);
}

static void store_row(sae_toy *t, int64_t j, const double *row)
{
    for (int64_t k = 0; k < t->d; k++)
        t->dict[j * t->d + k] = (float)row[k];
}

static void load_row(const sae_toy *t, int64_t j, double *row)
{
    for (int64_t k = 0; k < t->d; k++)
        row[k] = t->dict[j * t->d + k];
}

static void dict_gaussian(sae_toy *t, double *row)
{
    for (int64_t j = 0; j < t->n; j++) {
        gaussian_row(t, j, row);
        store_row(t, j, row);
    }
}

static void dict_axes(sae_toy *t)
{
    memset(t->dict, 0, (size_t)(t->n * t->d) * sizeof *t->dict);
    for (int64_t j = 0; j < t->n; j++)
        t->dict[j * t->d + j] = 1.0f;
}

/* Remove from row its components along the unit rows basis[0..m-1] (double). */
static void project_out(double *row, const double *basis, int64_t m, int64_t d)
{
    for (int64_t i = 0; i < m; i++) {
        const double *b = basis + i * d;
        double c = 0;
        for (int64_t k = 0; k < d; k++)
            c += row[k] * b[k];
        for (int64_t k = 0; k < d; k++)
            row[k] -= c * b[k];
    }
}

static double normalise(double *row, int64_t d)
{
    double s = 0;
    for (int64_t k = 0; k < d; k++)
        s += row[k] * row[k];
    s = sqrt(s);
    for (int64_t k = 0; k < d && s > 0; k++)
        row[k] /= s;
    return s;
}

/* Gram-Schmidt on Gaussian rows (twice, for orthogonality to rounding): the rows of a
 * Haar-random orthogonal matrix (Mezzadri 2007, QR with a positive diagonal). */
static int32_t dict_rotated(sae_toy *t)
{
    double *basis = sae_malloc(&t->alloc, (size_t)(t->n * t->d) * sizeof *basis);
    if (basis == NULL)
        return SAE_E_NOMEM;
    for (int64_t j = 0; j < t->n; j++) {
        double *row = basis + j * t->d;
        gaussian_row(t, j, row);
        project_out(row, basis, j, t->d);
        project_out(row, basis, j, t->d);
        normalise(row, t->d);
        store_row(t, j, row);
    }
    sae_free(&t->alloc, basis);
    return SAE_OK;
}

static void dict_caller(sae_toy *t, double *row)
{
    int64_t len;
    const double *v = sae_cfg_f64_array(t->cfg, SAE_TOY_DICT_VALUES, &len);
    for (int64_t j = 0; j < t->n; j++) {
        memcpy(row, v + j * t->d, (size_t)t->d * sizeof *row);
        normalise(row, t->d); /* rows of norm != 1 were refused unless dict_normalize */
        store_row(t, j, row);
    }
}

/* Pair (i, j) with target cosine c: v_j <- c v_i + sqrt(1 - c^2) w, where w is the unit
 * part of v_j orthogonal to v_i. The validator guarantees v_i is never moved later. */
static void set_pair_cosine(sae_toy *t, int64_t i, int64_t j, double c, double *vi, double *vj)
{
    load_row(t, i, vi);
    load_row(t, j, vj);
    normalise(vi, t->d);
    project_out(vj, vi, 1, t->d);
    if (normalise(vj, t->d) < 1e-6) { /* v_j parallel to v_i: take any orthogonal axis */
        int64_t axis = 0;
        for (int64_t k = 1; k < t->d; k++)
            if (fabs(vi[k]) < fabs(vi[axis]))
                axis = k;
        memset(vj, 0, (size_t)t->d * sizeof *vj);
        vj[axis] = 1;
        project_out(vj, vi, 1, t->d);
        normalise(vj, t->d);
    }
    double s = sqrt(fmax(0.0, 1 - c * c));
    for (int64_t k = 0; k < t->d; k++)
        vj[k] = c * vi[k] + s * vj[k];
    store_row(t, j, vj);
}

static void apply_pairs(sae_toy *t, double *a, double *b)
{
    int64_t len, ncos;
    const int64_t *pairs = sae_cfg_i64_array(t->cfg, SAE_TOY_DICT_PAIRS, &len);
    const double *cos = sae_cfg_f64_array(t->cfg, SAE_TOY_DICT_PAIR_COS, &ncos);
    for (int64_t p = 0; p + 1 < len; p += 2)
        set_pair_cosine(t, pairs[p], pairs[p + 1], ncos == 1 ? cos[0] : cos[p / 2], a, b);
}

int32_t sae_toy_dict_build(sae_toy *t)
{
    int64_t kind = sae_cfg_i64(t->cfg, SAE_TOY_DICT);
    if (kind == SAE_TOY_DICT_SUPERPOSITION)
        return sae_toy_tms_train(t);
    double *a = sae_malloc(&t->alloc, (size_t)t->d * 2 * sizeof *a);
    if (a == NULL)
        return SAE_E_NOMEM;
    int32_t st = SAE_OK;
    if (kind == SAE_TOY_DICT_AXES)
        dict_axes(t);
    else if (kind == SAE_TOY_DICT_ROTATED)
        st = dict_rotated(t);
    else if (kind == SAE_TOY_DICT_CALLER)
        dict_caller(t, a);
    else
        dict_gaussian(t, a);
    if (st == SAE_OK)
        apply_pairs(t, a, a + t->d);
    sae_free(&t->alloc, a);
    return st;
}
