/* Fully connected layer: y = x W^T + b with W stored out x in (PyTorch's layout).
 * Input and output are batch-major (n x features) unless the layer's in_t / out_t say they are
 * handed over feature-major (layer.h); the dense path only changes its GEMM operands' order. */
#include "cigl/layer.h"

#include <cblas.h>
#include <string.h>

/* An activation operand as GEMM wants it: the buffer, whether it is stored transposed
 * relative to the batch-major n x features matrix, and its row stride. */
typedef struct {
    const float *p;
    int t;
    int ld;
} Act;

static Act act_of(const float *p, int transposed, int n, int features)
{
    return (Act){p, transposed, transposed ? n : features};
}

static CBLAS_TRANSPOSE op(int transpose) { return transpose ? CblasTrans : CblasNoTrans; }

static void linear_forward(Layer *l, const LayerCtx *ctx, const float *x, const float *x2,
                           float *y)
{
    (void)x2;
    const int n = ctx->n, in = (int)shape_numel(l->x), out = l->out_features;
    const float *w = ctx->weights + l->weight_off;
    const Act X = act_of(x, l->in_t, n, in);
    if (l->bias_len) {
        const float *b = ctx->weights + l->bias_off;
        if (l->out_t) {
            for (int o = 0; o < out; o++)
                for (int i = 0; i < n; i++) y[(size_t)o * n + i] = b[o];
        } else {
            for (int i = 0; i < n; i++) memcpy(y + (size_t)i * out, b, sizeof(float) * out);
        }
    }
    const float beta = l->bias_len ? 1.0f : 0.0f;
    if (l->out_t) /* Y^T = W X^T */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, op(!X.t), out, n, in, 1.0f, w, in, X.p, X.ld,
                    beta, y, n);
    else /* Y = X W^T */
        cblas_sgemm(CblasRowMajor, op(X.t), CblasTrans, n, out, in, 1.0f, X.p, X.ld, w, in, beta,
                    y, out);
}

static void linear_backward(Layer *l, const LayerCtx *ctx, const float *x, const float *x2,
                            const float *y, const float *dy, float *dx, float *dx2)
{
    (void)x2; (void)y; (void)dx2;
    const int n = ctx->n, in = (int)shape_numel(l->x), out = l->out_features;
    const float *w = ctx->weights + l->weight_off;
    const Act X = act_of(x, l->in_t, n, in), dY = act_of(dy, l->out_t, n, out);
    /* dW = dY^T X */
    cblas_sgemm(CblasRowMajor, op(!dY.t), op(X.t), out, in, n, ctx->wgrad_scale, dY.p, dY.ld,
                X.p, X.ld, 0.0f, ctx->grads + l->weight_off, in);
    if (l->bias_len) {
        float *db = ctx->grads + l->bias_off;
        for (int o = 0; o < out; o++) {
            double s = 0;
            for (int i = 0; i < n; i++)
                s += l->out_t ? dy[(size_t)o * n + i] : dy[(size_t)i * out + o];
            db[o] = (float)s;
        }
    }
    if (!dx) return;
    const float keep = l->dx_first ? 0.0f : 1.0f; /* the first writer stores (layer.h) */
    if (l->in_t) /* dX^T += W^T dY^T */
        cblas_sgemm(CblasRowMajor, CblasTrans, op(!dY.t), in, n, out, 1.0f, w, in, dY.p, dY.ld,
                    keep, dx, n);
    else /* dX += dY W */
        cblas_sgemm(CblasRowMajor, op(dY.t), CblasNoTrans, n, in, out, 1.0f, dY.p, dY.ld, w, in,
                    keep, dx, in);
}

const LayerOps linear_ops = {"linear", linear_forward, linear_backward, 0, 1};
