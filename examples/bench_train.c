/* Training throughput of libsae: tiny / medium / large toy settings for ReLU-L1, TopK (k=8)
 * and BatchTopK (k=8). Each configuration runs in its own child process so its peak RSS is
 * its own. Per configuration: samples per wall second and per CPU second, ms/step, the
 * per-phase breakdown from the trainer's timers (SAE_STAT_TIME_*), the achieved GFLOP/s of
 * the dense products over the phases that run them, peak RSS, loss and L0.
 * Usage: bench_train [filter] [steps_scale] [threads] [low_precision] [trained]
 *   filter: substring of "tiny-relu", "medium-topk", ... (default: all)
 *   steps_scale: multiplies the default step counts (default 1)
 *   threads: the trainer's n_threads and the generator's toy_threads (default 1); with
 *   more than one, run with
 *   OPENBLAS_NUM_THREADS=1 so that libsae splits the products over these threads
 *   (docs/threading.md)
 *   low_precision: 0 turns the trainer's bf16_scores off (float encoder products), to
 *   compare (default 1)
 *   trained: training steps run (untimed) before the timed ones, to measure the state
 *   training brings an SAE to (default 0; a ReLU SAE's codes become sparse) */
#define _POSIX_C_SOURCE 200809L
#include <sae/sae.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct size_cfg {
    const char *name;
    int64_t d, n_features, n_latents, batch, steps;
    double fire_prob;
} size_cfg;

typedef struct arch_cfg {
    const char *name;
    int64_t arch, k;
} arch_cfg;

static const size_cfg sizes[] = {
    {"tiny", 32, 64, 128, 1024, 400, 0.05},
    {"medium", 256, 1024, 4096, 4096, 12, 0.01},
    {"large", 768, 8192, 16384, 4096, 4, 0.002},
};
static const arch_cfg archs[] = {
    {"relu", SAE_ARCH_RELU, 8},
    {"topk", SAE_ARCH_TOPK, 8},
    {"batchtopk", SAE_ARCH_BATCHTOPK, 8},
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* CPU seconds of this process (user + system, every thread). */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

enum { N_PHASES = 7 };
static const char *const phase_name[N_PHASES] = {"gen", "enc", "act", "dec", "bwd", "adam",
                                                 "constr"};

#define CHECK(expr)                                                                          \
    do {                                                                                     \
        int32_t st_ = (expr);                                                                \
        if (st_ != SAE_OK) {                                                                 \
            fprintf(stderr, "%s failed: %s\n", #expr, sae_status_str(st_));                  \
            exit(1);                                                                         \
        }                                                                                    \
    } while (0)

static sae_config *config(int32_t kind)
{
    sae_config *c = NULL;
    CHECK(sae_config_create(&c, kind, NULL));
    return c;
}

static int64_t low_precision = 1; /* the trainer's bf16_scores (argument 4) */
static int64_t trained = 0;       /* untimed training steps (argument 5) */

/* One configuration; prints one line. Runs in a child process. */
static void run(const size_cfg *s, const arch_cfg *a, double scale, int64_t threads)
{
    sae_config *tc = config(SAE_KIND_TOY), *mc = config(SAE_KIND_MODEL),
               *rc = config(SAE_KIND_TRAINER);
    CHECK(sae_config_set_i64(tc, SAE_TOY_N_FEATURES, s->n_features));
    CHECK(sae_config_set_i64(tc, SAE_TOY_D, s->d));
    CHECK(sae_config_set_f64(tc, SAE_TOY_FIRE_PROB, s->fire_prob));
    CHECK(sae_config_set_i64(tc, SAE_TOY_N_THREADS, threads));
    CHECK(sae_config_set_i64(mc, SAE_MODEL_D_IN, s->d));
    CHECK(sae_config_set_i64(mc, SAE_MODEL_N_LATENTS, s->n_latents));
    CHECK(sae_config_set_i64(mc, SAE_MODEL_ARCH, a->arch));
    CHECK(sae_config_set_i64(mc, SAE_MODEL_K, a->k));
    CHECK(sae_config_set_i64(rc, SAE_TRAINER_BATCH_SIZE, s->batch));
    CHECK(sae_config_set_i64(rc, SAE_TRAINER_N_THREADS, threads));
    CHECK(sae_config_set_i64(rc, SAE_TRAINER_BF16_SCORES, low_precision));
    CHECK(sae_config_set_f64(rc, SAE_TRAINER_L1_COEFF, 0.01));
    sae_toy *toy = NULL;
    sae_model *m = NULL;
    sae_trainer *t = NULL;
    CHECK(sae_toy_create(&toy, tc, NULL));
    CHECK(sae_model_create(&m, mc, NULL));
    CHECK(sae_trainer_create(&t, m, rc, NULL));
    int64_t steps = (int64_t)(s->steps * scale);
    if (steps < 1)
        steps = 1;
    /* warm-up: first-touch of every buffer, then the untimed training steps */
    CHECK(sae_trainer_train_toy(t, toy, 1 + trained));
    double ph0[N_PHASES], ph[N_PHASES];
    for (int p = 0; p < N_PHASES; p++)
        CHECK(sae_trainer_stat(t, SAE_STAT_TIME_GENERATE + p, &ph0[p]));
    double t0 = now(), c0 = cpu_now();
    CHECK(sae_trainer_train_toy(t, toy, steps));
    double el = now() - t0, cpu = cpu_now() - c0;
    for (int p = 0; p < N_PHASES; p++) {
        CHECK(sae_trainer_stat(t, SAE_STAT_TIME_GENERATE + p, &ph[p]));
        ph[p] = 1e3 * (ph[p] - ph0[p]) / (double)steps; /* ms per step */
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double loss, l0;
    CHECK(sae_trainer_stat(t, SAE_STAT_LOSS, &loss));
    CHECK(sae_trainer_stat(t, SAE_STAT_L0, &l0));
    /* encoder product 2 n L d flops; ReLU also: decoder, decoder grad, dLoss/dz, encoder grad */
    double dense = 2.0 * (double)s->batch * (double)s->n_latents * (double)s->d *
                   (a->arch == SAE_ARCH_RELU ? 5.0 : 1.0);
    /* issue 4 bound: 1.5 x (parameters + two Adam moments + one batch), in MiB */
    double floats = 0.0;
    for (int32_t w = SAE_TENSOR_W_ENC; w <= SAE_TENSOR_B_DEC; w++) {
        int64_t rows, cols;
        CHECK(sae_model_tensor_shape(m, w, &rows, &cols));
        floats += (double)(rows * cols);
    }
    double bound = 1.5 * (3.0 * floats + (double)(s->batch * s->d)) * 4.0 / 1048576.0;
    /* the dense products run in the encoder phase, and for ReLU also in decode + backward */
    double dense_ms = ph[1] + (a->arch == SAE_ARCH_RELU ? ph[3] + ph[4] : 0.0);
    printf("%-7s %-10s trained %lld steps %4lld  %10.0f samples/s  %10.0f samples/CPU-s  %9.2f ms/step  "
           "dense %6.1f GFLOP/s  peak RSS %7.1f MiB (bound %.1f)  loss %.4g  L0 %.2f\n",
           s->name, a->name, (long long)trained, (long long)steps, (double)(steps * s->batch) / el,
           (double)(steps * s->batch) / cpu, 1e3 * el / (double)steps,
           dense_ms > 0 ? dense / dense_ms * 1e-6 : 0.0, (double)ru.ru_maxrss / 1024.0, bound,
           loss, l0);
    printf("        ms/step:");
    for (int p = 0; p < N_PHASES; p++)
        printf("  %s %.2f", phase_name[p], ph[p]);
    printf("  (other %.2f)\n", 1e3 * el / (double)steps - (ph[0] + ph[1] + ph[2] + ph[3] +
                                                              ph[4] + ph[5] + ph[6]));
    fflush(stdout);
    sae_trainer_free(t);
    sae_model_free(m);
    sae_toy_free(toy);
    sae_config_free(tc);
    sae_config_free(mc);
    sae_config_free(rc);
}

int main(int argc, char **argv)
{
    const char *filter = argc > 1 ? argv[1] : "";
    double scale = argc > 2 ? atof(argv[2]) : 1.0;
    int64_t threads = argc > 3 ? atoll(argv[3]) : 1;
    low_precision = argc > 4 ? atoll(argv[4]) != 0 : 1;
    trained = argc > 5 && atoll(argv[5]) > 0 ? atoll(argv[5]) : 0;
    const char *coretype = getenv("OPENBLAS_CORETYPE"), *ob = getenv("OPENBLAS_NUM_THREADS");
    const char *wait = getenv("OMP_WAIT_POLICY");
    printf("libsae %s | %s | trainer threads %lld | OPENBLAS_CORETYPE=%s "
           "OPENBLAS_NUM_THREADS=%s OMP_WAIT_POLICY=%s\n", sae_version_string(), sae_build_info(),
           (long long)threads, coretype ? coretype : "(unset)", ob ? ob : "(unset)",
           wait ? wait : "(unset)");
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        for (size_t j = 0; j < sizeof archs / sizeof archs[0]; j++) {
            char name[64];
            snprintf(name, sizeof name, "%s-%s", sizes[i].name, archs[j].name);
            if (strstr(name, filter) == NULL)
                continue;
            fflush(stdout);
            pid_t pid = fork();
            if (pid == 0) {
                run(&sizes[i], &archs[j], scale, threads);
                _exit(0);
            }
            int status = 0;
            waitpid(pid, &status, 0);
            if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                printf("%s: failed\n", name);
        }
    return 0;
}
