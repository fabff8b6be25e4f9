/* The native envelope shared by every object: a fixed 32-byte header, then tagged
 * sections with explicit sizes, covered by a CRC-32 (docs/formats.md, "Native format"). */
#include "io/io_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const uint8_t magic[4] = {'S', 'A', 'E', '\0'};

int32_t sae_io_fail(sae_io_msg m, int32_t status, const char *fmt, ...)
{
    if (m.msg != NULL && m.cap > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(m.msg, m.cap, fmt, ap);
        va_end(ap);
    }
    return status;
}

int32_t sae_io_reader_start(void *out, char *msg, size_t msg_cap, sae_io_msg *m)
{
    m->msg = msg;
    m->cap = msg_cap;
    if (msg != NULL && msg_cap > 0)
        msg[0] = '\0';
    return out == NULL ? sae_io_fail(*m, SAE_E_NULL, "out is NULL") : SAE_OK;
}

/* ---- writing ---------------------------------------------------------------------- */

void sae_fmt_begin(sae_wbuf *w, uint32_t object)
{
    sae_wr_bytes(w, magic, 4);
    sae_wr_u16(w, SAE_FORMAT_MAJOR);
    sae_wr_u16(w, SAE_FORMAT_MINOR);
    sae_wr_u32(w, SAE_FMT_BOM);
    sae_wr_u32(w, object);
    sae_wr_u64(w, 0); /* payload size, patched by sae_fmt_end */
    sae_wr_u32(w, 0); /* payload CRC */
    sae_wr_u32(w, 0); /* header CRC */
}

size_t sae_fmt_section_begin(sae_wbuf *w, uint32_t tag)
{
    sae_wr_u32(w, tag);
    sae_wr_u32(w, 0);
    size_t at = w->pos;
    sae_wr_u64(w, 0);
    return at;
}

void sae_fmt_section_end(sae_wbuf *w, size_t at)
{
    sae_wr_patch_u64(w, at, (uint64_t)(w->pos - at - 8));
}

int32_t sae_fmt_end(sae_wbuf *w, size_t *written)
{
    *written = w->pos;
    if (w->p == NULL)
        return SAE_OK; /* size query */
    if (!sae_wbuf_fits(w) || w->pos == SIZE_MAX)
        return SAE_E_BUFFER_TOO_SMALL;
    size_t payload = w->pos - SAE_FMT_HEADER_SIZE;
    sae_put_le64(w->p + 16, (uint64_t)payload);
    sae_put_le32(w->p + 24, sae_crc32(0, w->p + SAE_FMT_HEADER_SIZE, payload));
    sae_put_le32(w->p + 28, sae_crc32(0, w->p, 28));
    return SAE_OK;
}

int32_t sae_fmt_finish(sae_wbuf *w, size_t *written, const sae_err *err, const char *what, size_t cap)
{
    int32_t st = sae_fmt_end(w, written);
    if (st != SAE_OK)
        return sae_fail(err, st, "%s: %zu bytes needed, buffer holds %zu", what, *written, cap);
    return SAE_OK;
}

/* ---- reading ---------------------------------------------------------------------- */

static const char *object_name(uint32_t object)
{
    switch (object) {
    case SAE_OBJECT_CONFIG: return "configuration";
    case SAE_OBJECT_TOY: return "toy generator";
    case SAE_OBJECT_MODEL: return "model";
    case SAE_OBJECT_TRAINER: return "trainer checkpoint";
    default: return "unknown object";
    }
}

/* The fixed first 12 bytes: magic, version, byte order. */
static int32_t check_prefix(const uint8_t *b, size_t len, sae_io_msg m)
{
    if (len < 12 || memcmp(b, magic, 4) != 0)
        return sae_io_fail(m, SAE_E_CORRUPT, len < 4 ? "buffer of %zu bytes is too short for a libsae header"
                                                    : "not a libsae buffer (bad magic), or truncated (%zu bytes)",
                           len);
    uint32_t bom = sae_le32(b + 8);
    if (bom == SAE_FMT_BOM_SWAPPED)
        return sae_io_fail(m, SAE_E_NOT_SUPPORTED,
                           "buffer was written in big-endian byte order; the format is little-endian");
    if (bom != SAE_FMT_BOM)
        return sae_io_fail(m, SAE_E_CORRUPT, "byte-order mark 0x%08x is invalid", (unsigned)bom);
    unsigned major = (unsigned)(b[4] | b[5] << 8), minor = (unsigned)(b[6] | b[7] << 8);
    if (major != SAE_FORMAT_MAJOR)
        return sae_io_fail(m, SAE_E_FORMAT_VERSION,
                           "format version %u.%u is not supported (this library reads %d.x)", major,
                           minor, SAE_FORMAT_MAJOR);
    return SAE_OK;
}

int32_t sae_fmt_open(const void *buf, size_t len, uint32_t object, sae_rbuf *payload, sae_io_msg m)
{
    if (buf == NULL)
        return sae_io_fail(m, SAE_E_NULL, "buffer is NULL");
    const uint8_t *b = buf;
    int32_t st = check_prefix(b, len, m);
    if (st != SAE_OK)
        return st;
    if (len < SAE_FMT_HEADER_SIZE)
        return sae_io_fail(m, SAE_E_CORRUPT, "truncated header (%zu of %d bytes)", len,
                           SAE_FMT_HEADER_SIZE);
    if (sae_crc32(0, b, 28) != sae_le32(b + 28))
        return sae_io_fail(m, SAE_E_CORRUPT, "header checksum mismatch");
    uint32_t obj = sae_le32(b + 12);
    if (object != 0 && obj != object)
        return sae_io_fail(m, SAE_E_MISMATCH, "buffer holds a %s, not a %s", object_name(obj),
                           object_name(object));
    uint64_t size = sae_le64(b + 16);
    if (size != len - SAE_FMT_HEADER_SIZE)
        return sae_io_fail(m, SAE_E_CORRUPT,
                           size > len - SAE_FMT_HEADER_SIZE
                               ? "truncated: header announces %llu payload bytes, %zu present"
                               : "header announces %llu payload bytes, %zu present (trailing data)",
                           (unsigned long long)size, len - SAE_FMT_HEADER_SIZE);
    if (sae_crc32(0, b + SAE_FMT_HEADER_SIZE, (size_t)size) != sae_le32(b + 24))
        return sae_io_fail(m, SAE_E_CORRUPT, "payload checksum mismatch (corrupt data)");
    sae_rbuf_init(payload, b + SAE_FMT_HEADER_SIZE, (size_t)size);
    return SAE_OK;
}

static int tag_critical(uint32_t tag)
{
    int c = (int)(tag & 0xffu);
    return c >= 'A' && c <= 'Z';
}

static void tag_text(uint32_t tag, char out[5])
{
    for (int k = 0; k < 4; k++) {
        int c = (int)((tag >> (8 * k)) & 0xffu);
        out[k] = (char)(c >= 32 && c < 127 ? c : '?');
    }
    out[4] = '\0';
}

int32_t sae_fmt_sections(sae_rbuf payload, const uint32_t *tags, int n, sae_rbuf *body, sae_io_msg m)
{
    for (int i = 0; i < n; i++)
        sae_rbuf_init(&body[i], NULL, 0);
    while (sae_rbuf_left(&payload) > 0) {
        uint32_t tag = sae_rd_u32(&payload);
        uint32_t flags = sae_rd_u32(&payload);
        uint64_t size = sae_rd_u64(&payload);
        char name[5];
        tag_text(tag, name);
        if (payload.bad)
            return sae_io_fail(m, SAE_E_CORRUPT, "truncated section header");
        if (flags != 0)
            return sae_io_fail(m, SAE_E_CORRUPT, "section '%s' has unknown flags 0x%x", name,
                               (unsigned)flags);
        if (size > sae_rbuf_left(&payload))
            return sae_io_fail(m, SAE_E_CORRUPT, "section '%s' announces %llu bytes, %zu remain",
                               name, (unsigned long long)size, sae_rbuf_left(&payload));
        sae_rbuf sec = sae_rd_sub(&payload, (size_t)size);
        int i = 0;
        while (i < n && tags[i] != tag)
            i++;
        if (i == n) {
            if (tag_critical(tag))
                return sae_io_fail(m, SAE_E_FORMAT_VERSION,
                                   "unknown critical section '%s' (written by a newer libsae?)", name);
            continue;
        }
        if (body[i].p != NULL)
            return sae_io_fail(m, SAE_E_CORRUPT, "section '%s' appears twice", name);
        body[i] = sec;
        if (body[i].p == NULL) /* empty sections still count as present */
            body[i].p = (const uint8_t *)"";
    }
    return SAE_OK;
}

int32_t sae_fmt_require(const sae_rbuf *body, const char *what, sae_io_msg m)
{
    return body->p != NULL ? SAE_OK : sae_io_fail(m, SAE_E_CORRUPT, "missing section: %s", what);
}

/* ---- public: inspect ---------------------------------------------------------------- */

int32_t sae_io_inspect(const void *buf, size_t len, int32_t *object, int32_t *major,
                       int32_t *minor, char *msg, size_t msg_cap)
{
    sae_io_msg m = {msg, msg_cap};
    if (msg != NULL && msg_cap > 0)
        msg[0] = '\0';
    if (buf == NULL)
        return sae_io_fail(m, SAE_E_NULL, "buffer is NULL");
    const uint8_t *b = buf;
    if (len >= 8 && memcmp(b, magic, 4) == 0) {
        if (major)
            *major = b[4] | b[5] << 8;
        if (minor)
            *minor = b[6] | b[7] << 8;
    }
    if (len >= 16 && object)
        *object = (int32_t)sae_le32(b + 12);
    sae_rbuf payload;
    return sae_fmt_open(buf, len, 0, &payload, m);
}
