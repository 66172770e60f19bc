/* Separable resampling with a triangle filter (see include/cigl/image.h). For each output
 * coordinate the filter taps and normalised weights are computed once per call; rows are
 * filtered horizontally into a float buffer, then columns vertically. */
#include "cigl/image.h"

#include <math.h>
#include <stdlib.h>

typedef struct {
    int taps;     /* weights per output coordinate */
    int *first;   /* first source index (within the region) of each output coordinate */
    int *count;   /* taps used by each output coordinate */
    float *w;     /* out x taps normalised weights */
} Kernel;

static float triangle(double x)
{
    x = fabs(x);
    return x < 1.0 ? (float)(1.0 - x) : 0.0f;
}

/* Taps mapping an input of `in` samples onto `out` samples. */
static int kernel_make(Kernel *k, int in, int out)
{
    const double scale = (double)in / out, fscale = scale > 1.0 ? scale : 1.0;
    const double support = fscale; /* the triangle's radius is 1, widened when shrinking */
    k->taps = (int)ceil(support) * 2 + 1;
    k->first = malloc(sizeof(int) * (size_t)out);
    k->count = malloc(sizeof(int) * (size_t)out);
    k->w = calloc((size_t)out * (size_t)k->taps, sizeof(float));
    if (!k->first || !k->count || !k->w)
        return -1;
    for (int o = 0; o < out; o++) {
        const double centre = (o + 0.5) * scale;
        int lo = (int)floor(centre - support + 0.5), hi = (int)floor(centre + support + 0.5);
        lo = lo < 0 ? 0 : lo;
        hi = hi > in ? in : hi;
        if (hi - lo > k->taps)
            hi = lo + k->taps;
        float *w = k->w + (size_t)o * (size_t)k->taps, sum = 0;
        for (int j = lo; j < hi; j++)
            sum += w[j - lo] = triangle((j + 0.5 - centre) / fscale);
        if (!(sum > 0)) { /* cannot happen for in, out >= 1; stay safe: nearest pixel */
            int j = (int)centre < in ? (int)centre : in - 1;
            lo = j, hi = j + 1, w[0] = sum = 1;
        }
        for (int j = 0; j < hi - lo; j++)
            w[j] /= sum;
        k->first[o] = lo;
        k->count[o] = hi - lo;
    }
    return 0;
}

static void kernel_free(Kernel *k)
{
    free(k->first);
    free(k->count);
    free(k->w);
}

static uint8_t to_u8(float v)
{
    v = v < 0 ? 0 : v > 255 ? 255 : v;
    return (uint8_t)(v + 0.5f);
}

int image_resize(const uint8_t *src, int c, int sh, int sw, int y0, int x0, int rh, int rw,
                 uint8_t *dst, int oh, int ow)
{
    Kernel kx = {0}, ky = {0};
    float *tmp = malloc(sizeof(float) * ((size_t)rh + 1) * (size_t)ow);
    float *acc = tmp ? tmp + (size_t)rh * (size_t)ow : NULL; /* one output row */
    int rc = tmp && kernel_make(&kx, rw, ow) == 0 && kernel_make(&ky, rh, oh) == 0 ? 0 : -1;
    for (int ch = 0; ch < c && !rc; ch++) {
        const uint8_t *plane = src + (size_t)ch * (size_t)sh * (size_t)sw;
        for (int y = 0; y < rh; y++) {
            const uint8_t *row = plane + (size_t)(y0 + y) * (size_t)sw + x0;
            float *t = tmp + (size_t)y * (size_t)ow;
            for (int o = 0; o < ow; o++) {
                const float *w = kx.w + (size_t)o * (size_t)kx.taps;
                const uint8_t *p = row + kx.first[o];
                float acc = 0;
                for (int j = 0; j < kx.count[o]; j++)
                    acc += w[j] * p[j];
                t[o] = acc;
            }
        }
        uint8_t *out = dst + (size_t)ch * (size_t)oh * (size_t)ow;
        for (int o = 0; o < oh; o++) {
            const float *w = ky.w + (size_t)o * (size_t)ky.taps;
            const float *t = tmp + (size_t)ky.first[o] * (size_t)ow;
            uint8_t *orow = out + (size_t)o * (size_t)ow;
            for (int x = 0; x < ow; x++) /* row-wise accumulation: unit stride */
                acc[x] = 0;
            for (int j = 0; j < ky.count[o]; j++)
                for (int x = 0; x < ow; x++)
                    acc[x] += w[j] * t[(size_t)j * (size_t)ow + x];
            for (int x = 0; x < ow; x++)
                orow[x] = to_u8(acc[x]);
        }
    }
    kernel_free(&kx);
    kernel_free(&ky);
    free(tmp);
    return rc;
}
