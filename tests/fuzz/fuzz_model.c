/* libFuzzer: sae_model_deserialize. A loaded model encodes a row, and re-serializing it
 * is a fixed point after one round. Allocation is bounded by the input length (the tensor
 * section must hold every float), so no size filter is needed. */
#include "fuzz_common.h"

static int32_t ser(const void *o, void *b, size_t c, size_t *w) { return sae_model_serialize(o, b, c, w); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t len;
    uint8_t *buf = fuzz_input(data, size, &len);
    if (buf == NULL)
        return 0;
    sae_model *m = (sae_model *)buf;
    char msg[256] = "";
    int32_t st = sae_model_deserialize(&m, buf, len, NULL, msg, sizeof msg);
    fuzz_check_refusal(st, m, buf, msg);
    if (st == SAE_OK) {
        size_t n1, n2;
        uint8_t *b1 = fuzz_serialize(ser, m, &n1);
        sae_model *again = NULL;
        if (sae_model_deserialize(&again, b1, n1, NULL, msg, sizeof msg) != SAE_OK)
            abort();
        uint8_t *b2 = fuzz_serialize(ser, again, &n2);
        if (n1 != n2 || memcmp(b1, b2, n1) != 0)
            abort();
        int64_t d, L;
        if (sae_model_dims(m, &d, &L) != SAE_OK)
            abort();
        if (d * L <= FUZZ_MAX_ELEMS) {
            float *x = calloc((size_t)d, sizeof(float)), *z = malloc(sizeof(float) * (size_t)L);
            for (int64_t i = 0; i < d; i++)
                x[i] = (float)(i % 3) - 1.0f;
            (void)sae_model_encode(m, x, 1, d, z, L);
            free(x);
            free(z);
        }
        free(b1);
        free(b2);
        sae_model_free(again);
        sae_model_free(m);
    }
    free(buf);
    return 0;
}
