/* Private structure of the toy generator and the services its parts share.
 * lib/toy is split by concern: dictionary.c (feature directions), firing.c (which
 * features are active), magnitude.c (how strongly), sample.c (assembling x, threads),
 * toy.c (handle life cycle) and toy_params.c (parameters and their validation). */
#ifndef SAE_LIB_TOY_INTERNAL_H
#define SAE_LIB_TOY_INTERNAL_H

#include "core/core.h"
#include "rng/rng.h"

#include <sae/toy.h>

/* Independent Bernoulli firing, sampled sparsely: features are grouped into buckets of
 * similar probability (p in (2^-(b+1), 2^-b]); inside a bucket, candidates are found by
 * geometric skipping at the bucket's largest probability q and accepted with p/q >= 1/2.
 * Expected cost per sample: O(active + buckets), not O(N). */
typedef struct toy_bernoulli {
    int32_t n_buckets;
    int64_t *ptr;     /* n_buckets + 1 offsets into feat */
    int32_t *feat;    /* features of each bucket, ascending */
    double *q;        /* envelope probability of each bucket */
    double *inv_log1mq; /* 1 / log(1 - q), 0 when q == 1 (every candidate is taken) */
} toy_bernoulli;

typedef struct toy_firing {
    double *p;         /* configured probability (conditional on the parent for children) */
    toy_bernoulli indep; /* root features firing independently */
} toy_firing;

typedef struct toy_magnitude {
    int32_t model;   /* sae_toy_mag_model */
    float *lo, *hi;  /* per feature, uniform model */
} toy_magnitude;

struct sae_toy {
    sae_alloc alloc;
    sae_err err;
    sae_config *cfg; /* private copy of the configuration */
    int64_t n, d;
    uint64_t seed;
    int32_t n_threads;
    float *dict;       /* n x d, row j = direction of feature j */
    double *marginal;  /* marginal firing probability of each feature */
    toy_firing fire;
    toy_magnitude mag;
};

/* Per-thread scratch of one sampling call (allocated per call, never per sample). */
typedef struct toy_scratch {
    int32_t *active; /* capacity n */
    float *mag;      /* capacity n */
} toy_scratch;

/* Internal sample domains: user samples use domain 0; internal estimates (training of
 * the superposition model, the normalisation constant) use other domains so they never
 * coincide with the samples a user draws. Added to the stream purpose. */
#define TOY_DOMAIN_USER 0u
#define TOY_DOMAIN_TMS 0x100u
#define TOY_DOMAIN_SCALE 0x200u

/* dictionary.c */
int32_t sae_toy_dict_build(sae_toy *t);

/* firing.c */
int32_t sae_toy_bernoulli_build(const sae_alloc *al, toy_bernoulli *b, const double *p,
                                const int32_t *feat, int64_t n_feat);
void sae_toy_bernoulli_free(const sae_alloc *al, toy_bernoulli *b);
int64_t sae_toy_bernoulli_draw(const toy_bernoulli *b, const double *p, sae_rng *r,
                               int32_t *out, int64_t k);
void sae_toy_sort_i32(int32_t *v, int64_t k);
int32_t sae_toy_firing_build(sae_toy *t);
void sae_toy_firing_free(sae_toy *t);
/* Active features of sample `index`, ascending, into s->active; returns their count. */
int64_t sae_toy_fire(const sae_toy *t, uint64_t index, uint32_t domain, toy_scratch *s);

/* magnitude.c */
int32_t sae_toy_magnitude_build(sae_toy *t);
void sae_toy_magnitude_free(sae_toy *t);
/* Magnitudes of the k active features of sample `index` into mag. */
void sae_toy_magnitudes(const sae_toy *t, uint64_t index, uint32_t domain, const int32_t *active,
                        int64_t k, float *mag, toy_scratch *s);

/* sample.c */
int32_t sae_toy_scratch_alloc(const sae_toy *t, toy_scratch *s);
void sae_toy_scratch_free(const sae_toy *t, toy_scratch *s);
/* x (length d) = sum_j mag_j * dict_j (+ noise). */
void sae_toy_compose(const sae_toy *t, uint64_t index, uint32_t domain, const int32_t *active,
                     const float *mag, int64_t k, float *x);

#endif
