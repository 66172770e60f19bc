/* Philox4x32-10 against the Random123 known-answer vectors, the random-mask test vector of
 * docs/method.md (seed 0, step 0, indices 0..7), and the statistical sanity of derived draws. */
#include "check.h"
#include "cigl/rng.h"

#include <stdlib.h>
#include <string.h>

static void philox_known_answers(void)
{
    const struct { uint32_t ctr[4], key[2], out[4]; } kat[] = {
        {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
        {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, {0xffffffff, 0xffffffff},
         {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
        {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0},
         {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
    };
    for (size_t i = 0; i < sizeof(kat) / sizeof(kat[0]); i++) {
        uint32_t out[4];
        philox4x32_10(kat[i].ctr, kat[i].key, out);
        for (int j = 0; j < 4; j++)
            CHECK(out[j] == kat[i].out[j], "vector %zu word %d: %08x != %08x", i, j, out[j],
                  kat[i].out[j]);
    }
}

/* docs/method.md: counter (i / 4, t lo, t hi, purpose 1), key (seed lo, seed hi), word i % 4.
 * Words of Philox(ctr = (0,0,0,1), key = (0,0)) and (1,0,0,1), computed here by hand-built
 * counters rather than through rng_u32, pin the addressing. */
static void random_mask_vector(void)
{
    /* The committed vector (also checked by tests/philox_reference.py when it exists). */
    static const uint32_t vector[8] = {0x2dce73e5, 0x1348e23f, 0xfcf8e0ec, 0xa287aadb,
                                       0xe9535be3, 0x510c4549, 0x63517a4d, 0x9a6323a7};
    uint32_t block0[4], block1[4];
    philox4x32_10((const uint32_t[4]){0, 0, 0, 1}, (const uint32_t[2]){0, 0}, block0);
    philox4x32_10((const uint32_t[4]){1, 0, 0, 1}, (const uint32_t[2]){0, 0}, block1);
    for (uint64_t i = 0; i < 8; i++) {
        const uint32_t want = i < 4 ? block0[i] : block1[i - 4];
        const uint32_t got = rng_u32(0, RNG_RANDOM_MASK, 0, i);
        CHECK(got == want, "index %lu: %08x != %08x", (unsigned long)i, got, want);
        CHECK(got == vector[i], "index %lu: %08x != committed %08x", (unsigned long)i, got,
              vector[i]);
        printf("  Z test vector seed 0 t 0 i %lu: x = 0x%08x, u = %.10f\n", (unsigned long)i, got,
               got * 0x1p-32);
    }
    /* the step goes into counter words 1 and 2, the seed into the key */
    uint32_t w[4];
    philox4x32_10((const uint32_t[4]){2, 0x89abcdef, 0x1234567, 1},
                  (const uint32_t[2]){0x9abcdef0, 0x12345678}, w);
    CHECK(rng_u32(0x123456789abcdef0ull, 1, 0x0123456789abcdefull, 9) == w[1], "addressing");
}

static void uniform_and_normal_moments(void)
{
    const int n = 200000;
    double s = 0, s2 = 0, ns = 0, ns2 = 0;
    for (int i = 0; i < n; i++) {
        double u = rng_uniform(42, RNG_INIT, 3, i), z = rng_normal(42, RNG_INIT, 3, i);
        CHECK(u >= 0 && u < 1, "uniform out of range: %g", u);
        s += u; s2 += u * u; ns += z; ns2 += z * z;
    }
    CHECK_CLOSE(s / n, 0.5, 0.003, 0, "uniform mean");
    CHECK_CLOSE(s2 / n - (s / n) * (s / n), 1.0 / 12, 0.002, 0, "uniform variance");
    CHECK_CLOSE(ns / n, 0.0, 0.01, 0, "normal mean");
    CHECK_CLOSE(ns2 / n, 1.0, 0.01, 0, "normal variance");
}

static void permutation_is_bijective_and_seeded(void)
{
    enum { N = 1000 };
    uint32_t a[N], b[N], c[N];
    rng_permutation(7, RNG_DATA_ORDER, 1, a, N);
    rng_permutation(7, RNG_DATA_ORDER, 1, b, N);
    rng_permutation(7, RNG_DATA_ORDER, 2, c, N);
    char seen[N] = {0};
    int fixed = 0;
    for (int i = 0; i < N; i++) {
        CHECK(a[i] < N && !seen[a[i]], "not a permutation at %d", i);
        if (a[i] < N) seen[a[i]] = 1;
        fixed += a[i] == (uint32_t)i;
    }
    CHECK(!memcmp(a, b, sizeof(a)), "same key gives the same permutation");
    CHECK(memcmp(a, c, sizeof(a)) != 0, "another epoch gives another permutation");
    CHECK(fixed < 8, "%d fixed points (expected about 1)", fixed);
}

static void below_is_uniform(void)
{
    int counts[10] = {0};
    const int n = 100000;
    for (int i = 0; i < n; i++) counts[rng_below(1, RNG_AUGMENT, 0, i, 10)]++;
    for (int k = 0; k < 10; k++)   /* 5 sigma of a binomial(1e5, 0.1) is ~474 */
        CHECK(abs(counts[k] - n / 10) < 480, "bucket %d has %d", k, counts[k]);
}

/* Beta(a, a): mean 1/2, variance 1 / (4 (2a + 1)); in [0, 1]; deterministic per step. */
static void beta_moments(void)
{
    const double alphas[] = {0.2, 1.0, 2.0};
    for (int k = 0; k < 3; k++) {
        const double a = alphas[k], var = 1.0 / (4 * (2 * a + 1));
        const int n = 40000;
        double s = 0, s2 = 0;
        for (int i = 0; i < n; i++) {
            const double b = rng_beta_symmetric(3, RNG_MIXUP, (uint64_t)i, a);
            CHECK(b >= 0 && b <= 1, "beta draw %g out of [0, 1]", b);
            s += b;
            s2 += b * b;
        }
        const double mean = s / n, v = s2 / n - mean * mean;
        /* 5 sigma of the mean: 5 * sqrt(var / n) */
        CHECK_CLOSE(mean, 0.5, 5 * sqrt(var / n), 0, "beta mean");
        CHECK_CLOSE(v, var, 0.05 * var, 0, "beta variance");
        printf("  Beta(%.1f, %.1f): mean %.4f, variance %.5f (expected %.5f)\n", a, a, mean, v, var);
    }
    /* a function of its arguments alone: the same value after other draws in between */
    const double first = rng_beta_symmetric(3, RNG_MIXUP, 17, 0.2);
    double others = 0;
    for (int i = 0; i < 100; i++)
        others += rng_beta_symmetric(3, RNG_MIXUP, (uint64_t)i, 0.7) +
                  rng_uniform(4, RNG_INIT, 0, (uint64_t)i);
    CHECK(rng_beta_symmetric(3, RNG_MIXUP, 17, 0.2) == first && others > 0,
          "depends on earlier draws");
}

/* Every batch generator (the dispatched one and each instruction set this CPU has) gives
 * rng_block's words, for runs of consecutive blocks at any start (across a 2^32 boundary of the
 * counter word too) and for scattered lists, of counts that are and are not multiples of the
 * 8 and 16 lanes, with steps above 2^32 (counter words c1 and c2 both non-zero). */
static void blocks_match_single_blocks(void)
{
    uint32_t out[4 * 40];
    uint64_t list[40];
    const uint64_t starts[] = {0, 3, 0xfffffff0ull, 12345678901ull};
    const char *names[] = {"scalar", "avx2", "avx512", "dispatched"};
    for (int isa = 0; isa < 4; isa++) {
        int ran = 0;
        for (int k = 0; k < 8; k++) {
            const int count = k % 2 ? 37 : 32;
            const uint64_t step = (uint64_t)(77 + k) + (k >= 6 ? (5ull << 32) : 0);
            for (int b = 0; b < count; b++) /* k < 4: consecutive; k >= 4: scattered, descending */
                list[b] = k < 4 ? starts[k] + (uint64_t)b
                                : starts[k - 4] + 7919u * (uint64_t)(count - b);
            memset(out, 0, sizeof(out));
            if (isa == 3) {
                rng_blocks_at(0x9e3779b97f4a7c15ull, RNG_RANDOM_MASK, step, list, (size_t)count,
                              out);
            } else if (rng_blocks_at_isa((RngIsa)isa, 0x9e3779b97f4a7c15ull, RNG_RANDOM_MASK,
                                         step, list, (size_t)count, out)) {
                break; /* this CPU lacks it */
            }
            ran++;
            for (int b = 0; b < count; b++) {
                uint32_t one[4];
                rng_block(0x9e3779b97f4a7c15ull, RNG_RANDOM_MASK, step, list[b], one);
                for (int j = 0; j < 4; j++)
                    CHECK(out[4 * b + j] == one[j], "%s: list %d block %llu word %d", names[isa],
                          k, (unsigned long long)list[b], j);
            }
        }
        printf("  %s: %s\n", names[isa], ran ? "checked on 8 lists" : "not on this CPU");
    }
}

int main(void)
{
    RUN(philox_known_answers);
    RUN(random_mask_vector);
    RUN(uniform_and_normal_moments);
    RUN(permutation_is_bijective_and_seeded);
    RUN(below_is_uniform);
    RUN(beta_moments);
    RUN(blocks_match_single_blocks);
    return CHECK_SUMMARY();
}
