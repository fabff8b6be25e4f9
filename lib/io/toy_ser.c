/* Toy generators in the native format. A generator is a pure function of its
 * configuration (dictionary, probabilities, hierarchy and seed all derive from it) and of
 * the sampling algorithms, so the buffer holds the configuration and the generator
 * version: rebuilding from it gives identical samples, and a library whose algorithms
 * differ refuses the buffer instead of silently producing other samples. Buffers without
 * the version section predate it and were written by generator version 1. */
#include "io/io_internal.h"
#include "toy/toy_internal.h"

int32_t sae_toy_serialize(const sae_toy *toy, void *buf, size_t cap, size_t *written)
{
    if (toy == NULL)
        return SAE_E_NULL;
    if (written == NULL)
        return sae_fail(&toy->err, SAE_E_NULL, "toy_serialize: written is NULL");
    sae_wbuf w;
    sae_wbuf_init(&w, buf, cap);
    sae_fmt_begin(&w, SAE_OBJECT_TOY);
    size_t at = sae_fmt_section_begin(&w, SAE_TAG_CONFIG);
    sae_io_write_config(&w, toy->cfg);
    sae_fmt_section_end(&w, at);
    at = sae_fmt_section_begin(&w, SAE_TAG_GENERATOR);
    sae_wr_u32(&w, SAE_TOY_GENERATOR_VERSION);
    sae_fmt_section_end(&w, at);
    return sae_fmt_finish(&w, written, &toy->err, "toy_serialize", cap);
}

/* The generator version section, when present, must name this library's generator. */
static int32_t check_generator(sae_rbuf r, sae_io_msg m)
{
    if (r.p == NULL)
        return SAE_OK;
    if (sae_rbuf_left(&r) != 4)
        return sae_io_fail(m, SAE_E_CORRUPT, "generator version section of %zu bytes, not 4",
                           sae_rbuf_left(&r));
    uint32_t v = sae_rd_u32(&r);
    if (v != SAE_TOY_GENERATOR_VERSION)
        return sae_io_fail(m, SAE_E_FORMAT_VERSION,
                           "toy written by generator version %u; this library samples with "
                           "version %d, so its samples would differ", (unsigned)v,
                           SAE_TOY_GENERATOR_VERSION);
    return SAE_OK;
}

int32_t sae_toy_deserialize(sae_toy **out, const void *buf, size_t len, const sae_allocator *alloc,
                            char *msg, size_t msg_cap)
{
    sae_io_msg m;
    sae_rbuf payload, body[2];
    const uint32_t tags[2] = {SAE_TAG_CONFIG, SAE_TAG_GENERATOR};
    sae_config *cfg;
    int32_t st = sae_io_reader_start(out, msg, msg_cap, &m);
    if (st == SAE_OK)
        st = sae_fmt_open(buf, len, SAE_OBJECT_TOY, &payload, m);
    if (st == SAE_OK)
        st = sae_fmt_sections(payload, tags, 2, body, m);
    if (st == SAE_OK)
        st = sae_fmt_require(&body[0], "configuration", m);
    if (st == SAE_OK)
        st = check_generator(body[1], m);
    if (st == SAE_OK)
        st = sae_io_read_section_config(body[0], SAE_KIND_TOY, "toy", alloc, &cfg, m);
    if (st != SAE_OK)
        return st;
    sae_toy *t = NULL;
    if ((st = sae_toy_create(&t, cfg, alloc)) != SAE_OK)
        sae_io_fail(m, st, "building the toy failed: %s", sae_status_str(st));
    sae_config_free(cfg);
    if (st == SAE_OK)
        *out = t;
    return st;
}
