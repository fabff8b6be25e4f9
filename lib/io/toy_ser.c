/* Toy generators in the native format. A generator is a pure function of its
 * configuration (dictionary, probabilities, hierarchy and seed all derive from it), so
 * the configuration is the whole specification: rebuilding from it gives identical
 * samples. */
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
    return sae_fmt_finish(&w, written, &toy->err, "toy_serialize", cap);
}

int32_t sae_toy_deserialize(sae_toy **out, const void *buf, size_t len, const sae_allocator *alloc,
                            char *msg, size_t msg_cap)
{
    sae_io_msg m;
    sae_config *cfg;
    int32_t st = sae_io_reader_start(out, msg, msg_cap, &m);
    if (st == SAE_OK)
        st = sae_io_read_config_buffer(buf, len, SAE_OBJECT_TOY, SAE_KIND_TOY, alloc, &cfg, m);
    if (st != SAE_OK)
        return st;
    sae_toy *t = NULL;
    if ((st = sae_io_validate(cfg, "toy", m)) == SAE_OK && (st = sae_toy_create(&t, cfg, alloc)) != SAE_OK)
        sae_io_fail(m, st, "building the toy failed: %s", sae_status_str(st));
    sae_config_free(cfg);
    if (st == SAE_OK)
        *out = t;
    return st;
}
