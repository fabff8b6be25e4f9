/* Private structure of the toy generator and the services its parts share.
 * lib/toy is split by concern: dictionary.c (feature directions), superposition.c (the
 * trained ReLU output model), firing.c (which features are active), copula.c (correlated
 * firing), magnitude.c (how strongly), sample.c (assembling x, threads), toy.c (handle
 * life cycle), toy_params.c and toy_validate.c (parameters and their checks). */
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
    int64_t *ptr;       /* n_buckets + 1 offsets into feat */
    int32_t *feat;      /* features of each bucket, ascending */
    double *q;          /* envelope probability of each bucket */
    double *inv_log1mq; /* 1 / log(1 - q), 0 when q == 1 (every candidate is taken) */
} toy_bernoulli;

/* Groups of features stored as compressed rows: members of group g are
 * feat[ptr[g] .. ptr[g+1]-1]; cum holds the running sum of their probabilities. */
typedef struct toy_groups {
    int64_t n;
    int64_t *ptr;
    int32_t *feat;
    double *cum;
} toy_groups;

typedef struct toy_copula {
    int64_t m;
    double *L;     /* packed lower Cholesky factor of the correlation matrix */
    double *tau;   /* thresholds Phi^-1(1 - p) */
    int32_t *feat; /* the m correlated features */
} toy_copula;

typedef struct toy_firing {
    double *p;           /* configured probability (conditional on the parent for children) */
    toy_bernoulli indep; /* roots that fire independently */
    toy_groups sets;     /* mutually exclusive sets */
    int32_t set_mode;
    toy_copula copula;   /* roots that fire through the Gaussian copula */
    toy_groups combos;   /* common combinations; cum unused, q = probability of each */
    double *combo_q;
    toy_groups children; /* children of feature j: group j (n = N) */
    int32_t sibling_mode;
    int32_t has_tree;
    int32_t min_one;
    double p_empty; /* probability of an empty sample before min_one (-1 = unknown) */
} toy_firing;

typedef struct toy_magnitude {
    int32_t model;   /* sae_toy_mag_model */
    float *a, *b;    /* per feature: (lo, hi) for uniform, (mean, std) otherwise */
    int32_t *group;  /* amplitude group of each feature, -1 = none; NULL = no groups */
    int64_t n_groups;
    double w_shared, w_own; /* z = w_shared * g + w_own * e inside a group */
    float scale;     /* normalisation factor (1 unless "normalize") */
} toy_magnitude;

/* Tables of the ziggurat normal sampler (noise.c). */
typedef struct toy_ziggurat {
    uint32_t k[128];
    double w[128], f[128];
} toy_ziggurat;

struct sae_toy {
    sae_alloc alloc;
    sae_err err;
    sae_config *cfg; /* private copy of the configuration */
    int64_t n, d;
    uint64_t seed;
    int32_t n_threads;
    float *dict;      /* n x d, row j = direction of feature j */
    double *marginal; /* marginal firing probability of each feature */
    toy_firing fire;
    toy_magnitude mag;
    float noise_std;  /* after scaling */
    toy_ziggurat zig;
    double tms_loss;
};

/* Per-thread scratch of one sampling call (allocated per call, never per sample). */
typedef struct toy_scratch {
    int32_t *active;  /* capacity n + number of combination members */
    float *mag;       /* capacity n */
    double *e;        /* copula draws, capacity m */
    double *gval;     /* latent amplitude of each group in the current sample */
    uint64_t *gstamp; /* sample stamp at which gval was drawn */
    uint64_t stamp;
} toy_scratch;

/* Internal sample domains: user samples use domain 0; internal estimates (training of
 * the superposition model, the normalisation constant) use other domains so they never
 * coincide with the samples a user draws. Added to the stream purpose. */
#define TOY_DOMAIN_USER 0u
#define TOY_DOMAIN_TMS 0x100u
#define TOY_DOMAIN_SCALE 0x200u

/* Stream purposes private to lib/toy (beyond the shared SAE_STREAM_* values). Each
 * part draws from its own stream so switching one part on leaves the others' draws
 * unchanged (coupled experiments: the same samples with and without combinations). */
#define TOY_STREAM_SETS 0x20u
#define TOY_STREAM_COPULA 0x21u
#define TOY_STREAM_TREE 0x22u
#define TOY_STREAM_MAG_GROUP 0x23u
#define TOY_STREAM_TMS_INIT 0x24u

/* toy_validate.c */
int32_t sae_toy_validate_config(const sae_config *c, char *msg, size_t cap);
/* Per-feature probabilities from fire_profile / fire_probs. */
void sae_toy_base_probs(const sae_config *c, int64_t n, double *p);
/* Number of -1-separated groups in a combos array (empty groups are not counted). */
int64_t sae_toy_count_groups(const int64_t *v, int64_t len);

/* dictionary.c */
int32_t sae_toy_dict_build(sae_toy *t);

/* superposition.c */
int32_t sae_toy_tms_train(sae_toy *t);

/* copula.c */
double sae_toy_norm_cdf(double z);
double sae_toy_norm_inv(double p);
/* Cholesky of a PSD matrix within tol into packed L; returns 1 (with the failing pivot
 * and its value) when C is not PSD. */
int32_t sae_toy_cholesky_psd(const double *C, int64_t m, double tol, double *L, int64_t *bad,
                             double *bad_value);
int32_t sae_toy_copula_build(sae_toy *t, const double *C, const int64_t *feat, int64_t m, double tol);
void sae_toy_copula_free(sae_toy *t);
int64_t sae_toy_copula_draw(const toy_copula *cp, const toy_ziggurat *zig, sae_rng *r, double *e,
                            int32_t *out, int64_t k);

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

/* noise.c */
void sae_toy_ziggurat_init(toy_ziggurat *z);
double sae_toy_ziggurat_normal(const toy_ziggurat *z, sae_rng *r);
void sae_toy_add_noise(const sae_toy *t, uint64_t index, uint32_t domain, float *x);

/* sample.c */
int32_t sae_toy_scratch_alloc(const sae_toy *t, toy_scratch *s);
void sae_toy_scratch_free(const sae_toy *t, toy_scratch *s);
/* x (length d) = sum_j mag_j * dict_j + noise. */
void sae_toy_compose(const sae_toy *t, uint64_t index, uint32_t domain, const int32_t *active,
                     const float *mag, int64_t k, float *x);
/* E||x||^2 estimated over `rows` samples of the given domain (for "normalize"). */
int32_t sae_toy_mean_sq_norm(const sae_toy *t, int64_t rows, double *out);

#endif
