/* Firing models: which features are active in a sample. */
#include "toy_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- independent Bernoulli, bucketed geometric skipping ------------------------ */

#define TOY_MAX_BUCKETS 64

/* Bucket of probability p > 0: b with p in (2^-(b+1), 2^-b]; the last bucket takes
 * everything below 2^-63 (the acceptance test keeps it exact). */
static int32_t bucket_of(double p)
{
    int e;
    double m = frexp(p, &e); /* p = m * 2^e, m in [0.5, 1) */
    int32_t b = m == 0.5 ? -e + 1 : -e;
    return b < 0 ? 0 : b >= TOY_MAX_BUCKETS ? TOY_MAX_BUCKETS - 1 : b;
}

void sae_toy_bernoulli_free(const sae_alloc *al, toy_bernoulli *b)
{
    sae_free(al, b->ptr);
    sae_free(al, b->feat);
    sae_free(al, b->q);
    sae_free(al, b->inv_log1mq);
    memset(b, 0, sizeof *b);
}

/* Build the buckets for the features in `feat` (ascending) with probabilities p[feat]. */
int32_t sae_toy_bernoulli_build(const sae_alloc *al, toy_bernoulli *b, const double *p,
                                const int32_t *feat, int64_t n_feat)
{
    int64_t count[TOY_MAX_BUCKETS] = {0};
    for (int64_t i = 0; i < n_feat; i++)
        if (p[feat[i]] > 0)
            count[bucket_of(p[feat[i]])]++;
    int32_t nb = 0;
    for (int32_t k = 0; k < TOY_MAX_BUCKETS; k++)
        nb += count[k] > 0;
    b->n_buckets = nb;
    b->ptr = sae_calloc(al, (size_t)nb + 1, sizeof *b->ptr);
    b->feat = sae_malloc(al, (size_t)SAE_MAX(n_feat, 1) * sizeof *b->feat);
    b->q = sae_calloc(al, (size_t)SAE_MAX(nb, 1), sizeof *b->q);
    b->inv_log1mq = sae_calloc(al, (size_t)SAE_MAX(nb, 1), sizeof *b->inv_log1mq);
    if (!b->ptr || !b->feat || !b->q || !b->inv_log1mq) {
        sae_toy_bernoulli_free(al, b);
        return SAE_E_NOMEM;
    }
    int32_t slot_of[TOY_MAX_BUCKETS];
    int64_t fill[TOY_MAX_BUCKETS];
    for (int32_t k = 0, s = 0; k < TOY_MAX_BUCKETS; k++)
        if (count[k] > 0) {
            slot_of[k] = s;
            b->ptr[s + 1] = b->ptr[s] + count[k];
            fill[s] = b->ptr[s];
            s++;
        }
    for (int64_t i = 0; i < n_feat; i++) {
        double pj = p[feat[i]];
        if (pj <= 0)
            continue;
        int32_t s = slot_of[bucket_of(pj)];
        b->feat[fill[s]++] = feat[i];
        b->q[s] = SAE_MAX(b->q[s], pj);
    }
    for (int32_t s = 0; s < nb; s++)
        b->inv_log1mq[s] = b->q[s] >= 1 ? 0 : 1.0 / log1p(-b->q[s]);
    return SAE_OK;
}

/* Append to out the features of b that fire; returns the new count. Number of failures
 * before the next candidate: floor(log(U) / log(1 - q)) (geometric distribution). */
int64_t sae_toy_bernoulli_draw(const toy_bernoulli *b, const double *p, sae_rng *r,
                               int32_t *out, int64_t k)
{
    for (int32_t s = 0; s < b->n_buckets; s++) {
        const int64_t end = b->ptr[s + 1];
        const double q = b->q[s], il = b->inv_log1mq[s];
        for (int64_t pos = b->ptr[s];; pos++) {
            if (il != 0) {
                double u = 1.0 - sae_rng_uniform(r); /* (0, 1] */
                double skip = floor(log(u) * il);
                if (!(skip < (double)(end - pos))) /* also NaN/inf from q near 0 */
                    break;
                pos += (int64_t)skip;
            }
            if (pos >= end)
                break;
            int32_t j = b->feat[pos];
            if (p[j] >= q || sae_rng_uniform(r) * q < p[j])
                out[k++] = j;
        }
    }
    return k;
}

/* ---- sorting the active list -------------------------------------------------- */

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

void sae_toy_sort_i32(int32_t *v, int64_t k)
{
    if (k > 32) {
        qsort(v, (size_t)k, sizeof *v, cmp_i32);
        return;
    }
    for (int64_t i = 1; i < k; i++) {
        int32_t x = v[i];
        int64_t j = i;
        for (; j > 0 && v[j - 1] > x; j--)
            v[j] = v[j - 1];
        v[j] = x;
    }
}

/* ---- groups (sets, combinations, children) ---------------------------------- */

static void groups_free(const sae_alloc *al, toy_groups *g)
{
    sae_free(al, g->ptr);
    sae_free(al, g->feat);
    sae_free(al, g->cum);
    g->ptr = NULL, g->feat = NULL, g->cum = NULL, g->n = 0;
}

/* Groups from a label per feature (label[j] in [0, n_labels) or -1): group g holds the
 * features labelled g, ascending; cum accumulates p over each group. */
static int32_t groups_from_labels(const sae_alloc *al, toy_groups *g, const int64_t *label,
                                  int64_t n, int64_t n_labels, const double *p)
{
    g->n = n_labels;
    g->ptr = sae_calloc(al, (size_t)n_labels + 1, sizeof *g->ptr);
    g->feat = sae_malloc(al, (size_t)n * sizeof *g->feat);
    g->cum = sae_malloc(al, (size_t)n * sizeof *g->cum);
    if (!g->ptr || !g->feat || !g->cum)
        return SAE_E_NOMEM;
    for (int64_t j = 0; j < n; j++)
        if (label[j] >= 0)
            g->ptr[label[j] + 1]++;
    for (int64_t l = 0; l < n_labels; l++)
        g->ptr[l + 1] += g->ptr[l];
    for (int64_t j = 0; j < n; j++)
        if (label[j] >= 0) {
            int64_t pos = g->ptr[label[j]]++;
            g->feat[pos] = (int32_t)j;
        }
    for (int64_t l = n_labels; l > 0; l--) /* undo the shift of the fill */
        g->ptr[l] = g->ptr[l - 1];
    g->ptr[0] = 0;
    for (int64_t l = 0; l < n_labels; l++) {
        double run = 0;
        for (int64_t a = g->ptr[l]; a < g->ptr[l + 1]; a++)
            g->cum[a] = run += p[g->feat[a]];
    }
    return SAE_OK;
}

/* Sets present among labels: map sparse set ids to 0..count-1 in place (-1 stays). */
static int64_t compact_labels(int64_t *label, int64_t n, int64_t *map)
{
    int64_t count = 0;
    for (int64_t j = 0; j < n; j++)
        map[j] = -1;
    for (int64_t j = 0; j < n; j++)
        if (label[j] >= 0 && map[label[j]] < 0)
            map[label[j]] = 0;
    for (int64_t j = 0; j < n; j++)
        if (map[j] == 0)
            map[j] = count++ + 1;
    for (int64_t j = 0; j < n; j++)
        if (label[j] >= 0)
            label[j] = map[label[j]] - 1;
    return count;
}

static int32_t combos_build(sae_toy *t)
{
    int64_t len, nq;
    const int64_t *v = sae_cfg_i64_array(t->cfg, SAE_TOY_COMBOS, &len);
    const double *q = sae_cfg_f64_array(t->cfg, SAE_TOY_COMBO_PROBS, &nq);
    toy_groups *g = &t->fire.combos;
    g->n = sae_toy_count_groups(v, len);
    if (g->n == 0)
        return SAE_OK;
    g->ptr = sae_calloc(&t->alloc, (size_t)g->n + 1, sizeof *g->ptr);
    g->feat = sae_malloc(&t->alloc, (size_t)len * sizeof *g->feat);
    t->fire.combo_q = sae_malloc(&t->alloc, (size_t)g->n * sizeof *t->fire.combo_q);
    if (!g->ptr || !g->feat || !t->fire.combo_q)
        return SAE_E_NOMEM;
    int64_t c = 0, pos = 0;
    for (int64_t i = 0; i < len; i++) {
        if (v[i] >= 0)
            g->feat[pos++] = (int32_t)v[i];
        if ((v[i] < 0 || i == len - 1) && pos > g->ptr[c])
            g->ptr[++c] = pos;
    }
    for (c = 0; c < g->n; c++)
        t->fire.combo_q[c] = nq == 1 ? q[0] : q[c];
    return SAE_OK;
}

/* ---- marginal probabilities ------------------------------------------------- */

/* P(no correlated feature fires), estimated on draws of a private domain (there is no
 * closed form for the orthant probability of a general C); -1 when out of memory. */
static double copula_p_none(const sae_toy *t)
{
    const toy_copula *cp = &t->fire.copula;
    int64_t draws = SAE_MAX(1024, SAE_MIN(65536, (INT64_C(1) << 28) / (cp->m * cp->m + 1)));
    double *e = sae_malloc(&t->alloc, (size_t)cp->m * sizeof *e);
    int32_t *out = sae_malloc(&t->alloc, (size_t)cp->m * sizeof *out);
    int64_t none = 0;
    if (e && out)
        for (int64_t i = 0; i < draws; i++) {
            sae_rng r;
            sae_rng_init(&r, t->seed, (uint64_t)i, TOY_STREAM_COPULA + TOY_DOMAIN_SCALE);
            none += sae_toy_copula_draw(cp, &t->zig, &r, e, out, 0) == 0;
        }
    sae_free(&t->alloc, e);
    sae_free(&t->alloc, out);
    return e && out ? (double)none / (double)draws : -1;
}

static void marginals(sae_toy *t, const int8_t *role)
{
    toy_firing *f = &t->fire;
    double *m = t->marginal, p_empty = 1;
    for (int64_t j = 0; j < t->n; j++) {
        m[j] = role[j] == 1 ? 0 : f->p[j];
        if (role[j] == 0)
            p_empty *= 1 - f->p[j];
    }
    for (int64_t s = 0; s < f->sets.n; s++) {
        double total = f->sets.cum[f->sets.ptr[s + 1] - 1];
        if (f->set_mode == SAE_TOY_EXACTLY_ONE)
            for (int64_t a = f->sets.ptr[s]; a < f->sets.ptr[s + 1]; a++)
                m[f->sets.feat[a]] = f->p[f->sets.feat[a]] / total;
        p_empty *= f->set_mode == SAE_TOY_EXACTLY_ONE ? 0 : SAE_MAX(0.0, 1 - total);
    }
    for (int64_t c = 0; c < f->combos.n; c++) {
        for (int64_t a = f->combos.ptr[c]; a < f->combos.ptr[c + 1]; a++)
            m[f->combos.feat[a]] = 1 - (1 - m[f->combos.feat[a]]) * (1 - f->combo_q[c]);
        p_empty *= 1 - f->combo_q[c];
    }
    if (f->copula.m > 0) {
        double none = copula_p_none(t);
        p_empty = none < 0 ? -1 : p_empty * none;
    }
    /* children after their parents: walk down from every root (depth-first, explicit
     * stack in the active-size scratch) */
    if (f->has_tree) {
        int32_t *stack = sae_malloc(&t->alloc, (size_t)t->n * sizeof *stack);
        int64_t top = 0;
        for (int64_t j = 0; stack && j < t->n; j++) {
            if (role[j] == 1)
                continue;
            stack[top++] = (int32_t)j;
            while (top > 0) {
                int32_t u = stack[--top];
                const toy_groups *ch = &f->children;
                double total = ch->ptr[u + 1] > ch->ptr[u] ? ch->cum[ch->ptr[u + 1] - 1] : 0;
                for (int64_t a = ch->ptr[u]; a < ch->ptr[u + 1]; a++) {
                    int32_t c = ch->feat[a];
                    double cond = f->sibling_mode == SAE_TOY_EXACTLY_ONE ? f->p[c] / total : f->p[c];
                    m[c] = m[u] * cond;
                    stack[top++] = c;
                }
            }
        }
        sae_free(&t->alloc, stack);
    }
    f->p_empty = p_empty;
    if (f->min_one && p_empty >= 0 && p_empty < 1)
        for (int64_t j = 0; j < t->n; j++)
            m[j] /= 1 - p_empty;
}

/* ---- the firing model ------------------------------------------------------------ */

/* role of each feature: 0 independent root, 1 child, 2 member of a set, 3 correlated */
static int32_t roles_and_structure(sae_toy *t, int8_t *role, int64_t *label, int64_t *map)
{
    toy_firing *f = &t->fire;
    int64_t n = t->n, len;
    memset(role, 0, (size_t)n);
    const int64_t *parents = sae_cfg_i64_array(t->cfg, SAE_TOY_PARENTS, &len);
    f->sibling_mode = (int32_t)sae_cfg_i64(t->cfg, SAE_TOY_SIBLINGS);
    f->has_tree = len == n;
    int32_t st = SAE_OK;
    if (f->has_tree) {
        for (int64_t j = 0; j < n; j++)
            role[j] = parents[j] >= 0 ? 1 : 0;
        st = groups_from_labels(&t->alloc, &f->children, parents, n, n, f->p);
        if (st != SAE_OK)
            return st;
    }
    const int64_t *sets = sae_cfg_i64_array(t->cfg, SAE_TOY_SET_IDS, &len);
    f->set_mode = (int32_t)sae_cfg_i64(t->cfg, SAE_TOY_SET_MODE);
    if (len == n) {
        memcpy(label, sets, (size_t)n * sizeof *label);
        int64_t count = compact_labels(label, n, map);
        for (int64_t j = 0; j < n; j++)
            if (label[j] >= 0)
                role[j] = 2;
        st = groups_from_labels(&t->alloc, &f->sets, label, n, count, f->p);
        if (st != SAE_OK)
            return st;
    }
    int64_t nc, nf;
    const double *C = sae_cfg_f64_array(t->cfg, SAE_TOY_CORR, &nc);
    const int64_t *cf = sae_cfg_i64_array(t->cfg, SAE_TOY_CORR_FEATURES, &nf);
    if (nc > 0) {
        int64_t m = (int64_t)llround(sqrt((double)nc));
        st = sae_toy_copula_build(t, C, nf > 0 ? cf : NULL, m, sae_cfg_f64(t->cfg, SAE_TOY_CORR_TOL));
        if (st != SAE_OK)
            return st;
        for (int64_t i = 0; i < m; i++)
            role[f->copula.feat[i]] = 3;
    }
    return combos_build(t);
}

int32_t sae_toy_firing_build(sae_toy *t)
{
    toy_firing *f = &t->fire;
    f->p = sae_calloc(&t->alloc, (size_t)t->n, sizeof *f->p);
    int8_t *role = sae_malloc(&t->alloc, (size_t)t->n);
    int64_t *label = sae_malloc(&t->alloc, (size_t)t->n * sizeof *label);
    int64_t *map = sae_malloc(&t->alloc, (size_t)t->n * sizeof *map);
    int32_t *indep = sae_malloc(&t->alloc, (size_t)t->n * sizeof *indep);
    int32_t st = SAE_E_NOMEM;
    if (f->p && role && label && map && indep) {
        sae_toy_base_probs(t->cfg, t->n, f->p);
        f->min_one = (int32_t)sae_cfg_i64(t->cfg, SAE_TOY_MIN_ONE_ACTIVE);
        st = roles_and_structure(t, role, label, map);
    }
    if (st == SAE_OK) {
        int64_t n_indep = 0;
        for (int64_t j = 0; j < t->n; j++)
            if (role[j] == 0)
                indep[n_indep++] = (int32_t)j;
        st = sae_toy_bernoulli_build(&t->alloc, &f->indep, f->p, indep, n_indep);
    }
    if (st == SAE_OK)
        marginals(t, role);
    sae_free(&t->alloc, role);
    sae_free(&t->alloc, label);
    sae_free(&t->alloc, map);
    sae_free(&t->alloc, indep);
    return st;
}

void sae_toy_firing_free(sae_toy *t)
{
    toy_firing *f = &t->fire;
    sae_free(&t->alloc, f->p);
    f->p = NULL;
    sae_toy_bernoulli_free(&t->alloc, &f->indep);
    groups_free(&t->alloc, &f->sets);
    groups_free(&t->alloc, &f->combos);
    groups_free(&t->alloc, &f->children);
    sae_free(&t->alloc, f->combo_q);
    f->combo_q = NULL;
    sae_toy_copula_free(t);
}

/* ---- drawing one sample ---------------------------------------------------------- */

static double cum_total(const toy_groups *g, int64_t i)
{
    return g->ptr[i + 1] > g->ptr[i] ? g->cum[g->ptr[i + 1] - 1] : 0;
}

/* Index of the member whose cumulative interval holds u, or -1 when u is past the end. */
static int64_t pick(const double *cum, int64_t lo, int64_t hi, double u)
{
    if (hi <= lo || u >= cum[hi - 1])
        return -1;
    int64_t a = lo, b = hi - 1; /* the answer is in [a, b] */
    while (a < b) {
        int64_t mid = a + (b - a) / 2;
        if (u < cum[mid])
            b = mid;
        else
            a = mid + 1;
    }
    return a;
}

/* One member of group g under an exclusivity rule, or -1. */
static int32_t exclusive_draw(const toy_groups *g, int64_t i, int32_t mode, sae_rng *r)
{
    int64_t lo = g->ptr[i], hi = g->ptr[i + 1];
    double u = sae_rng_uniform(r);
    if (mode == SAE_TOY_EXACTLY_ONE)
        u *= cum_total(g, i);
    int64_t a = pick(g->cum, lo, hi, u);
    return a < 0 ? -1 : g->feat[a];
}

static int64_t draw_sets(const toy_firing *f, sae_rng *r, int32_t *out, int64_t k)
{
    for (int64_t s = 0; s < f->sets.n; s++) {
        int32_t j = exclusive_draw(&f->sets, s, f->set_mode, r);
        if (j >= 0)
            out[k++] = j;
    }
    return k;
}

static int64_t draw_combos(const toy_firing *f, sae_rng *r, int32_t *out, int64_t k)
{
    for (int64_t c = 0; c < f->combos.n; c++)
        if (sae_rng_uniform(r) < f->combo_q[c])
            for (int64_t a = f->combos.ptr[c]; a < f->combos.ptr[c + 1]; a++)
                out[k++] = f->combos.feat[a];
    return k;
}

static int64_t unique_sorted(int32_t *v, int64_t k)
{
    int64_t w = 0;
    for (int64_t i = 0; i < k; i++)
        if (w == 0 || v[w - 1] != v[i])
            v[w++] = v[i];
    return w;
}

/* Children of every active feature, appended breadth first (each feature has one
 * parent, so nothing is added twice). */
static int64_t draw_children(const toy_firing *f, sae_rng *r, int32_t *out, int64_t k)
{
    const toy_groups *ch = &f->children;
    for (int64_t a = 0; a < k; a++) {
        int32_t u = out[a];
        if (ch->ptr[u + 1] == ch->ptr[u])
            continue;
        if (f->sibling_mode != SAE_TOY_INDEPENDENT) {
            int32_t c = exclusive_draw(ch, u, f->sibling_mode, r);
            if (c >= 0)
                out[k++] = c;
            continue;
        }
        for (int64_t b = ch->ptr[u]; b < ch->ptr[u + 1]; b++)
            if (sae_rng_uniform(r) < f->p[ch->feat[b]])
                out[k++] = ch->feat[b];
    }
    return k;
}

/* Redraws of an empty sample under min_one_active before giving up (the validator
 * guarantees a non-empty sample has positive probability). */
#define TOY_MAX_REDRAWS (1 << 20)

int64_t sae_toy_fire(const sae_toy *t, uint64_t index, uint32_t domain, toy_scratch *s)
{
    const toy_firing *f = &t->fire;
    sae_rng r, rs, rc, rb, rt;
    sae_rng_init(&r, t->seed, index, SAE_STREAM_FIRING + domain);
    sae_rng_init(&rs, t->seed, index, TOY_STREAM_SETS + domain);
    sae_rng_init(&rc, t->seed, index, TOY_STREAM_COPULA + domain);
    sae_rng_init(&rb, t->seed, index, SAE_STREAM_COMBO + domain);
    sae_rng_init(&rt, t->seed, index, TOY_STREAM_TREE + domain);
    int32_t *out = s->active;
    int64_t k = 0;
    for (int64_t attempt = 0; attempt < TOY_MAX_REDRAWS; attempt++) {
        k = sae_toy_bernoulli_draw(&f->indep, f->p, &r, out, 0);
        k = draw_sets(f, &rs, out, k);
        if (f->copula.m > 0)
            k = sae_toy_copula_draw(&f->copula, &t->zig, &rc, s->e, out, k);
        if (f->combos.n > 0) {
            k = draw_combos(f, &rb, out, k);
            sae_toy_sort_i32(out, k);
            k = unique_sorted(out, k);
        }
        if (f->has_tree)
            k = draw_children(f, &rt, out, k);
        if (k > 0 || !f->min_one)
            break;
    }
    sae_toy_sort_i32(out, k);
    return k;
}
