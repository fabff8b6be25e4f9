/* The parameter registry (each module contributes a table) and configuration handles. */
#include "core.h"

#include <string.h>

typedef struct sae_value {
    double f;
    int64_t i;
    void *arr; /* double* or int64_t* for array types */
    int64_t n;
    int set;
} sae_value;

struct sae_config {
    sae_alloc alloc;
    const sae_kind_def *kind;
    sae_value *vals; /* one per kind->params entry */
    sae_err err;
};

static const sae_kind_def *const all_kinds[] = {&sae_toy_kind, &sae_model_kind,
                                                &sae_trainer_kind, &sae_metrics_kind};
#define N_KINDS ((int)(sizeof all_kinds / sizeof all_kinds[0]))

const sae_kind_def *sae_kind_find(int32_t kind)
{
    for (int k = 0; k < N_KINDS; k++)
        if (all_kinds[k]->kind == kind)
            return all_kinds[k];
    return NULL;
}

static const sae_param_def *param_find(int32_t key, const sae_kind_def **kind_out, int32_t *index)
{
    for (int k = 0; k < N_KINDS; k++)
        for (int32_t p = 0; p < all_kinds[k]->n_params; p++)
            if (all_kinds[k]->params[p].key == key) {
                if (kind_out)
                    *kind_out = all_kinds[k];
                if (index)
                    *index = p;
                return &all_kinds[k]->params[p];
            }
    return NULL;
}

/* ---- registry queries ---------------------------------------------------- */

int32_t sae_param_lookup(const char *name, int32_t *key)
{
    if (name == NULL || key == NULL)
        return SAE_E_NULL;
    for (int k = 0; k < N_KINDS; k++)
        for (int32_t p = 0; p < all_kinds[k]->n_params; p++)
            if (strcmp(all_kinds[k]->params[p].name, name) == 0) {
                *key = all_kinds[k]->params[p].key;
                return SAE_OK;
            }
    return SAE_E_UNKNOWN_KEY;
}

const char *sae_param_name(int32_t key)
{
    const sae_param_def *d = param_find(key, NULL, NULL);
    return d ? d->name : NULL;
}

const char *sae_param_doc(int32_t key)
{
    const sae_param_def *d = param_find(key, NULL, NULL);
    return d ? d->doc : NULL;
}

int32_t sae_param_info(int32_t key, int32_t *kind, int32_t *type, double *lo, double *hi,
                       double *dflt)
{
    const sae_kind_def *kd;
    const sae_param_def *d = param_find(key, &kd, NULL);
    if (d == NULL)
        return SAE_E_UNKNOWN_KEY;
    if (kind)
        *kind = kd->kind;
    if (type)
        *type = d->type;
    if (lo)
        *lo = d->lo;
    if (hi)
        *hi = d->hi;
    if (dflt)
        *dflt = d->dflt;
    return SAE_OK;
}

int32_t sae_param_count(int32_t kind, int32_t *count)
{
    if (count == NULL)
        return SAE_E_NULL;
    const sae_kind_def *kd = sae_kind_find(kind);
    if (kd == NULL)
        return SAE_E_UNKNOWN_KEY;
    *count = kd->n_params;
    return SAE_OK;
}

int32_t sae_param_key_at(int32_t kind, int32_t index, int32_t *key)
{
    if (key == NULL)
        return SAE_E_NULL;
    const sae_kind_def *kd = sae_kind_find(kind);
    if (kd == NULL)
        return SAE_E_UNKNOWN_KEY;
    if (index < 0 || index >= kd->n_params)
        return SAE_E_RANGE;
    *key = kd->params[index].key;
    return SAE_OK;
}

/* ---- configuration handles ------------------------------------------------ */

static void value_default(const sae_param_def *d, sae_value *v)
{
    memset(v, 0, sizeof *v);
    v->f = d->dflt;
    v->i = (int64_t)d->dflt;
}

int32_t sae_config_create(sae_config **out, int32_t kind, const sae_allocator *alloc)
{
    if (out == NULL)
        return SAE_E_NULL;
    const sae_kind_def *kd = sae_kind_find(kind);
    if (kd == NULL)
        return SAE_E_UNKNOWN_KEY;
    sae_alloc al;
    sae_alloc_init(&al, alloc);
    sae_config *c = sae_calloc(&al, 1, sizeof *c);
    if (c == NULL)
        return SAE_E_NOMEM;
    c->vals = sae_calloc(&al, (size_t)kd->n_params, sizeof *c->vals);
    if (c->vals == NULL) {
        sae_free(&al, c);
        return SAE_E_NOMEM;
    }
    c->alloc = al;
    c->kind = kd;
    sae_err_init(&c->err);
    for (int32_t p = 0; p < kd->n_params; p++)
        value_default(&kd->params[p], &c->vals[p]);
    *out = c;
    return SAE_OK;
}

void sae_config_free(sae_config *c)
{
    if (c == NULL)
        return;
    for (int32_t p = 0; p < c->kind->n_params; p++)
        sae_free(&c->alloc, c->vals[p].arr);
    sae_free(&c->alloc, c->vals);
    sae_alloc al = c->alloc;
    sae_free(&al, c);
}

static size_t elem_size(int32_t type)
{
    return type == SAE_TYPE_F64_ARRAY ? sizeof(double) : sizeof(int64_t);
}

int32_t sae_config_clone(sae_config **out, const sae_config *src)
{
    if (out == NULL || src == NULL)
        return SAE_E_NULL;
    sae_config *c;
    int32_t st = sae_config_create(&c, src->kind->kind, src->alloc.a.alloc ? &src->alloc.a : NULL);
    if (st != SAE_OK)
        return st;
    for (int32_t p = 0; p < src->kind->n_params; p++) {
        const sae_value *v = &src->vals[p];
        c->vals[p] = *v;
        c->vals[p].arr = NULL;
        if (v->arr != NULL) {
            size_t bytes = (size_t)v->n * elem_size(src->kind->params[p].type);
            c->vals[p].arr = sae_malloc(&c->alloc, bytes);
            if (c->vals[p].arr == NULL) {
                c->vals[p].n = 0;
                sae_config_free(c);
                return SAE_E_NOMEM;
            }
            memcpy(c->vals[p].arr, v->arr, bytes);
        }
    }
    *out = c;
    return SAE_OK;
}

int32_t sae_config_kind(const sae_config *c) { return c ? c->kind->kind : 0; }

const char *sae_config_errmsg(const sae_config *c) { return c ? c->err.msg : "config is NULL"; }

/* Find key in this config's kind; record a message when it is absent or mistyped. */
static int32_t slot(const sae_config *c, int32_t key, int32_t type, int32_t *index)
{
    const sae_kind_def *kd;
    const sae_param_def *d = param_find(key, &kd, index);
    if (d == NULL)
        return sae_fail(&c->err, SAE_E_UNKNOWN_KEY, "unknown parameter key %d", (int)key);
    if (kd != c->kind)
        return sae_fail(&c->err, SAE_E_UNKNOWN_KEY, "parameter '%s' belongs to %s, not to a %s config",
                        d->name, kd->name, c->kind->name);
    if (d->type != type)
        return sae_fail(&c->err, SAE_E_TYPE, "parameter '%s' has another type", d->name);
    return SAE_OK;
}

int32_t sae_config_set_i64(sae_config *c, int32_t key, int64_t v)
{
    int32_t i, st;
    if (c == NULL)
        return SAE_E_NULL;
    if ((st = slot(c, key, SAE_TYPE_I64, &i)) != SAE_OK)
        return st;
    const sae_param_def *d = &c->kind->params[i];
    if ((double)v < d->lo || (double)v > d->hi)
        return sae_fail(&c->err, SAE_E_RANGE, "%s = %lld is outside [%.17g, %.17g]", d->name,
                        (long long)v, d->lo, d->hi);
    c->vals[i].i = v;
    c->vals[i].set = 1;
    return SAE_OK;
}

int32_t sae_config_set_f64(sae_config *c, int32_t key, double v)
{
    int32_t i, st;
    if (c == NULL)
        return SAE_E_NULL;
    if ((st = slot(c, key, SAE_TYPE_F64, &i)) != SAE_OK)
        return st;
    const sae_param_def *d = &c->kind->params[i];
    if (!isfinite(v))
        return sae_fail(&c->err, SAE_E_NONFINITE, "%s must be finite", d->name);
    if (v < d->lo || v > d->hi)
        return sae_fail(&c->err, SAE_E_RANGE, "%s = %.17g is outside [%.17g, %.17g]", d->name, v,
                        d->lo, d->hi);
    c->vals[i].f = v;
    c->vals[i].set = 1;
    return SAE_OK;
}

int32_t sae_config_get_i64(const sae_config *c, int32_t key, int64_t *v)
{
    int32_t i, st;
    if (c == NULL)
        return SAE_E_NULL;
    if (v == NULL)
        return sae_fail(&c->err, SAE_E_NULL, "value is NULL");
    if ((st = slot(c, key, SAE_TYPE_I64, &i)) != SAE_OK)
        return st;
    *v = c->vals[i].i;
    return SAE_OK;
}

int32_t sae_config_get_f64(const sae_config *c, int32_t key, double *v)
{
    int32_t i, st;
    if (c == NULL)
        return SAE_E_NULL;
    if (v == NULL)
        return sae_fail(&c->err, SAE_E_NULL, "value is NULL");
    if ((st = slot(c, key, SAE_TYPE_F64, &i)) != SAE_OK)
        return st;
    *v = c->vals[i].f;
    return SAE_OK;
}

#define SAE_MAX_ARRAY (INT64_C(1) << 32)

static int32_t set_array(sae_config *c, int32_t key, int32_t type, const void *src, int64_t n)
{
    int32_t i, st;
    if (c == NULL)
        return SAE_E_NULL;
    if ((st = slot(c, key, type, &i)) != SAE_OK)
        return st;
    const sae_param_def *d = &c->kind->params[i];
    if (n < 0 || n > SAE_MAX_ARRAY)
        return sae_fail(&c->err, SAE_E_SIZE, "%s: array length %lld is invalid", d->name, (long long)n);
    if (n > 0 && src == NULL)
        return sae_fail(&c->err, SAE_E_NULL, "%s: values is NULL", d->name);
    void *copy = NULL;
    if (n > 0) {
        size_t bytes = (size_t)n * elem_size(type);
        if (type == SAE_TYPE_F64_ARRAY) {
            const double *f = src;
            for (int64_t k = 0; k < n; k++) {
                if (!isfinite(f[k]))
                    return sae_fail(&c->err, SAE_E_NONFINITE, "%s[%lld] is not finite", d->name,
                                    (long long)k);
                if (f[k] < d->lo || f[k] > d->hi)
                    return sae_fail(&c->err, SAE_E_RANGE, "%s[%lld] = %.17g is outside [%.17g, %.17g]",
                                    d->name, (long long)k, f[k], d->lo, d->hi);
            }
        } else {
            const int64_t *v = src;
            for (int64_t k = 0; k < n; k++)
                if ((double)v[k] < d->lo || (double)v[k] > d->hi)
                    return sae_fail(&c->err, SAE_E_RANGE, "%s[%lld] = %lld is outside [%.17g, %.17g]",
                                    d->name, (long long)k, (long long)v[k], d->lo, d->hi);
        }
        copy = sae_malloc(&c->alloc, bytes);
        if (copy == NULL)
            return sae_fail(&c->err, SAE_E_NOMEM, "%s: out of memory", d->name);
        memcpy(copy, src, bytes);
    }
    sae_free(&c->alloc, c->vals[i].arr);
    c->vals[i].arr = copy;
    c->vals[i].n = n;
    c->vals[i].set = n > 0;
    return SAE_OK;
}

int32_t sae_config_set_f64_array(sae_config *c, int32_t key, const double *v, int64_t n)
{
    return set_array(c, key, SAE_TYPE_F64_ARRAY, v, n);
}

int32_t sae_config_set_i64_array(sae_config *c, int32_t key, const int64_t *v, int64_t n)
{
    return set_array(c, key, SAE_TYPE_I64_ARRAY, v, n);
}

static int32_t get_array(const sae_config *c, int32_t key, int32_t type, void *dst, int64_t cap,
                         int64_t *n)
{
    int32_t i, st;
    if (c == NULL)
        return SAE_E_NULL;
    if (n == NULL)
        return sae_fail(&c->err, SAE_E_NULL, "n is NULL");
    if (cap < 0)
        return sae_fail(&c->err, SAE_E_SIZE, "cap is negative (%lld)", (long long)cap);
    if ((st = slot(c, key, type, &i)) != SAE_OK)
        return st;
    const sae_value *v = &c->vals[i];
    *n = v->n;
    if (v->n == 0)
        return SAE_OK;
    if (cap < v->n)
        return sae_fail(&c->err, SAE_E_BUFFER_TOO_SMALL, "%s has %lld values, buffer holds %lld",
                        c->kind->params[i].name, (long long)v->n, (long long)cap);
    if (dst == NULL)
        return sae_fail(&c->err, SAE_E_NULL, "dst is NULL");
    memcpy(dst, v->arr, (size_t)v->n * elem_size(type));
    return SAE_OK;
}

int32_t sae_config_get_f64_array(const sae_config *c, int32_t key, double *dst, int64_t cap,
                                 int64_t *n)
{
    return get_array(c, key, SAE_TYPE_F64_ARRAY, dst, cap, n);
}

int32_t sae_config_get_i64_array(const sae_config *c, int32_t key, int64_t *dst, int64_t cap,
                                 int64_t *n)
{
    return get_array(c, key, SAE_TYPE_I64_ARRAY, dst, cap, n);
}

int32_t sae_config_set_by_name(sae_config *c, const char *name, double value)
{
    if (c == NULL)
        return SAE_E_NULL;
    if (name == NULL)
        return sae_fail(&c->err, SAE_E_NULL, "name is NULL");
    int32_t key;
    if (sae_param_lookup(name, &key) != SAE_OK)
        return sae_fail(&c->err, SAE_E_UNKNOWN_KEY, "unknown parameter name '%s'", name);
    const sae_param_def *d = param_find(key, NULL, NULL);
    if (d->type == SAE_TYPE_F64)
        return sae_config_set_f64(c, key, value);
    if (d->type != SAE_TYPE_I64)
        return sae_fail(&c->err, SAE_E_TYPE, "%s is an array; use the array setter", name);
    if (!isfinite(value) || value != floor(value) || fabs(value) > 9007199254740992.0)
        return sae_fail(&c->err, SAE_E_TYPE, "%s takes an integer, got %.17g", name, value);
    return sae_config_set_i64(c, key, (int64_t)value);
}

int32_t sae_config_reset(sae_config *c, int32_t key)
{
    const sae_kind_def *kd;
    int32_t i;
    if (c == NULL)
        return SAE_E_NULL;
    const sae_param_def *d = param_find(key, &kd, &i);
    if (d == NULL || kd != c->kind)
        return sae_fail(&c->err, SAE_E_UNKNOWN_KEY, "unknown parameter key %d for this kind", (int)key);
    sae_free(&c->alloc, c->vals[i].arr);
    value_default(d, &c->vals[i]);
    return SAE_OK;
}

int32_t sae_config_validate(const sae_config *c, char *msg, size_t cap)
{
    if (msg != NULL && cap > 0)
        msg[0] = '\0';
    if (c == NULL)
        return sae_reason(msg, cap, SAE_E_NULL, "config is NULL");
    if (c->kind->validate == NULL)
        return SAE_OK;
    return c->kind->validate(c, msg, cap);
}

/* ---- typed reads for modules ------------------------------------------------ */

static const sae_value *value_of(const sae_config *c, int32_t key)
{
    for (int32_t p = 0; p < c->kind->n_params; p++)
        if (c->kind->params[p].key == key)
            return &c->vals[p];
    return NULL;
}

int64_t sae_cfg_i64(const sae_config *c, int32_t key)
{
    const sae_value *v = value_of(c, key);
    return v ? v->i : 0;
}

double sae_cfg_f64(const sae_config *c, int32_t key)
{
    const sae_value *v = value_of(c, key);
    return v ? v->f : 0.0;
}

const double *sae_cfg_f64_array(const sae_config *c, int32_t key, int64_t *n)
{
    const sae_value *v = value_of(c, key);
    *n = v ? v->n : 0;
    return v ? (const double *)v->arr : NULL;
}

const int64_t *sae_cfg_i64_array(const sae_config *c, int32_t key, int64_t *n)
{
    const sae_value *v = value_of(c, key);
    *n = v ? v->n : 0;
    return v ? (const int64_t *)v->arr : NULL;
}

int sae_cfg_is_set(const sae_config *c, int32_t key)
{
    const sae_value *v = value_of(c, key);
    return v ? v->set : 0;
}

const sae_alloc *sae_cfg_alloc(const sae_config *c) { return &c->alloc; }

const sae_err *sae_cfg_err(const sae_config *c) { return &c->err; }
