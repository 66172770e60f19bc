/* The model file (final.h5): what a trained model needs to be evaluated again.
 *   attributes: format = "cigl-model", format_version = 1, model, classes, input_shape[3],
 *               dataset_hash, config (the run's config.json text), method, seed, total_steps,
 *               and the method options a predictor needs (sparsity, distribution,
 *               random_mask_rate, rescale_kept, no_averaging, dropout_rate, mc_samples),
 *               kernels (the conv/linear kernels per layer, e.g. "sparse,sparse,dense")
 *   /weights/<tensor name>      float32, the tensor's shape (e.g. layer1.0.conv1.weight)
 *   /bn/<layer name>.running_mean, .running_var   float32 [C]
 *   /masks/<tensor name>        uint8, 1 = active (prunable tensors of sparse methods)
 *   /snapshots/<k>/weights/..., /snapshots/<k>/bn/...   CigL --no-averaging: every snapshot
 *   /val_indices                uint32, training-file indices held out for validation */
#ifndef CIGL_MODEL_IO_H
#define CIGL_MODEL_IO_H
#include "cigl/method.h"
#include "cigl/model.h"

#define MODEL_FORMAT_VERSION 1

typedef struct {
    const char *config_json;
    uint64_t dataset_hash;
    const uint32_t *val_indices;
    size_t n_val;
    const uint8_t *mask;            /* NULL: dense model */
    const char *method;
    long n_snapshots;               /* snapshots kept for a prediction ensemble */
    const float *snapshots;         /* n_snapshots x n_params */
    const float *snapshot_bn;       /* n_snapshots x (n_bn_stats + 1) */
    const Config *cfg;              /* seed and method options */
    long total_steps;
} ModelFileExtras;

/* What model_load reads besides the weights. */
typedef struct {
    Config cfg;             /* model, method, seed and method options as trained */
    int classes;
    Shape input;
    uint64_t dataset_hash;
    long total_steps;
    uint32_t *val_indices;  /* owned; free() it */
    size_t n_val;
    char kernels[1024];     /* per-layer kernel choice recorded by training ("" if none) */
} ModelFileInfo;

/* Opens a model file, validates format and version, builds the model for batches up to
 * max_batch, loads weights, BN statistics, masks and snapshots into m and the method state
 * (so the method's predictor works: MC dropout, snapshot ensembles). One-line errors with
 * CIGL_ERR_USAGE on a missing, foreign or inconsistent file. */
int model_load(const char *path, int max_batch, Model *m, MethodState *ms, ModelFileInfo *info);

int model_save(const Model *m, const float *params, const char *path, const ModelFileExtras *x);

#endif
