/* Datasets in cigl's HDF5 schema (datasets/README.md). A split's pixels are either held in
 * memory or streamed from the file (HDF5 hyperslab reads, with a prefetch thread), chosen by
 * size or by the caller; both give the same batches bit for bit. Readers validate shapes,
 * types and ranges before allocating anything large. */
#ifndef CIGL_DATA_H
#define CIGL_DATA_H
#include <stddef.h>
#include <stdint.h>

#define CIGL_MAX_CHANNELS 4
#define CIGL_MAX_CLASSES 100000
#define CIGL_DATA_FORMAT_VERSION 2 /* written; versions 1 and 2 are read */
/* DATA_AUTO keeps a file whose pixels (both splits) take at most this much in memory and
 * streams larger ones: Fashion-MNIST (55 MB) and CIFAR (184 MB) load whole, ImageNet streams.
 * Every MPI rank holds its own copy, hence a limit well under a node's memory per rank. */
#define CIGL_DATA_MEMORY_LIMIT ((size_t)256 << 20)

/* What the training split needs besides normalisation (root attribute `augment`). */
typedef enum {
    DATA_AUGMENT_NONE = 0, /* stored at the input size; --crop-pad / --flip as asked */
    DATA_AUGMENT_RRC = 1   /* "random-resized-crop": training samples are stored larger than
                            * the input and get a random resized crop plus a random flip;
                            * evaluation takes the centre crop */
} DataAugmentKind;

typedef enum { DATA_AUTO = 0, DATA_MEMORY = 1, DATA_STREAM = 2 } DataMode;

typedef struct SplitStream SplitStream;

typedef struct {
    size_t n;            /* samples */
    uint8_t *images;     /* n x c x h x w when held in memory; NULL when streamed */
    int32_t *labels;     /* n, each in [0, classes); always in memory */
    int h, w;            /* stored image size; 0 means the dataset's input h, w */
    SplitStream *stream; /* the open file when streamed (data_stream.c) */
} Split;

typedef struct {
    int c, h, w, classes; /* c x h x w: the model's input shape */
    int augment;          /* DataAugmentKind */
    int version;          /* format_version of the file */
    double mean[CIGL_MAX_CHANNELS], std[CIGL_MAX_CHANNELS]; /* of pixel/255 on train */
    char name[64];
    uint64_t hash;        /* FNV-1a over both splits' pixels and labels: identifies the data */
    int streamed;         /* pixels are read from the file on demand */
    Split train, test;
} Dataset;

/* Opens `path`, validates the schema and labels, and either reads both splits' pixels into
 * memory or keeps the file open for streaming (mode; DATA_AUTO: by CIGL_DATA_MEMORY_LIMIT).
 * On failure prints one line (what is wrong, how to fix it) and returns CIGL_ERR_USAGE (or
 * CIGL_ERR_RUNTIME for I/O trouble); `ds` is left empty. */
int dataset_open(const char *path, DataMode mode, Dataset *ds);
int dataset_load(const char *path, Dataset *ds); /* dataset_open(path, DATA_AUTO, ds) */
void dataset_free(Dataset *ds);
/* "auto" | "memory" | "stream" (the trainer's --data-mode); -1 for anything else. */
int data_mode_parse(const char *text);

/* Recomputes the content hash of a file by reading it in bounded memory and compares it with
 * the stored `content_hash` (format 2). Prints the result; returns CIGL_ERR_USAGE on a
 * mismatch or a bad file. */
int dataset_verify(const char *path);

/* Writes a whole in-memory dataset (input size = stored size, no augmentation kind) through
 * the streaming writer below. Splits with n == 0 are refused. */
int dataset_write(const char *path, const char *name, int c, int h, int w, int classes,
                  const char *const *class_names, const Split *train, const Split *test);

/* Streaming writer: the file is created under a temporary name, samples are appended train
 * split first, and dataset_writer_close computes nothing large (mean, std and the content
 * hash accumulate while appending), writes the attributes, fsyncs and renames. On any error
 * (and on dataset_writer_abort) the temporary file is removed: no output. */
typedef struct {
    const char *name;
    int c, h, w;                   /* model input size (root attributes) */
    int classes;
    const char *const *class_names;
    int augment;                   /* DataAugmentKind */
    size_t n[2];                   /* samples of train, test */
    int split_h[2], split_w[2];    /* stored sizes of train, test */
} DatasetSpec;

typedef struct DatasetWriter DatasetWriter;
int dataset_writer_open(DatasetWriter **w, const char *path, const DatasetSpec *spec);
/* Appends n samples (n x c x split_h x split_w pixels) to split 0 (train) or 1 (test). */
int dataset_writer_append(DatasetWriter *w, int split, const uint8_t *images,
                          const int32_t *labels, size_t n);
int dataset_writer_close(DatasetWriter *w);
void dataset_writer_abort(DatasetWriter *w);

/* Augmentation applied while building a training batch; keyed by (seed, epoch, global sample
 * index). For DATA_AUGMENT_RRC datasets the random resized crop and flip are always drawn and
 * crop_pad / flip are ignored. */
typedef struct {
    int crop_pad;   /* random crop with this zero padding (0: off) */
    int flip;       /* random horizontal flip */
    uint64_t seed;
    uint64_t epoch;
} Augment;

/* Gathers samples idx[0..n) of `s` into normalised float NCHW `x` (the input size c x h x w)
 * and labels `y`. `aug` may be NULL (evaluation: samples stored larger than the input are
 * centre-cropped). A streamed split uses the prefetched samples when split_prefetch asked for
 * exactly these indices, and reads them now otherwise. A read failure of a streamed file
 * (which passed validation: disk or network trouble) or no memory for a crop prints one line
 * and returns CIGL_ERR_RUNTIME; under MPI the caller aborts the job, so nothing hangs. */
int split_gather(const Dataset *ds, const Split *s, const uint32_t *idx, size_t n,
                 const Augment *aug, float *x, int32_t *y);
/* Starts reading samples idx[0..n) of a streamed split in the background (the indices are
 * copied); the next split_gather of the same indices waits for them. No-op in memory. */
void split_prefetch(const Dataset *ds, const Split *s, const uint32_t *idx, size_t n);
/* The same for samples idx[first..first+n), or first..first+n-1 when idx is NULL. */
void split_prefetch_range(const Dataset *ds, const Split *s, const uint32_t *idx, size_t first,
                          size_t n);

/* Converters (datasets/): each validates its input fully and writes through the writer.
 * convert_main is `cigl convert` (argv after "convert"). */
int convert_main(int argc, char **argv);
int convert_fashion_mnist(const char *src_dir, const char *out_path);
int convert_cifar(const char *src, const char *out_path, int classes); /* 10 or 100 */

#endif
