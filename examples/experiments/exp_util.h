/* Shared plumbing of the experiment examples: command line, failure reporting, the
 * asserted-outcome checks of --check, and figure paths. */
#ifndef SAE_EXAMPLES_EXP_UTIL_H
#define SAE_EXAMPLES_EXP_UTIL_H

#include <sae/sae.h>

#include <stdint.h>

/** Command line shared by every experiment:
 *    [--quick] [--check] [--out DIR] [--seed N] [--threads N]
 *  --quick   the CI size (well under a minute with OpenBLAS); default is the full size
 *  --check   exit with status 1 unless every published outcome was reproduced
 *  --out     folder for the SVG figures (default "."; "-" writes none)
 *  --seed    base seed of toys and models (default 1)
 *  --threads training threads (default 1; results do not depend on it for generation) */
typedef struct exp_args {
    int quick, check;
    const char *out;
    int64_t seed;
    int64_t threads;
} exp_args;

/** Parses argv into args; prints usage and returns -1 on a bad command line. */
int exp_parse_args(int argc, char **argv, const char *usage_extra, exp_args *args);

/** Prints "name: call: status: message" to stderr and returns 1 (for `return exp_fail(...)`). */
int exp_fail(const char *call, int32_t status, const char *message);

/** Returns 1 from the calling function when a libsae call fails, printing the message. */
#define EXP_TRY(call, errmsg)                                                             \
    do {                                                                                  \
        int32_t exp_s_ = (call);                                                          \
        if (exp_s_ != SAE_OK)                                                             \
            return exp_fail(#call, exp_s_, (errmsg));                                     \
    } while (0)

/** Records one asserted outcome: prints "[ok]" or "[FAILED]" with the description and
 *  counts failures; returns cond. */
int exp_expect(int cond, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/** Number of exp_expect failures so far. */
int exp_failures(void);

/** Exit status of main: 0, or 1 when --check was given and an outcome failed. */
int exp_exit_status(const exp_args *args);

/** Writes "<out>/<name>" into path (cap bytes); returns 0, or -1 when figures are off
 *  (--out -) or the path does not fit. */
int exp_figure_path(const exp_args *args, const char *name, char *path, int cap);

#endif

/** A configuration of kind with scalar parameters set by name: pairs of (const char *name,
 *  double value) ending with NULL. Prints the reason and returns NULL on failure. */
sae_config *exp_config(int32_t kind, ...);

/** Sets an array parameter; prints the reason and returns 1 on failure. */
int exp_set_i64s(sae_config *cfg, int32_t key, const int64_t *values, int64_t n);
int exp_set_f64s(sae_config *cfg, int32_t key, const double *values, int64_t n);

/** A scalar result, NaN when it is not available. */
double exp_metric(const sae_metrics *metrics, int32_t which);

/** A malloc'd copy of an array result (rows x cols, dense); NULL when not available. */
float *exp_array(const sae_metrics *metrics, int32_t which, int64_t *rows, int64_t *cols);

/** A toy, model, trainer or metrics handle from a configuration, printing the reason on
 *  failure (NULL). */
sae_toy *exp_toy(const sae_config *cfg);
sae_model *exp_model(const sae_config *cfg);
sae_trainer *exp_trainer(sae_model *model, const sae_config *cfg);
sae_metrics *exp_metrics(const sae_config *cfg);
