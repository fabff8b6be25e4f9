/* libFuzzer: sae_toy_deserialize. Specifications whose generator would be large or slow
 * to build are skipped (the loader accepts them; building them is not the point here). */
#include "fuzz_common.h"

static int32_t ser(const void *o, void *b, size_t c, size_t *w) { return sae_toy_serialize(o, b, c, w); }

static int small_enough(const uint8_t *buf, size_t len)
{
    sae_rbuf payload, body[2];
    const uint32_t tags[2] = {SAE_TAG_CONFIG, SAE_TAG_GENERATOR};
    sae_config *cfg;
    sae_io_msg m = {NULL, 0};
    if (sae_fmt_open(buf, len, SAE_OBJECT_TOY, &payload, m) != SAE_OK ||
        sae_fmt_sections(payload, tags, 2, body, m) != SAE_OK || body[0].p == NULL ||
        sae_io_read_config(&body[0], SAE_KIND_TOY, NULL, &cfg, m) != SAE_OK)
        return 1; /* refused before anything is built: fuzz it */
    int64_t n = 0, d = 0, tms = 0, threads = 0;
    int ok = sae_config_get_i64(cfg, SAE_TOY_N_FEATURES, &n) == SAE_OK &&
             sae_config_get_i64(cfg, SAE_TOY_D, &d) == SAE_OK &&
             sae_config_get_i64(cfg, SAE_TOY_TMS_STEPS, &tms) == SAE_OK &&
             sae_config_get_i64(cfg, SAE_TOY_N_THREADS, &threads) == SAE_OK && n * d <= FUZZ_MAX_ELEMS &&
             n <= 4096 && tms <= 20 && threads <= 2;
    sae_config_free(cfg);
    return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t len;
    uint8_t *buf = fuzz_input(data, size, &len);
    if (buf == NULL)
        return 0;
    if (!small_enough(buf, len)) {
        free(buf);
        return 0;
    }
    sae_toy *toy = (sae_toy *)buf;
    char msg[256] = "";
    int32_t st = sae_toy_deserialize(&toy, buf, len, NULL, msg, sizeof msg);
    fuzz_check_refusal(st, toy, buf, msg);
    if (st == SAE_OK) {
        size_t n;
        uint8_t *b = fuzz_serialize(ser, toy, &n);
        sae_toy *again = NULL;
        if (sae_toy_deserialize(&again, b, n, NULL, msg, sizeof msg) != SAE_OK)
            abort();
        int64_t nf, d;
        if (sae_toy_dims(toy, &nf, &d) != SAE_OK)
            abort();
        float *x = malloc(sizeof(float) * (size_t)(4 * d)), *y = malloc(sizeof(float) * (size_t)(4 * d));
        if (sae_toy_sample(toy, 12345, 4, x, d) != SAE_OK || sae_toy_sample(again, 12345, 4, y, d) != SAE_OK ||
            memcmp(x, y, sizeof(float) * (size_t)(4 * d)) != 0)
            abort(); /* the same specification gives the same samples */
        free(x);
        free(y);
        free(b);
        sae_toy_free(again);
        sae_toy_free(toy);
    }
    free(buf);
    return 0;
}
