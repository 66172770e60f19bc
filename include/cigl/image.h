/* Image resampling shared by the converters and the random-resized-crop augmentation. */
#ifndef CIGL_IMAGE_H
#define CIGL_IMAGE_H
#include <stdint.h>

/* Resizes the region rows y0..y0+rh-1, columns x0..x0+rw-1 of a planar uint8 image (c planes
 * of sh x sw) to c planes of oh x ow, as a crop followed by a resize: a separable triangle
 * (bilinear) filter whose support widens by the scale factor when shrinking, so that
 * downscaling averages every source pixel (antialiasing, as PIL's BILINEAR); enlarging is
 * plain bilinear interpolation. Pixel centres are aligned (half-pixel convention); results
 * are rounded to the nearest integer and clamped. Returns 0, or -1 when out of memory. */
int image_resize(const uint8_t *src, int c, int sh, int sw, int y0, int x0, int rh, int rw,
                 uint8_t *dst, int oh, int ow);

#endif
