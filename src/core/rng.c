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

/* rng_blocks_at: the same Philox rounds on 16 (AVX-512) or 8 (AVX2) counters at once with
 * explicit intrinsics (the compiler's vectorisation of the 32x32->64 products was ~8 ns a
 * block). Integer arithmetic: every variant gives the scalar words, which test_rng checks for
 * each variant the CPU has. A 32-bit lane's product: _mm*_mul_epu32 multiplies the even lanes;
 * the odd lanes are shifted down first, and the hi and lo halves are blended back in place. */
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define RNG_HAVE_X86 1
/* Store 128-bit lane k of u0..u3 (blocks 4k .. 4k+3) to o + 16k. No stack buffers here: gcc's
 * AddressSanitizer fake stack (detect_stack_use_after_return) faulted on one. */
#define STORE_LANE512(o, u0, u1, u2, u3, k)                                                \
    do {                                                                                   \
        uint32_t *d_ = (o) + (size_t)16 * (k);                                             \
        _mm_storeu_si128((__m128i *)d_, _mm512_extracti32x4_epi32(u0, k));                 \
        _mm_storeu_si128((__m128i *)(d_ + 4), _mm512_extracti32x4_epi32(u1, k));           \
        _mm_storeu_si128((__m128i *)(d_ + 8), _mm512_extracti32x4_epi32(u2, k));           \
        _mm_storeu_si128((__m128i *)(d_ + 12), _mm512_extracti32x4_epi32(u3, k));          \
    } while (0)
#define STORE_LANE256(o, u0, u1, u2, u3, k)                                                \
    do {                                                                                   \
        uint32_t *d_ = (o) + (size_t)16 * (k);                                             \
        _mm_storeu_si128((__m128i *)d_, _mm256_extracti128_si256(u0, k));                  \
        _mm_storeu_si128((__m128i *)(d_ + 4), _mm256_extracti128_si256(u1, k));            \
        _mm_storeu_si128((__m128i *)(d_ + 8), _mm256_extracti128_si256(u2, k));            \
        _mm_storeu_si128((__m128i *)(d_ + 12), _mm256_extracti128_si256(u3, k));           \
    } while (0)

__attribute__((target("avx512f"))) static void
blocks_avx512(uint64_t seed, uint32_t purpose, uint64_t step, const uint64_t *blocks,
              size_t count, uint32_t *out)
{
    const __m512i m0 = _mm512_set1_epi64(PHILOX_M0), m1 = _mm512_set1_epi64(PHILOX_M1);
    const __m512i s1 = _mm512_set1_epi32((int)(uint32_t)step);
    const __m512i s2 = _mm512_set1_epi32((int)(uint32_t)(step >> 32));
    const __m512i s3 = _mm512_set1_epi32((int)purpose);
    const __mmask16 odd = 0xAAAA;
    size_t base = 0;
    for (; base + 16 <= count; base += 16) {
        const __m256i a = _mm512_cvtepi64_epi32(_mm512_loadu_si512(blocks + base));
        const __m256i b = _mm512_cvtepi64_epi32(_mm512_loadu_si512(blocks + base + 8));
        __m512i c0 = _mm512_inserti64x4(_mm512_castsi256_si512(a), b, 1);
        __m512i c1 = s1, c2 = s2, c3 = s3;
        uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
        for (int round = 0; round < 10; round++) {
            const __m512i pe0 = _mm512_mul_epu32(c0, m0);
            const __m512i po0 = _mm512_mul_epu32(_mm512_srli_epi64(c0, 32), m0);
            const __m512i pe1 = _mm512_mul_epu32(c2, m1);
            const __m512i po1 = _mm512_mul_epu32(_mm512_srli_epi64(c2, 32), m1);
            const __m512i hi0 = _mm512_mask_blend_epi32(odd, _mm512_srli_epi64(pe0, 32), po0);
            const __m512i lo0 = _mm512_mask_blend_epi32(odd, pe0, _mm512_slli_epi64(po0, 32));
            const __m512i hi1 = _mm512_mask_blend_epi32(odd, _mm512_srli_epi64(pe1, 32), po1);
            const __m512i lo1 = _mm512_mask_blend_epi32(odd, pe1, _mm512_slli_epi64(po1, 32));
            /* 0x96: a ^ b ^ c */
            c0 = _mm512_ternarylogic_epi32(hi1, c1, _mm512_set1_epi32((int)k0), 0x96);
            c2 = _mm512_ternarylogic_epi32(hi0, c3, _mm512_set1_epi32((int)k1), 0x96);
            c1 = lo1;
            c3 = lo0;
            k0 += PHILOX_W0;
            k1 += PHILOX_W1;
        }
        /* interleave c0..c3 into blocks of four words: after the two unpacks, 128-bit lane k
         * of u[r] is block 4k + r */
        const __m512i t0 = _mm512_unpacklo_epi32(c0, c1), t1 = _mm512_unpackhi_epi32(c0, c1);
        const __m512i t2 = _mm512_unpacklo_epi32(c2, c3), t3 = _mm512_unpackhi_epi32(c2, c3);
        const __m512i u0 = _mm512_unpacklo_epi64(t0, t2), u1 = _mm512_unpackhi_epi64(t0, t2);
        const __m512i u2 = _mm512_unpacklo_epi64(t1, t3), u3 = _mm512_unpackhi_epi64(t1, t3);
        uint32_t *o = out + 4 * base;
        STORE_LANE512(o, u0, u1, u2, u3, 0);
        STORE_LANE512(o, u0, u1, u2, u3, 1);
        STORE_LANE512(o, u0, u1, u2, u3, 2);
        STORE_LANE512(o, u0, u1, u2, u3, 3);
    }
    for (; base < count; base++) rng_block(seed, purpose, step, blocks[base], out + 4 * base);
}

__attribute__((target("avx2"))) static void
blocks_avx2(uint64_t seed, uint32_t purpose, uint64_t step, const uint64_t *blocks,
            size_t count, uint32_t *out)
{
    const __m256i m0 = _mm256_set1_epi64x(PHILOX_M0), m1 = _mm256_set1_epi64x(PHILOX_M1);
    const __m256i s1 = _mm256_set1_epi32((int)(uint32_t)step);
    const __m256i s2 = _mm256_set1_epi32((int)(uint32_t)(step >> 32));
    const __m256i s3 = _mm256_set1_epi32((int)purpose);
    /* gathers the low words of four 64-bit block numbers into the low 128 bits */
    const __m256i even = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
    size_t base = 0;
    for (; base + 8 <= count; base += 8) {
        const __m256i a = _mm256_permutevar8x32_epi32(
            _mm256_loadu_si256((const __m256i *)(blocks + base)), even);
        const __m256i b = _mm256_permutevar8x32_epi32(
            _mm256_loadu_si256((const __m256i *)(blocks + base + 4)), even);
        __m256i c0 = _mm256_permute2x128_si256(a, b, 0x20);
        __m256i c1 = s1, c2 = s2, c3 = s3;
        uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
        for (int round = 0; round < 10; round++) {
            const __m256i pe0 = _mm256_mul_epu32(c0, m0);
            const __m256i po0 = _mm256_mul_epu32(_mm256_srli_epi64(c0, 32), m0);
            const __m256i pe1 = _mm256_mul_epu32(c2, m1);
            const __m256i po1 = _mm256_mul_epu32(_mm256_srli_epi64(c2, 32), m1);
            const __m256i hi0 = _mm256_blend_epi32(_mm256_srli_epi64(pe0, 32), po0, 0xAA);
            const __m256i lo0 = _mm256_blend_epi32(pe0, _mm256_slli_epi64(po0, 32), 0xAA);
            const __m256i hi1 = _mm256_blend_epi32(_mm256_srli_epi64(pe1, 32), po1, 0xAA);
            const __m256i lo1 = _mm256_blend_epi32(pe1, _mm256_slli_epi64(po1, 32), 0xAA);
            c0 = _mm256_xor_si256(_mm256_xor_si256(hi1, c1), _mm256_set1_epi32((int)k0));
            c2 = _mm256_xor_si256(_mm256_xor_si256(hi0, c3), _mm256_set1_epi32((int)k1));
            c1 = lo1;
            c3 = lo0;
            k0 += PHILOX_W0;
            k1 += PHILOX_W1;
        }
        const __m256i t0 = _mm256_unpacklo_epi32(c0, c1), t1 = _mm256_unpackhi_epi32(c0, c1);
        const __m256i t2 = _mm256_unpacklo_epi32(c2, c3), t3 = _mm256_unpackhi_epi32(c2, c3);
        const __m256i u0 = _mm256_unpacklo_epi64(t0, t2), u1 = _mm256_unpackhi_epi64(t0, t2);
        const __m256i u2 = _mm256_unpacklo_epi64(t1, t3), u3 = _mm256_unpackhi_epi64(t1, t3);
        uint32_t *o = out + 4 * base;
        STORE_LANE256(o, u0, u1, u2, u3, 0);
        STORE_LANE256(o, u0, u1, u2, u3, 1);
    }
    for (; base < count; base++) rng_block(seed, purpose, step, blocks[base], out + 4 * base);
}
#endif

static void blocks_scalar(uint64_t seed, uint32_t purpose, uint64_t step, const uint64_t *blocks,
                          size_t count, uint32_t *out)
{
    for (size_t k = 0; k < count; k++) rng_block(seed, purpose, step, blocks[k], out + 4 * k);
}

int rng_blocks_at_isa(RngIsa isa, uint64_t seed, uint32_t purpose, uint64_t step,
                      const uint64_t *blocks, size_t count, uint32_t *out)
{
    switch (isa) {
    case RNG_ISA_SCALAR:
        blocks_scalar(seed, purpose, step, blocks, count, out);
        return 0;
#ifdef RNG_HAVE_X86
    case RNG_ISA_AVX2:
        if (!__builtin_cpu_supports("avx2")) return -1;
        blocks_avx2(seed, purpose, step, blocks, count, out);
        return 0;
    case RNG_ISA_AVX512:
        if (!__builtin_cpu_supports("avx512f")) return -1;
        blocks_avx512(seed, purpose, step, blocks, count, out);
        return 0;
#endif
    default:
        return -1;
    }
}

/* The widest variant this CPU runs (every variant gives the same words). */
static RngIsa best_isa(void)
{
#ifdef RNG_HAVE_X86
    if (__builtin_cpu_supports("avx512f")) return RNG_ISA_AVX512;
    if (__builtin_cpu_supports("avx2")) return RNG_ISA_AVX2;
#endif
    return RNG_ISA_SCALAR;
}

void rng_blocks_at(uint64_t seed, uint32_t purpose, uint64_t step, const uint64_t *blocks,
                   size_t count, uint32_t *out)
{
    rng_blocks_at_isa(best_isa(), seed, purpose, step, blocks, count, out);
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
