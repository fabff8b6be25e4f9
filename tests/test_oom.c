/* Allocation-failure injection: every create, clone, configure, train-step, metric and
 * forward path is run with its 1st, 2nd, ... allocation failing until it succeeds. Each
 * failure must return SAE_E_NOMEM, free everything it took (live count back to where it
 * was) and leave the handles it was given unchanged and usable. */
#include "rel_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One path: run() performs the operation with handles allocated through the hook;
 * on success, undo() releases what run() created. digest() covers the handles run()
 * may touch (0 when it only creates). */
typedef struct oom_path {
    const char *name;
    int32_t (*run)(rel_fixture *f, const sae_allocator *al, void **made);
    void (*undo)(void *made);
    int needs_toy, needs_model, needs_trainer, needs_metrics;
    int multi_step; /* may stop after a completed step instead of leaving all unchanged */
    int needs_io;   /* serialisation (lib/io) */
} oom_path;

static int64_t total_points;

/* ---- paths -------------------------------------------------------------------- */

static int32_t run_config_create(rel_fixture *f, const sae_allocator *al, void **made)
{
    (void)f;
    return sae_config_create((sae_config **)made, SAE_KIND_TOY, al);
}

static int32_t run_config_clone(rel_fixture *f, const sae_allocator *al, void **made)
{
    (void)al; /* a clone allocates through its source's allocator */
    return sae_config_clone((sae_config **)made, f->cfg[SAE_KIND_TOY]);
}

static int32_t run_config_set_array(rel_fixture *f, const sae_allocator *al, void **made)
{
    (void)al;
    (void)made;
    double probs[REL_N];
    for (int i = 0; i < REL_N; i++)
        probs[i] = 0.2;
    return sae_config_set_f64_array(f->cfg[SAE_KIND_TOY], SAE_TOY_FIRE_PROBS, probs, REL_N);
}

static void undo_config(void *made) { sae_config_free(made); }

static int32_t run_toy_create(rel_fixture *f, const sae_allocator *al, void **made)
{
    return sae_toy_create((sae_toy **)made, f->cfg[SAE_KIND_TOY], al);
}

static int32_t run_toy_clone(rel_fixture *f, const sae_allocator *al, void **made)
{
    (void)al;
    return sae_toy_clone((sae_toy **)made, f->toy);
}

static int32_t run_toy_sample(rel_fixture *f, const sae_allocator *al, void **made)
{
    (void)al;
    (void)made;
    static float x[64 * REL_D];
    return sae_toy_sample(f->toy, 100, 64, x, REL_D);
}

static int32_t run_toy_sample_codes(rel_fixture *f, const sae_allocator *al, void **made)
{
    (void)al;
    (void)made;
    static float x[64 * REL_D], mag[64 * REL_N];
    static int64_t rp[65];
    static int32_t feat[64 * REL_N];
    int64_t needed;
    return sae_toy_sample_codes(f->toy, 100, 64, x, REL_D, rp, feat, mag, 64 * REL_N, &needed);
}

static void undo_toy(void *made) { sae_toy_free(made); }

static int32_t run_model_create(rel_fixture *f, const sae_allocator *al, void **made)
{
    return sae_model_create((sae_model **)made, f->cfg[SAE_KIND_MODEL], al);
}

static int32_t run_model_clone(rel_fixture *f, const sae_allocator *al, void **made)
{
    (void)al;
    return sae_model_clone((sae_model **)made, f->model);
}

static int32_t run_model_encode(rel_fixture *f, const sae_allocator *al, void **made)
{
    (void)al;
    (void)made;
    float z[REL_BATCH * REL_L];
    return sae_model_encode(f->model, f->batch, REL_BATCH, REL_D, z, REL_L);
}

static int32_t run_model_decode(rel_fixture *f, const sae_allocator *al, void **made)
{
    (void)al;
    (void)made;
    float z[REL_BATCH * REL_L], xh[REL_BATCH * REL_D];
    rel_fill(z, REL_BATCH, REL_L, REL_L, 1.0f, 9);
    return sae_model_decode(f->model, z, REL_BATCH, REL_L, xh, REL_D);
}

static void undo_model(void *made) { sae_model_free(made); }

static int32_t run_trainer_create(rel_fixture *f, const sae_allocator *al, void **made)
{
    return sae_trainer_create((sae_trainer **)made, f->model, f->cfg[SAE_KIND_TRAINER], al);
}

static void undo_trainer(void *made) { sae_trainer_free(made); }

static int32_t run_trainer_step(rel_fixture *f, const sae_allocator *al, void **made)
{
    (void)al;
    (void)made;
    return sae_trainer_step(f->trainer, f->batch, REL_BATCH, REL_D);
}

static int32_t run_trainer_train_data(rel_fixture *f, const sae_allocator *al, void **made)
{
    (void)al;
    (void)made;
    return sae_trainer_train_data(f->trainer, f->batch, REL_BATCH, REL_D, 1);
}

static int32_t run_trainer_train_toy(rel_fixture *f, const sae_allocator *al, void **made)
{
    (void)al;
    (void)made;
    return sae_trainer_train_toy(f->trainer, f->toy, 1);
}

/* Several steps: a failure in a later step leaves the trainer at the last completed step
 * (like a cancellation), so this path checks consistency instead of "unchanged". */
static int32_t run_trainer_train_toy3(rel_fixture *f, const sae_allocator *al, void **made)
{
    (void)al;
    (void)made;
    return sae_trainer_train_toy(f->trainer, f->toy, 3);
}

static int32_t run_metrics_create(rel_fixture *f, const sae_allocator *al, void **made)
{
    return sae_metrics_create((sae_metrics **)made, f->cfg[SAE_KIND_METRICS], al);
}

static int32_t run_metrics_compute(rel_fixture *f, const sae_allocator *al, void **made)
{
    (void)al;
    (void)made;
    return sae_metrics_compute(f->metrics, f->model, f->toy);
}

static void undo_metrics(void *made) { sae_metrics_free(made); }

static int32_t run_toy_get_config(rel_fixture *f, const sae_allocator *al, void **made)
{
    (void)al;
    return sae_toy_get_config(f->toy, (sae_config **)made);
}

/* ---- load paths: native buffers and safetensors of the fixture's objects ---------- */

typedef struct blob {
    unsigned char *p;
    size_t n;
} blob;

static blob cfg_blob, toy_blob, model_blob, trainer_blob, st_blob;

#define MAKE_BLOB(fn, h, b)                                                                \
    do {                                                                                   \
        if (REL_HAVE(fn) && (h) != NULL) {                                                 \
            assert_ok(fn((h), NULL, 0, &(b).n));                                           \
            (b).p = malloc((b).n);                                                         \
            assert_non_null((b).p);                                                        \
            assert_ok(fn((h), (b).p, (b).n, &(b).n));                                      \
        }                                                                                  \
    } while (0)

static void make_blobs(const rel_fixture *f)
{
    MAKE_BLOB(sae_config_serialize, f->cfg[SAE_KIND_TOY], cfg_blob);
    MAKE_BLOB(sae_toy_serialize, f->toy, toy_blob);
    MAKE_BLOB(sae_model_serialize, f->model, model_blob);
    MAKE_BLOB(sae_trainer_serialize, f->trainer, trainer_blob);
    MAKE_BLOB(sae_model_export_safetensors, f->model, st_blob);
}

static void free_blobs(void)
{
    blob *all[] = {&cfg_blob, &toy_blob, &model_blob, &trainer_blob, &st_blob};
    for (int i = 0; i < 5; i++) {
        free(all[i]->p);
        all[i]->p = NULL;
    }
}

static int32_t run_config_load(rel_fixture *f, const sae_allocator *al, void **made)
{
    (void)f;
    return sae_config_deserialize((sae_config **)made, cfg_blob.p, cfg_blob.n, al, NULL, 0);
}

static int32_t run_toy_load(rel_fixture *f, const sae_allocator *al, void **made)
{
    (void)f;
    return sae_toy_deserialize((sae_toy **)made, toy_blob.p, toy_blob.n, al, NULL, 0);
}

static int32_t run_model_load(rel_fixture *f, const sae_allocator *al, void **made)
{
    (void)f;
    return sae_model_deserialize((sae_model **)made, model_blob.p, model_blob.n, al, NULL, 0);
}

static int32_t run_trainer_load(rel_fixture *f, const sae_allocator *al, void **made)
{
    (void)f;
    return sae_trainer_deserialize((sae_trainer **)made, trainer_blob.p, trainer_blob.n, al, NULL, 0);
}

static int32_t run_safetensors_import(rel_fixture *f, const sae_allocator *al, void **made)
{
    (void)f;
    return sae_model_import_safetensors((sae_model **)made, st_blob.p, st_blob.n, NULL, 0, al, NULL, 0);
}

#define WRITER_PATH(name, fn, h)                                                           \
    static int32_t name(rel_fixture *f, const sae_allocator *al, void **made)             \
    {                                                                                      \
        (void)al;                                                                          \
        (void)made;                                                                        \
        static unsigned char buf[1 << 16];                                                 \
        size_t w;                                                                          \
        return fn((h), buf, sizeof buf, &w);                                               \
    }
WRITER_PATH(run_model_save, sae_model_serialize, f->model)
WRITER_PATH(run_trainer_save, sae_trainer_serialize, f->trainer)
WRITER_PATH(run_safetensors_export, sae_model_export_safetensors, f->model)

static const oom_path paths[] = {
    {"sae_config_create", run_config_create, undo_config, 0, 0, 0, 0, 0, 0},
    {"sae_config_clone", run_config_clone, undo_config, 0, 0, 0, 0, 0, 0},
    {"sae_config_set_f64_array", run_config_set_array, NULL, 0, 0, 0, 0, 0, 0},
    {"sae_toy_create", run_toy_create, undo_toy, 1, 0, 0, 0, 0, 0},
    {"sae_toy_clone", run_toy_clone, undo_toy, 1, 0, 0, 0, 0, 0},
    {"sae_toy_sample", run_toy_sample, NULL, 1, 0, 0, 0, 0, 0},
    {"sae_toy_sample_codes", run_toy_sample_codes, NULL, 1, 0, 0, 0, 0, 0},
    {"sae_model_create", run_model_create, undo_model, 0, 1, 0, 0, 0, 0},
    {"sae_model_clone", run_model_clone, undo_model, 0, 1, 0, 0, 0, 0},
    {"sae_model_encode", run_model_encode, NULL, 0, 1, 0, 0, 0, 0},
    {"sae_model_decode", run_model_decode, NULL, 0, 1, 0, 0, 0, 0},
    {"sae_trainer_create", run_trainer_create, undo_trainer, 0, 1, 1, 0, 0, 0},
    {"sae_trainer_step", run_trainer_step, NULL, 0, 1, 1, 0, 0, 0},
    {"sae_trainer_train_data", run_trainer_train_data, NULL, 0, 1, 1, 0, 0, 0},
    {"sae_trainer_train_toy", run_trainer_train_toy, NULL, 1, 1, 1, 0, 0, 0},
    {"sae_trainer_train_toy x3", run_trainer_train_toy3, NULL, 1, 1, 1, 0, 1, 0},
    {"sae_metrics_create", run_metrics_create, undo_metrics, 0, 0, 0, 1, 0, 0},
    {"sae_metrics_compute", run_metrics_compute, NULL, 1, 1, 0, 1, 0, 0},
    {"sae_toy_get_config", run_toy_get_config, undo_config, 1, 0, 0, 0, 0, 0},
    {"sae_config_deserialize", run_config_load, undo_config, 0, 0, 0, 0, 0, 1},
    {"sae_toy_deserialize", run_toy_load, undo_toy, 1, 0, 0, 0, 0, 1},
    {"sae_model_deserialize", run_model_load, undo_model, 0, 1, 0, 0, 0, 1},
    {"sae_trainer_deserialize", run_trainer_load, undo_trainer, 0, 1, 1, 0, 0, 1},
    {"sae_model_import_safetensors", run_safetensors_import, undo_model, 0, 1, 0, 0, 0, 1},
    {"sae_model_serialize", run_model_save, NULL, 0, 1, 0, 0, 0, 1},
    {"sae_trainer_serialize", run_trainer_save, NULL, 0, 1, 1, 0, 0, 1},
    {"sae_model_export_safetensors", run_safetensors_export, NULL, 0, 1, 0, 0, 0, 1},
};
#define N_PATHS ((int)(sizeof paths / sizeof paths[0]))

/* ---- driver ------------------------------------------------------------------------ */

static int path_available(const oom_path *p, const rel_fixture *f)
{
    if (p->needs_io && (!REL_HAVE(sae_model_serialize) || !REL_HAVE(sae_trainer_serialize) ||
                        cfg_blob.p == NULL || model_blob.p == NULL))
        return 0;
    return !(p->needs_toy && f->toy == NULL) && !(p->needs_model && f->model == NULL) &&
           !(p->needs_trainer && f->trainer == NULL) && !(p->needs_metrics && f->metrics == NULL);
}

/* After a failed multi-step call: a whole number of steps, finite parameters. */
static void check_step_boundary(rel_fixture *f, const char *name, int64_t k)
{
    double step = -1;
    assert_ok(sae_trainer_stat(f->trainer, SAE_STAT_STEP, &step));
    float w[REL_L * REL_D];
    assert_ok(sae_model_get_tensor(f->model, SAE_TENSOR_W_DEC, w, REL_D));
    if (step != (double)(int64_t)step || !rel_all_finite(w, REL_L * REL_D))
        fail_msg("%s: allocation %lld failed and left the trainer between steps", name, (long long)k);
}

/* Fail allocation k = 1, 2, ... of one call of path p until the call succeeds. Returns
 * the number of failure points injected. */
static int64_t inject(const oom_path *p, rel_fixture *f, test_alloc *st, const sae_allocator *al)
{
    int64_t points = 0;
    for (int64_t k = 1;; k++) {
        assert_true(k < 100000);
        uint64_t before = rel_digest_fixture(f);
        int64_t live = st->live;
        void *made = NULL;
        st->fail_at = st->calls + k;
        int32_t status = p->run(f, al, &made);
        int64_t used = st->calls - (st->fail_at - k);
        st->fail_at = 0;
        if (status == SAE_OK) {
            if (p->undo != NULL)
                p->undo(made);
            if (used >= k)
                fail_msg("%s: allocation %lld failed but the call returned SAE_OK", p->name,
                         (long long)k);
            break;
        }
        if (status != SAE_E_NOMEM)
            fail_msg("%s: allocation %lld of %lld failed -> status %d (%s), expected SAE_E_NOMEM",
                     p->name, (long long)k, (long long)used, (int)status, sae_status_str(status));
        if (st->live != live)
            fail_msg("%s: allocation %lld failed: %lld blocks leaked", p->name, (long long)k,
                     (long long)(st->live - live));
        if (made != NULL)
            fail_msg("%s: allocation %lld failed but *out was set", p->name, (long long)k);
        if (p->multi_step)
            check_step_boundary(f, p->name, k);
        else if (rel_digest_fixture(f) != before)
            fail_msg("%s: allocation %lld failed and a handle changed", p->name, (long long)k);
        points++;
    }
    return points;
}

/* Every path for one model variant; verbose lists each path's failure points. */
static void every_path(const rel_variant *v, int verbose)
{
    test_alloc st = {0, 0, 0};
    sae_allocator al = test_alloc_hook(&st);
    rel_fixture f;
    if (!rel_fixture_init_variant(&f, &al, v)) {
        rel_fixture_free(&f);
        return;
    }
    make_blobs(&f);
    int64_t variant_points = 0;
    for (int i = 0; i < N_PATHS; i++) {
        if (!path_available(&paths[i], &f)) {
            if (verbose)
                print_message("  skipped %s: not in this build of the library yet\n", paths[i].name);
            continue;
        }
        int64_t points = inject(&paths[i], &f, &st, &al);
        if (verbose)
            print_message("  %-30s %lld allocation failure points\n", paths[i].name, (long long)points);
        variant_points += points;
    }
    print_message("  [%s] %lld allocation failure points\n", v->name, (long long)variant_points);
    total_points += variant_points;
    /* the handles are still usable: one more good step and metric */
    if (f.trainer != NULL)
        assert_ok(sae_trainer_step(f.trainer, f.batch, REL_BATCH, REL_D));
    if (f.metrics != NULL)
        assert_ok(sae_metrics_compute(f.metrics, f.model, f.toy));
    free_blobs();
    rel_fixture_free(&f);
    assert_int_equal(st.live, 0);
}

static void test_every_path(void **state)
{
    (void)state;
    for (int v = 0; v < rel_n_variants; v++)
        every_path(&rel_variants[v], v == 0);
}

/* Building the whole fixture with allocation k failing, for every k: whatever part was
 * built is freed by rel_fixture_free-like cleanup and nothing leaks. */
static void test_chained_creation(void **state)
{
    (void)state;
    int64_t points = 0;
    for (int64_t k = 1; k < 100000; k++) {
        test_alloc st = {0, 0, k};
        sae_allocator al = test_alloc_hook(&st);
        sae_config *tc = NULL, *mc = NULL, *rc = NULL, *xc = NULL;
        sae_toy *toy = NULL;
        sae_model *model = NULL;
        sae_trainer *tr = NULL;
        sae_metrics *mt = NULL;
        int32_t s = sae_config_create(&tc, SAE_KIND_TOY, &al);
        if (s == SAE_OK)
            s = sae_config_create(&mc, SAE_KIND_MODEL, &al);
        if (s == SAE_OK)
            s = sae_config_create(&rc, SAE_KIND_TRAINER, &al);
        if (s == SAE_OK)
            s = sae_config_create(&xc, SAE_KIND_METRICS, &al);
        if (s == SAE_OK && REL_HAVE(sae_toy_create))
            s = sae_toy_create(&toy, tc, &al);
        if (s == SAE_OK && REL_HAVE(sae_model_create))
            s = sae_model_create(&model, mc, &al);
        if (s == SAE_OK && model != NULL && REL_HAVE(sae_trainer_create))
            s = sae_trainer_create(&tr, model, rc, &al);
        if (s == SAE_OK && REL_HAVE(sae_metrics_create))
            s = sae_metrics_create(&mt, xc, &al);
        /* free in an unusual order: the model before its trainer */
        if (model != NULL)
            sae_model_free(model);
        if (mt != NULL)
            sae_metrics_free(mt);
        if (tr != NULL)
            sae_trainer_free(tr);
        if (toy != NULL)
            sae_toy_free(toy);
        sae_config_free(tc);
        sae_config_free(mc);
        sae_config_free(rc);
        sae_config_free(xc);
        assert_int_equal(st.live, 0);
        if (s == SAE_OK)
            break;
        assert_int_equal(s, SAE_E_NOMEM);
        points++;
    }
    print_message("  chained creation: %lld allocation failure points\n", (long long)points);
    total_points += points;
}

static void test_summary(void **state)
{
    (void)state;
    print_message("  total allocation failure points injected: %lld\n", (long long)total_points);
    assert_true(total_points > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_path),
        cmocka_unit_test(test_chained_creation),
        cmocka_unit_test(test_summary),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
