/* Timing of sae_metrics_compute at scale (issue 5): N true features, L latents, d dims.
 *
 *   bench_metrics [N L d n_eval] [planted]
 *
 * Default N = 8192, L = 16384, d = 768, n_eval = 4096. "planted" makes every decoder row a
 * noisy copy of a true feature (each feature twice when L = 2N), so the matching has to
 * resolve contested columns; otherwise the model keeps its random initialisation.
 * Prints one line per metric group (computed alone) and the total with every group. */
#define _POSIX_C_SOURCE 199309L /* clock_gettime */
#include <sae/sae.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double clock_s(clockid_t id)
{
    struct timespec t;
    clock_gettime(id, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

typedef struct timing {
    double wall, cpu; /* cpu: all threads of this process (the machine may be shared) */
} timing;

static int check(int32_t st, const char *what, const char *msg)
{
    if (st != SAE_OK) {
        fprintf(stderr, "bench_metrics: %s: %s: %s\n", what, sae_status_str(st), msg ? msg : "");
        exit(1);
    }
    return 0;
}

/* Decoder rows = feature (j * 7919 mod N) + uniform noise of norm ~0.3; encoder =
 * decoder^T with bias -0.3, so a latent fires mostly with its feature (L0 ~ 2 x true L0). */
static void plant(sae_model *model, const sae_toy *toy, int64_t n, int64_t l, int64_t d)
{
    float *dict = malloc((size_t)(n * d) * sizeof(float));
    float *w = malloc((size_t)(l * d) * sizeof(float)), *wt = malloc((size_t)(l * d) * sizeof(float));
    check(sae_toy_dictionary(toy, dict, d), "dictionary", sae_toy_errmsg(toy));
    uint64_t s = 88172645463325252u;
    for (int64_t j = 0; j < l; j++) {
        int64_t f = (j * 7919) % n;
        for (int64_t k = 0; k < d; k++) {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            double u = ((double)(s >> 11) + 0.5) / 9007199254740992.0;
            w[j * d + k] = dict[f * d + k] + (float)((u - 0.5) * 0.3 * sqrt(12.0 / (double)d));
        }
    }
    for (int64_t j = 0; j < l; j++)
        for (int64_t k = 0; k < d; k++)
            wt[k * l + j] = w[j * d + k];
    check(sae_model_set_tensor(model, SAE_TENSOR_W_DEC, w, d), "W_dec", sae_model_errmsg(model));
    check(sae_model_set_tensor(model, SAE_TENSOR_W_ENC, wt, l), "W_enc", sae_model_errmsg(model));
    for (int64_t j = 0; j < l; j++)
        wt[j] = -0.3f;
    check(sae_model_set_tensor(model, SAE_TENSOR_B_ENC, wt, l), "b_enc", sae_model_errmsg(model));
    free(dict), free(w), free(wt);
}

static timing run(const sae_model *model, const sae_toy *toy, int64_t groups, int64_t n_eval)
{
    sae_config *cfg = NULL;
    sae_metrics *m = NULL;
    check(sae_config_create(&cfg, SAE_KIND_METRICS, NULL), "config", NULL);
    check(sae_config_set_i64(cfg, SAE_METRICS_COMPUTE, groups), "metrics_compute", sae_config_errmsg(cfg));
    check(sae_config_set_i64(cfg, SAE_METRICS_N_EVAL, n_eval), "n_eval", sae_config_errmsg(cfg));
    check(sae_config_set_i64(cfg, SAE_METRICS_N_THREADS, 2), "metrics_threads", sae_config_errmsg(cfg));
    check(sae_metrics_create(&m, cfg, NULL), "metrics_create", sae_config_errmsg(cfg));
    double t0 = clock_s(CLOCK_MONOTONIC), c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
    check(sae_metrics_compute(m, model, toy), "compute", sae_metrics_errmsg(m));
    timing dt = {clock_s(CLOCK_MONOTONIC) - t0, clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0};
    if (groups == SAE_MG_ALL) {
        const struct { int32_t key; const char *name; } show[] = {
            {SAE_METRIC_MMCS_TRUE, "mmcs_true"}, {SAE_METRIC_MMCS_LEARNED, "mmcs_learned"},
            {SAE_METRIC_MATCH_MEAN_COS, "match_mean_cos"}, {SAE_METRIC_MATCH_COST_GAP, "match_certificate"},
            {SAE_METRIC_ENC_MATCH_MEAN_COS, "enc_match_mean_cos"}, {SAE_METRIC_N_COMPOSED, "n_composed"},
            {SAE_METRIC_MEAN_BEST_F1, "mean_best_f1"}, {SAE_METRIC_L0_MEAN, "l0"},
            {SAE_METRIC_FVU, "fvu"}, {SAE_METRIC_DEC_MAX_COS_MEAN, "dec_max_cos_mean"},
            {SAE_METRIC_SBW_SN, "s_n"}};
        for (size_t i = 0; i < sizeof show / sizeof show[0]; i++) {
            double v = NAN;
            if (sae_metrics_get(m, show[i].key, &v) == SAE_OK)
                printf("    %-20s %.6g\n", show[i].name, v);
        }
    }
    sae_metrics_free(m);
    sae_config_free(cfg);
    return dt;
}

int main(int argc, char **argv)
{
    int64_t n = 8192, l = 16384, d = 768, n_eval = 4096;
    int planted = argc > 1 && strcmp(argv[argc - 1], "planted") == 0;
    if (argc >= 5) {
        n = atoll(argv[1]), l = atoll(argv[2]), d = atoll(argv[3]), n_eval = atoll(argv[4]);
    }
    sae_config *tc = NULL, *mc = NULL;
    sae_toy *toy = NULL;
    sae_model *model = NULL;
    check(sae_config_create(&tc, SAE_KIND_TOY, NULL), "toy config", NULL);
    check(sae_config_set_i64(tc, SAE_TOY_N_FEATURES, n), "n_features", sae_config_errmsg(tc));
    check(sae_config_set_i64(tc, SAE_TOY_D, d), "d", sae_config_errmsg(tc));
    check(sae_config_set_f64(tc, SAE_TOY_FIRE_PROB, 32.0 / (double)n), "fire_prob", sae_config_errmsg(tc));
    check(sae_config_create(&mc, SAE_KIND_MODEL, NULL), "model config", NULL);
    check(sae_config_set_i64(mc, SAE_MODEL_D_IN, d), "d_in", sae_config_errmsg(mc));
    check(sae_config_set_i64(mc, SAE_MODEL_N_LATENTS, l), "n_latents", sae_config_errmsg(mc));
    check(sae_toy_create(&toy, tc, NULL), "toy", sae_config_errmsg(tc));
    check(sae_model_create(&model, mc, NULL), "model", sae_config_errmsg(mc));
    if (planted)
        plant(model, toy, n, l, d);
    printf("bench_metrics: N=%lld L=%lld d=%lld n_eval=%lld decoder=%s\n  %s\n", (long long)n,
           (long long)l, (long long)d, (long long)n_eval, planted ? "planted" : "random",
           sae_build_info());
    const struct { int64_t g; const char *name; } groups[] = {
        {SAE_MG_RECOVERY, "recovery (cosine GEMM + maxima)"},
        {SAE_MG_RECOVERY | SAE_MG_MATCHING, "+ exact matching"},
        {SAE_MG_RECOVERY | SAE_MG_COMPOSITION, "+ composition (NNLS)"},
        {SAE_MG_ENCODER, "encoder cosines"},
        {SAE_MG_ACTIVATION, "activation (2 passes)"},
        {SAE_MG_HISTOGRAMS, "histograms"},
        {SAE_MG_RECONSTRUCTION, "reconstruction"},
        {SAE_MG_DECODER_PAIRS, "decoder pairs (L x L)"},
        {SAE_MG_SBW, "n-th decoder projection"}};
    printf("  %-34s %9s %9s\n", "group (computed alone)", "wall s", "cpu s");
    for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++) {
        timing t = run(model, toy, groups[i].g, n_eval);
        printf("  %-34s %9.2f %9.2f\n", groups[i].name, t.wall, t.cpu);
        fflush(stdout);
    }
    timing total = run(model, toy, SAE_MG_ALL, n_eval);
    printf("  %-34s %9.2f %9.2f\n", "ALL groups in one compute", total.wall, total.cpu);
    sae_model_free(model);
    sae_toy_free(toy);
    sae_config_free(mc);
    sae_config_free(tc);
    return 0;
}
