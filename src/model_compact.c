/* `cigl compact IN.h5 OUT.h5`: the model file with its prunable weights in compressed form.
 *
 * The output is a model file (format cigl-model, same version, every attribute, /bn,
 * /val_indices and /snapshots copied unchanged) plus the attribute compact = 1, in which
 *   /weights/<tensor>            holds only the non-prunable tensors (biases, BN), and
 *   /sparse/<tensor>/row_ptr     uint32 [rows + 1]  (rows: output channels or features)
 *   /sparse/<tensor>/col_idx     uint16 (or uint32 when a row has > 65535 columns) [nnz]
 *   /sparse/<tensor>/values      float32 [nnz]
 *   /sparse/<tensor> attribute shape (the dense shape)
 * replace the dense prunable tensors and /masks: the stored pattern is the mask M (CSR, the
 * format of the sparse kernels), the values are the weights at M (zeros included, e.g. a grown
 * weight that has not moved yet). 6 bytes per stored weight against 5 per weight (float32 +
 * uint8 mask) in the dense file. cigl eval reads both (model_load). */
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

static int write_sparse_tensor(hid_t g, const ParamTensor *t, const float *w, const uint8_t *mask)
{
    SparseMatrix s;
    memset(&s, 0, sizeof(s));
    const int rows = t->shape[0], cols = (int)(t->len / (size_t)t->shape[0]);
    int rc = sparse_matrix_build(&s, mask, rows, cols);
    hid_t tg = rc ? -1 : H5Gcreate2(g, t->name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (tg < 0) {
        sparse_matrix_free(&s);
        return cigl_fail(CIGL_ERR_RUNTIME, "cannot create HDF5 group 'sparse/%s'", t->name);
    }
    const size_t nnz = s.nnz;
    float *vals = malloc(sizeof(float) * (nnz ? nnz : 1));
    uint32_t *rp = malloc(sizeof(uint32_t) * ((size_t)rows + 1));
    void *ci = malloc((cols > 65535 ? 4 : 2) * (nnz ? nnz : 1));
    if (!vals || !rp || !ci) rc = cigl_fail(CIGL_ERR_RUNTIME, "out of memory compacting '%s'",
                                            t->name);
    for (int i = 0; !rc && i <= rows; i++) rp[i] = (uint32_t)s.row_ptr[i];
    for (int i = 0; !rc && i < rows; i++)
        for (int32_t k = s.row_ptr[i]; k < s.row_ptr[i + 1]; k++) {
            vals[k] = w[(size_t)i * cols + s.col[k]];
            if (cols > 65535) ((uint32_t *)ci)[k] = (uint32_t)s.col[k];
            else ((uint16_t *)ci)[k] = (uint16_t)s.col[k];
        }
    hsize_t d = (hsize_t)rows + 1, dn = (hsize_t)nnz;
    if (!rc) rc = h5_attr_ints(tg, "shape", t->shape, t->ndim);
    if (!rc) rc = h5_write(tg, "row_ptr", H5T_NATIVE_UINT32, rp, 1, &d);
    if (!rc) rc = h5_write(tg, "col_idx", cols > 65535 ? H5T_NATIVE_UINT32 : H5T_NATIVE_UINT16,
                           ci, 1, &dn);
    if (!rc) rc = h5_write(tg, "values", H5T_NATIVE_FLOAT, vals, 1, &dn);
    H5Gclose(tg);
    free(vals);
    free(rp);
    free(ci);
    sparse_matrix_free(&s);
    return rc;
}

static long long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) ? -1 : (long long)st.st_size;
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
    if (!rc && H5Lexists(f, "sparse", H5P_DEFAULT) > 0)
        rc = cigl_fail(CIGL_ERR_USAGE, "'%s' is compact already; pass a final.h5 written by "
                       "cigl train", in);
    H5Atomic a;
    memset(&a, 0, sizeof(a));
    a.file = H5I_INVALID_HID;
    if (!rc) rc = h5_atomic_create(&a, out);
    if (!rc && H5Aiterate2(f, H5_INDEX_NAME, H5_ITER_INC, NULL, copy_attr, &a.file) < 0)
        rc = cigl_fail(CIGL_ERR_RUNTIME, "copying the attributes of '%s' failed", in);
    if (!rc) rc = h5_attr_int(a.file, "compact", 1);
    static const char *const copied[] = {"bn", "val_indices", "snapshots"};
    for (int i = 0; i < 3 && !rc; i++)
        if (H5Lexists(f, copied[i], H5P_DEFAULT) > 0 &&
            H5Ocopy(f, copied[i], a.file, copied[i], H5P_DEFAULT, H5P_DEFAULT) < 0)
            rc = cigl_fail(CIGL_ERR_RUNTIME, "copying '%s' of '%s' failed", copied[i], in);
    hid_t gw = rc ? -1 : H5Gcreate2(a.file, "weights", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hid_t gs = rc ? -1 : H5Gcreate2(a.file, "sparse", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (!rc && (gw < 0 || gs < 0)) rc = cigl_fail(CIGL_ERR_RUNTIME, "cannot create groups in '%s'", out);
    for (int t = 0; t < m.n_tensors && !rc; t++) {
        const ParamTensor *pt = &m.tensors[t];
        if (pt->prunable) {
            rc = write_sparse_tensor(gs, pt, m.params + pt->off, ms.mask + pt->off);
        } else {
            hsize_t dims[4];
            for (int d = 0; d < pt->ndim; d++) dims[d] = (hsize_t)pt->shape[d];
            rc = h5_write(gw, pt->name, H5T_NATIVE_FLOAT, m.params + pt->off, pt->ndim, dims);
        }
    }
    if (gw >= 0) H5Gclose(gw);
    if (gs >= 0) H5Gclose(gs);
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

int model_compact_read(hid_t f, const Model *m, float *params, uint8_t *mask, const char *path)
{
    hid_t g = H5Gopen2(f, "sparse", H5P_DEFAULT);
    if (g < 0) return cigl_fail(CIGL_ERR_USAGE, "model file '%s': group 'sparse' unreadable", path);
    int rc = CIGL_OK;
    for (int t = 0; t < m->n_tensors && !rc; t++) {
        const ParamTensor *pt = &m->tensors[t];
        if (!pt->prunable) continue;
        const int rows = pt->shape[0], cols = (int)(pt->len / (size_t)pt->shape[0]);
        hid_t tg = H5Gopen2(g, pt->name, H5P_DEFAULT);
        int shape[4] = {0, 0, 0, 0};
        const long long nnz = tg < 0 ? -1 : h5_dataset_length(tg, "values");
        uint32_t *rp = malloc(sizeof(uint32_t) * ((size_t)rows + 1));
        uint32_t *ci = malloc(sizeof(uint32_t) * (size_t)(nnz > 0 ? nnz : 1));
        float *vals = malloc(sizeof(float) * (size_t)(nnz > 0 ? nnz : 1));
        const hsize_t d = (hsize_t)rows + 1, dn = (hsize_t)(nnz > 0 ? nnz : 0);
        int ok = tg >= 0 && nnz >= 0 && nnz <= (long long)pt->len && rp && ci && vals &&
                 !h5_read_attr_ints(tg, "shape", shape, pt->ndim) &&
                 !h5_read_exact(tg, "row_ptr", H5T_NATIVE_UINT32, rp, 1, &d) &&
                 !h5_read_exact(tg, "col_idx", H5T_NATIVE_UINT32, ci, 1, &dn) &&
                 !h5_read_exact(tg, "values", H5T_NATIVE_FLOAT, vals, 1, &dn);
        for (int i = 0; ok && i < pt->ndim; i++) ok = shape[i] == pt->shape[i];
        ok = ok && rp[0] == 0 && rp[rows] == (uint32_t)nnz;
        memset(params + pt->off, 0, sizeof(float) * pt->len);
        memset(mask + pt->off, 0, pt->len);
        for (int i = 0; ok && i < rows; i++) {
            ok = rp[i] <= rp[i + 1];
            for (uint32_t k = rp[i]; ok && k < rp[i + 1]; k++) {
                ok = ci[k] < (uint32_t)cols && (k == rp[i] || ci[k] > ci[k - 1]);
                if (!ok) break;
                params[pt->off + (size_t)i * cols + ci[k]] = vals[k];
                mask[pt->off + (size_t)i * cols + ci[k]] = 1;
            }
        }
        if (!ok)
            rc = cigl_fail(CIGL_ERR_USAGE, "model file '%s': compact tensor 'sparse/%s' is "
                           "missing, has another shape or an invalid pattern; compact a final.h5 "
                           "of this model again", path, pt->name);
        if (tg >= 0) H5Gclose(tg);
        free(rp);
        free(ci);
        free(vals);
    }
    H5Gclose(g);
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
