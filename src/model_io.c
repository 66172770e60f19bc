#include "cigl/model_io.h"

#include "cigl/error.h"
#include "cigl/h5io.h"

#include <stdio.h>

static int write_tensors(const Model *m, const float *params, hid_t file)
{
    hid_t g = H5Gcreate2(file, "weights", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) return cigl_fail(CIGL_ERR_RUNTIME, "cannot create group /weights");
    int rc = CIGL_OK;
    for (int t = 0; t < m->n_tensors && !rc; t++) {
        const ParamTensor *pt = &m->tensors[t];
        hsize_t dims[4];
        for (int d = 0; d < pt->ndim; d++) dims[d] = (hsize_t)pt->shape[d];
        rc = h5_write(g, pt->name, H5T_NATIVE_FLOAT, params + pt->off, pt->ndim, dims);
    }
    H5Gclose(g);
    return rc;
}

static int write_bn_stats(const Model *m, hid_t file)
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
        rc = h5_write(g, name, H5T_NATIVE_FLOAT, m->bn_stats + l->stats_off, 1, &c);
        snprintf(name, sizeof(name), "%s.running_var", l->name);
        if (!rc) rc = h5_write(g, name, H5T_NATIVE_FLOAT, m->bn_stats + l->stats_off + c, 1, &c);
    }
    H5Gclose(g);
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
    if (!rc) rc = write_tensors(m, params, a.file);
    if (!rc) rc = write_bn_stats(m, a.file);
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
