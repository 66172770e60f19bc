#include "cigl/model_io.h"

#include "cigl/error.h"
#include "cigl/h5io.h"
#include "cigl/sparse.h"

#include <stdio.h>

/* Writes every parameter tensor (or, with `mask`, the prunable tensors' masks as uint8) into
 * group `group` of `loc`, each with its shape. */
static int write_tensors(const Model *m, const float *params, const uint8_t *mask, hid_t loc,
                         const char *group)
{
    hid_t g = H5Gcreate2(loc, group, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) return cigl_fail(CIGL_ERR_RUNTIME, "cannot create HDF5 group '%s'", group);
    int rc = CIGL_OK;
    for (int t = 0; t < m->n_tensors && !rc; t++) {
        const ParamTensor *pt = &m->tensors[t];
        hsize_t dims[4];
        for (int d = 0; d < pt->ndim; d++) dims[d] = (hsize_t)pt->shape[d];
        if (!mask)
            rc = h5_write(g, pt->name, H5T_NATIVE_FLOAT, params + pt->off, pt->ndim, dims);
        else if (pt->prunable)
            rc = h5_write(g, pt->name, H5T_NATIVE_UINT8, mask + pt->off, pt->ndim, dims);
    }
    H5Gclose(g);
    return rc;
}

static int write_bn_stats(const Model *m, const float *bn_stats, hid_t file)
{
    hid_t g = H5Gcreate2(file, "bn", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) return cigl_fail(CIGL_ERR_RUNTIME, "cannot create group /bn");
    int rc = CIGL_OK;
    for (int i = 0; i < m->n_layers && !rc; i++) {
        const Layer *l = &m->layers[i];
        if (l->kind != LAYER_BATCHNORM) continue;
        hsize_t c = (hsize_t)l->x.c;
        char name[64];
        snprintf(name, sizeof(name), "%s.running_mean", l->name);
        rc = h5_write(g, name, H5T_NATIVE_FLOAT, bn_stats + l->stats_off, 1, &c);
        snprintf(name, sizeof(name), "%s.running_var", l->name);
        if (!rc) rc = h5_write(g, name, H5T_NATIVE_FLOAT, bn_stats + l->stats_off + c, 1, &c);
    }
    H5Gclose(g);
    return rc;
}

static int write_snapshots(const Model *m, const ModelFileExtras *x, hid_t file)
{
    hid_t g = H5Gcreate2(file, "snapshots", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) return cigl_fail(CIGL_ERR_RUNTIME, "cannot create HDF5 group 'snapshots'");
    int rc = h5_attr_int(g, "count", x->n_snapshots);
    for (long k = 0; k < x->n_snapshots && !rc; k++) {
        char name[32];
        snprintf(name, sizeof(name), "%ld", k);
        hid_t sg = H5Gcreate2(g, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (sg < 0) { rc = CIGL_ERR_RUNTIME; break; }
        rc = write_tensors(m, x->snapshots + (size_t)k * m->n_params, NULL, sg, "weights");
        if (!rc) rc = write_bn_stats(m, x->snapshot_bn + (size_t)k * (m->n_bn_stats + 1), sg);
        H5Gclose(sg);
    }
    H5Gclose(g);
    return rc;
}

static int write_method_attrs(hid_t file, const Config *c, long total_steps)
{
    int rc = h5_attr_u64(file, "seed", (uint64_t)c->seed);
    if (!rc) rc = h5_attr_int(file, "total_steps", total_steps);
    if (!rc) rc = h5_attr_double(file, "sparsity", c->sparsity);
    if (!rc) rc = h5_attr_string(file, "distribution", c->distribution);
    if (!rc) rc = h5_attr_double(file, "random_mask_rate", c->random_mask_rate);
    if (!rc) rc = h5_attr_int(file, "rescale_kept", c->rescale_kept);
    if (!rc) rc = h5_attr_int(file, "no_averaging", c->no_averaging);
    if (!rc) rc = h5_attr_double(file, "dropout_rate", c->dropout_rate);
    if (!rc) rc = h5_attr_int(file, "mc_samples", c->mc_samples);
    return rc;
}

int model_save(const Model *m, const float *params, const char *path, const ModelFileExtras *x)
{
    H5Atomic a;
    int rc = h5_atomic_create(&a, path);
    if (rc) return rc;
    const int shape[3] = {m->input.c, m->input.h, m->input.w};
    rc = h5_attr_string(a.file, "format", "cigl-model");
    if (!rc) rc = h5_attr_int(a.file, "format_version", MODEL_FORMAT_VERSION);
    if (!rc) rc = h5_attr_string(a.file, "model", m->name);
    if (!rc) rc = h5_attr_int(a.file, "classes", m->classes);
    if (!rc) rc = h5_attr_ints(a.file, "input_shape", shape, 3);
    if (!rc && x) rc = h5_attr_u64(a.file, "dataset_hash", x->dataset_hash);
    if (!rc && x && x->config_json) rc = h5_attr_string(a.file, "config", x->config_json);
    if (!rc && x && x->method) rc = h5_attr_string(a.file, "method", x->method);
    if (!rc && x && x->cfg) rc = write_method_attrs(a.file, x->cfg, x->total_steps);
    char kernels[1024]; /* the conv/linear kernels the model ran with, for cigl eval */
    if (!rc && sparse_choice_format(m, kernels, sizeof(kernels)) >= 0)
        rc = h5_attr_string(a.file, "kernels", kernels);
    if (!rc) rc = write_tensors(m, params, NULL, a.file, "weights");
    if (!rc) rc = write_bn_stats(m, m->bn_stats, a.file);
    if (!rc && x && x->mask) rc = write_tensors(m, NULL, x->mask, a.file, "masks");
    if (!rc && x && x->n_snapshots) rc = write_snapshots(m, x, a.file);
    if (!rc && x && x->val_indices) {
        hsize_t n = x->n_val;
        rc = h5_write(a.file, "val_indices", H5T_NATIVE_UINT32, x->val_indices, 1, &n);
    }
    if (rc) {
        h5_atomic_abort(&a);
        return rc;
    }
    return h5_atomic_commit(&a);
}
