/* Fuzz target: cigl's dataset schema validation and loading (src/data_read.c, dataset_open),
 * in memory and streamed. libhdf5's own parser is not ours to fix, so the input does not
 * become the HDF5 bytes: it describes a file (which root and group attributes exist, their
 * types, lengths and values; the images' and labels' types, ranks, shapes and contents) that
 * is built as a valid in-memory HDF5 file image (core driver, H5Fget_file_image) and opened
 * from /dev/shm. Whatever the description, dataset_open must refuse it cleanly or return a
 * dataset whose every label is a class and whose samples can be gathered. */
#include "fuzz_h5.h"

#include "cigl/data.h"

/* Builds the described file into path; returns 0 or -1. */
static int build_file(FuzzIn *in, char *path, size_t cap)
{
    hid_t f = fuzz_h5_create();
    if (f < 0) return -1;
    int version = fuzz_u8(in) % 4; /* 0..3: 1 and 2 are the readable ones */
    int c = 1 + fuzz_u8(in) % 3, h = 1 + fuzz_u8(in) % 4, w = 1 + fuzz_u8(in) % 4;
    int classes = 2 + fuzz_u8(in) % 3;
    string_attr(in, f, "format", "cigl-dataset");
    int_attr(in, f, "format_version", version);
    string_attr(in, f, "name", "fuzz");
    int_attr(in, f, "classes", classes);
    int_attr(in, f, "channels", c);
    int_attr(in, f, "height", h);
    int_attr(in, f, "width", w);
    uint8_t names = fuzz_u8(in);
    if (names != 255) put_string(f, "class_names", "a", names & 1 ? classes : 1 + names % 4);
    doubles_attr(in, f, "mean", c);
    doubles_attr(in, f, "std", c);
    string_attr(in, f, "augment", fuzz_u8(in) & 1 ? "random-resized-crop" : "none");
    uint64_t hash = fuzz_u32(in);
    if (fuzz_u8(in) & 1) put_attr(f, "content_hash", H5T_NATIVE_UINT64, 0, &hash);
    static const char *const splits[2] = {"train", "test"};
    for (int s = 0; s < 2; s++) {
        if (fuzz_u8(in) == 255) continue; /* group absent */
        hid_t g = H5Gcreate2(f, splits[s], H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        int sh = h + fuzz_u8(in) % 3, sw = w + fuzz_u8(in) % 3;
        int_attr(in, g, "height", sh);
        int_attr(in, g, "width", sw);
        hsize_t n = 1 + fuzz_u8(in) % 6;
        hsize_t idims[4] = {n, (hsize_t)c, (hsize_t)sh, (hsize_t)sw}, ldims[1] = {n};
        array(in, g, "images", 4, idims, H5T_NATIVE_UINT8);
        array(in, g, "labels", 1, ldims, H5T_NATIVE_INT32);
        H5Gclose(g);
    }
    return fuzz_h5_finish(f, path, cap);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FuzzIn in = {data, size};
    DataMode mode = fuzz_u8(&in) & 1 ? DATA_STREAM : DATA_MEMORY;
    char path[128];
    if (build_file(&in, path, sizeof path) < 0) return 0;
    Dataset ds;
    if (dataset_open(path, mode, &ds) == 0) {
        const Split *sp[2] = {&ds.train, &ds.test};
        size_t sample = (size_t)ds.c * (size_t)ds.h * (size_t)ds.w;
        float *x = malloc(sizeof(float) * sample * 2);
        for (int s = 0; s < 2 && x; s++) {
            if (sp[s]->n < 1) __builtin_trap(); /* empty splits are refused */
            for (size_t i = 0; i < sp[s]->n; i++)
                if (sp[s]->labels[i] < 0 || sp[s]->labels[i] >= ds.classes) __builtin_trap();
            uint32_t idx[2] = {0, (uint32_t)(sp[s]->n - 1)};
            int32_t y[2];
            split_gather(&ds, sp[s], idx, 2, NULL, x, y);
        }
        free(x);
        dataset_free(&ds);
    }
    unlink(path);
    return 0;
}
