/* Reading a model file back (cigl eval): validated before anything is trusted. */
#include "cigl/error.h"
#include "cigl/h5io.h"
#include "cigl/model_io.h"
#include "model_compact_read.h"

#include <stdlib.h>
#include <string.h>

static int bad_model_file(const char *path, const char *what)
{
    return cigl_fail(CIGL_ERR_USAGE, "model file '%s': %s; pass the final.h5 of a 'cigl train' "
                     "run (format cigl-model version %d)", path, what, MODEL_FORMAT_VERSION);
}

static int read_header(hid_t f, const char *path, ModelFileInfo *info)
{
    char format[32];
    long long version, v;
    if (h5_read_attr_string(f, "format", format, sizeof(format)) || strcmp(format, "cigl-model"))
        return bad_model_file(path, "not a cigl model file (attribute 'format' is not "
                              "\"cigl-model\")");
    if (h5_read_attr_ll(f, "format_version", &version))
        return bad_model_file(path, "attribute 'format_version' missing");
    if (version != MODEL_FORMAT_VERSION) {
        char what[96];
        snprintf(what, sizeof(what), "format version %lld is not supported", version);
        return bad_model_file(path, what);
    }
    Config *c = &info->cfg;
    config_defaults(c);
    int dims[3];
    if (h5_read_attr_string(f, "model", c->model, sizeof(c->model)) ||
        h5_read_attr_ll(f, "classes", &v) || h5_read_attr_ints(f, "input_shape", dims, 3) ||
        h5_read_attr_u64(f, "dataset_hash", &info->dataset_hash))
        return bad_model_file(path, "model, classes, input_shape or dataset_hash missing");
    info->classes = (int)v;
    info->input = (Shape){dims[0], dims[1], dims[2]};
    if (v < 2 || v > 100000 || dims[0] < 1 || dims[1] < 1 || dims[2] < 1 || dims[0] > 4 ||
        dims[1] > 4096 || dims[2] > 4096)
        return bad_model_file(path, "classes or input_shape out of range");
    /* method attributes are absent in dense-only files of early versions: keep defaults */
    if (h5_read_attr_string(f, "method", c->method, sizeof(c->method)))
        snprintf(c->method, sizeof(c->method), "dense");
    uint64_t seed = 0;
    if (!h5_read_attr_u64(f, "seed", &seed)) c->seed = (long long)seed;
    if (!h5_read_attr_ll(f, "total_steps", &v)) info->total_steps = (long)v;
    h5_read_attr_double(f, "sparsity", &c->sparsity);
    h5_read_attr_string(f, "distribution", c->distribution, sizeof(c->distribution));
    h5_read_attr_double(f, "random_mask_rate", &c->random_mask_rate);
    h5_read_attr_double(f, "dropout_rate", &c->dropout_rate);
    if (!h5_read_attr_ll(f, "rescale_kept", &v)) c->rescale_kept = (int)v;
    if (!h5_read_attr_ll(f, "no_averaging", &v)) c->no_averaging = (int)v;
    if (!h5_read_attr_ll(f, "mc_samples", &v)) c->mc_samples = (int)v;
    if (h5_read_attr_string(f, "kernels", info->kernels, sizeof(info->kernels)))
        info->kernels[0] = 0;
    if (!method_find(c->method)) return bad_model_file(path, "unknown method");
    return CIGL_OK;
}

/* Every parameter tensor (or prunable tensor's mask) of `group` into buf at its offset. */
static int read_tensors(hid_t loc, const char *group, const Model *m, hid_t type, void *buf,
                        size_t elem, int masks_only, const char *path)
{
    hid_t g = H5Gopen2(loc, group, H5P_DEFAULT);
    if (g < 0) return bad_model_file(path, "a weights or masks group is missing");
    int rc = CIGL_OK;
    for (int t = 0; t < m->n_tensors && !rc; t++) {
        const ParamTensor *pt = &m->tensors[t];
        if (masks_only && !pt->prunable) continue;
        hsize_t dims[4];
        for (int d = 0; d < pt->ndim; d++) dims[d] = (hsize_t)pt->shape[d];
        if (h5_read_exact(g, pt->name, type, (char *)buf + pt->off * elem, pt->ndim, dims)) {
            char what[160];
            snprintf(what, sizeof(what), "tensor '%s/%s' is missing or has another shape",
                     group, pt->name);
            rc = bad_model_file(path, what);
        }
    }
    H5Gclose(g);
    return rc;
}

static int read_bn(hid_t loc, const Model *m, float *bn, const char *path)
{
    hid_t g = H5Gopen2(loc, "bn", H5P_DEFAULT);
    if (g < 0) return bad_model_file(path, "group 'bn' is missing");
    int rc = CIGL_OK;
    for (int i = 0; i < m->n_layers && !rc; i++) {
        const Layer *l = &m->layers[i];
        if (l->kind != LAYER_BATCHNORM) continue;
        const hsize_t c = (hsize_t)l->x.c;
        char a[64], b[64];
        snprintf(a, sizeof(a), "%s.running_mean", l->name);
        snprintf(b, sizeof(b), "%s.running_var", l->name);
        if (h5_read_exact(g, a, H5T_NATIVE_FLOAT, bn + l->stats_off, 1, &c) ||
            h5_read_exact(g, b, H5T_NATIVE_FLOAT, bn + l->stats_off + c, 1, &c))
            rc = bad_model_file(path, "BN statistics are missing or have another shape");
    }
    H5Gclose(g);
    return rc;
}

static int read_snapshots(hid_t f, const Model *m, MethodState *ms, const char *path)
{
    hid_t g = H5Gopen2(f, "snapshots", H5P_DEFAULT);
    if (g < 0) return bad_model_file(path, "--no-averaging model without snapshots");
    long long count = 0;
    int rc = h5_read_attr_ll(g, "count", &count) || count < 1 || count > 100000
                 ? bad_model_file(path, "snapshot count missing or out of range") : CIGL_OK;
    if (!rc) {
        ms->snapshots = cigl_malloc(sizeof(float) * m->n_params * (size_t)count, "snapshots");
        ms->snapshot_bn = cigl_malloc(sizeof(float) * (m->n_bn_stats + 1) * (size_t)count,
                                      "snapshot BN statistics");
        if (!ms->snapshots || !ms->snapshot_bn) rc = CIGL_ERR_RUNTIME;
    }
    for (long long k = 0; k < count && !rc; k++) {
        char name[32];
        snprintf(name, sizeof(name), "%lld", k);
        hid_t sg = H5Gopen2(g, name, H5P_DEFAULT);
        if (sg < 0) { rc = bad_model_file(path, "a snapshot group is missing"); break; }
        rc = read_tensors(sg, "weights", m, H5T_NATIVE_FLOAT,
                          ms->snapshots + (size_t)k * m->n_params, sizeof(float), 0, path);
        if (!rc) rc = read_bn(sg, m, ms->snapshot_bn + (size_t)k * (m->n_bn_stats + 1), path);
        H5Gclose(sg);
    }
    if (!rc) ms->n_snapshots = ms->snapshot_cap = (long)count;
    H5Gclose(g);
    return rc;
}

static int load_open(hid_t f, const char *path, int max_batch, Model *m, MethodState *ms,
                     ModelFileInfo *info)
{
    int rc = read_header(f, path, info);
    if (rc) return rc;
    rc = model_build(m, info->cfg.model, info->input, info->classes, max_batch, 0);
    if (rc) return rc;
    const long steps = info->total_steps > 0 ? info->total_steps : 1;
    rc = method_init(ms, &info->cfg, m, steps, steps);
    if (rc) return rc;
    const int compact = H5Lexists(f, "compact", H5P_DEFAULT) > 0; /* cigl compact's output */
    if (compact) {
        rc = model_compact_read(f, m, m->params, m->bn_stats, ms->mask, path);
    } else {
        rc = read_tensors(f, "weights", m, H5T_NATIVE_FLOAT, m->params, sizeof(float), 0, path);
        if (!rc) rc = read_bn(f, m, m->bn_stats, path);
        if (!rc && ms->ops->sparse)
            rc = read_tensors(f, "masks", m, H5T_NATIVE_UINT8, ms->mask, 1, 1, path);
    }
    if (!rc && ms->ops->averaging && info->cfg.no_averaging) rc = read_snapshots(f, m, ms, path);
    const long long n_val = h5_dataset_length(f, "val_indices");
    if (!rc && n_val > 0) {
        info->val_indices = cigl_malloc(sizeof(uint32_t) * (size_t)n_val, "validation indices");
        const hsize_t d = (hsize_t)n_val;
        if (!info->val_indices ||
            h5_read_exact(f, "val_indices", H5T_NATIVE_UINT32, info->val_indices, 1, &d))
            rc = bad_model_file(path, "val_indices unreadable");
        else
            info->n_val = (size_t)n_val;
    }
    return rc;
}

int model_load(const char *path, int max_batch, Model *m, MethodState *ms, ModelFileInfo *info)
{
    memset(info, 0, sizeof(*info));
    memset(m, 0, sizeof(*m));
    memset(ms, 0, sizeof(*ms));
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    FILE *probe = fopen(path, "rb");
    if (!probe) return bad_model_file(path, "no such file");
    fclose(probe);
    if (H5Fis_hdf5(path) <= 0) return bad_model_file(path, "not an HDF5 file");
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return bad_model_file(path, "cannot be opened");
    const int rc = load_open(f, path, max_batch, m, ms, info);
    H5Fclose(f);
    if (rc) {
        method_free(ms);
        model_free(m);
        free(info->val_indices);
        info->val_indices = NULL;
    }
    return rc;
}
