/* Private to the converters in datasets/. */
#ifndef CIGL_CONVERT_H
#define CIGL_CONVERT_H
#include "cigl/data.h"

#include <stddef.h>
#include <stdint.h>

int convert_synthetic(const char *out, size_t n_train, size_t n_test, int c, int h, int w,
                      int classes, uint64_t seed);

/* Image-folder conversion options (see datasets/README.md). */
typedef struct {
    int store_size; /* training images: shorter side, then the centre square (default 256) */
    int crop_size;  /* model input; evaluation images: shorter side round(crop / 0.875), then
                     * the centre crop x crop (default 224) */
    int threads;    /* decoding threads */
} ImageFolderOptions;

int convert_imagefolder(const char *src, const char *out, const ImageFolderOptions *o);

#endif
