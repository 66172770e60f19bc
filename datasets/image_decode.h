/* Private to the image-folder converter: JPEG/PNG files to 8-bit RGB. */
#ifndef CIGL_IMAGE_DECODE_H
#define CIGL_IMAGE_DECODE_H
#include <stddef.h>
#include <stdint.h>

#define IMAGE_MAX_SIDE 65500
/* 2^27 pixels (384 MiB of RGB) per image, far above any photo in ImageNet: found by fuzzing, a
 * 123-byte JPEG declaring ~930 million pixels made the decoder allocate 2.8 GB. */
#define IMAGE_MAX_PIXELS ((size_t)1 << 27)

typedef struct {
    int h, w;
    uint8_t *rgb; /* h x w x 3, interleaved */
} Image;

/* Decodes a JPEG or PNG file (format from its first bytes). Returns 0, or -1 with a short
 * reason in err. */
int image_decode_file(const char *path, Image *img, char *err, size_t cap);
void image_free(Image *img);

#endif
