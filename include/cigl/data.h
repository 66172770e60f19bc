/* Datasets in cigl's HDF5 schema (datasets/README.md), held in memory as uint8 pixels.
 * Readers validate shapes, types and ranges before allocating anything large. */
#ifndef CIGL_DATA_H
#define CIGL_DATA_H
#include <stddef.h>
#include <stdint.h>

#define CIGL_MAX_CHANNELS 4
#define CIGL_MAX_CLASSES 100000

typedef struct {
    size_t n;           /* samples */
    uint8_t *images;    /* n x c x h x w */
    int32_t *labels;    /* n, each in [0, classes) */
} Split;

typedef struct {
    int c, h, w, classes;
    double mean[CIGL_MAX_CHANNELS], std[CIGL_MAX_CHANNELS]; /* of pixel/255 on train */
    char name[64];
    uint64_t hash;      /* FNV-1a over both splits' pixels and labels: identifies the data */
    Split train, test;
} Dataset;

/* Opens `path`, validates the schema and reads both splits into memory. On failure prints one
 * line (what is wrong, how to fix it) and returns CIGL_ERR_USAGE; `ds` is left empty. */
int dataset_load(const char *path, Dataset *ds);
void dataset_free(Dataset *ds);

/* Writes a dataset file atomically (temporary name, then rename). Splits with n == 0 are
 * refused. mean/std are computed here from the training split. */
int dataset_write(const char *path, const char *name, int c, int h, int w, int classes,
                  const char *const *class_names, const Split *train, const Split *test);

/* Augmentation applied while building a batch; keyed by (seed, epoch, global sample index). */
typedef struct {
    int crop_pad;   /* random crop with this zero padding (0: off) */
    int flip;       /* random horizontal flip */
    uint64_t seed;
    uint64_t epoch;
} Augment;

/* Gathers samples idx[0..n) of `s` into normalised float NCHW `x` and labels `y`.
 * `aug` may be NULL (evaluation). */
void split_gather(const Dataset *ds, const Split *s, const uint32_t *idx, size_t n,
                  const Augment *aug, float *x, int32_t *y);

/* Converters (datasets/): each validates its input fully and writes via dataset_write. */
int convert_fashion_mnist(const char *src_dir, const char *out_path);

#endif
