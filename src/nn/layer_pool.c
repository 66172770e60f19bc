/* Max pooling (square window, stride, implicit -inf padding) and global average pooling. */
#include "cigl/layer.h"

#include <float.h>
#include <string.h>

static void maxpool_forward(Layer *l, const LayerCtx *ctx, const float *x, const float *x2,
                            float *y)
{
    (void)x2;
    const int planes = ctx->n * l->x.c, k = l->k, s = l->stride, p = l->pad;
    const int ih = l->x.h, iw = l->x.w, oh = l->y.h, ow = l->y.w;
#pragma omp parallel for schedule(static)
    for (int pl = 0; pl < planes; pl++) {
        const float *xx = x + (size_t)pl * ih * iw;
        float *yy = y + (size_t)pl * oh * ow;
        int32_t *am = l->argmax + (size_t)pl * oh * ow;
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++) {
                float best = -FLT_MAX;
                int32_t at = -1;
                for (int ky = 0; ky < k; ky++) {
                    const int iy = oy * s - p + ky;
                    if (iy < 0 || iy >= ih) continue;
                    for (int kx = 0; kx < k; kx++) {
                        const int ix = ox * s - p + kx;
                        if (ix < 0 || ix >= iw) continue;
                        const float v = xx[iy * iw + ix];
                        if (at < 0 || v > best) { best = v; at = iy * iw + ix; }
                    }
                }
                yy[oy * ow + ox] = best;
                am[oy * ow + ox] = at;
            }
    }
}

static void maxpool_backward(Layer *l, const LayerCtx *ctx, const float *x, const float *x2,
                             const float *y, const float *dy, float *dx, float *dx2)
{
    (void)x; (void)x2; (void)y; (void)dx2;
    if (!dx) return;
    const int planes = ctx->n * l->x.c;
    const size_t ihw = (size_t)l->x.h * l->x.w, ohw = (size_t)l->y.h * l->y.w;
#pragma omp parallel for schedule(static)
    for (int pl = 0; pl < planes; pl++) {
        const int32_t *am = l->argmax + (size_t)pl * ohw;
        const float *d = dy + (size_t)pl * ohw;
        float *g = dx + (size_t)pl * ihw;
        if (l->dx_first) memset(g, 0, sizeof(float) * ihw); /* the scatter adds */
        for (size_t j = 0; j < ohw; j++) g[am[j]] += d[j];
    }
}

static void gap_forward(Layer *l, const LayerCtx *ctx, const float *x, const float *x2, float *y)
{
    (void)x2;
    const int planes = ctx->n * l->x.c;
    const size_t hw = (size_t)l->x.h * l->x.w;
#pragma omp parallel for schedule(static)
    for (int pl = 0; pl < planes; pl++) {
        const float *xx = x + (size_t)pl * hw;
        double s = 0;
        for (size_t j = 0; j < hw; j++) s += xx[j];
        y[pl] = (float)(s / (double)hw);
    }
}

static void gap_backward(Layer *l, const LayerCtx *ctx, const float *x, const float *x2,
                         const float *y, const float *dy, float *dx, float *dx2)
{
    (void)x; (void)x2; (void)y; (void)dx2;
    if (!dx) return;
    const int planes = ctx->n * l->x.c;
    const size_t hw = (size_t)l->x.h * l->x.w;
    const float inv = 1.0f / (float)hw;
#pragma omp parallel for schedule(static)
    for (int pl = 0; pl < planes; pl++) {
        float *g = dx + (size_t)pl * hw;
        const float d = dy[pl] * inv;
        if (l->dx_first)
            for (size_t j = 0; j < hw; j++) g[j] = d;
        else
            for (size_t j = 0; j < hw; j++) g[j] += d;
    }
}

const LayerOps maxpool_ops = {"maxpool", maxpool_forward, maxpool_backward, 0, 1};
const LayerOps global_avgpool_ops = {"global_avgpool", gap_forward, gap_backward, 0, 1};
