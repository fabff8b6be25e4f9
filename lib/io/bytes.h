/* Bounds-checked little-endian byte streams and CRC-32 for lib/io.
 *
 * Writers count every byte they are asked to produce, whether or not it fits, so one
 * code path both measures (p == NULL) and fills (the two-call pattern). Readers never
 * touch a byte outside [p, p + len): a read past the end returns zeros and sets a
 * sticky `bad` flag that the caller checks once per section. */
#ifndef SAE_LIB_IO_BYTES_H
#define SAE_LIB_IO_BYTES_H

#include "core/core.h" /* sae_f32_bits, sae_f32_from_bits */

#include <stddef.h>
#include <stdint.h>

/* ---- writer ------------------------------------------------------------------ */
typedef struct sae_wbuf {
    uint8_t *p; /* NULL: measure only */
    size_t cap; /* bytes available at p */
    size_t pos; /* bytes produced so far, also past cap */
} sae_wbuf;

void sae_wbuf_init(sae_wbuf *w, void *p, size_t cap);
/* Whether every byte produced so far landed in the buffer. */
int sae_wbuf_fits(const sae_wbuf *w);
void sae_wr_bytes(sae_wbuf *w, const void *src, size_t n);
void sae_wr_zeros(sae_wbuf *w, size_t n);
void sae_wr_u8(sae_wbuf *w, uint8_t v);
void sae_wr_u16(sae_wbuf *w, uint16_t v);
void sae_wr_u32(sae_wbuf *w, uint32_t v);
void sae_wr_u64(sae_wbuf *w, uint64_t v);
void sae_wr_i64(sae_wbuf *w, int64_t v);
void sae_wr_f64(sae_wbuf *w, double v);
/* n float32 values, row by row (rows x cols, row stride ld), as IEEE-754 LE. */
void sae_wr_f32_matrix(sae_wbuf *w, const float *src, int64_t rows, int64_t cols, int64_t ld);
void sae_wr_f64_array(sae_wbuf *w, const double *src, int64_t n);
void sae_wr_i64_array(sae_wbuf *w, const int64_t *src, int64_t n);
/* Overwrite 8 bytes at offset `at` (already produced) when they are in the buffer. */
void sae_wr_patch_u64(sae_wbuf *w, size_t at, uint64_t v);
void sae_wr_patch_u32(sae_wbuf *w, size_t at, uint32_t v);

/* ---- reader ------------------------------------------------------------------ */
typedef struct sae_rbuf {
    const uint8_t *p;
    size_t len, pos;
    int bad; /* a read went past the end (sticky) */
} sae_rbuf;

void sae_rbuf_init(sae_rbuf *r, const void *p, size_t len);
size_t sae_rbuf_left(const sae_rbuf *r);
/* Pointer to the next n bytes and advance, or NULL (and bad) when fewer remain. */
const uint8_t *sae_rd_bytes(sae_rbuf *r, size_t n);
uint8_t sae_rd_u8(sae_rbuf *r);
uint16_t sae_rd_u16(sae_rbuf *r);
uint32_t sae_rd_u32(sae_rbuf *r);
uint64_t sae_rd_u64(sae_rbuf *r);
int64_t sae_rd_i64(sae_rbuf *r);
double sae_rd_f64(sae_rbuf *r);
/* A sub-reader over the next n bytes (empty and bad when fewer remain). */
sae_rbuf sae_rd_sub(sae_rbuf *r, size_t n);
/* Read rows x cols LE float32 into dst (row stride ld); returns 0 when truncated. */
int sae_rd_f32_matrix(sae_rbuf *r, float *dst, int64_t rows, int64_t cols, int64_t ld);

/* ---- plain conversions ---------------------------------------------------------- */
uint32_t sae_le32(const uint8_t *b);
uint64_t sae_le64(const uint8_t *b);
void sae_put_le32(uint8_t *b, uint32_t v);
void sae_put_le64(uint8_t *b, uint64_t v);

/* ---- checksum ------------------------------------------------------------------- */
/* CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320, as in zlib and PNG).
 * Start with crc = 0; feed chunks by passing the previous result. */
uint32_t sae_crc32(uint32_t crc, const void *data, size_t n);

#endif
