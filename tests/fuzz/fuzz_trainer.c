/* libFuzzer: sae_trainer_deserialize. Checkpoints whose trainer workspace would be large
 * (batch_size x width) are skipped; everything else is loaded, stepped once and
 * re-serialized. */
#include "fuzz_common.h"

static int32_t ser(const void *o, void *b, size_t c, size_t *w) { return sae_trainer_serialize(o, b, c, w); }

/* Peek at the trainer configuration and the model size through the internal readers. */
static int small_enough(const uint8_t *buf, size_t len)
{
    sae_rbuf payload, body[5];
    const uint32_t tags[5] = {SAE_TAG_MODEL_CFG, SAE_TAG_TENSORS, SAE_TAG_MODEL_STATE,
                              SAE_TAG_TRAINER_CFG, SAE_TAG_TRAINER_STATE};
    sae_io_msg m = {NULL, 0};
    if (sae_fmt_open(buf, len, SAE_OBJECT_TRAINER, &payload, m) != SAE_OK ||
        sae_fmt_sections(payload, tags, 5, body, m) != SAE_OK || body[3].p == NULL)
        return 1; /* refused early: fuzz it */
    sae_config *cfg;
    if (sae_io_read_config(&body[3], SAE_KIND_TRAINER, NULL, &cfg, m) != SAE_OK)
        return 1;
    int64_t batch = 0, threads = 0, chunk = 0;
    int ok = sae_config_get_i64(cfg, SAE_TRAINER_BATCH_SIZE, &batch) == SAE_OK &&
             sae_config_get_i64(cfg, SAE_TRAINER_N_THREADS, &threads) == SAE_OK &&
             sae_config_get_i64(cfg, SAE_TRAINER_CHUNK_ROWS, &chunk) == SAE_OK && batch <= 64 &&
             threads <= 2 && body[1].len <= 4 * FUZZ_MAX_ELEMS;
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
    sae_trainer *t = (sae_trainer *)buf;
    char msg[256] = "";
    int32_t st = sae_trainer_deserialize(&t, buf, len, NULL, msg, sizeof msg);
    fuzz_check_refusal(st, t, buf, msg);
    if (st == SAE_OK) {
        size_t n;
        uint8_t *b = fuzz_serialize(ser, t, &n);
        sae_trainer *again = NULL;
        if (sae_trainer_deserialize(&again, b, n, NULL, msg, sizeof msg) != SAE_OK)
            abort();
        int64_t d, L;
        if (sae_model_dims(sae_trainer_model(t), &d, &L) != SAE_OK)
            abort();
        float *x = malloc(sizeof(float) * (size_t)(4 * d));
        for (int64_t i = 0; i < 4 * d; i++)
            x[i] = (float)((i * 7) % 5) - 2.0f;
        st = sae_trainer_step(t, x, 4, d);
        if (st != SAE_OK && st != SAE_E_DIVERGED && st != SAE_E_NOT_SUPPORTED)
            abort();
        free(x);
        free(b);
        sae_trainer_free(again);
        sae_trainer_free(t);
    }
    free(buf);
    return 0;
}
