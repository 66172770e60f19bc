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

/* Prediction ensembles (MC dropout, CigL without averaging): member k's weights come from
 * member(ctx, k, m), which may also load BN statistics into m->bn_stats. Probabilities are
 * averaged in double and the NLL is taken of the mean. */
typedef const float *(*EnsembleMember)(void *ctx, int k, Model *m);
void evaluate_ensemble(Model *m, const Dataset *ds, const Split *s, const uint32_t *idx,
                       size_t n, float *xbuf, int32_t *ybuf, int members, EnsembleMember member,
                       void *ctx, EvalResult *r);

/* Recomputes BN running statistics for the current weights (SWA's update_bn, METHOD.md): reset,
 * one pass over samples idx[0..n) in training mode without augmentation in batches of
 * `batch`; the running mean and variance are the batch-size-weighted averages of each batch's
 * mean and unbiased variance. */
void recompute_bn_statistics(Model *m, const float *weights, const Dataset *ds, const Split *s,
                             const uint32_t *idx, size_t n, int batch, float *xbuf,
                             int32_t *ybuf);
