/* Fuzz target: cigl's dataset schema validation and loading (src/data_read.c, dataset_open),
 * in memory and streamed. libhdf5's own parser is not ours to fix, so the input does not
 * become the HDF5 bytes: it describes a file (which root and group attributes exist, their
 * types, lengths and values; the images' and labels' types, ranks, shapes and contents) that
 * is built as a valid in-memory HDF5 file image (core driver, H5Fget_file_image) and opened
 * from /dev/shm. Whatever the description, dataset_open must refuse it cleanly or return a
 * dataset whose every label is a class and whose samples can be gathered. */
#include "fuzz.h"

#include "cigl/data.h"

#include <hdf5.h>
#include <stdlib.h>

/* An attribute's form: its expected type, another type, or absent. */
enum { AS_EXPECTED, AS_OTHER, ABSENT };

static void put_attr(hid_t loc, const char *name, hid_t type, hsize_t n, const void *buf)
{
    hid_t s = n ? H5Screate_simple(1, &n, NULL) : H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(loc, name, type, s, H5P_DEFAULT, H5P_DEFAULT);
    if (a >= 0) {
        H5Awrite(a, type, buf);
        H5Aclose(a);
    }
    H5Sclose(s);
}

static void put_string(hid_t loc, const char *name, const char *value, int n)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    const char *v[4] = {value, value, value, value};
    put_attr(loc, name, t, (hsize_t)n, v);
    H5Tclose(t);
}

/* An integer attribute: the value from the input (small, or any 32-bit value), or a string,
 * or absent. */
static void int_attr(FuzzIn *in, hid_t loc, const char *name, int usual)
{
    uint8_t form = fuzz_u8(in);
    long long v = usual;
    switch (form % 4) {
    case 0: break;
    case 1: v = (long long)(int32_t)fuzz_u32(in); break;
    case 2: put_string(loc, name, "7", 0); return;
    case 3: return;
    }
    if (form & 0x80) v = (long long)fuzz_u32(in) << 16; /* beyond int */
    put_attr(loc, name, H5T_NATIVE_LLONG, 0, &v);
}

static void string_attr(FuzzIn *in, hid_t loc, const char *name, const char *usual)
{
    uint8_t form = fuzz_u8(in);
    char text[17];
    switch (form % 4) {
    case 0: put_string(loc, name, usual, 0); return;
    case 1:
        for (int i = 0; i < 16; i++) text[i] = (char)fuzz_u8(in);
        text[16] = 0;
        put_string(loc, name, text, 0);
        return;
    case 2: {
        int v = 1;
        put_attr(loc, name, H5T_NATIVE_INT, 0, &v);
        return;
    }
    default: return;
    }
}

/* A float array attribute of `n` elements (or another length, or ints), values from input. */
static void doubles_attr(FuzzIn *in, hid_t loc, const char *name, int n)
{
    uint8_t form = fuzz_u8(in);
    double v[8];
    int count = form & 0x40 ? fuzz_u8(in) % 8 : n;
    for (int i = 0; i < 8; i++) {
        uint8_t b = fuzz_u8(in);
        v[i] = b == 255 ? 1.0 / 0.0 : b == 254 ? -1.0 : b / 100.0;
    }
    if (form % 4 == 3) return;
    if (form % 4 == 2) {
        int iv[8] = {0};
        put_attr(loc, name, H5T_NATIVE_INT, (hsize_t)(count ? count : 1), iv);
        return;
    }
    put_attr(loc, name, H5T_NATIVE_DOUBLE, (hsize_t)(count ? count : 1), v);
}

static hid_t pick_type(uint8_t b)
{
    static const hid_t *types[] = {&H5T_NATIVE_UINT8_g, &H5T_NATIVE_INT32_g, &H5T_NATIVE_UINT16_g,
                                   &H5T_NATIVE_INT8_g, &H5T_NATIVE_FLOAT_g, &H5T_NATIVE_INT64_g};
    return b < 128 ? *types[0] : *types[b % 6];
}

/* A dataset: type, rank 1..5 and dims 0..7 from the input (or the usual shape), contents
 * from the input. */
static void array(FuzzIn *in, hid_t g, const char *name, int rank, const hsize_t *usual,
                  hid_t usual_type)
{
    uint8_t form = fuzz_u8(in);
    if (form == 255) return; /* absent */
    hsize_t dims[5];
    hid_t type = form & 1 ? pick_type(fuzz_u8(in)) : usual_type;
    if (form & 2) {
        rank = 1 + fuzz_u8(in) % 5;
        for (int i = 0; i < rank; i++) dims[i] = fuzz_u8(in) % 8;
    } else {
        memcpy(dims, usual, sizeof(hsize_t) * (size_t)rank);
    }
    size_t count = 1;
    for (int i = 0; i < rank; i++) count *= dims[i];
    if (count > 4096) return;
    size_t elem = H5Tget_size(type);
    uint8_t *buf = calloc(count ? count * elem : 1, 1);
    if (!buf) return;
    for (size_t i = 0; i < count * elem && in->n; i++) buf[i] = fuzz_u8(in);
    hid_t s = H5Screate_simple(rank, dims, NULL);
    hid_t d = H5Dcreate2(g, name, type, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (d >= 0) {
        if (count) H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
        H5Dclose(d);
    }
    H5Sclose(s);
    free(buf);
}

/* Builds the described file; returns its image (malloc'd) and size, or NULL. */
static uint8_t *build_image(FuzzIn *in, size_t *size)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_fapl_core(fapl, 1 << 16, 0);
    hid_t f = H5Fcreate("fuzz.h5", H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    if (f < 0) return NULL;
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
    H5Fflush(f, H5F_SCOPE_GLOBAL);
    ssize_t len = H5Fget_file_image(f, NULL, 0);
    uint8_t *img = len > 0 ? malloc((size_t)len) : NULL;
    if (img && H5Fget_file_image(f, img, (size_t)len) != len) {
        free(img);
        img = NULL;
    }
    H5Fclose(f);
    *size = img ? (size_t)len : 0;
    return img;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    FuzzIn in = {data, size};
    DataMode mode = fuzz_u8(&in) & 1 ? DATA_STREAM : DATA_MEMORY;
    size_t len = 0;
    uint8_t *img = build_image(&in, &len);
    if (!img) return 0;
    char path[128];
    int made = fuzz_shmfile(img, len, path, sizeof path);
    free(img);
    if (made < 0) return 0;
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
