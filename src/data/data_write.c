/* Writing datasets in cigl's HDF5 schema, format 2 (datasets/README.md), sample block by
 * sample block so that a converter never holds a whole ImageNet in memory: the file is
 * created under a temporary name, the channel statistics and the content hash accumulate
 * while appending, and closing writes the attributes, fsyncs and renames. Any failure removes
 * the temporary file, so a failed conversion leaves no output. */
#include "data_internal.h"

#include "cigl/error.h"
#include "cigl/h5io.h"

#include <errno.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct DatasetWriter {
    char path[CIGL_PATH_MAX], tmp[CIGL_PATH_MAX + CIGL_TMP_SUFFIX_MAX];
    DatasetSpec spec;
    hid_t file, images[2];
    size_t done[2], sample[2];
    int32_t *labels[2];
    uint64_t s1[CIGL_MAX_CHANNELS];
    double s2[CIGL_MAX_CHANNELS]; /* uint64 could overflow for huge splits: 255^2 * 2^44 */
    uint64_t hash;
    int train_labels_hashed;
};

/* ---------------------------------------------------------------- attributes */

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

/* Integers are little-endian int32 (the content hash uint64). */
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

static int put_string(hid_t loc, const char *name, const char *s)
{
    return put_strings(loc, name, 0, &s);
}

static int writer_fail(DatasetWriter *w, int status, const char *what)
{
    return cigl_fail(status, "cannot write dataset '%s': %s", w->path, what);
}

static int check_spec(const char *path, const DatasetSpec *s)
{
    if (!s->name || !s->name[0] || strlen(s->name) >= sizeof(((Dataset *)0)->name))
        return cigl_fail(CIGL_ERR_USAGE, "cannot write dataset '%s': the name must have 1..%zu "
                         "characters", path, sizeof(((Dataset *)0)->name) - 1);
    if (s->c < 1 || s->c > CIGL_MAX_CHANNELS || s->h < 1 || s->h > DATA_MAX_SIDE || s->w < 1 ||
        s->w > DATA_MAX_SIDE || s->classes < 2 || s->classes > CIGL_MAX_CLASSES)
        return cigl_fail(CIGL_ERR_USAGE, "cannot write dataset '%s': shape C=%d H=%d W=%d, "
                         "classes=%d is outside C 1..%d, H and W 1..%d, classes 2..%d", path,
                         s->c, s->h, s->w, s->classes, CIGL_MAX_CHANNELS, DATA_MAX_SIDE,
                         CIGL_MAX_CLASSES);
    for (int k = 0; k < s->classes; k++)
        if (!s->class_names || !s->class_names[k])
            return cigl_fail(CIGL_ERR_USAGE, "cannot write dataset '%s': class name %d is "
                             "missing; pass one name per class", path, k);
    for (int i = 0; i < 2; i++) {
        if (s->n[i] == 0)
            return cigl_fail(CIGL_ERR_USAGE, "cannot write dataset '%s': the %s split is "
                             "empty; every dataset needs at least one train and one test "
                             "sample", path, DATA_SPLIT_NAMES[i]);
        if (s->n[i] > UINT32_MAX)
            return cigl_fail(CIGL_ERR_USAGE, "cannot write dataset '%s': %zu %s samples, at "
                             "most %u are supported", path, s->n[i], DATA_SPLIT_NAMES[i],
                             UINT32_MAX);
        int ok = s->split_h[i] >= s->h && s->split_w[i] >= s->w &&
                 s->split_h[i] <= DATA_MAX_SIDE && s->split_w[i] <= DATA_MAX_SIDE &&
                 (s->augment == DATA_AUGMENT_RRC ||
                  (s->split_h[i] == s->h && s->split_w[i] == s->w));
        if (!ok)
            return cigl_fail(CIGL_ERR_USAGE, "cannot write dataset '%s': %s images %dx%d do not "
                             "fit the input size %dx%d (stored images are at least the input "
                             "size, and equal to it without a crop augmentation)", path,
                             DATA_SPLIT_NAMES[i], s->split_h[i], s->split_w[i], s->h, s->w);
    }
    if (s->augment != DATA_AUGMENT_NONE && s->augment != DATA_AUGMENT_RRC)
        return cigl_fail(CIGL_ERR_USAGE, "cannot write dataset '%s': unknown augmentation "
                         "kind %d", path, s->augment);
    return CIGL_OK;
}

/* The images dataset of one split, chunked along samples (about 1 MiB per chunk, at least
 * one sample) and uncompressed so that streamed reads can fetch single samples. */
static int create_split(DatasetWriter *w, int i)
{
    const DatasetSpec *s = &w->spec;
    hid_t g = H5Gcreate2(w->file, DATA_SPLIT_NAMES[i], H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0)
        return -1;
    size_t per_chunk = DATA_CHUNK_BYTES / w->sample[i] ? DATA_CHUNK_BYTES / w->sample[i] : 1;
    hsize_t dims[4] = {s->n[i], (hsize_t)s->c, (hsize_t)s->split_h[i], (hsize_t)s->split_w[i]};
    hsize_t chunk[4] = {s->n[i] < per_chunk ? s->n[i] : per_chunk, dims[1], dims[2], dims[3]};
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    hid_t space = H5Screate_simple(4, dims, NULL);
    int rc = dcpl < 0 || space < 0 || H5Pset_chunk(dcpl, 4, chunk) < 0 ? -1 : 0;
    if (!rc) {
        w->images[i] = H5Dcreate2(g, "images", H5T_STD_U8LE, space, H5P_DEFAULT, dcpl,
                                  H5P_DEFAULT);
        rc = w->images[i] < 0 ? -1 : 0;
    }
    if (!rc && (put_int(g, "height", s->split_h[i]) || put_int(g, "width", s->split_w[i])))
        rc = -1;
    if (space >= 0)
        H5Sclose(space);
    if (dcpl >= 0)
        H5Pclose(dcpl);
    if (H5Gclose(g) < 0)
        rc = -1;
    return rc;
}

int dataset_writer_open(DatasetWriter **out, const char *path, const DatasetSpec *spec)
{
    *out = NULL;
    int rc = check_spec(path, spec);
    if (rc)
        return rc;
    if (strlen(path) >= 4000)
        return cigl_fail(CIGL_ERR_USAGE, "cannot write dataset '%s': path too long; use a "
                         "shorter output path", path);
    DatasetWriter *w = cigl_calloc(1, sizeof *w, "dataset writer");
    if (!w)
        return CIGL_ERR_RUNTIME;
    snprintf(w->path, sizeof w->path, "%s", path);
    snprintf(w->tmp, sizeof w->tmp, "%s.tmp.%ld", path, (long)getpid());
    w->spec = *spec;
    w->file = w->images[0] = w->images[1] = -1;
    w->hash = CIGL_CHECKSUM_SEED;
    for (int i = 0; i < 2; i++) {
        w->sample[i] = (size_t)spec->c * (size_t)spec->split_h[i] * (size_t)spec->split_w[i];
        w->labels[i] = cigl_malloc(spec->n[i] * sizeof(int32_t), "dataset labels");
        if (!w->labels[i]) {
            dataset_writer_abort(w);
            return CIGL_ERR_RUNTIME;
        }
    }
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* our one-line errors replace HDF5's stack dumps */
    errno = 0;
    w->file = H5Fcreate(w->tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    rc = w->file < 0 || create_split(w, 0) || create_split(w, 1) ? -1 : 0;
    if (rc) {
        int err = errno;
        cigl_fail(CIGL_ERR_RUNTIME, "cannot write dataset '%s': HDF5 cannot create '%s' (%s); "
                  "check that the directory exists, is writable and has free space", path,
                  w->tmp, err ? strerror(err) : "no detail");
        dataset_writer_abort(w);
        return CIGL_ERR_RUNTIME;
    }
    *out = w;
    return CIGL_OK;
}

/* Channel sums of pixel values and their squares over the training split. */
static void add_stats(DatasetWriter *w, const uint8_t *images, size_t n)
{
    const size_t plane = (size_t)w->spec.split_h[0] * (size_t)w->spec.split_w[0];
    for (size_t i = 0; i < n; i++)
        for (int ch = 0; ch < w->spec.c; ch++) {
            const uint8_t *p = images + (i * (size_t)w->spec.c + (size_t)ch) * plane;
            uint64_t a = 0, b = 0;
            for (size_t k = 0; k < plane; k++) {
                a += p[k];
                b += (uint64_t)p[k] * p[k];
            }
            w->s1[ch] += a;
            w->s2[ch] += (double)b;
        }
}

/* The content hash is over train pixels, train labels, test pixels, test labels. */
static void hash_train_labels(DatasetWriter *w)
{
    if (w->train_labels_hashed)
        return;
    w->hash = data_hash_labels(w->hash, w->labels[0], w->done[0]);
    w->train_labels_hashed = 1;
}

int dataset_writer_append(DatasetWriter *w, int split, const uint8_t *images,
                          const int32_t *labels, size_t n)
{
    if (split != 0 && split != 1)
        return writer_fail(w, CIGL_ERR_USAGE, "split must be 0 (train) or 1 (test)");
    if (split == 0 && w->done[1])
        return writer_fail(w, CIGL_ERR_USAGE, "train samples must be appended before test "
                           "samples");
    if (n > w->spec.n[split] - w->done[split])
        return cigl_fail(CIGL_ERR_USAGE, "cannot write dataset '%s': more %s samples than the "
                         "%zu announced", w->path, DATA_SPLIT_NAMES[split], w->spec.n[split]);
    for (size_t i = 0; i < n; i++)
        if (labels[i] < 0 || labels[i] >= w->spec.classes)
            return cigl_fail(CIGL_ERR_USAGE, "cannot write dataset '%s': %s label %zu is %d, "
                             "outside [0, %d); fix the source labels", w->path,
                             DATA_SPLIT_NAMES[split], w->done[split] + i, labels[i],
                             w->spec.classes);
    if (n == 0)
        return CIGL_OK;
    if (split == 1 && w->done[0] < w->spec.n[0])
        return writer_fail(w, CIGL_ERR_USAGE, "test samples appended before all train "
                           "samples");
    const DatasetSpec *s = &w->spec;
    hsize_t start[4] = {w->done[split], 0, 0, 0};
    hsize_t count[4] = {n, (hsize_t)s->c, (hsize_t)s->split_h[split], (hsize_t)s->split_w[split]};
    hid_t fs = H5Dget_space(w->images[split]);
    /* the memory space has the selection's shape: HDF5 copies whole rows */
    hid_t ms = H5Screate_simple(4, count, NULL);
    errno = 0;
    int bad = fs < 0 || ms < 0 ||
              H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) < 0 ||
              H5Dwrite(w->images[split], H5T_NATIVE_UINT8, ms, fs, H5P_DEFAULT, images) < 0;
    int err = errno;
    if (fs >= 0)
        H5Sclose(fs);
    if (ms >= 0)
        H5Sclose(ms);
    if (bad)
        return cigl_fail(CIGL_ERR_RUNTIME, "cannot write dataset '%s': HDF5 write failed (%s); "
                         "check free space", w->path, err ? strerror(err) : "no detail");
    if (split == 0)
        add_stats(w, images, n);
    else
        hash_train_labels(w);
    w->hash = checksum_bytes(w->hash, images, n * w->sample[split]);
    memcpy(w->labels[split] + w->done[split], labels, n * sizeof(int32_t));
    w->done[split] += n;
    return CIGL_OK;
}

/* Root attributes; mean and std of pixel/255 over the stored training pixels. */
static int write_root(DatasetWriter *w)
{
    const DatasetSpec *s = &w->spec;
    double mean[CIGL_MAX_CHANNELS], std[CIGL_MAX_CHANNELS];
    double count = (double)s->n[0] * (double)s->split_h[0] * (double)s->split_w[0];
    for (int ch = 0; ch < s->c; ch++) {
        double m = (double)w->s1[ch] / count / 255.0;
        double var = w->s2[ch] / count / (255.0 * 255.0) - m * m;
        mean[ch] = m;
        /* A constant channel would divide by zero when normalising; it is only centred. */
        std[ch] = var > 1e-24 ? sqrt(var) : 1.0;
    }
    const char *aug = s->augment == DATA_AUGMENT_RRC ? DATA_AUGMENT_NAME_RRC
                                                     : DATA_AUGMENT_NAME_NONE;
    if (put_string(w->file, "format", DATA_FORMAT_NAME) ||
        put_int(w->file, "format_version", CIGL_DATA_FORMAT_VERSION) ||
        put_string(w->file, "name", s->name) || put_int(w->file, "classes", s->classes) ||
        put_strings(w->file, "class_names", (hsize_t)s->classes, s->class_names) ||
        put_int(w->file, "channels", s->c) || put_int(w->file, "height", s->h) ||
        put_int(w->file, "width", s->w))
        return -1;
    if (put_attr(w->file, "mean", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, (hsize_t)s->c, mean) ||
        put_attr(w->file, "std", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, (hsize_t)s->c, std) ||
        put_string(w->file, "augment", aug) ||
        put_attr(w->file, "content_hash", H5T_STD_U64LE, H5T_NATIVE_UINT64, 0, &w->hash))
        return -1;
    return 0;
}

static int write_labels(DatasetWriter *w)
{
    for (int i = 0; i < 2; i++) {
        hid_t g = H5Gopen2(w->file, DATA_SPLIT_NAMES[i], H5P_DEFAULT);
        hsize_t n = w->spec.n[i];
        hid_t s = H5Screate_simple(1, &n, NULL);
        hid_t d = g >= 0 && s >= 0 ? H5Dcreate2(g, "labels", H5T_STD_I32LE, s, H5P_DEFAULT,
                                                H5P_DEFAULT, H5P_DEFAULT) : -1;
        int bad = d < 0 || H5Dwrite(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                                    w->labels[i]) < 0;
        if (d >= 0 && H5Dclose(d) < 0)
            bad = 1;
        if (s >= 0)
            H5Sclose(s);
        if (g >= 0 && H5Gclose(g) < 0)
            bad = 1;
        if (bad)
            return -1;
    }
    return 0;
}

static void writer_release(DatasetWriter *w)
{
    for (int i = 0; i < 2; i++) {
        if (w->images[i] >= 0)
            H5Dclose(w->images[i]);
        free(w->labels[i]);
    }
    if (w->file >= 0)
        H5Fclose(w->file);
    free(w);
}

void dataset_writer_abort(DatasetWriter *w)
{
    if (!w)
        return;
    char tmp[sizeof w->tmp];
    memcpy(tmp, w->tmp, sizeof tmp);
    writer_release(w);
    unlink(tmp); /* may not exist yet; nothing else to undo */
}

int dataset_writer_close(DatasetWriter *w)
{
    for (int i = 0; i < 2; i++)
        if (w->done[i] != w->spec.n[i]) {
            cigl_fail(CIGL_ERR_USAGE, "cannot write dataset '%s': %zu %s samples written, %zu "
                      "announced", w->path, w->done[i], DATA_SPLIT_NAMES[i], w->spec.n[i]);
            dataset_writer_abort(w);
            return CIGL_ERR_USAGE;
        }
    hash_train_labels(w);
    w->hash = data_hash_labels(w->hash, w->labels[1], w->done[1]);
    errno = 0;
    const char *step = NULL;
    if (write_labels(w) || write_root(w))
        step = "HDF5 could not write it";
    for (int i = 0; i < 2; i++) {
        if (w->images[i] >= 0 && H5Dclose(w->images[i]) < 0 && !step)
            step = "HDF5 could not write it";
        w->images[i] = -1;
    }
    if (H5Fclose(w->file) < 0 && !step)
        step = "HDF5 could not write it";
    w->file = -1;
    if (!step && fsync_path(w->tmp) != 0)
        step = "fsync failed";
    if (!step && rename(w->tmp, w->path) != 0)
        step = "rename of the temporary file failed";
    if (step) {
        int err = errno;
        cigl_fail(CIGL_ERR_RUNTIME, "cannot write dataset '%s': %s (%s); check that the "
                  "directory exists, is writable and has free space", w->path, step,
                  err ? strerror(err) : "no detail");
        dataset_writer_abort(w);
        return CIGL_ERR_RUNTIME;
    }
    char dir[CIGL_PATH_MAX];
    snprintf(dir, sizeof dir, "%s", w->path);
    fsync_path(dirname(dir)); /* the rename is durable; a failure here loses nothing */
    writer_release(w);
    return CIGL_OK;
}

/* ---------------------------------------------------------------- whole datasets */

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

int dataset_write(const char *path, const char *name, int c, int h, int w, int classes,
                  const char *const *class_names, const Split *train, const Split *test)
{
    DatasetSpec spec = {name, c, h, w, classes, class_names, DATA_AUGMENT_NONE,
                        {train ? train->n : 0, test ? test->n : 0}, {h, h}, {w, w}};
    int rc = check_spec(path, &spec);
    if (!rc)
        rc = check_split_arg(path, "train", train, classes);
    if (!rc)
        rc = check_split_arg(path, "test", test, classes);
    DatasetWriter *dw = NULL;
    if (!rc)
        rc = dataset_writer_open(&dw, path, &spec);
    if (!rc)
        rc = dataset_writer_append(dw, 0, train->images, train->labels, train->n);
    /* check_split_arg refused a NULL split */
    if (!rc) /* NOLINTNEXTLINE(clang-analyzer-core.NullDereference) */
        rc = dataset_writer_append(dw, 1, test->images, test->labels, test->n);
    if (!rc)
        return dataset_writer_close(dw);
    dataset_writer_abort(dw);
    return rc;
}
