/* One counter-based generator for all randomness: Philox4x32-10 keyed by the seed.
 * A draw is addressed by (purpose, step or epoch, index), never by rank or thread, so runs are
 * reproducible, resumable exactly, and independent of the rank count. */
#ifndef CIGL_RNG_H
#define CIGL_RNG_H
#include <stddef.h>
#include <stdint.h>

/* Purposes (counter word c3). RNG_RANDOM_MASK is fixed by docs/method.md. */
enum {
    RNG_RANDOM_MASK = 1,
    RNG_INIT = 2,        /* weight initialisation, by flat parameter index */
    RNG_DATA_ORDER = 3,  /* per-epoch shuffle */
    RNG_AUGMENT = 4,     /* per-sample augmentation, by global sample index */
    RNG_INIT_MASK = 5,   /* initial sparse masks */
    RNG_GROW = 6,        /* SET's random growth */
    RNG_VAL_SPLIT = 7,   /* validation hold-out */
    RNG_DROPOUT = 8,     /* weight dropout baselines */
    RNG_MIXUP = 9,       /* mixup's lambda per step */
    RNG_MIXUP_PAIRS = 10 /* mixup's partner permutation per step */
};

void philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* The four words of block `block` (flat indices 4*block .. 4*block+3) of (purpose, step). */
void rng_block(uint64_t seed, uint32_t purpose, uint64_t step, uint64_t block, uint32_t out[4]);

/* Blocks blocks[0..count-1] of (purpose, step), word j of blocks[k] at out[4 * k + j]: the same
 * values as rng_block, 16 (AVX-512) or 8 (AVX2) blocks at a time where the CPU has them (the
 * random mask draws, every step, the blocks of four weights that hold an active one). */
void rng_blocks_at(uint64_t seed, uint32_t purpose, uint64_t step, const uint64_t *blocks,
                   size_t count, uint32_t *out);

/* rng_blocks_at through one instruction set (tests compare each with the scalar words):
 * 0, or -1 if this CPU or build lacks it. */
typedef enum { RNG_ISA_SCALAR, RNG_ISA_AVX2, RNG_ISA_AVX512 } RngIsa;
int rng_blocks_at_isa(RngIsa isa, uint64_t seed, uint32_t purpose, uint64_t step,
                      const uint64_t *blocks, size_t count, uint32_t *out);

/* Word (index % 4) of Philox(ctr = (index / 4, lo32(step), hi32(step), purpose),
 * key = (lo32(seed), hi32(seed))). */
uint32_t rng_u32(uint64_t seed, uint32_t purpose, uint64_t step, uint64_t index);

/* Uniform double in [0, 1): rng_u32 * 2^-32. */
double rng_uniform(uint64_t seed, uint32_t purpose, uint64_t step, uint64_t index);

/* Standard normal for `index` (Box-Muller over one Philox block's first two words). */
double rng_normal(uint64_t seed, uint32_t purpose, uint64_t step, uint64_t index);

/* Uniform integer in [0, bound) by multiply-shift (bias < bound / 2^32). */
uint32_t rng_below(uint64_t seed, uint32_t purpose, uint64_t step, uint64_t index,
                   uint32_t bound);

/* Beta(a, a) draw number `index` of (purpose, step): the ratio of two Gamma(a) draws
 * (Marsaglia-Tsang, with the U^(1/a) boost for a < 1), every uniform and normal addressed by
 * its own counter. */
double rng_beta_symmetric(uint64_t seed, uint32_t purpose, uint64_t step, double a);

/* Fisher-Yates permutation of 0..n-1 drawn from (seed, purpose, step). */
void rng_permutation(uint64_t seed, uint32_t purpose, uint64_t step, uint32_t *perm, size_t n);

#endif
