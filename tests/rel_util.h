/* Shared helpers of the reliability tests (test_abuse, test_oom, test_threads, test_robust):
 * weak references to module functions, observable-state digests of every handle kind and a
 * small standard fixture. */
#ifndef SAE_REL_UTIL_H
#define SAE_REL_UTIL_H

#include "test_util.h"

/* Modules land one by one: reference their functions weakly so these tests still link
 * while a module is missing and can skip what does not exist yet (address NULL). */
#pragma weak sae_toy_create
#pragma weak sae_toy_free
#pragma weak sae_toy_clone
#pragma weak sae_toy_errmsg
#pragma weak sae_toy_dims
#pragma weak sae_toy_sample
#pragma weak sae_toy_sample_codes
#pragma weak sae_toy_dictionary
#pragma weak sae_toy_fire_probs
#pragma weak sae_toy_get_config
#pragma weak sae_toy_info
#pragma weak sae_trainer_train_toy_many
#pragma weak sae_io_inspect
#pragma weak sae_config_serialize
#pragma weak sae_config_deserialize
#pragma weak sae_toy_serialize
#pragma weak sae_toy_deserialize
#pragma weak sae_model_serialize
#pragma weak sae_model_deserialize
#pragma weak sae_trainer_serialize
#pragma weak sae_trainer_deserialize
#pragma weak sae_model_export_safetensors
#pragma weak sae_model_export_saelens_cfg
#pragma weak sae_model_import_safetensors
#pragma weak sae_model_create
#pragma weak sae_model_free
#pragma weak sae_model_clone
#pragma weak sae_model_errmsg
#pragma weak sae_model_dims
#pragma weak sae_model_get_i64
#pragma weak sae_model_get_f64
#pragma weak sae_model_encode
#pragma weak sae_model_decode
#pragma weak sae_model_tensor_shape
#pragma weak sae_model_get_tensor
#pragma weak sae_model_set_tensor
#pragma weak sae_trainer_create
#pragma weak sae_trainer_free
#pragma weak sae_trainer_errmsg
#pragma weak sae_trainer_model
#pragma weak sae_trainer_set_callbacks
#pragma weak sae_trainer_step
#pragma weak sae_trainer_train_data
#pragma weak sae_trainer_train_toy
#pragma weak sae_trainer_stat
#pragma weak sae_metrics_create
#pragma weak sae_metrics_free
#pragma weak sae_metrics_errmsg
#pragma weak sae_metrics_compute
#pragma weak sae_metrics_get
#pragma weak sae_metrics_array_shape
#pragma weak sae_metrics_copy_array
#pragma weak sae_metrics_list_size
#pragma weak sae_metrics_copy_list

/* Whether the library provides fn (a weakly referenced function). */
#define REL_HAVE(fn) ((void (*)(void))(fn) != NULL)

/* Standard small sizes: toy N x D, model D x L. */
#define REL_N 8
#define REL_D 6
#define REL_L 10
#define REL_BATCH 16

/* The standard handles; any member may be NULL when its module is not there yet. */
typedef struct rel_fixture {
    sae_config *cfg[5]; /* indexed by SAE_KIND_* */
    sae_toy *toy;
    sae_model *model;
    sae_trainer *trainer;
    sae_metrics *metrics;
    float batch[REL_BATCH * REL_D]; /* toy samples 0..REL_BATCH-1 (or a fixed pattern) */
} rel_fixture;

/* Build every handle that the library can build, all through alloc (may be NULL). */
void rel_fixture_init(rel_fixture *f, const sae_allocator *alloc);

/* Model variants the reliability tests run through (architecture x tied). */
typedef struct rel_variant {
    const char *name;
    int64_t arch, tied;
    int64_t threads; /* toy_threads and the trainer's n_threads (OpenMP builds) */
} rel_variant;
extern const rel_variant rel_variants[];
extern const int rel_n_variants;
/* Like rel_fixture_init with the model of variant v; returns 0 (and builds nothing
 * beyond the configs) when this library rejects the variant's configuration. */
int rel_fixture_init_variant(rel_fixture *f, const sae_allocator *alloc, const rel_variant *v);
void rel_fixture_free(rel_fixture *f);

/* cmocka setup/teardown: *state becomes a heap fixture built with the C allocator, freed
 * even when the test skips or fails. */
int rel_setup(void **state);
int rel_teardown(void **state);

/* Observable-state digests (FNV-1a over every value a caller can read back). */
uint64_t rel_digest_config(const sae_config *cfg);
uint64_t rel_digest_toy(const sae_toy *toy);
uint64_t rel_digest_model(const sae_model *model);
uint64_t rel_digest_trainer(const sae_trainer *trainer);
uint64_t rel_digest_metrics(const sae_metrics *metrics);
/* All handles of a fixture at once. */
uint64_t rel_digest_fixture(const rel_fixture *f);

/* Fill n x cols (stride ld) with a deterministic pattern of the given scale. */
void rel_fill(float *x, int64_t n, int64_t cols, int64_t ld, float scale, uint32_t seed);
/* Whether all n floats are finite. */
int rel_all_finite(const float *x, int64_t n);

#endif
