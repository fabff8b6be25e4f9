/* Writes the seed corpora of the fuzz harnesses (tests/fuzz/corpus/<target>/): small valid
 * buffers of every object kind and architecture, prefixed with the harness mode byte.
 * Usage: make_seeds <corpus dir>. Run by build.sh --seeds; the output is committed. */
#include <sae/sae.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *root;

static void die(const char *what, int32_t st)
{
    fprintf(stderr, "make_seeds: %s: %s\n", what, sae_status_str(st));
    exit(1);
}

static void put(const char *target, const char *name, unsigned mode, const void *buf, size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", root, target);
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        die(path, SAE_E_INVALID);
    snprintf(path, sizeof path, "%s/%s/%s", root, target, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        die(path, SAE_E_INVALID);
    unsigned char m = (unsigned char)mode;
    fwrite(&m, 1, 1, f);
    fwrite(buf, 1, n, f);
    fclose(f);
}

typedef int32_t (*ser_fn)(const void *, void *, size_t, size_t *);
static int32_t s_cfg(const void *o, void *b, size_t c, size_t *w) { return sae_config_serialize(o, b, c, w); }
static int32_t s_toy(const void *o, void *b, size_t c, size_t *w) { return sae_toy_serialize(o, b, c, w); }
static int32_t s_mod(const void *o, void *b, size_t c, size_t *w) { return sae_model_serialize(o, b, c, w); }
static int32_t s_tr(const void *o, void *b, size_t c, size_t *w) { return sae_trainer_serialize(o, b, c, w); }
static int32_t s_st(const void *o, void *b, size_t c, size_t *w) { return sae_model_export_safetensors(o, b, c, w); }

static void emit(const char *target, const char *name, unsigned mode, ser_fn fn, const void *obj)
{
    size_t n = 0;
    int32_t st = fn(obj, NULL, 0, &n);
    if (st != SAE_OK)
        die(name, st);
    void *b = malloc(n);
    if ((st = fn(obj, b, n, &n)) != SAE_OK)
        die(name, st);
    put(target, name, mode, b, n);
    free(b);
}

static sae_config *cfg_of(int32_t kind, const char *const *names, const double *vals, int n)
{
    sae_config *c;
    int32_t st = sae_config_create(&c, kind, NULL);
    for (int i = 0; i < n && st == SAE_OK; i++)
        st = sae_config_set_by_name(c, names[i], vals[i]);
    if (st != SAE_OK)
        die(names[0], st);
    return c;
}

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    root = argv[1];
    int32_t st;
    char name[64];
    /* configurations of every kind */
    for (int32_t kind = SAE_KIND_TOY; kind <= SAE_KIND_METRICS; kind++) {
        sae_config *c;
        if ((st = sae_config_create(&c, kind, NULL)) != SAE_OK)
            die("config", st);
        snprintf(name, sizeof name, "kind%d", (int)kind);
        emit("config", name, 1, s_cfg, c);
        sae_config_free(c);
    }
    /* toys */
    const char *tn[] = {"n_features", "d", "seed", "fire_prob"};
    const double tv[] = {12, 4, 3, 0.2};
    sae_config *tc = cfg_of(SAE_KIND_TOY, tn, tv, 4);
    double probs[12];
    for (int j = 0; j < 12; j++)
        probs[j] = 0.05 * (j + 1);
    if ((st = sae_config_set_f64_array(tc, SAE_TOY_FIRE_PROBS, probs, 12)) != SAE_OK)
        die("fire_probs", st);
    emit("config", "toy_probs", 1, s_cfg, tc);
    sae_toy *toy;
    if ((st = sae_toy_create(&toy, tc, NULL)) != SAE_OK)
        die("toy", st);
    emit("toy", "probs", 1, s_toy, toy);
    emit("toy", "probs_raw", 0, s_toy, toy);
    /* models and trainers of every architecture */
    for (int32_t arch = SAE_ARCH_RELU; arch <= SAE_ARCH_MATRYOSHKA; arch++)
        for (int tied = 0; tied <= 1; tied++) {
            const char *mn[] = {"arch", "d_in", "n_latents", "k", "tied"};
            const double mv[] = {arch, 4, 6, 2, tied};
            sae_config *mc = cfg_of(SAE_KIND_MODEL, mn, mv, 5);
            if (arch == SAE_ARCH_MATRYOSHKA) {
                int64_t widths[2] = {3, 6};
                if ((st = sae_config_set_i64_array(mc, SAE_MODEL_MATRYOSHKA_WIDTHS, widths, 2)) != SAE_OK)
                    die("widths", st);
            }
            sae_model *m;
            if ((st = sae_model_create(&m, mc, NULL)) != SAE_OK)
                die("model", st);
            sae_config_free(mc);
            const char *rn[] = {"batch_size", "dead_steps"};
            const double rv[] = {8, 2};
            sae_config *rc = cfg_of(SAE_KIND_TRAINER, rn, rv, 2);
            sae_trainer *t;
            if ((st = sae_trainer_create(&t, m, rc, NULL)) != SAE_OK)
                die("trainer", st);
            if ((st = sae_trainer_train_toy(t, toy, 2)) != SAE_OK)
                die("train", st);
            snprintf(name, sizeof name, "arch%d_tied%d", (int)arch, tied);
            emit("model", name, 1, s_mod, m);
            emit("trainer", name, 1, s_tr, t);
            emit("safetensors", name, 0, s_st, m);
            sae_trainer_free(t);
            sae_config_free(rc);
            sae_model_free(m);
        }
    sae_toy_free(toy);
    sae_config_free(tc);
    return 0;
}
