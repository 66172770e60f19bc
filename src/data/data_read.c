/* Opening datasets in cigl's HDF5 schema (datasets/README.md), format versions 1 and 2: full
 * validation of attributes, shapes and labels before any large allocation, then the pixels
 * read into memory or left in the file for streaming (data_stream.c). */
#include "data_internal.h"

#include "cigl/error.h"
#include "cigl/h5io.h"

#include <errno.h>
#include <hdf5.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const char *const DATA_SPLIT_NAMES[2] = {"train", "test"};

/* ---------------------------------------------------------------- error lines */

/* A schema or content problem in `path`: one line, with the way to get a valid file. */
static int bad_file(const char *path, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bad_file(const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    const int rc = cigl_failv(CIGL_ERR_USAGE, "cannot open dataset '%1$s': %2$s; re-create it "
                              "with 'cigl convert' (see datasets/README.md), e.g. 'cigl convert "
                              "fashion-mnist /usr/share/datasets/fashion-mnist %1$s'", path, fmt,
                              ap);
    va_end(ap);
    return rc;
}

/* A read failure on a file that passed validation (disk or library trouble). */
static int read_failed(const char *path, const char *what)
{
    return cigl_fail(CIGL_ERR_RUNTIME, "cannot read '%s' from dataset '%s': HDF5 read failed; "
                     "check that the file is complete and readable, or re-create it with "
                     "'cigl convert'", what, path);
}

/* ---------------------------------------------------------------- hashing */

/* Labels are hashed as int32 little-endian bytes so the hash does not depend on the host. */
uint64_t data_hash_labels(uint64_t h, const int32_t *labels, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t v = (uint32_t)labels[i];
        const uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16),
                              (uint8_t)(v >> 24)};
        h = checksum_bytes(h, b, 4);
    }
    return h;
}

int data_hash_pixels(hid_t images, size_t n, size_t sample, uint64_t *h)
{
    size_t per = (16u << 20) / sample ? (16u << 20) / sample : 1; /* ~16 MiB blocks */
    uint8_t *buf = cigl_malloc(per * sample, "hash buffer");
    hid_t fs = H5Dget_space(images);
    hsize_t dims[4];
    int rc = buf && fs >= 0 && H5Sget_simple_extent_ndims(fs) == 4 &&
             H5Sget_simple_extent_dims(fs, dims, NULL) == 4 ? 0 : -1;
    for (size_t i0 = 0; i0 < n && !rc; i0 += per) {
        /* a block of whole samples: the hyperslab [i0, i0 + k) x C x H x W */
        size_t k = n - i0 < per ? n - i0 : per;
        hsize_t start[4] = {i0, 0, 0, 0}, count[4] = {k, dims[1], dims[2], dims[3]};
        /* the memory space has the selection's shape: HDF5 copies whole rows */
        hid_t ms = H5Screate_simple(4, count, NULL);
        if (ms < 0 || H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) < 0 ||
            H5Dread(images, H5T_NATIVE_UINT8, ms, fs, H5P_DEFAULT, buf) < 0)
            rc = -1;
        if (ms >= 0)
            H5Sclose(ms);
        if (!rc)
            *h = checksum_bytes(*h, buf, k * sample);
    }
    if (fs >= 0)
        H5Sclose(fs);
    free(buf);
    return rc;
}

/* ---------------------------------------------------------------- reading attributes */

/* The attribute readers of the dataset schema: core/h5io.c reads, these name the problem and
 * the fix (bad_file). */
static int attr_missing(hid_t loc, const char *path, const char *name)
{
    return H5Aexists(loc, name) > 0 ? CIGL_OK
                                    : bad_file(path, "attribute '%s' is missing", name);
}

static int attr_int(hid_t loc, const char *path, const char *name, int *out)
{
    long long v = 0;
    int rc = attr_missing(loc, path, name);
    if (!rc && h5_read_attr_ll(loc, name, &v))
        rc = bad_file(path, "attribute '%s' must be a single integer", name);
    if (!rc && (v < INT_MIN || v > INT_MAX))
        rc = bad_file(path, "attribute '%s' = %lld is out of range", name, v);
    if (!rc) *out = (int)v;
    return rc;
}

static int attr_u64(hid_t loc, const char *path, const char *name, uint64_t *out)
{
    int rc = attr_missing(loc, path, name);
    if (!rc && h5_read_attr_u64(loc, name, out))
        rc = bad_file(path, "attribute '%s' must be a single integer", name);
    return rc;
}

/* A scalar string attribute, fixed-length or variable-length (h5py writes the latter). */
static int attr_string(hid_t loc, const char *path, const char *name, char *buf, size_t cap)
{
    int rc = attr_missing(loc, path, name);
    if (!rc && h5_read_attr_string(loc, name, buf, cap))
        rc = bad_file(path, "attribute '%s' must be a single string of under %zu bytes", name,
                      cap);
    return rc;
}

/* A float array attribute of exactly `n` elements, as double. */
static int attr_doubles(hid_t loc, const char *path, const char *name, double *out, int n)
{
    int rc = attr_missing(loc, path, name);
    if (!rc && h5_read_attr_doubles(loc, name, out, n))
        rc = bad_file(path, "root attribute '%s' must be a float array of length channels "
                      "(%d)", name, n);
    return rc;
}

/* `class_names` is not kept in memory, but its presence and length are part of the schema. */
static int check_class_names(hid_t loc, const char *path, int classes)
{
    int rc = attr_missing(loc, path, "class_names");
    const long long count = rc ? 0 : h5_attr_count(loc, "class_names", H5T_STRING);
    if (!rc && count != classes)
        rc = bad_file(path, "root attribute 'class_names' must be %d strings (one per class), "
                      "found %lld %s", classes, count < 0 ? 0 : count,
                      count < 0 ? "strings" : "elements");
    return rc;
}

/* Format 2 only: the augmentation kind and the content hash stored at conversion. */
static int read_header_v2(hid_t file, const char *path, Dataset *ds)
{
    char augment[32] = "";
    int rc = attr_string(file, path, "augment", augment, sizeof augment);
    if (rc)
        return rc;
    if (!strcmp(augment, DATA_AUGMENT_NAME_NONE))
        ds->augment = DATA_AUGMENT_NONE;
    else if (!strcmp(augment, DATA_AUGMENT_NAME_RRC))
        ds->augment = DATA_AUGMENT_RRC;
    else
        return bad_file(path, "attribute 'augment' is '%s', expected '%s' or '%s'", augment,
                        DATA_AUGMENT_NAME_NONE, DATA_AUGMENT_NAME_RRC);
    return attr_u64(file, path, "content_hash", &ds->hash);
}

/* Reads and range-checks every root attribute into `ds`. */
static int read_header(hid_t file, const char *path, Dataset *ds)
{
    char format[64] = "";
    int rc;
    if ((rc = attr_string(file, path, "format", format, sizeof format)))
        return rc;
    if (strcmp(format, DATA_FORMAT_NAME) != 0)
        return bad_file(path, "attribute 'format' is '%s', expected '%s'", format,
                        DATA_FORMAT_NAME);
    if ((rc = attr_int(file, path, "format_version", &ds->version)))
        return rc;
    if (ds->version != 1 && ds->version != 2)
        return cigl_fail(CIGL_ERR_USAGE, "cannot open dataset '%s': format_version %d is not "
                         "supported, this cigl reads format_version 1 and 2; re-convert the "
                         "source data with this cigl's 'cigl convert'", path, ds->version);
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
    if (ds->h < 1 || ds->h > DATA_MAX_SIDE || ds->w < 1 || ds->w > DATA_MAX_SIDE)
        return bad_file(path, "image size %dx%d, height and width must be in 1..%d", ds->h,
                        ds->w, DATA_MAX_SIDE);
    if ((rc = check_class_names(file, path, ds->classes)) ||
        (rc = attr_doubles(file, path, "mean", ds->mean, ds->c)) ||
        (rc = attr_doubles(file, path, "std", ds->std, ds->c)))
        return rc;
    for (int c = 0; c < ds->c; c++)
        if (!isfinite(ds->mean[c]) || !(ds->std[c] > 0) || !isfinite(ds->std[c]))
            return bad_file(path, "channel %d has mean %g, std %g; std must be finite and > 0",
                            c, ds->mean[c], ds->std[c]);
    return ds->version >= 2 ? read_header_v2(file, path, ds) : CIGL_OK;
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

/* The stored image size of a split: the root's in format 1, the group's attributes in 2.
 * Stored sizes smaller than the input, or different from it without a crop to take, are
 * refused. */
static int split_size(hid_t file, const char *path, const Dataset *ds, const char *split,
                      Split *s)
{
    s->h = ds->h;
    s->w = ds->w;
    if (ds->version < 2)
        return CIGL_OK;
    hid_t g = H5Gopen2(file, split, H5P_DEFAULT);
    if (g < 0)
        return bad_file(path, "group '/%s' is missing", split);
    int rc = attr_int(g, path, "height", &s->h);
    if (!rc)
        rc = attr_int(g, path, "width", &s->w);
    H5Gclose(g);
    if (rc)
        return rc;
    if (s->h < ds->h || s->w < ds->w || s->h > DATA_MAX_SIDE || s->w > DATA_MAX_SIDE)
        return bad_file(path, "'/%s' stores %dx%d images, which must be at least the input "
                        "size %dx%d and at most %d", split, s->h, s->w, ds->h, ds->w,
                        DATA_MAX_SIDE);
    if (ds->augment == DATA_AUGMENT_NONE && (s->h != ds->h || s->w != ds->w))
        return bad_file(path, "'/%s' stores %dx%d images but the input is %dx%d and "
                        "'augment' is 'none'", split, s->h, s->w, ds->h, ds->w);
    return CIGL_OK;
}

/* Opens one split and checks types and shapes against the header; fills sf->n, s->h, s->w. */
static int open_split(hid_t file, const char *path, const Dataset *ds, const char *split,
                      SplitFile *sf, Split *s)
{
    H5T_class_t cls;
    size_t size;
    H5T_sign_t sign;
    int rank;
    hsize_t d[4] = {0, 0, 0, 0};
    int rc = split_size(file, path, ds, split, s);
    if (rc)
        return rc;
    sf->images = open_array(file, path, split, "images", &cls, &size, &sign, &rank, d);
    if (sf->images < 0)
        return CIGL_ERR_USAGE;
    if (cls != H5T_INTEGER || size != 1 || sign != H5T_SGN_NONE)
        return bad_file(path, "'/%s/images' must be uint8", split);
    if (rank != 4)
        return bad_file(path, "'/%s/images' has rank %d, expected 4 (N x C x H x W)", split,
                        rank);
    if (d[1] != (hsize_t)ds->c || d[2] != (hsize_t)s->h || d[3] != (hsize_t)s->w)
        return bad_file(path, "'/%s/images' is %llu x %llu x %llu x %llu, but the attributes "
                        "say C x H x W = %d x %d x %d", split, (unsigned long long)d[0],
                        (unsigned long long)d[1], (unsigned long long)d[2],
                        (unsigned long long)d[3], ds->c, s->h, s->w);
    if (d[0] < 1)
        return bad_file(path, "'/%s/images' holds no samples", split);
    /* c, h, w >= 1: checked by read_header and split_size */
    size_t sample = (size_t)ds->c * (size_t)s->h * (size_t)s->w;
    /* NOLINTNEXTLINE(clang-analyzer-core.DivideZero) */
    if (d[0] > SIZE_MAX / sample || d[0] > SIZE_MAX / sizeof(int32_t) || d[0] > UINT32_MAX)
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

static size_t split_sample(const Dataset *ds, const Split *s)
{
    return (size_t)ds->c * (size_t)s->h * (size_t)s->w;
}

/* Format 1 has no stored hash: it is computed over the pixels (from memory, or by reading
 * the file in blocks), then the labels, split by split. */
static int hash_v1(const char *path, Dataset *ds, SplitFile sf[2])
{
    Split *sp[2] = {&ds->train, &ds->test};
    uint64_t h = CIGL_CHECKSUM_SEED;
    for (int i = 0; i < 2; i++) {
        size_t sample = split_sample(ds, sp[i]);
        if (sp[i]->images)
            h = checksum_bytes(h, sp[i]->images, sp[i]->n * sample);
        else if (data_hash_pixels(sf[i].images, sp[i]->n, sample, &h))
            return read_failed(path, "the images (to hash them)");
        h = data_hash_labels(h, sp[i]->labels, sp[i]->n);
    }
    ds->hash = h;
    return CIGL_OK;
}

/* Validates everything cheap first (header, both splits' shapes, labels), then reads pixels
 * or opens the streams. */
static int load_open_file(hid_t file, const char *path, DataMode mode, Dataset *ds)
{
    SplitFile sf[2] = {{-1, -1, 0}, {-1, -1, 0}};
    Split *dst[2] = {&ds->train, &ds->test};
    int rc = read_header(file, path, ds);
    for (int i = 0; i < 2 && !rc; i++)
        rc = open_split(file, path, ds, DATA_SPLIT_NAMES[i], &sf[i], dst[i]);
    size_t bytes = 0;
    for (int i = 0; i < 2 && !rc; i++) {
        size_t b = sf[i].n * split_sample(ds, dst[i]);
        if (b > SIZE_MAX - bytes)
            rc = bad_file(path, "%zu + %zu samples are too many to address", sf[0].n, sf[1].n);
        bytes += b;
    }
    for (int i = 0; i < 2 && !rc; i++) {
        dst[i]->n = sf[i].n;
        rc = read_labels(path, DATA_SPLIT_NAMES[i], sf[i].labels, dst[i], ds->classes);
    }
    ds->streamed = mode == DATA_STREAM || (mode == DATA_AUTO && bytes > CIGL_DATA_MEMORY_LIMIT);
    for (int i = 0; i < 2 && !rc; i++)
        rc = ds->streamed ? split_stream_open(&dst[i]->stream, path, DATA_SPLIT_NAMES[i],
                                              split_sample(ds, dst[i]))
                          : read_images(path, DATA_SPLIT_NAMES[i], sf[i].images, dst[i],
                                        split_sample(ds, dst[i]));
    if (!rc && ds->version < 2)
        rc = hash_v1(path, ds, sf);
    split_file_close(&sf[0]);
    split_file_close(&sf[1]);
    return rc;
}

int dataset_open(const char *path, DataMode mode, Dataset *ds)
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
    int rc = load_open_file(file, path, mode, ds);
    if (H5Fclose(file) < 0 && !rc)
        rc = read_failed(path, "the file");
    if (rc)
        dataset_free(ds);
    return rc;
}

int dataset_load(const char *path, Dataset *ds)
{
    return dataset_open(path, DATA_AUTO, ds);
}

int data_mode_parse(const char *text)
{
    if (!strcmp(text, "auto"))
        return DATA_AUTO;
    if (!strcmp(text, "memory"))
        return DATA_MEMORY;
    if (!strcmp(text, "stream"))
        return DATA_STREAM;
    return -1;
}

void dataset_free(Dataset *ds)
{
    if (!ds)
        return;
    Split *sp[2] = {&ds->train, &ds->test};
    for (int i = 0; i < 2; i++) {
        if (sp[i]->stream)
            split_stream_close(sp[i]->stream);
        free(sp[i]->images);
        free(sp[i]->labels);
    }
    memset(ds, 0, sizeof *ds);
}

/* ---------------------------------------------------------------- verification */

int dataset_verify(const char *path)
{
    Dataset ds;
    int rc = dataset_open(path, DATA_STREAM, &ds);
    if (rc)
        return rc;
    if (ds.version < 2) {
        printf("%s: format_version 1 has no stored hash; content hash %016llx (computed)\n",
               path, (unsigned long long)ds.hash);
        dataset_free(&ds);
        return CIGL_OK;
    }
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    uint64_t h = CIGL_CHECKSUM_SEED;
    Split *sp[2] = {&ds.train, &ds.test};
    for (int i = 0; i < 2 && !rc; i++) {
        char name[32];
        snprintf(name, sizeof name, "%s/images", DATA_SPLIT_NAMES[i]);
        hid_t d = file >= 0 ? H5Dopen2(file, name, H5P_DEFAULT) : -1;
        if (d < 0 || data_hash_pixels(d, sp[i]->n, split_sample(&ds, sp[i]), &h))
            rc = read_failed(path, name);
        if (d >= 0)
            H5Dclose(d);
        h = data_hash_labels(h, sp[i]->labels, sp[i]->n);
    }
    if (file >= 0)
        H5Fclose(file);
    if (!rc && h != ds.hash)
        rc = cigl_fail(CIGL_ERR_USAGE, "dataset '%s' is corrupt: its content hashes to %016llx "
                       "but the file says %016llx; re-create it with 'cigl convert'", path,
                       (unsigned long long)h, (unsigned long long)ds.hash);
    else if (!rc)
        printf("%s: ok, content hash %016llx (%zu + %zu samples)\n", path,
               (unsigned long long)h, ds.train.n, ds.test.n);
    dataset_free(&ds);
    return rc;
}
