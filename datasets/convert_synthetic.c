/* `cigl convert synthetic`: random uint8 pixels and labels of any size, for I/O and memory
 * tests and benchmarks (e.g. a dataset of several GiB without any download). Deterministic
 * in the seed; written in blocks through the streaming writer, so memory stays small. */
#include "convert.h"

#include "cigl/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* splitmix64: fast, good enough for pixels that only need to look random */
static uint64_t next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

int convert_synthetic(const char *out, size_t n_train, size_t n_test, int c, int h, int w,
                      int classes, uint64_t seed)
{
    char **names = calloc((size_t)classes, sizeof *names);
    int rc = names ? CIGL_OK : CIGL_ERR_RUNTIME;
    for (int k = 0; k < classes && !rc; k++) {
        names[k] = malloc(16);
        rc = names[k] ? CIGL_OK : CIGL_ERR_RUNTIME;
        if (!rc)
            snprintf(names[k], 16, "class%d", k);
    }
    DatasetSpec spec = {"synthetic", c, h, w, classes, (const char *const *)names,
                        DATA_AUGMENT_NONE, {n_train, n_test}, {h, h}, {w, w}};
    DatasetWriter *dw = NULL;
    if (!rc)
        rc = dataset_writer_open(&dw, out, &spec);
    const size_t sample = (size_t)c * (size_t)h * (size_t)w;
    const size_t per = (16u << 20) / sample ? (16u << 20) / sample : 1;
    uint8_t *px = rc ? NULL : malloc(per * sample + 8);
    int32_t *labels = rc ? NULL : malloc(per * sizeof(int32_t));
    if (!rc && (!px || !labels))
        rc = cigl_fail(CIGL_ERR_RUNTIME, "out of memory for a block of synthetic samples");
    uint64_t state = seed;
    for (int split = 0; split < 2 && !rc; split++)
        for (size_t done = 0; done < spec.n[split] && !rc; done += per) {
            size_t k = spec.n[split] - done < per ? spec.n[split] - done : per;
            for (size_t i = 0; i < k * sample; i += 8) {
                uint64_t v = next(&state);
                memcpy(px + i, &v, 8); /* px has 8 spare bytes for the last word */
            }
            for (size_t i = 0; i < k; i++)
                labels[i] = (int32_t)(next(&state) % (uint64_t)classes);
            rc = dataset_writer_append(dw, split, px, labels, k);
        }
    if (!rc)
        rc = dataset_writer_close(dw);
    else
        dataset_writer_abort(dw);
    free(px);
    free(labels);
    for (int k = 0; names && k < classes; k++)
        free(names[k]);
    free(names);
    return rc;
}
