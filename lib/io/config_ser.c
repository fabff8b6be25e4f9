/* Configurations in the native format: every parameter of the kind with its type, value
 * and whether the caller set it, so the rebuilt configuration is bit-identical. Written
 * and read only through the registry tables and the public setters, so every loaded
 * value passes the same bound checks as a value set by hand. */
#include "io/io_internal.h"

#include <string.h>

#define MAX_KIND_PARAMS 1024

static void write_value(sae_wbuf *w, const sae_config *cfg, const sae_param_def *d)
{
    int64_t n;
    switch (d->type) {
    case SAE_TYPE_I64: sae_wr_i64(w, sae_cfg_i64(cfg, d->key)); break;
    case SAE_TYPE_F64: sae_wr_f64(w, sae_cfg_f64(cfg, d->key)); break;
    case SAE_TYPE_F64_ARRAY: {
        const double *v = sae_cfg_f64_array(cfg, d->key, &n);
        sae_wr_u64(w, (uint64_t)n);
        sae_wr_f64_array(w, v, n);
        break;
    }
    default: {
        const int64_t *v = sae_cfg_i64_array(cfg, d->key, &n);
        sae_wr_u64(w, (uint64_t)n);
        sae_wr_i64_array(w, v, n);
        break;
    }
    }
}

void sae_io_write_config(sae_wbuf *w, const sae_config *cfg)
{
    const sae_kind_def *kd = sae_kind_find(sae_config_kind(cfg));
    sae_wr_u32(w, (uint32_t)kd->kind);
    sae_wr_u32(w, (uint32_t)kd->n_params);
    for (int32_t p = 0; p < kd->n_params; p++) {
        const sae_param_def *d = &kd->params[p];
        sae_wr_u32(w, (uint32_t)d->key);
        sae_wr_u8(w, (uint8_t)d->type);
        sae_wr_u8(w, (uint8_t)(sae_cfg_is_set(cfg, d->key) != 0));
        sae_wr_u16(w, 0);
        write_value(w, cfg, d);
    }
}

/* ---- reading -------------------------------------------------------------------- */

static int is_array(int32_t type) { return type == SAE_TYPE_F64_ARRAY || type == SAE_TYPE_I64_ARRAY; }

/* Skip the value of a parameter this library does not know. */
static int32_t skip_value(sae_rbuf *r, int32_t type, uint32_t key, sae_io_msg m)
{
    uint64_t n = 1;
    if (is_array(type))
        n = sae_rd_u64(r);
    if (r->bad || n > sae_rbuf_left(r) / 8)
        return sae_io_fail(m, SAE_E_CORRUPT, "truncated value of parameter %u", (unsigned)key);
    sae_rd_bytes(r, (size_t)n * 8);
    return SAE_OK;
}

/* A stored value the setter refuses is corruption; running out of memory is not. */
static int32_t setter_failed(sae_config *c, const sae_param_def *d, int32_t st, sae_io_msg m)
{
    return sae_io_fail(m, st == SAE_E_NOMEM ? SAE_E_NOMEM : SAE_E_CORRUPT, "parameter '%s': %s",
                       d->name, sae_config_errmsg(c));
}

static int32_t read_array(sae_rbuf *r, sae_config *c, const sae_param_def *d, sae_io_msg m)
{
    uint64_t n = sae_rd_u64(r);
    if (r->bad || n > sae_rbuf_left(r) / 8)
        return sae_io_fail(m, SAE_E_CORRUPT, "parameter '%s': array of %llu values is truncated",
                           d->name, (unsigned long long)n);
    if (n == 0)
        return SAE_OK; /* arrays default to empty */
    const sae_alloc *al = sae_cfg_alloc(c);
    void *tmp = sae_malloc(al, (size_t)n * 8); /* bounded by the buffer length */
    if (tmp == NULL)
        return sae_io_fail(m, SAE_E_NOMEM, "parameter '%s': out of memory", d->name);
    int32_t st;
    if (d->type == SAE_TYPE_F64_ARRAY) {
        double *v = tmp;
        for (uint64_t k = 0; k < n; k++)
            v[k] = sae_rd_f64(r);
        st = sae_config_set_f64_array(c, d->key, v, (int64_t)n);
    } else {
        int64_t *v = tmp;
        for (uint64_t k = 0; k < n; k++)
            v[k] = sae_rd_i64(r);
        st = sae_config_set_i64_array(c, d->key, v, (int64_t)n);
    }
    sae_free(al, tmp);
    return st == SAE_OK ? SAE_OK : setter_failed(c, d, st, m);
}

/* Scalars: applied when the writer's caller set them, or when the stored value differs
 * from this library's default (value fidelity wins over the set flag). */
static int32_t read_scalar(sae_rbuf *r, sae_config *c, const sae_param_def *d, int set, sae_io_msg m)
{
    int32_t st = SAE_OK;
    if (d->type == SAE_TYPE_I64) {
        int64_t v = sae_rd_i64(r);
        if (!r->bad && (set || (double)v != d->dflt))
            st = sae_config_set_i64(c, d->key, v);
    } else {
        uint64_t bits = sae_rd_u64(r), dbits;
        double dflt = d->dflt, v;
        memcpy(&v, &bits, sizeof v);
        memcpy(&dbits, &dflt, sizeof dbits);
        if (!r->bad && (set || bits != dbits))
            st = sae_config_set_f64(c, d->key, v);
    }
    if (r->bad)
        return sae_io_fail(m, SAE_E_CORRUPT, "parameter '%s': truncated value", d->name);
    return st == SAE_OK ? SAE_OK : setter_failed(c, d, st, m);
}

static int32_t read_entry(sae_rbuf *r, sae_config *c, const sae_kind_def *kd, uint8_t *seen,
                          sae_io_msg m)
{
    uint32_t key = sae_rd_u32(r);
    int32_t type = sae_rd_u8(r);
    int set = sae_rd_u8(r);
    uint16_t pad = sae_rd_u16(r);
    if (r->bad)
        return sae_io_fail(m, SAE_E_CORRUPT, "truncated parameter entry");
    if (type < SAE_TYPE_I64 || type > SAE_TYPE_I64_ARRAY || set > 1 || pad != 0)
        return sae_io_fail(m, SAE_E_CORRUPT, "parameter %u: malformed entry", (unsigned)key);
    int32_t p = 0;
    while (p < kd->n_params && (uint32_t)kd->params[p].key != key)
        p++;
    if (p == kd->n_params) {
        if (set)
            return sae_io_fail(m, SAE_E_NOT_SUPPORTED,
                               "parameter %u is set but unknown to this library (newer writer?)",
                               (unsigned)key);
        return skip_value(r, type, key, m); /* a newer parameter left at its default */
    }
    const sae_param_def *d = &kd->params[p];
    if (d->type != type)
        return sae_io_fail(m, SAE_E_CORRUPT, "parameter '%s' stored with type %d, expected %d",
                           d->name, (int)type, (int)d->type);
    if (seen[p]++)
        return sae_io_fail(m, SAE_E_CORRUPT, "parameter '%s' appears twice", d->name);
    return is_array(type) ? read_array(r, c, d, m) : read_scalar(r, c, d, set, m);
}

int32_t sae_io_read_config(sae_rbuf *r, int32_t want_kind, const sae_allocator *alloc,
                           sae_config **out, sae_io_msg m)
{
    uint32_t kind = sae_rd_u32(r), count = sae_rd_u32(r);
    if (r->bad)
        return sae_io_fail(m, SAE_E_CORRUPT, "truncated configuration header");
    const sae_kind_def *kd = kind <= INT32_MAX ? sae_kind_find((int32_t)kind) : NULL;
    if (kd == NULL)
        return sae_io_fail(m, SAE_E_CORRUPT, "unknown configuration kind %u", (unsigned)kind);
    if (want_kind != 0 && (int32_t)kind != want_kind)
        return sae_io_fail(m, SAE_E_MISMATCH, "configuration of kind '%s' where kind %d was expected",
                           kd->name, (int)want_kind);
    if (count > sae_rbuf_left(r) / 16 || kd->n_params > MAX_KIND_PARAMS)
        return sae_io_fail(m, SAE_E_CORRUPT, "configuration announces %u parameters in %zu bytes",
                           (unsigned)count, sae_rbuf_left(r));
    sae_config *c;
    if (sae_config_create(&c, (int32_t)kind, alloc) != SAE_OK)
        return sae_io_fail(m, SAE_E_NOMEM, "out of memory");
    uint8_t seen[MAX_KIND_PARAMS] = {0};
    int32_t st = SAE_OK;
    for (uint32_t i = 0; i < count && st == SAE_OK; i++)
        st = read_entry(r, c, kd, seen, m);
    if (st != SAE_OK) {
        sae_config_free(c);
        return st;
    }
    *out = c;
    return SAE_OK;
}

int32_t sae_io_validate(const sae_config *cfg, const char *what, sae_io_msg m)
{
    char why[SAE_ERRMSG_CAP];
    int32_t st = sae_config_validate(cfg, why, sizeof why);
    if (st == SAE_OK)
        return SAE_OK;
    return sae_io_fail(m, st == SAE_E_NOMEM ? st : SAE_E_CONFIG,
                       "stored %s configuration is invalid: %s", what, why);
}

int32_t sae_io_read_section_config(sae_rbuf r, int32_t kind, const char *what,
                                   const sae_allocator *alloc, sae_config **out, sae_io_msg m)
{
    sae_config *cfg;
    int32_t st = sae_io_read_config(&r, kind, alloc, &cfg, m);
    if (st != SAE_OK)
        return st;
    if (sae_rbuf_left(&r) != 0)
        st = sae_io_fail(m, SAE_E_CORRUPT, "stray bytes after the %s configuration", what);
    else
        st = sae_io_validate(cfg, what, m);
    if (st != SAE_OK) {
        sae_config_free(cfg);
        return st;
    }
    *out = cfg;
    return SAE_OK;
}

/* ---- public ---------------------------------------------------------------------- */

int32_t sae_config_serialize(const sae_config *cfg, void *buf, size_t cap, size_t *written)
{
    if (cfg == NULL)
        return SAE_E_NULL;
    if (written == NULL)
        return sae_fail(sae_cfg_err(cfg), SAE_E_NULL, "config_serialize: written is NULL");
    sae_wbuf w;
    sae_wbuf_init(&w, buf, cap);
    sae_fmt_begin(&w, SAE_OBJECT_CONFIG);
    size_t at = sae_fmt_section_begin(&w, SAE_TAG_CONFIG);
    sae_io_write_config(&w, cfg);
    sae_fmt_section_end(&w, at);
    return sae_fmt_finish(&w, written, sae_cfg_err(cfg), "config_serialize", cap);
}

int32_t sae_io_read_config_buffer(const void *buf, size_t len, uint32_t object, int32_t want_kind,
                                  const sae_allocator *alloc, sae_config **out, sae_io_msg m)
{
    sae_rbuf payload, body;
    uint32_t tag = SAE_TAG_CONFIG;
    int32_t st = sae_fmt_open(buf, len, object, &payload, m);
    if (st == SAE_OK)
        st = sae_fmt_sections(payload, &tag, 1, &body, m);
    if (st == SAE_OK)
        st = sae_fmt_require(&body, "configuration", m);
    if (st != SAE_OK)
        return st;
    sae_config *c;
    if ((st = sae_io_read_config(&body, want_kind, alloc, &c, m)) != SAE_OK)
        return st;
    if (sae_rbuf_left(&body) != 0) {
        sae_config_free(c);
        return sae_io_fail(m, SAE_E_CORRUPT, "%zu stray bytes after the configuration",
                           sae_rbuf_left(&body));
    }
    *out = c;
    return SAE_OK;
}

int32_t sae_config_deserialize(sae_config **out, const void *buf, size_t len,
                               const sae_allocator *alloc, char *msg, size_t msg_cap)
{
    sae_io_msg m;
    int32_t st = sae_io_reader_start(out, msg, msg_cap, &m);
    if (st != SAE_OK)
        return st;
    return sae_io_read_config_buffer(buf, len, SAE_OBJECT_CONFIG, 0, alloc, out, m);
}
