/* Convolution helpers (src/nn/conv_common.c) shared by the dense conv layer, the sparse conv
 * kernels, the model's workspace sizing and the tests. */
#ifndef CIGL_CONV_H
#define CIGL_CONV_H
#include "cigl/layer.h"

/* Rows of the column matrix (C*k*k) and output positions per channel (OH*OW). */
static inline size_t conv_kk(const Layer *l) { return (size_t)l->x.c * l->k * l->k; }
static inline size_t conv_ohw(const Layer *l) { return (size_t)l->y.h * l->y.w; }

/* Samples per GEMM chunk so that im2col columns plus the output matrix fit budget_floats and
 * half of one core's L2 (128K floats); at least one sample, at most max_batch. */
size_t conv_chunk(const Layer *l, int max_batch, size_t budget_floats);
/* Workspace one chunk of this layer needs at max_batch under that budget: columns plus output. */
size_t conv_workspace_floats(const Layer *l, int max_batch, size_t budget_floats);
/* One thread's workspace slot: conv_workspace_floats plus a partial weight gradient (OC*K),
 * rounded up to 16 floats. The layer splits ctx->workspace_floats into ctx->conv_slots equal
 * slots; the model allocates one per OpenMP thread, each the largest of its conv layers' slots. */
size_t conv_slot_floats(const Layer *l, int max_batch, size_t budget_floats);

void im2col(const float *x, int nb, Shape in, int k, int s, int p, int oh, int ow, float *col);
void col2im_add(const float *col, int nb, Shape in, int k, int s, int p, int oh, int ow,
                float *dx);

/* im2col / col2im_add on the calling thread only (inside a parallel region). */
void im2col_serial(const float *x, int nb, Shape in, int k, int s, int p, int oh, int ow,
                   float *col);
void col2im_add_serial(float *col, int nb, Shape in, int k, int s, int p, int oh, int ow,
                       float *dx);

/* Pieces of the conv layer shared with the sparse kernels (src/sparse/sparse_conv.c). */
/* How one pass splits the batch: `threads` sample ranges, chunks of `chunk` samples, slots of
 * `stride` floats laid out as [partial dW^T (K x OC, when `partial`)][columns][output block]. */
typedef struct {
    int threads, chunk, partial;
    size_t stride, dw_floats;
} ConvPlan;
ConvPlan conv_plan(const Layer *l, const LayerCtx *ctx);
/* Row r = (c*k + kh)*k + kw of the column matrix of nb samples (nb*oh*ow floats at dst). */
void im2col_row(const float *x, int nb, Shape in, int k, int s, int p, int oh, int ow, int r,
                float *dst);
void col2im_row_add(const float *src, int nb, Shape in, int k, int s, int p, int oh, int ow,
                    int r, float *dx);
/* y (nb samples, NCHW) += bias per output channel, one thread; and the bias gradient of the
 * whole batch from dy (sums in double per channel, threads over channels). */
void conv_add_bias(const Layer *l, const float *bias, int nb, float *y);
void conv_bias_grad(const Layer *l, const LayerCtx *ctx, const float *dy);
/* out (OC x nb*OHW, chunk-major) <-> y (nb x OC x OHW, sample-major), one thread */
void chunk_to_nchw(const float *mat, int nb, int oc, size_t ohw, float *y);
void nchw_to_chunk(const float *y, int nb, int oc, size_t ohw, float *mat);

#endif
