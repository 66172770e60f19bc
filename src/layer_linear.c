/* Fully connected layer: y = x W^T + b with W stored out x in (PyTorch's layout). */
#include "cigl/layer.h"
#include "cigl/sparse.h"

#include <cblas.h>
#include <string.h>

static void linear_forward(Layer *l, const LayerCtx *ctx, const float *x, const float *x2,
                           float *y)
{
    (void)x2;
    if (l->sparse) {
        sparse_linear_forward(l, ctx, x, y);
        return;
    }
    const int n = ctx->n, in = (int)shape_numel(l->x), out = l->out_features;
    const float *w = ctx->weights + l->weight_off;
    if (l->bias_len) {
        const float *b = ctx->weights + l->bias_off;
        for (int i = 0; i < n; i++)
            memcpy(y + (size_t)i * out, b, sizeof(float) * out);
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, out, in, 1.0f, x, in, w, in,
                l->bias_len ? 1.0f : 0.0f, y, out);
}

static void linear_backward(Layer *l, const LayerCtx *ctx, const float *x, const float *x2,
                            const float *y, const float *dy, float *dx, float *dx2)
{
    (void)x2; (void)y; (void)dx2;
    if (l->sparse && sparse_layer_backward_sparse(l)) {
        sparse_linear_backward(l, ctx, x, dy, dx);
        return;
    }
    const int n = ctx->n, in = (int)shape_numel(l->x), out = l->out_features;
    const float *w = ctx->weights + l->weight_off;
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, n, ctx->wgrad_scale, dy, out, x, in,
                0.0f, ctx->grads + l->weight_off, in);
    if (l->bias_len) {
        float *db = ctx->grads + l->bias_off;
        for (int o = 0; o < out; o++) {
            double s = 0;
            for (int i = 0; i < n; i++)
                s += dy[(size_t)i * out + o];
            db[o] = (float)s;
        }
    }
    if (dx)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, in, out, 1.0f, dy, out, w,
                    in, 1.0f, dx, in);
}

const LayerOps linear_ops = {"linear", linear_forward, linear_backward, 0};
