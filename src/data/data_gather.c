/* Building a batch: the samples' pixels (from memory or the stream), augmentation keyed by
 * (seed, epoch, global sample index), and normalisation through a per-channel table. */
#include "data_internal.h"

#include "cigl/error.h"
#include "cigl/image.h"
#include "cigl/rng.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Padded-crop and flip draws for one sample; see datasets/README.md for the keying. */
typedef struct {
    int dy, dx, flip;
} Draw;

static Draw draw_augment(const Augment *aug, uint32_t sample)
{
    Draw d = {0, 0, 0};
    uint64_t base = 4 * (uint64_t)sample;
    if (aug->crop_pad > 0) {
        uint32_t bound = 2 * (uint32_t)aug->crop_pad + 1;
        d.dy = (int)rng_below(aug->seed, RNG_AUGMENT, aug->epoch, base + 0, bound);
        d.dx = (int)rng_below(aug->seed, RNG_AUGMENT, aug->epoch, base + 1, bound);
    }
    if (aug->flip)
        d.flip = (int)rng_below(aug->seed, RNG_AUGMENT, aug->epoch, base + 2, 2);
    return d;
}

/* One channel plane: out[y][x] = lut[padded[y + dy][x' + dx]] where padded has `pad` zero
 * pixels around the image and x' = x, or W-1-x when flipped (flip after crop). */
static void gather_plane(const uint8_t *src, int h, int w, int pad, Draw d, const float *lut,
                         float *out)
{
    int oy = d.dy - pad, ox = d.dx - pad; /* source = output + offset */
    /* Output columns whose source column lies inside the image. */
    int x0 = d.flip ? ox : -ox, x1 = d.flip ? w + ox : w - ox;
    x0 = x0 < 0 ? 0 : x0;
    x1 = x1 > w ? w : x1;
    for (int y = 0; y < h; y++) {
        float *row = out + (size_t)y * (size_t)w;
        int sy = y + oy;
        if (sy < 0 || sy >= h || x0 >= x1) {
            for (int x = 0; x < w; x++)
                row[x] = lut[0];
            continue;
        }
        const uint8_t *srow = src + (size_t)sy * (size_t)w;
        for (int x = 0; x < x0; x++)
            row[x] = lut[0];
        if (d.flip)
            for (int x = x0; x < x1; x++)
                row[x] = lut[srow[w - 1 - x + ox]];
        else
            for (int x = x0; x < x1; x++)
                row[x] = lut[srow[x + ox]];
        for (int x = x1; x < w; x++)
            row[x] = lut[0];
    }
}

/* A window of a stored plane (sh x sw) at (oy, ox), h x w, optionally mirrored. */
static void window_plane(const uint8_t *src, int sw, int oy, int ox, int h, int w, int flip,
                         const float *lut, float *out)
{
    for (int y = 0; y < h; y++) {
        const uint8_t *srow = src + (size_t)(y + oy) * (size_t)sw + ox;
        float *row = out + (size_t)y * (size_t)w;
        if (flip)
            for (int x = 0; x < w; x++)
                row[x] = lut[srow[w - 1 - x]];
        else
            for (int x = 0; x < w; x++)
                row[x] = lut[srow[x]];
    }
}

/* Python's round(): halves to even, as the default floating-point rounding mode does. */
static int round_even(double v)
{
    return (int)nearbyint(v);
}

/* torchvision's RandomResizedCrop.get_params (scale 0.08-1, ratio 3/4-4/3): up to 10 tries
 * of an area fraction and a log-uniform aspect ratio, the first that fits placed uniformly;
 * otherwise the whole image clamped to the ratio range, centred. Every draw is addressed by
 * (seed, RNG_AUGMENT, epoch, 32 * sample + k); see datasets/README.md. */
Crop data_rrc_crop(const Augment *aug, uint32_t sample, int height, int width)
{
    const double lo_ratio = log(3.0 / 4.0), hi_ratio = log(4.0 / 3.0);
    const double area = (double)height * (double)width;
    const uint64_t base = 32 * (uint64_t)sample;
    Crop c = {0, 0, height, width, 0};
    c.flip = (int)rng_below(aug->seed, RNG_AUGMENT, aug->epoch, base + 22, 2);
    for (int k = 0; k < 10; k++) {
        double target = area * (0.08 + 0.92 * rng_uniform(aug->seed, RNG_AUGMENT, aug->epoch,
                                                           base + 2 * (uint64_t)k));
        double ratio = exp(lo_ratio + (hi_ratio - lo_ratio) *
                                          rng_uniform(aug->seed, RNG_AUGMENT, aug->epoch,
                                                      base + 2 * (uint64_t)k + 1));
        int w = round_even(sqrt(target * ratio)), h = round_even(sqrt(target / ratio));
        if (w > 0 && w <= width && h > 0 && h <= height) {
            c.y = (int)rng_below(aug->seed, RNG_AUGMENT, aug->epoch, base + 20,
                                 (uint32_t)(height - h + 1));
            c.x = (int)rng_below(aug->seed, RNG_AUGMENT, aug->epoch, base + 21,
                                 (uint32_t)(width - w + 1));
            c.h = h;
            c.w = w;
            return c;
        }
    }
    const double in_ratio = (double)width / height;
    if (in_ratio < 3.0 / 4.0) {
        c.w = width;
        c.h = round_even(c.w / (3.0 / 4.0));
    } else if (in_ratio > 4.0 / 3.0) {
        c.h = height;
        c.w = round_even(c.h * (4.0 / 3.0));
    }
    c.y = (height - c.h) / 2;
    c.x = (width - c.w) / 2;
    return c;
}

int split_gather(const Dataset *ds, const Split *s, const uint32_t *idx, size_t n,
                  const Augment *aug, float *x, int32_t *y)
{
    /* Normalisation as a 256-entry table per channel: no per-pixel arithmetic at all. */
    float lut[CIGL_MAX_CHANNELS][256];
    for (int c = 0; c < ds->c; c++) {
        double inv = 1.0 / ds->std[c];
        for (int v = 0; v < 256; v++)
            lut[c][v] = (float)((v / 255.0 - ds->mean[c]) * inv);
    }
    const int sh = s->h ? s->h : ds->h, sw = s->w ? s->w : ds->w;
    const size_t plane = (size_t)ds->h * (size_t)ds->w, sample = (size_t)ds->c * plane;
    const size_t splane = (size_t)sh * (size_t)sw, ssample = (size_t)ds->c * splane;
    /* a streamed split's samples come from the stream's batch buffer (its read failure is
     * already printed) */
    const uint8_t *batch = s->stream ? split_stream_read(s->stream, idx, n) : NULL;
    if (s->stream && !batch) return CIGL_ERR_RUNTIME;
    const int rrc = aug && ds->augment == DATA_AUGMENT_RRC;
    const int pad = aug && !rrc && aug->crop_pad > 0 ? aug->crop_pad : 0;
    int failed = 0;
    /* the random resized crop resamples every pixel: worth the threads; each sample's output
     * depends only on its own draws, so the result does not depend on the thread count */
#pragma omp parallel for schedule(static) if (rrc && n > 1) reduction(| : failed)
    for (size_t i = 0; i < n; i++) {
        assert(idx[i] < s->n);
        y[i] = s->labels[idx[i]];
        const uint8_t *src = batch ? batch + i * ssample : s->images + (size_t)idx[i] * ssample;
        float *dst = x + i * sample;
        if (rrc) {
            Crop cr = data_rrc_crop(aug, idx[i], sh, sw);
            uint8_t *tmp = malloc(sample);
            if (!tmp || image_resize(src, ds->c, sh, sw, cr.y, cr.x, cr.h, cr.w, tmp, ds->h,
                                     ds->w)) {
                failed = 1;
            } else {
                for (int c = 0; c < ds->c; c++)
                    window_plane(tmp + (size_t)c * plane, ds->w, 0, 0, ds->h, ds->w, cr.flip,
                                 lut[c], dst + (size_t)c * plane);
            }
            free(tmp);
        } else if (sh != ds->h || sw != ds->w) { /* evaluation of a larger stored image */
            for (int c = 0; c < ds->c; c++)
                window_plane(src + (size_t)c * splane, sw, (sh - ds->h) / 2, (sw - ds->w) / 2,
                             ds->h, ds->w, 0, lut[c], dst + (size_t)c * plane);
        } else {
            Draw d = aug ? draw_augment(aug, idx[i]) : (Draw){pad, pad, 0};
            for (int c = 0; c < ds->c; c++)
                gather_plane(src + (size_t)c * plane, ds->h, ds->w, pad, d, lut[c],
                             dst + (size_t)c * plane);
        }
    }
    if (failed) return cigl_fail(CIGL_ERR_RUNTIME, "out of memory in the random resized crop");
    return CIGL_OK;
}

void split_prefetch_range(const Dataset *ds, const Split *s, const uint32_t *idx, size_t first,
                          size_t n)
{
    (void)ds;
    if (s->stream)
        split_stream_prefetch(s->stream, idx, first, n);
}

void split_prefetch(const Dataset *ds, const Split *s, const uint32_t *idx, size_t n)
{
    split_prefetch_range(ds, s, idx, 0, n);
}
