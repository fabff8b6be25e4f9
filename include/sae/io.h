/*
 * Serialisation to and from caller buffers: configurations, toy generators, models,
 * trainer checkpoints (native, versioned format) and SAELens-style safetensors.
 * The library never touches files: callers read and write the bytes.
 *
 * Two-call pattern for every writer: call with buf = NULL (cap ignored) to get the size
 * in *written (returns SAE_OK), then call again with a buffer of that size. A non-NULL
 * buffer shorter than needed returns SAE_E_BUFFER_TOO_SMALL with the needed size in
 * *written; its contents are then unspecified.
 *
 * Every reader takes (buf, len) and never reads outside it, allocates only in
 * proportion to len, and on failure returns a specific status (SAE_E_CORRUPT,
 * SAE_E_FORMAT_VERSION, SAE_E_NOT_SUPPORTED, SAE_E_MISMATCH, SAE_E_CONFIG, SAE_E_NOMEM)
 * with a reason written into msg (NUL-terminated, truncated to msg_cap; msg may be
 * NULL), and leaves *out untouched. See docs/formats.md for the byte layouts.
 */
#ifndef SAE_IO_H
#define SAE_IO_H

#include <sae/core.h>
#include <sae/model.h>
#include <sae/toy.h>
#include <sae/train.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Major version of the native format written by this library (independent of the
 * library version): buffers with another major version are refused with
 * SAE_E_FORMAT_VERSION. */
#define SAE_FORMAT_MAJOR 1
/** Minor version of the native format: additions a reader of the same major version may
 * skip (ancillary sections, parameters left at their defaults). */
#define SAE_FORMAT_MINOR 0

/** What a native buffer holds (values pinned; stored in the buffer header). */
typedef enum sae_object {
    SAE_OBJECT_CONFIG = 1, /**< a configuration of any kind */
    SAE_OBJECT_TOY = 2,    /**< a toy generator's specification */
    SAE_OBJECT_MODEL = 3,  /**< a model: architecture, hyperparameters, tensors */
    SAE_OBJECT_TRAINER = 4 /**< a trainer checkpoint, model included */
} sae_object;

/**
 * Check the envelope of a native buffer (magic, byte order, version, sizes, checksums)
 * without decoding it. object, major and minor (each may be NULL) receive what the
 * header says when the header itself is readable.
 */
SAE_API SAE_NODISCARD int32_t sae_io_inspect(const void *buf, size_t len, int32_t *object,
                                             int32_t *major, int32_t *minor, char *msg,
                                             size_t msg_cap);

/* ---- configurations ------------------------------------------------------------ */
/** Every parameter of the configuration (any kind), bit-exact, with its set/default state. */
SAE_API SAE_NODISCARD int32_t sae_config_serialize(const sae_config *cfg, void *buf, size_t cap,
                                                   size_t *written);
/** A new configuration from a buffer written by sae_config_serialize. */
SAE_API SAE_NODISCARD int32_t sae_config_deserialize(sae_config **out, const void *buf, size_t len,
                                                     const sae_allocator *alloc, char *msg,
                                                     size_t msg_cap);

/* ---- toy generators -------------------------------------------------------------- */
/** The generator's full specification (its configuration incl. arrays and seed): the
 * deserialized generator produces identical samples. */
SAE_API SAE_NODISCARD int32_t sae_toy_serialize(const sae_toy *toy, void *buf, size_t cap,
                                                size_t *written);
/** A new toy generator from a buffer written by sae_toy_serialize; its configuration is
 * validated and the generator built as sae_toy_create would (SAE_E_CONFIG if invalid). */
SAE_API SAE_NODISCARD int32_t sae_toy_deserialize(sae_toy **out, const void *buf, size_t len,
                                                  const sae_allocator *alloc, char *msg,
                                                  size_t msg_cap);

/* ---- models ----------------------------------------------------------------------- */
/** Architecture, every model parameter and every tensor, bit-exact. */
SAE_API SAE_NODISCARD int32_t sae_model_serialize(const sae_model *model, void *buf, size_t cap,
                                                  size_t *written);
/** A new model from a buffer written by sae_model_serialize (tensor sizes are checked
 * against the buffer before anything is allocated). */
SAE_API SAE_NODISCARD int32_t sae_model_deserialize(sae_model **out, const void *buf, size_t len,
                                                    const sae_allocator *alloc, char *msg,
                                                    size_t msg_cap);

/* ---- trainer checkpoints ---------------------------------------------------------- */
/**
 * The trainer and its model: configuration, optimiser moments, step and schedule
 * position, sample position and statistics. Loading it and continuing gives the same
 * bits as never having stopped (same thread count, same BLAS).
 */
SAE_API SAE_NODISCARD int32_t sae_trainer_serialize(const sae_trainer *trainer, void *buf,
                                                    size_t cap, size_t *written);
/** A new trainer and a new model (reach it with sae_trainer_model; it lives as long as
 * the trainer). */
SAE_API SAE_NODISCARD int32_t sae_trainer_deserialize(sae_trainer **out, const void *buf,
                                                      size_t len, const sae_allocator *alloc,
                                                      char *msg, size_t msg_cap);

/* ---- safetensors (SAELens layout) ------------------------------------------------- */
/**
 * The model as a safetensors file in the layout SAELens saves as
 * sae_weights.safetensors: float32 tensors W_enc [d_in, d_sae], b_enc [d_sae],
 * W_dec [d_sae, d_in], b_dec [d_in] (+ threshold [d_sae] where the architecture has
 * one). "__metadata__" holds the SAELens configuration as JSON ("cfg") and the exact
 * libsae model configuration ("libsae_config", hex of its native serialization).
 */
SAE_API SAE_NODISCARD int32_t sae_model_export_safetensors(const sae_model *model, void *buf,
                                                           size_t cap, size_t *written);
/** The SAELens cfg.json text for this model (UTF-8, no NUL; *written bytes). */
SAE_API SAE_NODISCARD int32_t sae_model_export_saelens_cfg(const sae_model *model, void *buf,
                                                           size_t cap, size_t *written);
/**
 * A model from a safetensors buffer. The configuration comes from, in this order:
 * cfg_json (a SAELens cfg.json, may be NULL), the "libsae_config" metadata, the "cfg"
 * metadata, or the tensor shapes alone. F32, F64, F16 and BF16 tensors are accepted
 * (converted to float32); unknown tensors or architectures give SAE_E_NOT_SUPPORTED.
 */
SAE_API SAE_NODISCARD int32_t sae_model_import_safetensors(sae_model **out, const void *buf,
                                                           size_t len, const char *cfg_json,
                                                           size_t cfg_len,
                                                           const sae_allocator *alloc, char *msg,
                                                           size_t msg_cap);

#ifdef __cplusplus
}
#endif
#endif
