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
    int32_t st = sae_fmt_end(&w, written);
    if (st != SAE_OK)
        return sae_fail(&toy->err, st, "toy_serialize: %zu bytes needed, buffer holds %zu",
                        *written, cap);
    return SAE_OK;
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
    char why[SAE_ERRMSG_CAP];
    sae_toy *t = NULL;
    if ((st = sae_config_validate(cfg, why, sizeof why)) != SAE_OK) /* NOMEM stays NOMEM */
        st = sae_io_fail(m, st == SAE_E_NOMEM ? st : SAE_E_CONFIG, "stored toy configuration is invalid: %s", why);
    else if ((st = sae_toy_create(&t, cfg, alloc)) != SAE_OK)
        sae_io_fail(m, st, "building the toy failed: %s", sae_status_str(st));
    sae_config_free(cfg);
    if (st == SAE_OK)
        *out = t;
    return st;
}
