/* Converts IDX files (the MNIST family's format, gzip-compressed) into cigl's HDF5 schema.
 * IDX: big-endian magic 0x0000TTNN (TT = 0x08 for uint8, NN = number of dimensions), then NN
 * big-endian uint32 dimensions, then the data. Everything is validated before writing. */
#include "cigl/data.h"

#include "cigl/error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#define IDX_UBYTE 0x08
#define IDX_MAX_DIMS 4
#define IDX_MAX_COUNT 10000000u /* far above any IDX dataset; guards against absurd headers */
#define IDX_CHUNK ((size_t)16 << 20) /* bytes read per step while the buffer grows */
#define IDX_INSTALL_HINT "install it with 'apt-get install dataset-fashion-mnist'"

/* What the caller expects of one IDX file: rank, and the sizes of every dimension but the
 * first (the sample count). */
typedef struct {
    int ndims;
    uint32_t inner[IDX_MAX_DIMS - 1];
} IdxShape;

/* Reads exactly `len` bytes; a short read means the file (or its gzip stream) is truncated. */
static int gz_read_exact(gzFile gz, const char *path, void *buf, size_t len)
{
    unsigned char *p = buf;
    while (len > 0) {
        unsigned part = len > (1u << 30) ? (1u << 30) : (unsigned)len;
        int got = gzread(gz, p, part);
        if (got < 0) {
            int zerr;
            const char *msg = gzerror(gz, &zerr);
            return cigl_fail(CIGL_ERR_USAGE, "cannot read '%s': %s (corrupt gzip data); "
                             "re-download or reinstall it", path, msg);
        }
        if ((unsigned)got < part)
            return cigl_fail(CIGL_ERR_USAGE, "cannot read '%s': file is truncated (ends before "
                             "the size its header declares); re-download or reinstall it",
                             path);
        p += got;
        len -= (size_t)got;
    }
    return CIGL_OK;
}

static uint32_t be32(const unsigned char b[4])
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/* Reads and checks the header; returns the sample count in *count and bytes per sample. */
static int idx_header(gzFile gz, const char *path, const IdxShape *want, uint32_t *count,
                      size_t *sample)
{
    unsigned char b[4];
    int rc = gz_read_exact(gz, path, b, 4);
    if (rc)
        return rc;
    uint32_t magic = be32(b), expect = (uint32_t)IDX_UBYTE << 8 | (uint32_t)want->ndims;
    if (magic != expect)
        return cigl_fail(CIGL_ERR_USAGE, "cannot read '%s': magic number 0x%08x, expected "
                         "0x%08x (uint8 IDX with %d dimensions); is it the right file?", path,
                         magic, expect, want->ndims);
    *sample = 1;
    for (int d = 0; d < want->ndims; d++) {
        if ((rc = gz_read_exact(gz, path, b, 4)))
            return rc;
        uint32_t v = be32(b);
        if (d == 0 && (v == 0 || v > IDX_MAX_COUNT))
            return cigl_fail(CIGL_ERR_USAGE, "cannot read '%s': header declares %u samples, "
                             "expected 1..%u; the file is corrupt", path, v, IDX_MAX_COUNT);
        if (d > 0 && v != want->inner[d - 1])
            return cigl_fail(CIGL_ERR_USAGE, "cannot read '%s': dimension %d is %u, expected "
                             "%u; is it the right file?", path, d, v, want->inner[d - 1]);
        if (d == 0)
            *count = v;
        else
            *sample *= v;
    }
    return CIGL_OK;
}

/* Reads a whole uint8 IDX file of the expected shape into a new buffer (count x sample). */
static int idx_read(const char *path, const IdxShape *want, uint32_t *count, uint8_t **data)
{
    *data = NULL;
    if (access(path, R_OK) != 0)
        return cigl_fail(CIGL_ERR_USAGE, "cannot read '%s': %s; %s", path,
                         errno == ENOENT ? "no such file" : strerror(errno), IDX_INSTALL_HINT);
    gzFile gz = gzopen(path, "rb");
    if (!gz)
        return cigl_fail(CIGL_ERR_RUNTIME, "cannot open '%s' with zlib (out of memory?)", path);
    size_t sample = 0;
    int rc = idx_header(gz, path, want, count, &sample);
    /* The buffer grows with the data actually read (found by fuzzing: a 26-byte file whose
     * header declares 10^7 28x28 images made the reader allocate 7.8 GB before failing); a
     * short file now fails as truncated, having allocated at most max(16 MB, twice what it
     * holds). */
    size_t bytes = rc ? 0 : (size_t)*count * sample; /* <= 1e7 * small dims: no overflow */
    for (size_t have = 0, cap = 0; !rc && have < bytes;) {
        size_t part = bytes - have < IDX_CHUNK ? bytes - have : IDX_CHUNK;
        if (have + part > cap) {
            cap = cap * 2 > have + part ? cap * 2 : have + part;
            cap = cap < bytes ? cap : bytes;
            uint8_t *grown = realloc(*data, cap);
            if (!grown) {
                rc = cigl_fail(CIGL_ERR_RUNTIME, "out of memory reading '%s' (%zu bytes); free "
                               "memory or convert on a larger machine", path, cap);
                break;
            }
            *data = grown;
        }
        rc = gz_read_exact(gz, path, *data + have, part);
        have += part;
    }
    unsigned char extra;
    int more = rc ? 0 : gzread(gz, &extra, 1);
    if (more > 0)
        rc = cigl_fail(CIGL_ERR_USAGE, "cannot read '%s': unexpected data after the %u "
                       "samples its header declares; the file is corrupt", path, *count);
    else if (more < 0)
        rc = cigl_fail(CIGL_ERR_USAGE, "cannot read '%s': corrupt gzip data at the end; "
                       "re-download or reinstall it", path);
    gzclose(gz); /* read-only: a close failure cannot lose data */
    if (rc) {
        free(*data);
        *data = NULL;
    }
    return rc;
}

/* Reads one split (images + labels) of 28x28 uint8 images with labels < classes. */
static int read_split(const char *dir, const char *prefix, int classes, Split *out)
{
    static const IdxShape images_shape = {3, {28, 28, 0}}, labels_shape = {1, {0, 0, 0}};
    char ipath[4096], lpath[4096];
    snprintf(ipath, sizeof ipath, "%s/%s-images-idx3-ubyte.gz", dir, prefix);
    snprintf(lpath, sizeof lpath, "%s/%s-labels-idx1-ubyte.gz", dir, prefix);
    uint32_t ni = 0, nl = 0;
    uint8_t *images = NULL, *labels = NULL;
    int rc = idx_read(ipath, &images_shape, &ni, &images);
    if (!rc)
        rc = idx_read(lpath, &labels_shape, &nl, &labels);
    if (!rc && ni != nl)
        rc = cigl_fail(CIGL_ERR_USAGE, "'%s' holds %u images but '%s' holds %u labels; the "
                       "files do not belong together, reinstall them", ipath, ni, lpath, nl);
    for (uint32_t i = 0; !rc && i < nl; i++)
        if (labels[i] >= classes)
            rc = cigl_fail(CIGL_ERR_USAGE, "'%s': label %u is %u, expected 0..%d; the file is "
                           "corrupt", lpath, i, labels[i], classes - 1);
    if (!rc) {
        out->labels = cigl_malloc((size_t)nl * sizeof(int32_t), "labels");
        rc = out->labels ? CIGL_OK : CIGL_ERR_RUNTIME;
    }
    if (!rc) {
        for (uint32_t i = 0; i < nl; i++)
            out->labels[i] = labels[i];
        out->n = ni;
        out->images = images; /* IDX order is already N x H x W = N x 1 x H x W */
        images = NULL;
    }
    free(images);
    free(labels);
    return rc;
}

static void split_release(Split *s)
{
    free(s->images);
    free(s->labels);
    memset(s, 0, sizeof *s);
}

int convert_fashion_mnist(const char *src_dir, const char *out_path)
{
    static const char *const names[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                          "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};
    Split train = {0}, test = {0};
    int rc = read_split(src_dir, "train", 10, &train);
    if (!rc)
        rc = read_split(src_dir, "t10k", 10, &test);
    if (!rc)
        rc = dataset_write(out_path, "fashion-mnist", 1, 28, 28, 10, names, &train, &test);
    split_release(&train);
    split_release(&test);
    return rc;
}
