/* `cigl convert imagefolder SRC_DIR OUT.h5`: a class-per-folder tree of JPEG/PNG images
 * (SRC_DIR/train/<class>/..., SRC_DIR/val/<class>/..., ImageNet's usual layout) into cigl's
 * HDF5 schema with augment "random-resized-crop":
 *   train: shorter side resized to --store-size, then the centre square (store x store);
 *   test (from val/): shorter side resized to round(crop / 0.875), then the centre crop x crop.
 * Fixed-size training images give fixed-shape HDF5 chunks and single-sample reads; the random
 * resized crop of training is taken from the stored square at run time. Classes are the
 * sub-folders of train/ sorted by name (byte order, as torchvision's ImageFolder); files are
 * taken in name order. Images are decoded in parallel blocks and written in order, so the
 * output does not depend on --threads. A file that does not decode stops the conversion,
 * naming it, and no output is left. */
#include "convert.h"
#include "image_decode.h"

#include "cigl/error.h"
#include "cigl/image.h"

#include <dirent.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define BLOCK 64 /* images decoded in parallel, then written in order */

typedef struct {
    char **items;
    size_t n, cap;
} Names;

static int names_push(Names *l, const char *s)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        char **items = realloc(l->items, cap * sizeof *items);
        if (!items)
            return -1;
        l->items = items;
        l->cap = cap;
    }
    l->items[l->n] = strdup(s);
    return l->items[l->n++] ? 0 : -1;
}

static void names_free(Names *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->items[i]);
    free(l->items);
    memset(l, 0, sizeof *l);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_image_name(const char *name)
{
    const char *dot = strrchr(name, '.');
    return dot && (!strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg") ||
                   !strcasecmp(dot, ".png"));
}

/* Entries of `dir` (hidden ones skipped): sub-folders (want_dirs) or image files, sorted;
 * *skipped counts other files. */
static int list_dir(const char *dir, int want_dirs, Names *out, size_t *skipped)
{
    DIR *d = opendir(dir);
    if (!d)
        return cigl_fail(CIGL_ERR_USAGE, "cannot read folder '%s'; the image folder must hold "
                         "train/<class>/ and val/<class>/ (see datasets/README.md)", dir);
    struct dirent *e;
    char path[4400];
    int rc = CIGL_OK;
    while (!rc && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%.4000s/%.255s", dir, e->d_name);
        int sub = is_dir(path);
        if (want_dirs ? sub : (!sub && is_image_name(e->d_name)))
            rc = names_push(out, e->d_name) ? cigl_fail(CIGL_ERR_RUNTIME, "out of memory") : 0;
        else if (!want_dirs && skipped)
            (*skipped)++;
    }
    closedir(d);
    if (!rc && out->n) /* qsort's base must not be NULL, even for 0 elements */
        qsort(out->items, out->n, sizeof *out->items, cmp_str);
    return rc;
}

/* Every image of one split: paths and labels. Class folders of val/ must exist in train/. */
typedef struct {
    Names paths;
    int32_t *labels;
    size_t cap;
} FileList;

static int collect(const char *root, const char *split, const Names *classes, FileList *fl,
                   size_t *skipped)
{
    char dir[4200], cdir[4400];
    snprintf(dir, sizeof dir, "%.4000s/%s", root, split);
    Names found = {0};
    int rc = list_dir(dir, 1, &found, NULL);
    for (size_t i = 0; i < found.n && !rc; i++)
        if (!bsearch(&found.items[i], classes->items, classes->n, sizeof(char *), cmp_str))
            rc = cigl_fail(CIGL_ERR_USAGE, "'%s/%s' is not a class of '%s/train'; every val/ "
                           "class folder must have a train/ folder of the same name", dir,
                           found.items[i], root);
    names_free(&found);
    for (size_t k = 0; k < classes->n && !rc; k++) {
        snprintf(cdir, sizeof cdir, "%s/%s", dir, classes->items[k]);
        if (!is_dir(cdir))
            continue; /* a class absent from val/ has no test images */
        Names files = {0};
        rc = list_dir(cdir, 0, &files, skipped);
        if (!rc && !strcmp(split, "train") && files.n == 0)
            rc = cigl_fail(CIGL_ERR_USAGE, "class folder '%s' holds no .jpg, .jpeg or .png "
                           "file; remove it or add its images", cdir);
        for (size_t i = 0; i < files.n && !rc; i++) {
            char path[8500];
            snprintf(path, sizeof path, "%s/%s", cdir, files.items[i]);
            if (names_push(&fl->paths, path))
                rc = cigl_fail(CIGL_ERR_RUNTIME, "out of memory listing '%s'", cdir);
            if (!rc && fl->paths.n > fl->cap) {
                size_t cap = fl->cap ? 2 * fl->cap : 1024;
                int32_t *l = realloc(fl->labels, cap * sizeof *l);
                if (!l)
                    rc = cigl_fail(CIGL_ERR_RUNTIME, "out of memory listing '%s'", cdir);
                else
                    fl->labels = l, fl->cap = cap;
            }
            if (!rc)
                fl->labels[fl->paths.n - 1] = (int32_t)k;
        }
        names_free(&files);
    }
    if (!rc && fl->paths.n == 0)
        rc = cigl_fail(CIGL_ERR_USAGE, "'%s' holds no images; expected %s/<class>/*.jpg|png",
                       dir, split);
    if (!rc && fl->paths.n > UINT32_MAX)
        rc = cigl_fail(CIGL_ERR_USAGE, "'%s' holds more than %u images", dir, UINT32_MAX);
    return rc;
}

/* Python's round(): halves to even. */
static int round_even(double v)
{
    return (int)nearbyint(v);
}

/* torchvision's Resize(short) then CenterCrop(side): the shorter side becomes `short_side`,
 * the longer int(short_side * long / short); the centre side x side window is kept. */
static int resize_crop(const Image *img, int short_side, int side, uint8_t *out, uint8_t *planar,
                       size_t planar_cap)
{
    const int portrait = img->h >= img->w;
    const int sh = img->h, sw = img->w, s = portrait ? sw : sh, l = portrait ? sh : sw;
    const int nl = (int)((double)short_side * l / s);
    const int nh = portrait ? nl : short_side, nw = portrait ? short_side : nl;
    if ((size_t)3 * sh * sw > planar_cap)
        return -1;
    for (int y = 0; y < sh; y++) /* interleaved RGB -> planes */
        for (int x = 0; x < sw; x++)
            for (int c = 0; c < 3; c++)
                planar[((size_t)c * sh + y) * sw + x] = img->rgb[((size_t)y * sw + x) * 3 + c];
    uint8_t *full = malloc((size_t)3 * nh * nw);
    if (!full)
        return -1;
    int rc = image_resize(planar, 3, sh, sw, 0, 0, sh, sw, full, nh, nw);
    const int oy = round_even((nh - side) / 2.0), ox = round_even((nw - side) / 2.0);
    for (int c = 0; c < 3 && !rc; c++)
        for (int y = 0; y < side; y++)
            memcpy(out + ((size_t)c * side + y) * side,
                   full + ((size_t)c * nh + y + oy) * nw + ox, (size_t)side);
    free(full);
    return rc;
}

/* Decodes, resizes and crops one image into `out` (3 x side x side). */
static int process(const char *path, int short_side, int side, uint8_t *out, char *err,
                   size_t cap)
{
    Image img;
    if (image_decode_file(path, &img, err, cap))
        return -1;
    size_t need = (size_t)3 * img.h * img.w;
    uint8_t *planar = malloc(need);
    int rc = planar ? resize_crop(&img, short_side, side, out, planar, need) : -1;
    if (rc)
        snprintf(err, cap, "out of memory for a %dx%d image", img.w, img.h);
    free(planar);
    image_free(&img);
    return rc;
}

/* Converts one split's files in blocks, appending to the writer in order. */
static int convert_split(DatasetWriter *dw, int split, const FileList *fl, int short_side,
                         int side, int threads)
{
    const size_t sample = (size_t)3 * side * side;
    uint8_t *block = malloc(sample * BLOCK);
    char (*errs)[256] = malloc(sizeof(*errs) * BLOCK);
    int failed[BLOCK];
    if (!block || !errs) {
        free(block);
        free(errs);
        return cigl_fail(CIGL_ERR_RUNTIME, "out of memory for a block of %d images", BLOCK);
    }
    int rc = CIGL_OK;
    for (size_t b0 = 0; b0 < fl->paths.n && !rc; b0 += BLOCK) {
        const int nb = (int)(fl->paths.n - b0 < BLOCK ? fl->paths.n - b0 : BLOCK);
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
        for (int i = 0; i < nb; i++)
            failed[i] = process(fl->paths.items[b0 + i], short_side, side, block + i * sample,
                                errs[i], sizeof errs[i]);
        for (int i = 0; i < nb && !rc; i++)
            if (failed[i])
                rc = cigl_fail(CIGL_ERR_USAGE, "cannot convert image '%s': %s; remove or "
                               "replace the file and convert again (nothing was written)",
                               fl->paths.items[b0 + i], errs[i]);
        if (!rc)
            rc = dataset_writer_append(dw, split, block, fl->labels + b0, (size_t)nb);
        if (!rc && isatty(STDERR_FILENO) && (b0 / BLOCK) % 16 == 15)
            fprintf(stderr, "\r%s: %zu / %zu images", split ? "val" : "train", b0 + nb,
                    fl->paths.n);
    }
    if (isatty(STDERR_FILENO) && fl->paths.n >= (size_t)16 * BLOCK)
        fputc('\n', stderr);
    free(block);
    free(errs);
    return rc;
}

int convert_imagefolder(const char *src, const char *out, const ImageFolderOptions *o)
{
    char train_dir[4200];
    snprintf(train_dir, sizeof train_dir, "%.4000s/train", src);
    Names classes = {0};
    FileList fl[2];
    memset(fl, 0, sizeof fl);
    size_t skipped = 0;
    int rc = is_dir(train_dir) ? CIGL_OK
                               : cigl_fail(CIGL_ERR_USAGE, "'%s' is not a folder; the image "
                                           "folder must hold train/<class>/ and val/<class>/ "
                                           "(see datasets/README.md)", train_dir);
    if (!rc)
        rc = list_dir(train_dir, 1, &classes, NULL);
    if (!rc && classes.n < 2)
        rc = cigl_fail(CIGL_ERR_USAGE, "'%s' has %zu class folder(s); at least 2 are needed",
                       train_dir, classes.n);
    if (!rc && classes.n > CIGL_MAX_CLASSES)
        rc = cigl_fail(CIGL_ERR_USAGE, "'%s' has %zu class folders; at most %d are supported",
                       train_dir, classes.n, CIGL_MAX_CLASSES);
    if (!rc)
        rc = collect(src, "train", &classes, &fl[0], &skipped);
    if (!rc)
        rc = collect(src, "val", &classes, &fl[1], &skipped);
    const int eval_short = round_even(o->crop_size / 0.875);
    char name[64]; /* the folder's name, e.g. "imagenet" */
    size_t len = strlen(src);
    while (len > 1 && src[len - 1] == '/')
        len--;
    const char *base = src + len;
    while (base > src && base[-1] != '/')
        base--;
    snprintf(name, sizeof name, "%.*s", (int)(src + len - base), base);
    if (!name[0] || !strcmp(name, ".") || !strcmp(name, ".."))
        snprintf(name, sizeof name, "imagefolder");
    DatasetSpec spec = {name, 3, o->crop_size, o->crop_size, (int)classes.n,
                        (const char *const *)classes.items, DATA_AUGMENT_RRC,
                        {fl[0].paths.n, fl[1].paths.n}, {o->store_size, o->crop_size},
                        {o->store_size, o->crop_size}};
    DatasetWriter *dw = NULL;
    if (!rc)
        rc = dataset_writer_open(&dw, out, &spec);
    if (!rc)
        rc = convert_split(dw, 0, &fl[0], o->store_size, o->store_size, o->threads);
    if (!rc)
        rc = convert_split(dw, 1, &fl[1], eval_short, o->crop_size, o->threads);
    if (!rc)
        rc = dataset_writer_close(dw);
    else
        dataset_writer_abort(dw);
    if (!rc)
        printf("cigl: wrote '%s': %zu training images at %dx%d, %zu test images at %dx%d, %zu "
               "classes%s\n", out, fl[0].paths.n, o->store_size, o->store_size, fl[1].paths.n,
               o->crop_size, o->crop_size, classes.n, skipped ? " (files without a .jpg, "
               ".jpeg or .png name were skipped)" : "");
    names_free(&classes);
    for (int i = 0; i < 2; i++) {
        names_free(&fl[i].paths);
        free(fl[i].labels);
    }
    return rc;
}
