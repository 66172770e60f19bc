/* 2-D convolution through its GEMM form (im2col + sgemm, as Darknet). Samples are processed in
 * chunks of `nb` so that one GEMM covers nb * OH * OW columns: late ResNet stages have tiny
 * spatial maps, and one GEMM per sample would leave OpenBLAS with matrices too thin to use
 * its threads. Chunk size is fixed at model build time (conv_chunk), so results do not depend
 * on timing. */
#include "cigl/conv.h"

#include <cblas.h>
#include <string.h>

size_t conv_chunk(const Layer *l, int max_batch, size_t budget_floats)
{
    size_t k = (size_t)l->x.c * l->k * l->k, ohw = (size_t)l->y.h * l->y.w;
    size_t per_sample = (k + (size_t)l->y.c) * ohw;
    size_t nb = budget_floats / per_sample;
    if (nb < 1) nb = 1;
    if (nb > (size_t)max_batch) nb = (size_t)max_batch;
    return nb;
}

size_t conv_workspace_floats(const Layer *l, int max_batch, size_t budget_floats)
{
    size_t k = (size_t)l->x.c * l->k * l->k, ohw = (size_t)l->y.h * l->y.w;
    return conv_chunk(l, max_batch, budget_floats) * (k + (size_t)l->y.c) * ohw;
}

/* col[(c*k + kh)*k + kw][b*OHW + oy*OW + ox] = x[b][c][oy*s - p + kh][ox*s - p + kw] (0 outside) */
void im2col(const float *x, int nb, Shape in, int k, int s, int p, int oh, int ow, float *col)
{
    const size_t ohw = (size_t)oh * ow, ncols = (size_t)nb * ohw, plane = (size_t)in.h * in.w;
    const int rows = in.c * k * k;
#pragma omp parallel for schedule(static)
    for (int r = 0; r < rows; r++) {
        const int c = r / (k * k), kh = (r / k) % k, kw = r % k;
        float *dst = col + (size_t)r * ncols;
        for (int b = 0; b < nb; b++) {
            const float *src = x + ((size_t)b * in.c + c) * plane;
            for (int oy = 0; oy < oh; oy++) {
                const int iy = oy * s - p + kh;
                float *d = dst + (size_t)b * ohw + (size_t)oy * ow;
                if (iy < 0 || iy >= in.h) {
                    memset(d, 0, sizeof(float) * ow);
                    continue;
                }
                const float *srow = src + (size_t)iy * in.w;
                if (s == 1) {
                    /* contiguous run: only the padded ends need care */
                    int ox = 0;
                    for (; ox < ow && ox - p + kw < 0; ox++) d[ox] = 0;
                    int end = ow;
                    while (end > ox && end - 1 - p + kw >= in.w) d[--end] = 0;
                    if (end > ox) memcpy(d + ox, srow + ox - p + kw, sizeof(float) * (end - ox));
                } else {
                    for (int ox = 0; ox < ow; ox++) {
                        const int ix = ox * s - p + kw;
                        d[ox] = (ix >= 0 && ix < in.w) ? srow[ix] : 0.0f;
                    }
                }
            }
        }
    }
}

/* The adjoint of im2col: dx[b][c][iy][ix] += col[...]. Parallel over channels, since all rows
 * of one channel add into the same plane. */
void col2im_add(const float *col, int nb, Shape in, int k, int s, int p, int oh, int ow, float *dx)
{
    const size_t ohw = (size_t)oh * ow, ncols = (size_t)nb * ohw, plane = (size_t)in.h * in.w;
#pragma omp parallel for schedule(static)
    for (int c = 0; c < in.c; c++) {
        for (int kh = 0; kh < k; kh++)
            for (int kw = 0; kw < k; kw++) {
                const float *src = col + (size_t)((c * k + kh) * k + kw) * ncols;
                for (int b = 0; b < nb; b++) {
                    float *dst = dx + ((size_t)b * in.c + c) * plane;
                    for (int oy = 0; oy < oh; oy++) {
                        const int iy = oy * s - p + kh;
                        if (iy < 0 || iy >= in.h) continue;
                        const float *srow = src + (size_t)b * ohw + (size_t)oy * ow;
                        float *drow = dst + (size_t)iy * in.w;
                        for (int ox = 0; ox < ow; ox++) {
                            const int ix = ox * s - p + kw;
                            if (ix >= 0 && ix < in.w) drow[ix] += srow[ox];
                        }
                    }
                }
            }
    }
}

/* out (OC x nb*OHW, chunk-major) <-> y (nb x OC x OHW, sample-major) */
static void chunk_to_nchw(const float *mat, int nb, int oc, size_t ohw, float *y)
{
#pragma omp parallel for schedule(static)
    for (int o = 0; o < oc; o++)
        for (int b = 0; b < nb; b++)
            memcpy(y + ((size_t)b * oc + o) * ohw, mat + (size_t)o * nb * ohw + (size_t)b * ohw,
                   sizeof(float) * ohw);
}

static void nchw_to_chunk(const float *y, int nb, int oc, size_t ohw, float *mat)
{
#pragma omp parallel for schedule(static)
    for (int o = 0; o < oc; o++)
        for (int b = 0; b < nb; b++)
            memcpy(mat + (size_t)o * nb * ohw + (size_t)b * ohw, y + ((size_t)b * oc + o) * ohw,
                   sizeof(float) * ohw);
}

static void conv_forward(Layer *l, const LayerCtx *ctx, const float *x, const float *x2, float *y)
{
    (void)x2;
    const int oc = l->y.c, kk = l->x.c * l->k * l->k;
    const size_t ohw = (size_t)l->y.h * l->y.w, in_numel = shape_numel(l->x);
    const int chunk = (int)conv_chunk(l, ctx->n, ctx->workspace_floats);
    const float *w = ctx->weights + l->weight_off;
    for (int b0 = 0; b0 < ctx->n; b0 += chunk) {
        const int nb = ctx->n - b0 < chunk ? ctx->n - b0 : chunk;
        const size_t ncols = (size_t)nb * ohw;
        float *col = ctx->workspace, *mat = col + (size_t)kk * ncols;
        float *out = nb == 1 ? y + (size_t)b0 * oc * ohw : mat;
        im2col(x + (size_t)b0 * in_numel, nb, l->x, l->k, l->stride, l->pad, l->y.h, l->y.w, col);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, oc, (int)ncols, kk, 1.0f, w, kk,
                    col, (int)ncols, 0.0f, out, (int)ncols);
        if (nb > 1)
            chunk_to_nchw(mat, nb, oc, ohw, y + (size_t)b0 * oc * ohw);
    }
    if (l->bias_len) {
        const float *bias = ctx->weights + l->bias_off;
#pragma omp parallel for schedule(static)
        for (int i = 0; i < ctx->n * oc; i++) {
            float *yy = y + (size_t)i * ohw, bv = bias[i % oc];
            for (size_t j = 0; j < ohw; j++) yy[j] += bv;
        }
    }
}

static void conv_backward(Layer *l, const LayerCtx *ctx, const float *x, const float *x2,
                          const float *y, const float *dy, float *dx, float *dx2)
{
    (void)x2; (void)y; (void)dx2;
    const int oc = l->y.c, kk = l->x.c * l->k * l->k;
    const size_t ohw = (size_t)l->y.h * l->y.w, in_numel = shape_numel(l->x);
    const int chunk = (int)conv_chunk(l, ctx->n, ctx->workspace_floats);
    const float *w = ctx->weights + l->weight_off;
    float *dw = ctx->grads + l->weight_off;
    for (int b0 = 0; b0 < ctx->n; b0 += chunk) {
        const int nb = ctx->n - b0 < chunk ? ctx->n - b0 : chunk;
        const size_t ncols = (size_t)nb * ohw;
        float *col = ctx->workspace, *mat = col + (size_t)kk * ncols;
        const float *dmat = dy + (size_t)b0 * oc * ohw;
        if (nb > 1) {
            nchw_to_chunk(dmat, nb, oc, ohw, mat);
            dmat = mat;
        }
        im2col(x + (size_t)b0 * in_numel, nb, l->x, l->k, l->stride, l->pad, l->y.h, l->y.w, col);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, oc, kk, (int)ncols, ctx->wgrad_scale, dmat,
                    (int)ncols, col, (int)ncols, b0 == 0 ? 0.0f : 1.0f, dw, kk);
        if (dx) {
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, kk, (int)ncols, oc, 1.0f, w, kk,
                        dmat, (int)ncols, 0.0f, col, (int)ncols);
            col2im_add(col, nb, l->x, l->k, l->stride, l->pad, l->y.h, l->y.w,
                       dx + (size_t)b0 * in_numel);
        }
    }
    if (l->bias_len) {
        float *db = ctx->grads + l->bias_off;
#pragma omp parallel for schedule(static)
        for (int o = 0; o < oc; o++) {
            double s = 0;
            for (int i = 0; i < ctx->n; i++) {
                const float *d = dy + ((size_t)i * oc + o) * ohw;
                for (size_t j = 0; j < ohw; j++) s += d[j];
            }
            db[o] = (float)s;
        }
    }
}

const LayerOps conv_ops = {"conv2d", conv_forward, conv_backward};
