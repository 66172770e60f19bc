/* Convolution pieces shared by the dense conv layer (layer_conv.c), the sparse conv kernels
 * (src/sparse/sparse_conv.c) and the model's workspace sizing: chunk and slot sizing, the pass
 * plan, im2col / col2im and the layout and bias helpers. They depend on nn/ only, so both
 * kernels build on them without including each other. */
#include "cigl/conv.h"

#include <omp.h>
#include <string.h>

/* Columns plus output of one chunk stay under this many floats (512 KiB, half of the EPYC's
 * 1 MiB L2 per core, leaving room for OpenBLAS's packed copies), unless one sample alone needs
 * more. Measured on resnet20 (batch 128, 2 threads): 64K, 128K, 256K and 512K floats are within
 * 1% of each other; 128K is the best of them. */
#define CONV_CHUNK_TARGET ((size_t)128 << 10)

size_t conv_chunk(const Layer *l, int max_batch, size_t budget_floats)
{
    const size_t per_sample = (conv_kk(l) + (size_t)l->y.c) * conv_ohw(l);
    if (budget_floats > CONV_CHUNK_TARGET) budget_floats = CONV_CHUNK_TARGET;
    size_t nb = budget_floats / per_sample;
    if (nb < 1) nb = 1;
    if (nb > (size_t)max_batch) nb = (size_t)max_batch;
    return nb;
}

size_t conv_workspace_floats(const Layer *l, int max_batch, size_t budget_floats)
{
    return conv_chunk(l, max_batch, budget_floats) * (conv_kk(l) + (size_t)l->y.c) * conv_ohw(l);
}

size_t conv_slot_floats(const Layer *l, int max_batch, size_t budget_floats)
{
    const size_t need = conv_workspace_floats(l, max_batch, budget_floats) +
                        (size_t)l->y.c * conv_kk(l);
    return (need + 15) & ~(size_t)15; /* slots start on 64-byte boundaries */
}

/* ---- im2col / col2im ---------------------------------------------------------------------- */

/* The output columns ox of one kernel offset kw whose input column ox*s - p + kw lies inside
 * [0, w): [*lo, *hi). */
static void valid_cols(int w, int s, int p, int kw, int ow, int *lo, int *hi)
{
    const int a = p - kw;                       /* ox*s >= a */
    int l = a > 0 ? (a + s - 1) / s : 0;
    const int b = w + p - kw;                   /* ox*s < b */
    int h = b > 0 ? (b + s - 1) / s : 0;
    if (h > ow) h = ow;
    if (l > h) l = h;
    *lo = l;
    *hi = h;
}

/* Stride 1 with ow == in.w: within one sample, every in-range output row of a kernel offset
 * maps to the input by one flat shift, so the valid region is one contiguous copy, after which
 * the few entries that wrapped around a row end (or were never written) are zeroed. */
static int flat_shift_ok(Shape in, int s, int ow) { return s == 1 && ow == in.w; }

/* Output rows oy of kernel offset kh whose input row oy*s - p + kh lies inside [0, h). */
static void valid_rows(int h, int s, int p, int kh, int oh, int *lo, int *hi)
{
    valid_cols(h, s, p, kh, oh, lo, hi);
}

/* Row r = (c*k + kh)*k + kw of the column matrix:
 * col[r][b*OHW + oy*OW + ox] = x[b][c][oy*s - p + kh][ox*s - p + kw] (0 outside). */
void im2col_row(const float *x, int nb, Shape in, int k, int s, int p, int oh, int ow,
                       int r, float *dst)
{
    const size_t ohw = (size_t)oh * ow, plane = (size_t)in.h * in.w;
    const int c = r / (k * k), kh = (r / k) % k, kw = r % k;
    int lo, hi, ylo, yhi;
    valid_cols(in.w, s, p, kw, ow, &lo, &hi);
    valid_rows(in.h, s, p, kh, oh, &ylo, &yhi);
    for (int b = 0; b < nb; b++) {
        const float *src = x + ((size_t)b * in.c + c) * plane;
        float *d = dst + (size_t)b * ohw;
        if (ylo >= yhi || lo >= hi) {
            memset(d, 0, sizeof(float) * ohw);
            continue;
        }
        if (flat_shift_ok(in, s, ow)) {
            const size_t start = (size_t)ylo * ow + lo, end = (size_t)(yhi - 1) * ow + hi;
            memset(d, 0, sizeof(float) * start);
            memcpy(d + start, src + (size_t)(ylo - p + kh) * in.w + (lo - p + kw),
                   sizeof(float) * (end - start));
            for (int oy = ylo; oy < yhi - 1; oy++)
                for (size_t j = (size_t)oy * ow + hi; j < (size_t)(oy + 1) * ow + lo; j++)
                    d[j] = 0.0f;
            memset(d + end, 0, sizeof(float) * (ohw - end));
            continue;
        }
        memset(d, 0, sizeof(float) * ylo * ow);
        for (int oy = ylo; oy < yhi; oy++) {
            const float *srow = src + (size_t)(oy * s - p + kh) * in.w;
            float *drow = d + (size_t)oy * ow;
            for (int ox = 0; ox < lo; ox++) drow[ox] = 0.0f;
            if (s == 1)
                memcpy(drow + lo, srow + (lo - p + kw), sizeof(float) * (hi - lo));
            else
                for (int ox = lo; ox < hi; ox++) drow[ox] = srow[ox * s - p + kw];
            for (int ox = hi; ox < ow; ox++) drow[ox] = 0.0f;
        }
        memset(d + (size_t)yhi * ow, 0, sizeof(float) * (oh - yhi) * ow);
    }
}

void im2col_serial(const float *x, int nb, Shape in, int k, int s, int p, int oh, int ow,
                   float *col)
{
    const size_t ncols = (size_t)nb * oh * ow;
    for (int r = 0; r < in.c * k * k; r++)
        im2col_row(x, nb, in, k, s, p, oh, ow, r, col + (size_t)r * ncols);
}

void im2col(const float *x, int nb, Shape in, int k, int s, int p, int oh, int ow, float *col)
{
    const size_t ncols = (size_t)nb * oh * ow;
    const int rows = in.c * k * k;
#pragma omp parallel for schedule(static)
    for (int r = 0; r < rows; r++)
        im2col_row(x, nb, in, k, s, p, oh, ow, r, col + (size_t)r * ncols);
}

/* One sample's share of the im2col adjoint for kernel offset (kh, kw): output rows ylo..yhi-1,
 * columns lo..hi-1 of the column-matrix row `src` added into the input plane `dst`. */
static inline void add_plane_rows(const float *src, float *dst, int in_w, int ow, int s, int p,
                                  int kh, int kw, int ylo, int yhi, int lo, int hi)
{
    for (int oy = ylo; oy < yhi; oy++) {
        const float *srow = src + (size_t)oy * ow;
        float *drow = dst + (size_t)(oy * s - p + kh) * in_w;
        if (s == 1) {
            float *d = drow + (lo - p + kw);
            const float *sv = srow + lo;
#pragma omp simd
            for (int j = 0; j < hi - lo; j++) d[j] += sv[j];
        } else {
            for (int ox = lo; ox < hi; ox++) drow[ox * s - p + kw] += srow[ox];
        }
    }
}

/* The adjoint of im2col for one input channel c: dx[b][c][iy][ix] += col[...]. With `scratch`
 * the column matrix may be overwritten: the stride-1 flat-shift case then zeroes the entries
 * that would wrap around a row end and adds each sample's valid region in one run. */
static void col2im_channel(float *scratch, const float *col, int nb, Shape in, int k, int s,
                           int p, int oh, int ow, int c, float *dx)
{
    const size_t ohw = (size_t)oh * ow, ncols = (size_t)nb * ohw, plane = (size_t)in.h * in.w;
    const int flat = scratch && flat_shift_ok(in, s, ow);
    for (int kh = 0; kh < k; kh++)
        for (int kw = 0; kw < k; kw++) {
            const size_t row = (size_t)((c * k + kh) * k + kw) * ncols;
            int lo, hi, ylo, yhi;
            valid_cols(in.w, s, p, kw, ow, &lo, &hi);
            valid_rows(in.h, s, p, kh, oh, &ylo, &yhi);
            if (ylo >= yhi || lo >= hi) continue;
            for (int b = 0; b < nb; b++) {
                float *dst = dx + ((size_t)b * in.c + c) * plane;
                if (flat) {
                    float *src = scratch + row + (size_t)b * ohw;
                    const size_t start = (size_t)ylo * ow + lo, end = (size_t)(yhi - 1) * ow + hi;
                    for (int oy = ylo; oy < yhi - 1; oy++)
                        for (size_t j = (size_t)oy * ow + hi; j < (size_t)(oy + 1) * ow + lo; j++)
                            src[j] = 0.0f;
                    float *d = dst + (size_t)(ylo - p + kh) * in.w + (lo - p + kw);
                    const float *sv = src + start;
                    const size_t len = end - start;
#pragma omp simd
                    for (size_t j = 0; j < len; j++) d[j] += sv[j];
                    continue;
                }
                add_plane_rows(col + row + (size_t)b * ohw, dst, in.w, ow, s, p, kh, kw, ylo,
                               yhi, lo, hi);
            }
        }
}

void col2im_add_serial(float *col, int nb, Shape in, int k, int s, int p, int oh, int ow,
                       float *dx)
{
    for (int c = 0; c < in.c; c++) col2im_channel(col, col, nb, in, k, s, p, oh, ow, c, dx);
}

/* Parallel over channels, since all rows of one channel add into the same plane. */
void col2im_add(const float *col, int nb, Shape in, int k, int s, int p, int oh, int ow, float *dx)
{
#pragma omp parallel for schedule(static)
    for (int c = 0; c < in.c; c++) col2im_channel(NULL, col, nb, in, k, s, p, oh, ow, c, dx);
}

/* The adjoint of im2col_row for one row r = (c*k + kh)*k + kw: dx[b][c][..] += src[b*OHW + ..]
 * (the sparse conv adds back only the rows its weights use). */
void col2im_row_add(const float *src, int nb, Shape in, int k, int s, int p, int oh, int ow,
                    int r, float *dx)
{
    const size_t ohw = (size_t)oh * ow, plane = (size_t)in.h * in.w;
    const int c = r / (k * k), kh = (r / k) % k, kw = r % k;
    int lo, hi, ylo, yhi;
    valid_cols(in.w, s, p, kw, ow, &lo, &hi);
    valid_rows(in.h, s, p, kh, oh, &ylo, &yhi);
    if (ylo >= yhi || lo >= hi) return;
    for (int b = 0; b < nb; b++) {
        float *dst = dx + ((size_t)b * in.c + c) * plane;
        add_plane_rows(src + (size_t)b * ohw, dst, in.w, ow, s, p, kh, kw, ylo, yhi, lo, hi);
    }
}

/* out (OC x nb*OHW, chunk-major) <-> y (nb x OC x OHW, sample-major), one thread */
void chunk_to_nchw(const float *mat, int nb, int oc, size_t ohw, float *y)
{
    for (int o = 0; o < oc; o++)
        for (int b = 0; b < nb; b++)
            memcpy(y + ((size_t)b * oc + o) * ohw, mat + (size_t)o * nb * ohw + (size_t)b * ohw,
                   sizeof(float) * ohw);
}

void nchw_to_chunk(const float *y, int nb, int oc, size_t ohw, float *mat)
{
    for (int o = 0; o < oc; o++)
        for (int b = 0; b < nb; b++)
            memcpy(mat + (size_t)o * nb * ohw + (size_t)b * ohw, y + ((size_t)b * oc + o) * ohw,
                   sizeof(float) * ohw);
}

void conv_add_bias(const Layer *l, const float *bias, int nb, float *y)
{
    const int oc = l->y.c;
    const size_t ohw = conv_ohw(l);
    for (int i = 0; i < nb * oc; i++) {
        float *yy = y + (size_t)i * ohw;
        const float bv = bias[i % oc];
        for (size_t j = 0; j < ohw; j++) yy[j] += bv;
    }
}

void conv_bias_grad(const Layer *l, const LayerCtx *ctx, const float *dy)
{
    const int oc = l->y.c, n = ctx->n;
    const size_t ohw = conv_ohw(l);
    float *db = ctx->grads + l->bias_off;
#pragma omp parallel for schedule(static)
    for (int o = 0; o < oc; o++) {
        double s = 0;
        for (int i = 0; i < n; i++) {
            const float *d = dy + ((size_t)i * oc + o) * ohw;
            for (size_t j = 0; j < ohw; j++) s += d[j];
        }
        db[o] = (float)s;
    }
}
/* ---- the layer ---------------------------------------------------------------------------- */

/* How one pass splits the batch: `threads` sample ranges, chunks of `chunk` samples, slots of
 * `stride` floats laid out as [partial dW^T (K x OC, when `partial`)][columns][output block].
 * Without room for a partial (a workspace smaller than one sample plus dW, as tests force; one
 * slot then), the weight gradient is accumulated in place. */
ConvPlan conv_plan(const Layer *l, const LayerCtx *ctx)
{
    const size_t kk = conv_kk(l), per_sample = (kk + (size_t)l->y.c) * conv_ohw(l);
    const size_t dw_floats = (size_t)l->y.c * kk;
    int slots = ctx->conv_slots > 0 ? ctx->conv_slots : 1;
    /* a workspace too small for the slot count asked for gets fewer slots */
    while (slots > 1 &&
           ((ctx->workspace_floats / (size_t)slots) & ~(size_t)15) < dw_floats + per_sample)
        slots--;
    ConvPlan pl;
    pl.stride = slots == 1 ? ctx->workspace_floats
                           : (ctx->workspace_floats / (size_t)slots) & ~(size_t)15;
    pl.partial = pl.stride >= dw_floats + per_sample;
    pl.dw_floats = pl.partial ? dw_floats : 0;
    pl.chunk = (int)conv_chunk(l, ctx->n, pl.stride - pl.dw_floats);
    int t = omp_get_max_threads();
    if (t > slots) t = slots;
    if (t > ctx->n) t = ctx->n;
    pl.threads = t < 1 ? 1 : t;
    return pl;
}
