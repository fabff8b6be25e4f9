/* A sampling workspace that outlives one call, for training loops that draw a batch per
 * step: created once (allocates), then every batch is allocation-free. It belongs to the
 * toy it was created from and is freed with it in mind (free it before the toy). */
#ifndef SAE_LIB_TOY_SAMPLER_H
#define SAE_LIB_TOY_SAMPLER_H

#include <sae/toy.h>

typedef struct toy_pool toy_pool;

/* Workspace for batches of up to max_rows rows (more rows work, with fewer chunks). */
int32_t sae_toy_sampler_create(const sae_toy *toy, int64_t max_rows, toy_pool **out);
void sae_toy_sampler_free(const sae_toy *toy, toy_pool *pool);
/* sae_toy_sample with the workspace: identical output, no allocation. */
int32_t sae_toy_sample_with(const sae_toy *toy, toy_pool *pool, uint64_t first, int64_t n,
                            float *x, int64_t ldx);

#endif
