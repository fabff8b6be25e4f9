/* Shared plumbing of the experiment examples (see exp_util.h). */
#include "exp_util.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int n_failures;

static int parse_i64(const char *text, int64_t lo, int64_t *value)
{
    char *end = NULL;
    long long v = strtoll(text, &end, 10);
    if (end == text || *end != '\0' || v < lo)
        return -1;
    *value = v;
    return 0;
}

int exp_parse_args(int argc, char **argv, const char *usage_extra, exp_args *args)
{
    *args = (exp_args){.out = ".", .seed = 1, .threads = 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *next = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--quick") == 0)
            args->quick = 1;
        else if (strcmp(a, "--check") == 0)
            args->check = 1;
        else if (strcmp(a, "--out") == 0 && next != NULL)
            args->out = argv[++i];
        else if (strcmp(a, "--seed") == 0 && next != NULL && parse_i64(next, 0, &args->seed) == 0)
            i++;
        else if (strcmp(a, "--threads") == 0 && next != NULL &&
                 parse_i64(next, 1, &args->threads) == 0)
            i++;
        else {
            fprintf(stderr, "usage: %s [--quick] [--check] [--out DIR|-] [--seed N] "
                            "[--threads N]%s%s\n", argv[0], usage_extra ? "\n" : "",
                    usage_extra ? usage_extra : "");
            return -1;
        }
    }
    return 0;
}

int exp_fail(const char *call, int32_t status, const char *message)
{
    fprintf(stderr, "%s: %s%s%s\n", call, sae_status_str(status),
            message != NULL && message[0] != '\0' ? ": " : "", message != NULL ? message : "");
    return 1;
}

int exp_expect(int cond, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("  [%s] ", cond ? "ok" : "FAILED");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    n_failures += !cond;
    return cond;
}

int exp_failures(void) { return n_failures; }

int exp_exit_status(const exp_args *args)
{
    if (n_failures > 0)
        printf("\n%d expected outcome(s) not reproduced\n", n_failures);
    return args->check && n_failures > 0 ? 1 : 0;
}

int exp_figure_path(const exp_args *args, const char *name, char *path, int cap)
{
    if (strcmp(args->out, "-") == 0)
        return -1;
    int n = snprintf(path, (size_t)cap, "%s/%s", args->out, name);
    return n > 0 && n < cap ? 0 : -1;
}

sae_config *exp_config(int32_t kind, ...)
{
    sae_config *cfg = NULL;
    int32_t s = sae_config_create(&cfg, kind, NULL);
    if (s != SAE_OK) {
        exp_fail("sae_config_create", s, NULL);
        return NULL;
    }
    va_list ap;
    va_start(ap, kind);
    for (const char *name = va_arg(ap, const char *); name != NULL;
         name = va_arg(ap, const char *)) {
        double value = va_arg(ap, double);
        if ((s = sae_config_set_by_name(cfg, name, value)) != SAE_OK) {
            fprintf(stderr, "parameter %s = %g: ", name, value);
            exp_fail("sae_config_set_by_name", s, sae_config_errmsg(cfg));
            sae_config_free(cfg);
            cfg = NULL;
            break;
        }
    }
    va_end(ap);
    return cfg;
}

int exp_set_i64s(sae_config *cfg, int32_t key, const int64_t *values, int64_t n)
{
    int32_t s = sae_config_set_i64_array(cfg, key, values, n);
    return s == SAE_OK ? 0 : exp_fail("sae_config_set_i64_array", s, sae_config_errmsg(cfg));
}

int exp_set_f64s(sae_config *cfg, int32_t key, const double *values, int64_t n)
{
    int32_t s = sae_config_set_f64_array(cfg, key, values, n);
    return s == SAE_OK ? 0 : exp_fail("sae_config_set_f64_array", s, sae_config_errmsg(cfg));
}

double exp_metric(const sae_metrics *metrics, int32_t which)
{
    double v = 0;
    return sae_metrics_get(metrics, which, &v) == SAE_OK ? v : NAN;
}

float *exp_array(const sae_metrics *metrics, int32_t which, int64_t *rows, int64_t *cols)
{
    if (sae_metrics_array_shape(metrics, which, rows, cols) != SAE_OK || *rows * *cols <= 0)
        return NULL;
    float *a = malloc(sizeof(float) * (size_t)(*rows * *cols));
    if (a != NULL && sae_metrics_copy_array(metrics, which, a, *cols) != SAE_OK) {
        free(a);
        a = NULL;
    }
    return a;
}

sae_toy *exp_toy(const sae_config *cfg)
{
    sae_toy *t = NULL;
    int32_t s = cfg != NULL ? sae_toy_create(&t, cfg, NULL) : SAE_E_NULL;
    if (s != SAE_OK)
        exp_fail("sae_toy_create", s, cfg != NULL ? sae_config_errmsg(cfg) : NULL);
    return s == SAE_OK ? t : NULL;
}

sae_model *exp_model(const sae_config *cfg)
{
    sae_model *m = NULL;
    int32_t s = cfg != NULL ? sae_model_create(&m, cfg, NULL) : SAE_E_NULL;
    if (s != SAE_OK)
        exp_fail("sae_model_create", s, cfg != NULL ? sae_config_errmsg(cfg) : NULL);
    return s == SAE_OK ? m : NULL;
}

sae_trainer *exp_trainer(sae_model *model, const sae_config *cfg)
{
    sae_trainer *t = NULL;
    int32_t s = cfg != NULL && model != NULL ? sae_trainer_create(&t, model, cfg, NULL) : SAE_E_NULL;
    if (s != SAE_OK)
        exp_fail("sae_trainer_create", s, cfg != NULL ? sae_config_errmsg(cfg) : NULL);
    return s == SAE_OK ? t : NULL;
}

sae_metrics *exp_metrics(const sae_config *cfg)
{
    sae_metrics *m = NULL;
    int32_t s = cfg != NULL ? sae_metrics_create(&m, cfg, NULL) : SAE_E_NULL;
    if (s != SAE_OK)
        exp_fail("sae_metrics_create", s, cfg != NULL ? sae_config_errmsg(cfg) : NULL);
    return s == SAE_OK ? m : NULL;
}
