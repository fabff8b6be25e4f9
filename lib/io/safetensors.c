/* safetensors export and import in the layout SAELens saves (sae_weights.safetensors):
 * an 8-byte little-endian header length N, N bytes of JSON naming each tensor's dtype,
 * shape and [begin, end) byte range in the data that follows, and an optional
 * "__metadata__" map of strings. See docs/formats.md for the tensor and config mapping. */
#include "io/io_internal.h"
#include "io/json.h"
#include "model/model_internal.h"

#include <string.h>

#define ST_MAX_HEADER (100u << 20) /* same cap as the reference implementation */
#define ST_NAME_CAP 256

/* Tensor names SAELens uses, and the libsae tensor each maps to. */
enum { ST_W_ENC, ST_B_ENC, ST_W_DEC, ST_B_DEC, ST_THRESHOLD, ST_LOG_THRESHOLD, ST_B_GATE,
       ST_R_MAG, ST_B_MAG, ST_N };
static const char *const st_names[ST_N] = {"W_enc", "b_enc", "W_dec", "b_dec", "threshold",
                                           "log_threshold", "b_gate", "r_mag", "b_mag"};

/* SAELens architecture name of each libsae architecture (as saved for inference). */
static const char *saelens_arch(int32_t arch)
{
    switch (arch) {
    case SAE_ARCH_TOPK: return "topk";
    case SAE_ARCH_JUMPRELU:
    case SAE_ARCH_BATCHTOPK: /* SAELens saves BatchTopK for inference as JumpReLU */
    case SAE_ARCH_MATRYOSHKA: return "jumprelu";
    case SAE_ARCH_GATED: return "gated";
    default: return "standard";
    }
}

/* ---- export ------------------------------------------------------------------------ */

typedef struct st_out {
    const char *name;
    int32_t which;
    int64_t rows, cols; /* rows == 1: written as a vector */
} st_out;

/* The exported tensors of a model, in the order their bytes are laid out. */
static int export_list(const sae_model *m, st_out *t)
{
    int n = 0;
    int64_t d = m->d, L = m->n_latents;
    t[n++] = (st_out){"W_dec", SAE_TENSOR_W_DEC, L, d};
    t[n++] = (st_out){"W_enc", SAE_TENSOR_W_ENC, d, L};
    t[n++] = (st_out){"b_dec", SAE_TENSOR_B_DEC, 1, d};
    t[n++] = (st_out){m->arch == SAE_ARCH_GATED ? "b_gate" : "b_enc", SAE_TENSOR_B_ENC, 1, L};
    if (m->arch == SAE_ARCH_GATED) {
        t[n++] = (st_out){"b_mag", SAE_TENSOR_B_MAG, 1, L};
        t[n++] = (st_out){"r_mag", SAE_TENSOR_R_MAG, 1, L};
    }
    if (m->arch == SAE_ARCH_JUMPRELU || sae_arch_is_batch(m->arch))
        t[n++] = (st_out){"threshold", SAE_TENSOR_THRESHOLD, 1, L};
    return n;
}

static void put_kv_int(sae_wbuf *w, const char *key, int64_t v)
{
    sae_json_put_raw(w, ",\"");
    sae_json_put_raw(w, key);
    sae_json_put_raw(w, "\":");
    sae_json_put_int(w, v);
}

/* SAELens cfg.json content (keys of SAEConfig and its TopK extension). */
static void write_saelens_cfg(sae_wbuf *w, const sae_model *m)
{
    sae_json_put_raw(w, "{\"architecture\":\"");
    sae_json_put_raw(w, saelens_arch(m->arch));
    sae_json_put_raw(w, "\"");
    put_kv_int(w, "d_in", m->d);
    put_kv_int(w, "d_sae", m->n_latents);
    sae_json_put_raw(w, ",\"dtype\":\"float32\",\"device\":\"cpu\",\"apply_b_dec_to_input\":");
    sae_json_put_raw(w, m->pre_bias ? "true" : "false");
    sae_json_put_raw(w, ",\"normalize_activations\":\"none\",\"reshape_activations\":\"none\"");
    if (m->arch == SAE_ARCH_TOPK) {
        put_kv_int(w, "k", m->k);
        sae_json_put_raw(w, ",\"rescale_acts_by_decoder_norm\":false");
    }
    sae_json_put_raw(w, ",\"metadata\":{\"libsae_version\":\"");
    sae_json_put_raw(w, sae_version_string());
    sae_json_put_raw(w, "\"}}");
}

/* The native model configuration as lower-case hex (exact: no floats in text). */
static void write_libsae_config(sae_wbuf *w, const sae_model *m)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;
    uint8_t *tmp = NULL;
    if (sae_config_serialize(m->cfg, NULL, 0, &n) == SAE_OK)
        tmp = sae_malloc(&m->al, n);
    sae_wr_u8(w, '"');
    if (tmp != NULL && sae_config_serialize(m->cfg, tmp, n, &n) == SAE_OK) {
        for (size_t i = 0; i < n; i++) {
            char h[2] = {hex[tmp[i] >> 4], hex[tmp[i] & 15]};
            sae_wr_bytes(w, h, 2);
        }
    } else {
        w->pos = SIZE_MAX; /* out of memory: reported by the caller as NOMEM */
    }
    sae_wr_u8(w, '"');
    sae_free(&m->al, tmp);
}

static void write_header_json(sae_wbuf *w, const sae_model *m, const st_out *t, int n)
{
    sae_json_put_raw(w, "{\"__metadata__\":{\"format\":\"pt\",\"cfg\":");
    sae_wbuf cfg;
    sae_wbuf_init(&cfg, NULL, 0);
    write_saelens_cfg(&cfg, m); /* measure, then escape it into a string */
    char *text = sae_malloc(&m->al, cfg.pos);
    if (text == NULL) {
        w->pos = SIZE_MAX;
        return;
    }
    sae_wbuf_init(&cfg, text, cfg.pos);
    write_saelens_cfg(&cfg, m);
    sae_json_put_string(w, text, cfg.pos);
    sae_free(&m->al, text);
    sae_json_put_raw(w, ",\"libsae_config\":");
    write_libsae_config(w, m);
    sae_json_put_raw(w, "}");
    int64_t at = 0;
    for (int i = 0; i < n; i++) {
        int64_t bytes = t[i].rows * t[i].cols * 4;
        sae_json_put_raw(w, ",");
        sae_json_put_string(w, t[i].name, strlen(t[i].name));
        sae_json_put_raw(w, ":{\"dtype\":\"F32\",\"shape\":[");
        if (t[i].rows > 1 || t[i].which == SAE_TENSOR_W_ENC || t[i].which == SAE_TENSOR_W_DEC) {
            sae_json_put_int(w, t[i].rows);
            sae_json_put_raw(w, ",");
        }
        sae_json_put_int(w, t[i].cols);
        sae_json_put_raw(w, "],\"data_offsets\":[");
        sae_json_put_int(w, at);
        sae_json_put_raw(w, ",");
        sae_json_put_int(w, at + bytes);
        sae_json_put_raw(w, "]}");
        at += bytes;
    }
    sae_json_put_raw(w, "}");
}

static int32_t write_tensor_data(sae_wbuf *w, const sae_model *m, const st_out *t)
{
    if (w->p == NULL) { /* measuring */
        sae_wr_zeros(w, (size_t)(t->rows * t->cols * 4));
        return SAE_OK;
    }
    float *tmp = sae_malloc(&m->al, sizeof(float) * (size_t)(t->rows * t->cols));
    if (tmp == NULL)
        return SAE_E_NOMEM;
    int32_t st = sae_model_get_tensor(m, t->which, tmp, t->cols);
    if (st == SAE_OK)
        sae_wr_f32_matrix(w, tmp, t->rows, t->cols, t->cols);
    sae_free(&m->al, tmp);
    return st;
}

int32_t sae_model_export_safetensors(const sae_model *model, void *buf, size_t cap, size_t *written)
{
    if (model == NULL)
        return SAE_E_NULL;
    if (written == NULL)
        return sae_fail(&model->err, SAE_E_NULL, "export_safetensors: written is NULL");
    st_out t[8];
    int n = export_list(model, t);
    sae_wbuf head;
    sae_wbuf_init(&head, NULL, 0);
    write_header_json(&head, model, t, n);
    if (head.pos == SIZE_MAX)
        return sae_fail(&model->err, SAE_E_NOMEM, "export_safetensors: out of memory");
    size_t hlen = (head.pos + 7) / 8 * 8; /* pad with blanks: data starts 8-byte aligned */
    sae_wbuf w;
    sae_wbuf_init(&w, buf, cap);
    sae_wr_u64(&w, hlen);
    size_t at = w.pos;
    write_header_json(&w, model, t, n);
    sae_wr_bytes(&w, "        ", hlen - (w.pos - at));
    int32_t st = SAE_OK;
    for (int i = 0; i < n && st == SAE_OK; i++)
        st = write_tensor_data(&w, model, &t[i]);
    *written = w.pos;
    if (st != SAE_OK || w.pos == SIZE_MAX)
        return sae_fail(&model->err, st != SAE_OK ? st : SAE_E_NOMEM, "export_safetensors failed");
    if (buf != NULL && !sae_wbuf_fits(&w))
        return sae_fail(&model->err, SAE_E_BUFFER_TOO_SMALL,
                        "export_safetensors: %zu bytes needed, buffer holds %zu", w.pos, cap);
    return SAE_OK;
}

int32_t sae_model_export_saelens_cfg(const sae_model *model, void *buf, size_t cap, size_t *written)
{
    if (model == NULL)
        return SAE_E_NULL;
    if (written == NULL)
        return sae_fail(&model->err, SAE_E_NULL, "export_saelens_cfg: written is NULL");
    sae_wbuf w;
    sae_wbuf_init(&w, buf, cap);
    write_saelens_cfg(&w, model);
    *written = w.pos;
    if (buf != NULL && !sae_wbuf_fits(&w))
        return sae_fail(&model->err, SAE_E_BUFFER_TOO_SMALL,
                        "export_saelens_cfg: %zu bytes needed, buffer holds %zu", w.pos, cap);
    return SAE_OK;
}

/* ---- import: parsing --------------------------------------------------------------- */

enum { DT_F32 = 1, DT_F64, DT_F16, DT_BF16 };

typedef struct st_tensor {
    int present, dtype, rank;
    int64_t shape[2];
    uint64_t begin, end;
} st_tensor;

typedef struct st_file {
    st_tensor t[ST_N];
    const uint8_t *data;
    size_t data_len;
    char *cfg, *libsae; /* decoded "__metadata__" strings, or NULL */
    size_t cfg_len, libsae_len;
} st_file;

static int dtype_size(int dt) { return dt == DT_F64 ? 8 : dt == DT_F32 ? 4 : 2; }

static int32_t bad_json(sae_json *j, const char *what, sae_io_msg m)
{
    return sae_io_fail(m, SAE_E_CORRUPT, "safetensors header: malformed %s near byte %zu", what, j->pos);
}

static int32_t parse_dtype(sae_json *j, st_tensor *t, const char *name, sae_io_msg m)
{
    char dt[16];
    if (!sae_json_string(j, dt, sizeof dt, NULL))
        return bad_json(j, "dtype", m);
    static const char *const names[] = {"F32", "F64", "F16", "BF16"};
    for (int k = 0; k < 4; k++)
        if (strcmp(dt, names[k]) == 0) {
            t->dtype = k + 1;
            return SAE_OK;
        }
    return sae_io_fail(m, SAE_E_NOT_SUPPORTED, "tensor %s: dtype %s is not supported", name, dt);
}

/* An array of non-negative integers (at most cap of them) into v; *n = count. */
static int int_list(sae_json *j, int64_t *v, int cap, int *n)
{
    int state = 0, r;
    *n = 0;
    while ((r = sae_json_element(j, &state)) == 1) {
        int64_t x;
        if (*n == cap || !sae_json_int(j, &x) || x < 0)
            return 0;
        v[(*n)++] = x;
    }
    return r == 0;
}

static int32_t parse_tensor(sae_json *j, st_tensor *t, const char *name, sae_io_msg m)
{
    int state = 0, r, have = 0, n;
    char key[32];
    int64_t v[3];
    while ((r = sae_json_member(j, &state, key, sizeof key)) == 1) {
        int32_t st = SAE_OK;
        if (strcmp(key, "dtype") == 0) {
            st = parse_dtype(j, t, name, m);
            have |= 1;
        } else if (strcmp(key, "shape") == 0) {
            if (!int_list(j, v, 3, &n) || n < 1 || n > 2 || v[0] > (INT64_C(1) << 40) ||
                v[n - 1] > (INT64_C(1) << 40))
                return sae_io_fail(m, SAE_E_CORRUPT, "tensor %s: shape must be 1 or 2 sizes", name);
            t->rank = n;
            t->shape[0] = v[0];
            t->shape[1] = n == 2 ? v[1] : 0;
            have |= 2;
        } else if (strcmp(key, "data_offsets") == 0) {
            if (!int_list(j, v, 3, &n) || n != 2 || v[0] > v[1])
                return sae_io_fail(m, SAE_E_CORRUPT, "tensor %s: data_offsets must be [begin, end]", name);
            t->begin = (uint64_t)v[0];
            t->end = (uint64_t)v[1];
            have |= 4;
        } else if (!sae_json_skip(j)) {
            return bad_json(j, "tensor entry", m);
        }
        if (st != SAE_OK)
            return st;
    }
    if (r < 0)
        return bad_json(j, "tensor entry", m);
    if (have != 7)
        return sae_io_fail(m, SAE_E_CORRUPT, "tensor %s lacks dtype, shape or data_offsets", name);
    uint64_t elems = (uint64_t)t->shape[0] * (uint64_t)(t->rank == 2 ? t->shape[1] : 1);
    if (t->end - t->begin != elems * (uint64_t)dtype_size(t->dtype))
        return sae_io_fail(m, SAE_E_CORRUPT, "tensor %s: %llu bytes for %llu elements", name,
                           (unsigned long long)(t->end - t->begin), (unsigned long long)elems);
    t->present = 1;
    return SAE_OK;
}

/* A metadata string value, decoded into a new allocation. */
static int32_t metadata_string(sae_json *j, const sae_alloc *al, char **out, size_t *len, sae_io_msg m)
{
    size_t at = j->pos, n;
    if (!sae_json_string(j, NULL, 0, &n))
        return bad_json(j, "__metadata__ value (must be a string)", m);
    if (out == NULL)
        return SAE_OK;
    j->pos = at;
    char *s = sae_malloc(al, n + 1);
    if (s == NULL)
        return sae_io_fail(m, SAE_E_NOMEM, "out of memory");
    if (!sae_json_string(j, s, n + 1, &n)) {
        sae_free(al, s);
        return bad_json(j, "__metadata__ value", m);
    }
    sae_free(al, *out); /* keys are unique in valid files; keep the last if not */
    *out = s;
    *len = n;
    return SAE_OK;
}

static int32_t parse_metadata(sae_json *j, st_file *f, const sae_alloc *al, sae_io_msg m)
{
    int state = 0, r;
    char key[ST_NAME_CAP];
    while ((r = sae_json_member(j, &state, key, sizeof key)) == 1) {
        int32_t st;
        if (strcmp(key, "cfg") == 0)
            st = metadata_string(j, al, &f->cfg, &f->cfg_len, m);
        else if (strcmp(key, "libsae_config") == 0)
            st = metadata_string(j, al, &f->libsae, &f->libsae_len, m);
        else
            st = metadata_string(j, al, NULL, NULL, m);
        if (st != SAE_OK)
            return st;
    }
    return r == 0 ? SAE_OK : bad_json(j, "__metadata__", m);
}

/* Tensors must tile the data area exactly: no holes, no overlaps. */
static int32_t check_coverage(const st_file *f, sae_io_msg m)
{
    uint64_t at = 0;
    for (int used = 0;; used++) {
        int next = -1;
        for (int i = 0; i < ST_N; i++)
            if (f->t[i].present && f->t[i].begin == at && f->t[i].end > at)
                next = i;
        if (next < 0) {
            int all = 0;
            for (int i = 0; i < ST_N; i++)
                all += f->t[i].present && f->t[i].end > f->t[i].begin;
            if (used != all || at != f->data_len)
                return sae_io_fail(m, SAE_E_CORRUPT,
                                   "tensor data does not tile the %zu data bytes (hole or overlap at %llu)",
                                   f->data_len, (unsigned long long)at);
            return SAE_OK;
        }
        at = f->t[next].end;
    }
}

static int32_t parse_header(const uint8_t *b, size_t len, st_file *f, const sae_alloc *al, sae_io_msg m)
{
    if (len < 8)
        return sae_io_fail(m, SAE_E_CORRUPT, "safetensors buffer of %zu bytes has no header length", len);
    uint64_t n = sae_le64(b);
    if (n < 2 || n > ST_MAX_HEADER || n > len - 8)
        return sae_io_fail(m, SAE_E_CORRUPT, "safetensors header length %llu does not fit %zu bytes",
                           (unsigned long long)n, len);
    sae_json j;
    sae_json_init(&j, (const char *)b + 8, (size_t)n);
    f->data = b + 8 + n;
    f->data_len = len - 8 - (size_t)n;
    if (sae_json_peek(&j) != '{')
        return sae_io_fail(m, SAE_E_CORRUPT, "safetensors header does not start with '{'");
    int state = 0, r;
    char key[ST_NAME_CAP];
    while ((r = sae_json_member(&j, &state, key, sizeof key)) == 1) {
        int32_t st;
        int i = 0;
        while (i < ST_N && strcmp(key, st_names[i]) != 0)
            i++;
        if (strcmp(key, "__metadata__") == 0)
            st = parse_metadata(&j, f, al, m);
        else if (i == ST_N)
            st = sae_io_fail(m, SAE_E_NOT_SUPPORTED, "tensor '%s' is not part of a supported SAE", key);
        else if (f->t[i].present)
            st = sae_io_fail(m, SAE_E_CORRUPT, "tensor '%s' appears twice", key);
        else
            st = parse_tensor(&j, &f->t[i], key, m);
        if (st != SAE_OK)
            return st;
    }
    if (r < 0 || !sae_json_at_end(&j))
        return bad_json(&j, "header", m);
    return check_coverage(f, m);
}

/* ---- import: configuration ------------------------------------------------------------- */

typedef struct st_cfg {
    int32_t arch;
    int64_t d, L, k;
    int pre_bias;
} st_cfg;

static int32_t map_arch(const char *name, const st_file *f, int32_t *arch, sae_io_msg m)
{
    if (strcmp(name, "standard") == 0)
        *arch = SAE_ARCH_RELU;
    else if (strcmp(name, "topk") == 0)
        *arch = SAE_ARCH_TOPK;
    else if (strcmp(name, "jumprelu") == 0)
        *arch = SAE_ARCH_JUMPRELU;
    else if (strcmp(name, "gated") == 0)
        *arch = SAE_ARCH_GATED;
    else if ((strcmp(name, "batchtopk") == 0 || strcmp(name, "matryoshka_batchtopk") == 0) &&
             f->t[ST_THRESHOLD].present)
        *arch = SAE_ARCH_JUMPRELU; /* inference form of a BatchTopK SAE */
    else
        return sae_io_fail(m, SAE_E_NOT_SUPPORTED, "SAELens architecture '%s' is not supported", name);
    return SAE_OK;
}

/* One member of a SAELens cfg.json object. */
static int32_t saelens_member(sae_json *j, const char *key, const st_file *f, st_cfg *c, int *have,
                              sae_io_msg m)
{
    char s[64];
    int b;
    double k;
    if (strcmp(key, "architecture") == 0) {
        if (!sae_json_string(j, s, sizeof s, NULL))
            return bad_json(j, "cfg architecture", m);
        *have |= 1;
        return map_arch(s, f, &c->arch, m);
    }
    if (strcmp(key, "d_in") == 0 || strcmp(key, "d_sae") == 0) {
        int64_t *dst = key[2] == 'i' ? &c->d : &c->L;
        if (!sae_json_int(j, dst) || *dst < 1)
            return bad_json(j, key, m);
        *have |= key[2] == 'i' ? 2 : 4;
        return SAE_OK;
    }
    if (strcmp(key, "apply_b_dec_to_input") == 0) {
        if (!sae_json_bool(j, &c->pre_bias))
            return bad_json(j, key, m);
        return SAE_OK;
    }
    if (strcmp(key, "k") == 0) {
        if (!sae_json_number(j, &k) || !(k >= 1 && k <= (double)(1 << 20)) || k != (double)(int64_t)k)
            return sae_io_fail(m, SAE_E_NOT_SUPPORTED, "cfg k must be a whole number >= 1");
        c->k = (int64_t)k;
        return SAE_OK;
    }
    if (strcmp(key, "normalize_activations") == 0) {
        if (sae_json_peek(j) == 'n')
            return sae_json_skip(j) ? SAE_OK : bad_json(j, key, m);
        if (!sae_json_string(j, s, sizeof s, NULL))
            return bad_json(j, key, m);
        return strcmp(s, "none") == 0 ? SAE_OK
                                      : sae_io_fail(m, SAE_E_NOT_SUPPORTED,
                                                    "normalize_activations '%s' is not supported "
                                                    "(fold the scaling into the weights first)", s);
    }
    if (strcmp(key, "rescale_acts_by_decoder_norm") == 0 || strcmp(key, "normalize_decoder") == 0) {
        if (!sae_json_bool(j, &b))
            return bad_json(j, key, m);
        return b ? sae_io_fail(m, SAE_E_NOT_SUPPORTED, "%s: true is not supported", key) : SAE_OK;
    }
    return sae_json_skip(j) ? SAE_OK : bad_json(j, key, m);
}

static int32_t parse_saelens_cfg(const char *text, size_t len, const st_file *f, st_cfg *c,
                                 sae_io_msg m)
{
    sae_json j;
    sae_json_init(&j, text, len);
    int state = 0, r, have = 0;
    char key[ST_NAME_CAP];
    c->pre_bias = 1; /* SAELens default */
    c->k = 0;
    while ((r = sae_json_member(&j, &state, key, sizeof key)) == 1) {
        int32_t st = saelens_member(&j, key, f, c, &have, m);
        if (st != SAE_OK)
            return st;
    }
    if (r < 0 || !sae_json_at_end(&j))
        return bad_json(&j, "cfg JSON", m);
    if (have != 7)
        return sae_io_fail(m, SAE_E_CORRUPT, "cfg lacks architecture, d_in or d_sae");
    if (c->arch == SAE_ARCH_TOPK && c->k == 0)
        return sae_io_fail(m, SAE_E_CORRUPT, "topk cfg lacks k");
    return SAE_OK;
}

/* No configuration at all: the tensors say what the SAE is (SAELens defaults). */
static int32_t infer_cfg(const st_file *f, st_cfg *c, sae_io_msg m)
{
    const st_tensor *w = &f->t[ST_W_ENC];
    if (!w->present || w->rank != 2)
        return sae_io_fail(m, SAE_E_CORRUPT, "no configuration and no 2-d W_enc to infer it from");
    c->d = w->shape[0];
    c->L = w->shape[1];
    c->pre_bias = 1;
    c->k = 0;
    c->arch = f->t[ST_THRESHOLD].present || f->t[ST_LOG_THRESHOLD].present ? SAE_ARCH_JUMPRELU
              : f->t[ST_B_GATE].present || f->t[ST_R_MAG].present   ? SAE_ARCH_GATED
                                                                    : SAE_ARCH_RELU;
    return SAE_OK;
}

static int32_t config_from(const st_cfg *c, const sae_allocator *alloc, sae_config **out, sae_io_msg m)
{
    sae_config *cfg;
    if (sae_config_create(&cfg, SAE_KIND_MODEL, alloc) != SAE_OK)
        return sae_io_fail(m, SAE_E_NOMEM, "out of memory");
    int32_t st = sae_config_set_i64(cfg, SAE_MODEL_D_IN, c->d);
    if (st == SAE_OK)
        st = sae_config_set_i64(cfg, SAE_MODEL_N_LATENTS, c->L);
    if (st == SAE_OK)
        st = sae_config_set_i64(cfg, SAE_MODEL_ARCH, c->arch);
    if (st == SAE_OK)
        st = sae_config_set_i64(cfg, SAE_MODEL_PRE_BIAS, c->pre_bias);
    if (st == SAE_OK && c->k > 0)
        st = sae_config_set_i64(cfg, SAE_MODEL_K, c->k);
    if (st != SAE_OK) {
        sae_io_fail(m, SAE_E_NOT_SUPPORTED, "configuration: %s", sae_config_errmsg(cfg));
        sae_config_free(cfg);
        return SAE_E_NOT_SUPPORTED;
    }
    *out = cfg;
    return SAE_OK;
}

static int32_t config_from_hex(const char *hex, size_t n, const sae_alloc *al,
                               const sae_allocator *alloc, sae_config **out, sae_io_msg m)
{
    if (n % 2 != 0)
        return sae_io_fail(m, SAE_E_CORRUPT, "libsae_config: odd number of hex digits");
    uint8_t *bytes = sae_malloc(al, n / 2);
    if (bytes == NULL)
        return sae_io_fail(m, SAE_E_NOMEM, "out of memory");
    for (size_t i = 0; i < n / 2; i++) {
        int hi = -1, lo = -1;
        for (int k = 0; k < 16; k++) {
            hi = hex[2 * i] == "0123456789abcdef"[k] ? k : hi;
            lo = hex[2 * i + 1] == "0123456789abcdef"[k] ? k : lo;
        }
        if (hi < 0 || lo < 0) {
            sae_free(al, bytes);
            return sae_io_fail(m, SAE_E_CORRUPT, "libsae_config: not lower-case hex");
        }
        bytes[i] = (uint8_t)(hi << 4 | lo);
    }
    int32_t st = sae_io_read_config_buffer(bytes, n / 2, SAE_OBJECT_CONFIG, SAE_KIND_MODEL, alloc,
                                           out, m);
    sae_free(al, bytes);
    return st;
}

static int32_t choose_config(const st_file *f, const char *cfg_json, size_t cfg_len,
                             const sae_alloc *al, const sae_allocator *alloc, sae_config **out,
                             sae_io_msg m)
{
    st_cfg c;
    int32_t st;
    if (cfg_json != NULL)
        st = parse_saelens_cfg(cfg_json, cfg_len, f, &c, m);
    else if (f->libsae != NULL)
        return config_from_hex(f->libsae, f->libsae_len, al, alloc, out, m);
    else if (f->cfg != NULL)
        st = parse_saelens_cfg(f->cfg, f->cfg_len, f, &c, m);
    else
        st = infer_cfg(f, &c, m);
    return st == SAE_OK ? config_from(&c, alloc, out, m) : st;
}

/* ---- import: tensors -------------------------------------------------------------------- */

typedef struct st_want {
    int file;       /* ST_* index in the file */
    int32_t which;  /* libsae tensor */
    int64_t rows, cols;
    int optional;
} st_want;

/* The tensors a model of this configuration reads, W_dec first (tied models check W_enc
 * against it). */
static int want_list(int32_t arch, int64_t d, int64_t L, const st_file *f, st_want *w)
{
    int n = 0;
    w[n++] = (st_want){ST_W_DEC, SAE_TENSOR_W_DEC, L, d, 0};
    w[n++] = (st_want){ST_W_ENC, SAE_TENSOR_W_ENC, d, L, 0};
    w[n++] = (st_want){ST_B_DEC, SAE_TENSOR_B_DEC, 1, d, 0};
    int gate = arch == SAE_ARCH_GATED && (f->t[ST_B_GATE].present || !f->t[ST_B_ENC].present);
    w[n++] = (st_want){gate ? ST_B_GATE : ST_B_ENC, SAE_TENSOR_B_ENC, 1, L, 0};
    if (arch == SAE_ARCH_GATED) {
        w[n++] = (st_want){ST_R_MAG, SAE_TENSOR_R_MAG, 1, L, 0};
        w[n++] = (st_want){ST_B_MAG, SAE_TENSOR_B_MAG, 1, L, 0};
    }
    if (arch == SAE_ARCH_JUMPRELU || sae_arch_is_batch(arch)) {
        int logt = arch == SAE_ARCH_JUMPRELU && f->t[ST_LOG_THRESHOLD].present &&
                   !f->t[ST_THRESHOLD].present;
        w[n++] = (st_want){logt ? ST_LOG_THRESHOLD : ST_THRESHOLD, SAE_TENSOR_THRESHOLD, 1, L,
                           sae_arch_is_batch(arch)};
    }
    return n;
}

static int shape_matches(const st_tensor *t, const st_want *w)
{
    if (w->which == SAE_TENSOR_W_ENC || w->which == SAE_TENSOR_W_DEC)
        return t->rank == 2 && t->shape[0] == w->rows && t->shape[1] == w->cols;
    return t->rank == 1 && t->shape[0] == w->cols;
}

/* Every wanted tensor present with its shape; nothing in the file left unused. Runs
 * before the model is allocated, so its size is backed by bytes in the buffer. */
static int32_t check_tensors(const st_file *f, const st_want *w, int n, const char *arch_name,
                             sae_io_msg m)
{
    int used[ST_N] = {0};
    for (int i = 0; i < n; i++) {
        const st_tensor *t = &f->t[w[i].file];
        used[w[i].file] = 1;
        if (!t->present) {
            if (w[i].optional)
                continue;
            return sae_io_fail(m, SAE_E_CORRUPT, "tensor '%s' is missing", st_names[w[i].file]);
        }
        if (!shape_matches(t, &w[i]))
            return sae_io_fail(m, SAE_E_CORRUPT,
                               "tensor '%s' has shape [%lld%s%lld], the configuration needs %lld x %lld",
                               st_names[w[i].file], (long long)t->shape[0], t->rank == 2 ? ", " : "",
                               t->rank == 2 ? (long long)t->shape[1] : 0LL, (long long)w[i].rows,
                               (long long)w[i].cols);
    }
    for (int i = 0; i < ST_N; i++)
        if (f->t[i].present && !used[i])
            return sae_io_fail(m, SAE_E_NOT_SUPPORTED, "tensor '%s' is not used by architecture %s",
                               st_names[i], arch_name);
    return SAE_OK;
}

static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 0x1fu, frac = h & 0x3ffu;
    if (e == 0) { /* zero or subnormal: frac * 2^-24, exact in float */
        float v = (float)frac * 5.9604644775390625e-08f;
        return sign ? -v : v;
    }
    uint32_t bits = e == 31 ? sign | 0x7f800000u | frac << 13 : sign | (e + 112) << 23 | frac << 13;
    return sae_f32_from_bits(bits);
}

static void to_float(const st_file *f, const st_tensor *t, float *dst, int64_t n, int exp_of)
{
    const uint8_t *src = f->data + t->begin;
    for (int64_t i = 0; i < n; i++) {
        float v;
        switch (t->dtype) {
        case DT_F32: v = sae_f32_from_bits(sae_le32(src + 4 * i)); break;
        case DT_F64: {
            uint64_t u = sae_le64(src + 8 * i);
            double x;
            memcpy(&x, &u, sizeof x);
            v = isfinite(x) && fabs(x) <= 3.4028234663852886e38 ? (float)x : (float)INFINITY;
            break;
        }
        case DT_F16: v = half_to_float((uint16_t)(src[2 * i] | src[2 * i + 1] << 8)); break;
        default: v = sae_f32_from_bits((uint32_t)(src[2 * i] | src[2 * i + 1] << 8) << 16); break;
        }
        dst[i] = exp_of ? expf(v) : v;
    }
}

/* Place one converted tensor into the model. */
static int32_t apply_tensor(sae_model *mdl, const st_want *w, float *v, sae_io_msg m)
{
    const char *name = st_names[w->file];
    if (w->which == SAE_TENSOR_W_ENC && mdl->tied) { /* must be the decoder's transpose */
        for (int64_t i = 0; i < w->rows; i++)
            for (int64_t j = 0; j < w->cols; j++)
                if (sae_f32_bits(v[i * w->cols + j]) != sae_f32_bits(mdl->w_dec[j * w->rows + i]))
                    return sae_io_fail(m, SAE_E_MISMATCH, "tied model: W_enc is not W_dec transposed");
        return SAE_OK;
    }
    if (w->which == SAE_TENSOR_THRESHOLD && sae_arch_is_batch(mdl->arch)) {
        for (int64_t j = 1; j < w->cols; j++)
            if (sae_f32_bits(v[j]) != sae_f32_bits(v[0]))
                return sae_io_fail(m, SAE_E_MISMATCH, "BatchTopK threshold must be one repeated value");
        if (!isfinite(v[0]) || v[0] < 0.0f)
            return sae_io_fail(m, SAE_E_RANGE, "BatchTopK threshold %g is invalid", (double)v[0]);
        mdl->batch_threshold = v[0];
        mdl->batch_threshold_valid = v[0] != 0.0f;
        return SAE_OK;
    }
    int32_t st = sae_model_set_tensor(mdl, w->which, v, w->cols);
    if (st != SAE_OK)
        return sae_io_fail(m, st, "tensor '%s': %s", name, sae_model_errmsg(mdl));
    return SAE_OK;
}

static int32_t fill_model(const st_file *f, sae_model *mdl, const st_want *w, int n, sae_io_msg m)
{
    int32_t st = SAE_OK;
    for (int i = 0; i < n && st == SAE_OK; i++) {
        const st_tensor *t = &f->t[w[i].file];
        if (!t->present)
            continue;
        int64_t count = w[i].rows * w[i].cols;
        float *v = sae_malloc(&mdl->al, sizeof(float) * (size_t)count);
        if (v == NULL)
            return sae_io_fail(m, SAE_E_NOMEM, "out of memory");
        to_float(f, t, v, count, w[i].file == ST_LOG_THRESHOLD);
        st = apply_tensor(mdl, &w[i], v, m);
        sae_free(&mdl->al, v);
    }
    return st;
}

static int32_t import_model(const st_file *f, const char *cfg_json, size_t cfg_len,
                            const sae_alloc *al, const sae_allocator *alloc, sae_model **out,
                            sae_io_msg m)
{
    sae_config *cfg;
    int32_t st = choose_config(f, cfg_json, cfg_len, al, alloc, &cfg, m);
    if (st != SAE_OK)
        return st;
    int32_t arch = (int32_t)sae_cfg_i64(cfg, SAE_MODEL_ARCH);
    st_want w[8];
    int n = want_list(arch, sae_cfg_i64(cfg, SAE_MODEL_D_IN), sae_cfg_i64(cfg, SAE_MODEL_N_LATENTS), f, w);
    sae_model *mdl = NULL;
    if ((st = sae_io_validate(cfg, "model", m)) == SAE_OK &&
        (st = check_tensors(f, w, n, saelens_arch(arch), m)) == SAE_OK &&
        (st = sae_model_create(&mdl, cfg, alloc)) != SAE_OK)
        sae_io_fail(m, st, "creating the model failed: %s", sae_status_str(st));
    sae_config_free(cfg);
    if (st == SAE_OK)
        st = fill_model(f, mdl, w, n, m);
    if (st != SAE_OK) {
        sae_model_free(mdl);
        return st;
    }
    *out = mdl;
    return SAE_OK;
}

int32_t sae_model_import_safetensors(sae_model **out, const void *buf, size_t len,
                                     const char *cfg_json, size_t cfg_len,
                                     const sae_allocator *alloc, char *msg, size_t msg_cap)
{
    sae_io_msg m;
    int32_t st = sae_io_reader_start(out, msg, msg_cap, &m);
    if (st != SAE_OK)
        return st;
    if (buf == NULL)
        return sae_io_fail(m, SAE_E_NULL, "buffer is NULL");
    sae_alloc al;
    sae_alloc_init(&al, alloc);
    st_file f;
    memset(&f, 0, sizeof f);
    st = parse_header(buf, len, &f, &al, m);
    if (st == SAE_OK)
        st = import_model(&f, cfg_json, cfg_len, &al, alloc, out, m);
    sae_free(&al, f.cfg);
    sae_free(&al, f.libsae);
    return st;
}
