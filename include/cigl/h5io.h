/* Small HDF5 helpers: atomic file creation (temporary name, fsync, rename, fsync of the
 * directory: a crash never leaves a half-written file under the final name), attributes and
 * n-dimensional datasets. All return CIGL_OK or an error after printing one line. */
#ifndef CIGL_H5IO_H
#define CIGL_H5IO_H
#include <hdf5.h>

/* The longest file path cigl builds or keeps (Linux's PATH_MAX), and the room for the suffix of
 * a temporary file beside it (".tmp.<pid>"). */
#define CIGL_PATH_MAX 4096
#define CIGL_TMP_SUFFIX_MAX 32
#include <stddef.h>
#include <stdint.h>

typedef struct {
    hid_t file;
    char path[CIGL_PATH_MAX], tmp[CIGL_PATH_MAX + CIGL_TMP_SUFFIX_MAX];
} H5Atomic;

int h5_atomic_create(H5Atomic *a, const char *path);
/* Closes, fsyncs and renames into place; on any failure removes the temporary file. */
int h5_atomic_commit(H5Atomic *a);
void h5_atomic_abort(H5Atomic *a);

int h5_attr_string(hid_t loc, const char *name, const char *value);
int h5_attr_int(hid_t loc, const char *name, long long value);
int h5_attr_ints(hid_t loc, const char *name, const int *values, int n);
int h5_attr_u64(hid_t loc, const char *name, uint64_t value);
int h5_attr_double(hid_t loc, const char *name, double value);

/* Writes `data` (type: H5T_NATIVE_FLOAT, H5T_NATIVE_INT32, ...) with the given shape. */
int h5_write(hid_t loc, const char *name, hid_t type, const void *data, int ndim,
             const hsize_t *dims);

/* fsync a path (file or directory). */
int fsync_path(const char *path);


/* Readers: return 0 on success, -1 when the attribute or dataset is missing or does not have
 * the expected type class and shape (they print nothing: the caller names the file and fix). */
int h5_read_attr_string(hid_t loc, const char *name, char *buf, size_t cap);
int h5_read_attr_ll(hid_t loc, const char *name, long long *out);
int h5_read_attr_u64(hid_t loc, const char *name, uint64_t *out);
int h5_read_attr_double(hid_t loc, const char *name, double *out);
int h5_read_attr_doubles(hid_t loc, const char *name, double *out, int n);
/* Elements of attribute `name` when its type is of class `cls`; -1 otherwise or when absent. */
long long h5_attr_count(hid_t loc, const char *name, H5T_class_t cls);
int h5_read_attr_ints(hid_t loc, const char *name, int *out, int n);
/* Reads dataset `name` converted to `type` when its shape equals dims[0..ndim). */
int h5_read_exact(hid_t loc, const char *name, hid_t type, void *buf, int ndim,
                  const hsize_t *dims);
/* Element count of a rank-1 dataset, or -1. */
long long h5_dataset_length(hid_t loc, const char *name);

#endif
