/* Firing models: which features are active in a sample. */
#include "toy_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- per-feature probabilities ------------------------------------------------ */

static void probs_from_config(sae_toy *t)
{
    int64_t np;
    const double *given = sae_cfg_f64_array(t->cfg, SAE_TOY_FIRE_PROBS, &np);
    double p0 = sae_cfg_f64(t->cfg, SAE_TOY_FIRE_PROB);
    for (int64_t j = 0; j < t->n; j++)
        t->fire.p[j] = np == t->n ? given[j] : p0;
}

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
                if (skip >= (double)(end - pos))
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

/* ---- the firing model ------------------------------------------------------------ */

int32_t sae_toy_firing_build(sae_toy *t)
{
    t->fire.p = sae_calloc(&t->alloc, (size_t)t->n, sizeof *t->fire.p);
    int32_t *all = sae_malloc(&t->alloc, (size_t)t->n * sizeof *all);
    if (!t->fire.p || !all) {
        sae_free(&t->alloc, all);
        return SAE_E_NOMEM;
    }
    probs_from_config(t);
    for (int64_t j = 0; j < t->n; j++)
        all[j] = (int32_t)j;
    int32_t st = sae_toy_bernoulli_build(&t->alloc, &t->fire.indep, t->fire.p, all, t->n);
    sae_free(&t->alloc, all);
    if (st != SAE_OK)
        return st;
    memcpy(t->marginal, t->fire.p, (size_t)t->n * sizeof *t->marginal);
    return SAE_OK;
}

void sae_toy_firing_free(sae_toy *t)
{
    sae_free(&t->alloc, t->fire.p);
    t->fire.p = NULL;
    sae_toy_bernoulli_free(&t->alloc, &t->fire.indep);
}

int64_t sae_toy_fire(const sae_toy *t, uint64_t index, uint32_t domain, toy_scratch *s)
{
    sae_rng r;
    sae_rng_init(&r, t->seed, index, SAE_STREAM_FIRING + domain);
    int64_t k = sae_toy_bernoulli_draw(&t->fire.indep, t->fire.p, &r, s->active, 0);
    sae_toy_sort_i32(s->active, k);
    return k;
}
