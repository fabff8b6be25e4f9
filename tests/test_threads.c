/* Concurrency: several threads run const operations (encode, decode, toy sampling, metrics
 * on their own metrics handle, config, tensor and statistic reads, serialisation of the model
 * and the trainer, and failing calls that write the
 * shared handle's error message) on ONE shared toy and model. Every thread's results must
 * be bit-identical to a serial run. Run under ThreadSanitizer by .ci/tsan.sh. */
#include "rel_util.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define N_THREADS 4
#define ROUNDS 12
#define ROWS 64

/* Everything one round computes, compared bytewise with the serial reference. */
typedef struct results {
    float z[ROWS * REL_L];
    float xhat[ROWS * REL_D];
    float sample[ROWS * REL_D];
    float dict[REL_N * REL_D];
    float w_dec[REL_L * REL_D];
    double metric[3];
    float cosine[REL_N * REL_L];
    int64_t cfg_d;
    unsigned char model_blob[8192], trainer_blob[16384];
    size_t model_len, trainer_len;
    double loss;
    int32_t status[16];
} results;

typedef struct shared {
    const sae_toy *toy;
    const sae_model *model;
    const sae_trainer *trainer;
    const sae_config *cfg_metrics;
    const sae_config *cfg_toy;
    float x[ROWS * REL_D];
    results reference;
    int mismatches[N_THREADS];
} shared;

/* One round of const operations; *r receives every output and status. */
static void one_round(const shared *s, results *r)
{
    memset(r, 0, sizeof *r);
    int k = 0;
    if (s->model != NULL) {
        r->status[k++] = sae_model_encode(s->model, s->x, ROWS, REL_D, r->z, REL_L);
        r->status[k++] = sae_model_decode(s->model, r->z, ROWS, REL_L, r->xhat, REL_D);
        r->status[k++] = sae_model_get_tensor(s->model, SAE_TENSOR_W_DEC, r->w_dec, REL_D);
        /* a failing call on the shared handle: writes its message under the handle's lock */
        r->status[k++] = sae_model_encode(s->model, s->x, ROWS, REL_D - 1, r->z, REL_L);
    }
    if (s->toy != NULL) {
        r->status[k++] = sae_toy_sample(s->toy, 1000, ROWS, r->sample, REL_D);
        r->status[k++] = sae_toy_dictionary(s->toy, r->dict, REL_D);
        r->status[k++] = sae_toy_sample(s->toy, 0, -1, r->sample, REL_D);
    }
    r->status[k++] = sae_config_get_i64(s->cfg_toy, SAE_TOY_D, &r->cfg_d);
    if (s->model != NULL && REL_HAVE(sae_model_serialize))
        r->status[k++] = sae_model_serialize(s->model, r->model_blob, sizeof r->model_blob, &r->model_len);
    if (s->trainer != NULL) {
        r->status[k++] = sae_trainer_stat(s->trainer, SAE_STAT_LOSS, &r->loss);
        if (REL_HAVE(sae_trainer_serialize))
            r->status[k++] = sae_trainer_serialize(s->trainer, r->trainer_blob,
                                                   sizeof r->trainer_blob, &r->trainer_len);
    }
    if (s->model != NULL && s->toy != NULL && REL_HAVE(sae_metrics_create)) {
        sae_metrics *m = NULL;
        r->status[k++] = sae_metrics_create(&m, s->cfg_metrics, NULL);
        r->status[k++] = sae_metrics_compute(m, s->model, s->toy);
        for (int i = 0; i < 3; i++)
            r->status[k] |= sae_metrics_get(m, SAE_METRIC_MMCS_TRUE + i, &r->metric[i]);
        k++;
        r->status[k++] = sae_metrics_copy_array(m, SAE_ARRAY_COSINE, r->cosine, REL_L);
        sae_metrics_free(m);
    }
}

typedef struct worker {
    shared *s;
    int id;
} worker;

static void *run_worker(void *arg)
{
    worker *w = arg;
    results *r = malloc(sizeof *r);
    if (r == NULL)
        return NULL;
    for (int round = 0; round < ROUNDS; round++) {
        one_round(w->s, r);
        if (memcmp(r, &w->s->reference, sizeof *r) != 0)
            w->s->mismatches[w->id]++;
    }
    free(r);
    return NULL;
}

static void run_variant(rel_fixture *f, const char *name)
{
    /* a trained model has more varied numbers than a fresh one */
    if (f->trainer != NULL && f->toy != NULL)
        assert_ok(sae_trainer_train_toy(f->trainer, f->toy, 20));
    static shared s;
    memset(&s, 0, sizeof s);
    s.toy = f->toy;
    s.model = f->model;
    s.trainer = f->trainer;
    s.cfg_metrics = f->cfg[SAE_KIND_METRICS];
    s.cfg_toy = f->cfg[SAE_KIND_TOY];
    if (f->toy != NULL)
        assert_ok(sae_toy_sample(f->toy, 5000, ROWS, s.x, REL_D));
    else
        rel_fill(s.x, ROWS, REL_D, REL_D, 1.0f, 11);
    one_round(&s, &s.reference);
    for (int i = 0; i < 16; i++)
        assert_true(s.reference.status[i] == SAE_OK || s.reference.status[i] == SAE_E_SIZE);

    pthread_t th[N_THREADS];
    worker w[N_THREADS];
    for (int t = 0; t < N_THREADS; t++) {
        w[t].s = &s;
        w[t].id = t;
        assert_int_equal(pthread_create(&th[t], NULL, run_worker, &w[t]), 0);
    }
    for (int t = 0; t < N_THREADS; t++)
        assert_int_equal(pthread_join(th[t], NULL), 0);
    int total = 0;
    for (int t = 0; t < N_THREADS; t++)
        total += s.mismatches[t];
    print_message("  [%s] %d threads x %d rounds: %d rounds differ from the serial run\n", name,
                  N_THREADS, ROUNDS, total);
    assert_int_equal(total, 0);
}

static void test_concurrent_const_operations(void **state)
{
    (void)state;
    for (int v = 0; v < rel_n_variants; v++) {
        rel_fixture f;
        if (rel_fixture_init_variant(&f, NULL, &rel_variants[v]) && (f.model != NULL || f.toy != NULL))
            run_variant(&f, rel_variants[v].name);
        rel_fixture_free(&f);
    }
}

/* ---- independent handles built in parallel from shared const configurations ---------- */

typedef struct builder {
    const rel_fixture *f;
    uint64_t digest; /* trainer digest after a short run */
    int32_t status;
} builder;

/* Build a toy, model, trainer and metrics from the shared configs, train, measure. */
static void *build_and_train(void *arg)
{
    builder *b = arg;
    const rel_fixture *f = b->f;
    sae_toy *toy = NULL;
    sae_model *model = NULL;
    sae_trainer *tr = NULL;
    sae_metrics *mt = NULL;
    b->status = sae_toy_create(&toy, f->cfg[SAE_KIND_TOY], NULL);
    if (b->status == SAE_OK)
        b->status = sae_model_create(&model, f->cfg[SAE_KIND_MODEL], NULL);
    if (b->status == SAE_OK)
        b->status = sae_trainer_create(&tr, model, f->cfg[SAE_KIND_TRAINER], NULL);
    if (b->status == SAE_OK)
        b->status = sae_trainer_train_toy(tr, toy, 10);
    if (b->status == SAE_OK)
        b->status = sae_metrics_create(&mt, f->cfg[SAE_KIND_METRICS], NULL);
    if (b->status == SAE_OK)
        b->status = sae_metrics_compute(mt, model, toy);
    if (b->status == SAE_OK)
        b->digest = rel_digest_trainer(tr) ^ rel_digest_metrics(mt);
    sae_metrics_free(mt);
    sae_model_free(model); /* before its trainer: the trainer holds a reference */
    sae_trainer_free(tr);
    sae_toy_free(toy);
    return NULL;
}

static void test_parallel_independent_handles(void **state)
{
    rel_fixture *f = *state;
    if (f->trainer == NULL || f->toy == NULL || f->metrics == NULL)
        skip();
    builder serial = {f, 0, 0}, b[N_THREADS];
    build_and_train(&serial);
    assert_ok(serial.status);
    pthread_t th[N_THREADS];
    for (int t = 0; t < N_THREADS; t++) {
        b[t] = (builder){f, 0, 0};
        assert_int_equal(pthread_create(&th[t], NULL, build_and_train, &b[t]), 0);
    }
    for (int t = 0; t < N_THREADS; t++) {
        assert_int_equal(pthread_join(th[t], NULL), 0);
        assert_ok(b[t].status);
        assert_true(b[t].digest == serial.digest);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_concurrent_const_operations),
        cmocka_unit_test_setup_teardown(test_parallel_independent_handles, rel_setup, rel_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
