/* Shared plumbing of the experiment examples (see exp_util.h). */
#include "exp_util.h"

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
