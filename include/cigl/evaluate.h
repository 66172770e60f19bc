/* Evaluation: predictions of a model or an ensemble, their calibration metrics, the held-out
 * split, and the BN statistics pass after averaging. */
#ifndef CIGL_EVALUATE_H
#define CIGL_EVALUATE_H
#include "cigl/comm.h"
#include "cigl/data.h"
#include "cigl/metrics.h"
#include "cigl/model.h"

/* Predictions of one model or a prediction ensemble on some samples of a split. */
typedef struct {
    size_t n;
    int classes;
    float *logits;          /* n x K when a single model predicts; NULL for ensembles */
    double *log_probs;      /* n x K: log-softmax in double, or the log of the members' mean
                             * double-precision softmax */
    int32_t *labels;
} Predictions;

/* Member k's weights of a prediction ensemble (MC dropout, CigL without averaging); may also
 * load BN statistics into m->bn_stats. */
typedef const float *(*EnsembleMember)(void *ctx, int k, Model *m);

/* Predicts samples idx[0..n) of split s (idx NULL: the whole split, n = s->n) in eval mode, in
 * batches of m->max_batch. members <= 1 or member NULL: the model's own parameters. */
int predict(Model *m, const Dataset *ds, const Split *s, const uint32_t *idx, size_t n,
            float *xbuf, int32_t *ybuf, int members, EnsembleMember member, void *ctx,
            Predictions *p);
void predictions_free(Predictions *p);

/* All calibration metrics of the predictions; with T != 1 of softmax(logits / T). */
int predictions_metrics(const Predictions *p, double temperature, Metrics *out);

/* Splits 0..n_total-1 into held-out validation and training indices (both sorted), drawn
 * from (seed, RNG_VAL_SPLIT). */
int split_validation(uint64_t seed, size_t n_total, size_t n_val, uint32_t **train_idx,
                     uint32_t **val_idx);

/* Gathers every rank's predictions (in rank order, which is sample order for the contiguous
 * slices of shard_slice) into `all` on rank 0; other ranks get an empty `all`. */
int predictions_gather(Comm *comm, const Predictions *local, size_t n_total, Predictions *all);

/* Recomputes BN running statistics for the current weights (SWA's update_bn, docs/method.md):
 * reset, one pass over samples idx[0..n) in training mode without augmentation in batches of
 * `batch`; the running mean and variance are the batch-size-weighted averages of each batch's
 * mean and unbiased variance. */
int recompute_bn_statistics(Model *m, const float *weights, const Dataset *ds, const Split *s,
                            const uint32_t *idx, size_t n, int batch, Comm *comm, float *xbuf,
                            int32_t *ybuf);

#endif
