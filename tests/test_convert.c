/* The CIFAR-10/100 binary and image-folder converters on small files written here in the true
 * formats (CIFAR records; JPEG and PNG written with libjpeg and libpng), and the resampling
 * they use: pixels and labels round-trip exactly (PNG) or within a tolerance (JPEG), and
 * corrupt inputs are refused with status 2, one line naming the file, and no output. */
#define _XOPEN_SOURCE 700
#include "check.h"
#include "test_util.h"

#include "../datasets/convert.h"
#include "cigl/data.h"
#include "cigl/error.h"
#include "cigl/image.h"

#include <ftw.h>
#include <hdf5.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jpeglib.h>
#include <png.h>

/* ---------------------------------------------------------------- helpers */

static void make_dir(char dir[64])
{
    snprintf(dir, 64, "/tmp/cigl_test_convert_XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        exit(1);
    }
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void remove_tree(const char *dir)
{
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void mkdirs(const char *a, const char *b, const char *c)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", a, b);
    mkdir(p, 0777);
    if (c) {
        snprintf(p, sizeof p, "%s/%s/%s", a, b, c);
        mkdir(p, 0777);
    }
}

static void write_bytes(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n) {
        perror(path);
        exit(1);
    }
    fclose(f);
}

/* Reads root attribute class_names (variable-length strings) into names[k]. */
static int read_class_names(const char *path, char names[][32], int k)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t a = H5Aopen(f, "class_names", H5P_DEFAULT);
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    char **s = calloc((size_t)k, sizeof *s);
    int ok = a >= 0 && H5Aread(a, t, s) >= 0;
    for (int i = 0; i < k; i++) {
        snprintf(names[i], 32, "%s", ok && s[i] ? s[i] : "");
        if (s[i])
            H5free_memory(s[i]);
    }
    free(s);
    H5Tclose(t);
    if (a >= 0)
        H5Aclose(a);
    H5Fclose(f);
    return ok ? 0 : -1;
}

/* Runs a converter expecting status 2, one line containing `needle`, and no output file. */
typedef int (*ConvertFn)(const char *src, const char *out, const void *arg);

static void expect_refused(ConvertFn fn, const char *src, const void *arg, const char *needle)
{
    char outd[64], out[128], err[4096];
    make_dir(outd);
    snprintf(out, sizeof out, "%s/out.h5", outd);
    Capture cap;
    capture_begin(&cap, outd);
    int rc = fn(src, out, arg);
    capture_end(&cap, err, sizeof err);
    CHECK(rc == CIGL_ERR_USAGE, "%s: rc %d (%s)", needle, rc, err);
    CHECK(strstr(err, needle) != NULL, "message lacks '%s': %s", needle, err);
    CHECK(count_lines(err) == 1 && !strncmp(err, "cigl: ", 6), "not one cigl line: %s", err);
    CHECK(access(out, F_OK) != 0, "%s: output file left", needle);
    char tmp_glob[160];
    snprintf(tmp_glob, sizeof tmp_glob, "%s/out.h5.tmp.%ld", outd, (long)getpid());
    CHECK(access(tmp_glob, F_OK) != 0, "%s: temporary file left", needle);
    remove_tree(outd);
}

/* ---------------------------------------------------------------- CIFAR */

#define REC10 (1 + 3072)
#define REC100 (2 + 3072)
#define PER_BATCH 3

static uint8_t cifar_pixel(int record, int i)
{
    return (uint8_t)((record * 131 + i * 7 + (i >> 10) * 50) & 0xff);
}

/* A CIFAR-10 folder: 5 train batches and the test batch of `per` records, record r of file f
 * gets global id 100 f + r and label (f + r) % 10. */
static void write_cifar10(const char *dir, int per, int bad_label_file)
{
    const char *files[6] = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                            "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"};
    uint8_t *buf = malloc((size_t)per * REC10);
    for (int f = 0; f < 6; f++) {
        for (int r = 0; r < per; r++) {
            uint8_t *rec = buf + (size_t)r * REC10;
            rec[0] = (uint8_t)((f + r) % 10);
            if (f == bad_label_file && r == 1)
                rec[0] = 10;
            for (int i = 0; i < 3072; i++)
                rec[1 + i] = cifar_pixel(100 * f + r, i);
        }
        char p[256];
        snprintf(p, sizeof p, "%s/%s", dir, files[f]);
        write_bytes(p, buf, (size_t)per * REC10);
    }
    free(buf);
    char p[256];
    snprintf(p, sizeof p, "%s/batches.meta.txt", dir);
    const char *meta = "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n";
    write_bytes(p, meta, strlen(meta));
}

static int run_cifar(const char *src, const char *out, const void *arg)
{
    return convert_cifar(src, out, *(const int *)arg);
}

static void test_cifar10_round_trip(void)
{
    char root[64], dir[128], outd[64], out[128];
    make_dir(root);
    make_dir(outd);
    snprintf(dir, sizeof dir, "%s/cifar-10-batches-bin", root);
    mkdir(dir, 0777);
    write_cifar10(dir, PER_BATCH, -1);
    snprintf(out, sizeof out, "%s/c10.h5", outd);
    /* SRC may be the archive's folder or the folder it was unpacked in */
    CHECK(convert_cifar(root, out, 10) == CIGL_OK, "convert from the parent failed");
    CHECK(convert_cifar(dir, out, 10) == CIGL_OK, "convert from the folder failed");
    Dataset ds;
    CHECK(dataset_open(out, DATA_MEMORY, &ds) == CIGL_OK, "load");
    CHECK(ds.c == 3 && ds.h == 32 && ds.w == 32 && ds.classes == 10 && ds.version == 2 &&
          ds.augment == DATA_AUGMENT_NONE, "shape %d %d %d %d", ds.c, ds.h, ds.w, ds.classes);
    CHECK(ds.train.n == 5 * PER_BATCH && ds.test.n == PER_BATCH, "n %zu %zu", ds.train.n,
          ds.test.n);
    CHECK(!strcmp(ds.name, "cifar10"), "name %s", ds.name);
    int bad = 0;
    for (int f = 0; f < 6 && ds.train.n == 5 * PER_BATCH; f++)
        for (int r = 0; r < PER_BATCH; r++) {
            const Split *s = f < 5 ? &ds.train : &ds.test;
            size_t i = f < 5 ? (size_t)(f * PER_BATCH + r) : (size_t)r;
            bad += s->labels[i] != (f + r) % 10;
            for (int k = 0; k < 3072; k++)
                bad += s->images[i * 3072 + k] != cifar_pixel(100 * f + r, k);
        }
    CHECK(bad == 0, "%d pixels or labels differ", bad);
    char names[10][32];
    CHECK(read_class_names(out, names, 10) == 0 && !strcmp(names[0], "airplane") &&
          !strcmp(names[9], "truck"), "class names %s .. %s", names[0], names[9]);
    /* the official .tar.gz directly: the same dataset */
    char cmd[512], tgz[160], out2[160];
    snprintf(tgz, sizeof tgz, "%s/cifar-10-binary.tar.gz", root);
    snprintf(cmd, sizeof cmd, "tar czf %s -C %s cifar-10-batches-bin", tgz, root);
    CHECK(system(cmd) == 0, "tar");
    snprintf(out2, sizeof out2, "%s/c10b.h5", outd);
    CHECK(convert_cifar(tgz, out2, 10) == CIGL_OK, "convert from the archive failed");
    Dataset ds2;
    CHECK(dataset_open(out2, DATA_MEMORY, &ds2) == CIGL_OK && ds2.hash == ds.hash,
          "archive and folder give different datasets");
    dataset_free(&ds2);
    const int ten = 10;
    struct stat st;
    stat(tgz, &st);
    CHECK(truncate(tgz, st.st_size / 2) == 0, "truncate");
    expect_refused(run_cifar, tgz, &ten, "truncated");
    dataset_free(&ds);
    remove_tree(root);
    remove_tree(outd);
}

static void test_cifar10_refuses_corrupt(void)
{
    char dir[64], p[256];
    const int ten = 10;
    make_dir(dir);
    write_cifar10(dir, PER_BATCH, 2);
    expect_refused(run_cifar, dir, &ten, "label 10");
    write_cifar10(dir, PER_BATCH, -1);
    /* truncated inside a record */
    snprintf(p, sizeof p, "%s/data_batch_3.bin", dir);
    CHECK(truncate(p, PER_BATCH * REC10 - 100) == 0, "truncate");
    expect_refused(run_cifar, dir, &ten, "data_batch_3.bin' has");
    /* truncated at a record boundary: the counts no longer agree */
    CHECK(truncate(p, (PER_BATCH - 1) * REC10) == 0, "truncate");
    expect_refused(run_cifar, dir, &ten, "same count");
    write_cifar10(dir, PER_BATCH, -1);
    snprintf(p, sizeof p, "%s/data_batch_4.bin", dir);
    unlink(p);
    expect_refused(run_cifar, dir, &ten, "data_batch_4.bin");
    write_cifar10(dir, PER_BATCH, -1);
    snprintf(p, sizeof p, "%s/batches.meta.txt", dir);
    write_bytes(p, "a\nb\n", 4);
    expect_refused(run_cifar, dir, &ten, "10 class names");
    snprintf(p, sizeof p, "%s/test_batch.bin", dir);
    unlink(p);
    expect_refused(run_cifar, dir, &ten, "test_batch.bin");
    remove_tree(dir);
}

/* CIFAR-100: train.bin with 5 x `per` records, test.bin with `per`; coarse label r % 20,
 * fine label (3 r + f) % 100. */
static void write_cifar100(const char *dir, int per, int bad_coarse, int bad_fine)
{
    for (int f = 0; f < 2; f++) {
        int n = f ? per : 5 * per;
        uint8_t *buf = malloc((size_t)n * REC100);
        for (int r = 0; r < n; r++) {
            uint8_t *rec = buf + (size_t)r * REC100;
            rec[0] = (uint8_t)(r % 20);
            rec[1] = (uint8_t)((3 * r + f) % 100);
            if (f == 0 && r == 2 && bad_coarse)
                rec[0] = 20;
            if (f == 1 && r == 1 && bad_fine)
                rec[1] = 100;
            for (int i = 0; i < 3072; i++)
                rec[2 + i] = cifar_pixel(1000 * f + r, i);
        }
        char p[256];
        snprintf(p, sizeof p, "%s/%s", dir, f ? "test.bin" : "train.bin");
        write_bytes(p, buf, (size_t)n * REC100);
        free(buf);
    }
    char p[256];
    snprintf(p, sizeof p, "%s/fine_label_names.txt", dir);
    FILE *m = fopen(p, "w");
    for (int k = 0; k < 100; k++)
        fprintf(m, "class_%02d\r\n", k);
    fclose(m);
}

static void test_cifar100(void)
{
    char dir[64], outd[64], out[128], p[256];
    const int hundred = 100;
    make_dir(dir);
    make_dir(outd);
    write_cifar100(dir, PER_BATCH, 0, 0);
    snprintf(out, sizeof out, "%s/c100.h5", outd);
    CHECK(convert_cifar(dir, out, 100) == CIGL_OK, "convert failed");
    Dataset ds;
    CHECK(dataset_open(out, DATA_MEMORY, &ds) == CIGL_OK, "load");
    CHECK(ds.classes == 100 && ds.train.n == 5 * PER_BATCH && ds.test.n == PER_BATCH,
          "classes %d n %zu %zu", ds.classes, ds.train.n, ds.test.n);
    int bad = 0;
    for (int f = 0; f < 2 && ds.test.n == PER_BATCH; f++) {
        const Split *s = f ? &ds.test : &ds.train;
        for (size_t r = 0; r < s->n; r++) {
            bad += s->labels[r] != (int)((3 * r + (size_t)f) % 100); /* the fine label */
            for (int k = 0; k < 3072; k++)
                bad += s->images[r * 3072 + k] != cifar_pixel(1000 * f + (int)r, k);
        }
    }
    CHECK(bad == 0, "%d pixels or labels differ", bad);
    char names[100][32];
    CHECK(read_class_names(out, names, 100) == 0 && !strcmp(names[0], "class_00") &&
          !strcmp(names[99], "class_99"), "names %s %s", names[0], names[99]);
    dataset_free(&ds);
    write_cifar100(dir, PER_BATCH, 1, 0);
    expect_refused(run_cifar, dir, &hundred, "coarse label 20");
    write_cifar100(dir, PER_BATCH, 0, 1);
    expect_refused(run_cifar, dir, &hundred, "label 100");
    write_cifar100(dir, PER_BATCH, 0, 0);
    snprintf(p, sizeof p, "%s/train.bin", dir);
    CHECK(truncate(p, (5 * PER_BATCH - 1) * REC100) == 0, "truncate");
    expect_refused(run_cifar, dir, &hundred, "five times");
    remove_tree(dir);
    remove_tree(outd);
}

/* ---------------------------------------------------------------- resampling */

/* Hand-computed: 8 -> 4 is a factor-2 shrink, so the triangle's radius doubles: taps 1/8,
 * 3/8, 3/8, 1/8 around each output centre, renormalised where they fall off the edge. */
static void test_resize_hand_computed(void)
{
    const uint8_t row[8] = {0, 0, 255, 255, 0, 0, 255, 255};
    uint8_t out[4];
    CHECK(image_resize(row, 1, 1, 8, 0, 0, 1, 8, out, 1, 4) == 0, "resize");
    /* 255 * 1/7 = 36.4, 255 * 6/8 = 191.25, 255 * 2/8 = 63.75, 255 * 6/7 = 218.6 */
    const uint8_t want[4] = {36, 191, 64, 219};
    for (int i = 0; i < 4; i++)
        CHECK(out[i] == want[i], "shrink %d: %d, expected %d", i, out[i], want[i]);
    /* 2 -> 4 enlarges: plain bilinear with half-pixel centres, clamped at the edges */
    const uint8_t two[2] = {0, 100};
    uint8_t four[4];
    CHECK(image_resize(two, 1, 1, 2, 0, 0, 1, 2, four, 1, 4) == 0, "enlarge");
    const uint8_t want4[4] = {0, 25, 75, 100};
    for (int i = 0; i < 4; i++)
        CHECK(four[i] == want4[i], "enlarge %d: %d, expected %d", i, four[i], want4[i]);
    /* same size: the identity, and a region is a plain crop */
    uint8_t img[2 * 5 * 6], same[2 * 5 * 6], crop[2 * 2 * 3];
    for (int i = 0; i < 60; i++)
        img[i] = (uint8_t)(i * 37 + 11);
    CHECK(image_resize(img, 2, 5, 6, 0, 0, 5, 6, same, 5, 6) == 0 && !memcmp(img, same, 60),
          "identity");
    CHECK(image_resize(img, 2, 5, 6, 1, 2, 2, 3, crop, 2, 3) == 0, "crop");
    int bad = 0;
    for (int c = 0; c < 2; c++)
        for (int y = 0; y < 2; y++)
            for (int x = 0; x < 3; x++)
                bad += crop[(c * 2 + y) * 3 + x] != img[(c * 5 + y + 1) * 6 + x + 2];
    CHECK(bad == 0, "crop differs in %d pixels", bad);
    /* a constant image stays constant at any scale */
    uint8_t flat[3 * 37 * 53], small[3 * 9 * 11];
    memset(flat, 77, sizeof flat);
    CHECK(image_resize(flat, 3, 37, 53, 0, 0, 37, 53, small, 9, 11) == 0, "flat");
    bad = 0;
    for (size_t i = 0; i < sizeof small; i++)
        bad += small[i] != 77;
    CHECK(bad == 0, "constant image changed in %d pixels", bad);
}

/* ---------------------------------------------------------------- image files */

/* Known content: pixel (y, x) channel c of image `id`. Smooth, so JPEG keeps it closely. */
static uint8_t px(int id, int y, int x, int c)
{
    return (uint8_t)(40 + 3 * y + 2 * x + 50 * c + 7 * id);
}

typedef enum { PNG_RGB8, PNG_GRAY8, PNG_PALETTE, PNG_RGBA8, PNG_GRAY16, PNG_GA8 } PngKind;

/* The RGB the converter must produce for a pixel of an image written as `kind`. */
static void expected_rgb(PngKind kind, int id, int y, int x, uint8_t rgb[3])
{
    for (int c = 0; c < 3; c++)
        rgb[c] = px(id, y, x, c);
    if (kind == PNG_GRAY8 || kind == PNG_GA8 || kind == PNG_GRAY16)
        rgb[0] = rgb[1] = rgb[2] = px(id, y, x, 0);
    if (kind == PNG_PALETTE) /* palette of 4 colours chosen by (x + y) % 4 */
        for (int c = 0; c < 3; c++)
            rgb[c] = (uint8_t)(60 * ((x + y) % 4) + 20 * c);
}

static void write_png(const char *path, PngKind kind, int id, int h, int w)
{
    FILE *f = fopen(path, "wb");
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    png_init_io(png, f);
    int type = kind == PNG_RGB8 ? PNG_COLOR_TYPE_RGB
               : kind == PNG_RGBA8 ? PNG_COLOR_TYPE_RGBA
               : kind == PNG_PALETTE ? PNG_COLOR_TYPE_PALETTE
               : kind == PNG_GA8 ? PNG_COLOR_TYPE_GRAY_ALPHA : PNG_COLOR_TYPE_GRAY;
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, kind == PNG_GRAY16 ? 16 : 8, type,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (kind == PNG_PALETTE) {
        png_color pal[4];
        for (int i = 0; i < 4; i++)
            pal[i].red = (png_byte)(60 * i), pal[i].green = (png_byte)(60 * i + 20),
            pal[i].blue = (png_byte)(60 * i + 40);
        png_set_PLTE(png, info, pal, 4);
    }
    png_write_info(png, info);
    uint8_t *row = malloc((size_t)w * 8);
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) {
            uint8_t v = px(id, y, x, 0);
            switch (kind) {
            case PNG_RGB8:
                for (int c = 0; c < 3; c++)
                    row[3 * x + c] = px(id, y, x, c);
                break;
            case PNG_RGBA8:
                for (int c = 0; c < 3; c++)
                    row[4 * x + c] = px(id, y, x, c);
                row[4 * x + 3] = (uint8_t)(x * 20); /* alpha must be dropped, not applied */
                break;
            case PNG_GRAY8:
                row[x] = v;
                break;
            case PNG_GA8:
                row[2 * x] = v, row[2 * x + 1] = 3;
                break;
            case PNG_GRAY16: /* v * 257 scales back to v exactly */
                row[2 * x] = v, row[2 * x + 1] = v;
                break;
            case PNG_PALETTE:
                row[x] = (uint8_t)((x + y) % 4);
                break;
            }
        }
        png_write_row(png, row);
    }
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(row);
    fclose(f);
}

/* gray: 1 component; cmyk: Adobe-style inverted CMYK holding (R, G, B, 255). */
static void write_jpeg(const char *path, int id, int h, int w, int gray, int cmyk)
{
    struct jpeg_compress_struct cinfo;
    struct jpeg_error_mgr jerr;
    cinfo.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&cinfo);
    FILE *f = fopen(path, "wb");
    jpeg_stdio_dest(&cinfo, f);
    cinfo.image_width = (JDIMENSION)w;
    cinfo.image_height = (JDIMENSION)h;
    cinfo.input_components = gray ? 1 : cmyk ? 4 : 3;
    cinfo.in_color_space = gray ? JCS_GRAYSCALE : cmyk ? JCS_CMYK : JCS_RGB;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, 98, TRUE);
    jpeg_start_compress(&cinfo, TRUE);
    uint8_t *row = malloc((size_t)w * 4);
    while (cinfo.next_scanline < cinfo.image_height) {
        int y = (int)cinfo.next_scanline;
        for (int x = 0; x < w; x++) {
            if (gray)
                row[x] = px(id, y, x, 0);
            for (int c = 0; !gray && c < 3; c++)
                row[(cmyk ? 4 : 3) * x + c] = px(id, y, x, c);
            if (cmyk)
                row[4 * x + 3] = 255;
        }
        JSAMPROW r = row;
        jpeg_write_scanlines(&cinfo, &r, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    fclose(f);
    free(row);
}

/* The tree: classes "apple", "Mango", "zebra" (sorted: Mango, apple, zebra) with
 *   train/Mango: a.png (RGB 16x16), b.png (RGBA 16x20), c.jpg (RGB 16x16), notes.txt
 *   train/apple: a.png (palette 16x16), g.png (gray16 20x16), h.jpg (gray JPEG 16x16)
 *   train/zebra: k.jpg (CMYK 16x16), m.png (gray 8-bit 16x16), n.PNG (gray+alpha 16x16)
 *   val/Mango:   v.png (RGB 16x16);  val/zebra: w.png (RGB 16x20);  (no val/apple)
 * Store size 16 and crop 14 make every resize the identity (16 = round(14 / 0.875)), so the
 * stored pixels are the files' own: training images whole (16x16) or their centre square,
 * test images their centre 14x14. */
typedef struct {
    const char *split, *cls, *file;
    PngKind kind; /* for PNGs */
    int jpeg;     /* 0 png, 1 rgb, 2 gray, 3 cmyk */
    int id, h, w, label;
} TreeFile;

static const TreeFile TREE[] = {
    {"train", "Mango", "a.png", PNG_RGB8, 0, 1, 16, 16, 0},
    {"train", "Mango", "b.png", PNG_RGBA8, 0, 2, 16, 20, 0},
    {"train", "Mango", "c.jpg", PNG_RGB8, 1, 3, 16, 16, 0},
    {"train", "apple", "a.png", PNG_PALETTE, 0, 4, 16, 16, 1},
    {"train", "apple", "g.png", PNG_GRAY16, 0, 5, 20, 16, 1},
    {"train", "apple", "h.jpg", PNG_GRAY8, 2, 6, 16, 16, 1},
    {"train", "zebra", "k.jpg", PNG_RGB8, 3, 7, 16, 16, 2},
    {"train", "zebra", "m.png", PNG_GRAY8, 0, 8, 16, 16, 2},
    {"train", "zebra", "n.PNG", PNG_GA8, 0, 9, 16, 16, 2},
    {"val", "Mango", "v.png", PNG_RGB8, 0, 10, 16, 16, 0},
    {"val", "zebra", "w.png", PNG_RGB8, 0, 11, 16, 20, 2},
};
#define TREE_N (int)(sizeof TREE / sizeof TREE[0])

static void write_tree(const char *root)
{
    mkdirs(root, "train", NULL);
    mkdirs(root, "val", NULL);
    for (int i = 0; i < TREE_N; i++) {
        const TreeFile *t = &TREE[i];
        char p[512];
        mkdirs(root, t->split, t->cls);
        snprintf(p, sizeof p, "%s/%s/%s/%s", root, t->split, t->cls, t->file);
        if (t->jpeg)
            write_jpeg(p, t->id, t->h, t->w, t->jpeg == 2, t->jpeg == 3);
        else
            write_png(p, t->kind, t->id, t->h, t->w);
    }
    char p[512];
    snprintf(p, sizeof p, "%s/train/Mango/notes.txt", root);
    write_bytes(p, "not an image\n", 13);
}

static int run_folder(const char *src, const char *out, const void *arg)
{
    return convert_imagefolder(src, out, (const ImageFolderOptions *)arg);
}

static void test_imagefolder_pixels(void)
{
    char root[64], outd[64], out[128];
    make_dir(root);
    make_dir(outd);
    write_tree(root);
    snprintf(out, sizeof out, "%s/f.h5", outd);
    ImageFolderOptions o = {16, 14, 2};
    CHECK(convert_imagefolder(root, out, &o) == CIGL_OK, "convert failed");
    Dataset ds;
    CHECK(dataset_open(out, DATA_MEMORY, &ds) == CIGL_OK, "load");
    CHECK(ds.c == 3 && ds.h == 14 && ds.w == 14 && ds.classes == 3 &&
          ds.augment == DATA_AUGMENT_RRC, "input %dx%dx%d, %d classes, augment %d", ds.c, ds.h,
          ds.w, ds.classes, ds.augment);
    CHECK(ds.train.h == 16 && ds.train.w == 16 && ds.test.h == 14 && ds.test.w == 14,
          "stored %dx%d and %dx%d", ds.train.h, ds.train.w, ds.test.h, ds.test.w);
    CHECK(ds.train.n == 9 && ds.test.n == 2, "n %zu %zu", ds.train.n, ds.test.n);
    char names[3][32];
    CHECK(read_class_names(out, names, 3) == 0 && !strcmp(names[0], "Mango") &&
          !strcmp(names[1], "apple") && !strcmp(names[2], "zebra"), "classes %s %s %s",
          names[0], names[1], names[2]);
    size_t ti = 0, vi = 0;
    for (int i = 0; i < TREE_N && ds.train.n == 9 && ds.test.n == 2; i++) {
        const TreeFile *t = &TREE[i];
        const int test = !strcmp(t->split, "val"), side = test ? 14 : 16;
        const Split *s = test ? &ds.test : &ds.train;
        const size_t at = test ? vi++ : ti++;
        CHECK(s->labels[at] == t->label, "%s/%s label %d", t->cls, t->file, s->labels[at]);
        /* centre window of the file's pixels: offset (dim - side) / 2 */
        const int oy = (t->h - side) / 2, ox = (t->w - side) / 2;
        int worst = 0;
        double sum = 0;
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < side; y++)
                for (int x = 0; x < side; x++) {
                    uint8_t rgb[3];
                    expected_rgb(t->kind, t->id, y + oy, x + ox, rgb);
                    int d = abs((int)s->images[at * 3 * side * side + ((size_t)c * side + y) * side +
                                               x] - rgb[c]);
                    worst = d > worst ? d : worst;
                    sum += d;
                }
        if (!t->jpeg)
            CHECK(worst == 0, "%s/%s/%s: PNG pixels differ by up to %d", t->split, t->cls,
                  t->file, worst);
        else
            CHECK(worst <= 12 && sum / (3.0 * side * side) < 2.0, "%s/%s: JPEG error max %d "
                  "mean %.2f", t->cls, t->file, worst, sum / (3.0 * side * side));
    }
    dataset_free(&ds);
    remove_tree(root);
    remove_tree(outd);
}

/* A larger image is shrunk: the stored training image is the resize of the whole file to a
 * shorter side of 16 (independent check: the same image_resize on the decoded pixels), and
 * the output does not depend on the thread count. */
static void test_imagefolder_resizes(void)
{
    char root[64], outd[64], out1[128], out2[128], p[512];
    make_dir(root);
    make_dir(outd);
    for (int k = 0; k < 2; k++) {
        const char *cls = k ? "b" : "a";
        mkdirs(root, "train", cls);
        mkdirs(root, "val", cls);
        for (int i = 0; i < 3; i++) {
            snprintf(p, sizeof p, "%s/train/%s/%d.png", root, cls, i);
            write_png(p, PNG_RGB8, 10 * k + i, 40 + 8 * i, 64);
            snprintf(p, sizeof p, "%s/val/%s/%d.png", root, cls, i);
            write_png(p, PNG_RGB8, 10 * k + i + 5, 64, 48);
        }
    }
    snprintf(out1, sizeof out1, "%s/a.h5", outd);
    snprintf(out2, sizeof out2, "%s/b.h5", outd);
    ImageFolderOptions one = {16, 14, 1}, two = {16, 14, 2};
    CHECK(convert_imagefolder(root, out1, &one) == CIGL_OK, "convert");
    CHECK(convert_imagefolder(root, out2, &two) == CIGL_OK, "convert with 2 threads");
    Dataset a, b;
    CHECK(dataset_open(out1, DATA_MEMORY, &a) == CIGL_OK, "load");
    CHECK(dataset_open(out2, DATA_MEMORY, &b) == CIGL_OK, "load");
    CHECK(a.hash == b.hash && a.train.n == 6 && !memcmp(a.train.images, b.train.images,
                                                        6 * 3 * 16 * 16),
          "output depends on --threads");
    /* first training file: 40 x 64 -> shorter side 16, longer int(16 * 64 / 40) = 25, centre
     * square at x offset round((25 - 16) / 2) = 4 (4.5 rounds to even) */
    uint8_t planar[3 * 40 * 64], full[3 * 16 * 25];
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < 40; y++)
            for (int x = 0; x < 64; x++)
                planar[(c * 40 + y) * 64 + x] = px(0, y, x, c);
    image_resize(planar, 3, 40, 64, 0, 0, 40, 64, full, 16, 25);
    int bad = 0;
    for (int c = 0; c < 3 && a.train.n == 6; c++)
        for (int y = 0; y < 16; y++)
            for (int x = 0; x < 16; x++)
                bad += a.train.images[(c * 16 + y) * 16 + x] != full[(c * 16 + y) * 25 + x + 4];
    CHECK(bad == 0, "%d pixels differ from the independent resize", bad);
    /* test files: 64 x 48 -> shorter side 16, longer int(16 * 64 / 48) = 21, centre 14 x 14
     * at y offset round(3.5) = 4, x offset 1 */
    uint8_t tp[3 * 64 * 48], tf[3 * 21 * 16];
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < 64; y++)
            for (int x = 0; x < 48; x++)
                tp[(c * 64 + y) * 48 + x] = px(5, y, x, c);
    image_resize(tp, 3, 64, 48, 0, 0, 64, 48, tf, 21, 16);
    bad = 0;
    for (int c = 0; c < 3 && a.test.n == 6; c++)
        for (int y = 0; y < 14; y++)
            for (int x = 0; x < 14; x++)
                bad += a.test.images[(c * 14 + y) * 14 + x] != tf[(c * 21 + y + 4) * 16 + x + 1];
    CHECK(bad == 0, "%d test pixels differ from the independent resize", bad);
    dataset_free(&a);
    dataset_free(&b);
    remove_tree(root);
    remove_tree(outd);
}

static void test_imagefolder_refuses(void)
{
    char root[64], p[512];
    ImageFolderOptions o = {16, 14, 2};
    make_dir(root);
    write_tree(root);
    /* a truncated PNG, a truncated JPEG, a file that is neither */
    snprintf(p, sizeof p, "%s/train/apple/a.png", root);
    CHECK(truncate(p, 60) == 0, "truncate");
    expect_refused(run_folder, root, &o, "apple/a.png");
    write_png(p, PNG_PALETTE, 4, 16, 16);
    snprintf(p, sizeof p, "%s/train/zebra/k.jpg", root);
    struct stat st;
    stat(p, &st);
    CHECK(truncate(p, st.st_size / 2) == 0, "truncate");
    expect_refused(run_folder, root, &o, "zebra/k.jpg");
    write_bytes(p, "GIF89a not really", 17);
    expect_refused(run_folder, root, &o, "neither a JPEG nor a PNG");
    write_jpeg(p, 7, 16, 16, 0, 1);
    /* layout problems */
    mkdirs(root, "val", "pear");
    expect_refused(run_folder, root, &o, "not a class");
    snprintf(p, sizeof p, "%s/val/pear", root);
    rmdir(p);
    mkdirs(root, "train", "empty");
    expect_refused(run_folder, root, &o, "holds no .jpg");
    snprintf(p, sizeof p, "%s/train/empty", root);
    rmdir(p);
    snprintf(p, sizeof p, "%s/val", root);
    remove_tree(p);
    expect_refused(run_folder, root, &o, "/val");
    remove_tree(root);
}

int main(void)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    RUN(test_cifar10_round_trip);
    RUN(test_cifar10_refuses_corrupt);
    RUN(test_cifar100);
    RUN(test_resize_hand_computed);
    RUN(test_imagefolder_pixels);
    RUN(test_imagefolder_resizes);
    RUN(test_imagefolder_refuses);
    return CHECK_SUMMARY();
}
