/* Observable-state digests and the standard fixture of the reliability tests. */
#include "rel_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Enumeration ranges for ids a module may still grow (tensors, stats, metrics). */
#define REL_MAX_ENUM 64
#define REL_MIN(a, b) ((a) < (b) ? (a) : (b))

typedef struct digest {
    uint64_t h;
} digest;

static void mix(digest *d, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        d->h ^= b[i];
        d->h *= UINT64_C(1099511628211);
    }
}

static void mix_i64(digest *d, int64_t v) { mix(d, &v, sizeof v); }

/* ---- configurations --------------------------------------------------- */

static void mix_param(digest *dg, const sae_config *cfg, int32_t key)
{
    int32_t type = 0;
    mix_i64(dg, sae_param_info(key, NULL, &type, NULL, NULL, NULL));
    int64_t i = 0, n = 0;
    double f = 0, arr[256];
    int64_t iarr[256];
    switch (type) {
    case SAE_TYPE_I64:
        mix_i64(dg, sae_config_get_i64(cfg, key, &i));
        mix_i64(dg, i);
        break;
    case SAE_TYPE_F64:
        mix_i64(dg, sae_config_get_f64(cfg, key, &f));
        mix(dg, &f, sizeof f);
        break;
    case SAE_TYPE_F64_ARRAY:
        mix_i64(dg, sae_config_get_f64_array(cfg, key, arr, 256, &n));
        mix_i64(dg, n);
        mix(dg, arr, (size_t)REL_MIN(n, 256) * sizeof arr[0]);
        break;
    case SAE_TYPE_I64_ARRAY:
        mix_i64(dg, sae_config_get_i64_array(cfg, key, iarr, 256, &n));
        mix_i64(dg, n);
        mix(dg, iarr, (size_t)REL_MIN(n, 256) * sizeof iarr[0]);
        break;
    default:
        break;
    }
}

uint64_t rel_digest_config(const sae_config *cfg)
{
    digest dg = {UINT64_C(1469598103934665603)};
    int32_t kind = sae_config_kind(cfg), count = 0;
    mix_i64(&dg, kind);
    if (cfg == NULL || sae_param_count(kind, &count) != SAE_OK)
        return dg.h;
    for (int32_t p = 0; p < count; p++) {
        int32_t key;
        if (sae_param_key_at(kind, p, &key) == SAE_OK)
            mix_param(&dg, cfg, key);
    }
    return dg.h;
}

/* ---- toy ----------------------------------------------------------------- */

uint64_t rel_digest_toy(const sae_toy *toy)
{
    digest dg = {UINT64_C(1469598103934665603)};
    if (toy == NULL)
        return dg.h;
    int64_t n = 0, d = 0;
    mix_i64(&dg, sae_toy_dims(toy, &n, &d));
    mix_i64(&dg, n);
    mix_i64(&dg, d);
    if (n <= 0 || d <= 0 || n * d > (1 << 22))
        return dg.h;
    float *buf = calloc((size_t)(n * d + 8 * d), sizeof *buf);
    double *probs = calloc((size_t)n, sizeof *probs);
    assert_non_null(buf);
    assert_non_null(probs);
    mix_i64(&dg, sae_toy_dictionary(toy, buf, d));
    mix_i64(&dg, sae_toy_sample(toy, 0, 4, buf + n * d, d));
    mix_i64(&dg, sae_toy_sample(toy, UINT64_C(1) << 40, 4, buf + n * d + 4 * d, d));
    mix(&dg, buf, (size_t)(n * d + 8 * d) * sizeof *buf);
    mix_i64(&dg, sae_toy_fire_probs(toy, probs, n));
    mix(&dg, probs, (size_t)n * sizeof *probs);
    free(buf);
    free(probs);
    return dg.h;
}

/* ---- model ---------------------------------------------------------------- */

static void mix_tensor(digest *dg, const sae_model *model, int32_t which)
{
    int64_t rows = 0, cols = 0;
    int32_t st = sae_model_tensor_shape(model, which, &rows, &cols);
    mix_i64(dg, st);
    if (st != SAE_OK || rows <= 0 || cols <= 0 || rows * cols > (1 << 24))
        return;
    float *t = calloc((size_t)(rows * cols), sizeof *t);
    assert_non_null(t);
    mix_i64(dg, sae_model_get_tensor(model, which, t, cols));
    mix(dg, t, (size_t)(rows * cols) * sizeof *t);
    free(t);
}

static void mix_model_params(digest *dg, const sae_model *model)
{
    int32_t count = 0;
    if (sae_param_count(SAE_KIND_MODEL, &count) != SAE_OK)
        return;
    for (int32_t p = 0; p < count; p++) {
        int32_t key, type = 0;
        if (sae_param_key_at(SAE_KIND_MODEL, p, &key) != SAE_OK)
            continue;
        if (sae_param_info(key, NULL, &type, NULL, NULL, NULL) != SAE_OK)
            continue;
        if (type == SAE_TYPE_I64) {
            int64_t v = 0;
            mix_i64(dg, sae_model_get_i64(model, key, &v));
            mix_i64(dg, v);
        } else if (type == SAE_TYPE_F64) {
            double v = 0;
            mix_i64(dg, sae_model_get_f64(model, key, &v));
            mix(dg, &v, sizeof v);
        }
    }
}

uint64_t rel_digest_model(const sae_model *model)
{
    digest dg = {UINT64_C(1469598103934665603)};
    if (model == NULL)
        return dg.h;
    int64_t d = 0, l = 0;
    mix_i64(&dg, sae_model_dims(model, &d, &l));
    mix_i64(&dg, d);
    mix_i64(&dg, l);
    for (int32_t which = 1; which <= REL_MAX_ENUM; which++)
        mix_tensor(&dg, model, which);
    mix_model_params(&dg, model);
    return dg.h;
}

/* ---- trainer ---------------------------------------------------------------- */

uint64_t rel_digest_trainer(const sae_trainer *trainer)
{
    digest dg = {UINT64_C(1469598103934665603)};
    if (trainer == NULL)
        return dg.h;
    for (int32_t which = 1; which <= REL_MAX_ENUM; which++) {
        double v = 0;
        mix_i64(&dg, sae_trainer_stat(trainer, which, &v));
        /* the phase timers measure the clock, not the trainer's state */
        if (which < SAE_STAT_TIME_GENERATE || which > SAE_STAT_TIME_CONSTRAIN)
            mix(&dg, &v, sizeof v);
    }
    mix_i64(&dg, (int64_t)rel_digest_model(sae_trainer_model(trainer)));
    return dg.h;
}

/* ---- metrics ---------------------------------------------------------------- */

uint64_t rel_digest_metrics(const sae_metrics *metrics)
{
    digest dg = {UINT64_C(1469598103934665603)};
    if (metrics == NULL)
        return dg.h;
    for (int32_t which = 1; which <= REL_MAX_ENUM; which++) {
        double v = 0;
        mix_i64(&dg, sae_metrics_get(metrics, which, &v));
        mix(&dg, &v, sizeof v);
        int64_t rows = 0, cols = 0;
        int32_t st = sae_metrics_array_shape(metrics, which, &rows, &cols);
        mix_i64(&dg, st);
        if (st != SAE_OK || rows <= 0 || cols <= 0 || rows * cols > (1 << 24))
            continue;
        float *a = calloc((size_t)(rows * cols), sizeof *a);
        assert_non_null(a);
        mix_i64(&dg, sae_metrics_copy_array(metrics, which, a, cols));
        mix(&dg, a, (size_t)(rows * cols) * sizeof *a);
        free(a);
    }
    for (int32_t which = 1; which <= REL_MAX_ENUM && REL_HAVE(sae_metrics_list_size); which++) {
        int64_t n = 0, got = 0, list[4096];
        mix_i64(&dg, sae_metrics_list_size(metrics, which, &n));
        mix_i64(&dg, n);
        if (n > 0 && n <= 4096) {
            mix_i64(&dg, sae_metrics_copy_list(metrics, which, list, n, &got));
            mix(&dg, list, (size_t)n * sizeof list[0]);
        }
    }
    return dg.h;
}

uint64_t rel_digest_fixture(const rel_fixture *f)
{
    digest dg = {UINT64_C(1469598103934665603)};
    for (int k = 1; k <= 4; k++)
        mix_i64(&dg, (int64_t)rel_digest_config(f->cfg[k]));
    mix_i64(&dg, (int64_t)rel_digest_toy(f->toy));
    mix_i64(&dg, (int64_t)rel_digest_model(f->model));
    mix_i64(&dg, (int64_t)rel_digest_trainer(f->trainer));
    mix_i64(&dg, (int64_t)rel_digest_metrics(f->metrics));
    return dg.h;
}

/* ---- data and fixture ----------------------------------------------------- */

void rel_fill(float *x, int64_t n, int64_t cols, int64_t ld, float scale, uint32_t seed)
{
    uint32_t s = seed * 2654435761u + 12345u;
    for (int64_t r = 0; r < n; r++)
        for (int64_t c = 0; c < cols; c++) {
            s = s * 1664525u + 1013904223u;
            x[r * ld + c] = scale * ((float)(s >> 8) / 16777216.0f - 0.5f);
        }
}

int rel_all_finite(const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return 0;
    return 1;
}

static sae_config *make_config(int32_t kind, const sae_allocator *alloc)
{
    sae_config *c = NULL;
    assert_ok(sae_config_create(&c, kind, alloc));
    return c;
}

static void set_name(sae_config *c, const char *name, double v)
{
    if (sae_config_set_by_name(c, name, v) != SAE_OK)
        fail_msg("%s = %g: %s", name, v, sae_config_errmsg(c));
}

static void init_configs(rel_fixture *f, const sae_allocator *alloc)
{
    f->cfg[SAE_KIND_TOY] = make_config(SAE_KIND_TOY, alloc);
    set_name(f->cfg[SAE_KIND_TOY], "n_features", REL_N);
    set_name(f->cfg[SAE_KIND_TOY], "d", REL_D);
    set_name(f->cfg[SAE_KIND_TOY], "seed", 7);
    double probs[REL_N];
    for (int i = 0; i < REL_N; i++)
        probs[i] = 0.1 + 0.05 * i;
    assert_ok(sae_config_set_f64_array(f->cfg[SAE_KIND_TOY], SAE_TOY_FIRE_PROBS, probs, REL_N));
    f->cfg[SAE_KIND_MODEL] = make_config(SAE_KIND_MODEL, alloc);
    set_name(f->cfg[SAE_KIND_MODEL], "d_in", REL_D);
    set_name(f->cfg[SAE_KIND_MODEL], "n_latents", REL_L);
    set_name(f->cfg[SAE_KIND_MODEL], "model_seed", 3);
    f->cfg[SAE_KIND_TRAINER] = make_config(SAE_KIND_TRAINER, alloc);
    set_name(f->cfg[SAE_KIND_TRAINER], "lr", 0.01);
    set_name(f->cfg[SAE_KIND_TRAINER], "batch_size", REL_BATCH);
    f->cfg[SAE_KIND_METRICS] = make_config(SAE_KIND_METRICS, alloc);
    /* every metric group stays on; a small evaluation sample keeps the tests fast */
    set_name(f->cfg[SAE_KIND_METRICS], "n_eval", 256);
    set_name(f->cfg[SAE_KIND_METRICS], "sbw_samples", 128);
}

const rel_variant rel_variants[] = {
    {"relu", SAE_ARCH_RELU, 0, 1},           {"relu tied", SAE_ARCH_RELU, 1, 1},
    {"topk", SAE_ARCH_TOPK, 0, 1},           {"batchtopk", SAE_ARCH_BATCHTOPK, 0, 1},
    {"jumprelu", SAE_ARCH_JUMPRELU, 0, 1},   {"gated", SAE_ARCH_GATED, 0, 1},
    {"matryoshka", SAE_ARCH_MATRYOSHKA, 0, 1}, {"topk, 2 threads", SAE_ARCH_TOPK, 0, 2},
};
const int rel_n_variants = (int)(sizeof rel_variants / sizeof rel_variants[0]);

static void build_handles(rel_fixture *f, const sae_allocator *alloc);

int rel_fixture_init_variant(rel_fixture *f, const sae_allocator *alloc, const rel_variant *v)
{
    memset(f, 0, sizeof *f);
    init_configs(f, alloc);
    rel_fill(f->batch, REL_BATCH, REL_D, REL_D, 1.0f, 1);
    sae_config *m = f->cfg[SAE_KIND_MODEL];
    int ok = sae_config_set_i64(m, SAE_MODEL_ARCH, v->arch) == SAE_OK &&
             sae_config_set_i64(m, SAE_MODEL_TIED, v->tied) == SAE_OK &&
             sae_config_set_i64(m, SAE_MODEL_K, 3) == SAE_OK;
    if (ok && v->arch == SAE_ARCH_MATRYOSHKA) {
        const int64_t widths[] = {4, REL_L};
        ok = sae_config_set_i64_array(m, SAE_MODEL_MATRYOSHKA_WIDTHS, widths, 2) == SAE_OK;
    }
    if (ok && v->threads > 1) {
        ok = sae_config_set_by_name(f->cfg[SAE_KIND_TOY], "toy_threads", (double)v->threads) == SAE_OK &&
             sae_config_set_i64(f->cfg[SAE_KIND_TRAINER], SAE_TRAINER_N_THREADS, v->threads) == SAE_OK &&
             sae_config_set_i64(f->cfg[SAE_KIND_TRAINER], SAE_TRAINER_THREAD_MIN_WORK, 0) == SAE_OK &&
             sae_config_set_by_name(f->cfg[SAE_KIND_METRICS], "metrics_threads", (double)v->threads) == SAE_OK;
    }
    if (!ok || sae_config_validate(m, NULL, 0) != SAE_OK)
        return 0;
    build_handles(f, alloc);
    return 1;
}

void rel_fixture_init(rel_fixture *f, const sae_allocator *alloc)
{
    memset(f, 0, sizeof *f);
    init_configs(f, alloc);
    rel_fill(f->batch, REL_BATCH, REL_D, REL_D, 1.0f, 1);
    build_handles(f, alloc);
}

static void build_handles(rel_fixture *f, const sae_allocator *alloc)
{
    if (REL_HAVE(sae_toy_create)) {
        assert_ok(sae_toy_create(&f->toy, f->cfg[SAE_KIND_TOY], alloc));
        assert_ok(sae_toy_sample(f->toy, 0, REL_BATCH, f->batch, REL_D));
    }
    if (REL_HAVE(sae_model_create))
        assert_ok(sae_model_create(&f->model, f->cfg[SAE_KIND_MODEL], alloc));
    if (f->model != NULL && REL_HAVE(sae_trainer_create)) {
        assert_ok(sae_trainer_create(&f->trainer, f->model, f->cfg[SAE_KIND_TRAINER], alloc));
        assert_ok(sae_trainer_step(f->trainer, f->batch, REL_BATCH, REL_D));
    }
    if (f->model != NULL && f->toy != NULL && REL_HAVE(sae_metrics_create)) {
        assert_ok(sae_metrics_create(&f->metrics, f->cfg[SAE_KIND_METRICS], alloc));
        assert_ok(sae_metrics_compute(f->metrics, f->model, f->toy));
    }
}

void rel_fixture_free(rel_fixture *f)
{
    if (f->metrics != NULL)
        sae_metrics_free(f->metrics);
    if (f->trainer != NULL)
        sae_trainer_free(f->trainer);
    if (f->model != NULL)
        sae_model_free(f->model);
    if (f->toy != NULL)
        sae_toy_free(f->toy);
    for (int k = 0; k < 5; k++)
        sae_config_free(f->cfg[k]);
    memset(f, 0, sizeof *f);
}

int rel_setup(void **state)
{
    rel_fixture *f = malloc(sizeof *f);
    if (f == NULL)
        return -1;
    rel_fixture_init(f, NULL);
    *state = f;
    return 0;
}

int rel_teardown(void **state)
{
    rel_fixture_free(*state);
    free(*state);
    return 0;
}
