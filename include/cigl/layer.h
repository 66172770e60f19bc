/* Layers: structs with forward/backward function pointers over contiguous float buffers
 * (Darknet, llm.c). Activations are NCHW float32; a linear layer's input is its flattened
 * per-sample vector. Backward functions ACCUMULATE into the input gradient (+=), because one
 * output may feed several consumers (a ResNet block's input feeds both paths). */
#ifndef CIGL_LAYER_H
#define CIGL_LAYER_H
#include "cigl/threads.h"

#include <stddef.h>
#include <stdint.h>

typedef enum {
    LAYER_LINEAR,
    LAYER_CONV2D,
    LAYER_BATCHNORM,
    LAYER_RELU,
    LAYER_MAXPOOL,
    LAYER_GLOBAL_AVGPOOL,
    LAYER_ADD,      /* residual add of two producers */
    LAYER_FLATTEN,
    LAYER_KIND_COUNT
} LayerKind;

typedef struct {
    int c, h, w;
} Shape;

static inline size_t shape_numel(Shape s) { return (size_t)s.c * s.h * s.w; }

/* What a layer reads and writes during one pass. Weights are read from `weights` (the
 * effective weights the method wants in the forward pass: plain parameters for dense
 * training); gradients go to `grads`, laid out like the parameter buffer. */
typedef struct {
    const float *weights;
    float *grads;
    float *bn_stats;        /* running mean/var, laid out per layer */
    float *workspace;       /* shared scratch of model->workspace_floats floats */
    size_t workspace_floats;
    int n;                  /* samples in this pass */
    int train;              /* training mode: BN batch statistics, caches for backward */
    float wgrad_scale;      /* conv/linear weight gradients are scaled by this (normally 1) */
    int conv_slots;         /* conv: the workspace is this many equal per-thread slots, and
                             * convolutions use at most this many threads (0: one slot) */
} LayerCtx;

typedef struct Layer Layer;

typedef struct {
    const char *kind_name;
    void (*forward)(Layer *l, const LayerCtx *ctx, const float *x, const float *x2, float *y);
    /* dx += dL/dx (and dx2 for LAYER_ADD); parameter gradients written (not accumulated) to
     * ctx->grads at the layer's offsets. A kind with writes_first stores dx = dL/dx instead
     * when l->dx_first (dx2 when l->dx2_first); for the other kinds the model zeroes such a
     * buffer just before the call. */
    void (*backward)(Layer *l, const LayerCtx *ctx, const float *x, const float *x2,
                     const float *y, const float *dy, float *dx, float *dx2);
    /* The kind applies a fused ReLU itself (Layer.relu_fused) inside its own passes; for the
     * other kinds the model loop applies it in place on the layer's output and gradient. */
    int applies_relu;
    int writes_first;
} LayerOps;

struct Layer {
    LayerKind kind;
    const LayerOps *ops;
    char name[40];
    int in, in2;            /* producer layer indices; -1 is the model input */
    Shape x, y;             /* per-sample input and output shapes */
    int k, stride, pad;     /* conv and pooling geometry (square kernels) */
    int out_features;       /* linear */
    /* Parameter offsets into the model's parameter buffer; weight_len 0 when absent.
     * BN: weight = gamma, bias = beta. */
    size_t weight_off, weight_len, bias_off, bias_len;
    size_t stats_off;       /* BN: running mean at stats_off, running var at stats_off + c */
    float bn_momentum, bn_eps;
    /* ReLU fusion (model_finalize): a ReLU that is the only consumer of its producer shares
     * the producer's output and gradient buffers and does nothing itself (`fused`); the
     * producer (`relu_fused`) writes max(y, 0) and masks its incoming gradient by y > 0,
     * which saves a pass over the activations each way and a buffer pair. */
    int relu_fused, fused;
    /* Something at or before this layer has parameters, so backward must produce the gradient
     * of its output (model_finalize): a flatten of the model input does not, and the layer
     * after it gets no input gradient to compute. */
    int needs_grad;
    /* Backward runs the layers in reverse, and a gradient buffer read by several layers sums
     * their contributions. The first of them to run (model_finalize marks it) writes the buffer
     * instead of adding to it, so no buffer is zeroed up front: a pass over every activation
     * gradient saved, and the first writer does not read what it overwrites. */
    int dx_first, dx2_first;
    /* Feature-major hand-off between linear layers (sparse_model_setup): the input (in_t) or
     * the output (out_t) is stored transposed, features x batch (row stride = the pass's batch
     * size), so that a sparse linear layer and its linear consumer skip the transposes on both
     * sides of the buffer they share; elementwise passes (a fused ReLU) do not care. */
    int in_t, out_t;
    /* Batch norm folded into a sparse convolution in evaluation mode (sparse_model_setup): a
     * conv on the sparse kernels whose only reader is a BN layer (`fold_bn`) writes BN's output
     * directly while it copies its own out of the kernels' rows, and that BN (`eval_folded`)
     * does nothing; training passes are untouched (they need the batch's statistics). */
    const struct Layer *fold_bn;
    int eval_folded;
    /* Per-layer caches for backward. */
    float *cache2;          /* BN: per channel the batch's inverse std, then its mean */
    int32_t *argmax;        /* max pool: flat input index of each output's maximum */
    struct Comm *sync;      /* BN: reduce batch statistics over these ranks (the BN
                             * recomputation after averaging); NULL: this rank's batch */
    struct SparseLayer *sparse; /* conv/linear: sparse kernels and their pattern (sparse.h);
                             * NULL: dense kernels */
};

/* Kind-specific operation tables (src/layer_*.c). */
const LayerOps *layer_ops(LayerKind kind);

/* y = max(y, 0) and dy = (y > 0 ? dy : 0) in place over `total` floats (a fused ReLU). */
void relu_inplace(float *y, long total);
/* The gradient through a ReLU with output y: both arguments are loaded before the choice, so
 * loops over it compile to a vectorised select (a branch mispredicts on half the inputs). */
static inline float relu_grad(float y, float dy) { return y > 0.0f ? dy : 0.0f; }
void relu_mask_inplace(float *dy, const float *y, long total);

/* Batch norm `bn` in evaluation mode over one plane of channel ch: dst (rows x cols, packed) =
 * BN(src) (rows `ld` floats apart; src may be dst), with the layer's fused ReLU; the same float
 * operations as the layer's own pass (layer_batchnorm.c). */
void bn_eval_plane(const Layer *bn, const LayerCtx *ctx, int ch, const float *src, size_t ld,
                   int rows, int cols, float *dst);

/* Shared conv geometry: output size for input `in`, kernel k, stride s, padding p. */
static inline int conv_out_size(int in, int k, int s, int p) { return (in + 2 * p - k) / s + 1; }

#endif
