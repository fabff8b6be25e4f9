/* Shared by the libFuzzer harnesses of lib/io (tests/fuzz/README.md).
 *
 * Native buffers carry CRC-32 checksums, so random mutations almost never get past the
 * envelope. The first input byte therefore selects a mode: bit 0 set = re-seal a copy
 * (fix the payload size and both checksums) so the section and value parsers are reached;
 * clear = hand the bytes over untouched so the envelope checks are fuzzed too. Inputs are
 * always copied into an exact-size allocation so AddressSanitizer sees any overread. */
#ifndef SAE_FUZZ_COMMON_H
#define SAE_FUZZ_COMMON_H

#include <sae/sae.h>

#include "io/bytes.h"
#include "io/io_internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An exact-size copy of data[1..size) (re-sealed when the mode bit asks), or NULL. */
static inline uint8_t *fuzz_input(const uint8_t *data, size_t size, size_t *len)
{
    if (size < 1)
        return NULL;
    *len = size - 1;
    uint8_t *b = malloc(*len ? *len : 1);
    if (b == NULL)
        return NULL;
    memcpy(b, data + 1, *len);
    if ((data[0] & 1) && *len >= SAE_FMT_HEADER_SIZE && memcmp(b, "SAE", 4) == 0) {
        sae_put_le64(b + 16, (uint64_t)(*len - SAE_FMT_HEADER_SIZE));
        sae_put_le32(b + 24, sae_crc32(0, b + SAE_FMT_HEADER_SIZE, *len - SAE_FMT_HEADER_SIZE));
        sae_put_le32(b + 28, sae_crc32(0, b, 28));
    }
    return b;
}

/* A failed load must leave *out alone and explain itself. */
static inline void fuzz_check_refusal(int32_t st, const void *out, const void *sentinel,
                                      const char *msg)
{
    if (st == SAE_OK)
        return;
    if (out != sentinel || msg[0] == '\0' || st == SAE_E_INTERNAL || st == SAE_E_NULL)
        abort();
}

/* Serialize twice through the two-call pattern and compare: writers are deterministic. */
typedef int32_t (*fuzz_ser_fn)(const void *obj, void *buf, size_t cap, size_t *written);
static inline uint8_t *fuzz_serialize(fuzz_ser_fn fn, const void *obj, size_t *len)
{
    size_t need = 0, got = 0;
    if (fn(obj, NULL, 0, &need) != SAE_OK)
        abort();
    uint8_t *b = malloc(need), *c = malloc(need);
    if (b == NULL || c == NULL || fn(obj, b, need, &got) != SAE_OK || got != need ||
        fn(obj, c, need, &got) != SAE_OK || memcmp(b, c, need) != 0)
        abort();
    free(c);
    *len = need;
    return b;
}

/* Configuration-driven sizes a fuzz input may ask for (kept small so each run is fast;
 * the library itself accepts the full documented ranges). */
#define FUZZ_MAX_ELEMS (1 << 16)

#endif
