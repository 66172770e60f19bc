/* `cigl compact IN.h5 OUT.h5`: the model file with its prunable weights in compressed form.
 *
 * The output is a model file (format cigl-model, same version, every attribute copied, plus
 * compact = 1; /val_indices and /snapshots copied unchanged) whose parameters live in one group
 * of five packed datasets instead of one dataset per tensor (each HDF5 dataset costs about 1 KB
 * of headers: ~60% of a 95%-sparse ResNet-20's compact file if kept per tensor):
 *   /compact/row_ptr   uint32, for each prunable tensor in model order its rows + 1 CSR row
 *                      pointers (rows: output channels or features; local to the tensor)
 *   /compact/col_idx   uint16 (uint32 when some tensor has > 65535 columns), the stored
 *                      positions' columns, tensor after tensor
 *   /compact/values    float32, their weights
 *   /compact/dense     float32, the non-prunable tensors (biases, BN scales and shifts) in
 *                      model order
 *   /compact/bn_stats  float32, every BN layer's running mean and variance (model layout)
 *   /compact attribute tensors: the prunable tensors' names, comma-separated (checked on load)
 * The stored pattern is the mask M (the sparse kernels' CSR), the values the weights at M
 * (zeros included, e.g. a grown weight that has not moved yet): 6 bytes per stored weight
 * against 5 per weight (float32 + uint8 mask) in the dense file. cigl eval reads both
 * (model_load). */
#include "cigl/model_compact.h"

#include "cigl/error.h"
#include "cigl/h5io.h"
#include "cigl/sparse.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static herr_t copy_attr(hid_t loc, const char *name, const H5A_info_t *info, void *out)
{
    (void)info;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    if (a < 0) return -1;
    hid_t type = H5Aget_type(a), space = H5Aget_space(a);
    const hssize_t n = H5Sget_simple_extent_npoints(space);
    const size_t size = H5Tget_size(type);
    herr_t rc = -1;
    void *buf = n >= 0 && size ? calloc((size_t)(n ? n : 1), size) : NULL;
    if (buf && H5Aread(a, type, buf) >= 0) {
        hid_t b = H5Acreate2(*(hid_t *)out, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
        if (b >= 0) {
            rc = H5Awrite(b, type, buf) < 0 ? -1 : 0;
            H5Aclose(b);
        }
    }
    free(buf);
    H5Sclose(space);
    H5Tclose(type);
    H5Aclose(a);
    return rc;
}

static long long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) ? -1 : (long long)st.st_size;
}

/* Column indices fit uint16 when every prunable tensor has at most 65535 columns. */
static int wide_columns(const Model *m)
{
    for (int t = 0; t < m->n_tensors; t++) {
        const ParamTensor *pt = &m->tensors[t];
        if (pt->prunable && pt->len / (size_t)pt->shape[0] > 65535) return 1;
    }
    return 0;
}

static int write_packed(hid_t g, const Model *m, const uint8_t *mask)
{
    size_t nnz = 0, rp_len = 0, dense_len = 0, names = 1;
    for (int t = 0; t < m->n_tensors; t++) {
        const ParamTensor *pt = &m->tensors[t];
        if (!pt->prunable) { dense_len += pt->len; continue; }
        for (size_t i = 0; i < pt->len; i++) nnz += mask[pt->off + i] != 0;
        rp_len += (size_t)pt->shape[0] + 1;
        names += strlen(pt->name) + 1;
    }
    const int wide = wide_columns(m);
    uint32_t *rp = malloc(sizeof(uint32_t) * (rp_len ? rp_len : 1));
    void *ci = malloc((wide ? 4 : 2) * (nnz ? nnz : 1));
    float *vals = malloc(sizeof(float) * (nnz ? nnz : 1));
    float *dense = malloc(sizeof(float) * (dense_len ? dense_len : 1));
    char *list = calloc(names, 1);
    int rc = rp && ci && vals && dense && list ? CIGL_OK
                                               : cigl_fail(CIGL_ERR_RUNTIME, "out of memory compacting");
    size_t k = 0, r = 0, dn = 0;
    for (int t = 0; t < m->n_tensors && !rc; t++) {
        const ParamTensor *pt = &m->tensors[t];
        const float *w = m->params + pt->off;
        if (!pt->prunable) {
            memcpy(dense + dn, w, sizeof(float) * pt->len);
            dn += pt->len;
            continue;
        }
        if (list[0]) strcat(list, ",");
        strcat(list, pt->name);
        const size_t rows = (size_t)pt->shape[0], cols = pt->len / rows;
        const size_t k0 = k;
        for (size_t i = 0; i < rows; i++) {
            rp[r++] = (uint32_t)(k - k0);
            for (size_t j = 0; j < cols; j++) {
                if (!mask[pt->off + i * cols + j]) continue;
                if (wide) ((uint32_t *)ci)[k] = (uint32_t)j;
                else ((uint16_t *)ci)[k] = (uint16_t)j;
                vals[k++] = w[i * cols + j];
            }
        }
        rp[r++] = (uint32_t)(k - k0);
    }
    hsize_t d_rp = rp_len, d_nnz = nnz, d_dense = dense_len, d_bn = m->n_bn_stats;
    if (!rc) rc = h5_attr_string(g, "tensors", list);
    if (!rc) rc = h5_write(g, "row_ptr", H5T_NATIVE_UINT32, rp, 1, &d_rp);
    if (!rc) rc = h5_write(g, "col_idx", wide ? H5T_NATIVE_UINT32 : H5T_NATIVE_UINT16, ci, 1, &d_nnz);
    if (!rc) rc = h5_write(g, "values", H5T_NATIVE_FLOAT, vals, 1, &d_nnz);
    if (!rc) rc = h5_write(g, "dense", H5T_NATIVE_FLOAT, dense, 1, &d_dense);
    if (!rc) rc = h5_write(g, "bn_stats", H5T_NATIVE_FLOAT, m->bn_stats, 1, &d_bn);
    free(rp);
    free(ci);
    free(vals);
    free(dense);
    free(list);
    return rc;
}

int model_compact(const char *in, const char *out, long long *bytes_in, long long *bytes_out)
{
    Model m;
    MethodState ms;
    ModelFileInfo info;
    int rc = model_load(in, 1, &m, &ms, &info);
    if (rc) return rc;
    hid_t f = H5Fopen(in, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) rc = cigl_fail(CIGL_ERR_USAGE, "cannot open '%s'", in);
    if (!rc && H5Lexists(f, "compact", H5P_DEFAULT) > 0)
        rc = cigl_fail(CIGL_ERR_USAGE, "'%s' is compact already; pass a final.h5 written by "
                       "cigl train", in);
    H5Atomic a;
    memset(&a, 0, sizeof(a));
    a.file = H5I_INVALID_HID;
    if (!rc) rc = h5_atomic_create(&a, out);
    if (!rc && H5Aiterate2(f, H5_INDEX_NAME, H5_ITER_INC, NULL, copy_attr, &a.file) < 0)
        rc = cigl_fail(CIGL_ERR_RUNTIME, "copying the attributes of '%s' failed", in);
    if (!rc) rc = h5_attr_int(a.file, "compact", 1);
    static const char *const copied[] = {"val_indices", "snapshots"};
    for (int i = 0; i < 2 && !rc; i++)
        if (H5Lexists(f, copied[i], H5P_DEFAULT) > 0 &&
            H5Ocopy(f, copied[i], a.file, copied[i], H5P_DEFAULT, H5P_DEFAULT) < 0)
            rc = cigl_fail(CIGL_ERR_RUNTIME, "copying '%s' of '%s' failed", copied[i], in);
    hid_t g = rc ? -1 : H5Gcreate2(a.file, "compact", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (!rc && g < 0) rc = cigl_fail(CIGL_ERR_RUNTIME, "cannot create group /compact in '%s'", out);
    if (!rc) rc = write_packed(g, &m, ms.mask);
    if (g >= 0) H5Gclose(g);
    if (f >= 0) H5Fclose(f);
    if (rc) h5_atomic_abort(&a);
    else rc = h5_atomic_commit(&a);
    method_free(&ms);
    model_free(&m);
    free(info.val_indices);
    if (!rc) {
        *bytes_in = file_size(in);
        *bytes_out = file_size(out);
    }
    return rc;
}

int compact_main(int argc, char **argv)
{
    if (argc == 1 && (!strcmp(argv[0], "--help") || !strcmp(argv[0], "-h"))) {
        printf("usage: cigl compact IN/final.h5 OUT.h5\n\nWrites the model with its conv and "
               "linear weights in compressed form (CSR: row pointers, column indices, values)\n"
               "instead of dense weights and masks; cigl eval reads it like any model file.\n");
        return 0;
    }
    if (argc != 2)
        return cigl_fail(CIGL_ERR_USAGE, "cigl compact takes two arguments, IN.h5 and OUT.h5 "
                         "(got %d); see cigl compact --help", argc);
    long long a = 0, b = 0;
    const int rc = model_compact(argv[0], argv[1], &a, &b);
    if (!rc)
        printf("%s: %lld bytes, %.2f%% of %s (%lld bytes)\n", argv[1], b,
               a > 0 ? 100.0 * (double)b / (double)a : 0.0, argv[0], a);
    return rc;
}
