/* The sae_metrics handle: settings, result storage, accessors and sae_metrics_compute. */
#include "metrics_internal.h"

#include <string.h>

static const double default_thresholds[] = {0.5, 0.7, 0.8, 0.9, 0.95, 0.99};

/* ---- results ------------------------------------------------------------------------ */

void sae_mresults_init(sae_mresults *r)
{
    memset(r, 0, sizeof *r);
    for (int i = 0; i < SAE_M_SCALARS; i++)
        r->scalar[i] = NAN;
}

void sae_mresults_clear(const sae_alloc *al, sae_mresults *r)
{
    for (int i = 0; i < SAE_M_ARRAYS; i++)
        sae_free(al, r->array[i].data);
    for (int i = 0; i < SAE_M_LISTS; i++)
        sae_free(al, r->list[i].data);
    sae_mresults_init(r);
}

void sae_mresults_set(sae_mresults *r, int32_t which, double value)
{
    r->scalar[which] = value;
    r->scalar_set[which] = 1;
}

float *sae_mresults_array(const sae_alloc *al, sae_mresults *r, int32_t which, int64_t rows,
                          int64_t cols)
{
    sae_marray *a = &r->array[which];
    sae_free(al, a->data);
    a->data = sae_calloc(al, (size_t)(rows * cols > 0 ? rows * cols : 1), sizeof(float));
    a->rows = a->data ? rows : 0;
    a->cols = a->data ? cols : 0;
    return a->data;
}

int64_t *sae_mresults_list(const sae_alloc *al, sae_mresults *r, int32_t which, int64_t n)
{
    sae_mlist *l = &r->list[which];
    sae_free(al, l->data);
    l->data = sae_calloc(al, (size_t)(n > 0 ? n : 1), sizeof(int64_t));
    l->n = l->data ? n : 0;
    l->present = l->data != NULL;
    return l->data;
}

/* ---- creation ----------------------------------------------------------------------- */

static void read_settings(const sae_config *cfg, sae_msettings *s)
{
    s->groups = sae_cfg_i64(cfg, SAE_METRICS_COMPUTE);
    s->threshold = sae_cfg_f64(cfg, SAE_METRICS_THRESHOLD);
    int64_t nt = 0;
    const double *t = sae_cfg_f64_array(cfg, SAE_METRICS_THRESHOLDS, &nt);
    if (t == NULL || nt == 0) {
        t = default_thresholds;
        nt = (int64_t)(sizeof default_thresholds / sizeof default_thresholds[0]);
    }
    s->n_thresholds = SAE_MIN(nt, SAE_M_MAX_THRESHOLDS);
    memcpy(s->thresholds, t, (size_t)s->n_thresholds * sizeof *t);
    s->n_eval = sae_cfg_i64(cfg, SAE_METRICS_N_EVAL);
    s->eval_first = (uint64_t)sae_cfg_i64(cfg, SAE_METRICS_EVAL_FIRST);
    s->fire_threshold = sae_cfg_f64(cfg, SAE_METRICS_FIRE_THRESHOLD);
    s->compose_candidates = sae_cfg_i64(cfg, SAE_METRICS_COMPOSE_CANDIDATES);
    s->compose_max_terms = sae_cfg_i64(cfg, SAE_METRICS_COMPOSE_MAX_TERMS);
    s->compose_min_weight = sae_cfg_f64(cfg, SAE_METRICS_COMPOSE_MIN_WEIGHT);
    s->compose_max_residual = sae_cfg_f64(cfg, SAE_METRICS_COMPOSE_MAX_RESIDUAL);
    s->compose_single_cos = sae_cfg_f64(cfg, SAE_METRICS_COMPOSE_SINGLE_COS);
    s->joint_min = sae_cfg_f64(cfg, SAE_METRICS_JOINT_MIN);
    s->marginal_max = sae_cfg_f64(cfg, SAE_METRICS_MARGINAL_MAX);
    s->hist_bins = sae_cfg_i64(cfg, SAE_METRICS_HIST_BINS);
    s->peak_min_height = sae_cfg_f64(cfg, SAE_METRICS_PEAK_MIN_HEIGHT);
    s->peak_max_valley = sae_cfg_f64(cfg, SAE_METRICS_PEAK_MAX_VALLEY);
    s->peak_min_fires = sae_cfg_i64(cfg, SAE_METRICS_PEAK_MIN_FIRES);
    s->dense_threshold = sae_cfg_f64(cfg, SAE_METRICS_DENSE_THRESHOLD);
    s->sbw_n = sae_cfg_i64(cfg, SAE_METRICS_SBW_N);
    s->sbw_max_n = sae_cfg_i64(cfg, SAE_METRICS_SBW_MAX_N);
    s->sbw_samples = SAE_MIN(sae_cfg_i64(cfg, SAE_METRICS_SBW_SAMPLES), s->n_eval);
    s->keep_cosine = (int)sae_cfg_i64(cfg, SAE_METRICS_KEEP_COSINE);
    s->threads = (int)sae_cfg_i64(cfg, SAE_METRICS_N_THREADS);
}

int32_t sae_metrics_create(sae_metrics **out, const sae_config *cfg, const sae_allocator *alloc)
{
    if (out == NULL || cfg == NULL)
        return SAE_E_NULL;
    if (sae_config_validate(cfg, NULL, 0) != SAE_OK || sae_config_kind(cfg) != SAE_KIND_METRICS)
        return SAE_E_CONFIG;
    sae_alloc al;
    sae_alloc_init(&al, alloc);
    sae_metrics *m = sae_calloc(&al, 1, sizeof *m);
    if (m == NULL)
        return SAE_E_NOMEM;
    m->al = al;
    sae_err_init(&m->err);
    read_settings(cfg, &m->set);
    sae_mresults_init(&m->res);
    *out = m;
    return SAE_OK;
}

void sae_metrics_free(sae_metrics *m)
{
    if (m == NULL)
        return;
    sae_alloc al = m->al;
    sae_mresults_clear(&al, &m->res);
    sae_free(&al, m);
}

const char *sae_metrics_errmsg(const sae_metrics *m)
{
    return m ? m->err.msg : "NULL metrics handle";
}

/* ---- compute ------------------------------------------------------------------------ */

typedef struct inputs {
    float *dict, *w_dec, *w_enc, *b_dec;
} inputs;

static void free_inputs(const sae_alloc *al, inputs *in)
{
    sae_free(al, in->dict);
    sae_free(al, in->w_dec);
    sae_free(al, in->w_enc);
    sae_free(al, in->b_dec);
}

static int32_t fetch_inputs(sae_metrics *m, sae_meval *e, inputs *in)
{
    const sae_alloc *al = &m->al;
    size_t nd, ld;
    if (!sae_mul_size((size_t)e->n, (size_t)e->d, &nd) || !sae_mul_size((size_t)e->l, (size_t)e->d, &ld))
        return sae_fail(&m->err, SAE_E_SIZE, "metrics: N x d or L x d overflows");
    in->dict = sae_malloc(al, nd * sizeof(float));
    in->w_dec = sae_malloc(al, ld * sizeof(float));
    in->w_enc = sae_malloc(al, ld * sizeof(float));
    in->b_dec = sae_malloc(al, (size_t)e->d * sizeof(float));
    if (!in->dict || !in->w_dec || !in->w_enc || !in->b_dec)
        return sae_fail(&m->err, SAE_E_NOMEM, "metrics: out of memory for the model and dictionary");
    int32_t st = sae_toy_dictionary(e->toy, in->dict, e->d);
    if (st != SAE_OK)
        return sae_fail(&m->err, st, "metrics: reading the toy dictionary failed: %s", sae_toy_errmsg(e->toy));
    st = sae_model_get_tensor(e->model, SAE_TENSOR_W_DEC, in->w_dec, e->d);
    if (st == SAE_OK)
        st = sae_model_get_tensor(e->model, SAE_TENSOR_W_ENC, in->w_enc, e->l);
    if (st == SAE_OK)
        st = sae_model_get_tensor(e->model, SAE_TENSOR_B_DEC, in->b_dec, e->d);
    if (st != SAE_OK)
        return sae_fail(&m->err, st, "metrics: reading model tensors failed: %s", sae_model_errmsg(e->model));
    e->dict = in->dict;
    e->w_dec = in->w_dec;
    e->w_enc = in->w_enc;
    e->b_dec = in->b_dec;
    return SAE_OK;
}

static int32_t check_handles(sae_metrics *m, const sae_model *model, const sae_toy *toy,
                             sae_meval *e)
{
    if (model == NULL)
        return sae_fail(&m->err, SAE_E_NULL, "sae_metrics_compute: model is NULL");
    if (toy == NULL)
        return sae_fail(&m->err, SAE_E_NULL, "sae_metrics_compute: toy is NULL");
    int64_t n = 0, d = 0, d_in = 0, l = 0;
    int32_t st = sae_toy_dims(toy, &n, &d);
    if (st != SAE_OK)
        return sae_fail(&m->err, st, "sae_metrics_compute: %s", sae_toy_errmsg(toy));
    st = sae_model_dims(model, &d_in, &l);
    if (st != SAE_OK)
        return sae_fail(&m->err, st, "sae_metrics_compute: %s", sae_model_errmsg(model));
    if (d != d_in)
        return sae_fail(&m->err, SAE_E_MISMATCH,
                        "sae_metrics_compute: toy dimension d = %lld but model d_in = %lld",
                        (long long)d, (long long)d_in);
    if (n > INT32_MAX || l > INT32_MAX)
        return sae_fail(&m->err, SAE_E_SIZE, "sae_metrics_compute: more than 2^31 features or latents");
    e->n = n;
    e->l = l;
    e->d = d;
    e->model = model;
    e->toy = toy;
    return SAE_OK;
}

/* The decoder groups (recovery, matching, composition, pairs) and the encoder groups. */
static int32_t run_direction_groups(sae_metrics *m, sae_meval *e, sae_mresults *r,
                                    float *scratch)
{
    const sae_msettings *s = &m->set;
    int64_t g = s->groups;
    int32_t st = SAE_OK;
    float *cos = r->array[SAE_ARRAY_COSINE].data;
    if (cos == NULL)
        cos = scratch; /* keep_cosine = 0: the decoder cosines live in the scratch */
    /* absorption (SAE_MG_ACTIVATION) takes its parent latents from the decoder cosines */
    if (g & (SAE_MG_RECOVERY | SAE_MG_MATCHING | SAE_MG_COMPOSITION | SAE_MG_ACTIVATION)) {
        st = sae_metrics_cosine(&m->al, e->dict, e->n, e->d, e->w_dec, e->l, e->d, 0, e->d, s->threads, cos);
        e->cos = cos;
        if (st == SAE_OK)
            st = sae_metrics_recovery(e, r, cos, 0);
        if (st == SAE_OK && (g & SAE_MG_MATCHING))
            st = sae_metrics_matching(e, r, cos, 0);
        if (st == SAE_OK && (g & SAE_MG_COMPOSITION))
            st = sae_metrics_composition(e, r);
        if (st != SAE_OK)
            return st;
    }
    if (g & SAE_MG_ENCODER) {
        /* keep_cosine = 0: the decoder cosines are no longer needed and share the scratch */
        float *enc = r->array[SAE_ARRAY_ENC_COSINE].data;
        if (enc == NULL)
            enc = scratch;
        if (enc == cos)
            e->cos = NULL;
        st = sae_metrics_cosine(&m->al, e->dict, e->n, e->d, e->w_enc, e->l, e->l, 1, e->d, s->threads, enc);
        if (st == SAE_OK)
            st = sae_metrics_recovery(e, r, enc, 1);
        if (st == SAE_OK && (g & SAE_MG_MATCHING))
            st = sae_metrics_matching(e, r, enc, 1);
    }
    return st;
}

static int32_t status_message(sae_metrics *m, int32_t st)
{
    if (st == SAE_OK || m->err.msg[0] != '\0')
        return st;
    return sae_fail(&m->err, st, "sae_metrics_compute: %s", sae_status_str(st));
}

int32_t sae_metrics_compute(sae_metrics *m, const sae_model *model, const sae_toy *toy)
{
    if (m == NULL)
        return SAE_E_NULL;
    sae_meval e;
    memset(&e, 0, sizeof e);
    int32_t st = check_handles(m, model, toy, &e);
    if (st != SAE_OK)
        return st;
    sae_err_clear(&m->err);
    e.set = &m->set;
    e.al = &m->al;
    e.err = &m->err;
    inputs in = {0};
    sae_mresults r;
    sae_mresults_init(&r);
    float *scratch = NULL;
    st = fetch_inputs(m, &e, &in);
    int64_t g = m->set.groups;
    int need_scratch = (g & (SAE_MG_ENCODER | SAE_MG_ACTIVATION)) || !m->set.keep_cosine;
    if (st == SAE_OK && m->set.keep_cosine) {
        if (sae_mresults_array(&m->al, &r, SAE_ARRAY_COSINE, e.n, e.l) == NULL)
            st = SAE_E_NOMEM;
        if (st == SAE_OK && (g & SAE_MG_ENCODER) &&
            sae_mresults_array(&m->al, &r, SAE_ARRAY_ENC_COSINE, e.n, e.l) == NULL)
            st = SAE_E_NOMEM;
    }
    if (st == SAE_OK && need_scratch) {
        scratch = sae_malloc(&m->al, (size_t)e.n * (size_t)e.l * sizeof(float));
        if (scratch == NULL)
            st = SAE_E_NOMEM;
    }
    if (st == SAE_OK)
        st = run_direction_groups(m, &e, &r, scratch);
    if (st == SAE_OK && (g & SAE_MG_DECODER_PAIRS))
        st = sae_metrics_decoder_pairs(&e, &r);
    if (st == SAE_OK && (g & (SAE_MG_ACTIVATION | SAE_MG_HISTOGRAMS | SAE_MG_RECONSTRUCTION | SAE_MG_SBW)))
        st = sae_metrics_activation(&e, &r, scratch);
    sae_free(&m->al, scratch);
    free_inputs(&m->al, &in);
    if (st != SAE_OK) {
        sae_mresults_clear(&m->al, &r);
        return status_message(m, st);
    }
    sae_mresults_clear(&m->al, &m->res);
    r.valid = 1;
    m->res = r;
    return SAE_OK;
}

/* ---- accessors ---------------------------------------------------------------------- */

static int32_t check_ready(const sae_metrics *m, const char *fn)
{
    if (!m->res.valid)
        return sae_fail(&m->err, SAE_E_STATE, "%s: no results yet: call sae_metrics_compute first", fn);
    return SAE_OK;
}

int32_t sae_metrics_get(const sae_metrics *m, int32_t which, double *value)
{
    if (m == NULL)
        return SAE_E_NULL;
    if (value == NULL)
        return sae_fail(&m->err, SAE_E_NULL, "sae_metrics_get: value is NULL");
    if (which < 1 || which >= SAE_M_SCALARS)
        return sae_fail(&m->err, SAE_E_UNKNOWN_KEY, "sae_metrics_get: unknown metric %d", (int)which);
    int32_t st = check_ready(m, "sae_metrics_get");
    if (st != SAE_OK)
        return st;
    if (!m->res.scalar_set[which])
        return sae_fail(&m->err, SAE_E_STATE,
                        "sae_metrics_get: metric %d was not computed (enable its group in metrics_compute)",
                        (int)which);
    *value = m->res.scalar[which];
    return SAE_OK;
}

static int32_t find_array(const sae_metrics *m, int32_t which, const char *fn, const sae_marray **out)
{
    if (which < 1 || which >= SAE_M_ARRAYS)
        return sae_fail(&m->err, SAE_E_UNKNOWN_KEY, "%s: unknown array %d", fn, (int)which);
    int32_t st = check_ready(m, fn);
    if (st != SAE_OK)
        return st;
    if (m->res.array[which].data == NULL)
        return sae_fail(&m->err, SAE_E_STATE,
                        "%s: array %d was not computed (enable its group in metrics_compute)", fn, (int)which);
    *out = &m->res.array[which];
    return SAE_OK;
}

int32_t sae_metrics_array_shape(const sae_metrics *m, int32_t which, int64_t *rows, int64_t *cols)
{
    if (m == NULL)
        return SAE_E_NULL;
    if (rows == NULL || cols == NULL)
        return sae_fail(&m->err, SAE_E_NULL, "sae_metrics_array_shape: rows or cols is NULL");
    const sae_marray *a = NULL;
    int32_t st = find_array(m, which, "sae_metrics_array_shape", &a);
    if (st != SAE_OK)
        return st;
    *rows = a->rows;
    *cols = a->cols;
    return SAE_OK;
}

int32_t sae_metrics_copy_array(const sae_metrics *m, int32_t which, float *dst, int64_t ld)
{
    if (m == NULL)
        return SAE_E_NULL;
    if (dst == NULL)
        return sae_fail(&m->err, SAE_E_NULL, "sae_metrics_copy_array: dst is NULL");
    const sae_marray *a = NULL;
    int32_t st = find_array(m, which, "sae_metrics_copy_array", &a);
    if (st != SAE_OK)
        return st;
    st = sae_check_matrix(&m->err, dst, a->rows, a->cols, ld, "sae_metrics_copy_array: dst");
    if (st != SAE_OK)
        return st;
    for (int64_t i = 0; i < a->rows; i++)
        memcpy(dst + i * ld, a->data + i * a->cols, (size_t)a->cols * sizeof(float));
    return SAE_OK;
}

static int32_t find_list(const sae_metrics *m, int32_t which, const char *fn, const sae_mlist **out)
{
    if (which < 1 || which >= SAE_M_LISTS)
        return sae_fail(&m->err, SAE_E_UNKNOWN_KEY, "%s: unknown list %d", fn, (int)which);
    int32_t st = check_ready(m, fn);
    if (st != SAE_OK)
        return st;
    if (!m->res.list[which].present)
        return sae_fail(&m->err, SAE_E_STATE,
                        "%s: list %d was not computed (enable its group in metrics_compute)", fn, (int)which);
    *out = &m->res.list[which];
    return SAE_OK;
}

int32_t sae_metrics_list_size(const sae_metrics *m, int32_t which, int64_t *n)
{
    if (m == NULL)
        return SAE_E_NULL;
    if (n == NULL)
        return sae_fail(&m->err, SAE_E_NULL, "sae_metrics_list_size: n is NULL");
    const sae_mlist *l = NULL;
    int32_t st = find_list(m, which, "sae_metrics_list_size", &l);
    if (st != SAE_OK)
        return st;
    *n = l->n;
    return SAE_OK;
}

int32_t sae_metrics_copy_list(const sae_metrics *m, int32_t which, int64_t *dst, int64_t cap,
                              int64_t *n)
{
    if (m == NULL)
        return SAE_E_NULL;
    if (n == NULL)
        return sae_fail(&m->err, SAE_E_NULL, "sae_metrics_copy_list: n is NULL");
    if (cap < 0)
        return sae_fail(&m->err, SAE_E_SIZE, "sae_metrics_copy_list: cap < 0");
    if (dst == NULL && cap > 0)
        return sae_fail(&m->err, SAE_E_NULL, "sae_metrics_copy_list: dst is NULL");
    const sae_mlist *l = NULL;
    int32_t st = find_list(m, which, "sae_metrics_copy_list", &l);
    if (st != SAE_OK)
        return st;
    *n = l->n;
    if (cap < l->n)
        return sae_fail(&m->err, SAE_E_BUFFER_TOO_SMALL,
                        "sae_metrics_copy_list: list %d has %lld entries, cap is %lld", (int)which,
                        (long long)l->n, (long long)cap);
    if (l->n > 0)
        memcpy(dst, l->data, (size_t)l->n * sizeof *dst);
    return SAE_OK;
}
