/* The training run: `cigl train`. */
#ifndef CIGL_TRAIN_H
#define CIGL_TRAIN_H
#include "cigl/config.h"
#include "cigl/data.h"
#include "cigl/model.h"

typedef struct {
    double loss_sum;        /* sum of per-sample NLL (natural log) */
    long correct, n;
} EvalResult;

/* Evaluates samples idx[0..n) of split s in eval mode, in batches of at most m->max_batch. */
void evaluate(Model *m, const Dataset *ds, const Split *s, const uint32_t *idx, size_t n,
              float *xbuf, int32_t *ybuf, EvalResult *r);

/* Splits 0..n_total-1 into held-out validation and training indices (both sorted), drawn
 * from (seed, RNG_VAL_SPLIT). */
int split_validation(uint64_t seed, size_t n_total, size_t n_val, uint32_t **train_idx,
                     uint32_t **val_idx);

/* Runs `cigl train` with a parsed configuration; argv is recorded in config.json. */
int train_run(const Config *c, int argc, char **argv);

#endif
