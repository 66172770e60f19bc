/* Which kernels run dense convolutions (`--conv-backend`): cigl's own im2col + OpenBLAS path
 * (src/nn/layer_conv.c) or oneDNN's convolution primitives (src/nn/conv_onednn.c, built when
 * the Makefile's ONEDNN is 1). Layers on the sparse kernels are not affected, and GEMMs
 * (linear layers, the sparse kernels) stay on OpenBLAS.
 *
 * Guarantees of the oneDNN path (tests/test_conv_onednn.c): forward, input and weight
 * gradients within float tolerance of the own kernels; for a given thread count the same bits
 * on every call (oneDNN 2.6's CPU primitives split and reduce in an order fixed by the shapes
 * and the thread count; the test repeats every pass and compares bits). Like OpenBLAS's, its
 * results may differ across thread counts. The choice is process-wide; the library's default
 * is the own kernels, `cigl train` resolves auto to onednn when it is built in. The backward
 * pass of 1x1 strided convolutions stays on the own kernels under onednn (faster there; a rule
 * by geometry, conv_onednn.c). */
#ifndef CIGL_CONV_BACKEND_H
#define CIGL_CONV_BACKEND_H
#include "cigl/layer.h"

typedef enum { CONV_BACKEND_OWN = 0, CONV_BACKEND_ONEDNN = 1 } ConvBackend;

/* "own", "onednn" or "auto" (onednn when built in, else own); -1 for anything else */
int conv_backend_parse(const char *name);
const char *conv_backend_name(ConvBackend b);
/* 1 when this build has oneDNN */
int conv_backend_onednn_built(void);
/* Selects the backend (CONV_BACKEND_ONEDNN without oneDNN built in: -1, nothing changed). */
int conv_backend_set(ConvBackend b);
ConvBackend conv_backend_get(void);
/* The CLI's --conv-backend NAME: parses it, selects the backend and writes back the name of
 * the one selected (auto resolved), so that config.json and a checkpoint's options name what
 * ran and a resumed run on a build without oneDNN refuses instead of computing other bits.
 * CIGL_ERR_USAGE (reported) for an unknown name or onednn in a build without it. */
int conv_backend_select(char *name, size_t cap);

/* The conv layer's hooks: 1 when oneDNN did the pass, 0 when the caller must run its own
 * kernels (backend own, or oneDNN refused the shape: a warning is printed once). Backward
 * writes dW (times ctx->wgrad_scale) and adds into dx when dx is not NULL; no bias gradient. */
int conv_onednn_forward(const Layer *l, const LayerCtx *ctx, const float *x, float *y);
int conv_onednn_backward(const Layer *l, const LayerCtx *ctx, const float *x, const float *dy,
                         float *dx);
/* Frees the cached primitives and buffers (they are rebuilt on the next use). */
void conv_onednn_release(void);

#endif
