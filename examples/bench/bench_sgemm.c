/*
 * BLAS-only roofline for the SAE training step (issue 7).
 *
 * Times cblas_sgemm at exactly the shapes and transpositions a dense SAE step uses, for a
 * batch of n rows, input dimension d and L latents, in libsae's row-major layout (the
 * encoder is stored transposed, W_enc^T: L x d, like the decoder W_dec: L x d):
 *   enc      Z  (n x L) = X (n x d) . (W_enc^T)^T          forward encoder
 *   dec      X^ (n x d) = F (n x L) . W_dec                forward decoder
 *   dlat     dF (n x L) = dX^ (n x d) . W_dec^T            gradient into the latents
 *   dW_dec   (L x d)    = F^T (L x n) . dX^ (n x d)        decoder weight gradient
 *   dW_enc^T (L x d)    = dZ^T (L x n) . X (n x d)         encoder weight gradient
 * libsae runs a step in blocks of chunk_rows rows (trainer parameter, default 256): time
 * that with --n 256 (same d, L) and compare with the whole-batch figures.
 * Each is 2 n d L flops. The sum of the five best times is the dense floor of a ReLU
 * step; the encoder alone is the floor of a TopK step whose decoder and gradients are
 * sparse (only the k active latents per row touched, as in EleutherAI's sparsify).
 *
 * Usage: bench_sgemm [--config tiny|medium|large|all] [--n N --d D --L L]
 *                    [--threads T] [--min-time SECONDS]
 * Threads: OpenBLAS reads OPENBLAS_NUM_THREADS; --threads also calls
 * openblas_set_num_threads when the linked BLAS provides it.
 */
#define _POSIX_C_SOURCE 199309L /* clock_gettime */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* OpenBLAS extras, resolved only if the BLAS in use exports them (weak references). */
extern void openblas_set_num_threads(int n) __attribute__((weak));
extern int openblas_get_num_threads(void) __attribute__((weak));
extern char *openblas_get_config(void) __attribute__((weak));
extern char *openblas_get_corename(void) __attribute__((weak));

typedef struct shape {
    const char *name;
    long n, d, latents;
} shape;

static const shape presets[] = {
    {"tiny", 1024, 32, 128},
    {"medium", 4096, 256, 4096},
    {"large", 4096, 768, 16384},
};

typedef struct gemm_case {
    const char *op;
    CBLAS_TRANSPOSE ta, tb;
    long m, n, k;
} gemm_case;

static double clock_seconds(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static float *filled(size_t count, unsigned seed)
{
    float *p = malloc(count * sizeof *p);
    if (!p) {
        fprintf(stderr, "bench_sgemm: out of memory (%zu floats)\n", count);
        exit(1);
    }
    for (size_t i = 0; i < count; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = (float)(seed >> 8) / 16777216.0f - 0.5f;
    }
    return p;
}

/* Best wall time of one GEMM, repeated until min_time seconds have passed (at least 3
 * runs); *cpu gets the best process-CPU time (all threads), steadier on a busy machine. */
static double time_gemm(const gemm_case *g, double min_time, double *mean, double *cpu)
{
    /* Stored operand shapes: A is m x k (k x m if transposed), B is k x n (n x k). */
    long a_rows = g->ta == CblasTrans ? g->k : g->m, a_cols = g->ta == CblasTrans ? g->m : g->k;
    long b_rows = g->tb == CblasTrans ? g->n : g->k, b_cols = g->tb == CblasTrans ? g->k : g->n;
    float *a = filled((size_t)(a_rows * a_cols), 1u);
    float *b = filled((size_t)(b_rows * b_cols), 2u);
    float *c = filled((size_t)(g->m * g->n), 3u);
    double best = 1e30, best_cpu = 1e30, total = 0.0;
    int runs = 0;
    cblas_sgemm(CblasRowMajor, g->ta, g->tb, (int)g->m, (int)g->n, (int)g->k, 1.0f, a,
                (int)a_cols, b, (int)b_cols, 0.0f, c, (int)g->n); /* warm-up */
    while (runs < 3 || total < min_time) {
        double t0 = clock_seconds(CLOCK_MONOTONIC), c0 = clock_seconds(CLOCK_PROCESS_CPUTIME_ID);
        cblas_sgemm(CblasRowMajor, g->ta, g->tb, (int)g->m, (int)g->n, (int)g->k, 1.0f, a,
                    (int)a_cols, b, (int)b_cols, 0.0f, c, (int)g->n);
        double t = clock_seconds(CLOCK_MONOTONIC) - t0;
        double tc = clock_seconds(CLOCK_PROCESS_CPUTIME_ID) - c0;
        best = t < best ? t : best;
        best_cpu = tc < best_cpu ? tc : best_cpu;
        total += t;
        runs++;
    }
    free(a);
    free(b);
    free(c);
    *mean = total / runs;
    *cpu = best_cpu;
    return best;
}

static void run_shape(const shape *s, double min_time)
{
    const gemm_case cases[5] = {
        {"enc", CblasNoTrans, CblasTrans, s->n, s->latents, s->d},
        {"dec", CblasNoTrans, CblasNoTrans, s->n, s->d, s->latents},
        {"dlat", CblasNoTrans, CblasTrans, s->n, s->latents, s->d},
        {"dW_dec", CblasTrans, CblasNoTrans, s->latents, s->d, s->n},
        {"dW_enc", CblasTrans, CblasNoTrans, s->latents, s->d, s->n},
    };
    double flops = 2.0 * (double)s->n * (double)s->d * (double)s->latents;
    double dense_step = 0.0, enc_time = 0.0, dense_cpu = 0.0, enc_cpu = 0.0;
    for (int i = 0; i < 5; i++) {
        double mean, cpu, best = time_gemm(&cases[i], min_time, &mean, &cpu);
        printf("SGEMM config=%s n=%ld d=%ld L=%ld op=%s m=%ld n=%ld k=%ld best_ms=%.3f "
               "mean_ms=%.3f gflops=%.1f cpu_ms=%.3f cpu_gflops=%.1f\n",
               s->name, s->n, s->d, s->latents, cases[i].op, cases[i].m, cases[i].n, cases[i].k,
               1e3 * best, 1e3 * mean, flops / best * 1e-9, 1e3 * cpu, flops / cpu * 1e-9);
        dense_step += best;
        dense_cpu += cpu;
        if (i == 0)
            enc_time = best, enc_cpu = cpu;
    }
    /* The cpu_ ceilings are per CPU-second of all threads: compare them with other
     * per-CPU-second rates (sae_step_rate, torch_ref.py). */
    printf("ROOFLINE config=%s n=%ld d=%ld L=%ld dense_step_ms=%.3f dense_gflops=%.1f "
           "relu_samples_per_s_max=%.0f enc_only_ms=%.3f topk_samples_per_s_max=%.0f "
           "cpu_relu_samples_per_s_max=%.0f cpu_topk_samples_per_s_max=%.0f\n",
           s->name, s->n, s->d, s->latents, 1e3 * dense_step, 5.0 * flops / dense_step * 1e-9,
           (double)s->n / dense_step, 1e3 * enc_time, (double)s->n / enc_time,
           (double)s->n / dense_cpu, (double)s->n / enc_cpu);
}

static void print_blas_info(int threads)
{
    if (threads > 0 && openblas_set_num_threads)
        openblas_set_num_threads(threads);
    const char *env = getenv("OPENBLAS_NUM_THREADS");
    const char *core = getenv("OPENBLAS_CORETYPE");
    printf("BLAS config=\"%s\" core=%s blas_threads=%d OPENBLAS_NUM_THREADS=%s "
           "OPENBLAS_CORETYPE=%s\n",
           openblas_get_config ? openblas_get_config() : "unknown (not OpenBLAS)",
           openblas_get_corename ? openblas_get_corename() : "?",
           openblas_get_num_threads ? openblas_get_num_threads() : -1, env ? env : "(unset)",
           core ? core : "(unset)");
}

static long long_arg(const char *flag, const char *value)
{
    char *end;
    long v = value ? strtol(value, &end, 10) : 0;
    if (!value || *end || v <= 0) {
        fprintf(stderr, "bench_sgemm: %s needs a positive integer\n", flag);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    const char *config = "all";
    shape custom = {"custom", 0, 0, 0};
    int threads = 0;
    double min_time = 0.5;
    for (int i = 1; i < argc; i += 2) { /* options all take a value */
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(argv[i], "--config") && value)
            config = value;
        else if (!strcmp(argv[i], "--n"))
            custom.n = long_arg(argv[i], value);
        else if (!strcmp(argv[i], "--d"))
            custom.d = long_arg(argv[i], value);
        else if (!strcmp(argv[i], "--L"))
            custom.latents = long_arg(argv[i], value);
        else if (!strcmp(argv[i], "--threads"))
            threads = (int)long_arg(argv[i], value);
        else if (!strcmp(argv[i], "--min-time") && value)
            min_time = atof(value);
        else {
            fprintf(stderr, "usage: %s [--config tiny|medium|large|all] [--n N --d D --L L] "
                            "[--threads T] [--min-time S]\n", argv[0]);
            return 2;
        }
    }
    print_blas_info(threads);
    if (custom.n && custom.d && custom.latents) {
        run_shape(&custom, min_time);
        return 0;
    }
    int matched = 0;
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++)
        if (!strcmp(config, "all") || !strcmp(config, presets[i].name)) {
            run_shape(&presets[i], min_time);
            matched = 1;
        }
    if (!matched) {
        fprintf(stderr, "bench_sgemm: unknown config '%s'\n", config);
        return 2;
    }
    return 0;
}
