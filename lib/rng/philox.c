/* Philox4x32-10 and the distributions built on it. Constants from Salmon, Moraes,
 * Dror, Shaw, "Parallel random numbers: as easy as 1, 2, 3", SC 2011. */
#include "rng.h"

#include <math.h>

#define PHILOX_M0 UINT32_C(0xD2511F53)
#define PHILOX_M1 UINT32_C(0xCD9E8D57)
#define PHILOX_W0 UINT32_C(0x9E3779B9)
#define PHILOX_W1 UINT32_C(0xBB67AE85)

void sae_philox4x32_10(const uint32_t in[4], const uint32_t key_in[2], uint32_t out[4])
{
    uint32_t c0 = in[0], c1 = in[1], c2 = in[2], c3 = in[3];
    uint32_t k0 = key_in[0], k1 = key_in[1];
    for (int round = 0; round < 10; round++) {
        uint64_t p0 = (uint64_t)PHILOX_M0 * c0;
        uint64_t p1 = (uint64_t)PHILOX_M1 * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
        uint32_t n1 = (uint32_t)p1;
        uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        uint32_t n3 = (uint32_t)p0;
        c0 = n0, c1 = n1, c2 = n2, c3 = n3;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    out[0] = c0, out[1] = c1, out[2] = c2, out[3] = c3;
}

void sae_rng_init(sae_rng *r, uint64_t seed, uint64_t index, uint32_t purpose)
{
    r->key[0] = (uint32_t)seed;
    r->key[1] = (uint32_t)(seed >> 32);
    r->ctr[0] = (uint32_t)index;
    r->ctr[1] = (uint32_t)(index >> 32);
    r->ctr[2] = purpose;
    r->ctr[3] = 0;
    r->idx = 4;
}

uint32_t sae_rng_u32(sae_rng *r)
{
    if (r->idx == 4) {
        sae_philox4x32_10(r->ctr, r->key, r->buf);
        r->ctr[3]++;
        r->idx = 0;
    }
    return r->buf[r->idx++];
}

uint64_t sae_rng_u64(sae_rng *r)
{
    uint64_t hi = sae_rng_u32(r);
    return hi << 32 | sae_rng_u32(r);
}

double sae_rng_uniform(sae_rng *r)
{
    return (double)(sae_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0);
}

float sae_rng_uniformf(sae_rng *r)
{
    return (float)(sae_rng_u32(r) >> 8) * (1.0f / 16777216.0f);
}

uint64_t sae_rng_below(sae_rng *r, uint64_t n)
{
    /* rejection on the top of the range keeps every residue equally likely */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t v;
    do
        v = sae_rng_u64(r);
    while (v >= limit);
    return v % n;
}

double sae_rng_normal(sae_rng *r)
{
    /* 1 - u is in (0, 1], so log never sees 0 */
    double u1 = 1.0 - sae_rng_uniform(r);
    double u2 = sae_rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586476925 * u2);
}

double sae_rng_exponential(sae_rng *r) { return -log(1.0 - sae_rng_uniform(r)); }
