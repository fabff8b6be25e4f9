/* libFuzzer: sae_config_deserialize. Loaded configurations re-serialize to a buffer that
 * loads to the same bytes again (a fixed point after one round). */
#include "fuzz_common.h"

static int32_t ser(const void *o, void *b, size_t c, size_t *w) { return sae_config_serialize(o, b, c, w); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t len;
    uint8_t *buf = fuzz_input(data, size, &len);
    if (buf == NULL)
        return 0;
    sae_config *cfg = (sae_config *)buf;
    char msg[256] = "";
    int32_t st = sae_config_deserialize(&cfg, buf, len, NULL, msg, sizeof msg);
    fuzz_check_refusal(st, cfg, buf, msg);
    if (st == SAE_OK) {
        size_t n1, n2;
        uint8_t *b1 = fuzz_serialize(ser, cfg, &n1);
        sae_config *again = NULL;
        if (sae_config_deserialize(&again, b1, n1, NULL, msg, sizeof msg) != SAE_OK)
            abort();
        uint8_t *b2 = fuzz_serialize(ser, again, &n2);
        if (n1 != n2 || memcmp(b1, b2, n1) != 0)
            abort();
        (void)sae_config_validate(cfg, msg, sizeof msg);
        free(b1);
        free(b2);
        sae_config_free(again);
        sae_config_free(cfg);
    }
    free(buf);
    return 0;
}
