/* HDF5 helpers of the structure-aware fuzz targets (fuzz_dataset.c, fuzz_checkpoint.c): the
 * input describes attributes and datasets (present or not, type, shape, values), which are
 * written with the HDF5 API into an in-memory file (core driver) whose image is then read by
 * cigl's validation. libhdf5's own parser is not ours to fix, so it only ever sees valid
 * files; cigl's checks of what they contain are what gets fuzzed. */
#ifndef CIGL_FUZZ_H5_H
#define CIGL_FUZZ_H5_H
#include "fuzz.h"

#include <hdf5.h>
#include <stdlib.h>

static inline void put_attr(hid_t loc, const char *name, hid_t type, hsize_t n, const void *buf)
{
    hid_t s = n ? H5Screate_simple(1, &n, NULL) : H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(loc, name, type, s, H5P_DEFAULT, H5P_DEFAULT);
    if (a >= 0) {
        H5Awrite(a, type, buf);
        H5Aclose(a);
    }
    H5Sclose(s);
}

static inline void put_string(hid_t loc, const char *name, const char *value, int n)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    const char *v[4] = {value, value, value, value};
    put_attr(loc, name, t, (hsize_t)n, v);
    H5Tclose(t);
}

/* An integer attribute: the value from the input (small, or any 32-bit value), or a string,
 * or absent. */
static inline void int_attr(FuzzIn *in, hid_t loc, const char *name, int usual)
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

static inline void string_attr(FuzzIn *in, hid_t loc, const char *name, const char *usual)
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
static inline void doubles_attr(FuzzIn *in, hid_t loc, const char *name, int n)
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

static inline hid_t pick_type(uint8_t b)
{
    static const hid_t *types[] = {&H5T_NATIVE_UINT8_g, &H5T_NATIVE_INT32_g, &H5T_NATIVE_UINT16_g,
                                   &H5T_NATIVE_INT8_g, &H5T_NATIVE_FLOAT_g, &H5T_NATIVE_INT64_g};
    return b < 128 ? *types[0] : *types[b % 6];
}

/* A dataset: type, rank 1..5 and dims 0..7 from the input (or the usual shape), contents
 * from the input. */
static inline void array(FuzzIn *in, hid_t g, const char *name, int rank, const hsize_t *usual,
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

/* An in-memory HDF5 file to describe into; NULL-free: returns -1 on failure. */
static inline hid_t fuzz_h5_create(void)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_fapl_core(fapl, 1 << 16, 0);
    hid_t f = H5Fcreate("fuzz.h5", H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    return f;
}

/* Closes f and writes its image to a file in /dev/shm (path); returns 0 or -1. */
static inline int fuzz_h5_finish(hid_t f, char *path, size_t cap)
{
    H5Fflush(f, H5F_SCOPE_GLOBAL);
    ssize_t len = H5Fget_file_image(f, NULL, 0);
    uint8_t *img = len > 0 ? malloc((size_t)len) : NULL;
    int ok = img && H5Fget_file_image(f, img, (size_t)len) == len;
    H5Fclose(f);
    ok = ok && fuzz_shmfile(img, (size_t)len, path, cap) == 0;
    free(img);
    return ok ? 0 : -1;
}

#endif
