/* `cigl train`: the data-parallel training loop. Every rank holds a replica; each global batch
 * is sliced over ranks (and micro-batches), gradients are summed over ranks, rank 0 decides
 * mask updates, and only rank 0 writes files. Everything is validated (options, dataset,
 * model) before the run directory is created, so bad input never leaves a half-written run. */
#include "trainer.h"

#include "cigl/conv_backend.h"
#include "cigl/error.h"
#include "cigl/version.h"
#include "cigl/parallel.h"
#include "cigl/nonfinite.h"
#include "cigl/rng.h"
#include "cigl/sparse.h"
#include "cigl/signals.h"

#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>


static double now_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void trainer_free(Trainer *t)
{
    dataset_free(&t->ds);
    method_free(&t->ms); /* first: its helper thread reads the model */
    model_free(&t->m);
    sgd_free(&t->opt);
    free(t->train_idx);
    free(t->val_idx);
    free(t->order);
    free(t->x);
    free(t->y);
    free(t->dlogits);
    free(t->x_mix);
    free(t->y_mix);
    free(t->pairs);
    free(t->gacc);
    grad_sync_free(&t->sync);
}

static int make_schedule(Trainer *t)
{
    const Config *c = &t->cfg;
    Schedule *s = &t->sched;
    memset(s, 0, sizeof(*s));
    s->base_lr = c->lr;
    s->gamma = c->gamma;
    s->step_every = c->step_every;
    s->warmup_steps = c->warmup_steps;
    s->total_steps = t->total_steps;
    if (!strcmp(c->schedule, "multistep")) {
        s->kind = SCHEDULE_MULTISTEP;
        s->n_milestones = config_milestones(c, s->milestones, SCHEDULE_MAX_MILESTONES);
    } else if (!strcmp(c->schedule, "step")) {
        s->kind = SCHEDULE_STEP;
    } else if (!strcmp(c->schedule, "cosine")) {
        s->kind = SCHEDULE_COSINE;
    } else {
        s->kind = SCHEDULE_CONSTANT;
    }
    return CIGL_OK;
}

/* Loads data and model, checks their fit; nothing is written yet. */
static int trainer_setup(Trainer *t)
{
    const Config *c = &t->cfg;
    if (method_resolve_mechanics(&t->cfg)) return CIGL_ERR_USAGE;
    /* config.json records the backend auto resolved to (conv_backend.h) */
    if (conv_backend_select(t->cfg.conv_backend, sizeof t->cfg.conv_backend))
        return CIGL_ERR_USAGE;
    const int data_mode = data_mode_parse(c->data_mode);
    if (data_mode < 0)
        return cigl_fail(CIGL_ERR_USAGE, "--data-mode '%s': expected auto, memory or stream",
                         c->data_mode);
    int rc = dataset_open(c->data, (DataMode)data_mode, &t->ds);
    if (rc) return rc;
    if (t->ds.augment == DATA_AUGMENT_RRC && c->crop_pad)
        return cigl_fail(CIGL_ERR_USAGE, "--crop-pad does not apply to '%s': its training images "
                         "get a random resized crop and flip (datasets/README.md); drop it",
                         c->data);
    const size_t n_total = t->ds.train.n;
    rc = split_validation((uint64_t)c->seed, n_total, (size_t)c->val_size, &t->train_idx,
                          &t->val_idx);
    if (rc) return rc;
    t->n_val = (size_t)c->val_size;
    t->n_train = n_total - t->n_val;
    if (t->n_train < (size_t)c->batch_size)
        return cigl_fail(CIGL_ERR_USAGE, "--batch-size %d exceeds the %zu training samples; "
                         "use a smaller --batch-size or --val-size", c->batch_size, t->n_train);
    rc = shard_check(c->batch_size, t->comm->size, c->accumulate);
    if (rc) return rc;
    /* the last batch of an epoch may be partial: every sample is seen once per epoch */
    t->steps_per_epoch = (long)((t->n_train + (size_t)c->batch_size - 1) / (size_t)c->batch_size);
    t->total_steps = t->steps_per_epoch * c->epochs;
    rc = method_validate(c, t->total_steps, t->steps_per_epoch);
    if (rc) return rc;
    const int micro_batch = c->batch_size / (t->comm->size * c->accumulate);
    const int eval_batch = c->eval_batch_size ? c->eval_batch_size : micro_batch;
    const int max_batch = eval_batch > micro_batch ? eval_batch : micro_batch;
    const Shape in = {t->ds.c, t->ds.h, t->ds.w};
    rc = model_build(&t->m, c->model, in, t->ds.classes, max_batch, (uint64_t)c->seed);
    if (rc) return rc;
    /* BN normalises with each rank's own micro-batch: below ~16 samples its statistics get
     * noisy (the BN paper's and Goyal et al.'s per-worker batches are 32) */
    if (t->m.n_bn_stats && micro_batch < 16 && t->comm->size * c->accumulate > 1 &&
        t->comm->rank == 0)
        fprintf(stderr, "cigl: warning: model '%s' has BatchNorm, which gets %d samples per "
                "rank per micro-batch (--batch-size %d / %d rank(s) / --accumulate %d); fewer "
                "than 16 make its batch statistics noisy: use fewer ranks or a larger "
                "--batch-size\n", c->model, micro_batch, c->batch_size, t->comm->size,
                c->accumulate);
    if (c->zero_init_residual && !model_zero_init_residual(&t->m))
        return cigl_fail(CIGL_ERR_USAGE, "--zero-init-residual: model '%s' has no residual "
                         "branch ending in a batch norm (resnet20, resnet32, resnet56 and resnet50 "
                         "have); drop the option", c->model);
    rc = sgd_init(&t->opt, &t->m, c->momentum, c->weight_decay, c->nesterov, c->decay_all);
    if (rc) return rc;
    rc = method_init(&t->ms, c, &t->m, t->total_steps, t->steps_per_epoch);
    if (rc) return rc;
    /* --kernels: dense or sparse kernels per conv/linear layer, from the mask (sparse.h) */
    rc = sparse_model_setup(&t->m, (KernelsMode)sparse_kernels_parse(c->kernels), t->ms.mask);
    if (rc) return rc;
    t->ms.comm = t->comm;
    rc = grad_sync_init(&t->sync, t->comm, &t->m, CIGL_GRAD_BUCKET_FLOATS);
    if (!rc) rc = grad_sync_set_mask(&t->sync, t->ms.ops->sparse ? t->ms.mask : NULL);
    if (rc) return rc;
    if (c->accumulate > 1) {
        t->gacc = cigl_malloc(sizeof(float) * t->m.n_params, "gradient accumulator");
        if (!t->gacc) return CIGL_ERR_RUNTIME;
    }
    make_schedule(t);
    const size_t in_numel = shape_numel(in);
    t->x = cigl_malloc(sizeof(float) * in_numel * max_batch, "input batch");
    t->y = cigl_malloc(sizeof(int32_t) * max_batch, "label batch");
    t->dlogits = cigl_malloc(sizeof(float) * (size_t)t->ds.classes * max_batch, "logit gradients");
    t->order = cigl_malloc(sizeof(uint32_t) * t->n_train, "epoch order");
    if (!t->x || !t->y || !t->dlogits || !t->order) return CIGL_ERR_RUNTIME;
    if (c->mixup > 0) {
        t->x_mix = cigl_malloc(sizeof(float) * in_numel * max_batch, "mixup batch");
        t->y_mix = cigl_malloc(sizeof(int32_t) * max_batch, "mixup labels");
        t->pairs = cigl_malloc(sizeof(uint32_t) * max_batch, "mixup pairs");
        if (!t->x_mix || !t->y_mix || !t->pairs) return CIGL_ERR_RUNTIME;
    }
    return CIGL_OK;
}

/* Predictions of the output model on samples of a split with the method's predictor: the
 * parameters, an MC-dropout ensemble, or CigL's snapshot ensemble without averaging. */
/* Evaluation is sharded: each rank predicts a slice of the samples and rank 0 gathers them in
 * sample order. BN running statistics are rank 0's (broadcast first), so every rank evaluates
 * the same model. With `method` the method's predictor is used (MC dropout, CigL's snapshot
 * ensemble), else the parameters. Only rank 0's `p` holds the predictions afterwards. */
static int predict_sharded(Trainer *t, const Split *s, const uint32_t *idx, size_t n, int method,
                           Predictions *p)
{
    Comm *comm = t->comm;
    if (comm->broadcast(comm, t->m.bn_stats, sizeof(float) * t->m.n_bn_stats, 0))
        return CIGL_ERR_RUNTIME;
    size_t first, count;
    shard_slice(n, comm->rank, comm->size, 0, 1, &first, &count);
    uint32_t *local_idx = cigl_malloc(sizeof(uint32_t) * (count ? count : 1), "indices");
    float *bn = cigl_malloc(sizeof(float) * (t->m.n_bn_stats + 1), "BN statistics");
    if (!local_idx || !bn) {
        free(local_idx);
        free(bn);
        return CIGL_ERR_RUNTIME;
    }
    for (size_t i = 0; i < count; i++) local_idx[i] = idx ? idx[first + i] : (uint32_t)(first + i);
    memcpy(bn, t->m.bn_stats, sizeof(float) * t->m.n_bn_stats);
    Predictions local;
    int rc = predict(&t->m, &t->ds, s, local_idx, count, t->x, t->y,
                     method ? method_test_members(&t->ms) : 1, method ? method_test_member : NULL,
                     &t->ms, &local);
    memcpy(t->m.bn_stats, bn, sizeof(float) * t->m.n_bn_stats); /* members may swap BN */
    free(bn);
    free(local_idx);
    if (!rc) rc = predictions_gather(comm, &local, n, p);
    predictions_free(&local);
    return rc;
}

/* Metrics of the current parameters (the per-epoch validation: no ensembles, no averaging);
 * computed on rank 0. */
static int evaluate_split(Trainer *t, const Split *s, const uint32_t *idx, size_t n, Metrics *out)
{
    Predictions p;
    int rc = predict_sharded(t, s, idx, n, 0, &p);
    if (!rc && t->comm->rank == 0) rc = predictions_metrics(&p, 1.0, out);
    predictions_free(&p);
    return rc;
}

static void progress(const Trainer *t, int epoch, long in_epoch, double loss, double acc,
                     double rate)
{
    const int width = 24, filled = (int)(width * in_epoch / t->steps_per_epoch);
    char bar[32];
    for (int i = 0; i < width; i++) bar[i] = i < filled ? '#' : '.';
    bar[width] = 0;
    fprintf(stderr, "\repoch %d/%d [%s] %ld/%ld loss %.4f acc %.2f%% %.0f img/s ", epoch + 1,
            t->cfg.epochs, bar, in_epoch, t->steps_per_epoch, loss, 100 * acc, rate);
    fflush(stderr);
}

/* Mixup inside one micro-batch: lambda per global step, partners a permutation of the slice. */
static const float *mix_batch(Trainer *t, int n, LossTargets *targets)
{
    const Config *c = &t->cfg;
    const double lambda = rng_beta_symmetric((uint64_t)c->seed, RNG_MIXUP, (uint64_t)t->step,
                                             c->mixup);
    rng_permutation((uint64_t)c->seed, RNG_MIXUP_PAIRS, (uint64_t)t->step, t->pairs, (size_t)n);
    const size_t numel = shape_numel(t->m.input);
    for (int i = 0; i < n; i++) {
        const float *a = t->x + (size_t)i * numel, *b = t->x + (size_t)t->pairs[i] * numel;
        float *o = t->x_mix + (size_t)i * numel;
        for (size_t j = 0; j < numel; j++) o[j] = (float)(lambda * a[j] + (1.0 - lambda) * b[j]);
        t->y_mix[i] = t->y[t->pairs[i]];
    }
    targets->mix_labels = t->y_mix;
    targets->mix_lambda = lambda;
    return t->x_mix;
}

/* One optimisation step on the global batch batch_idx[0..B): this rank's micro-batches,
 * gradients summed over ranks (in buckets during the last backward), then the method's step.
 * Returns this rank's loss sum (non-finite: stop). */
/* Starts reading this rank's next slice of a streamed dataset (the next micro-batch, or the
 * first of the next global batch in this epoch's order) while this one computes. */
static void prefetch_next(Trainer *t, const uint32_t *batch_idx, size_t B, int micro)
{
    const Config *c = &t->cfg;
    size_t first, n, total = B;
    const uint32_t *base = batch_idx;
    if (micro + 1 == c->accumulate) {
        const size_t next = (size_t)(batch_idx - t->order) + B;
        if (next >= t->n_train) return;
        base = t->order + next;
        total = t->n_train - next < (size_t)c->batch_size ? t->n_train - next
                                                          : (size_t)c->batch_size;
    }
    shard_slice(total, t->comm->rank, t->comm->size, (micro + 1) % c->accumulate,
                c->accumulate, &first, &n);
    split_prefetch(&t->ds, &t->ds.train, base + first, n);
}

static double train_step(Trainer *t, const uint32_t *batch_idx, size_t B, int epoch,
                         long *correct)
{
    const Config *c = &t->cfg;
    Comm *comm = t->comm;
    const Augment aug = {c->crop_pad, c->flip, (uint64_t)c->seed, (uint64_t)epoch};
    const int augment = c->crop_pad > 0 || c->flip || t->ds.augment == DATA_AUGMENT_RRC;
    const float *weights = method_before_forward(&t->ms, &t->m, t->step);
    if (!weights) return NAN; /* printed; t->nonfinite stays 0: the run stops */
    const int dense = method_updates_at(&t->ms, t->step);
    double loss = 0;
    int ran = 0;
    for (int micro = 0; micro < c->accumulate; micro++) {
        size_t first, n;
        shard_slice(B, comm->rank, comm->size, micro, c->accumulate, &first, &n);
        if (n == 0) continue;
        if (split_gather(&t->ds, &t->ds.train, batch_idx + first, n, augment ? &aug : NULL,
                         t->x, t->y)) {
            if (comm->size > 1) comm->abort(comm, CIGL_ERR_RUNTIME); /* others would wait */
            return NAN;
        }
        prefetch_next(t, batch_idx, B, micro);
        if (t->test_nan_step == t->step + 1 && comm->rank == 0 && micro == 0) t->x[0] = NAN;
        LossTargets targets = {c->label_smoothing, NULL, 1.0};
        const float *x = c->mixup > 0 ? mix_batch(t, (int)n, &targets) : t->x;
        if (c->accumulate == 1) grad_sync_begin(&t->sync, &t->m, dense);
        int hits = 0;
        const double l = method_forward_backward(&t->ms, &t->m, weights, x, t->y, (int)n,
                                                 1.0f / (float)B, &targets, t->dlogits, &hits);
        loss += l; /* a non-finite loss still goes through the collectives below, so every
                    * rank reaches the same decision at the same step instead of hanging */
        if (!isfinite(l) && !t->fault[0])
            describe_nonfinite_forward(&t->m, x, (int)n, t->fault, sizeof t->fault);
        *correct += hits;
        if (c->accumulate > 1) {
            if (!ran) memcpy(t->gacc, t->m.grads, sizeof(float) * t->m.n_params);
            else for (size_t i = 0; i < t->m.n_params; i++) t->gacc[i] += t->m.grads[i];
        }
        ran = 1;
    }
    if (c->accumulate > 1 && ran) memcpy(t->m.grads, t->gacc, sizeof(float) * t->m.n_params);
    if (!ran) memset(t->m.grads, 0, sizeof(float) * t->m.n_params); /* a rank with no samples */
    if (c->accumulate > 1 || !ran) grad_sync_begin(&t->sync, &t->m, dense);
    if (grad_sync_finish(&t->sync, &t->m)) return NAN;
    /* the summed gradients are the same on every rank, so is this check */
    const int grads_ok = !isfinite(loss) || all_finite(t->m.grads, t->m.n_params);
    if (!grads_ok && !t->fault[0])
        snprintf(t->fault, sizeof t->fault, "the gradient of '%s'",
                 first_nonfinite_gradient(&t->m));
    /* one collective per step carries every decision the ranks must share: a non-finite
     * value anywhere, a stop signal anywhere, rank 0's checkpoint timer */
    const double since = now_seconds() - t->last_checkpoint;
    double flags[3] = {isfinite(loss) && grads_ok ? 0.0 : 1.0,
                       stop_signal_received() ? 1.0 : 0.0,
                       comm->rank == 0 && c->checkpoint_minutes > 0 &&
                               since >= 60.0 * c->checkpoint_minutes ? 1.0 : 0.0};
    if (comm->size > 1 && comm->allreduce_double(comm, flags, 3)) return NAN;
    t->stop_signal = flags[1] > 0 ? (stop_signal_received() ? stop_signal_received() : -1) : 0;
    t->checkpoint_due = flags[2] > 0;
    if (flags[0] > 0) { /* nothing is updated: the state stays that of the last good step */
        t->nonfinite = 1;
        return NAN;
    }
    if (method_apply_step(&t->ms, &t->m, &t->opt, schedule_lr(&t->sched, t->step), t->step))
        return NAN;
    if (t->ms.masks_changed) {
        grad_sync_set_mask(&t->sync, t->ms.mask);
        t->ms.masks_changed = 0;
    }
    return loss;
}

/* Replicas must stay bit-identical: weights, masks and this step's random mask. */
static int check_replicas(Trainer *t)
{
    if (t->comm->size == 1) return CIGL_OK;
    uint64_t h = checksum_bytes(CIGL_CHECKSUM_SEED, t->m.params, sizeof(float) * t->m.n_params);
    h = checksum_bytes(h, t->ms.mask, t->m.n_params);
    h = checksum_bytes(h, t->ms.active, t->m.n_params);
    return ranks_agree(t->comm, h, "the weights and masks", t->step);
}

/* A step whose loss or gradients were not finite (nothing was updated). With --on-nonfinite
 * skip it is counted and training goes on (up to MAX_CONSECUTIVE_SKIPS in a row); else the run
 * stops, keeping its last checkpoint. The rank that found the value names where it was. */
#define MAX_CONSECUTIVE_SKIPS 100
#define CIGL_STR_(x) #x
#define CIGL_STR(x) CIGL_STR_(x) /* the limit's digits, for the message */
static int skip_nonfinite(Trainer *t, int epoch)
{
    const int skip = !strcmp(t->cfg.on_nonfinite, "skip");
    char rank[32] = "";
    if (t->comm->size > 1) snprintf(rank, sizeof rank, "rank %d: ", t->comm->rank);
    t->nonfinite = 0;
    if (skip && ++t->consecutive_skips <= MAX_CONSECUTIVE_SKIPS) {
        t->skipped_steps++;
        if (t->fault[0])
            fprintf(stderr, "cigl: %sstep %ld skipped: non-finite value in %s\n", rank,
                    t->step + 1, t->fault);
        t->fault[0] = 0;
        return 0;
    }
    if (t->fault[0] || t->comm->rank == 0) {
        fprintf(stderr, "cigl: %snon-finite value at step %ld (epoch %d) in %s%s; nothing was "
                "updated and the last checkpoint is kept; lower --lr, check the data, or "
                "pass --on-nonfinite skip\n", rank, t->step + 1, epoch + 1,
                t->fault[0] ? t->fault : "another rank's batch",
                skip ? " after " CIGL_STR(MAX_CONSECUTIVE_SKIPS) " skipped steps in a row" : "");
        fflush(stderr);
    }
    return 1;
}

/* After a stop signal: the checkpoint is written (rc 0), every rank exits with the status
 * that tells job scripts to requeue. */
static int stopped(const Trainer *t, int rc)
{
    if (rc) return rc;
    const char *by =
        t->stop_signal > 0 ? stop_signal_name(t->stop_signal) : "a signal on another rank";
    if (t->comm->rank == 0 && run_write_requeue(t, by)) return CIGL_ERR_RUNTIME;
    if (t->comm->rank == 0)
        fprintf(stderr, "cigl: stopped by %s after step %ld; checkpoint written to '%s'; "
                "continue with --resume auto (exit status %d)\n", by, t->step, t->ckpt_dir,
                CIGL_EXIT_REQUEUE);
    return CIGL_EXIT_REQUEUE;
}

static int train_loop(Trainer *t, FinalResult *r)
{
    const Config *c = &t->cfg;
    const int lead = t->comm->rank == 0, tty = lead && isatty(STDERR_FILENO);
    const double t0 = now_seconds();
    t->last_checkpoint = t0;
#define TRAIN_SECONDS() (t->start.train_seconds + now_seconds() - t0)
    for (int epoch = t->start.epoch; epoch < c->epochs; epoch++) {
        const double e0 = now_seconds();
        rng_permutation((uint64_t)c->seed, RNG_DATA_ORDER, (uint64_t)epoch, t->order, t->n_train);
        for (size_t i = 0; i < t->n_train; i++) t->order[i] = t->train_idx[t->order[i]];
        double sums[2] = {0, 0}; /* this rank's loss sum and hits */
        long seen = 0, in_epoch = 0;
        t->epoch_skipped = 0;
        if (t->resume_path[0] && epoch == t->start.epoch) { /* the checkpoint's epoch goes on */
            in_epoch = t->start.in_epoch;
            seen = t->start.epoch_seen;
            t->epoch_skipped = t->start.epoch_skipped;
            if (lead) {
                sums[0] = t->start.epoch_loss;
                sums[1] = t->start.epoch_hits;
            }
        }
        const long first_seen = seen; /* for the rate of this session's part */
        for (; in_epoch < t->steps_per_epoch; in_epoch++) {
            if (c->max_steps && t->step >= c->max_steps) { /* resumable where it stopped */
                if (c->checkpoint_every > 0 || c->checkpoint_minutes > 0) {
                    const int rc = run_checkpoint(t, epoch, in_epoch, sums, seen,
                                                  TRAIN_SECONDS(), 0);
                    if (rc) return rc;
                }
                break;
            }
            const size_t start = (size_t)in_epoch * (size_t)c->batch_size;
            const size_t B = t->n_train - start < (size_t)c->batch_size ? t->n_train - start
                                                                        : (size_t)c->batch_size;
            long correct = 0;
            const double loss = train_step(t, t->order + start, B, epoch, &correct);
            if (!isfinite(loss)) { /* every rank sees it at the same step */
                if (!t->nonfinite) return CIGL_ERR_RUNTIME; /* an error, already printed */
                if (tty) fputc('\n', stderr);
                if (skip_nonfinite(t, epoch)) return CIGL_ERR_RUNTIME;
                t->epoch_skipped++;
                t->step++;
                seen += (long)B;
                continue;
            }
            t->consecutive_skips = 0;
            t->step++;
            stop_signal_test_hook(t->comm->rank, t->step, t->resume_path[0] != 0);
            sums[0] += loss;
            sums[1] += (double)correct;
            seen += (long)B;
            if (c->check_every > 0 && t->step % c->check_every == 0 && check_replicas(t))
                return CIGL_ERR_RUNTIME;
            if (tty && (in_epoch % 10 == 0 || in_epoch + 1 == t->steps_per_epoch))
                progress(t, epoch, in_epoch + 1, sums[0] * t->comm->size / seen,
                         sums[1] * t->comm->size / seen,
                         (double)(seen - first_seen) / (now_seconds() - e0));
            if (t->stop_signal || t->checkpoint_due) {
                if (tty) fputc('\n', stderr);
                const int rc = run_checkpoint(t, epoch, in_epoch + 1, sums, seen,
                                              TRAIN_SECONDS(), t->stop_signal != 0);
                if (t->stop_signal) return stopped(t, rc);
                if (rc) return rc;
            }
        }
        if (tty) fputc('\n', stderr);
        if (!seen) break;
        if (check_replicas(t) || t->comm->allreduce_double(t->comm, sums, 2))
            return CIGL_ERR_RUNTIME;
        Metrics val;
        memset(&val, 0, sizeof(val));
        int rc = t->n_val ? evaluate_split(t, &t->ds.train, t->val_idx, t->n_val, &val) : 0;
        if (rc && t->comm->size > 1) t->comm->abort(t->comm, rc); /* others would wait */
        if (rc) return rc;
        const double secs = now_seconds() - e0;
        const double rate = (double)(seen - first_seen) / secs;
        const double lr = schedule_lr(&t->sched, t->step - 1);
        if (lead) {
            fprintf(stderr, "epoch %d/%d: step %ld, lr %.4g, train loss %.4f, train acc %.2f%%, "
                    "val acc %.2f%%, val nll %.4f, val ECE %.4f, %.1f s (%.0f img/s)\n",
                    epoch + 1, c->epochs, t->step, lr, sums[0] / seen, 100.0 * sums[1] / seen,
                    t->n_val ? 100 * val.accuracy : NAN, t->n_val ? val.nll : NAN,
                    t->n_val ? val.ece : NAN, secs, rate);
            rc = run_append_epoch(t, epoch + 1, lr, sums[0] / seen, sums[1] / seen,
                                  t->n_val ? &val : NULL, secs, t->epoch_skipped);
            if (rc && t->comm->size > 1) t->comm->abort(t->comm, rc); /* others would wait */
            if (rc) return rc;
        }
        if (c->checkpoint_every > 0 && (epoch + 1) % c->checkpoint_every == 0 &&
            in_epoch == t->steps_per_epoch) {
            const double none[2] = {0, 0};
            rc = run_checkpoint(t, epoch + 1, 0, none, 0, TRAIN_SECONDS(), 0);
            if (rc) return rc;
        }
        if (c->max_steps && t->step >= c->max_steps) break;
    }
    r->seconds = TRAIN_SECONDS();
#undef TRAIN_SECONDS
    r->steps = t->step;
    r->comm_wait_seconds = t->sync.wait_seconds;
    return CIGL_OK;
}

/* The output model: CigL's averaged weights with BN statistics recomputed on the training
 * samples (not the validation ones); other methods' final weights. */
static int finalize_model(Trainer *t)
{
    int rc = method_finalize(&t->ms, &t->m);
    if (rc) return rc;
    if (t->ms.ops->averaging && !t->cfg.no_averaging && t->m.n_bn_stats)
        return recompute_bn_statistics(&t->m, t->m.params, &t->ds, &t->ds.train, t->train_idx,
                                       t->n_train, t->cfg.batch_size / t->cfg.accumulate,
                                       t->comm, t->x, t->y);
    return CIGL_OK;
}

/* Test metrics with the method's predictor, and temperature scaling fitted on the validation
 * split (single models only: an ensemble has no logits to scale). Both predictions are
 * collective; the metrics are computed on rank 0 only. */
static int evaluate_final(Trainer *t, FinalResult *r)
{
    Predictions test, val;
    memset(&val, 0, sizeof(val));
    int rc = predict_sharded(t, &t->ds.test, NULL, t->ds.test.n, 1, &test);
    if (!rc && t->n_val) rc = predict_sharded(t, &t->ds.train, t->val_idx, t->n_val, 1, &val);
    r->temperature = 1.0;
    if (!rc && t->comm->rank == 0) {
        rc = predictions_metrics(&test, 1.0, &r->test);
        if (!rc && t->n_val) {
            rc = predictions_metrics(&val, 1.0, &r->val);
            r->have_val = !rc;
        }
        if (!rc && t->n_val && val.logits && test.logits) {
            rc = temperature_fit(val.logits, val.labels, val.n, val.classes, &r->temperature);
            if (!rc) rc = predictions_metrics(&test, r->temperature, &r->test_scaled);
            r->have_scaled = !rc;
        }
    }
    predictions_free(&val);
    predictions_free(&test);
    return rc;
}

/* Setup failures are the same on every rank (same options, same data): all ranks learn
 * rank 0's status and exit with it; rank 0 has printed the one line. A rank that failed
 * alone keeps its own message. */
static int agree_on_setup(Comm *comm, int rc)
{
    if (comm->size == 1) return rc;
    double status[2] = {comm->rank == 0 ? (double)rc : 0.0, rc ? 1.0 : 0.0};
    if (comm->allreduce_double(comm, status, 2)) return CIGL_ERR_RUNTIME;
    if (status[0] != 0) {
        if (comm->rank != 0) __fpurge(stderr); /* rank 0 said it already */
        return (int)status[0];
    }
    if (status[1] != 0) return rc ? rc : CIGL_ERR_USAGE;
    return CIGL_OK;
}

/* Every rank must run the same binary with the same options. */
static int check_same_config(Trainer *t)
{
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    if (!mem) return cigl_fail(CIGL_ERR_RUNTIME, "out of memory");
    JsonWriter w;
    json_begin(&w, mem, 0);
    json_object_begin(&w, NULL);
    config_write_json(&t->cfg, &w);
    json_object_end(&w);
    fclose(mem);
    uint64_t h = checksum_bytes(CIGL_CHECKSUM_SEED, text, len);
    free(text);
    const char *build = CIGL_BUILD_ID;
    h = checksum_bytes(h, build, strlen(build));
    uint64_t lo, hi;
    if (t->comm->allreduce_u64_minmax(t->comm, h, &lo, &hi)) return CIGL_ERR_RUNTIME;
    if (lo != hi)
        return cigl_fail(CIGL_ERR_USAGE, "the %d ranks run different cigl binaries or options "
                         "(configuration hashes differ); launch every rank with the same "
                         "command and build", t->comm->size);
    return CIGL_OK;
}

/* --dry-run: the resolved options and where the run would start, as JSON on stdout. */
static void print_dry_run(const Trainer *t)
{
    JsonWriter w;
    json_begin(&w, stdout, 1);
    json_object_begin(&w, NULL);
    config_write_json(&t->cfg, &w);
    json_string(&w, "resume_from", t->resume_path);
    json_int(&w, "start_step", t->start.step);
    json_int(&w, "steps_per_epoch", t->steps_per_epoch);
    json_int(&w, "total_steps", t->total_steps);
    json_int(&w, "ranks", t->comm->size);
    json_object_end(&w);
    json_end(&w);
}

/* Rank 0 prepares --out: a new run (or a replaced one) writes config.json; a resumed run
 * keeps its files and drops the epochs logged after its checkpoint. */
static int prepare_run_dir(Trainer *t)
{
    char p[1200];
    snprintf(p, sizeof p, "%s/requeue.json", t->cfg.out);
    unlink(p); /* the marker of an earlier stop: this launch writes its own or none */
    snprintf(p, sizeof p, "%s/config.json", t->cfg.out);
    if (t->resume_path[0] && access(p, F_OK) == 0)
        return run_truncate_metrics(t->cfg.out, t->start.epoch);
    int rc = run_dir_create(t->cfg.out, t->replace_run);
    if (!rc) rc = run_write_config(t);
    return rc;
}

int train_run(const Config *options, Comm *comm, int argc, char **argv)
{
    Trainer t;
    memset(&t, 0, sizeof(t));
    t.cfg = *options;
    t.comm = comm;
    t.argc = argc;
    t.argv = argv;
    stop_signals_install();
    const char *nan_at = getenv("CIGL_TEST_NAN_AT_STEP");
    t.test_nan_step = nan_at ? strtol(nan_at, NULL, 10) : 0;
    const Config *c = &t.cfg; /* the options after resolving --resume */
    const char *ntasks = getenv("SLURM_NTASKS");
    comm->timeout = options->comm_timeout;
    int rc = run_resolve_start(&t);
    comm->timeout = c->comm_timeout; /* a resumed run's options */
    if (!rc && t.finished) {
        if (comm->rank == 0)
            printf("cigl: the run in '%s' is finished (final.json exists); nothing to do\n",
                   c->out);
        trainer_free(&t);
        return CIGL_OK;
    }
    openblas_set_num_threads(c->threads);
    omp_set_num_threads(c->threads);
    if (!rc) rc = config_validate(c);
    if (!rc && ntasks && strtol(ntasks, NULL, 10) > 1 && comm->size == 1)
        rc = cigl_fail(CIGL_ERR_USAGE, "SLURM_NTASKS is %s but cigl sees 1 MPI rank: srun "
                       "started independent processes; use 'srun --mpi=pmix' or mpirun", ntasks);
    if (!rc) rc = trainer_setup(&t);
    if (!rc) rc = check_same_config(&t);
    if (!rc && c->dry_run) {
        if (comm->rank == 0) print_dry_run(&t);
        trainer_free(&t);
        return CIGL_OK;
    }
    if (!rc && comm->rank == 0) rc = run_load_checkpoint(&t);
    if (!rc && comm->rank == 0) rc = prepare_run_dir(&t);
    rc = agree_on_setup(comm, rc);
    if (!rc && comm->rank != 0) { /* past set-up, an error may be this rank's alone: say it now */
        fflush(stderr);
        cigl_fail_flush(1);
    }
    FinalResult r;
    memset(&r, 0, sizeof(r));
    /* from here every phase is collective: a failure on one rank ends them all */
    if (!rc) rc = run_share_checkpoint(&t);
    if (!rc) rc = train_loop(&t, &r);
    if (!rc) rc = finalize_model(&t);
    if (!rc) rc = evaluate_final(&t, &r);
    if (!rc && comm->rank == 0) rc = run_write_final(&t, &r);
    if (!rc && comm->rank == 0)
        printf("%s %s on %s: test accuracy %.2f%%, NLL %.4f, ECE %.4f (%ld steps, %.1f s, %d "
               "rank(s))\n", c->method, c->model, t.ds.name, 100 * r.test.accuracy, r.test.nll,
               r.test.ece, r.steps, r.seconds, comm->size);
    if (comm->size > 1) { /* an error every rank hit is said once, by rank 0 */
        double failed = rc ? 1.0 : 0.0;
        if (!comm->allreduce_double(comm, &failed, 1) && failed == comm->size && comm->rank)
            __fpurge(stderr);
    }
    trainer_free(&t);
    return rc;
}
