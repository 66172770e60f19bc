/* Philox4x32-10 (Salmon et al., SC'11): 10 rounds of a multiply-xor bijection over a 128-bit
 * counter, with a 64-bit key bumped by the Weyl constants between rounds. */
#include "cigl/rng.h"

#include <math.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

void philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4])
{
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int round = 0; round < 10; round++) {
        uint64_t p0 = (uint64_t)PHILOX_M0 * c0;
        uint64_t p1 = (uint64_t)PHILOX_M1 * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
        uint32_t n1 = (uint32_t)p1;
        uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        uint32_t n3 = (uint32_t)p0;
        c0 = n0; c1 = n1; c2 = n2; c3 = n3;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
}

void rng_block(uint64_t seed, uint32_t purpose, uint64_t step, uint64_t block, uint32_t out[4])
{
    const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    const uint32_t ctr[4] = {(uint32_t)block, (uint32_t)step, (uint32_t)(step >> 32), purpose};
    philox4x32_10(ctr, key, out);
}

/* Philox over RNG_LANES counters at once (c0 preset per lane, the rest shared); the helper is
 * inlined into each ISA clone of its callers so the lanes use the widest vectors available.
 * Integer arithmetic: every clone gives the same words. */
#define RNG_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
static inline __attribute__((always_inline)) void
philox_lanes(uint64_t seed, uint32_t purpose, uint64_t step, uint32_t c0[RNG_LANES],
             uint32_t *out, size_t lanes)
{
    uint32_t c1[RNG_LANES], c2[RNG_LANES], c3[RNG_LANES];
    for (int l = 0; l < RNG_LANES; l++) {
        c1[l] = (uint32_t)step;
        c2[l] = (uint32_t)(step >> 32);
        c3[l] = purpose;
    }
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int round = 0; round < 10; round++) {
#pragma omp simd
        for (int l = 0; l < RNG_LANES; l++) {
            const uint64_t p0 = (uint64_t)PHILOX_M0 * c0[l];
            const uint64_t p1 = (uint64_t)PHILOX_M1 * c2[l];
            const uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1[l] ^ k0;
            const uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3[l] ^ k1;
            c1[l] = (uint32_t)p1;
            c3[l] = (uint32_t)p0;
            c0[l] = n0;
            c2[l] = n2;
        }
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    for (size_t l = 0; l < lanes; l++) {
        uint32_t *o = out + 4 * l;
        o[0] = c0[l]; o[1] = c1[l]; o[2] = c2[l]; o[3] = c3[l];
    }
}

RNG_CLONES
void rng_blocks_at(uint64_t seed, uint32_t purpose, uint64_t step, const uint64_t *blocks,
                   size_t count, uint32_t *out)
{
    for (size_t base = 0; base < count; base += RNG_LANES) {
        const size_t lanes = count - base < RNG_LANES ? count - base : RNG_LANES;
        uint32_t c0[RNG_LANES] = {0};
        for (size_t l = 0; l < lanes; l++) c0[l] = (uint32_t)blocks[base + l];
        philox_lanes(seed, purpose, step, c0, out + 4 * base, lanes);
    }
}

uint32_t rng_u32(uint64_t seed, uint32_t purpose, uint64_t step, uint64_t index)
{
    uint32_t out[4];
    rng_block(seed, purpose, step, index / 4, out);
    return out[index % 4];
}

double rng_uniform(uint64_t seed, uint32_t purpose, uint64_t step, uint64_t index)
{
    return (double)rng_u32(seed, purpose, step, index) * 0x1p-32;
}

double rng_normal(uint64_t seed, uint32_t purpose, uint64_t step, uint64_t index)
{
    uint32_t out[4];
    rng_block(seed, purpose, step, index, out);
    double u1 = ((double)out[0] + 1.0) * 0x1p-32; /* (0, 1]: log is finite */
    double u2 = (double)out[1] * 0x1p-32;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

uint32_t rng_below(uint64_t seed, uint32_t purpose, uint64_t step, uint64_t index,
                   uint32_t bound)
{
    return (uint32_t)(((uint64_t)rng_u32(seed, purpose, step, index) * bound) >> 32);
}

void rng_permutation(uint64_t seed, uint32_t purpose, uint64_t step, uint32_t *perm, size_t n)
{
    for (size_t i = 0; i < n; i++)
        perm[i] = (uint32_t)i;
    for (size_t i = n; i > 1; i--) {
        size_t j = rng_below(seed, purpose, step, i - 1, (uint32_t)i);
        uint32_t t = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = t;
    }
}

/* Gamma(alpha) for alpha >= 1 by Marsaglia and Tsang's squeeze; attempt k of stream `which`
 * reads normal block (which << 20 | k) and uniform word 2 of that block. */
static double gamma_draw(uint64_t seed, uint32_t purpose, uint64_t step, uint64_t which,
                         double alpha)
{
    const double d = alpha - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
    for (uint64_t k = 0;; k++) {
        const uint64_t block = which << 20 | (k & 0xfffff);
        const double z = rng_normal(seed, purpose, step, block);
        const double v = (1.0 + c * z) * (1.0 + c * z) * (1.0 + c * z);
        if (v <= 0) continue;
        const double u = rng_uniform(seed, purpose, step, 4 * block + 2);
        if (log(u) < 0.5 * z * z + d - d * v + d * log(v)) return d * v;
    }
}

double rng_beta_symmetric(uint64_t seed, uint32_t purpose, uint64_t step, double a)
{
    double g[2];
    for (int i = 0; i < 2; i++) {
        if (a >= 1) {
            g[i] = gamma_draw(seed, purpose, step, (uint64_t)i, a);
        } else { /* Gamma(a) = Gamma(a + 1) * U^(1/a) */
            const double u = rng_uniform(seed, purpose, step, 4 * ((uint64_t)(i + 2) << 20) + 3);
            g[i] = gamma_draw(seed, purpose, step, (uint64_t)i, a + 1) * pow(u, 1.0 / a);
        }
    }
    return g[0] + g[1] > 0 ? g[0] / (g[0] + g[1]) : 0.5;
}
