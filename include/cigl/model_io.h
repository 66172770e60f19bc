/* The model file (final.h5): what a trained model needs to be evaluated again.
 *   attributes: format = "cigl-model", format_version = 1, model, classes, input_shape[3],
 *               dataset_hash, config (the run's config.json text)
 *   /weights/<tensor name>      float32, the tensor's shape (e.g. layer1.0.conv1.weight)
 *   /bn/<layer name>.running_mean, .running_var   float32 [C]
 *   /masks/<tensor name>        uint8, 1 = active (prunable tensors of sparse methods)
 *   /snapshots/<k>/weights/..., /snapshots/<k>/bn/...   CigL --no-averaging: every snapshot
 *   /val_indices                uint32, training-file indices held out for validation */
#ifndef CIGL_MODEL_IO_H
#define CIGL_MODEL_IO_H
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
} ModelFileExtras;

int model_save(const Model *m, const float *params, const char *path, const ModelFileExtras *x);

#endif
