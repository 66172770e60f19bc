/* Fuzz target: the JPEG/PNG decoding wrapper of `cigl convert imagefolder`
 * (datasets/image_decode.c, over libjpeg and libpng): any bytes are refused with a reason or
 * decoded into an image of the size it reports. */
#include "fuzz.h"

#include "../../datasets/image_decode.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64], err[256];
    int fd = fuzz_memfile(data, size, path, sizeof path);
    if (fd < 0) return 0;
    Image img;
    err[0] = 0;
    if (image_decode_file(path, &img, err, sizeof err) == 0) {
        if (img.h < 1 || img.w < 1 || !img.rgb) __builtin_trap();
        volatile uint8_t last = img.rgb[(size_t)img.h * (size_t)img.w * 3 - 1]; /* in bounds */
        (void)last;
        image_free(&img);
    } else if (!err[0]) {
        __builtin_trap(); /* a refusal always says why */
    }
    close(fd);
    return 0;
}
