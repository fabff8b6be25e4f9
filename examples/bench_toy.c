/* bench_toy: samples per second of the toy generator (issue 3).
 *   bench_toy [seconds-per-case]
 * Cases: (d=256, N=1024, ~8 active) and (d=768, N=8192, ~16 active), independent
 * Bernoulli firing with uniform magnitudes, x only and x + codes, 1 and 2 threads;
 * then the same shapes with a richer model (Zipf profile, clipped-normal magnitudes,
 * noise). Batches of 4096 rows, consecutive indices. Reports wall-clock samples/s and
 * samples per CPU-second (all threads), which is the steadier figure on a shared machine. */
#define _POSIX_C_SOURCE 199309L /* clock_gettime */
#include <sae/sae.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define BATCH 4096

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double now(void) { return clock_s(CLOCK_MONOTONIC); }
static double cpu_now(void) { return clock_s(CLOCK_PROCESS_CPUTIME_ID); }

static int check(int32_t st, const char *what)
{
    if (st != SAE_OK)
        fprintf(stderr, "%s: %s\n", what, sae_status_str(st));
    return st != SAE_OK;
}

typedef struct shape {
    int64_t d, n;
    double active;
} shape;

static sae_config *make_config(shape s, int rich, int64_t threads)
{
    sae_config *c = NULL;
    if (check(sae_config_create(&c, SAE_KIND_TOY, NULL), "config"))
        return NULL;
    int bad = check(sae_config_set_i64(c, SAE_TOY_N_FEATURES, s.n), "n_features") ||
              check(sae_config_set_i64(c, SAE_TOY_D, s.d), "d") ||
              check(sae_config_set_i64(c, SAE_TOY_N_THREADS, threads), "toy_threads");
    if (!bad && !rich) {
        bad = check(sae_config_set_f64(c, SAE_TOY_FIRE_PROB, s.active / (double)s.n), "fire_prob");
    } else if (!bad) {
        /* Zipf profile p_j = p0 (j+1)^-0.5 with p0 chosen for the same expected L0 */
        double sum = 0;
        for (int64_t j = 0; j < s.n; j++)
            sum += 1 / sqrt((double)(j + 1));
        bad = check(sae_config_set_i64(c, SAE_TOY_FIRE_PROFILE, SAE_TOY_FIRE_ZIPF), "fire_profile") ||
              check(sae_config_set_f64(c, SAE_TOY_ZIPF_EXPONENT, 0.5), "zipf_exponent") ||
              check(sae_config_set_f64(c, SAE_TOY_FIRE_PROB_MAX, s.active / sum), "fire_prob_max") ||
              check(sae_config_set_i64(c, SAE_TOY_MAG_MODEL, SAE_TOY_MAG_CLIPPED_NORMAL), "mag_model") ||
              check(sae_config_set_f64(c, SAE_TOY_NOISE_STD, 0.01), "noise_std");
    }
    if (bad) {
        sae_config_free(c);
        return NULL;
    }
    return c;
}

/* Samples per wall-clock second over about `seconds` of work; *per_cpu gets samples
 * per CPU-second. */
static double run(sae_toy *t, shape s, int codes, double seconds, double *l0, double *per_cpu)
{
    float *x = malloc((size_t)(BATCH * s.d) * sizeof *x);
    int64_t *ptr = malloc((BATCH + 1) * sizeof *ptr), cap = BATCH * (int64_t)(s.active * 4 + 64), nnz = 0;
    int32_t *f = malloc((size_t)cap * sizeof *f);
    float *m = malloc((size_t)cap * sizeof *m);
    double t0 = now(), t1 = t0, c0 = cpu_now();
    uint64_t rows = 0;
    int64_t total_nnz = 0;
    while (x && ptr && f && m && t1 - t0 < seconds) {
        int32_t st = codes ? sae_toy_sample_codes(t, rows, BATCH, x, s.d, ptr, f, m, cap, &nnz)
                           : sae_toy_sample(t, rows, BATCH, x, s.d);
        if (check(st, sae_toy_errmsg(t)))
            break;
        rows += BATCH;
        total_nnz += nnz;
        t1 = now();
    }
    *l0 = codes && rows ? (double)total_nnz / (double)rows : 0;
    *per_cpu = (double)rows / (cpu_now() - c0);
    free(x);
    free(ptr);
    free(f);
    free(m);
    return (double)rows / (t1 - t0);
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 2.0;
    const shape shapes[] = {{256, 1024, 8}, {768, 8192, 16}};
    printf("%s\n", sae_build_info());
    printf("%-25s %-8s %-7s %-4s %12s %14s %7s\n", "case", "model", "output", "thr", "samples/s",
           "per CPU-sec", "L0");
    for (int si = 0; si < 2; si++)
        for (int rich = 0; rich < 2; rich++)
            for (int64_t threads = 1; threads <= 2; threads++)
                for (int codes = 0; codes < 2; codes++) {
                    shape s = shapes[si];
                    sae_config *c = make_config(s, rich, threads);
                    sae_toy *t = NULL;
                    if (c == NULL || check(sae_toy_create(&t, c, NULL), "sae_toy_create")) {
                        sae_config_free(c);
                        return 1;
                    }
                    double l0, per_cpu, rate = run(t, s, codes, seconds, &l0, &per_cpu);
                    char name[64];
                    snprintf(name, sizeof name, "d=%lld N=%lld ~%g active", (long long)s.d,
                             (long long)s.n, s.active);
                    printf("%-25s %-8s %-7s %-4lld %12.0f %14.0f", name, rich ? "zipf+cn" : "bern+u",
                           codes ? "x+codes" : "x", (long long)threads, rate, per_cpu);
                    if (codes)
                        printf(" %7.2f", l0);
                    printf("\n");
                    fflush(stdout);
                    sae_toy_free(t);
                    sae_config_free(c);
                }
    return 0;
}
