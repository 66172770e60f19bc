/* 2-D convolution through its GEMM form (im2col + sgemm, as Darknet), cache-sized and parallel
 * over samples.
 *
 * The batch is split into T contiguous sample ranges, one per thread (T = min(workspace slots,
 * OpenMP threads, n); range t is samples [t*n/T, (t+1)*n/T)), and each range into chunks of nb
 * samples, nb chosen (conv_chunk) so that one chunk's im2col columns plus its GEMM output stay
 * within half of one core's L2. Each thread runs im2col into its own workspace slot and calls
 * cblas_sgemm from inside the parallel region. OpenBLAS's OpenMP build then runs the call on the
 * calling thread only, so the two levels do not oversubscribe the cores. Measured on the 2-core
 * EPYC (OpenBLAS 0.3.21, 64 x 3136 x 576 sgemm): 2.50 ms on one thread outside any region,
 * 1.30 ms with OpenBLAS using both threads outside, 2.49 ms when thread 0 of an active 2-thread
 * region calls it alone (single-threaded), 2.79 ms when both threads call it at once.
 *
 * With nb == 1 the forward GEMM writes straight into y and the backward GEMMs read dy in place;
 * with nb > 1 the chunk's output is transposed between the GEMM's OC x (nb*OHW) layout and NCHW,
 * which is cheap now that the block is cache-resident. im2col and col2im run serially inside the
 * region (the exported im2col/col2im_add keep their own parallel loops for other callers).
 *
 * Weight gradient: range t accumulates dW^T (K x OC, the GEMM shape OpenBLAS runs fastest here)
 * over its chunks in its slot, alpha = ctx->wgrad_scale; the partials are then summed in range
 * order and transposed into the gradient buffer. Every split and every sum order depends only on
 * n, the workspace size, the slot count and T, never on timing, so results are bit-identical for
 * a given thread count (they may differ across thread counts, as OpenBLAS's own results do).
 * The input gradient (dcol = W^T dY, then col2im) adds into each range's own samples only. */
#include "cigl/conv.h"
#include "cigl/conv_backend.h"

#include <cblas.h>
#include <omp.h>
#include <string.h>

static void conv_forward(Layer *l, const LayerCtx *ctx, const float *x, const float *x2, float *y)
{
    (void)x2;
    if (conv_onednn_forward(l, ctx, x, y)) return; /* --conv-backend onednn */
    const int oc = l->y.c, kk = (int)conv_kk(l), n = ctx->n;
    const size_t ohw = conv_ohw(l), in_numel = shape_numel(l->x), out_numel = oc * ohw;
    const ConvPlan pl = conv_plan(l, ctx);
    const float *w = ctx->weights + l->weight_off;
    const float *bias = l->bias_len ? ctx->weights + l->bias_off : NULL;
#pragma omp parallel num_threads(pl.threads) if (pl.threads > 1)
    for (int t = omp_get_thread_num(); t < pl.threads; t += omp_get_num_threads()) {
        float *col = ctx->workspace + (size_t)t * pl.stride + pl.dw_floats;
        const int s0 = (int)((long)t * n / pl.threads), s1 = (int)((long)(t + 1) * n / pl.threads);
        for (int b0 = s0; b0 < s1; b0 += pl.chunk) {
            const int nb = s1 - b0 < pl.chunk ? s1 - b0 : pl.chunk;
            const size_t ncols = (size_t)nb * ohw;
            float *mat = col + (size_t)kk * ncols, *yb = y + (size_t)b0 * out_numel;
            im2col_serial(x + (size_t)b0 * in_numel, nb, l->x, l->k, l->stride, l->pad, l->y.h,
                          l->y.w, col);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, oc, (int)ncols, kk, 1.0f, w,
                        kk, col, (int)ncols, 0.0f, nb == 1 ? yb : mat, (int)ncols);
            if (nb > 1) chunk_to_nchw(mat, nb, oc, ohw, yb);
            if (bias) conv_add_bias(l, bias, nb, yb);
        }
    }
}

static void conv_backward(Layer *l, const LayerCtx *ctx, const float *x, const float *x2,
                          const float *y, const float *dy, float *dx, float *dx2)
{
    (void)x2; (void)y; (void)dx2;
    if (conv_onednn_backward(l, ctx, x, dy, dx)) { /* --conv-backend onednn */
        if (l->bias_len) conv_bias_grad(l, ctx, dy);
        return;
    }
    const int oc = l->y.c, kk = (int)conv_kk(l), n = ctx->n;
    const size_t ohw = conv_ohw(l), in_numel = shape_numel(l->x), out_numel = oc * ohw;
    const ConvPlan pl = conv_plan(l, ctx);
    const float *w = ctx->weights + l->weight_off;
    float *dw = ctx->grads + l->weight_off;
#pragma omp parallel num_threads(pl.threads) if (pl.threads > 1)
    {
        for (int t = omp_get_thread_num(); t < pl.threads; t += omp_get_num_threads()) {
            float *slot = ctx->workspace + (size_t)t * pl.stride, *col = slot + pl.dw_floats;
            const int s0 = (int)((long)t * n / pl.threads);
            const int s1 = (int)((long)(t + 1) * n / pl.threads);
            for (int b0 = s0; b0 < s1; b0 += pl.chunk) {
                const int nb = s1 - b0 < pl.chunk ? s1 - b0 : pl.chunk;
                const size_t ncols = (size_t)nb * ohw;
                float *mat = col + (size_t)kk * ncols;
                const float *dmat = dy + (size_t)b0 * out_numel;
                const float beta = b0 == s0 ? 0.0f : 1.0f;
                if (nb > 1) {
                    nchw_to_chunk(dmat, nb, oc, ohw, mat);
                    dmat = mat;
                }
                im2col_serial(x + (size_t)b0 * in_numel, nb, l->x, l->k, l->stride, l->pad,
                              l->y.h, l->y.w, col);
                /* dW^T (K x OC) += col dY^T runs faster in OpenBLAS than dW += dY col^T */
                if (pl.partial)
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, kk, oc, (int)ncols,
                                ctx->wgrad_scale, col, (int)ncols, dmat, (int)ncols, beta, slot,
                                oc);
                else
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, oc, kk, (int)ncols,
                                ctx->wgrad_scale, dmat, (int)ncols, col, (int)ncols, beta, dw,
                                kk);
                if (dx) {
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, kk, (int)ncols, oc, 1.0f,
                                w, kk, dmat, (int)ncols, 0.0f, col, (int)ncols);
                    if (l->dx_first) /* col2im adds; its chunk of dx is zeroed while hot */
                        memset(dx + (size_t)b0 * in_numel, 0, sizeof(float) * nb * in_numel);
                    col2im_add_serial(col, nb, l->x, l->k, l->stride, l->pad, l->y.h, l->y.w,
                                      dx + (size_t)b0 * in_numel);
                }
            }
        }
        /* dW = partial 0 + partial 1 + ... in range order (transposed back), over the rows */
        if (pl.partial) {
            if (pl.threads > 1) {
#pragma omp barrier
            }
#pragma omp for schedule(static)
            for (int o = 0; o < oc; o++)
                for (int i = 0; i < kk; i++) {
                    float s = ctx->workspace[(size_t)i * oc + o];
                    for (int t = 1; t < pl.threads; t++)
                        s += ctx->workspace[(size_t)t * pl.stride + (size_t)i * oc + o];
                    dw[(size_t)o * kk + i] = s;
                }
        }
    }
    if (l->bias_len) conv_bias_grad(l, ctx, dy);
}

const LayerOps conv_ops = {"conv2d", conv_forward, conv_backward, 0, 1};
