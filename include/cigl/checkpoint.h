/* Checkpoints: one HDF5 file holding everything a run needs to continue exactly as if it had
 * never stopped (parameters, BN statistics, optimiser state, the method's whole state, the
 * position in the data order and the epoch's running sums), written by rank 0 atomically
 * (temporary name, fsync, rename, fsync of the directory) and verified by a checksum over its
 * contents when read. Layout (format "cigl-checkpoint", version 1; docs/checkpoints.md):
 *   attributes  format, format_version, model, method, kernels, config (the options as JSON),
 *               dataset_hash, step, epoch, in_epoch, epoch_seen, epoch_loss, epoch_hits,
 *               skipped_steps, epoch_skipped,
 *               ranks, accumulate, train_seconds, n_params, n_bn_stats, n_tensors,
 *               n_snapshots (stored), n_averaged, has_avg,
 *               updates_done, replaced_sum, dense_grad_steps, created, checksum
 *   /params, /velocity          float32 [n_params]     parameters, SGD momentum buffer
 *   /bn_stats                   float32 [n_bn_stats]   BN running means and variances
 *   /method/mask, /active, /ever uint8 [n_params]      M, this step's M & Z, ever active
 *   /method/counts              int64 [n_tensors]      active weights per tensor
 *   /method/avg                 float32 [n_params]     CigL's running mean (averaging only)
 *   /method/snapshots           float32 [k, n_params]  --no-averaging snapshots, and
 *   /method/snapshot_bn         float32 [k, n_bn_stats + 1] their BN statistics
 *   /layout/names, /offsets, /lengths   where each named tensor lies in /params */
#ifndef CIGL_CHECKPOINT_H
#define CIGL_CHECKPOINT_H
#include "cigl/method.h"
#include "cigl/model.h"
#include "cigl/optim.h"

#define CHECKPOINT_FORMAT_VERSION 1

/* Where the run stands; the rest of the state is in the Model, Sgd and MethodState. */
typedef struct {
    long step;              /* optimisation steps done */
    int epoch;              /* 0-based epoch in progress */
    long in_epoch;          /* steps of that epoch done */
    long epoch_seen;        /* samples of that epoch seen, over all ranks */
    double epoch_loss;      /* summed training loss of those samples, over all ranks */
    double epoch_hits;      /* correctly classified ones */
    long skipped_steps;     /* steps skipped for non-finite values (--on-nonfinite skip) ... */
    long epoch_skipped;     /* ... of them in that epoch */
    int ranks, accumulate;  /* how the run that wrote it was split */
    double train_seconds;   /* training time so far */
    uint64_t dataset_hash;
    char model[32], method[16];
    char kernels[512];      /* per-layer kernel choices; "dense" before sparse kernels */
} CheckpointInfo;

/* Writes `path` atomically; a failure (disk full, ...) leaves any previous file untouched and
 * prints one line. `config_json` is the run's options as a JSON object. */
int checkpoint_write(const char *path, const CheckpointInfo *info, const char *config_json,
                     const Model *m, const Sgd *opt, const MethodState *ms);

/* Reads the header only (format, version, progress, options): for resolving the options of a
 * resumed run before the model exists. *config_json is malloc'ed (free it). One-line error and
 * CIGL_ERR_USAGE for a missing, foreign, truncated or newer-format file. */
int checkpoint_read_info(const char *path, CheckpointInfo *info, char **config_json);

/* Reads the whole state into an already built model, optimiser and method state. Everything
 * is read into temporary buffers and verified (model and method names, tensor layout, sizes,
 * checksum) before anything live is changed: a bad file is refused and never half-loaded. */
int checkpoint_read_state(const char *path, CheckpointInfo *info, Model *m, Sgd *opt,
                          MethodState *ms);

/* Reads the whole file and checks its checksum (no model needed). */
int checkpoint_verify(const char *path);

/* File name of the checkpoint after `step` steps: "step-000001234.h5". */
void checkpoint_name(char *buf, size_t cap, long step);

/* The newest checkpoint in `dir` that verifies (by the step in its name; temporary files
 * ignored). Returns 1 and the path when found, 0 when there is none. Files that fail to
 * verify are skipped, each with one line naming it and why. */
int checkpoint_find_latest(const char *dir, char *path, size_t cap);

/* Deletes all but the `keep` newest checkpoints in `dir` (keep >= 1). */
void checkpoint_rotate(const char *dir, int keep);

#endif
