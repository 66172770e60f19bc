/* Reads the compact model files that src/io/model_compact.c writes (the format is described
 * there); model_load calls it for files with compact = 1. */
#include "model_compact_read.h"

#include "cigl/error.h"
#include "cigl/h5io.h"

#include <stdlib.h>
#include <string.h>

static int bad_compact(const char *path, const char *what)
{
    return cigl_fail(CIGL_ERR_USAGE, "model file '%s': compact data %s; compact a final.h5 of "
                     "this model again with cigl compact", path, what);
}

int model_compact_read(hid_t f, const Model *m, float *params, float *bn_stats, uint8_t *mask,
                       const char *path)
{
    hid_t g = H5Gopen2(f, "compact", H5P_DEFAULT);
    if (g < 0) return bad_compact(path, "unreadable (group /compact)");
    size_t rp_len = 0, dense_len = 0, names = 1;
    for (int t = 0; t < m->n_tensors; t++) {
        const ParamTensor *pt = &m->tensors[t];
        if (pt->prunable) {
            rp_len += (size_t)pt->shape[0] + 1;
            names += strlen(pt->name) + 1;
        } else {
            dense_len += pt->len;
        }
    }
    const long long nnz = h5_dataset_length(g, "values");
    char *list = calloc(names, 1), *got = calloc(names + 1, 1);
    uint32_t *rp = malloc(sizeof(uint32_t) * (rp_len ? rp_len : 1));
    uint32_t *ci = malloc(sizeof(uint32_t) * (size_t)(nnz > 0 ? nnz : 1));
    float *vals = malloc(sizeof(float) * (size_t)(nnz > 0 ? nnz : 1));
    float *dense = malloc(sizeof(float) * (dense_len ? dense_len : 1));
    int rc = CIGL_OK;
    if (!list || !got || !rp || !ci || !vals || !dense)
        rc = cigl_fail(CIGL_ERR_RUNTIME, "out of memory");
    for (int t = 0; t < m->n_tensors && !rc; t++)
        if (m->tensors[t].prunable) {
            if (list[0]) strcat(list, ",");
            strcat(list, m->tensors[t].name);
        }
    const hsize_t d_rp = rp_len, d_nnz = (hsize_t)(nnz > 0 ? nnz : 0), d_dense = dense_len,
                  d_bn = m->n_bn_stats;
    if (!rc && (h5_read_attr_string(g, "tensors", got, names + 1) || strcmp(got, list)))
        rc = bad_compact(path, "names other tensors than this model's");
    if (!rc && (nnz < 0 || h5_read_exact(g, "row_ptr", H5T_NATIVE_UINT32, rp, 1, &d_rp) ||
                h5_read_exact(g, "col_idx", H5T_NATIVE_UINT32, ci, 1, &d_nnz) ||
                h5_read_exact(g, "values", H5T_NATIVE_FLOAT, vals, 1, &d_nnz) ||
                h5_read_exact(g, "dense", H5T_NATIVE_FLOAT, dense, 1, &d_dense) ||
                (d_bn && h5_read_exact(g, "bn_stats", H5T_NATIVE_FLOAT, bn_stats, 1, &d_bn))))
        rc = bad_compact(path, "is missing or has other sizes than this model's");
    size_t k = 0, r = 0, dn = 0;
    for (int t = 0; t < m->n_tensors && !rc; t++) {
        const ParamTensor *pt = &m->tensors[t];
        if (!pt->prunable) {
            memcpy(params + pt->off, dense + dn, sizeof(float) * pt->len);
            dn += pt->len;
            continue;
        }
        const size_t rows = (size_t)pt->shape[0], cols = pt->len / rows;
        memset(params + pt->off, 0, sizeof(float) * pt->len);
        memset(mask + pt->off, 0, pt->len);
        int ok = rp[r] == 0;
        for (size_t i = 0; ok && i < rows; i++) {
            const uint32_t a = rp[r + i], b = rp[r + i + 1];
            ok = a <= b && k + b <= (size_t)nnz;
            for (uint32_t e = a; ok && e < b; e++) {
                const uint32_t j = ci[k + e];
                ok = j < cols && (e == a || j > ci[k + e - 1]);
                if (!ok) break;
                params[pt->off + i * cols + j] = vals[k + e];
                mask[pt->off + i * cols + j] = 1;
            }
        }
        if (!ok) {
            rc = bad_compact(path, "has an invalid CSR pattern");
            break;
        }
        k += rp[r + rows];
        r += rows + 1;
    }
    if (!rc && k != (size_t)nnz)
        rc = bad_compact(path, "has more values than its row pointers say");
    H5Gclose(g);
    free(list);
    free(got);
    free(rp);
    free(ci);
    free(vals);
    free(dense);
    return rc;
}
