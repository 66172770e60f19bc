#include "cigl/h5io.h"

#include "cigl/error.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int fsync_path(const char *path)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int h5_atomic_create(H5Atomic *a, const char *path)
{
    memset(a, 0, sizeof(*a));
    a->file = H5I_INVALID_HID;
    if (strlen(path) >= sizeof(a->path))
        return cigl_fail(CIGL_ERR_USAGE, "path too long: '%s'", path);
    snprintf(a->path, sizeof(a->path), "%s", path);
    snprintf(a->tmp, sizeof(a->tmp), "%s.tmp.%ld", path, (long)getpid());
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    a->file = H5Fcreate(a->tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (a->file < 0)
        return cigl_fail(CIGL_ERR_RUNTIME, "cannot create '%s': check that the directory "
                         "exists and is writable", a->tmp);
    return CIGL_OK;
}

void h5_atomic_abort(H5Atomic *a)
{
    if (a->file >= 0) H5Fclose(a->file);
    a->file = H5I_INVALID_HID;
    if (a->tmp[0]) unlink(a->tmp);
}

int h5_atomic_commit(H5Atomic *a)
{
    herr_t closed = H5Fclose(a->file);
    a->file = H5I_INVALID_HID;
    if (closed < 0 || fsync_path(a->tmp) != 0) {
        unlink(a->tmp);
        return cigl_fail(CIGL_ERR_RUNTIME, "writing '%s' failed (disk full?); the previous "
                         "file, if any, is unchanged", a->path);
    }
    if (rename(a->tmp, a->path) != 0) {
        int e = errno;
        unlink(a->tmp);
        return cigl_fail(CIGL_ERR_RUNTIME, "cannot rename '%s' to '%s': %s", a->tmp, a->path,
                         strerror(e));
    }
    char dir[CIGL_PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", a->path);
    fsync_path(dirname(dir));
    return CIGL_OK;
}

static int attr_write(hid_t loc, const char *name, hid_t type, hid_t space, const void *buf)
{
    hid_t at = H5Acreate2(loc, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    herr_t rc = at < 0 ? -1 : H5Awrite(at, type, buf);
    if (at >= 0) H5Aclose(at);
    H5Sclose(space);
    return rc < 0 ? cigl_fail(CIGL_ERR_RUNTIME, "cannot write HDF5 attribute '%s'", name) : 0;
}

int h5_attr_string(hid_t loc, const char *name, const char *value)
{
    hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, strlen(value) + 1);
    H5Tset_strpad(type, H5T_STR_NULLTERM);
    int rc = attr_write(loc, name, type, H5Screate(H5S_SCALAR), value);
    H5Tclose(type);
    return rc;
}

int h5_attr_int(hid_t loc, const char *name, long long value)
{
    return attr_write(loc, name, H5T_NATIVE_LLONG, H5Screate(H5S_SCALAR), &value);
}

int h5_attr_ints(hid_t loc, const char *name, const int *values, int n)
{
    hsize_t d = (hsize_t)n;
    return attr_write(loc, name, H5T_NATIVE_INT, H5Screate_simple(1, &d, NULL), values);
}

int h5_attr_u64(hid_t loc, const char *name, uint64_t value)
{
    return attr_write(loc, name, H5T_NATIVE_UINT64, H5Screate(H5S_SCALAR), &value);
}

int h5_attr_double(hid_t loc, const char *name, double value)
{
    return attr_write(loc, name, H5T_NATIVE_DOUBLE, H5Screate(H5S_SCALAR), &value);
}

int h5_write(hid_t loc, const char *name, hid_t type, const void *data, int ndim,
             const hsize_t *dims)
{
    hid_t space = H5Screate_simple(ndim, dims, NULL);
    hid_t ds = space < 0 ? -1 : H5Dcreate2(loc, name, type, space, H5P_DEFAULT, H5P_DEFAULT,
                                           H5P_DEFAULT);
    herr_t rc = ds < 0 ? -1 : H5Dwrite(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
    if (ds >= 0) H5Dclose(ds);
    if (space >= 0) H5Sclose(space);
    return rc < 0 ? cigl_fail(CIGL_ERR_RUNTIME, "cannot write HDF5 dataset '%s' (disk full?)",
                              name) : CIGL_OK;
}

static hid_t open_attr_of_class(hid_t loc, const char *name, H5T_class_t want)
{
    if (H5Aexists(loc, name) <= 0) return H5I_INVALID_HID;
    hid_t at = H5Aopen(loc, name, H5P_DEFAULT);
    if (at < 0) return H5I_INVALID_HID;
    hid_t type = H5Aget_type(at);
    const H5T_class_t cls = H5Tget_class(type);
    H5Tclose(type);
    if (cls != want) {
        H5Aclose(at);
        return H5I_INVALID_HID;
    }
    return at;
}

int h5_read_attr_string(hid_t loc, const char *name, char *buf, size_t cap)
{
    hid_t at = open_attr_of_class(loc, name, H5T_STRING);
    if (at < 0) return -1;
    hid_t ftype = H5Aget_type(at), space = H5Aget_space(at);
    int rc = -1;
    if (H5Sget_simple_extent_npoints(space) == 1 && !H5Tis_variable_str(ftype)) {
        const size_t size = H5Tget_size(ftype);
        hid_t mtype = H5Tcopy(H5T_C_S1);
        H5Tset_size(mtype, size + 1);
        H5Tset_cset(mtype, H5Tget_cset(ftype));
        char *tmp = calloc(size + 2, 1);
        if (tmp && H5Aread(at, mtype, tmp) >= 0 && strlen(tmp) < cap) {
            strcpy(buf, tmp);
            rc = 0;
        }
        free(tmp);
        H5Tclose(mtype);
    } else if (H5Sget_simple_extent_npoints(space) == 1) {
        hid_t mtype = H5Tcopy(H5T_C_S1);
        H5Tset_size(mtype, H5T_VARIABLE);
        H5Tset_cset(mtype, H5Tget_cset(ftype));
        char *v = NULL;
        if (H5Aread(at, mtype, &v) >= 0 && v && strlen(v) < cap) {
            strcpy(buf, v);
            rc = 0;
        }
        if (v) H5free_memory(v);
        H5Tclose(mtype);
    }
    H5Sclose(space);
    H5Tclose(ftype);
    H5Aclose(at);
    return rc;
}

static int read_numeric_attr(hid_t loc, const char *name, hid_t mtype, H5T_class_t cls,
                             void *out, int n)
{
    hid_t at = open_attr_of_class(loc, name, cls);
    if (at < 0) return -1;
    hid_t space = H5Aget_space(at);
    const int ok = H5Sget_simple_extent_npoints(space) == n && H5Aread(at, mtype, out) >= 0;
    H5Sclose(space);
    H5Aclose(at);
    return ok ? 0 : -1;
}

int h5_read_attr_ll(hid_t loc, const char *name, long long *out)
{
    return read_numeric_attr(loc, name, H5T_NATIVE_LLONG, H5T_INTEGER, out, 1);
}

int h5_read_attr_u64(hid_t loc, const char *name, uint64_t *out)
{
    return read_numeric_attr(loc, name, H5T_NATIVE_UINT64, H5T_INTEGER, out, 1);
}

int h5_read_attr_double(hid_t loc, const char *name, double *out)
{
    return read_numeric_attr(loc, name, H5T_NATIVE_DOUBLE, H5T_FLOAT, out, 1);
}

long long h5_attr_count(hid_t loc, const char *name, H5T_class_t cls)
{
    hid_t at = open_attr_of_class(loc, name, cls);
    if (at < 0) return -1;
    hid_t space = H5Aget_space(at);
    const long long n = space < 0 ? -1 : (long long)H5Sget_simple_extent_npoints(space);
    if (space >= 0) H5Sclose(space);
    H5Aclose(at);
    return n;
}

int h5_read_attr_doubles(hid_t loc, const char *name, double *out, int n)
{
    return read_numeric_attr(loc, name, H5T_NATIVE_DOUBLE, H5T_FLOAT, out, n);
}

int h5_read_attr_ints(hid_t loc, const char *name, int *out, int n)
{
    return read_numeric_attr(loc, name, H5T_NATIVE_INT, H5T_INTEGER, out, n);
}

int h5_read_exact(hid_t loc, const char *name, hid_t type, void *buf, int ndim,
                  const hsize_t *dims)
{
    if (H5Lexists(loc, name, H5P_DEFAULT) <= 0) return -1;
    hid_t ds = H5Dopen2(loc, name, H5P_DEFAULT);
    if (ds < 0) return -1;
    hid_t space = H5Dget_space(ds);
    hsize_t got[8];
    int ok = H5Sget_simple_extent_ndims(space) == ndim && ndim <= 8;
    if (ok) {
        H5Sget_simple_extent_dims(space, got, NULL);
        for (int d = 0; d < ndim; d++) ok &= got[d] == dims[d];
    }
    if (ok) ok = H5Dread(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0;
    H5Sclose(space);
    H5Dclose(ds);
    return ok ? 0 : -1;
}

long long h5_dataset_length(hid_t loc, const char *name)
{
    if (H5Lexists(loc, name, H5P_DEFAULT) <= 0) return -1;
    hid_t ds = H5Dopen2(loc, name, H5P_DEFAULT);
    if (ds < 0) return -1;
    hid_t space = H5Dget_space(ds);
    hsize_t n = 0;
    const int ok = H5Sget_simple_extent_ndims(space) == 1;
    if (ok) H5Sget_simple_extent_dims(space, &n, NULL);
    H5Sclose(space);
    H5Dclose(ds);
    return ok ? (long long)n : -1;
}
