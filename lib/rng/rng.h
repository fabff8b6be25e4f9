/* Counter-based random numbers: Philox4x32-10 (Salmon et al., SC'11).
 * A stream is a pure function of (seed, index, purpose), so sample i of a data set
 * is identical whatever the batch split or thread count. */
#ifndef SAE_LIB_RNG_H
#define SAE_LIB_RNG_H

#include <stdint.h>

/* Stream purposes: keep values stable, they define the data sets users reproduce. */
enum {
    SAE_STREAM_DICTIONARY = 1,
    SAE_STREAM_FIRING = 2,
    SAE_STREAM_MAGNITUDE = 3,
    SAE_STREAM_NOISE = 4,
    SAE_STREAM_INIT = 5,
    SAE_STREAM_TRAIN = 6,
    SAE_STREAM_COMBO = 7,
    SAE_STREAM_EXTRA = 8
};

typedef struct sae_rng {
    uint32_t key[2];
    uint32_t ctr[4];
    uint32_t buf[4];
    int idx; /* next unused word of buf; 4 = empty */
} sae_rng;

/* One Philox4x32-10 block: out = philox(ctr, key). */
void sae_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* Stream for (seed, index, purpose): counter = (index lo, index hi, purpose, block). */
void sae_rng_init(sae_rng *r, uint64_t seed, uint64_t index, uint32_t purpose);
uint32_t sae_rng_u32(sae_rng *r);
uint64_t sae_rng_u64(sae_rng *r);
double sae_rng_uniform(sae_rng *r);  /* [0, 1), 53 random bits */
float sae_rng_uniformf(sae_rng *r);  /* [0, 1), 24 random bits */
uint64_t sae_rng_below(sae_rng *r, uint64_t n); /* uniform in [0, n), unbiased; n >= 1 */
double sae_rng_normal(sae_rng *r);   /* standard normal (Box-Muller, one value per call) */
double sae_rng_exponential(sae_rng *r); /* rate 1 */

#endif
