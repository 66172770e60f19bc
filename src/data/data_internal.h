/* Private to the dataset code (data_*.c, datasets/): schema constants, the content hash and
 * the streamed-split reader. */
#ifndef CIGL_DATA_INTERNAL_H
#define CIGL_DATA_INTERNAL_H
#include "cigl/checksum.h"
#include "cigl/data.h"

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

#define DATA_FORMAT_NAME "cigl-dataset"
#define DATA_MAX_SIDE 4096
#define DATA_CHUNK_BYTES ((size_t)1 << 20)
#define DATA_AUGMENT_NAME_NONE "none"
#define DATA_AUGMENT_NAME_RRC "random-resized-crop"

extern const char *const DATA_SPLIT_NAMES[2];

/* checksum_bytes over labels hashed as int32 little-endian. */
uint64_t data_hash_labels(uint64_t h, const int32_t *labels, size_t n);

/* Hashes the pixels of an open images dataset (n samples of `sample` bytes) in blocks of
 * bounded size; returns -1 on a read failure. */
int data_hash_pixels(hid_t images, size_t n, size_t sample, uint64_t *h);

/* The random resized crop of `sample` in an h x w stored image: rows y..y+ch-1, columns
 * x..x+cw-1, then mirrored when flip (datasets/README.md gives the draws). */
typedef struct {
    int y, x, h, w, flip;
} Crop;
Crop data_rrc_crop(const Augment *aug, uint32_t sample, int height, int width);

/* A split read from the file on demand. */
int split_stream_open(SplitStream **ss, const char *path, const char *split, size_t sample);
void split_stream_close(SplitStream *ss);
/* Pixels of samples idx[0..n) in that order (n x sample bytes, valid until the next call):
 * the prefetched ones when they match, else read now. NULL after a read failure (printed). */
const uint8_t *split_stream_read(SplitStream *ss, const uint32_t *idx, size_t n);
/* Samples idx[first..first+n), or first..first+n-1 when idx is NULL. */
void split_stream_prefetch(SplitStream *ss, const uint32_t *idx, size_t first, size_t n);

#endif
