/* Datasets in cigl's HDF5 schema (datasets/README.md): loading with full validation before any
 * large allocation, atomic writing, and batch gathering with normalisation and augmentation. */
#include "cigl/data.h"

#include "cigl/error.h"
#include "cigl/rng.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FORMAT_NAME "cigl-dataset"
#define FORMAT_VERSION 1
#define MAX_SIDE 4096
#define CHUNK_BYTES ((size_t)1 << 20)
#define FNV_OFFSET 0xcbf29ce484222325ull
#define FNV_PRIME 0x100000001b3ull

static const char *const SPLIT_NAMES[2] = {"train", "test"};

/* ---------------------------------------------------------------- error lines */

/* A schema or content problem in `path`: one line, with the way to get a valid file. */
static int bad_file(const char *path, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bad_file(const char *path, const char *fmt, ...)
{
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return cigl_fail(CIGL_ERR_USAGE, "cannot open dataset '%s': %s; re-create it with "
                     "'cigl convert' (see datasets/README.md), e.g. 'cigl convert fashion-mnist "
                     "/usr/share/datasets/fashion-mnist %s'", path, what, path);
}

/* A read failure on a file that passed validation (disk or library trouble). */
static int read_failed(const char *path, const char *what)
{
    return cigl_fail(CIGL_ERR_RUNTIME, "cannot read '%s' from dataset '%s': HDF5 read failed; "
                     "check that the file is complete and readable, or re-create it with "
                     "'cigl convert'", what, path);
}

/* ---------------------------------------------------------------- hashing */

static uint64_t fnv1a(uint64_t h, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= FNV_PRIME;
    }
    return h;
}

/* Labels are hashed as int32 little-endian bytes so the hash does not depend on the host. */
static uint64_t fnv1a_labels(uint64_t h, const int32_t *labels, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t v = (uint32_t)labels[i];
        const uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16),
                              (uint8_t)(v >> 24)};
        h = fnv1a(h, b, 4);
    }
    return h;
}

static uint64_t dataset_hash(const Dataset *ds)
{
    size_t sample = (size_t)ds->c * (size_t)ds->h * (size_t)ds->w;
    uint64_t h = FNV_OFFSET;
    h = fnv1a(h, ds->train.images, ds->train.n * sample);
    h = fnv1a_labels(h, ds->train.labels, ds->train.n);
    h = fnv1a(h, ds->test.images, ds->test.n * sample);
    h = fnv1a_labels(h, ds->test.labels, ds->test.n);
    return h;
}

/* ---------------------------------------------------------------- reading attributes */

/* Opens attribute `name` of `loc` and reports its type class and element count. */
static hid_t attr_open(hid_t loc, const char *path, const char *name, H5T_class_t *cls,
                       hssize_t *count, hid_t *type)
{
    if (H5Aexists(loc, name) <= 0) {
        bad_file(path, "root attribute '%s' is missing", name);
        return -1;
    }
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    hid_t t = a >= 0 ? H5Aget_type(a) : -1;
    hid_t s = a >= 0 ? H5Aget_space(a) : -1;
    *cls = t >= 0 ? H5Tget_class(t) : H5T_NO_CLASS;
    *count = s >= 0 ? H5Sget_simple_extent_npoints(s) : -1;
    if (s >= 0)
        H5Sclose(s); /* read-only handle: nothing to flush, so failure cannot lose data */
    if (a < 0 || t < 0 || *count < 0) {
        if (t >= 0)
            H5Tclose(t);
        if (a >= 0)
            H5Aclose(a);
        bad_file(path, "root attribute '%s' cannot be read", name);
        return -1;
    }
    *type = t;
    return a;
}

static int attr_int(hid_t loc, const char *path, const char *name, int *out)
{
    H5T_class_t cls;
    hssize_t count;
    hid_t type;
    hid_t a = attr_open(loc, path, name, &cls, &count, &type);
    if (a < 0)
        return CIGL_ERR_USAGE;
    long long v = 0;
    int ok = cls == H5T_INTEGER && count == 1 && H5Aread(a, H5T_NATIVE_LLONG, &v) >= 0;
    H5Tclose(type);
    H5Aclose(a);
    if (!ok)
        return bad_file(path, "root attribute '%s' must be a single integer", name);
    if (v < INT_MIN || v > INT_MAX)
        return bad_file(path, "root attribute '%s' = %lld is out of range", name, v);
    *out = (int)v;
    return CIGL_OK;
}

/* Reads a scalar string attribute, fixed-length or variable-length (h5py writes the latter). */
static int attr_string(hid_t loc, const char *path, const char *name, char *buf, size_t cap)
{
    H5T_class_t cls;
    hssize_t count;
    hid_t type;
    hid_t a = attr_open(loc, path, name, &cls, &count, &type);
    if (a < 0)
        return CIGL_ERR_USAGE;
    int ok = cls == H5T_STRING && count == 1;
    if (ok && H5Tis_variable_str(type) > 0) {
        hid_t mem = H5Tcopy(H5T_C_S1);
        char *s = NULL;
        /* HDF5 does not convert between character sets, so read in the file's own. */
        ok = mem >= 0 && H5Tset_size(mem, H5T_VARIABLE) >= 0 &&
             H5Tset_cset(mem, H5Tget_cset(type)) >= 0 && H5Aread(a, mem, &s) >= 0 && s;
        if (ok)
            snprintf(buf, cap, "%s", s); /* names longer than the buffer are truncated */
        if (s)
            H5free_memory(s);
        if (mem >= 0)
            H5Tclose(mem);
    } else if (ok) {
        size_t size = H5Tget_size(type);
        char *tmp = size ? cigl_calloc(size + 1, 1, "a string attribute") : NULL;
        ok = tmp && H5Aread(a, type, tmp) >= 0;
        if (ok)
            snprintf(buf, cap, "%s", tmp);
        free(tmp);
    }
    H5Tclose(type);
    H5Aclose(a);
    if (!ok)
        return bad_file(path, "root attribute '%s' must be a single string", name);
    return CIGL_OK;
}

/* Reads a float array attribute of exactly `n` elements as double. */
static int attr_doubles(hid_t loc, const char *path, const char *name, double *out, int n)
{
    H5T_class_t cls;
    hssize_t count;
    hid_t type;
    hid_t a = attr_open(loc, path, name, &cls, &count, &type);
    if (a < 0)
        return CIGL_ERR_USAGE;
    int ok = cls == H5T_FLOAT && count == n && H5Aread(a, H5T_NATIVE_DOUBLE, out) >= 0;
    H5Tclose(type);
    H5Aclose(a);
    if (!ok)
        return bad_file(path, "root attribute '%s' must be a float array of length channels "
                        "(%d)", name, n);
    return CIGL_OK;
}

/* `class_names` is not kept in memory, but its presence and length are part of the schema. */
static int check_class_names(hid_t loc, const char *path, int classes)
{
    H5T_class_t cls;
    hssize_t count;
    hid_t type;
    hid_t a = attr_open(loc, path, "class_names", &cls, &count, &type);
    if (a < 0)
        return CIGL_ERR_USAGE;
    H5Tclose(type);
    H5Aclose(a);
    if (cls != H5T_STRING || count != classes)
        return bad_file(path, "root attribute 'class_names' must be %d strings (one per class), "
                        "found %lld elements", classes, (long long)count);
    return CIGL_OK;
}

/* Reads and range-checks every root attribute into `ds`. */
static int read_header(hid_t file, const char *path, Dataset *ds)
{
    char format[64] = "";
    int version = 0, rc;
    if ((rc = attr_string(file, path, "format", format, sizeof format)))
        return rc;
    if (strcmp(format, FORMAT_NAME) != 0)
        return bad_file(path, "attribute 'format' is '%s', expected '%s'", format, FORMAT_NAME);
    if ((rc = attr_int(file, path, "format_version", &version)))
        return rc;
    if (version != FORMAT_VERSION)
        return cigl_fail(CIGL_ERR_USAGE, "cannot open dataset '%s': format_version %d is not "
                         "supported, this cigl reads format_version %d only; re-convert the "
                         "source data with this cigl's 'cigl convert'", path, version,
                         FORMAT_VERSION);
    if ((rc = attr_string(file, path, "name", ds->name, sizeof ds->name)) ||
        (rc = attr_int(file, path, "classes", &ds->classes)) ||
        (rc = attr_int(file, path, "channels", &ds->c)) ||
        (rc = attr_int(file, path, "height", &ds->h)) ||
        (rc = attr_int(file, path, "width", &ds->w)))
        return rc;
    if (ds->c < 1 || ds->c > CIGL_MAX_CHANNELS)
        return bad_file(path, "channels = %d, must be in 1..%d", ds->c, CIGL_MAX_CHANNELS);
    if (ds->classes < 2 || ds->classes > CIGL_MAX_CLASSES)
        return bad_file(path, "classes = %d, must be in 2..%d", ds->classes, CIGL_MAX_CLASSES);
    if (ds->h < 1 || ds->h > MAX_SIDE || ds->w < 1 || ds->w > MAX_SIDE)
        return bad_file(path, "image size %dx%d, height and width must be in 1..%d", ds->h,
                        ds->w, MAX_SIDE);
    if ((rc = check_class_names(file, path, ds->classes)) ||
        (rc = attr_doubles(file, path, "mean", ds->mean, ds->c)) ||
        (rc = attr_doubles(file, path, "std", ds->std, ds->c)))
        return rc;
    for (int c = 0; c < ds->c; c++)
        if (!isfinite(ds->mean[c]) || !(ds->std[c] > 0) || !isfinite(ds->std[c]))
            return bad_file(path, "channel %d has mean %g, std %g; std must be finite and > 0",
                            c, ds->mean[c], ds->std[c]);
    return CIGL_OK;
}

/* ---------------------------------------------------------------- reading splits */

typedef struct {
    hid_t images, labels;
    size_t n;
} SplitFile;

static void split_file_close(SplitFile *sf)
{
    if (sf->images >= 0)
        H5Dclose(sf->images);
    if (sf->labels >= 0)
        H5Dclose(sf->labels);
    sf->images = sf->labels = -1;
}

/* Opens `<split>/<name>` and returns its type class, byte size, signedness, rank and dims. */
static hid_t open_array(hid_t file, const char *path, const char *split, const char *name,
                        H5T_class_t *cls, size_t *size, H5T_sign_t *sign, int *rank,
                        hsize_t dims[4])
{
    char full[32];
    snprintf(full, sizeof full, "%s/%s", split, name);
    if (H5Lexists(file, split, H5P_DEFAULT) <= 0 || H5Lexists(file, full, H5P_DEFAULT) <= 0) {
        bad_file(path, "dataset '/%s' is missing", full);
        return -1;
    }
    hid_t d = H5Dopen2(file, full, H5P_DEFAULT);
    hid_t t = d >= 0 ? H5Dget_type(d) : -1;
    hid_t s = d >= 0 ? H5Dget_space(d) : -1;
    *cls = t >= 0 ? H5Tget_class(t) : H5T_NO_CLASS;
    *size = t >= 0 ? H5Tget_size(t) : 0;
    *sign = t >= 0 ? H5Tget_sign(t) : H5T_SGN_ERROR;
    *rank = s >= 0 ? H5Sget_simple_extent_ndims(s) : -1;
    if (*rank >= 0 && *rank <= 4 && H5Sget_simple_extent_dims(s, dims, NULL) < 0)
        *rank = -1;
    if (t >= 0)
        H5Tclose(t);
    if (s >= 0)
        H5Sclose(s);
    if (d < 0 || *rank < 0) {
        if (d >= 0)
            H5Dclose(d);
        bad_file(path, "dataset '/%s' cannot be read", full);
        return -1;
    }
    return d;
}

/* Opens one split and checks types and shapes against the header; fills sf->n. */
static int open_split(hid_t file, const char *path, const Dataset *ds, const char *split,
                      SplitFile *sf)
{
    H5T_class_t cls;
    size_t size;
    H5T_sign_t sign;
    int rank;
    hsize_t d[4] = {0, 0, 0, 0};
    sf->images = open_array(file, path, split, "images", &cls, &size, &sign, &rank, d);
    if (sf->images < 0)
        return CIGL_ERR_USAGE;
    if (cls != H5T_INTEGER || size != 1 || sign != H5T_SGN_NONE)
        return bad_file(path, "'/%s/images' must be uint8", split);
    if (rank != 4)
        return bad_file(path, "'/%s/images' has rank %d, expected 4 (N x C x H x W)", split,
                        rank);
    if (d[1] != (hsize_t)ds->c || d[2] != (hsize_t)ds->h || d[3] != (hsize_t)ds->w)
        return bad_file(path, "'/%s/images' is %llu x %llu x %llu x %llu, but the attributes "
                        "say C x H x W = %d x %d x %d", split, (unsigned long long)d[0],
                        (unsigned long long)d[1], (unsigned long long)d[2],
                        (unsigned long long)d[3], ds->c, ds->h, ds->w);
    if (d[0] < 1)
        return bad_file(path, "'/%s/images' holds no samples", split);
    size_t sample = (size_t)ds->c * (size_t)ds->h * (size_t)ds->w;
    if (d[0] > SIZE_MAX / sample || d[0] > SIZE_MAX / sizeof(int32_t))
        return bad_file(path, "'/%s/images' has %llu samples, too many to address", split,
                        (unsigned long long)d[0]);
    sf->n = (size_t)d[0];

    hsize_t nl[4] = {0, 0, 0, 0};
    sf->labels = open_array(file, path, split, "labels", &cls, &size, &sign, &rank, nl);
    if (sf->labels < 0)
        return CIGL_ERR_USAGE;
    int label_type_ok = cls == H5T_INTEGER && ((size == 4 && sign == H5T_SGN_2) ||
                                               (size <= 2 && sign == H5T_SGN_NONE));
    if (!label_type_ok)
        return bad_file(path, "'/%s/labels' must be int32, uint16 or uint8", split);
    if (rank != 1 || nl[0] != d[0])
        return bad_file(path, "'/%s/labels' must be one-dimensional with %zu entries (one per "
                        "image)", split, sf->n);
    return CIGL_OK;
}

/* Reads labels (HDF5 converts uint8/uint16 to int32) and checks each is a valid class. */
static int read_labels(const char *path, const char *split, hid_t dset, Split *s, int classes)
{
    s->labels = cigl_malloc(s->n * sizeof(int32_t), "dataset labels");
    if (!s->labels)
        return CIGL_ERR_RUNTIME;
    if (H5Dread(dset, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, s->labels) < 0) {
        char what[32];
        snprintf(what, sizeof what, "/%s/labels", split);
        return read_failed(path, what);
    }
    for (size_t i = 0; i < s->n; i++)
        if (s->labels[i] < 0 || s->labels[i] >= classes)
            return bad_file(path, "'/%s/labels'[%zu] = %d is outside [0, %d)", split, i,
                            s->labels[i], classes);
    return CIGL_OK;
}

static int read_images(const char *path, const char *split, hid_t dset, Split *s,
                       size_t sample)
{
    s->images = cigl_malloc(s->n * sample, "dataset images");
    if (!s->images)
        return CIGL_ERR_RUNTIME;
    if (H5Dread(dset, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, s->images) < 0) {
        char what[32];
        snprintf(what, sizeof what, "/%s/images", split);
        return read_failed(path, what);
    }
    return CIGL_OK;
}

/* Validates everything cheap first (header, both splits' shapes, labels), then reads pixels. */
static int load_open_file(hid_t file, const char *path, Dataset *ds)
{
    SplitFile sf[2] = {{-1, -1, 0}, {-1, -1, 0}};
    Split *dst[2] = {&ds->train, &ds->test};
    size_t sample = 0;
    int rc = read_header(file, path, ds);
    for (int i = 0; i < 2 && !rc; i++)
        rc = open_split(file, path, ds, SPLIT_NAMES[i], &sf[i]);
    if (!rc) {
        sample = (size_t)ds->c * (size_t)ds->h * (size_t)ds->w;
        if (sf[0].n > (SIZE_MAX / sample) - sf[1].n)
            rc = bad_file(path, "%zu + %zu samples are too many to address", sf[0].n, sf[1].n);
    }
    for (int i = 0; i < 2 && !rc; i++) {
        dst[i]->n = sf[i].n;
        rc = read_labels(path, SPLIT_NAMES[i], sf[i].labels, dst[i], ds->classes);
    }
    for (int i = 0; i < 2 && !rc; i++)
        rc = read_images(path, SPLIT_NAMES[i], sf[i].images, dst[i], sample);
    split_file_close(&sf[0]);
    split_file_close(&sf[1]);
    return rc;
}

int dataset_load(const char *path, Dataset *ds)
{
    memset(ds, 0, sizeof *ds);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* our one-line errors replace HDF5's stack dumps */
    struct stat st;
    if (stat(path, &st) != 0)
        return cigl_fail(CIGL_ERR_USAGE, "cannot open dataset '%s': %s; create one with "
                         "'cigl convert fashion-mnist /usr/share/datasets/fashion-mnist %s'",
                         path, errno == ENOENT ? "no such file" : strerror(errno), path);
    if (!S_ISREG(st.st_mode) || H5Fis_hdf5(path) <= 0)
        return cigl_fail(CIGL_ERR_USAGE, "cannot open dataset '%s': not an HDF5 file; create "
                         "one with 'cigl convert fashion-mnist /usr/share/datasets/fashion-mnist "
                         "%s'", path, path);
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (file < 0)
        return cigl_fail(CIGL_ERR_USAGE, "cannot open dataset '%s': HDF5 cannot open it (is it "
                         "readable and complete?); re-create it with 'cigl convert'", path);
    int rc = load_open_file(file, path, ds);
    if (H5Fclose(file) < 0 && !rc)
        rc = read_failed(path, "the file");
    if (rc) {
        dataset_free(ds);
        return rc;
    }
    ds->hash = dataset_hash(ds);
    return CIGL_OK;
}

void dataset_free(Dataset *ds)
{
    if (!ds)
        return;
    free(ds->train.images);
    free(ds->train.labels);
    free(ds->test.images);
    free(ds->test.labels);
    memset(ds, 0, sizeof *ds);
}

/* ---------------------------------------------------------------- writing */

/* Per-channel mean and std of pixel/255 over the split; sums of integers are exact. */
static void channel_stats(const Split *s, int c, size_t plane, double *mean, double *std)
{
    for (int ch = 0; ch < c; ch++) {
        uint64_t s1 = 0;
        double s2 = 0; /* uint64 could overflow for huge splits: 255^2 * 2^44 */
        for (size_t i = 0; i < s->n; i++) {
            const uint8_t *p = s->images + (i * (size_t)c + (size_t)ch) * plane;
            uint64_t a = 0, b = 0;
            for (size_t k = 0; k < plane; k++) {
                a += p[k];
                b += (uint64_t)p[k] * p[k];
            }
            s1 += a;
            s2 += (double)b;
        }
        double count = (double)s->n * (double)plane;
        double m = (double)s1 / count / 255.0;
        double var = s2 / count / (255.0 * 255.0) - m * m;
        mean[ch] = m;
        /* A constant channel would divide by zero when normalising; it is only centred. */
        std[ch] = var > 1e-24 ? sqrt(var) : 1.0;
    }
}

static int write_attr(hid_t loc, const char *name, hid_t ftype, hid_t mtype, hid_t space,
                      const void *buf)
{
    hid_t a = H5Acreate2(loc, name, ftype, space, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0)
        return -1;
    herr_t w = H5Awrite(a, mtype, buf);
    herr_t c = H5Aclose(a);
    return w < 0 || c < 0 ? -1 : 0;
}

/* count == 0 writes a scalar attribute, otherwise a 1-D array of `count` elements. */
static int put_attr(hid_t loc, const char *name, hid_t ftype, hid_t mtype, hsize_t count,
                    const void *buf)
{
    hid_t s = count ? H5Screate_simple(1, &count, NULL) : H5Screate(H5S_SCALAR);
    if (s < 0)
        return -1;
    int rc = write_attr(loc, name, ftype, mtype, s, buf);
    if (H5Sclose(s) < 0)
        rc = -1;
    return rc;
}

static int put_int(hid_t loc, const char *name, int v)
{
    return put_attr(loc, name, H5T_STD_I32LE, H5T_NATIVE_INT, 0, &v);
}

/* Strings are variable-length UTF-8, which h5py reads back as str. */
static int put_strings(hid_t loc, const char *name, hsize_t count, const char *const *s)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t < 0)
        return -1;
    int rc = H5Tset_size(t, H5T_VARIABLE) < 0 || H5Tset_cset(t, H5T_CSET_UTF8) < 0
                 ? -1 : put_attr(loc, name, t, t, count, s);
    if (H5Tclose(t) < 0)
        rc = -1;
    return rc;
}

typedef struct {
    const char *name;
    int c, h, w, classes;
    const char *const *class_names;
    double mean[CIGL_MAX_CHANNELS], std[CIGL_MAX_CHANNELS];
} Header;

static int write_header(hid_t file, const Header *hd)
{
    const char *format = FORMAT_NAME;
    if (put_strings(file, "format", 0, &format) || put_int(file, "format_version", FORMAT_VERSION)
        || put_strings(file, "name", 0, &hd->name) || put_int(file, "classes", hd->classes)
        || put_strings(file, "class_names", (hsize_t)hd->classes, hd->class_names)
        || put_int(file, "channels", hd->c) || put_int(file, "height", hd->h)
        || put_int(file, "width", hd->w))
        return -1;
    if (put_attr(file, "mean", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, (hsize_t)hd->c, hd->mean) ||
        put_attr(file, "std", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, (hsize_t)hd->c, hd->std))
        return -1;
    return 0;
}

/* Creates and fills one dataset; dcpl may be H5P_DEFAULT (contiguous). */
static int write_array(hid_t group, const char *name, hid_t ftype, hid_t mtype, int rank,
                       const hsize_t *dims, hid_t dcpl, const void *buf)
{
    hid_t s = H5Screate_simple(rank, dims, NULL);
    if (s < 0)
        return -1;
    hid_t d = H5Dcreate2(group, name, ftype, s, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    int rc = d < 0 || H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0 ? -1 : 0;
    if (d >= 0 && H5Dclose(d) < 0)
        rc = -1;
    if (H5Sclose(s) < 0)
        rc = -1;
    return rc;
}

/* Images are chunked along samples (about 1 MiB per chunk) so partial reads stay cheap. */
static int write_split(hid_t file, const char *split, const Header *hd, const Split *s)
{
    hid_t g = H5Gcreate2(file, split, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0)
        return -1;
    size_t sample = (size_t)hd->c * (size_t)hd->h * (size_t)hd->w;
    size_t per_chunk = CHUNK_BYTES / sample > 1 ? CHUNK_BYTES / sample : 1;
    hsize_t dims[4] = {s->n, (hsize_t)hd->c, (hsize_t)hd->h, (hsize_t)hd->w};
    hsize_t chunk[4] = {s->n < per_chunk ? s->n : per_chunk, dims[1], dims[2], dims[3]};
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    int rc = dcpl < 0 || H5Pset_chunk(dcpl, 4, chunk) < 0 ? -1 : 0;
    if (!rc)
        rc = write_array(g, "images", H5T_STD_U8LE, H5T_NATIVE_UINT8, 4, dims, dcpl, s->images);
    if (!rc)
        rc = write_array(g, "labels", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, dims, H5P_DEFAULT,
                         s->labels);
    if (dcpl >= 0 && H5Pclose(dcpl) < 0)
        rc = -1;
    if (H5Gclose(g) < 0)
        rc = -1;
    return rc;
}

/* Writes the whole file at `tmp`; returns -1 on any HDF5 failure. */
static int write_file(const char *tmp, const Header *hd, const Split *train, const Split *test)
{
    hid_t file = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (file < 0)
        return -1;
    int rc = write_header(file, hd);
    if (!rc)
        rc = write_split(file, SPLIT_NAMES[0], hd, train);
    if (!rc)
        rc = write_split(file, SPLIT_NAMES[1], hd, test);
    if (H5Fclose(file) < 0)
        rc = -1;
    return rc;
}

/* Flushes the file's data to disk so the rename cannot expose a half-written file. */
static int fsync_file(const char *path)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    if (close(fd) != 0)
        rc = -1;
    return rc;
}

static int check_split_arg(const char *path, const char *which, const Split *s, int classes)
{
    if (!s || s->n == 0 || !s->images || !s->labels)
        return cigl_fail(CIGL_ERR_USAGE, "cannot write dataset '%s': the %s split is empty; "
                         "every dataset needs at least one train and one test sample", path,
                         which);
    for (size_t i = 0; i < s->n; i++)
        if (s->labels[i] < 0 || s->labels[i] >= classes)
            return cigl_fail(CIGL_ERR_USAGE, "cannot write dataset '%s': %s label %zu is %d, "
                             "outside [0, %d); fix the source labels", path, which, i,
                             s->labels[i], classes);
    return CIGL_OK;
}

static int check_write_args(const char *path, const Header *hd, const Split *train,
                            const Split *test)
{
    if (!hd->name || !hd->name[0] || strlen(hd->name) >= sizeof(((Dataset *)0)->name))
        return cigl_fail(CIGL_ERR_USAGE, "cannot write dataset '%s': the name must have 1..%zu "
                         "characters", path, sizeof(((Dataset *)0)->name) - 1);
    if (hd->c < 1 || hd->c > CIGL_MAX_CHANNELS || hd->h < 1 || hd->h > MAX_SIDE || hd->w < 1 ||
        hd->w > MAX_SIDE || hd->classes < 2 || hd->classes > CIGL_MAX_CLASSES)
        return cigl_fail(CIGL_ERR_USAGE, "cannot write dataset '%s': shape C=%d H=%d W=%d, "
                         "classes=%d is outside C 1..%d, H and W 1..%d, classes 2..%d", path,
                         hd->c, hd->h, hd->w, hd->classes, CIGL_MAX_CHANNELS, MAX_SIDE,
                         CIGL_MAX_CLASSES);
    for (int k = 0; k < hd->classes; k++)
        if (!hd->class_names || !hd->class_names[k])
            return cigl_fail(CIGL_ERR_USAGE, "cannot write dataset '%s': class name %d is "
                             "missing; pass one name per class", path, k);
    int rc = check_split_arg(path, "train", train, hd->classes);
    return rc ? rc : check_split_arg(path, "test", test, hd->classes);
}

int dataset_write(const char *path, const char *name, int c, int h, int w, int classes,
                  const char *const *class_names, const Split *train, const Split *test)
{
    Header hd = {name, c, h, w, classes, class_names, {0}, {0}};
    int rc = check_write_args(path, &hd, train, test);
    if (rc)
        return rc;
    channel_stats(train, c, (size_t)h * (size_t)w, hd.mean, hd.std);

    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp)
        return cigl_fail(CIGL_ERR_USAGE, "cannot write dataset '%s': path too long; use a "
                         "shorter output path", path);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* our one-line errors replace HDF5's stack dumps */
    const char *step = NULL;
    errno = 0; /* so the reported cause belongs to the failing step */
    if (write_file(tmp, &hd, train, test) != 0)
        step = "HDF5 could not write it";
    else if (fsync_file(tmp) != 0)
        step = "fsync failed";
    else if (rename(tmp, path) != 0)
        step = "rename of the temporary file failed";
    if (step) {
        int err = errno;
        unlink(tmp); /* the temporary may not exist yet; nothing else to undo */
        return cigl_fail(CIGL_ERR_RUNTIME, "cannot write dataset '%s': %s (%s); check that the "
                         "directory exists, is writable and has free space", path, step,
                         err ? strerror(err) : "no detail");
    }
    return CIGL_OK;
}

/* ---------------------------------------------------------------- batch gathering */

/* Augmentation draws for one sample; see datasets/README.md for the keying. */
typedef struct {
    int dy, dx, flip;
} Draw;

static Draw draw_augment(const Augment *aug, uint32_t sample)
{
    Draw d = {0, 0, 0};
    uint64_t base = 4 * (uint64_t)sample;
    if (aug->crop_pad > 0) {
        uint32_t bound = 2 * (uint32_t)aug->crop_pad + 1;
        d.dy = (int)rng_below(aug->seed, RNG_AUGMENT, aug->epoch, base + 0, bound);
        d.dx = (int)rng_below(aug->seed, RNG_AUGMENT, aug->epoch, base + 1, bound);
    }
    if (aug->flip)
        d.flip = (int)rng_below(aug->seed, RNG_AUGMENT, aug->epoch, base + 2, 2);
    return d;
}

/* One channel plane: out[y][x] = lut[padded[y + dy][x' + dx]] where padded has `pad` zero
 * pixels around the image and x' = x, or W-1-x when flipped (flip after crop). */
static void gather_plane(const uint8_t *src, int h, int w, int pad, Draw d, const float *lut,
                         float *out)
{
    int oy = d.dy - pad, ox = d.dx - pad; /* source = output + offset */
    /* Output columns whose source column lies inside the image. */
    int x0 = d.flip ? ox : -ox, x1 = d.flip ? w + ox : w - ox;
    x0 = x0 < 0 ? 0 : x0;
    x1 = x1 > w ? w : x1;
    for (int y = 0; y < h; y++) {
        float *row = out + (size_t)y * (size_t)w;
        int sy = y + oy;
        if (sy < 0 || sy >= h || x0 >= x1) {
            for (int x = 0; x < w; x++)
                row[x] = lut[0];
            continue;
        }
        const uint8_t *srow = src + (size_t)sy * (size_t)w;
        for (int x = 0; x < x0; x++)
            row[x] = lut[0];
        if (d.flip)
            for (int x = x0; x < x1; x++)
                row[x] = lut[srow[w - 1 - x + ox]];
        else
            for (int x = x0; x < x1; x++)
                row[x] = lut[srow[x + ox]];
        for (int x = x1; x < w; x++)
            row[x] = lut[0];
    }
}

void split_gather(const Dataset *ds, const Split *s, const uint32_t *idx, size_t n,
                  const Augment *aug, float *x, int32_t *y)
{
    /* Normalisation as a 256-entry table per channel: no per-pixel arithmetic at all. */
    float lut[CIGL_MAX_CHANNELS][256];
    for (int c = 0; c < ds->c; c++) {
        double inv = 1.0 / ds->std[c];
        for (int v = 0; v < 256; v++)
            lut[c][v] = (float)((v / 255.0 - ds->mean[c]) * inv);
    }
    size_t plane = (size_t)ds->h * (size_t)ds->w, sample = (size_t)ds->c * plane;
    int pad = aug && aug->crop_pad > 0 ? aug->crop_pad : 0;
    for (size_t i = 0; i < n; i++) {
        assert(idx[i] < s->n);
        y[i] = s->labels[idx[i]];
        Draw d = aug ? draw_augment(aug, idx[i]) : (Draw){pad, pad, 0};
        const uint8_t *src = s->images + (size_t)idx[i] * sample;
        float *dst = x + i * sample;
        for (int c = 0; c < ds->c; c++)
            gather_plane(src + (size_t)c * plane, ds->h, ds->w, pad, d, lut[c],
                         dst + (size_t)c * plane);
    }
}
