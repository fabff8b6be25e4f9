/* Private services of lib/io: the native envelope (header, sections, checksums) and the
 * configuration body shared by every object kind. See docs/formats.md. */
#ifndef SAE_LIB_IO_INTERNAL_H
#define SAE_LIB_IO_INTERNAL_H

#include "core/core.h"
#include "io/bytes.h"

#include <sae/io.h>

/* Header: 32 bytes. The first 12 (magic, major, minor, byte-order mark) never move, so
 * any future version can be recognised and refused cleanly. */
#define SAE_FMT_HEADER_SIZE 32
#define SAE_FMT_BOM 0x0A0B0C0Du         /* as written little-endian: 0D 0C 0B 0A */
#define SAE_FMT_BOM_SWAPPED 0x0D0C0B0Au /* what a big-endian writer would leave */
#define SAE_FMT_SECTION_HEADER 16       /* u32 tag, u32 flags (0), u64 size */

/* Section tags: four ASCII characters read as a LE u32. An upper-case first character
 * marks a critical section (a reader that does not know it must refuse the buffer);
 * lower case marks an ancillary one (skipped when unknown). */
#define SAE_TAG(a, b, c, d) \
    ((uint32_t)(a) | (uint32_t)(b) << 8 | (uint32_t)(c) << 16 | (uint32_t)(d) << 24)
#define SAE_TAG_CONFIG SAE_TAG('C', 'O', 'N', 'F')  /* a configuration (any kind) */
#define SAE_TAG_MODEL_CFG SAE_TAG('M', 'C', 'F', 'G') /* the model's configuration */
#define SAE_TAG_TENSORS SAE_TAG('T', 'E', 'N', 'S') /* model tensors */
#define SAE_TAG_MODEL_STATE SAE_TAG('M', 'S', 'T', 'A') /* model non-tensor state */
#define SAE_TAG_TRAINER_CFG SAE_TAG('T', 'C', 'F', 'G') /* the trainer's configuration */
#define SAE_TAG_TRAINER_STATE SAE_TAG('T', 'S', 'T', 'A') /* optimiser, step, positions */
#define SAE_TAG_GENERATOR SAE_TAG('G', 'V', 'E', 'R') /* toy: generator version (u32) */

/* A reason for the caller (msg may be NULL). */
typedef struct sae_io_msg {
    char *msg;
    size_t cap;
} sae_io_msg;

int32_t sae_io_fail(sae_io_msg m, int32_t status, const char *fmt, ...) SAE_PRINTF(3, 4);

/* ---- writing ---------------------------------------------------------------------- */
void sae_fmt_begin(sae_wbuf *w, uint32_t object);
/* Returns the position of the section's size field, for sae_fmt_section_end. */
size_t sae_fmt_section_begin(sae_wbuf *w, uint32_t tag);
void sae_fmt_section_end(sae_wbuf *w, size_t at);
/* Patch sizes and checksums; SAE_OK, or SAE_E_BUFFER_TOO_SMALL. *written = total size. */
int32_t sae_fmt_end(sae_wbuf *w, size_t *written);
/* sae_fmt_end, recording a short-buffer message on the handle's error record. */
int32_t sae_fmt_finish(sae_wbuf *w, size_t *written, const sae_err *err, const char *what, size_t cap);

/* ---- reading ---------------------------------------------------------------------- */
/* Verify the envelope of buf and return a reader over its payload. */
int32_t sae_fmt_open(const void *buf, size_t len, uint32_t object, sae_rbuf *payload,
                     sae_io_msg m);

/* Split a payload into the sections listed in tags (n of them): body[i] receives the
 * section tagged tags[i] (p == NULL when absent). Duplicates and malformed sections are
 * corrupt; unknown critical sections are a newer format; unknown ancillary ones are
 * skipped. */
int32_t sae_fmt_sections(sae_rbuf payload, const uint32_t *tags, int n, sae_rbuf *body,
                         sae_io_msg m);
/* The section body for tag, or a "missing section" failure. */
int32_t sae_fmt_require(const sae_rbuf *body, const char *what, sae_io_msg m);

/* ---- configuration bodies ------------------------------------------------------- */
void sae_io_write_config(sae_wbuf *w, const sae_config *cfg);
/* Decode a configuration body of kind want_kind (0: any). */
int32_t sae_io_read_config(sae_rbuf *r, int32_t want_kind, const sae_allocator *alloc,
                           sae_config **out, sae_io_msg m);

/* sae_config_validate, reported as "stored <what> configuration is invalid" (SAE_E_CONFIG;
 * SAE_E_NOMEM stays SAE_E_NOMEM). */
int32_t sae_io_validate(const sae_config *cfg, const char *what, sae_io_msg m);
/* A whole section holding one valid configuration of kind (nothing after it). */
int32_t sae_io_read_section_config(sae_rbuf r, int32_t kind, const char *what,
                                   const sae_allocator *alloc, sae_config **out, sae_io_msg m);
/* Decode a buffer of type `object` made of one configuration section of want_kind. */
int32_t sae_io_read_config_buffer(const void *buf, size_t len, uint32_t object, int32_t want_kind,
                                  const sae_allocator *alloc, sae_config **out, sae_io_msg m);
/* Clear msg and check out; the common prologue of every public reader. */
int32_t sae_io_reader_start(void *out, char *msg, size_t msg_cap, sae_io_msg *m);

/* ---- model bodies (model sections inside a model or trainer buffer) ------------- */
void sae_io_write_model_sections(sae_wbuf *w, const sae_model *model);
/* Tags read by sae_io_read_model: MCFG, TENS, MSTA (MSTA optional). */
int32_t sae_io_read_model(const sae_rbuf *mcfg, const sae_rbuf *tens, const sae_rbuf *msta,
                          const sae_allocator *alloc, sae_model **out, sae_io_msg m);

#endif
