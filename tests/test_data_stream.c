/* Streamed datasets give the same batches as in-memory ones bit for bit (with prefetching,
 * across chunk boundaries, with augmentation), format-1 files still load with the same
 * content hash, `cigl convert --verify` catches a changed pixel, and the random resized crop
 * follows its definition (bounds, keying by sample and epoch, independence of the batch and
 * the thread count, centre crop for evaluation), and a read failure is returned, not exited. */
#include "check.h"

#include "../src/data/data_internal.h"
#include "cigl/data.h"
#include "cigl/error.h"
#include "cigl/image.h"

#include <hdf5.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define C 3
#define S 32
#define SAMPLE (C * S * S) /* 3072 bytes: 341 samples per 1 MiB chunk */
#define NTRAIN 1000
#define NTEST 50
#define CLASSES 5

static const char *const NAMES[CLASSES] = {"a", "b", "c", "d", "e"};

static char dir[64], path[128];

static uint8_t pixel(size_t i)
{
    uint64_t z = i * 0x9e3779b97f4a7c15ull;
    z ^= z >> 29;
    z *= 0xbf58476d1ce4e5b9ull;
    return (uint8_t)(z >> 56);
}

static void write_file(void)
{
    Split tr = {0}, te = {0};
    tr.n = NTRAIN, te.n = NTEST;
    tr.images = malloc((size_t)NTRAIN * SAMPLE);
    te.images = malloc((size_t)NTEST * SAMPLE);
    tr.labels = malloc(sizeof(int32_t) * NTRAIN);
    te.labels = malloc(sizeof(int32_t) * NTEST);
    for (size_t i = 0; i < (size_t)NTRAIN * SAMPLE; i++)
        tr.images[i] = pixel(i);
    for (size_t i = 0; i < (size_t)NTEST * SAMPLE; i++)
        te.images[i] = pixel(i + 77);
    for (int i = 0; i < NTRAIN; i++)
        tr.labels[i] = (i * 7) % CLASSES;
    for (int i = 0; i < NTEST; i++)
        te.labels[i] = i % CLASSES;
    CHECK(dataset_write(path, "stream", C, S, S, CLASSES, NAMES, &tr, &te) == CIGL_OK, "write");
    free(tr.images), free(te.images), free(tr.labels), free(te.labels);
}

/* Index lists: random, runs crossing the chunk boundary at 341 and 682, repeats. */
static void make_batch(int k, uint32_t *idx, size_t *n)
{
    static const uint32_t runs[] = {339, 340, 341, 342, 343, 681, 682, 0, 999, 998, 341, 341};
    if (k == 0) {
        memcpy(idx, runs, sizeof runs);
        *n = sizeof runs / sizeof runs[0];
        return;
    }
    *n = 64;
    for (size_t i = 0; i < *n; i++)
        idx[i] = (uint32_t)((i * 7919u + (unsigned)k * 104729u) % NTRAIN);
}

static void test_stream_matches_memory(void)
{
    Dataset mem, str;
    CHECK(dataset_open(path, DATA_MEMORY, &mem) == CIGL_OK && !mem.streamed, "memory open");
    CHECK(dataset_open(path, DATA_STREAM, &str) == CIGL_OK && str.streamed && !str.train.images,
          "stream open");
    CHECK(mem.hash == str.hash && mem.hash != 0, "hash %llx vs %llx",
          (unsigned long long)mem.hash, (unsigned long long)str.hash);
    float *a = malloc(sizeof(float) * 64 * SAMPLE), *b = malloc(sizeof(float) * 64 * SAMPLE);
    int32_t ya[64], yb[64];
    uint32_t idx[64], next[64];
    size_t n, nn;
    Augment aug = {4, 1, 11, 3};
    for (int k = 0; k < 6; k++) {
        make_batch(k, idx, &n);
        const Augment *au = k % 2 ? &aug : NULL;
        if (k >= 2) /* prefetched as in training: gather waits for the read */
            split_prefetch(&str, &str.train, idx, n);
        split_gather(&mem, &mem.train, idx, n, au, a, ya);
        split_gather(&str, &str.train, idx, n, au, b, yb);
        CHECK(!memcmp(a, b, sizeof(float) * n * SAMPLE) && !memcmp(ya, yb, sizeof(int32_t) * n),
              "batch %d differs", k);
        /* a prefetch of other indices than the next gather's: that gather reads its own */
        make_batch(k + 10, next, &nn);
        split_prefetch(&str, &str.train, next, nn);
    }
    make_batch(3, idx, &n);
    split_gather(&mem, &mem.train, idx, n, NULL, a, ya);
    split_gather(&str, &str.train, idx, n, NULL, b, yb);
    CHECK(!memcmp(a, b, sizeof(float) * n * SAMPLE), "gather after an unused prefetch differs");
    /* the test split, sequential, prefetched by range as evaluation does */
    split_prefetch_range(&str, &str.test, NULL, 10, 30);
    for (uint32_t i = 0; i < 30; i++)
        idx[i] = 10 + i;
    split_gather(&mem, &mem.test, idx, 30, NULL, a, ya);
    split_gather(&str, &str.test, idx, 30, NULL, b, yb);
    CHECK(!memcmp(a, b, sizeof(float) * 30 * SAMPLE), "test split differs");
    free(a);
    free(b);
    dataset_free(&mem);
    dataset_free(&str);
    CHECK(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL) == 0, "HDF5 objects left open");
}

/* A streamed file that becomes unreadable after it was opened (disk trouble): split_gather
 * returns CIGL_ERR_RUNTIME to its caller instead of ending the process, and the pixels that
 * are still there gather as before. */
static void test_read_failure_returns(void)
{
    char cut[160], cmd[400];
    snprintf(cut, sizeof cut, "%s/cut.h5", dir);
    snprintf(cmd, sizeof cmd, "cp %s %s", path, cut);
    CHECK(system(cmd) == 0, "copy");
    Dataset str;
    CHECK(dataset_open(cut, DATA_STREAM, &str) == CIGL_OK && str.streamed, "stream open");
    float *x = malloc(sizeof(float) * 4 * SAMPLE);
    int32_t y[4];
    uint32_t first[4] = {0, 1, 2, 3}, last[4] = {996, 997, 998, 999};
    CHECK(split_gather(&str, &str.train, first, 4, NULL, x, y) == CIGL_OK, "gather before");
    CHECK(y[1] == 7 % CLASSES, "label %d", y[1]);
    CHECK(truncate(cut, 256 << 10) == 0, "truncate");
    CHECK(split_gather(&str, &str.train, last, 4, NULL, x, y) == CIGL_ERR_RUNTIME,
          "a gather past the end of the cut file did not fail");
    free(x);
    dataset_free(&str);
    unlink(cut);
}

/* AUTO keeps small files in memory. */
static void test_auto_mode(void)
{
    Dataset ds;
    CHECK(dataset_load(path, &ds) == CIGL_OK && !ds.streamed && ds.train.images, "auto");
    dataset_free(&ds);
    CHECK(data_mode_parse("auto") == DATA_AUTO && data_mode_parse("memory") == DATA_MEMORY &&
          data_mode_parse("stream") == DATA_STREAM && data_mode_parse("disk") == -1, "parse");
}

/* Rewrites the file as format 1 (no augment, content_hash or per-split size attributes). */
static void make_v1(const char *v1)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "cp %s %s", path, v1);
    CHECK(system(cmd) == 0, "copy");
    hid_t f = H5Fopen(v1, H5F_ACC_RDWR, H5P_DEFAULT);
    H5Adelete(f, "augment");
    H5Adelete(f, "content_hash");
    int one = 1;
    hid_t a = H5Aopen(f, "format_version", H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_INT, &one);
    H5Aclose(a);
    for (int i = 0; i < 2; i++) {
        hid_t g = H5Gopen2(f, i ? "test" : "train", H5P_DEFAULT);
        H5Adelete(g, "height");
        H5Adelete(g, "width");
        H5Gclose(g);
    }
    H5Fclose(f);
}

static void test_version1_still_read(void)
{
    char v1[160];
    snprintf(v1, sizeof v1, "%s/v1.h5", dir);
    make_v1(v1);
    Dataset v2, m, s;
    CHECK(dataset_open(path, DATA_MEMORY, &v2) == CIGL_OK, "v2");
    CHECK(dataset_open(v1, DATA_MEMORY, &m) == CIGL_OK && m.version == 1, "v1 in memory");
    CHECK(dataset_open(v1, DATA_STREAM, &s) == CIGL_OK && s.version == 1, "v1 streamed");
    /* format 1's hash is computed from the content: the same number format 2 stores */
    CHECK(m.hash == v2.hash && s.hash == v2.hash, "hashes %llx %llx %llx",
          (unsigned long long)m.hash, (unsigned long long)s.hash, (unsigned long long)v2.hash);
    CHECK(m.train.h == S && m.train.w == S && m.augment == DATA_AUGMENT_NONE, "v1 sizes");
    CHECK(!memcmp(m.train.images, v2.train.images, (size_t)NTRAIN * SAMPLE), "v1 pixels");
    dataset_free(&v2);
    dataset_free(&m);
    dataset_free(&s);
    unlink(v1);
}

static void test_verify(void)
{
    char copy[160], cmd[400];
    snprintf(copy, sizeof copy, "%s/copy.h5", dir);
    snprintf(cmd, sizeof cmd, "cp %s %s", path, copy);
    CHECK(system(cmd) == 0, "copy");
    fflush(stdout);
    CHECK(dataset_verify(copy) == CIGL_OK, "verify of a good file failed");
    /* change one pixel behind the writer's back */
    hid_t f = H5Fopen(copy, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t d = H5Dopen2(f, "/train/images", H5P_DEFAULT);
    hid_t fs = H5Dget_space(d);
    hsize_t start[4] = {500, 1, 2, 3}, count[4] = {1, 1, 1, 1}, one = 1;
    H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL);
    hid_t ms = H5Screate_simple(1, &one, NULL);
    uint8_t v = (uint8_t)(pixel(500 * SAMPLE + 1 * S * S + 2 * S + 3) ^ 1);
    CHECK(H5Dwrite(d, H5T_NATIVE_UINT8, ms, fs, H5P_DEFAULT, &v) >= 0, "poke");
    H5Sclose(ms), H5Sclose(fs), H5Dclose(d), H5Fclose(f);
    fflush(stderr);
    CHECK(dataset_verify(copy) == CIGL_ERR_USAGE, "verify missed a changed pixel");
    unlink(copy);
}

/* ---------------------------------------------------------------- random resized crop */

#define RH 8   /* input */
#define SH 12  /* stored */
#define RN 400

static void rrc_dataset(Dataset *ds, uint8_t *images, int32_t *labels)
{
    memset(ds, 0, sizeof *ds);
    ds->c = C, ds->h = RH, ds->w = RH, ds->classes = 2, ds->augment = DATA_AUGMENT_RRC;
    for (int c = 0; c < C; c++)
        ds->mean[c] = 0.5, ds->std[c] = 0.25;
    for (size_t i = 0; i < (size_t)RN * C * SH * SH; i++)
        images[i] = pixel(i * 3);
    for (int i = 0; i < RN; i++)
        labels[i] = i % 2;
    ds->train.n = RN, ds->train.images = images, ds->train.labels = labels;
    ds->train.h = SH, ds->train.w = SH;
}

static float lut(const Dataset *ds, int c, int v)
{
    return (float)((v / 255.0 - ds->mean[c]) * (1.0 / ds->std[c]));
}

static void test_rrc_definition(void)
{
    static uint8_t images[RN * C * SH * SH];
    static int32_t labels[RN];
    Dataset ds;
    rrc_dataset(&ds, images, labels);
    Augment aug = {0, 0, 5, 2};
    int flips = 0, fallback = 0, bad = 0;
    double area = 0;
    float out[C * RH * RH];
    int32_t y;
    for (uint32_t s = 0; s < RN; s++) {
        Crop cr = data_rrc_crop(&aug, s, SH, SH);
        int ok = cr.h >= 1 && cr.w >= 1 && cr.y >= 0 && cr.x >= 0 && cr.y + cr.h <= SH &&
                 cr.x + cr.w <= SH;
        /* w = round(sqrt(A r)), h = round(sqrt(A / r)) with A in [0.08, 1] x 144 and r in
         * [3/4, 4/3]: so w h is within rounding of A and w / h within rounding of r */
        double ratio = (double)cr.w / cr.h;
        ok = ok && cr.w * cr.h <= 144 && (cr.w + 0.5) * (cr.h + 0.5) >= 0.08 * 144 &&
             ratio >= (3.0 / 4.0) * (cr.w - 0.5) / (cr.w + 0.5) * (cr.h - 0.5) / (cr.h + 0.5) - 1e-9;
        bad += !ok;
        flips += cr.flip;
        fallback += cr.h == SH && cr.w == SH;
        area += cr.h * cr.w / 144.0;
        /* the gathered sample is exactly the resize of that region, mirrored when drawn */
        uint32_t idx = s;
        split_gather(&ds, &ds.train, &idx, 1, &aug, out, &y);
        uint8_t ref[C * RH * RH];
        image_resize(images + (size_t)s * C * SH * SH, C, SH, SH, cr.y, cr.x, cr.h, cr.w, ref,
                     RH, RH);
        for (int c = 0; c < C; c++)
            for (int yy = 0; yy < RH; yy++)
                for (int xx = 0; xx < RH; xx++) {
                    int sx = cr.flip ? RH - 1 - xx : xx;
                    bad += out[(c * RH + yy) * RH + xx] != lut(&ds, c, ref[(c * RH + yy) * RH + sx]);
                }
        bad += y != labels[s];
    }
    CHECK(bad == 0, "%d crops or pixels break the definition", bad);
    CHECK(flips > RN * 0.4 && flips < RN * 0.6, "%d flips of %d", flips, RN);
    /* accepted areas are uniform on [0.08, 1] truncated where the crop does not fit:
     * the mean is well inside (0.3, 0.6) */
    CHECK(area / RN > 0.3 && area / RN < 0.6, "mean area fraction %.3f", area / RN);
    CHECK(fallback < RN / 10, "%d whole-image crops of %d", fallback, RN);
    /* another epoch draws other crops; the same epoch the same */
    Augment other = aug;
    other.epoch = 3;
    int same = 0;
    for (uint32_t s = 0; s < 50; s++) {
        Crop a = data_rrc_crop(&aug, s, SH, SH), b = data_rrc_crop(&other, s, SH, SH),
             c = data_rrc_crop(&aug, s, SH, SH);
        same += a.x == b.x && a.y == b.y && a.h == b.h && a.w == b.w;
        bad += a.x != c.x || a.y != c.y || a.h != c.h || a.w != c.w || a.flip != c.flip;
    }
    CHECK(same < 10 && bad == 0, "epochs: %d of 50 crops equal; %d unstable", same, bad);
}

/* Batch composition and thread count do not matter; evaluation is the centre crop. */
static void test_rrc_batch_and_threads(void)
{
    static uint8_t images[RN * C * SH * SH];
    static int32_t labels[RN];
    Dataset ds;
    rrc_dataset(&ds, images, labels);
    Augment aug = {0, 0, 9, 0};
    enum { N = 40 };
    uint32_t idx[N];
    for (int i = 0; i < N; i++)
        idx[i] = (uint32_t)(i * 37 % RN);
    static float a[N * C * RH * RH], b[N * C * RH * RH], one[C * RH * RH];
    int32_t ya[N], yb[N], y1;
    omp_set_num_threads(1);
    split_gather(&ds, &ds.train, idx, N, &aug, a, ya);
    omp_set_num_threads(2);
    split_gather(&ds, &ds.train, idx, N, &aug, b, yb);
    CHECK(!memcmp(a, b, sizeof a), "1 and 2 threads differ");
    split_gather(&ds, &ds.train, idx + 17, 1, &aug, one, &y1);
    CHECK(!memcmp(one, a + 17 * C * RH * RH, sizeof one), "sample depends on its batch");
    /* evaluation: the centre RH x RH window of the stored SH x SH image */
    split_gather(&ds, &ds.train, idx + 5, 1, NULL, one, &y1);
    int bad = 0;
    const uint8_t *src = images + (size_t)idx[5] * C * SH * SH;
    const int off = (SH - RH) / 2;
    for (int c = 0; c < C; c++)
        for (int yy = 0; yy < RH; yy++)
            for (int xx = 0; xx < RH; xx++)
                bad += one[(c * RH + yy) * RH + xx] !=
                       lut(&ds, c, src[(c * SH + yy + off) * SH + xx + off]);
    CHECK(bad == 0, "centre crop differs in %d values", bad);
}

int main(void)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    snprintf(dir, sizeof dir, "/tmp/cigl_test_stream_XXXXXX");
    if (!mkdtemp(dir))
        return 1;
    snprintf(path, sizeof path, "%s/d.h5", dir);
    write_file();
    RUN(test_stream_matches_memory);
    RUN(test_auto_mode);
    RUN(test_read_failure_returns);
    RUN(test_version1_still_read);
    RUN(test_verify);
    RUN(test_rrc_definition);
    RUN(test_rrc_batch_and_threads);
    unlink(path);
    rmdir(dir);
    return CHECK_SUMMARY();
}
