/* Models in the native format: the model configuration (architecture and every
 * hyperparameter), each parameter tensor in the public SAELens layout with its shape,
 * and the non-tensor state (BatchTopK inference threshold). The expected tensor sizes
 * follow from the configuration, and are checked against the buffer length before the
 * model is allocated. */
#include "io/io_internal.h"
#include "model/model_internal.h"

#include <string.h>

/* One stored tensor: public id, shape, offset into params, W_enc transposed. */
typedef struct seg {
    int32_t id;
    int64_t off, rows, cols;
    int transposed;
} seg;

#define MAX_SEGS 8

/* The tensors a model of this layout stores, in canonical order. */
static int model_segments(const sae_model_layout *lay, int64_t d, int64_t L, seg *s)
{
    const seg all[] = {
        {SAE_TENSOR_W_ENC, lay->w_enc_t, d, L, 1},    {SAE_TENSOR_B_ENC, lay->b_enc, 1, L, 0},
        {SAE_TENSOR_W_DEC, lay->w_dec, L, d, 0},      {SAE_TENSOR_B_DEC, lay->b_dec, 1, d, 0},
        {SAE_TENSOR_THRESHOLD, lay->threshold, 1, L, 0}, {SAE_TENSOR_R_MAG, lay->r_mag, 1, L, 0},
        {SAE_TENSOR_B_MAG, lay->b_mag, 1, L, 0},
    };
    int n = 0;
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (all[i].off >= 0)
            s[n++] = all[i];
    return n;
}

/* Internal W_enc is n_latents x d (row per latent); the stored tensor is d x n_latents. */
static void write_transposed(sae_wbuf *w, const float *src, int64_t rows, int64_t cols)
{
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < cols; j++)
            sae_wr_u32(w, sae_f32_bits(src[j * rows + i]));
}

void sae_io_write_model_sections(sae_wbuf *w, const sae_model *m)
{
    size_t at = sae_fmt_section_begin(w, SAE_TAG_MODEL_CFG);
    sae_io_write_config(w, m->cfg);
    sae_fmt_section_end(w, at);

    seg s[MAX_SEGS];
    int n = model_segments(&m->lay, m->d, m->n_latents, s);
    at = sae_fmt_section_begin(w, SAE_TAG_TENSORS);
    sae_wr_u32(w, (uint32_t)n);
    sae_wr_u32(w, 0);
    for (int i = 0; i < n; i++) {
        sae_wr_u32(w, (uint32_t)s[i].id);
        sae_wr_u32(w, 0);
        sae_wr_u64(w, (uint64_t)s[i].rows);
        sae_wr_u64(w, (uint64_t)s[i].cols);
        const float *src = m->params + s[i].off;
        if (s[i].transposed)
            write_transposed(w, src, s[i].rows, s[i].cols);
        else
            sae_wr_f32_matrix(w, src, s[i].rows, s[i].cols, s[i].cols);
    }
    sae_fmt_section_end(w, at);

    at = sae_fmt_section_begin(w, SAE_TAG_MODEL_STATE);
    sae_wr_f64(w, m->batch_threshold);
    sae_wr_u32(w, (uint32_t)(m->batch_threshold_valid != 0));
    sae_wr_u32(w, 0);
    sae_fmt_section_end(w, at);
}

/* ---- reading -------------------------------------------------------------------- */

static int32_t read_segment(sae_rbuf *r, sae_model *mdl, const seg *s, sae_io_msg m)
{
    uint32_t id = sae_rd_u32(r), pad = sae_rd_u32(r);
    uint64_t rows = sae_rd_u64(r), cols = sae_rd_u64(r);
    if (r->bad)
        return sae_io_fail(m, SAE_E_CORRUPT, "truncated tensor header");
    if (id != (uint32_t)s->id || pad != 0 || rows != (uint64_t)s->rows || cols != (uint64_t)s->cols)
        return sae_io_fail(m, SAE_E_CORRUPT,
                           "tensor entry %u (%llu x %llu) where tensor %d (%lld x %lld) belongs",
                           (unsigned)id, (unsigned long long)rows, (unsigned long long)cols,
                           (int)s->id, (long long)s->rows, (long long)s->cols);
    float *dst = mdl->params + s->off;
    int64_t n = s->rows * s->cols;
    if (s->transposed) {
        for (int64_t i = 0; i < s->rows; i++)
            for (int64_t j = 0; j < s->cols; j++)
                dst[j * s->rows + i] = sae_f32_from_bits(sae_rd_u32(r));
    } else {
        sae_rd_f32_matrix(r, dst, s->rows, s->cols, s->cols);
    }
    if (r->bad)
        return sae_io_fail(m, SAE_E_CORRUPT, "tensor %d is truncated", (int)s->id);
    if (!sae_all_finite_f32(dst, n))
        return sae_io_fail(m, SAE_E_NONFINITE, "tensor %d holds NaN or infinity", (int)s->id);
    return SAE_OK;
}

static int32_t read_tensors(sae_rbuf r, sae_model *mdl, const seg *s, int n, sae_io_msg m)
{
    uint32_t count = sae_rd_u32(&r), pad = sae_rd_u32(&r);
    if (r.bad || count != (uint32_t)n || pad != 0)
        return sae_io_fail(m, SAE_E_CORRUPT, "tensor section lists %u tensors, the architecture has %d",
                           (unsigned)count, n);
    for (int i = 0; i < n; i++) {
        int32_t st = read_segment(&r, mdl, &s[i], m);
        if (st != SAE_OK)
            return st;
    }
    return SAE_OK;
}

static int32_t read_state(sae_rbuf r, sae_model *mdl, sae_io_msg m)
{
    double bt = sae_rd_f64(&r);
    uint32_t valid = sae_rd_u32(&r), pad = sae_rd_u32(&r);
    if (r.bad || sae_rbuf_left(&r) != 0 || valid > 1 || pad != 0 || !isfinite(bt))
        return sae_io_fail(m, SAE_E_CORRUPT, "malformed model state section");
    mdl->batch_threshold = bt;
    mdl->batch_threshold_valid = (int32_t)valid;
    return SAE_OK;
}

/* Exact byte size of a tensor section for these segments (no overflow: the validated
 * configuration bounds d x n_latents by 2^34). */
static uint64_t tensor_section_size(const seg *s, int n)
{
    uint64_t bytes = 8;
    for (int i = 0; i < n; i++)
        bytes += 24 + (uint64_t)s[i].rows * (uint64_t)s[i].cols * 4;
    return bytes;
}

int32_t sae_io_read_model(const sae_rbuf *mcfg, const sae_rbuf *tens, const sae_rbuf *msta,
                          const sae_allocator *alloc, sae_model **out, sae_io_msg m)
{
    int32_t st;
    if ((st = sae_fmt_require(mcfg, "model configuration", m)) != SAE_OK ||
        (st = sae_fmt_require(tens, "model tensors", m)) != SAE_OK ||
        (st = sae_fmt_require(msta, "model state", m)) != SAE_OK)
        return st;
    sae_config *cfg;
    if ((st = sae_io_read_section_config(*mcfg, SAE_KIND_MODEL, "model", alloc, &cfg, m)) != SAE_OK)
        return st;
    int64_t d = sae_cfg_i64(cfg, SAE_MODEL_D_IN), L = sae_cfg_i64(cfg, SAE_MODEL_N_LATENTS);
    sae_model_layout lay = sae_model_layout_for((int32_t)sae_cfg_i64(cfg, SAE_MODEL_ARCH),
                                                sae_cfg_i64(cfg, SAE_MODEL_TIED) != 0, d, L);
    seg s[MAX_SEGS];
    int n = model_segments(&lay, d, L, s);
    uint64_t want = tensor_section_size(s, n);
    sae_model *mdl = NULL;
    /* Size check first: allocation is never larger than the buffer justifies. */
    if (want != (uint64_t)tens->len)
        st = sae_io_fail(m, SAE_E_CORRUPT,
                         "tensor section has %zu bytes; a %lld x %lld model needs %llu", tens->len,
                         (long long)d, (long long)L, (unsigned long long)want);
    else if ((st = sae_model_create(&mdl, cfg, alloc)) != SAE_OK)
        sae_io_fail(m, st, "creating the model failed: %s", sae_status_str(st));
    sae_config_free(cfg);
    if (st == SAE_OK && (st = read_tensors(*tens, mdl, s, n, m)) == SAE_OK)
        st = read_state(*msta, mdl, m);
    if (st != SAE_OK) {
        sae_model_free(mdl);
        return st;
    }
    *out = mdl;
    return SAE_OK;
}

/* ---- public --------------------------------------------------------------------- */

int32_t sae_model_serialize(const sae_model *model, void *buf, size_t cap, size_t *written)
{
    if (model == NULL)
        return SAE_E_NULL;
    if (written == NULL)
        return sae_fail(&model->err, SAE_E_NULL, "model_serialize: written is NULL");
    sae_wbuf w;
    sae_wbuf_init(&w, buf, cap);
    sae_fmt_begin(&w, SAE_OBJECT_MODEL);
    sae_io_write_model_sections(&w, model);
    return sae_fmt_finish(&w, written, &model->err, "model_serialize", cap);
}

int32_t sae_model_deserialize(sae_model **out, const void *buf, size_t len,
                              const sae_allocator *alloc, char *msg, size_t msg_cap)
{
    sae_io_msg m;
    sae_rbuf payload, body[3];
    const uint32_t tags[3] = {SAE_TAG_MODEL_CFG, SAE_TAG_TENSORS, SAE_TAG_MODEL_STATE};
    int32_t st = sae_io_reader_start(out, msg, msg_cap, &m);
    if (st == SAE_OK)
        st = sae_fmt_open(buf, len, SAE_OBJECT_MODEL, &payload, m);
    if (st == SAE_OK)
        st = sae_fmt_sections(payload, tags, 3, body, m);
    if (st == SAE_OK)
        st = sae_io_read_model(&body[0], &body[1], &body[2], alloc, out, m);
    return st;
}
