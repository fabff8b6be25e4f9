/* Additive isotropic Gaussian noise, drawn with the ziggurat method of Marsaglia and
 * Tsang ("The Ziggurat Method for Generating Random Variables", J. Stat. Softw. 5(8),
 * 2000), 128 layers. Most draws cost one 32-bit word, a table look-up and a multiply.
 * Following Doornik (2005), the layer index and the value use disjoint bits of the
 * word (the original reuses the low bits for both, which correlates them). */
#include "toy_internal.h"

#include <math.h>

#define ZIG_R 3.442619855899       /* start of the tail */
#define ZIG_V 9.91256303526217e-3  /* area of each layer */
#define ZIG_M 2147483648.0         /* 2^31: values are signed 32-bit words / 2^31 */

void sae_toy_ziggurat_init(toy_ziggurat *z)
{
    double dn = ZIG_R, tn = dn, q = ZIG_V / exp(-0.5 * dn * dn);
    z->k[0] = (uint32_t)((dn / q) * ZIG_M);
    z->k[1] = 0;
    z->w[0] = q / ZIG_M;
    z->w[127] = dn / ZIG_M;
    z->f[0] = 1.0;
    z->f[127] = exp(-0.5 * dn * dn);
    for (int i = 126; i >= 1; i--) {
        dn = sqrt(-2.0 * log(ZIG_V / dn + exp(-0.5 * dn * dn)));
        z->k[i + 1] = (uint32_t)((dn / tn) * ZIG_M);
        tn = dn;
        z->f[i] = exp(-0.5 * dn * dn);
        z->w[i] = dn / ZIG_M;
    }
}

/* Signed value word: the top 25 bits, low 7 bits (the layer index) cleared. */
static inline int32_t value_bits(uint32_t u) { return (int32_t)(u & ~UINT32_C(127)); }

/* |hz| without the overflow of abs(INT32_MIN). */
static inline uint32_t magnitude_of(int32_t hz) { return hz < 0 ? 0u - (uint32_t)hz : (uint32_t)hz; }

static double tail_or_wedge(const toy_ziggurat *z, sae_rng *r, int32_t hz, uint32_t iz)
{
    for (;;) {
        double x = hz * z->w[iz];
        if (iz == 0) { /* the tail beyond R (Marsaglia 1964) */
            double y;
            do {
                x = -log(1.0 - sae_rng_uniform(r)) / ZIG_R;
                y = -log(1.0 - sae_rng_uniform(r));
            } while (y + y < x * x);
            return hz > 0 ? ZIG_R + x : -ZIG_R - x;
        }
        if (z->f[iz] + sae_rng_uniform(r) * (z->f[iz - 1] - z->f[iz]) < exp(-0.5 * x * x))
            return x;
        uint32_t u = sae_rng_u32(r);
        hz = value_bits(u), iz = u & 127;
        if (magnitude_of(hz) < z->k[iz])
            return hz * z->w[iz];
    }
}

/* The next word of r: the same sequence as sae_rng_u32, inlined for the hot loop. */
static inline uint32_t next_word(sae_rng *r)
{
    if (r->idx == 4) {
        sae_philox4x32_10(r->ctr, r->key, r->buf);
        r->ctr[3]++;
        r->idx = 0;
    }
    return r->buf[r->idx++];
}

static inline double zig_normal(const toy_ziggurat *z, sae_rng *r)
{
    uint32_t u = next_word(r);
    int32_t hz = value_bits(u);
    uint32_t iz = u & 127;
    if (magnitude_of(hz) < z->k[iz]) /* about 98.8% of draws end here */
        return hz * z->w[iz];
    return tail_or_wedge(z, r, hz, iz);
}

double sae_toy_ziggurat_normal(const toy_ziggurat *z, sae_rng *r) { return zig_normal(z, r); }

void sae_toy_add_noise(const sae_toy *t, uint64_t index, uint32_t domain, float *x)
{
    sae_rng r;
    sae_rng_init(&r, t->seed, index, SAE_STREAM_NOISE + domain);
    const double sd = t->noise_std;
    const toy_ziggurat *z = &t->zig;
    for (int64_t c = 0; c < t->d; c++)
        x[c] += (float)(sd * zig_normal(z, &r));
}
