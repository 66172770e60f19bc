/* bench_data: the data path of image-folder training, for tests/bench/bench_imagenet.sh.
 *
 *   bench_data --write-folder DIR [--train N] [--val N] [--classes K] [--size WxH]
 *       writes a synthetic ImageNet-style folder, DIR/train/CLASS/N.jpg and DIR/val/...,
 *       with libjpeg (quality 90): smooth colour gradients plus noise, so that the files
 *       decode at about the cost of photographs of that size (at 400x320 about 73 KB each;
 *       ImageNet's average is about 400x350 and 110 KB), not a flat colour that decodes for
 *       free.
 *   bench_data --read FILE.h5 [--mode memory|stream] [--batch B] [--batches N] [--threads T]
 *       the reader alone: split_gather of N training batches in a random order with the
 *       training augmentation (random resized crop and flip, normalisation), the next batch
 *       prefetched as src/run/train.c does, no model. Prints img/s as "BENCH {json}".
 *
 * Without arguments (run.sh runs every bench_* program) it prints what it is for and exits 0. */
#include "cigl/data.h"
#include "cigl/rng.h"
#include "bench_common.h"

#include <errno.h>
#include <jpeglib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

static int make_dir(const char *path)
{
    if (mkdir(path, 0777) && errno != EEXIST) {
        fprintf(stderr, "bench_data: cannot create '%s': %s\n", path, strerror(errno));
        return 1;
    }
    return 0;
}

/* One image: per-channel gradients whose direction and colours depend on the image, plus
 * uniform noise of +-48 levels (what keeps the JPEG from collapsing to a few bytes). */
static int write_jpeg(const char *path, uint64_t id, int w, int h, uint8_t *row)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "bench_data: cannot write '%s': %s\n", path, strerror(errno));
        return 1;
    }
    struct jpeg_compress_struct ci;
    struct jpeg_error_mgr jerr;
    ci.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&ci);
    jpeg_stdio_dest(&ci, f);
    ci.image_width = (JDIMENSION)w;
    ci.image_height = (JDIMENSION)h;
    ci.input_components = 3;
    ci.in_color_space = JCS_RGB;
    jpeg_set_defaults(&ci);
    jpeg_set_quality(&ci, 90, TRUE);
    jpeg_start_compress(&ci, TRUE);
    double a[3], b[3], c0[3];
    for (int c = 0; c < 3; c++) {
        a[c] = 200.0 * (rng_uniform(5, RNG_INIT, id, 3 * (uint64_t)c) - 0.5) / w;
        b[c] = 200.0 * (rng_uniform(5, RNG_INIT, id, 3 * (uint64_t)c + 1) - 0.5) / h;
        c0[c] = 60 + 130 * rng_uniform(5, RNG_INIT, id, 3 * (uint64_t)c + 2);
    }
    uint64_t k = 0;
    while (ci.next_scanline < ci.image_height) {
        const int y = (int)ci.next_scanline;
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++) {
                double v = c0[c] + a[c] * x + b[c] * y +
                           96 * (rng_uniform(6, RNG_AUGMENT, id, k++) - 0.5);
                row[3 * x + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
        JSAMPROW r = row;
        jpeg_write_scanlines(&ci, &r, 1);
    }
    jpeg_finish_compress(&ci);
    jpeg_destroy_compress(&ci);
    const int bad = ferror(f) | (fclose(f) != 0);
    if (bad) fprintf(stderr, "bench_data: writing '%s' failed\n", path);
    return bad;
}

static int write_folder(const char *dir, int n_train, int n_val, int classes, int w, int h)
{
    uint8_t *row = malloc((size_t)w * 3);
    char p[4096];
    if (!row || make_dir(dir)) return 1;
    uint64_t id = 0;
    long bytes = 0;
    const char *splits[2] = {"train", "val"};
    const int n[2] = {n_train, n_val};
    for (int s = 0; s < 2; s++) {
        snprintf(p, sizeof p, "%s/%s", dir, splits[s]);
        if (make_dir(p)) return 1;
        for (int k = 0; k < classes; k++) {
            snprintf(p, sizeof p, "%s/%s/class%03d", dir, splits[s], k);
            if (make_dir(p)) return 1;
        }
        for (int i = 0; i < n[s]; i++, id++) { /* classes take turns */
            snprintf(p, sizeof p, "%s/%s/class%03d/%06d.jpg", dir, splits[s], i % classes, i);
            if (write_jpeg(p, id, w, h, row)) return 1;
            struct stat st;
            if (!stat(p, &st)) bytes += (long)st.st_size;
        }
    }
    free(row);
    printf("wrote %d training and %d validation JPEGs of %dx%d in %d classes to %s "
           "(%.0f KB each on average)\n", n_train, n_val, w, h, classes, dir,
           bytes / 1024.0 / (double)(n_train + n_val));
    printf("BENCH {\"kind\":\"jpeg_folder\",\"train\":%d,\"val\":%d,\"classes\":%d,\"width\":%d,"
           "\"height\":%d,\"mean_kb\":%.1f}\n", n_train, n_val, classes, w, h,
           bytes / 1024.0 / (double)(n_train + n_val));
    return 0;
}

static int read_batches(const char *path, const char *mode_name, int batch, int batches,
                        int threads)
{
    const int mode = data_mode_parse(mode_name);
    if (mode < 0) {
        fprintf(stderr, "bench_data: --mode '%s': expected memory, stream or auto\n", mode_name);
        return 2;
    }
    omp_set_num_threads(threads);
    Dataset ds;
    double t0 = bench_now();
    if (dataset_open(path, (DataMode)mode, &ds)) return 1;
    const double open_s = bench_now() - t0;
    const size_t n = ds.train.n, in = (size_t)ds.c * ds.h * ds.w;
    if ((size_t)batch > n) batch = (int)n;
    uint32_t *order = malloc(sizeof(uint32_t) * n);
    float *x = malloc(sizeof(float) * in * (size_t)batch);
    int32_t *y = malloc(sizeof(int32_t) * (size_t)batch);
    if (!order || !x || !y) return 1;
    /* the epoch order as training draws it; batch i is order[i*B ..], wrapping into new
     * epochs, each with its own order and augmentation draws */
    const size_t per_epoch = n / (size_t)batch;
    int rc = 0;
    uint64_t epoch = 0;
    rng_permutation(0, RNG_DATA_ORDER, epoch, order, n);
    split_prefetch(&ds, &ds.train, order, (size_t)batch);
    t0 = bench_now();
    for (int i = 0; i < batches && !rc; i++) {
        const size_t slot = (size_t)i % per_epoch;
        if (i && slot == 0) rng_permutation(0, RNG_DATA_ORDER, ++epoch, order, n);
        const Augment aug = {0, 0, 0, epoch};
        rc = split_gather(&ds, &ds.train, order + slot * (size_t)batch, (size_t)batch, &aug, x, y);
        if (slot + 1 < per_epoch) /* the next batch, while this one "computes" */
            split_prefetch(&ds, &ds.train, order + (slot + 1) * (size_t)batch, (size_t)batch);
    }
    const double secs = bench_now() - t0;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    if (!rc) {
        const double ips = (double)batch * batches / secs;
        printf("reader (%s): %d batches of %d at %dx%dx%d (stored %dx%d) in %.3f s = %.0f img/s, "
               "%d threads; open %.3f s; peak RSS %.0f MiB\n", ds.streamed ? "stream" : "memory",
               batches, batch, ds.c, ds.h, ds.w, ds.train.h ? ds.train.h : ds.h,
               ds.train.w ? ds.train.w : ds.w, secs, ips, threads, open_s,
               (double)ru.ru_maxrss / 1024.0);
        printf("BENCH {\"kind\":\"reader\",\"mode\":\"%s\",\"batch\":%d,\"batches\":%d,"
               "\"threads\":%d,\"seconds\":%.4f,\"img_per_s\":%.1f,\"open_s\":%.4f,"
               "\"peak_rss_mib\":%.1f}\n", ds.streamed ? "stream" : "memory", batch, batches,
               threads, secs, ips, open_s, (double)ru.ru_maxrss / 1024.0);
    }
    free(order);
    free(x);
    free(y);
    dataset_free(&ds);
    return rc ? 1 : 0;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_data --write-folder DIR [--train N] [--val N] [--classes K] "
            "[--size WxH]\n"
            "       bench_data --read FILE.h5 [--mode memory|stream] [--batch B] [--batches N] "
            "[--threads T]\n"
            "defaults: --train 64 --val 16 --classes 4 --size 400x320; --mode stream --batch 16 "
            "--batches 20 --threads 2\n");
    exit(2);
}

static int positive(const char *v)
{
    char *end;
    const long n = strtol(v, &end, 10);
    if (*v == 0 || *end || n < 1 || n > 1000000) usage();
    return (int)n;
}

int main(int argc, char **argv)
{
    const char *folder = NULL, *file = NULL, *mode = "stream";
    int train = 64, val = 16, classes = 4, w = 400, h = 320, batch = 16, batches = 20,
        threads = 2;
    if (argc == 1) {
        printf("bench_data: the data path of tests/bench/bench_imagenet.sh (run there)\n");
        return 0;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) usage();
        i++;
        if (!strcmp(a, "--write-folder")) folder = v;
        else if (!strcmp(a, "--read")) file = v;
        else if (!strcmp(a, "--mode")) mode = v;
        else if (!strcmp(a, "--train")) train = positive(v);
        else if (!strcmp(a, "--val")) val = positive(v);
        else if (!strcmp(a, "--classes")) classes = positive(v);
        else if (!strcmp(a, "--batch")) batch = positive(v);
        else if (!strcmp(a, "--batches")) batches = positive(v);
        else if (!strcmp(a, "--threads")) threads = positive(v);
        else if (!strcmp(a, "--size")) {
            if (sscanf(v, "%dx%d", &w, &h) != 2 || w < 8 || h < 8 || w > 8192 || h > 8192)
                usage();
        } else usage();
    }
    if (!folder == !file) usage();
    return folder ? write_folder(folder, train, val, classes, w, h)
                  : read_batches(file, mode, batch, batches, threads);
}
