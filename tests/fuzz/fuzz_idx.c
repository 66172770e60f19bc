/* Fuzz target: the IDX reader of `cigl convert fashion-mnist` (datasets/convert_idx.c), on
 * plain and gzip-compressed input, with the shapes the converter asks for (28x28 images,
 * labels) and a small image shape so that short inputs reach the data checks. The reader's
 * functions are static, so the converter's source is compiled into this target. */
#include "fuzz.h"

#include "../../datasets/convert_idx.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const IdxShape shapes[3] = {{3, {28, 28, 0}}, {1, {0, 0, 0}}, {3, {2, 3, 0}}};
    char path[64];
    int fd = fuzz_memfile(data, size, path, sizeof path);
    if (fd < 0) return 0;
    for (int s = 0; s < 3; s++) {
        uint32_t count = 0;
        uint8_t *pixels = NULL;
        int rc = idx_read(path, &shapes[s], &count, &pixels);
        if (rc == CIGL_OK && !pixels) __builtin_trap();
        /* the input is in memory: a runtime error can only be an allocation that failed, i.e.
         * one sized by the header rather than by the data (replay runs under a memory limit) */
        if (rc == CIGL_ERR_RUNTIME) __builtin_trap();
        free(pixels);
    }
    close(fd);
    return 0;
}
