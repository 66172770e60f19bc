/* Sparsity: layer-wise densities (uniform, ER, ERK) with exact integer counts, initial masks,
 * and RigL/SET drop-and-grow on one tensor. docs/method.md is the spec. */
#ifndef CIGL_SPARSITY_H
#define CIGL_SPARSITY_H
#include "cigl/model.h"

typedef enum { DIST_UNIFORM, DIST_ER, DIST_ERK } Distribution;

/* Parses "uniform" | "er" | "erk"; -1 when unknown. */
int distribution_parse(const char *name);
const char *distribution_name(Distribution d);

/* Non-zero counts of the prunable tensors (in m->tensors order, prunable ones only) so that
 * they add up to round(density * total prunable weights) exactly. counts has one entry per
 * prunable tensor. Returns the number of prunable tensors. */
int sparsity_layer_counts(const Model *m, Distribution dist, double density, long *counts);

/* Same on bare shapes (for tests): tensor t has ndim[t] dims shape[t][0..ndim). */
void sparsity_counts_for_shapes(int n, const int *ndim, const int (*shape)[4], Distribution dist,
                                double density, long *counts);

/* Each prunable tensor gets a uniformly random subset of counts[t] active positions, drawn from
 * (seed, RNG_INIT_MASK) by flat parameter index; every other parameter has mask 1. */
void sparsity_init_masks(const Model *m, const long *counts, uint64_t seed, uint8_t *mask);

/* Selection buffers of mask_drop_grow, kept between mask updates: allocating them per call
 * (3.1 MB for the mlp's 235K-weight layer) cost page faults and zeroing on every update. */
typedef struct {
    uint32_t *pos, *key, *cand, *hist;
    uint8_t *chosen;
    size_t cap;             /* entries pos, key, cand and chosen hold */
} DropGrowScratch;
/* Makes the buffers hold tensors of n entries (kept when they already do); -1: out of memory. */
int drop_grow_scratch_reserve(DropGrowScratch *sc, size_t n);
void drop_grow_scratch_free(DropGrowScratch *sc);

/* Drop and grow on one tensor of n entries (docs/method.md): deactivate the k active entries of
 * smallest |w| (ties: lower index first), then activate the k entries, among those inactive
 * after the drop, of largest grow_score (ties: lower index first). An entry dropped and grown
 * again keeps its weight and optimiser state; new entries and dropped ones get weight 0 and
 * state 0 (state may be NULL). `ever` (may be NULL) marks entries that have been active.
 * Returns the number of truly new entries, or -1 when memory for the selection could not be
 * allocated (nothing changed then). sc: buffers grown as needed and kept (NULL: temporary). */
long mask_drop_grow(float *w, float *state, uint8_t *mask, uint8_t *ever, const float *grow_score,
                    size_t n, long k, DropGrowScratch *sc);

/* Variations of mask_drop_grow (docs/method.md, authors' mechanics). drop_by: the values whose |.|
 * ranks the drop (NULL: w itself). regrown_zero: an entry dropped and grown again is left as
 * MASK_REGROWN_ZERO in the mask (weight and state untouched); the caller zeroes its weight,
 * keeps its state and sets it to 1 (on every rank). */
typedef struct {
    const float *drop_by;
    int regrown_zero;
} DropGrowRule;
#define MASK_REGROWN_ZERO 3
long mask_drop_grow_rule(float *w, float *state, uint8_t *mask, uint8_t *ever,
                         const float *grow_score, size_t n, long k, const DropGrowRule *rule,
                         DropGrowScratch *sc);

/* Drop fraction at step t: alpha / 2 * (1 + cos(pi * t / t_end)). */
double drop_fraction(double alpha, long t, long t_end);

#endif
