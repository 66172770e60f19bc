#include "cigl/sparsity.h"

#include "cigl/rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

int distribution_parse(const char *name)
{
    if (!strcmp(name, "uniform")) return DIST_UNIFORM;
    if (!strcmp(name, "er")) return DIST_ER;
    if (!strcmp(name, "erk")) return DIST_ERK;
    return -1;
}

const char *distribution_name(Distribution d)
{
    return d == DIST_UNIFORM ? "uniform" : d == DIST_ER ? "er" : "erk";
}

/* r_l = (sum of dims) / (product of dims): ERK counts kernel dims of convolutions, ER only
 * output and input channels. */
static double er_ratio(int ndim, const int *shape, Distribution dist)
{
    const int dims = (dist == DIST_ERK) ? ndim : 2;
    double sum = 0, prod = 1;
    for (int d = 0; d < dims; d++) {
        sum += shape[d];
        prod *= shape[d];
    }
    return sum / prod;
}

/* Ideal (real-valued) counts x_l. */
static void ideal_counts(int n, const int *ndim, const int (*shape)[4], Distribution dist,
                         double density, const double *size, double target, double *x)
{
    if (dist == DIST_UNIFORM) {
        for (int l = 0; l < n; l++) x[l] = density * size[l];
        return;
    }
    double *r = malloc(sizeof(double) * n);
    char *dense = calloc(n, 1);
    for (int l = 0; l < n; l++) r[l] = er_ratio(ndim[l], shape[l], dist);
    for (;;) {
        /* eps solves sum_dense size + eps * sum_rest r * size = target */
        double fixed = 0, weighted = 0, rmax = 0;
        for (int l = 0; l < n; l++) {
            if (dense[l]) { fixed += size[l]; continue; }
            weighted += r[l] * size[l];
            if (r[l] > rmax) rmax = r[l];
        }
        const double eps = weighted > 0 ? (target - fixed) / weighted : 0;
        if (weighted > 0 && eps * rmax > 1) {
            for (int l = 0; l < n; l++) /* the layer(s) with the largest ratio become dense */
                if (!dense[l] && r[l] == rmax) dense[l] = 1;
            continue;
        }
        for (int l = 0; l < n; l++) x[l] = dense[l] ? size[l] : eps * r[l] * size[l];
        break;
    }
    free(r);
    free(dense);
}

static double snap(double v) { return nearbyint(v * 1048576.0) / 1048576.0; }

void sparsity_counts_for_shapes(int n, const int *ndim, const int (*shape)[4], Distribution dist,
                                double density, long *counts)
{
    /* n >= 1: every model has prunable layers */
    /* NOLINTNEXTLINE(clang-analyzer-optin.portability.UnixAPI) */
    double *size = malloc(sizeof(double) * n), *x = malloc(sizeof(double) * n);
    double *frac = malloc(sizeof(double) * n), total = 0;
    for (int l = 0; l < n; l++) {
        size[l] = 1;
        /* NOLINTNEXTLINE(clang-analyzer-core.UndefinedBinaryOperatorResult): ndim[0..n) set */
        for (int d = 0; d < ndim[l]; d++) size[l] *= shape[l][d];
        total += size[l];
    }
    /* density * total and x_l carry rounding errors of a few ulps (density itself may be
     * 1 - sparsity: 0.09999999999999998 for 0.9), below 1e-7 for models under 2^29 weights.
     * Snapped to a 2^-20 grid, values equal in exact arithmetic round as docs/method.md says (2.5
     * up, not 2.4999999999999996 down) and tie as it says (230.4 and 3686.4 at density 0.1:
     * lower index first), instead of being ordered by rounding noise. */
    const long target = lround(snap(density * total));
    ideal_counts(n, ndim, shape, dist, density, size, (double)target, x);
    for (int l = 0; l < n; l++) x[l] = snap(x[l]);
    long assigned = 0;
    for (int l = 0; l < n; l++) {
        counts[l] = (long)floor(x[l]);
        if (counts[l] > (long)size[l]) counts[l] = (long)size[l];
        frac[l] = x[l] - floor(x[l]);
        assigned += counts[l];
    }
    /* remainder: one each to the largest fractional parts, ties to the lower index */
    for (long left = target - assigned; left > 0; left--) {
        int best = -1;
        for (int l = 0; l < n; l++)
            if (counts[l] < (long)size[l] && frac[l] >= 0 && (best < 0 || frac[l] > frac[best]))
                best = l;
        if (best < 0) break;
        counts[best]++;
        frac[best] = -1; /* each layer gets at most one */
    }
    for (int l = 0; l < n; l++) frac[l] = x[l] - floor(x[l]);
    /* a layer left at 0 is raised to 1, taken back from layers with count > 1 and the smallest
     * fractional part, ties to the higher index */
    for (int l = 0; l < n; l++) {
        if (counts[l] > 0) continue;
        int donor = -1;
        for (int j = n - 1; j >= 0; j--)
            if (counts[j] > 1 && (donor < 0 || frac[j] < frac[donor])) donor = j;
        if (donor < 0) break;
        counts[donor]--;
        counts[l] = 1;
        frac[donor] = 2; /* each donor gives at most one */
    }
    free(size);
    free(x);
    free(frac);
}

int sparsity_layer_counts(const Model *m, Distribution dist, double density, long *counts)
{
    int n = 0;
    for (int t = 0; t < m->n_tensors; t++) n += m->tensors[t].prunable;
    int *ndim = malloc(sizeof(int) * (n ? n : 1));
    int (*shape)[4] = malloc(sizeof(int[4]) * (n ? n : 1));
    int l = 0;
    for (int t = 0; t < m->n_tensors; t++) {
        if (!m->tensors[t].prunable) continue;
        ndim[l] = m->tensors[t].ndim;
        memcpy(shape[l], m->tensors[t].shape, sizeof(int[4]));
        l++;
    }
    sparsity_counts_for_shapes(n, ndim, (const int(*)[4])shape, dist, density, counts);
    free(ndim);
    free(shape);
    return n;
}

void sparsity_init_masks(const Model *m, const long *counts, uint64_t seed, uint8_t *mask)
{
    memset(mask, 1, m->n_params);
    int l = 0;
    for (int t = 0; t < m->n_tensors; t++) {
        const ParamTensor *pt = &m->tensors[t];
        if (!pt->prunable) continue;
        const long k = counts[l++];
        if (k >= (long)pt->len) continue;
        /* partial Fisher-Yates: the first k of a random permutation of the tensor's positions */
        uint32_t *perm = malloc(sizeof(uint32_t) * pt->len);
        for (size_t i = 0; i < pt->len; i++) perm[i] = (uint32_t)i;
        for (long i = 0; i < k; i++) {
            const size_t j = (size_t)i + rng_below(seed, RNG_INIT_MASK, (uint64_t)t, (uint64_t)i,
                                                   (uint32_t)(pt->len - (size_t)i));
            uint32_t tmp = perm[i];
            perm[i] = perm[j];
            perm[j] = tmp;
        }
        uint8_t *mk = mask + pt->off;
        memset(mk, 0, pt->len);
        for (long i = 0; i < k; i++) mk[perm[i]] = 1;
        free(perm);
    }
}

double drop_fraction(double alpha, long t, long t_end)
{
    return alpha / 2 * (1 + cos(M_PI * (double)t / (double)t_end));
}

/* Order-preserving key of a non-negative float: its bit pattern. */
static uint32_t magnitude_key(float v)
{
    uint32_t u;
    const float a = fabsf(v);
    memcpy(&u, &a, sizeof(u));
    return u;
}

enum { RADIX_BINS = 2048 }; /* 11-bit digits: the histogram stays in L1 */

/* The k-th smallest (1 <= k <= c) of key[0..c) by three radix digits (11, 11, 10 bits), and in
 * *below how many keys are smaller. O(c), no sort (a mask update must stay far below 1% of
 * training time). */
static uint32_t kth_smallest(const uint32_t *key, size_t c, size_t k, uint32_t *hist,
                             size_t *below)
{
    static const int shift[3] = {21, 10, 0}, bits[3] = {11, 11, 10};
    uint32_t prefix = 0, fixed = 0; /* the digits found so far, and their bits */
    size_t under = 0;
    for (int p = 0; p < 3; p++) {
        const uint32_t digit_mask = (1u << bits[p]) - 1;
        memset(hist, 0, sizeof(uint32_t) * RADIX_BINS);
        if (p == 0) {
            for (size_t j = 0; j < c; j++) hist[key[j] >> shift[0]]++;
        } else {
            for (size_t j = 0; j < c; j++) /* few share the prefix: a well-predicted branch */
                if ((key[j] & fixed) == prefix) hist[(key[j] >> shift[p]) & digit_mask]++;
        }
        uint32_t d = 0;
        while (under + hist[d] < k) under += hist[d++];
        prefix |= d << shift[p];
        fixed |= digit_mask << shift[p];
    }
    *below = under;
    return prefix;
}

/* Marks chosen[j] = 1 for the k entries of key[0..c) that come first in the total order
 * (key ascending, then position j ascending). */
static void select_first_k(const uint32_t *key, size_t c, size_t k, uint8_t *chosen,
                           uint32_t *hist)
{
    memset(chosen, 0, c);
    if (k == 0) return;
    if (k >= c) {
        memset(chosen, 1, c);
        return;
    }
    size_t below;
    const uint32_t threshold = kth_smallest(key, c, k, hist, &below);
    size_t ties = k - below; /* entries equal to the threshold, earliest first */
    for (size_t j = 0; j < c; j++) {
        if (key[j] < threshold) chosen[j] = 1;
        else if (key[j] == threshold && ties) { chosen[j] = 1; ties--; }
    }
}

/* Bit j of the result: byte p[j] (j < 16) equals v (SSE2 where the build has it). */
static inline uint32_t bytes_equal16(const uint8_t *p, uint8_t v)
{
#if defined(__SSE2__)
    const __m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
    return (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(x, _mm_set1_epi8((char)v)));
#else
    uint32_t bits = 0;
    for (int j = 0; j < 16; j++) bits |= (uint32_t)(p[j] == v) << j;
    return bits;
#endif
}

/* Bit j: magnitude_key(s[j]) >= lo, for j < 16 (the keys are below 2^31: a signed compare). */
static inline uint32_t magnitudes_at_least16(const float *s, uint32_t lo)
{
#if defined(__SSE2__)
    const __m128i abs_bits = _mm_set1_epi32(0x7fffffff), limit = _mm_set1_epi32((int)lo - 1);
    uint32_t bits = 0;
    for (int q = 0; q < 4; q++) {
        const __m128i m = _mm_and_si128(_mm_loadu_si128((const __m128i *)(const void *)(s + 4 * (size_t)q)),
                                        abs_bits);
        bits |= (uint32_t)_mm_movemask_ps(_mm_castsi128_ps(_mm_cmpgt_epi32(m, limit))) << (4 * q);
    }
    return bits;
#else
    uint32_t bits = 0;
    for (int j = 0; j < 16; j++) bits |= (uint32_t)(magnitude_key(s[j]) >= lo) << j;
    return bits;
#endif
}

/* Positions i < n with mask[i] != 0 into pos and their |w| keys into key, ascending; returns
 * their count. Sixteen positions at a time as bits (a running count stored at every position
 * made each iteration wait for the previous one). */
static size_t collect_active(const float *w, const uint8_t *mask, size_t n, uint32_t *pos,
                             uint32_t *key)
{
    size_t c = 0, b = 0;
    for (; b + 16 <= n; b += 16)
        for (uint32_t bits = ~bytes_equal16(mask + b, 0) & 0xffffu; bits; bits &= bits - 1) {
            const size_t i = b + (size_t)__builtin_ctz(bits);
            pos[c] = (uint32_t)i;
            key[c++] = magnitude_key(w[i]);
        }
    for (; b < n; b++)
        if (mask[b]) {
            pos[c] = (uint32_t)b;
            key[c++] = magnitude_key(w[b]);
        }
    return c;
}

/* Grow candidates: positions with mask != 1 (inactive, or just dropped: 2) whose complemented
 * |score| key is <= a bound that lets through about twice the k wanted, estimated from every
 * 8th position; ascending, into cand and key. Every entry that can be among the k largest
 * passes (if fewer than k pass, the bound is lifted and all pass). Returns their count. */
static size_t grow_candidates(const float *score, const uint8_t *mask, size_t n, size_t k,
                              uint32_t *cand, uint32_t *key, uint32_t *hist)
{
    size_t s = 0;
    for (size_t i = 0; i < n; i += 8)
        if (mask[i] != 1) key[s++] = ~magnitude_key(score[i]);
    const size_t q = 2 * k / 8 + 16;
    size_t below;
    uint32_t bound = q < s ? kth_smallest(key, s, q, hist, &below) : UINT32_MAX;
    for (;;) { /* kc <= bound  <=>  |score| key >= ~bound */
        size_t c = 0, b = 0;
        for (; b + 16 <= n; b += 16) { /* sixteen at a time; few pass */
            uint32_t bits = magnitudes_at_least16(score + b, ~bound);
            if (bits) bits &= ~bytes_equal16(mask + b, 1);
            for (; bits; bits &= bits - 1) {
                const size_t i = b + (size_t)__builtin_ctz(bits);
                cand[c] = (uint32_t)i;
                key[c++] = ~magnitude_key(score[i]);
            }
        }
        for (; b < n; b++) {
            const uint32_t kc = ~magnitude_key(score[b]);
            if (kc <= bound && mask[b] != 1) {
                cand[c] = (uint32_t)b;
                key[c++] = kc;
            }
        }
        if (c >= k || bound == UINT32_MAX) return c;
        bound = UINT32_MAX; /* the sample misled: everything */
    }
}

void drop_grow_scratch_free(DropGrowScratch *sc)
{
    free(sc->pos);
    free(sc->key);
    free(sc->cand);
    free(sc->hist);
    free(sc->chosen);
    memset(sc, 0, sizeof(*sc));
}

int drop_grow_scratch_reserve(DropGrowScratch *sc, size_t n)
{
    if (sc->hist && sc->cap >= n) return 0;
    drop_grow_scratch_free(sc);
    sc->pos = malloc(sizeof(uint32_t) * n);
    sc->key = malloc(sizeof(uint32_t) * n);
    sc->cand = malloc(sizeof(uint32_t) * n);
    sc->hist = malloc(sizeof(uint32_t) * RADIX_BINS);
    sc->chosen = malloc(n ? n : 1);
    if (!sc->pos || !sc->key || !sc->cand || !sc->hist || !sc->chosen) {
        drop_grow_scratch_free(sc);
        return -1;
    }
    sc->cap = n;
    return 0;
}

long mask_drop_grow(float *w, float *state, uint8_t *mask, uint8_t *ever, const float *grow_score,
                    size_t n, long k, DropGrowScratch *sc)
{
    const DropGrowRule plain = {NULL, 0};
    return mask_drop_grow_rule(w, state, mask, ever, grow_score, n, k, &plain, sc);
}

long mask_drop_grow_rule(float *w, float *state, uint8_t *mask, uint8_t *ever,
                         const float *grow_score, size_t n, long k, const DropGrowRule *rule,
                         DropGrowScratch *sc)
{
    if (k <= 0) return 0;
    DropGrowScratch local = {0};
    DropGrowScratch *buf = sc ? sc : &local;
    if (drop_grow_scratch_reserve(buf, n)) return -1;
    uint32_t *pos = buf->pos, *key = buf->key, *hist = buf->hist;
    uint8_t *chosen = buf->chosen;
    /* drop: the k active entries of smallest |w|, ties to the lower index; a dropped entry is
     * marked 2 until the grow decides whether it comes back */
    const size_t c = collect_active(rule->drop_by ? rule->drop_by : w, mask, n, pos, key);
    if ((size_t)k > c) k = (long)c; /* grow candidates (n - c + k) >= k */
    select_first_k(key, c, (size_t)k, chosen, hist);
    size_t dropped = 0; /* their positions, ascending, at the front of pos */
    for (size_t j = 0; j < c; j++)
        if (chosen[j]) {
            mask[pos[j]] = 2;
            pos[dropped++] = pos[j];
        }
    /* grow: the k entries not active after the drop with the largest |score| (ties to the
     * lower index), chosen among the candidates that can be */
    uint32_t *cand = buf->cand;
    const size_t nc = grow_candidates(grow_score, mask, n, (size_t)k, cand, key, hist);
    select_first_k(key, nc, (size_t)k, chosen, hist);
    long fresh = 0;
    for (size_t j = 0; j < nc; j++) {
        if (!chosen[j]) continue;
        const size_t i = cand[j];
        if (mask[i] == 0) { /* truly new; a dropped one (2) keeps weight and state */
            w[i] = 0;
            if (state) state[i] = 0;
            fresh++;
        }
        /* the authors' rule: a dropped one comes back at weight 0 (left to the caller, who
         * tells every rank) */
        mask[i] = mask[i] == 2 && rule->regrown_zero ? MASK_REGROWN_ZERO : 1;
        if (ever) ever[i] = 1;
    }
    for (size_t j = 0; j < dropped; j++) {
        const size_t i = pos[j];
        if (mask[i] != 2) continue; /* grown again */
        mask[i] = 0; /* dropped for good */
        w[i] = 0;
        if (state) state[i] = 0;
    }
    drop_grow_scratch_free(&local);
    return fresh;
}
