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
    double *size = malloc(sizeof(double) * n), *x = malloc(sizeof(double) * n);
    double *frac = malloc(sizeof(double) * n), total = 0;
    for (int l = 0; l < n; l++) {
        size[l] = 1;
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

/* Orders indices by key ascending, ties by index ascending (a total order: deterministic). */
typedef struct {
    float key;
    uint32_t index;
} Keyed;

static int keyed_ascending(const void *a, const void *b)
{
    const Keyed *x = a, *y = b;
    if (x->key != y->key) return x->key < y->key ? -1 : 1;
    return (x->index > y->index) - (x->index < y->index);
}

static int keyed_descending(const void *a, const void *b)
{
    const Keyed *x = a, *y = b;
    if (x->key != y->key) return x->key > y->key ? -1 : 1;
    return (x->index > y->index) - (x->index < y->index);
}

long mask_drop_grow(float *w, float *state, uint8_t *mask, uint8_t *ever, const float *grow_score,
                    size_t n, long k, uint32_t *scratch)
{
    if (k <= 0) return 0;
    size_t n_active = 0;
    for (size_t i = 0; i < n; i++) n_active += mask[i];
    if ((size_t)k > n_active) k = (long)n_active; /* grow candidates (n - n_active + k) >= k */
    Keyed *items = malloc(sizeof(Keyed) * n);
    /* drop: the k active entries of smallest |w| */
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        if (mask[i]) items[c++] = (Keyed){fabsf(w[i]), (uint32_t)i};
    qsort(items, c, sizeof(Keyed), keyed_ascending);
    uint8_t *dropped = (uint8_t *)scratch; /* n bytes fit in n uint32 */
    memset(dropped, 0, n);
    for (long j = 0; j < k; j++) {
        mask[items[j].index] = 0;
        dropped[items[j].index] = 1;
    }
    /* grow: the k entries inactive after the drop with the largest score */
    c = 0;
    for (size_t i = 0; i < n; i++)
        if (!mask[i]) items[c++] = (Keyed){fabsf(grow_score[i]), (uint32_t)i};
    qsort(items, c, sizeof(Keyed), keyed_descending);
    long fresh = 0;
    for (long j = 0; j < k; j++) {
        const uint32_t i = items[j].index;
        mask[i] = 1;
        if (dropped[i]) {
            dropped[i] = 0; /* regrown: keeps weight and state */
        } else {
            w[i] = 0;
            if (state) state[i] = 0;
            fresh++;
        }
        if (ever) ever[i] = 1;
    }
    for (size_t i = 0; i < n; i++)
        if (dropped[i]) {
            w[i] = 0;
            if (state) state[i] = 0;
        }
    free(items);
    return fresh;
}
