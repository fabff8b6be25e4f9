/* libFuzzer: sae_model_import_safetensors. Mode byte bit 1 set: the input also carries
 * a cfg.json text (2-byte little-endian length, then the text) before the file. A loaded
 * model is exported again and the export must load. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const uint8_t *file = data + 1;
    size_t flen = size - 1, clen = 0;
    char *cfg = NULL;
    if ((data[0] & 2) && flen >= 2) {
        clen = (size_t)(file[0] | file[1] << 8);
        if (clen > flen - 2)
            clen = flen - 2;
        cfg = malloc(clen ? clen : 1);
        memcpy(cfg, file + 2, clen);
        file += 2 + clen;
        flen -= 2 + clen;
    }
    uint8_t *buf = malloc(flen ? flen : 1);
    memcpy(buf, file, flen);
    sae_model *m = (sae_model *)buf;
    char msg[256] = "";
    int32_t st = sae_model_import_safetensors(&m, buf, flen, cfg, clen, NULL, msg, sizeof msg);
    fuzz_check_refusal(st, m, buf, msg);
    if (st == SAE_OK) {
        size_t n = 0;
        if (sae_model_export_safetensors(m, NULL, 0, &n) != SAE_OK)
            abort();
        uint8_t *out = malloc(n);
        sae_model *again = NULL;
        if (sae_model_export_safetensors(m, out, n, &n) != SAE_OK ||
            sae_model_import_safetensors(&again, out, n, NULL, 0, NULL, msg, sizeof msg) != SAE_OK)
            abort();
        free(out);
        sae_model_free(again);
        sae_model_free(m);
    }
    free(buf);
    free(cfg);
    return 0;
}
