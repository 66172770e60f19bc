#include "cigl/sparsity.h"

#include "cigl/rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

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
     * Snapped to a 2^-20 grid, values equal in exact arithmetic round as METHOD.md says (2.5
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

/* Marks chosen[j] = 1 for the k entries of key[0..c) that come first in the total order
 * (key ascending, then position j ascending). Radix select: two 16-bit histogram passes find
 * the k-th key, a third pass marks; O(c), no sort (a mask update must stay far below 1% of
 * training time). */
static void select_first_k(const uint32_t *key, size_t c, size_t k, uint8_t *chosen,
                           uint32_t *hist /* 65536 */)
{
    memset(chosen, 0, c);
    if (k == 0) return;
    if (k >= c) {
        memset(chosen, 1, c);
        return;
    }
    memset(hist, 0, sizeof(uint32_t) * 65536);
    for (size_t j = 0; j < c; j++) hist[key[j] >> 16]++;
    size_t below = 0;
    uint32_t hi = 0;
    while (below + hist[hi] < k) below += hist[hi++];
    memset(hist, 0, sizeof(uint32_t) * 65536);
    for (size_t j = 0; j < c; j++)
        if (key[j] >> 16 == hi) hist[key[j] & 0xffff]++;
    uint32_t lo = 0;
    while (below + hist[lo] < k) below += hist[lo++];
    const uint32_t threshold = hi << 16 | lo;
    size_t ties = k - below; /* entries equal to the threshold, earliest first */
    for (size_t j = 0; j < c; j++) {
        if (key[j] < threshold) chosen[j] = 1;
        else if (key[j] == threshold && ties) { chosen[j] = 1; ties--; }
    }
}

/* Grow side without building candidate arrays: three passes over the tensor find the k-th
 * smallest complemented key among entries with mask != 1 (inactive, or just dropped: 2), then
 * mark them; ties to the lower index. */
/* Histogram of the complemented keys of entries with mask != 1: by the high 16 bits, or (second
 * pass) by the low 16 bits of those whose high bits equal `prefix`. Serial on purpose: per-thread
 * tables and their merge cost more than the pass (measured). */
static void grow_histogram(const float *score, const uint8_t *mask, size_t n, int second,
                           uint32_t prefix, uint32_t *hist)
{
    memset(hist, 0, sizeof(uint32_t) * 65536);
    if (!second) { /* branch-free: whether an entry is active looks random */
        for (size_t i = 0; i < n; i++) hist[~magnitude_key(score[i]) >> 16] += mask[i] != 1;
        return;
    }
    for (size_t i = 0; i < n; i++) { /* the prefix rarely matches: a well-predicted branch */
        const uint32_t key = ~magnitude_key(score[i]);
        if (key >> 16 == prefix && mask[i] != 1) hist[key & 0xffff]++;
    }
}

/* Grow side without candidate arrays: two histogram passes find the k-th smallest complemented
 * key among entries with mask != 1 (inactive, or just dropped: 2); the caller marks them, ties
 * to the lower index. */
static void grow_largest(const float *score, const uint8_t *mask, size_t n, size_t k,
                         uint32_t *hist, uint32_t *threshold, size_t *ties)
{
    grow_histogram(score, mask, n, 0, 0, hist);
    size_t below = 0;
    uint32_t hi = 0;
    while (below + hist[hi] < k) below += hist[hi++];
    grow_histogram(score, mask, n, 1, hi, hist);
    uint32_t lo = 0;
    while (below + hist[lo] < k) below += hist[lo++];
    *threshold = hi << 16 | lo;
    *ties = k - below;
}

void drop_grow_scratch_free(DropGrowScratch *sc)
{
    free(sc->pos);
    free(sc->key);
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
    sc->hist = malloc(sizeof(uint32_t) * 65536);
    sc->chosen = malloc(n ? n : 1);
    if (!sc->pos || !sc->key || !sc->hist || !sc->chosen) {
        drop_grow_scratch_free(sc);
        return -1;
    }
    sc->cap = n;
    return 0;
}

long mask_drop_grow(float *w, float *state, uint8_t *mask, uint8_t *ever, const float *grow_score,
                    size_t n, long k, DropGrowScratch *sc)
{
    if (k <= 0) return 0;
    DropGrowScratch local = {0};
    DropGrowScratch *buf = sc ? sc : &local;
    if (drop_grow_scratch_reserve(buf, n)) return -1;
    uint32_t *pos = buf->pos, *key = buf->key, *hist = buf->hist;
    uint8_t *chosen = buf->chosen;
    /* drop: the k active entries of smallest |w|, ties to the lower index; a dropped entry is
     * marked 2 until the grow decides whether it comes back */
    size_t c = 0;
    for (size_t i = 0; i < n; i++) { /* branch-free compaction (c <= i, so in bounds) */
        pos[c] = (uint32_t)i;
        key[c] = magnitude_key(w[i]);
        c += mask[i] != 0;
    }
    if ((size_t)k > c) k = (long)c; /* grow candidates (n - c + k) >= k */
    select_first_k(key, c, (size_t)k, chosen, hist);
    for (size_t j = 0; j < c; j++)
        if (chosen[j]) mask[pos[j]] = 2;
    /* grow: the k entries not active after the drop with the largest |score| */
    uint32_t threshold;
    size_t ties;
    grow_largest(grow_score, mask, n, (size_t)k, hist, &threshold, &ties);
    long fresh = 0;
    for (size_t i = 0; i < n; i++) {
        const uint32_t kk = ~magnitude_key(grow_score[i]);
        /* one rarely taken branch instead of one per active entry: most entries neither grow
         * nor were just dropped */
        if (!((mask[i] != 1) & ((kk <= threshold) | (mask[i] == 2)))) continue;
        const int grow = kk < threshold || (kk == threshold && ties && ties--);
        if (grow) {
            if (mask[i] == 0) { /* truly new; a dropped one (2) keeps weight and state */
                w[i] = 0;
                if (state) state[i] = 0;
                fresh++;
            }
            mask[i] = 1;
            if (ever) ever[i] = 1;
        } else if (mask[i] == 2) { /* dropped for good */
            mask[i] = 0;
            w[i] = 0;
            if (state) state[i] = 0;
        }
    }
    drop_grow_scratch_free(&local);
    return fresh;
}
