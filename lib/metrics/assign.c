/*
 * Exact maximum-weight one-to-one matching (rectangular linear assignment).
 *
 * Successive shortest augmenting paths with row/column potentials (the Hungarian method
 * in the Jonker-Volgenant form, Dijkstra with a binary heap) on a SPARSE candidate graph:
 * each row's top-k columns plus edges added on demand. Optimality on the full dense
 * matrix is then proved by LP duality: with cost c = -score, potentials u (rows) and
 * v <= 0 (columns, negative only on matched columns), every pair must have reduced cost
 * c_ij - u_i - v_j >= -tol. Pairs that violate it join the candidate graph and the
 * problem is solved again; when none is left the matching is optimal within
 * n_rows * tol of the dense optimum. Unreachable rows double k.
 */
#include "metrics_internal.h"

#include <string.h>

#define LAP_TOL 1e-9
#define LAP_K0 8
#define LAP_VIOLATORS 8

typedef struct heap {
    double *key;
    int32_t *val;
    int64_t n, cap;
} heap;

static void heap_push(heap *h, double key, int32_t val)
{
    int64_t i = h->n++;
    while (i > 0) {
        int64_t p = (i - 1) / 2;
        if (h->key[p] <= key)
            break;
        h->key[i] = h->key[p];
        h->val[i] = h->val[p];
        i = p;
    }
    h->key[i] = key;
    h->val[i] = val;
}

static void heap_pop(heap *h, double *key, int32_t *val)
{
    *key = h->key[0];
    *val = h->val[0];
    double k = h->key[--h->n];
    int32_t v = h->val[h->n];
    int64_t i = 0;
    for (;;) {
        int64_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && h->key[c + 1] < h->key[c])
            c++;
        if (h->key[c] >= k)
            break;
        h->key[i] = h->key[c];
        h->val[i] = h->val[c];
        i = c;
    }
    h->key[i] = k;
    h->val[i] = v;
}

typedef struct lap {
    const sae_alloc *al;
    const float *s;
    int64_t n, m, rs, cs; /* n <= m */
    int64_t k;            /* top-k columns per row */
    int threads;
    int32_t *topk;        /* n x k */
    int32_t *xrow, *xcol; /* extra edges */
    int64_t nx, capx;
    int64_t *start;       /* CSR of the candidate graph */
    int32_t *col;
    double *u, *v, *dist;
    int32_t *pred, *row_of_col, *col_of_row, *touched, *final;
    uint8_t *state; /* 0 unseen, 1 tentative, 2 final */
    heap h;
} lap;

static double cost(const lap *p, int64_t i, int64_t j)
{
    return -(double)p->s[i * p->rs + j * p->cs];
}

static int32_t select_topk(lap *p)
{
    sae_free(p->al, p->topk);
    p->topk = sae_malloc(p->al, (size_t)(p->n * p->k) * sizeof *p->topk);
    double *keys = sae_malloc(p->al, (size_t)(p->k * p->threads) * sizeof *keys);
    if (p->topk == NULL || keys == NULL) {
        sae_free(p->al, keys);
        return SAE_E_NOMEM;
    }
    SAE_M_PARALLEL_FOR(p->threads)
    for (int64_t i = 0; i < p->n; i++) {
        double *key = keys + (int64_t)SAE_M_THREAD() * p->k;
        int64_t cnt = 0, first = (i * p->k) % p->m;
        int32_t *idx = p->topk + i * p->k;
        /* Ties keep the first column scanned; starting each row at a different column
         * spreads tied candidates (e.g. an all-zero matrix) over distinct columns, so the
         * candidate graph has a perfect matching instead of n rows sharing k columns. */
        for (int64_t t = 0; t < p->m; t++) {
            int64_t j = first + t < p->m ? first + t : first + t - p->m;
            sae_metrics_keep_top(key, idx, &cnt, p->k, -cost(p, i, j), (int32_t)j);
        }
    }
    sae_free(p->al, keys);
    return SAE_OK;
}

static int32_t add_extra(lap *p, int32_t i, int32_t j)
{
    if (p->nx == p->capx) {
        int64_t cap = p->capx ? 2 * p->capx : 1024;
        int32_t *r = sae_malloc(p->al, (size_t)cap * sizeof *r);
        int32_t *c = sae_malloc(p->al, (size_t)cap * sizeof *c);
        if (r == NULL || c == NULL) {
            sae_free(p->al, r);
            sae_free(p->al, c);
            return SAE_E_NOMEM;
        }
        if (p->nx) {
            memcpy(r, p->xrow, (size_t)p->nx * sizeof *r);
            memcpy(c, p->xcol, (size_t)p->nx * sizeof *c);
        }
        sae_free(p->al, p->xrow);
        sae_free(p->al, p->xcol);
        p->xrow = r;
        p->xcol = c;
        p->capx = cap;
    }
    p->xrow[p->nx] = i;
    p->xcol[p->nx++] = j;
    return SAE_OK;
}

static int32_t build_graph(lap *p)
{
    int64_t e = p->n * p->k + p->nx;
    sae_free(p->al, p->start);
    sae_free(p->al, p->col);
    sae_free(p->al, p->h.key);
    sae_free(p->al, p->h.val);
    p->start = sae_calloc(p->al, (size_t)(p->n + 1), sizeof *p->start);
    p->col = sae_malloc(p->al, (size_t)e * sizeof *p->col);
    p->h.key = sae_malloc(p->al, (size_t)(e + 1) * sizeof *p->h.key);
    p->h.val = sae_malloc(p->al, (size_t)(e + 1) * sizeof *p->h.val);
    p->h.cap = e + 1;
    if (!p->start || !p->col || !p->h.key || !p->h.val)
        return SAE_E_NOMEM;
    for (int64_t x = 0; x < p->nx; x++)
        p->start[p->xrow[x] + 1]++;
    for (int64_t i = 0; i < p->n; i++)
        p->start[i + 1] += p->start[i] + p->k;
    for (int64_t i = 0; i < p->n; i++)
        memcpy(p->col + p->start[i], p->topk + i * p->k, (size_t)p->k * sizeof *p->col);
    /* extras after each row's top-k: fill from the back of each row's range */
    int64_t *fill = sae_malloc(p->al, (size_t)p->n * sizeof *fill);
    if (fill == NULL)
        return SAE_E_NOMEM;
    for (int64_t i = 0; i < p->n; i++)
        fill[i] = p->start[i] + p->k;
    for (int64_t x = 0; x < p->nx; x++)
        p->col[fill[p->xrow[x]]++] = p->xcol[x];
    sae_free(p->al, fill);
    return SAE_OK;
}

static void relax_row(lap *p, int32_t i, double di, int64_t *n_touched)
{
    for (int64_t e = p->start[i]; e < p->start[i + 1]; e++) {
        int32_t j = p->col[e];
        if (p->state[j] == 2)
            continue;
        double nd = di + cost(p, i, j) - p->u[i] - p->v[j];
        if (nd < di)
            nd = di; /* reduced costs are >= 0 up to rounding */
        if (p->state[j] == 0 || nd < p->dist[j]) {
            if (p->state[j] == 0)
                p->touched[(*n_touched)++] = j;
            p->state[j] = 1;
            p->dist[j] = nd;
            p->pred[j] = i;
            heap_push(&p->h, nd, j);
        }
    }
}

/* Dijkstra from free row s to the nearest free column, then potentials and augmentation.
 * Returns 0, or 1 when no free column is reachable in the candidate graph. */
static int augment(lap *p, int32_t s)
{
    double us = INFINITY;
    for (int64_t e = p->start[s]; e < p->start[s + 1]; e++)
        us = SAE_MIN(us, cost(p, s, p->col[e]) - p->v[p->col[e]]);
    if (!(us < INFINITY))
        return 1;
    p->u[s] = us;
    int64_t n_touched = 0, n_final = 0;
    p->h.n = 0;
    relax_row(p, s, 0.0, &n_touched);
    int32_t target = -1;
    while (p->h.n > 0) {
        double dj;
        int32_t j;
        heap_pop(&p->h, &dj, &j);
        if (p->state[j] == 2 || dj > p->dist[j])
            continue;
        p->state[j] = 2;
        p->final[n_final++] = j;
        if (p->row_of_col[j] < 0) {
            target = j;
            break;
        }
        relax_row(p, p->row_of_col[j], dj, &n_touched);
    }
    int ok = target >= 0;
    if (ok) {
        double big_d = p->dist[target];
        p->u[s] += big_d;
        for (int64_t f = 0; f < n_final; f++) {
            int32_t j = p->final[f];
            if (j == target)
                continue;
            double delta = big_d - p->dist[j];
            p->u[p->row_of_col[j]] += delta;
            p->v[j] -= delta;
        }
        for (int32_t j = target;;) {
            int32_t i = p->pred[j], next = p->col_of_row[i];
            p->col_of_row[i] = j;
            p->row_of_col[j] = i;
            if (i == s)
                break;
            j = next;
        }
    }
    for (int64_t t = 0; t < n_touched; t++)
        p->state[p->touched[t]] = 0;
    return ok ? 0 : 1;
}

/* Solve on the current graph; 1 = some row could not be matched. */
static int solve_sparse(lap *p)
{
    for (int64_t i = 0; i < p->n; i++) {
        p->u[i] = 0;
        p->col_of_row[i] = -1;
    }
    for (int64_t j = 0; j < p->m; j++) {
        p->v[j] = 0;
        p->row_of_col[j] = -1;
        p->state[j] = 0;
    }
    for (int64_t i = 0; i < p->n; i++)
        if (augment(p, (int32_t)i))
            return 1;
    return 0;
}

/* Dense dual check: the most negative reduced cost of each row and up to LAP_VIOLATORS
 * most violated pairs per row (scanned in parallel, added in row order). */
static int32_t verify(lap *p, double *min_reduced, int64_t *n_added)
{
    double *worst = sae_malloc(p->al, (size_t)p->n * sizeof *worst);
    double *keys = sae_malloc(p->al, (size_t)(p->n * LAP_VIOLATORS) * sizeof *keys);
    int32_t *idx = sae_malloc(p->al, (size_t)(p->n * LAP_VIOLATORS) * sizeof *idx);
    int64_t *cnt = sae_malloc(p->al, (size_t)p->n * sizeof *cnt);
    int32_t st = (worst && keys && idx && cnt) ? SAE_OK : SAE_E_NOMEM;
    if (st == SAE_OK) {
        SAE_M_PARALLEL_FOR(p->threads)
        for (int64_t i = 0; i < p->n; i++) {
            double ui = p->u[i], w = INFINITY;
            cnt[i] = 0;
            for (int64_t j = 0; j < p->m; j++) {
                double r = cost(p, i, j) - ui - p->v[j];
                w = r < w ? r : w;
                if (r < -LAP_TOL)
                    sae_metrics_keep_top(keys + i * LAP_VIOLATORS, idx + i * LAP_VIOLATORS,
                                         &cnt[i], LAP_VIOLATORS, -r, (int32_t)j);
            }
            worst[i] = w;
        }
    }
    *n_added = 0;
    *min_reduced = INFINITY;
    for (int64_t i = 0; st == SAE_OK && i < p->n; i++) {
        *min_reduced = SAE_MIN(*min_reduced, worst[i]);
        for (int64_t c = 0; st == SAE_OK && c < cnt[i]; c++)
            st = add_extra(p, (int32_t)i, idx[i * LAP_VIOLATORS + c]);
        *n_added += cnt[i];
    }
    sae_free(p->al, worst);
    sae_free(p->al, keys);
    sae_free(p->al, idx);
    sae_free(p->al, cnt);
    return st;
}

static void lap_free(lap *p)
{
    void *ptrs[] = {p->topk, p->xrow, p->xcol, p->start, p->col, p->u, p->v, p->dist,
                    p->pred, p->row_of_col, p->col_of_row, p->touched, p->final, p->state,
                    p->h.key, p->h.val};
    for (size_t k = 0; k < sizeof ptrs / sizeof ptrs[0]; k++)
        sae_free(p->al, ptrs[k]);
}

static int32_t lap_alloc(lap *p)
{
    const sae_alloc *al = p->al;
    p->u = sae_malloc(al, (size_t)p->n * sizeof(double));
    p->v = sae_malloc(al, (size_t)p->m * sizeof(double));
    p->dist = sae_malloc(al, (size_t)p->m * sizeof(double));
    p->pred = sae_malloc(al, (size_t)p->m * sizeof(int32_t));
    p->row_of_col = sae_malloc(al, (size_t)p->m * sizeof(int32_t));
    p->col_of_row = sae_malloc(al, (size_t)p->n * sizeof(int32_t));
    p->touched = sae_malloc(al, (size_t)p->m * sizeof(int32_t));
    p->final = sae_malloc(al, (size_t)p->m * sizeof(int32_t));
    p->state = sae_malloc(al, (size_t)p->m);
    if (!p->u || !p->v || !p->dist || !p->pred || !p->row_of_col || !p->col_of_row ||
        !p->touched || !p->final || !p->state)
        return SAE_E_NOMEM;
    return SAE_OK;
}

/* rows <= cols case. */
static int32_t lap_tall(lap *p, double *min_reduced)
{
    int32_t st = lap_alloc(p);
    p->k = SAE_MIN(p->m, LAP_K0);
    if (st == SAE_OK)
        st = select_topk(p);
    while (st == SAE_OK) {
        st = build_graph(p);
        if (st != SAE_OK)
            break;
        if (solve_sparse(p)) {
            /* Hall's condition fails on the graph: widen every row. */
            p->k = SAE_MIN(p->m, 2 * p->k);
            st = select_topk(p);
            continue;
        }
        int64_t added = 0;
        st = verify(p, min_reduced, &added);
        if (st != SAE_OK || added == 0)
            break;
    }
    return st;
}

int32_t sae_lap_max(const sae_alloc *al, const float *s, int64_t n_rows, int64_t n_cols,
                    int64_t rs, int64_t cs, int threads, int32_t *row_match,
                    int32_t *col_match, double *total, double *min_reduced)
{
    int transposed = n_rows > n_cols;
    lap p;
    memset(&p, 0, sizeof p);
    p.al = al;
    p.threads = threads > 0 ? threads : 1;
    p.s = s;
    p.n = transposed ? n_cols : n_rows;
    p.m = transposed ? n_rows : n_cols;
    p.rs = transposed ? cs : rs;
    p.cs = transposed ? rs : cs;
    *min_reduced = 0;
    int32_t st = lap_tall(&p, min_reduced);
    if (st == SAE_OK) {
        int32_t *rm = transposed ? col_match : row_match;
        int32_t *cm = transposed ? row_match : col_match;
        double sum = 0;
        for (int64_t i = 0; i < p.n; i++) {
            rm[i] = p.col_of_row[i];
            sum += -cost(&p, i, p.col_of_row[i]);
        }
        for (int64_t j = 0; j < p.m; j++)
            cm[j] = p.row_of_col[j];
        *total = sum;
    }
    lap_free(&p);
    return st;
}
