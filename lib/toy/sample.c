/* Sampling: fire, draw magnitudes, assemble x = sum_j m_j v_j, over threads.
 * Every row depends only on (seed, index), so any split of the work gives the same bits. */
#include "toy_internal.h"
#include "sampler.h"

#include "core/parallel.h"

#include <math.h>
#include <string.h>


int32_t sae_toy_scratch_alloc(const sae_toy *t, toy_scratch *s)
{
    memset(s, 0, sizeof *s);
    size_t groups = (size_t)SAE_MAX(t->mag.n_groups, 1), m = (size_t)SAE_MAX(t->fire.copula.m, 1);
    /* before duplicates are removed, combination members come on top of all features */
    int64_t combo_members = t->fire.combos.n > 0 ? t->fire.combos.ptr[t->fire.combos.n] : 0;
    s->active = sae_malloc(&t->alloc, (size_t)(t->n + combo_members) * sizeof *s->active);
    s->mag = sae_malloc(&t->alloc, (size_t)t->n * sizeof *s->mag);
    s->e = sae_malloc(&t->alloc, m * sizeof *s->e);
    s->gval = sae_malloc(&t->alloc, groups * sizeof *s->gval);
    s->gstamp = sae_calloc(&t->alloc, groups, sizeof *s->gstamp);
    if (!s->active || !s->mag || !s->e || !s->gval || !s->gstamp) {
        sae_toy_scratch_free(t, s);
        return SAE_E_NOMEM;
    }
    return SAE_OK;
}

void sae_toy_scratch_free(const sae_toy *t, toy_scratch *s)
{
    sae_free(&t->alloc, s->active);
    sae_free(&t->alloc, s->mag);
    sae_free(&t->alloc, s->e);
    sae_free(&t->alloc, s->gval);
    sae_free(&t->alloc, s->gstamp);
    memset(s, 0, sizeof *s);
}

/* The compose loop is element-wise (no reductions across lanes) and built without FMA
 * contraction, so every vector width gives the same bits: let x86-64 builds pick AVX2 or
 * AVX-512 at load time (GCC function multi-versioning) while staying runnable anywhere. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__) && \
    !defined(__SANITIZE_ADDRESS__) && !defined(SAE_NO_CLONES)
#  define TOY_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#  define TOY_CLONES
#endif

TOY_CLONES
void sae_toy_compose(const sae_toy *t, uint64_t index, uint32_t domain, const int32_t *active,
                     const float *mag, int64_t k, float *x)
{
    const int64_t d = t->d;
    const float *D = t->dict;
    memset(x, 0, (size_t)d * sizeof *x);
    /* Four rows per pass: one load/store of x for four dictionary rows, and four
     * independent streams for the prefetchers (large dictionaries live in DRAM). The
     * additions happen in the same order as one row at a time, so the bits do not
     * depend on the grouping. */
    int64_t a = 0;
    for (; a + 4 <= k; a += 4) {
        const float m0 = mag[a], m1 = mag[a + 1], m2 = mag[a + 2], m3 = mag[a + 3];
        const float *v0 = D + (int64_t)active[a] * d, *v1 = D + (int64_t)active[a + 1] * d;
        const float *v2 = D + (int64_t)active[a + 2] * d, *v3 = D + (int64_t)active[a + 3] * d;
        for (int64_t c = 0; c < d; c++) {
            float s = x[c];
            s += m0 * v0[c];
            s += m1 * v1[c];
            s += m2 * v2[c];
            s += m3 * v3[c];
            x[c] = s;
        }
    }
    for (; a < k; a++) {
        const float m = mag[a], *v = D + (int64_t)active[a] * d;
        for (int64_t c = 0; c < d; c++)
            x[c] += m * v[c];
    }
    if (t->noise_std > 0)
        sae_toy_add_noise(t, index, domain, x);
}

int32_t sae_toy_mean_sq_norm(const sae_toy *t, int64_t rows, double *out)
{
    toy_scratch s;
    float *x = sae_malloc(&t->alloc, (size_t)t->d * sizeof *x);
    if (x == NULL || sae_toy_scratch_alloc(t, &s) != SAE_OK) {
        sae_free(&t->alloc, x);
        return SAE_E_NOMEM;
    }
    double sum = 0;
    for (int64_t i = 0; i < rows; i++) {
        int64_t k = sae_toy_fire(t, (uint64_t)i, TOY_DOMAIN_SCALE, &s);
        sae_toy_magnitudes(t, (uint64_t)i, TOY_DOMAIN_SCALE, s.active, k, s.mag, &s);
        sae_toy_compose(t, (uint64_t)i, TOY_DOMAIN_SCALE, s.active, s.mag, k, x);
        double r = 0;
        for (int64_t c = 0; c < t->d; c++)
            r += (double)x[c] * x[c];
        sum += r;
    }
    *out = sum / (double)rows;
    sae_toy_scratch_free(t, &s);
    sae_free(&t->alloc, x);
    return SAE_OK;
}

/* ---- chunks of rows ------------------------------------------------------------ */

/* A call splits its rows into fixed contiguous chunks, one per thread asked for; each
 * chunk has its own scratch (and, for codes, a buffer of the active features found by
 * the counting pass, so the writing pass need not draw them again; rows that do not fit
 * are simply drawn again). OpenMP may run the chunks on fewer threads; the chunks and
 * therefore the results stay the same. Nothing is allocated inside a parallel region:
 * the caller's allocator is only ever called from the calling thread. */
typedef struct toy_chunk {
    toy_scratch s;
    int32_t *codes; /* active features of the chunk's first `kept` rows, in row order */
    int64_t len, cap, kept;
} toy_chunk;

typedef struct toy_pool {
    int32_t n;
    toy_chunk c[];
} toy_pool;

/* Chunks worth making for n rows: at least a few rows each, never more than threads. */
static int32_t chunks_for(const sae_toy *t, int64_t n)
{
#ifdef _OPENMP
    int64_t useful = n / 4 > 0 ? n / 4 : 1;
    return (int32_t)SAE_MIN((int64_t)t->n_threads, useful);
#else
    (void)t, (void)n;
    return 1;
#endif
}

static void chunk_rows(int64_t n, int32_t chunks, int32_t c, int64_t *lo, int64_t *hi)
{
    *lo = n * c / chunks;
    *hi = n * (c + 1) / chunks;
}

static void pool_free(const sae_toy *t, toy_pool *p)
{
    if (p == NULL)
        return;
    for (int32_t i = 0; i < p->n; i++) {
        sae_toy_scratch_free(t, &p->c[i].s);
        sae_free(&t->alloc, p->c[i].codes);
    }
    sae_free(&t->alloc, p);
}

/* Expected active features per row plus four standard deviations (Poisson-like). */
static int64_t codes_per_row(const sae_toy *t)
{
    double mean = 0;
    for (int64_t j = 0; j < t->n; j++)
        mean += t->marginal[j];
    return (int64_t)(mean + 4 * sqrt(mean) + 4);
}

/* codes_rows: rows per chunk whose codes are kept between passes (0 = sampling only). */
static toy_pool *pool_alloc(const sae_toy *t, int32_t chunks, int64_t codes_rows)
{
    toy_pool *p = sae_calloc(&t->alloc, 1, sizeof *p + (size_t)chunks * sizeof(toy_chunk));
    if (p == NULL)
        return NULL;
    int64_t cap = codes_rows > 0 ? SAE_MIN(codes_rows * codes_per_row(t), INT64_C(1) << 28) : 0;
    for (; p->n < chunks; p->n++) {
        toy_chunk *ch = &p->c[p->n];
        ch->cap = cap;
        ch->codes = cap > 0 ? sae_malloc(&t->alloc, (size_t)cap * sizeof *ch->codes) : NULL;
        if (sae_toy_scratch_alloc(t, &ch->s) != SAE_OK || (cap > 0 && ch->codes == NULL)) {
            p->n++;
            pool_free(t, p);
            return NULL;
        }
    }
    return p;
}

/* ---- argument checks ------------------------------------------------------------ */

static int32_t check_range(const sae_toy *t, uint64_t first, int64_t n)
{
    if (n <= 0)
        return sae_fail(&t->err, SAE_E_SIZE, "n = %lld must be positive", (long long)n);
    if (first > UINT64_MAX - (uint64_t)(n - 1))
        return sae_fail(&t->err, SAE_E_SIZE, "sample indices first + n - 1 overflow 2^64");
    return SAE_OK;
}

/* ---- the row loops ---------------------------------------------------------------- */

/* x rows of chunk c (no codes kept). */
static void chunk_samples(const sae_toy *t, uint64_t first, int64_t n, toy_pool *pool, int32_t c,
                          float *x, int64_t ldx)
{
    toy_scratch *s = &pool->c[c].s;
    int64_t lo, hi;
    chunk_rows(n, pool->n, c, &lo, &hi);
    for (int64_t row = lo; row < hi; row++) {
        uint64_t index = first + (uint64_t)row;
        int64_t k = sae_toy_fire(t, index, TOY_DOMAIN_USER, s);
        sae_toy_magnitudes(t, index, TOY_DOMAIN_USER, s->active, k, s->mag, s);
        sae_toy_compose(t, index, TOY_DOMAIN_USER, s->active, s->mag, k, x + row * ldx);
    }
}

/* Pass 1 of chunk c: fire every row, store counts in off[row + 1] and keep the codes of
 * the leading rows that fit in the chunk's buffer. */
static void chunk_count(const sae_toy *t, uint64_t first, int64_t n, toy_pool *pool, int32_t c,
                        int64_t *off)
{
    toy_chunk *ch = &pool->c[c];
    int64_t lo, hi;
    chunk_rows(n, pool->n, c, &lo, &hi);
    ch->len = ch->kept = 0;
    for (int64_t row = lo; row < hi; row++) {
        int64_t k = sae_toy_fire(t, first + (uint64_t)row, TOY_DOMAIN_USER, &ch->s);
        off[row + 1] = k;
        if (ch->kept == row - lo && ch->len + k <= ch->cap) {
            memcpy(ch->codes + ch->len, ch->s.active, (size_t)k * sizeof *ch->codes);
            ch->len += k;
            ch->kept++;
        }
    }
}

/* Pass 2 of chunk c: codes out (kept or drawn again), magnitudes, x. */
static void chunk_write(const sae_toy *t, uint64_t first, int64_t n, toy_pool *pool, int32_t c,
                        const int64_t *off, float *x, int64_t ldx, int32_t *feature, float *magnitude)
{
    toy_chunk *ch = &pool->c[c];
    int64_t lo, hi, pos = 0;
    chunk_rows(n, pool->n, c, &lo, &hi);
    for (int64_t row = lo; row < hi; row++) {
        uint64_t index = first + (uint64_t)row;
        int64_t k = off[row + 1] - off[row];
        const int32_t *src = ch->s.active;
        if (row - lo < ch->kept) {
            src = ch->codes + pos;
            pos += k;
        } else {
            sae_toy_fire(t, index, TOY_DOMAIN_USER, &ch->s);
        }
        int32_t *f = feature ? feature + off[row] : ch->s.active; /* NULL: no codes at all */
        float *m = magnitude ? magnitude + off[row] : ch->s.mag;
        if (k > 0 && f != src)
            memcpy(f, src, (size_t)k * sizeof *f);
        sae_toy_magnitudes(t, index, TOY_DOMAIN_USER, f, k, m, &ch->s);
        if (x != NULL)
            sae_toy_compose(t, index, TOY_DOMAIN_USER, f, m, k, x + row * ldx);
    }
}

/* ---- public entry points ------------------------------------------------------ */

/* Rows of samples into x with the chunks of pool (the first `nc` of them). */
static void sample_rows(const sae_toy *t, toy_pool *pool, int32_t nc, uint64_t first, int64_t n,
                        float *x, int64_t ldx)
{
    int32_t saved = pool->n;
    pool->n = nc; /* chunk_rows splits by pool->n */
    SAE_FOR_THREADS(nc, c, nc, chunk_samples(t, first, n, pool, (int32_t)c, x, ldx));
    pool->n = saved;
}

int32_t sae_toy_sample(const sae_toy *t, uint64_t first, int64_t n, float *x, int64_t ldx)
{
    if (t == NULL)
        return SAE_E_NULL;
    int32_t st = check_range(t, first, n);
    if (st == SAE_OK)
        st = sae_check_matrix(&t->err, x, n, t->d, ldx, "x");
    if (st != SAE_OK)
        return st;
    int32_t nc = chunks_for(t, n);
    toy_pool *pool = pool_alloc(t, nc, 0);
    if (pool == NULL)
        return sae_fail(&t->err, SAE_E_NOMEM, "out of memory for sampling scratch");
    sample_rows(t, pool, nc, first, n, x, ldx);
    pool_free(t, pool);
    return SAE_OK;
}

/* ---- reusable sampling workspace (training loops: no allocation per batch) ---------- */

int32_t sae_toy_sampler_create(const sae_toy *t, int64_t max_rows, toy_pool **out)
{
    toy_pool *pool = pool_alloc(t, chunks_for(t, max_rows > 0 ? max_rows : 1), 0);
    if (pool == NULL)
        return sae_fail(&t->err, SAE_E_NOMEM, "out of memory for sampling scratch");
    *out = pool;
    return SAE_OK;
}

void sae_toy_sampler_free(const sae_toy *t, toy_pool *pool) { pool_free(t, pool); }

int32_t sae_toy_sample_with(const sae_toy *t, toy_pool *pool, uint64_t first, int64_t n,
                            float *x, int64_t ldx)
{
    int32_t st = check_range(t, first, n);
    if (st == SAE_OK)
        st = sae_check_matrix(&t->err, x, n, t->d, ldx, "x");
    if (st != SAE_OK)
        return st;
    sample_rows(t, pool, SAE_MIN(chunks_for(t, n), pool->n), first, n, x, ldx);
    return SAE_OK;
}

/* Pass 1 over all chunks; row_ptr-form offsets in off. */
static void count_all(const sae_toy *t, uint64_t first, int64_t n, toy_pool *pool, int64_t *off)
{
    int32_t nc = pool->n;
    off[0] = 0;
#ifdef _OPENMP
#pragma omp parallel for num_threads(nc) schedule(static, 1) if (nc > 1)
#endif
    for (int32_t c = 0; c < nc; c++)
        chunk_count(t, first, n, pool, c, off);
    for (int64_t row = 0; row < n; row++)
        off[row + 1] += off[row];
}

int32_t sae_toy_sample_codes(const sae_toy *t, uint64_t first, int64_t n, float *x, int64_t ldx,
                             int64_t *row_ptr, int32_t *feature, float *magnitude, int64_t cap,
                             int64_t *needed)
{
    if (t == NULL)
        return SAE_E_NULL;
    int32_t st = check_range(t, first, n);
    if (st == SAE_OK && x != NULL)
        st = sae_check_matrix(&t->err, x, n, t->d, ldx, "x");
    if (st == SAE_OK)
        st = sae_check_ptr(&t->err, row_ptr, "row_ptr");
    if (st == SAE_OK && cap < 0)
        st = sae_fail(&t->err, SAE_E_SIZE, "cap = %lld must not be negative", (long long)cap);
    if (st == SAE_OK && cap > 0 && (feature == NULL || magnitude == NULL))
        st = sae_fail(&t->err, SAE_E_NULL, "feature and magnitude must not be NULL when cap > 0");
    if (st != SAE_OK)
        return st;
    int32_t nc = chunks_for(t, n);
    toy_pool *pool = pool_alloc(t, nc, (n + nc - 1) / nc);
    int64_t *off = sae_malloc(&t->alloc, (size_t)(n + 1) * sizeof *off);
    if (pool == NULL || off == NULL) {
        pool_free(t, pool);
        sae_free(&t->alloc, off);
        return sae_fail(&t->err, SAE_E_NOMEM, "out of memory for sampling scratch");
    }
    count_all(t, first, n, pool, off);
    /* the counts come first, so that nothing is written when cap is short */
    if (needed != NULL)
        *needed = off[n];
    if (off[n] > cap) {
        st = sae_fail(&t->err, SAE_E_BUFFER_TOO_SMALL, "codes need %lld entries, cap is %lld",
                      (long long)off[n], (long long)cap);
    } else {
#ifdef _OPENMP
#pragma omp parallel for num_threads(nc) schedule(static, 1) if (nc > 1)
#endif
        for (int32_t c = 0; c < nc; c++)
            chunk_write(t, first, n, pool, c, off, x, ldx, feature, magnitude);
        memcpy(row_ptr, off, (size_t)(n + 1) * sizeof *row_ptr);
    }
    pool_free(t, pool);
    sae_free(&t->alloc, off);
    return st;
}
