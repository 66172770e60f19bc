/* Dataset schema round trip, normalisation and augmentation, rejection of bad files, and the
 * Fashion-MNIST IDX converter (synthetic files, plus the real data when installed). */
#include "check.h"
#include "test_util.h"

#include "cigl/data.h"
#include "cigl/error.h"
#include "cigl/rng.h"

#include <dirent.h>
#include <fcntl.h>
#include <hdf5.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#define C 3
#define H 4
#define W 5
#define NTRAIN 7
#define NTEST 3
#define CLASSES 4
#define SAMPLE (C * H * W)
#define FMNIST_DIR "/usr/share/datasets/fashion-mnist"

static const char *const CLASS_NAMES[CLASSES] = {"zero", "one", "two", "three"};

/* ---------------------------------------------------------------- helpers */

static void make_dir(char dir[64])
{
    snprintf(dir, 64, "/tmp/cigl_test_data_XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        exit(1);
    }
}

/* Removes a flat temporary directory and everything in it. */
static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char path[512];
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            unlink(path);
        }
    closedir(d);
    rmdir(dir);
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    if (d)
        closedir(d);
    return n;
}

/* Deterministic pixels covering 0 and 255. */
static void fill_split(Split *s, size_t n, uint8_t *images, int32_t *labels, uint32_t salt)
{
    uint32_t state = 12345u + salt;
    for (size_t i = 0; i < n * SAMPLE; i++) {
        state = state * 1664525u + 1013904223u;
        images[i] = (uint8_t)(state >> 24);
    }
    images[0] = 0;
    images[1] = 255;
    for (size_t i = 0; i < n; i++)
        labels[i] = (int32_t)((i * 3 + salt) % CLASSES);
    s->n = n;
    s->images = images;
    s->labels = labels;
}

typedef struct {
    uint8_t train_images[NTRAIN * SAMPLE], test_images[NTEST * SAMPLE];
    int32_t train_labels[NTRAIN], test_labels[NTEST];
    Split train, test;
} Synthetic;

static void synthetic(Synthetic *s)
{
    fill_split(&s->train, NTRAIN, s->train_images, s->train_labels, 0);
    fill_split(&s->test, NTEST, s->test_images, s->test_labels, 1);
}

static int write_synthetic(const char *path, const Synthetic *s)
{
    return dataset_write(path, "synthetic", C, H, W, CLASSES, CLASS_NAMES, &s->train, &s->test);
}

/* Two-pass reference statistics of pixel/255 per channel. */
static void reference_stats(const Split *s, double mean[C], double std[C])
{
    for (int c = 0; c < C; c++) {
        double sum = 0, sq = 0;
        size_t count = s->n * H * W;
        for (size_t i = 0; i < s->n; i++)
            for (int k = 0; k < H * W; k++)
                sum += s->images[i * SAMPLE + c * H * W + k] / 255.0;
        mean[c] = sum / count;
        for (size_t i = 0; i < s->n; i++)
            for (int k = 0; k < H * W; k++) {
                double d = s->images[i * SAMPLE + c * H * W + k] / 255.0 - mean[c];
                sq += d * d;
            }
        std[c] = sqrt(sq / count);
    }
}

static int dataset_is_empty(const Dataset *ds)
{
    return !ds->train.images && !ds->train.labels && !ds->test.images && !ds->test.labels &&
           ds->train.n == 0 && ds->test.n == 0 && ds->c == 0 && ds->hash == 0;
}

/* ---------------------------------------------------------------- (a) round trip */

static void test_round_trip(void)
{
    char dir[64], path[128], path2[128];
    make_dir(dir);
    snprintf(path, sizeof path, "%s/d.h5", dir);
    snprintf(path2, sizeof path2, "%s/d2.h5", dir);
    Synthetic s;
    synthetic(&s);
    CHECK(write_synthetic(path, &s) == CIGL_OK, "write failed");
    CHECK(count_entries(dir) == 1, "temporary file left behind: %d entries", count_entries(dir));

    Dataset ds;
    CHECK(dataset_load(path, &ds) == CIGL_OK, "load failed");
    CHECK(ds.c == C && ds.h == H && ds.w == W && ds.classes == CLASSES, "shape %d %d %d %d",
          ds.c, ds.h, ds.w, ds.classes);
    CHECK(strcmp(ds.name, "synthetic") == 0, "name '%s'", ds.name);
    CHECK(ds.train.n == NTRAIN && ds.test.n == NTEST, "n %zu %zu", ds.train.n, ds.test.n);
    if (ds.train.n == NTRAIN && ds.test.n == NTEST) {
        CHECK(memcmp(ds.train.images, s.train_images, sizeof s.train_images) == 0, "train px");
        CHECK(memcmp(ds.test.images, s.test_images, sizeof s.test_images) == 0, "test px");
        CHECK(memcmp(ds.train.labels, s.train_labels, sizeof s.train_labels) == 0, "train y");
        CHECK(memcmp(ds.test.labels, s.test_labels, sizeof s.test_labels) == 0, "test y");
    }
    double mean[C], std[C];
    reference_stats(&s.train, mean, std);
    for (int c = 0; c < C; c++) {
        CHECK_CLOSE(ds.mean[c], mean[c], 1e-12, 0, "mean");
        CHECK_CLOSE(ds.std[c], std[c], 1e-12, 0, "std");
    }

    /* The hash is a function of the content only: stable across loads and files. */
    Dataset again;
    CHECK(write_synthetic(path2, &s) == CIGL_OK, "second write failed");
    CHECK(dataset_load(path2, &again) == CIGL_OK, "second load failed");
    CHECK(again.hash == ds.hash && ds.hash != 0, "hash %llx vs %llx",
          (unsigned long long)again.hash, (unsigned long long)ds.hash);
    dataset_free(&again);
    s.test_images[NTEST * SAMPLE - 1] ^= 1;
    CHECK(write_synthetic(path2, &s) == CIGL_OK, "third write failed");
    CHECK(dataset_load(path2, &again) == CIGL_OK, "third load failed");
    CHECK(again.hash != ds.hash, "hash unchanged after a pixel changed");
    dataset_free(&again);
    s.test_images[NTEST * SAMPLE - 1] ^= 1;

    /* Images are chunked along samples: all 7 fit in one 1 MiB chunk. */
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t d = H5Dopen2(f, "/train/images", H5P_DEFAULT);
    hid_t p = H5Dget_create_plist(d);
    hsize_t chunk[4] = {0, 0, 0, 0};
    CHECK(H5Pget_chunk(p, 4, chunk) == 4, "images not chunked");
    CHECK(chunk[0] == NTRAIN && chunk[1] == C && chunk[2] == H && chunk[3] == W,
          "chunk %llu %llu %llu %llu", (unsigned long long)chunk[0],
          (unsigned long long)chunk[1], (unsigned long long)chunk[2],
          (unsigned long long)chunk[3]);
    H5Pclose(p);
    H5Dclose(d);
    H5Fclose(f);

    dataset_free(&ds);
    CHECK(dataset_is_empty(&ds), "dataset_free left data behind");
    CHECK(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL) == 0, "HDF5 objects left open");
    remove_dir(dir);
}

/* uint8 labels (as some tools write them) are read as int32. */
static void test_uint8_labels(void)
{
    char dir[64], path[128];
    make_dir(dir);
    snprintf(path, sizeof path, "%s/d.h5", dir);
    Synthetic s;
    synthetic(&s);
    CHECK(write_synthetic(path, &s) == CIGL_OK, "write failed");
    uint8_t small[NTEST];
    for (int i = 0; i < NTEST; i++)
        small[i] = (uint8_t)s.test_labels[i];
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    hsize_t n = NTEST;
    hid_t sp = H5Screate_simple(1, &n, NULL);
    CHECK(H5Ldelete(f, "/test/labels", H5P_DEFAULT) >= 0, "delete");
    hid_t d = H5Dcreate2(f, "/test/labels", H5T_STD_U8LE, sp, H5P_DEFAULT, H5P_DEFAULT,
                         H5P_DEFAULT);
    CHECK(H5Dwrite(d, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, small) >= 0, "write");
    H5Dclose(d);
    H5Sclose(sp);
    H5Fclose(f);
    Dataset ds;
    CHECK(dataset_load(path, &ds) == CIGL_OK, "load with uint8 labels failed");
    for (int i = 0; i < NTEST && ds.test.labels; i++)
        CHECK(ds.test.labels[i] == s.test_labels[i], "label %d: %d", i, ds.test.labels[i]);
    dataset_free(&ds);
    remove_dir(dir);
}

static void test_write_refuses_bad_input(void)
{
    char dir[64], path[128], err[1024];
    make_dir(dir);
    snprintf(path, sizeof path, "%s/d.h5", dir);
    Synthetic s;
    synthetic(&s);
    Capture cap;
    Split empty = {.n = 0, .images = s.test_images, .labels = s.test_labels};
    capture_begin(&cap, dir);
    int rc = dataset_write(path, "x", C, H, W, CLASSES, CLASS_NAMES, &s.train, &empty);
    capture_end(&cap, err, sizeof err);
    CHECK(rc == CIGL_ERR_USAGE && strstr(err, "empty"), "rc %d: %s", rc, err);
    s.train_labels[2] = CLASSES;
    capture_begin(&cap, dir);
    rc = write_synthetic(path, &s);
    capture_end(&cap, err, sizeof err);
    CHECK(rc == CIGL_ERR_USAGE && strstr(err, "label 2"), "rc %d: %s", rc, err);
    CHECK(access(path, F_OK) != 0, "file written despite errors");
    snprintf(path, sizeof path, "%s/no/such/dir/d.h5", dir);
    s.train_labels[2] = 0;
    capture_begin(&cap, dir);
    rc = write_synthetic(path, &s);
    capture_end(&cap, err, sizeof err);
    CHECK(rc == CIGL_ERR_RUNTIME && count_lines(err) == 1, "rc %d: %s", rc, err);
    CHECK(count_entries(dir) == 0, "left %d files", count_entries(dir));
    remove_dir(dir);
}

/* ---------------------------------------------------------------- (b) gathering */

static float normalised(const Dataset *ds, int c, int v)
{
    return (float)((v / 255.0 - ds->mean[c]) / ds->std[c]);
}

/* Reference crop+flip of one sample, written independently of src/data.c. */
static void reference_sample(const Dataset *ds, const uint8_t *img, int pad, int dy, int dx,
                             int flip, float *out)
{
    for (int c = 0; c < C; c++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                int cx = flip ? W - 1 - x : x;          /* column in the cropped image */
                int sy = y + dy - pad, sx = cx + dx - pad; /* position in the original */
                int v = sy >= 0 && sy < H && sx >= 0 && sx < W ? img[(c * H + sy) * W + sx] : 0;
                out[(c * H + y) * W + x] = normalised(ds, c, v);
            }
}

static int load_synthetic(const char *dir, Dataset *ds)
{
    char path[128];
    snprintf(path, sizeof path, "%s/d.h5", dir);
    Synthetic s;
    synthetic(&s);
    if (write_synthetic(path, &s) != CIGL_OK)
        return -1;
    return dataset_load(path, ds);
}

#define BATCH 64

static void test_gather_normalise(void)
{
    char dir[64];
    make_dir(dir);
    Dataset ds;
    CHECK(load_synthetic(dir, &ds) == CIGL_OK, "load failed");
    uint32_t idx[NTRAIN];
    for (int i = 0; i < NTRAIN; i++)
        idx[i] = (uint32_t)(NTRAIN - 1 - i); /* reversed: checks the gather follows idx */
    float x[NTRAIN * SAMPLE];
    int32_t y[NTRAIN];
    split_gather(&ds, &ds.train, idx, NTRAIN, NULL, x, y);
    for (int i = 0; i < NTRAIN; i++) {
        CHECK(y[i] == ds.train.labels[idx[i]], "label %d", i);
        for (int k = 0; k < SAMPLE; k++) {
            int c = k / (H * W);
            double want = (ds.train.images[idx[i] * SAMPLE + k] / 255.0 - ds.mean[c]) /
                          ds.std[c];
            CHECK_CLOSE(x[i * SAMPLE + k], want, 1e-6, 1e-6, "normalised pixel");
        }
    }
    /* An Augment with nothing switched on is the identity too. */
    Augment none = {0, 0, 7, 3};
    float x2[NTRAIN * SAMPLE];
    split_gather(&ds, &ds.train, idx, NTRAIN, &none, x2, y);
    CHECK(memcmp(x, x2, sizeof x) == 0, "no-op augmentation changed the batch");
    dataset_free(&ds);
    remove_dir(dir);
}

static void test_gather_augment(void)
{
    char dir[64];
    make_dir(dir);
    Dataset ds;
    CHECK(load_synthetic(dir, &ds) == CIGL_OK, "load failed");
    uint32_t idx[BATCH];
    for (int i = 0; i < BATCH; i++)
        idx[i] = (uint32_t)(i % NTRAIN);
    static float x[BATCH * SAMPLE], x2[BATCH * SAMPLE], want[SAMPLE];
    int32_t y[BATCH];
    const int pad = 2;
    int seen_dy[2 * 2 + 1] = {0}, seen_dx[2 * 2 + 1] = {0}, seen_flip[2] = {0};
    for (uint64_t epoch = 0; epoch < 6; epoch++) {
        Augment aug = {pad, 1, 42, epoch};
        split_gather(&ds, &ds.train, idx, BATCH, &aug, x, y);
        for (int i = 0; i < BATCH; i++) {
            /* Documented keying: index 4*sample + {0: dy, 1: dx, 2: flip}. */
            uint64_t k = 4 * (uint64_t)idx[i];
            int dy = (int)rng_below(42, RNG_AUGMENT, epoch, k + 0, 2 * pad + 1);
            int dx = (int)rng_below(42, RNG_AUGMENT, epoch, k + 1, 2 * pad + 1);
            int flip = (int)rng_below(42, RNG_AUGMENT, epoch, k + 2, 2);
            seen_dy[dy] = seen_dx[dx] = seen_flip[flip] = 1;
            reference_sample(&ds, ds.train.images + idx[i] * SAMPLE, pad, dy, dx, flip, want);
            for (int j = 0; j < SAMPLE; j++)
                CHECK_CLOSE(x[i * SAMPLE + j], want[j], 1e-6, 1e-6, "augmented pixel");
            CHECK(y[i] == ds.train.labels[idx[i]], "label %d", i);
        }
    }
    for (int v = 0; v <= 2 * pad; v++)
        CHECK(seen_dy[v] && seen_dx[v], "offset %d never drawn (dy %d, dx %d)", v, seen_dy[v],
              seen_dx[v]);
    CHECK(seen_flip[0] && seen_flip[1], "flip never varied");

    /* A border pixel is zero before normalisation, i.e. -mean/std after: with dy = 0 the
     * image moves down by pad = 2 rows, so the top two rows are all border. */
    int border_seen = 0;
    for (uint64_t epoch = 0; epoch < 64 && !border_seen; epoch++) {
        Augment aug = {pad, 0, 42, epoch};
        split_gather(&ds, &ds.train, idx, NTRAIN, &aug, x, y);
        for (int i = 0; i < NTRAIN; i++) {
            if (rng_below(42, RNG_AUGMENT, epoch, 4 * (uint64_t)idx[i], 2 * pad + 1) != 0)
                continue;
            border_seen = 1;
            for (int c = 0; c < C; c++)
                for (int yy = 0; yy < pad; yy++)
                    for (int xx = 0; xx < W; xx++)
                        CHECK_CLOSE(x[i * SAMPLE + (c * H + yy) * W + xx],
                                    -ds.mean[c] / ds.std[c], 1e-6, 1e-6, "border");
        }
    }
    CHECK(border_seen, "dy = 0 never drawn in 64 epochs");

    /* Same (seed, epoch, idx): same batch. Another epoch: some sample differs. */
    Augment a0 = {pad, 1, 9, 0}, a1 = {pad, 1, 9, 1};
    split_gather(&ds, &ds.train, idx, BATCH, &a0, x, y);
    split_gather(&ds, &ds.train, idx, BATCH, &a0, x2, y);
    CHECK(memcmp(x, x2, sizeof x) == 0, "same key gave a different batch");
    split_gather(&ds, &ds.train, idx, BATCH, &a1, x2, y);
    CHECK(memcmp(x, x2, sizeof x) != 0, "a new epoch drew the same augmentation");
    dataset_free(&ds);
    remove_dir(dir);
}

/* Flip alone mirrors every row of each flipped sample and leaves the others untouched. */
static void test_gather_flip(void)
{
    char dir[64];
    make_dir(dir);
    Dataset ds;
    CHECK(load_synthetic(dir, &ds) == CIGL_OK, "load failed");
    uint32_t idx[NTRAIN];
    for (int i = 0; i < NTRAIN; i++)
        idx[i] = (uint32_t)i;
    float plain[NTRAIN * SAMPLE], x[NTRAIN * SAMPLE];
    int32_t y[NTRAIN];
    split_gather(&ds, &ds.train, idx, NTRAIN, NULL, plain, y);
    int flipped = 0, kept = 0;
    for (uint64_t epoch = 0; epoch < 4; epoch++) {
        Augment aug = {0, 1, 5, epoch};
        split_gather(&ds, &ds.train, idx, NTRAIN, &aug, x, y);
        for (int i = 0; i < NTRAIN; i++) {
            int flip = (int)rng_below(5, RNG_AUGMENT, epoch, 4 * (uint64_t)i + 2, 2);
            flipped += flip;
            kept += !flip;
            for (int r = 0; r < C * H; r++)
                for (int xx = 0; xx < W; xx++) {
                    float got = x[i * SAMPLE + r * W + xx];
                    float src = plain[i * SAMPLE + r * W + (flip ? W - 1 - xx : xx)];
                    CHECK(got == src, "sample %d row %d col %d: %g vs %g", i, r, xx, got, src);
                }
        }
    }
    CHECK(flipped > 0 && kept > 0, "flipped %d kept %d", flipped, kept);
    dataset_free(&ds);
    remove_dir(dir);
}

/* ---------------------------------------------------------------- (c) bad files */

/* Loads `path` expecting CIGL_ERR_USAGE, one error line containing `needle`, and an empty ds. */
static void expect_load_error(const char *dir, const char *path, const char *needle)
{
    Dataset ds;
    memset(&ds, 0xab, sizeof ds);
    Capture cap;
    char err[2048];
    capture_begin(&cap, dir);
    int rc = dataset_load(path, &ds);
    capture_end(&cap, err, sizeof err);
    CHECK(rc == CIGL_ERR_USAGE, "%s: rc %d", needle, rc);
    CHECK(strstr(err, needle) != NULL, "message lacks '%s': %s", needle, err);
    CHECK(count_lines(err) == 1 && strncmp(err, "cigl: ", 6) == 0, "not one cigl line: %s",
          err);
    CHECK(dataset_is_empty(&ds), "%s: dataset not zeroed", needle);
    ssize_t open_ids = H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL);
    CHECK(open_ids == 0, "%s: %zd HDF5 objects left open", needle, open_ids);
}

static void set_int_attr(const char *path, const char *name, int v)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t a = H5Aopen(f, name, H5P_DEFAULT);
    CHECK(a >= 0 && H5Awrite(a, H5T_NATIVE_INT, &v) >= 0, "cannot set %s", name);
    H5Aclose(a);
    H5Fclose(f);
}

static void test_load_rejects_bad_files(void)
{
    char dir[64], path[128];
    make_dir(dir);
    snprintf(path, sizeof path, "%s/missing.h5", dir);
    expect_load_error(dir, path, "no such file");

    snprintf(path, sizeof path, "%s/text.h5", dir);
    FILE *f = fopen(path, "w");
    fputs("this is not an HDF5 file\n", f);
    fclose(f);
    expect_load_error(dir, path, "not an HDF5 file");

    Synthetic s;
    synthetic(&s);
    snprintf(path, sizeof path, "%s/version.h5", dir);
    CHECK(write_synthetic(path, &s) == CIGL_OK, "write");
    set_int_attr(path, "format_version", 3);
    expect_load_error(dir, path, "format_version 1 and 2");

    snprintf(path, sizeof path, "%s/classes.h5", dir);
    CHECK(write_synthetic(path, &s) == CIGL_OK, "write");
    set_int_attr(path, "channels", 5);
    expect_load_error(dir, path, "channels = 5");

    /* Label 3 of the training split becomes `classes`: the error names index 3. */
    snprintf(path, sizeof path, "%s/label.h5", dir);
    CHECK(write_synthetic(path, &s) == CIGL_OK, "write");
    int32_t labels[NTRAIN];
    memcpy(labels, s.train_labels, sizeof labels);
    labels[3] = CLASSES;
    labels[5] = -1;
    hid_t h = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t d = H5Dopen2(h, "/train/labels", H5P_DEFAULT);
    CHECK(H5Dwrite(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, labels) >= 0, "write");
    H5Dclose(d);
    H5Fclose(h);
    expect_load_error(dir, path, "labels'[3] = 4");

    /* Images of rank 3 (N x H x W without the channel axis). */
    snprintf(path, sizeof path, "%s/rank.h5", dir);
    CHECK(write_synthetic(path, &s) == CIGL_OK, "write");
    h = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    CHECK(H5Ldelete(h, "/train/images", H5P_DEFAULT) >= 0, "delete");
    hsize_t dims[3] = {NTRAIN, C * H, W};
    hid_t sp = H5Screate_simple(3, dims, NULL);
    d = H5Dcreate2(h, "/train/images", H5T_STD_U8LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    CHECK(H5Dwrite(d, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, s.train_images) >= 0,
          "write");
    H5Dclose(d);
    H5Sclose(sp);
    H5Fclose(h);
    expect_load_error(dir, path, "rank 3");

    /* A missing group. */
    snprintf(path, sizeof path, "%s/nogroup.h5", dir);
    CHECK(write_synthetic(path, &s) == CIGL_OK, "write");
    h = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    CHECK(H5Ldelete(h, "/test", H5P_DEFAULT) >= 0, "delete");
    H5Fclose(h);
    expect_load_error(dir, path, "group '/test' is missing");
    remove_dir(dir);
}

/* ---------------------------------------------------------------- (d) converter */

#define CV_TRAIN 20
#define CV_TEST 5
#define PX (28 * 28)

/* Writes a gzipped uint8 IDX file; `keep` bytes of the body are written (truncation) and
 * `extra` bytes appended after it. */
static void write_idx(const char *path, uint32_t magic, const uint32_t *dims, int ndims,
                      const uint8_t *body, size_t keep, size_t extra)
{
    gzFile gz = gzopen(path, "wb");
    unsigned char b[4];
    for (int i = -1; i < ndims; i++) {
        uint32_t v = i < 0 ? magic : dims[i];
        b[0] = (unsigned char)(v >> 24);
        b[1] = (unsigned char)(v >> 16);
        b[2] = (unsigned char)(v >> 8);
        b[3] = (unsigned char)v;
        gzwrite(gz, b, 4);
    }
    if (keep)
        gzwrite(gz, body, (unsigned)keep);
    for (size_t i = 0; i < extra; i++)
        gzputc(gz, 7);
    gzclose(gz);
}

typedef struct {
    uint8_t train_images[CV_TRAIN * PX], test_images[CV_TEST * PX];
    uint8_t train_labels[CV_TRAIN], test_labels[CV_TEST];
} Idx;

static void idx_data(Idx *d)
{
    for (size_t i = 0; i < sizeof d->train_images; i++)
        d->train_images[i] = (uint8_t)(i * 7 + i / PX);
    for (size_t i = 0; i < sizeof d->test_images; i++)
        d->test_images[i] = (uint8_t)(255 - i * 3);
    for (int i = 0; i < CV_TRAIN; i++)
        d->train_labels[i] = (uint8_t)(i % 10);
    for (int i = 0; i < CV_TEST; i++)
        d->test_labels[i] = (uint8_t)((i * 3) % 10);
}

static void idx_path(char *buf, size_t size, const char *dir, const char *split, int images)
{
    snprintf(buf, size, "%s/%s-%s-idx%d-ubyte.gz", dir, split, images ? "images" : "labels",
             images ? 3 : 1);
}

static void write_all_idx(const char *dir, const Idx *d)
{
    char p[128];
    uint32_t dims[3] = {CV_TRAIN, 28, 28};
    idx_path(p, sizeof p, dir, "train", 1);
    write_idx(p, 0x803, dims, 3, d->train_images, sizeof d->train_images, 0);
    idx_path(p, sizeof p, dir, "train", 0);
    write_idx(p, 0x801, dims, 1, d->train_labels, sizeof d->train_labels, 0);
    dims[0] = CV_TEST;
    idx_path(p, sizeof p, dir, "t10k", 1);
    write_idx(p, 0x803, dims, 3, d->test_images, sizeof d->test_images, 0);
    idx_path(p, sizeof p, dir, "t10k", 0);
    write_idx(p, 0x801, dims, 1, d->test_labels, sizeof d->test_labels, 0);
}

static void expect_convert_error(const char *src, const char *out_dir, const char *needle)
{
    char out[128], err[2048];
    snprintf(out, sizeof out, "%s/out.h5", out_dir);
    Capture cap;
    capture_begin(&cap, out_dir);
    int rc = convert_fashion_mnist(src, out);
    capture_end(&cap, err, sizeof err);
    CHECK(rc == CIGL_ERR_USAGE, "%s: rc %d", needle, rc);
    CHECK(strstr(err, needle) != NULL, "message lacks '%s': %s", needle, err);
    CHECK(count_lines(err) == 1, "not one line: %s", err);
    CHECK(access(out, F_OK) != 0, "%s: output left behind", needle);
    CHECK(count_entries(out_dir) == 0, "%s: %d files left in the output dir", needle,
          count_entries(out_dir));
}

static void test_convert_synthetic(void)
{
    char src[64], outd[64], out[128], p[128];
    make_dir(src);
    make_dir(outd);
    static Idx d;
    idx_data(&d);
    write_all_idx(src, &d);
    snprintf(out, sizeof out, "%s/out.h5", outd);
    CHECK(convert_fashion_mnist(src, out) == CIGL_OK, "convert failed");
    Dataset ds;
    CHECK(dataset_load(out, &ds) == CIGL_OK, "load failed");
    CHECK(ds.c == 1 && ds.h == 28 && ds.w == 28 && ds.classes == 10, "shape");
    CHECK(strcmp(ds.name, "fashion-mnist") == 0, "name %s", ds.name);
    CHECK(ds.train.n == CV_TRAIN && ds.test.n == CV_TEST, "n %zu %zu", ds.train.n, ds.test.n);
    if (ds.train.n == CV_TRAIN && ds.test.n == CV_TEST) {
        CHECK(memcmp(ds.train.images, d.train_images, sizeof d.train_images) == 0, "train px");
        CHECK(memcmp(ds.test.images, d.test_images, sizeof d.test_images) == 0, "test px");
        for (int i = 0; i < CV_TRAIN; i++)
            CHECK(ds.train.labels[i] == d.train_labels[i], "train label %d", i);
        for (int i = 0; i < CV_TEST; i++)
            CHECK(ds.test.labels[i] == d.test_labels[i], "test label %d", i);
    }
    dataset_free(&ds);
    unlink(out);

    uint32_t dims[3] = {CV_TRAIN, 28, 28};
    idx_path(p, sizeof p, src, "train", 1);
    write_idx(p, 0x803, dims, 3, d.train_images, sizeof d.train_images - PX / 2, 0);
    expect_convert_error(src, outd, "truncated");
    write_idx(p, 0x803, dims, 3, d.train_images, sizeof d.train_images, 3);
    expect_convert_error(src, outd, "unexpected data after");
    write_idx(p, 0x804, dims, 3, d.train_images, sizeof d.train_images, 0);
    expect_convert_error(src, outd, "magic number");
    uint32_t wide[3] = {CV_TRAIN, 28, 29};
    write_idx(p, 0x803, wide, 3, d.train_images, sizeof d.train_images, 0);
    expect_convert_error(src, outd, "dimension 2 is 29");
    write_idx(p, 0x803, dims, 3, d.train_images, sizeof d.train_images, 0);

    idx_path(p, sizeof p, src, "t10k", 0);
    uint8_t bad[CV_TEST];
    memcpy(bad, d.test_labels, sizeof bad);
    bad[2] = 10;
    dims[0] = CV_TEST;
    write_idx(p, 0x801, dims, 1, bad, sizeof bad, 0);
    expect_convert_error(src, outd, "label 2 is 10");
    dims[0] = CV_TEST - 1;
    write_idx(p, 0x801, dims, 1, d.test_labels, CV_TEST - 1, 0);
    expect_convert_error(src, outd, "4 labels");
    unlink(p);
    expect_convert_error(src, outd, "apt-get install dataset-fashion-mnist");

    remove_dir(src);
    remove_dir(outd);
}

/* ---------------------------------------------------------------- (e) real data */

static void test_convert_real_fashion_mnist(void)
{
    if (access(FMNIST_DIR "/train-images-idx3-ubyte.gz", R_OK) != 0) {
        SKIP_CASE("%s not installed (apt-get install dataset-fashion-mnist)", FMNIST_DIR);
    }
    char dir[64], out[128];
    make_dir(dir);
    snprintf(out, sizeof out, "%s/fashion-mnist.h5", dir);
    CHECK(convert_fashion_mnist(FMNIST_DIR, out) == CIGL_OK, "convert failed");
    Dataset ds;
    CHECK(dataset_load(out, &ds) == CIGL_OK, "load failed");
    CHECK(ds.train.n == 60000 && ds.test.n == 10000, "n %zu %zu", ds.train.n, ds.test.n);
    CHECK(ds.classes == 10 && ds.c == 1 && ds.h == 28 && ds.w == 28, "shape");
    CHECK_CLOSE(ds.mean[0], 0.2860, 1e-3, 0, "train mean");
    CHECK_CLOSE(ds.std[0], 0.3530, 1e-3, 0, "train std");
    int per_class[10] = {0};
    for (size_t i = 0; i < ds.train.n; i++)
        per_class[ds.train.labels[i]]++;
    for (int k = 0; k < 10; k++)
        CHECK(per_class[k] == 6000, "class %d has %d training samples", k, per_class[k]);
    printf("real Fashion-MNIST hash %016llx\n", (unsigned long long)ds.hash);
    dataset_free(&ds);
    remove_dir(dir);
}

int main(void)
{
    RUN(test_round_trip);
    RUN(test_uint8_labels);
    RUN(test_write_refuses_bad_input);
    RUN(test_gather_normalise);
    RUN(test_gather_augment);
    RUN(test_gather_flip);
    RUN(test_load_rejects_bad_files);
    RUN(test_convert_synthetic);
    RUN(test_convert_real_fashion_mnist);
    return CHECK_SUMMARY();
}
