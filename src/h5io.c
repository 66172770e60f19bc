#include "cigl/h5io.h"

#include "cigl/error.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
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
    char dir[1024];
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
