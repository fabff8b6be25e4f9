/*
 * libsae's training step timed the way examples/bench/torch_ref.py times PyTorch's: a
 * pool of 4 pre-generated toy batches cycled through sae_trainer_step, one warm-up step,
 * then wall-clock AND process-CPU time over the timed steps. The per-CPU-second rate is
 * the steady figure on a shared machine, where other jobs inflate wall-clock times
 * (bench_train, which includes generation, reports wall-clock only).
 *
 *   sae_step_rate tiny|medium|large|D:N:L:BATCH:P relu|topk|batchtopk [steps] [threads] [trained]
 *                 [chunk_rows]
 *
 * D:N:L:BATCH:P is any other shape: input dimension, true features, latents, batch size and
 * firing probability (e.g. 64:256:512:1024:0.02).
 * chunk_rows: the trainer's rows per block inside a step (0, the default: its own choice).
 * trained: that many training steps (untimed, after the warm-up step) before the timed
 * ones, to measure an SAE in the state training brings it to (a ReLU SAE's codes become
 * sparse, and libsae then decodes and differentiates on them; docs/performance.md).
 *
 * Prints a PHASES line (the trainer's phase timers over the timed steps, wall-clock ms per
 * step) and then the RESULT line. Configurations match examples/bench_train.c (k = 8,
 * l1_coefficient 0.01).
 */
#define _POSIX_C_SOURCE 199309L /* clock_gettime */
#include <sae/sae.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

enum { POOL = 4 };

typedef struct bench_cfg {
    const char *name;
    int64_t d, n_features, n_latents, batch;
    double fire_prob;
} bench_cfg;

static const bench_cfg configs[] = {
    {"tiny", 32, 64, 128, 1024, 0.05},
    {"medium", 256, 1024, 4096, 4096, 0.01},
    {"large", 768, 8192, 16384, 4096, 0.002},
};

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void check(int32_t status, const char *what)
{
    if (status != SAE_OK) {
        fprintf(stderr, "sae_step_rate: %s: %s\n", what, sae_status_str(status));
        exit(1);
    }
}

static int64_t arch_of(const char *name)
{
    if (!strcmp(name, "relu"))
        return SAE_ARCH_RELU;
    if (!strcmp(name, "topk"))
        return SAE_ARCH_TOPK;
    if (!strcmp(name, "batchtopk"))
        return SAE_ARCH_BATCHTOPK;
    fprintf(stderr, "sae_step_rate: unknown architecture '%s'\n", name);
    exit(2);
}

enum { N_PHASES = 6 };
static const char *const phase_name[N_PHASES] = {"enc", "act", "dec", "bwd", "adam", "constr"};

static const bench_cfg *config_of(const char *name)
{
    static bench_cfg custom = {"custom", 0, 0, 0, 0, 0.0};
    for (size_t i = 0; i < sizeof configs / sizeof configs[0]; i++)
        if (!strcmp(name, configs[i].name))
            return &configs[i];
    long long d, nf, nl, b;
    if (sscanf(name, "%lld:%lld:%lld:%lld:%lf", &d, &nf, &nl, &b, &custom.fire_prob) == 5 &&
        d > 0 && nf > 0 && nl > 0 && b > 0) {
        custom.d = d, custom.n_features = nf, custom.n_latents = nl, custom.batch = b;
        return &custom;
    }
    fprintf(stderr, "sae_step_rate: unknown configuration '%s'\n", name);
    exit(2);
}

/* Toy, model and trainer of one configuration. */
static void build(const bench_cfg *c, int64_t arch, int64_t threads, int64_t chunk_rows,
                  sae_toy **toy, sae_model **model, sae_trainer **trainer)
{
    sae_config *tc, *mc, *rc;
    check(sae_config_create(&tc, SAE_KIND_TOY, NULL), "config");
    check(sae_config_create(&mc, SAE_KIND_MODEL, NULL), "config");
    check(sae_config_create(&rc, SAE_KIND_TRAINER, NULL), "config");
    check(sae_config_set_i64(tc, SAE_TOY_N_FEATURES, c->n_features), "n_features");
    check(sae_config_set_i64(tc, SAE_TOY_D, c->d), "d");
    check(sae_config_set_f64(tc, SAE_TOY_FIRE_PROB, c->fire_prob), "fire_prob");
    check(sae_config_set_i64(mc, SAE_MODEL_D_IN, c->d), "d_in");
    check(sae_config_set_i64(mc, SAE_MODEL_N_LATENTS, c->n_latents), "n_latents");
    check(sae_config_set_i64(mc, SAE_MODEL_ARCH, arch), "arch");
    check(sae_config_set_i64(mc, SAE_MODEL_K, 8), "k");
    check(sae_config_set_i64(rc, SAE_TRAINER_BATCH_SIZE, c->batch), "batch_size");
    check(sae_config_set_i64(rc, SAE_TRAINER_N_THREADS, threads), "n_threads");
    check(sae_config_set_f64(rc, SAE_TRAINER_L1_COEFF, 0.01), "l1_coefficient");
    check(sae_config_set_i64(rc, SAE_TRAINER_CHUNK_ROWS, chunk_rows), "chunk_rows");
    check(sae_toy_create(toy, tc, NULL), "sae_toy_create");
    check(sae_model_create(model, mc, NULL), "sae_model_create");
    check(sae_trainer_create(trainer, *model, rc, NULL), "sae_trainer_create");
    sae_config_free(tc);
    sae_config_free(mc);
    sae_config_free(rc);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s tiny|medium|large|D:N:L:BATCH:P relu|topk|batchtopk [steps] [threads] "
                        "[trained] [chunk_rows]\n",
                argv[0]);
        return 2;
    }
    const bench_cfg *c = config_of(argv[1]);
    int64_t arch = arch_of(argv[2]);
    int64_t steps = argc > 3 ? atoll(argv[3]) : 10, threads = argc > 4 ? atoll(argv[4]) : 1;
    int64_t trained = argc > 5 ? atoll(argv[5]) : 0, chunk_rows = argc > 6 ? atoll(argv[6]) : 0;
    if (steps < 1 || threads < 1 || trained < 0 || chunk_rows < 0)
        return 2;
    sae_toy *toy;
    sae_model *model;
    sae_trainer *trainer;
    build(c, arch, threads, chunk_rows, &toy, &model, &trainer);
    size_t rows = (size_t)(c->batch * c->d);
    float *pool = malloc(POOL * rows * sizeof *pool);
    if (pool == NULL)
        return 1;
    for (int b = 0; b < POOL; b++)
        check(sae_toy_sample(toy, (uint64_t)(b * c->batch), c->batch, pool + b * rows, c->d),
              "sae_toy_sample");
    for (int64_t s = 0; s <= trained; s++) /* the warm-up step, then the training ones */
        check(sae_trainer_step(trainer, pool + (s % POOL) * rows, c->batch, c->d),
              sae_trainer_errmsg(trainer));
    double ph0[N_PHASES], ph[N_PHASES];
    for (int p = 0; p < N_PHASES; p++)
        check(sae_trainer_stat(trainer, SAE_STAT_TIME_ENCODE + p, &ph0[p]), "stat");
    double w0 = clock_s(CLOCK_MONOTONIC), c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
    for (int64_t s = 0; s < steps; s++)
        check(sae_trainer_step(trainer, pool + ((trained + s + 1) % POOL) * rows, c->batch, c->d),
              sae_trainer_errmsg(trainer));
    double wall = clock_s(CLOCK_MONOTONIC) - w0, cpu = clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
    printf("PHASES ms/step (wall):");
    for (int p = 0; p < N_PHASES; p++) {
        check(sae_trainer_stat(trainer, SAE_STAT_TIME_ENCODE + p, &ph[p]), "stat");
        printf(" %s %.2f", phase_name[p], 1e3 * (ph[p] - ph0[p]) / (double)steps);
    }
    printf("\n");
    double loss, l0;
    check(sae_trainer_stat(trainer, SAE_STAT_LOSS, &loss), "stat");
    check(sae_trainer_stat(trainer, SAE_STAT_L0, &l0), "stat");
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double samples = (double)(steps * c->batch);
    printf("RESULT impl=libsae mode=step config=%s arch=%s threads=%lld trained=%lld steps=%lld "
           "ms_per_step=%.3f cpu_ms_per_step=%.3f samples_per_s=%.1f cpu_samples_per_s=%.1f "
           "peak_rss_mb=%.1f loss=%.5g l0=%.2f\n",
           c->name, argv[2], (long long)threads, (long long)trained, (long long)steps, 1e3 * wall / (double)steps,
           1e3 * cpu / (double)steps, samples / wall, samples / cpu,
           (double)ru.ru_maxrss / 1024.0, loss, l0);
    free(pool);
    sae_trainer_free(trainer);
    sae_model_free(model);
    sae_toy_free(toy);
    return 0;
}
