/* `cigl convert`: dispatch to the converters, their options, and --verify. */
#include "convert.h"

#include "cigl/error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char convert_usage[] =
    "usage:\n"
    "  cigl convert fashion-mnist SRC_DIR OUT.h5   SRC_DIR: the four IDX .gz files (Debian's\n"
    "                                              dataset-fashion-mnist: /usr/share/datasets/fashion-mnist)\n"
    "  cigl convert cifar10 SRC OUT.h5             SRC: cifar-10-binary.tar.gz or its cifar-10-batches-bin/\n"
    "  cigl convert cifar100 SRC OUT.h5            SRC: cifar-100-binary.tar.gz or its cifar-100-binary/\n"
    "  cigl convert imagefolder SRC_DIR OUT.h5 [--store-size 256] [--crop-size 224] [--threads N]\n"
    "                                              SRC_DIR/train/<class>/*.jpg|png, SRC_DIR/val/<class>/...\n"
    "  cigl convert synthetic OUT.h5 --train N --test N --shape C,H,W --classes K [--seed S]\n"
    "                                              random pixels (I/O and memory tests)\n"
    "  cigl convert --verify FILE.h5               recompute the content hash and compare\n"
    "See datasets/README.md for the formats and the HDF5 schema.\n";

/* A whole decimal number in [lo, hi], or an error naming the option. */
static int parse_num(const char *opt, const char *text, long long lo, long long hi,
                     long long *out)
{
    char *end = NULL;
    errno = 0;
    long long v = text ? strtoll(text, &end, 10) : 0;
    if (!text || errno || end == text || *end || v < lo || v > hi)
        return cigl_fail(CIGL_ERR_USAGE, "%s needs a whole number in %lld..%lld, got '%s'", opt,
                         lo, hi, text ? text : "nothing");
    *out = v;
    return CIGL_OK;
}

static int convert_imagefolder_cmd(int argc, char **argv)
{
    ImageFolderOptions o = {256, 224, 1};
    for (int i = 3; i < argc; i += 2) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        long long x = 0, lo = 8, hi = 4096;
        int *dst = NULL;
        if (!strcmp(argv[i], "--store-size"))
            dst = &o.store_size;
        else if (!strcmp(argv[i], "--crop-size"))
            dst = &o.crop_size;
        else if (!strcmp(argv[i], "--threads"))
            dst = &o.threads, lo = 1, hi = 1024;
        else
            return cigl_fail(CIGL_ERR_USAGE, "unknown option '%s' for 'cigl convert imagefolder'; "
                             "expected --store-size, --crop-size or --threads", argv[i]);
        int rc = parse_num(argv[i], v, lo, hi, &x);
        if (rc)
            return rc;
        *dst = (int)x;
    }
    if (o.store_size < o.crop_size)
        return cigl_fail(CIGL_ERR_USAGE, "--store-size %d is smaller than --crop-size %d; the "
                         "training images must hold the crop", o.store_size, o.crop_size);
    return convert_imagefolder(argv[1], argv[2], &o);
}

/* --shape C,H,W */
static int parse_shape(const char *text, int *c, int *h, int *w)
{
    /* strtol, not sscanf's %d: an out-of-range number is then refused, not undefined */
    int *dst[3] = {c, h, w}, ok = text != NULL;
    const char *p = text;
    for (int i = 0; i < 3 && ok; i++) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        ok = end != p && !errno && v >= 1 && v <= 4096 && *end == (i < 2 ? ',' : '\0');
        *dst[i] = ok ? (int)v : 0;
        p = end + (i < 2);
    }
    if (!ok || *c > CIGL_MAX_CHANNELS)
        return cigl_fail(CIGL_ERR_USAGE, "--shape needs C,H,W with C in 1..%d and H, W in "
                         "1..4096, got '%s'", CIGL_MAX_CHANNELS, text ? text : "nothing");
    return CIGL_OK;
}

static int convert_synthetic_cmd(int argc, char **argv)
{
    long long n[2] = {-1, -1}, classes = 10, seed = 0;
    int c = 0, h = 0, w = 0, rc = CIGL_OK;
    for (int i = 2; i < argc && !rc; i += 2) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(argv[i], "--train"))
            rc = parse_num(argv[i], v, 1, 0xffffffffLL, &n[0]);
        else if (!strcmp(argv[i], "--test"))
            rc = parse_num(argv[i], v, 1, 0xffffffffLL, &n[1]);
        else if (!strcmp(argv[i], "--classes"))
            rc = parse_num(argv[i], v, 2, CIGL_MAX_CLASSES, &classes);
        else if (!strcmp(argv[i], "--seed"))
            rc = parse_num(argv[i], v, 0, 0x7fffffffffffffffLL, &seed);
        else if (!strcmp(argv[i], "--shape"))
            rc = parse_shape(v, &c, &h, &w);
        else
            rc = cigl_fail(CIGL_ERR_USAGE, "unknown option '%s' for 'cigl convert synthetic'; "
                           "expected --train, --test, --shape, --classes or --seed", argv[i]);
    }
    if (!rc && (n[0] < 0 || n[1] < 0 || !c))
        rc = cigl_fail(CIGL_ERR_USAGE, "'cigl convert synthetic OUT.h5' needs --train N, --test N "
                       "and --shape C,H,W");
    return rc ? rc : convert_synthetic(argv[1], (size_t)n[0], (size_t)n[1], c, h, w,
                                       (int)classes, (uint64_t)seed);
}

int convert_main(int argc, char **argv)
{
    for (int i = 0; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(convert_usage, stdout);
            return 0;
        }
    if (argc == 2 && !strcmp(argv[0], "--verify"))
        return dataset_verify(argv[1]);
    const char *fmt = argc > 0 ? argv[0] : "";
    const int is_folder = !strcmp(fmt, "imagefolder"), is_synth = !strcmp(fmt, "synthetic");
    if ((!is_folder && !is_synth && argc != 3) || (is_folder && argc < 3) || (is_synth && argc < 2)) {
        fputs(convert_usage, stderr);
        return CIGL_ERR_USAGE;
    }
    if (!strcmp(fmt, "fashion-mnist"))
        return convert_fashion_mnist(argv[1], argv[2]);
    if (!strcmp(fmt, "cifar10"))
        return convert_cifar(argv[1], argv[2], 10);
    if (!strcmp(fmt, "cifar100"))
        return convert_cifar(argv[1], argv[2], 100);
    if (is_folder)
        return convert_imagefolder_cmd(argc, argv);
    if (is_synth)
        return convert_synthetic_cmd(argc, argv);
    return cigl_fail(CIGL_ERR_USAGE, "unknown dataset format '%s'; expected fashion-mnist, "
                     "cifar10, cifar100, imagefolder or synthetic (see 'cigl convert --help')",
                     fmt);
}
