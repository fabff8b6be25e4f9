/* Bounds-checked little-endian byte streams and CRC-32 (see bytes.h). Byte order is
 * fixed by shifts, never by the host's representation, so buffers are portable. */
#include "io/bytes.h"

#include <float.h>
#include <string.h>

_Static_assert(sizeof(float) == 4 && FLT_MANT_DIG == 24, "IEEE-754 binary32 floats required");
_Static_assert(sizeof(double) == 8 && DBL_MANT_DIG == 53, "IEEE-754 binary64 doubles required");

/* ---- plain conversions --------------------------------------------------------- */

uint32_t sae_le32(const uint8_t *b)
{
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

uint64_t sae_le64(const uint8_t *b) { return (uint64_t)sae_le32(b) | (uint64_t)sae_le32(b + 4) << 32; }

void sae_put_le32(uint8_t *b, uint32_t v)
{
    b[0] = (uint8_t)v;
    b[1] = (uint8_t)(v >> 8);
    b[2] = (uint8_t)(v >> 16);
    b[3] = (uint8_t)(v >> 24);
}

void sae_put_le64(uint8_t *b, uint64_t v)
{
    sae_put_le32(b, (uint32_t)v);
    sae_put_le32(b + 4, (uint32_t)(v >> 32));
}

/* ---- writer -------------------------------------------------------------------- */

void sae_wbuf_init(sae_wbuf *w, void *p, size_t cap)
{
    w->p = p;
    w->cap = p ? cap : 0;
    w->pos = 0;
}

int sae_wbuf_fits(const sae_wbuf *w) { return w->p != NULL && w->pos <= w->cap; }

/* Room for n more bytes at w->pos? (Counting continues either way.) */
static int room(const sae_wbuf *w, size_t n)
{
    return w->p != NULL && w->pos <= w->cap && n <= w->cap - w->pos;
}

static void advance(sae_wbuf *w, size_t n)
{
    w->pos = n <= SIZE_MAX - w->pos ? w->pos + n : SIZE_MAX; /* saturate: never wraps */
}

void sae_wr_bytes(sae_wbuf *w, const void *src, size_t n)
{
    if (n > 0 && room(w, n))
        memcpy(w->p + w->pos, src, n);
    advance(w, n);
}

void sae_wr_zeros(sae_wbuf *w, size_t n)
{
    if (n > 0 && room(w, n))
        memset(w->p + w->pos, 0, n);
    advance(w, n);
}

void sae_wr_u8(sae_wbuf *w, uint8_t v) { sae_wr_bytes(w, &v, 1); }

void sae_wr_u16(sae_wbuf *w, uint16_t v)
{
    uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    sae_wr_bytes(w, b, 2);
}

void sae_wr_u32(sae_wbuf *w, uint32_t v)
{
    uint8_t b[4];
    sae_put_le32(b, v);
    sae_wr_bytes(w, b, 4);
}

void sae_wr_u64(sae_wbuf *w, uint64_t v)
{
    uint8_t b[8];
    sae_put_le64(b, v);
    sae_wr_bytes(w, b, 8);
}

void sae_wr_i64(sae_wbuf *w, int64_t v) { sae_wr_u64(w, (uint64_t)v); }

void sae_wr_f64(sae_wbuf *w, double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    sae_wr_u64(w, u);
}

void sae_wr_f32_matrix(sae_wbuf *w, const float *src, int64_t rows, int64_t cols, int64_t ld)
{
    size_t row_bytes = (size_t)cols * 4;
    for (int64_t i = 0; i < rows; i++) {
        const float *row = src + i * ld;
        if (room(w, row_bytes)) {
            uint8_t *dst = w->p + w->pos;
            for (int64_t j = 0; j < cols; j++)
                sae_put_le32(dst + 4 * j, sae_f32_bits(row[j]));
        }
        advance(w, row_bytes);
    }
}

void sae_wr_f64_array(sae_wbuf *w, const double *src, int64_t n)
{
    for (int64_t k = 0; k < n; k++)
        sae_wr_f64(w, src[k]);
}

void sae_wr_i64_array(sae_wbuf *w, const int64_t *src, int64_t n)
{
    for (int64_t k = 0; k < n; k++)
        sae_wr_i64(w, src[k]);
}

void sae_wr_patch_u64(sae_wbuf *w, size_t at, uint64_t v)
{
    if (w->p != NULL && at <= w->cap && w->cap - at >= 8)
        sae_put_le64(w->p + at, v);
}

void sae_wr_patch_u32(sae_wbuf *w, size_t at, uint32_t v)
{
    if (w->p != NULL && at <= w->cap && w->cap - at >= 4)
        sae_put_le32(w->p + at, v);
}

/* ---- reader -------------------------------------------------------------------- */

void sae_rbuf_init(sae_rbuf *r, const void *p, size_t len)
{
    r->p = p;
    r->len = p ? len : 0;
    r->pos = 0;
    r->bad = 0;
}

size_t sae_rbuf_left(const sae_rbuf *r) { return r->len - r->pos; }

const uint8_t *sae_rd_bytes(sae_rbuf *r, size_t n)
{
    if (r->bad || n > r->len - r->pos) {
        r->bad = 1;
        r->pos = r->len;
        return NULL;
    }
    if (r->p == NULL) /* empty reader, n == 0: no pointer arithmetic on NULL */
        return (const uint8_t *)"";
    const uint8_t *b = r->p + r->pos;
    r->pos += n;
    return b;
}

uint8_t sae_rd_u8(sae_rbuf *r)
{
    const uint8_t *b = sae_rd_bytes(r, 1);
    return b ? b[0] : 0;
}

uint16_t sae_rd_u16(sae_rbuf *r)
{
    const uint8_t *b = sae_rd_bytes(r, 2);
    return b ? (uint16_t)(b[0] | b[1] << 8) : 0;
}

uint32_t sae_rd_u32(sae_rbuf *r)
{
    const uint8_t *b = sae_rd_bytes(r, 4);
    return b ? sae_le32(b) : 0;
}

uint64_t sae_rd_u64(sae_rbuf *r)
{
    const uint8_t *b = sae_rd_bytes(r, 8);
    return b ? sae_le64(b) : 0;
}

int64_t sae_rd_i64(sae_rbuf *r) { return (int64_t)sae_rd_u64(r); }

double sae_rd_f64(sae_rbuf *r)
{
    uint64_t u = sae_rd_u64(r);
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

sae_rbuf sae_rd_sub(sae_rbuf *r, size_t n)
{
    sae_rbuf s;
    const uint8_t *b = sae_rd_bytes(r, n);
    sae_rbuf_init(&s, b, b ? n : 0);
    s.bad = b == NULL;
    return s;
}

int sae_rd_f32_matrix(sae_rbuf *r, float *dst, int64_t rows, int64_t cols, int64_t ld)
{
    if (rows < 0 || cols < 0 || (uint64_t)cols > SIZE_MAX / 4)
        return 0;
    size_t row_bytes = (size_t)cols * 4;
    for (int64_t i = 0; i < rows; i++) {
        const uint8_t *b = sae_rd_bytes(r, row_bytes);
        if (b == NULL)
            return 0;
        float *row = dst + i * ld;
        for (int64_t j = 0; j < cols; j++)
            row[j] = sae_f32_from_bits(sae_le32(b + 4 * j));
    }
    return 1;
}

/* ---- CRC-32 -------------------------------------------------------------------- */

/* Table of the reflected polynomial 0xEDB88320 (generated once; see bytes.h). */
static const uint32_t crc_table[256] = {
    0x00000000u, 0x77073096u, 0xee0e612cu, 0x990951bau, 0x076dc419u, 0x706af48fu,
    0xe963a535u, 0x9e6495a3u, 0x0edb8832u, 0x79dcb8a4u, 0xe0d5e91eu, 0x97d2d988u,
    0x09b64c2bu, 0x7eb17cbdu, 0xe7b82d07u, 0x90bf1d91u, 0x1db71064u, 0x6ab020f2u,
    0xf3b97148u, 0x84be41deu, 0x1adad47du, 0x6ddde4ebu, 0xf4d4b551u, 0x83d385c7u,
    0x136c9856u, 0x646ba8c0u, 0xfd62f97au, 0x8a65c9ecu, 0x14015c4fu, 0x63066cd9u,
    0xfa0f3d63u, 0x8d080df5u, 0x3b6e20c8u, 0x4c69105eu, 0xd56041e4u, 0xa2677172u,
    0x3c03e4d1u, 0x4b04d447u, 0xd20d85fdu, 0xa50ab56bu, 0x35b5a8fau, 0x42b2986cu,
    0xdbbbc9d6u, 0xacbcf940u, 0x32d86ce3u, 0x45df5c75u, 0xdcd60dcfu, 0xabd13d59u,
    0x26d930acu, 0x51de003au, 0xc8d75180u, 0xbfd06116u, 0x21b4f4b5u, 0x56b3c423u,
    0xcfba9599u, 0xb8bda50fu, 0x2802b89eu, 0x5f058808u, 0xc60cd9b2u, 0xb10be924u,
    0x2f6f7c87u, 0x58684c11u, 0xc1611dabu, 0xb6662d3du, 0x76dc4190u, 0x01db7106u,
    0x98d220bcu, 0xefd5102au, 0x71b18589u, 0x06b6b51fu, 0x9fbfe4a5u, 0xe8b8d433u,
    0x7807c9a2u, 0x0f00f934u, 0x9609a88eu, 0xe10e9818u, 0x7f6a0dbbu, 0x086d3d2du,
    0x91646c97u, 0xe6635c01u, 0x6b6b51f4u, 0x1c6c6162u, 0x856530d8u, 0xf262004eu,
    0x6c0695edu, 0x1b01a57bu, 0x8208f4c1u, 0xf50fc457u, 0x65b0d9c6u, 0x12b7e950u,
    0x8bbeb8eau, 0xfcb9887cu, 0x62dd1ddfu, 0x15da2d49u, 0x8cd37cf3u, 0xfbd44c65u,
    0x4db26158u, 0x3ab551ceu, 0xa3bc0074u, 0xd4bb30e2u, 0x4adfa541u, 0x3dd895d7u,
    0xa4d1c46du, 0xd3d6f4fbu, 0x4369e96au, 0x346ed9fcu, 0xad678846u, 0xda60b8d0u,
    0x44042d73u, 0x33031de5u, 0xaa0a4c5fu, 0xdd0d7cc9u, 0x5005713cu, 0x270241aau,
    0xbe0b1010u, 0xc90c2086u, 0x5768b525u, 0x206f85b3u, 0xb966d409u, 0xce61e49fu,
    0x5edef90eu, 0x29d9c998u, 0xb0d09822u, 0xc7d7a8b4u, 0x59b33d17u, 0x2eb40d81u,
    0xb7bd5c3bu, 0xc0ba6cadu, 0xedb88320u, 0x9abfb3b6u, 0x03b6e20cu, 0x74b1d29au,
    0xead54739u, 0x9dd277afu, 0x04db2615u, 0x73dc1683u, 0xe3630b12u, 0x94643b84u,
    0x0d6d6a3eu, 0x7a6a5aa8u, 0xe40ecf0bu, 0x9309ff9du, 0x0a00ae27u, 0x7d079eb1u,
    0xf00f9344u, 0x8708a3d2u, 0x1e01f268u, 0x6906c2feu, 0xf762575du, 0x806567cbu,
    0x196c3671u, 0x6e6b06e7u, 0xfed41b76u, 0x89d32be0u, 0x10da7a5au, 0x67dd4accu,
    0xf9b9df6fu, 0x8ebeeff9u, 0x17b7be43u, 0x60b08ed5u, 0xd6d6a3e8u, 0xa1d1937eu,
    0x38d8c2c4u, 0x4fdff252u, 0xd1bb67f1u, 0xa6bc5767u, 0x3fb506ddu, 0x48b2364bu,
    0xd80d2bdau, 0xaf0a1b4cu, 0x36034af6u, 0x41047a60u, 0xdf60efc3u, 0xa867df55u,
    0x316e8eefu, 0x4669be79u, 0xcb61b38cu, 0xbc66831au, 0x256fd2a0u, 0x5268e236u,
    0xcc0c7795u, 0xbb0b4703u, 0x220216b9u, 0x5505262fu, 0xc5ba3bbeu, 0xb2bd0b28u,
    0x2bb45a92u, 0x5cb36a04u, 0xc2d7ffa7u, 0xb5d0cf31u, 0x2cd99e8bu, 0x5bdeae1du,
    0x9b64c2b0u, 0xec63f226u, 0x756aa39cu, 0x026d930au, 0x9c0906a9u, 0xeb0e363fu,
    0x72076785u, 0x05005713u, 0x95bf4a82u, 0xe2b87a14u, 0x7bb12baeu, 0x0cb61b38u,
    0x92d28e9bu, 0xe5d5be0du, 0x7cdcefb7u, 0x0bdbdf21u, 0x86d3d2d4u, 0xf1d4e242u,
    0x68ddb3f8u, 0x1fda836eu, 0x81be16cdu, 0xf6b9265bu, 0x6fb077e1u, 0x18b74777u,
    0x88085ae6u, 0xff0f6a70u, 0x66063bcau, 0x11010b5cu, 0x8f659effu, 0xf862ae69u,
    0x616bffd3u, 0x166ccf45u, 0xa00ae278u, 0xd70dd2eeu, 0x4e048354u, 0x3903b3c2u,
    0xa7672661u, 0xd06016f7u, 0x4969474du, 0x3e6e77dbu, 0xaed16a4au, 0xd9d65adcu,
    0x40df0b66u, 0x37d83bf0u, 0xa9bcae53u, 0xdebb9ec5u, 0x47b2cf7fu, 0x30b5ffe9u,
    0xbdbdf21cu, 0xcabac28au, 0x53b39330u, 0x24b4a3a6u, 0xbad03605u, 0xcdd70693u,
    0x54de5729u, 0x23d967bfu, 0xb3667a2eu, 0xc4614ab8u, 0x5d681b02u, 0x2a6f2b94u,
    0xb40bbe37u, 0xc30c8ea1u, 0x5a05df1bu, 0x2d02ef8du,
};

uint32_t sae_crc32(uint32_t crc, const void *data, size_t n)
{
    const uint8_t *b = data;
    crc = ~crc;
    for (size_t i = 0; i < n; i++)
        crc = crc_table[(crc ^ b[i]) & 0xffu] ^ (crc >> 8);
    return ~crc;
}
