/* Truly sparse compute for the prunable layers (conv and linear weights).
 *
 * Format: CSR over the output rows of the weight matrix W (OC x K: linear out x in, conv
 * OC x IC*KH*KW, the GEMM form of im2col), column indices only. The values are not copied:
 * entry (i, j) is read in place from the dense weight buffer the layer already reads
 * (ctx->weights + weight_off + i*K + j: the parameters, or CigL's effective weights), so a
 * value never goes stale and a mask update only re-derives the indices from the mask (one
 * byte scan of the tensor). Copying values would cost a gather per step and give nothing:
 * every kernel does O(batch) work per stored entry, so the in-place read is amortised.
 *
 * Why CSR over rows and no CSC copy: activations are kept feature-major inside the kernels
 * (linear: X^T, K x batch; conv: padded planes or im2col rows, K x columns), so every stored entry
 * touches whole rows of length batch (or columns):
 *   forward      Y^T[i, :]  += w_ij X^T[j, :]   rows of W split over threads (no conflicts)
 *   input grad  dX^T[j, :]  += w_ij dY^T[i, :]  the batch (column) range split over threads,
 *                                                every thread walking all of W: no transposed
 *                                                copy and no atomics are needed
 *   weight grad dW_ij = sum_b dY^T[i, b] X^T[j, b]  (sampled dense-dense product, rows split)
 * All three are axpys or dot products of length batch, vectorised (AVX-512/AVX2 clones
 * chosen at run time on x86-64) and independent of the thread count for linear layers. A
 * linear layer whose input or output is handed over feature-major (Layer.in_t/out_t, planned
 * by sparse_model_setup between linear layers with a sparse side) uses that buffer in place
 * instead of transposing; small linear layers run on one thread (sparse_linear.c).
 * A blocked format would pay off only at densities where the dense GEMM wins anyway.
 *
 * Conv (src/sparse_conv.c): stride-1 convolutions with kernels larger than 1x1 build no im2col
 * matrix at all: the input is copied into zero-padded planes once and each weight's input
 * "row" is a flat shift of them (row_off), the output computed at the padded width and copied
 * out. Strided and 1x1 convolutions build the im2col matrix only for the columns of W that
 * hold at least one entry (`used`), and col2im adds only those rows back.
 *
 * The random mask: during a training step the kernels skip entries whose byte in the step's
 * active mask (M & Z for CigL) is 0, and write a zero gradient there; outside a training step
 * (evaluation, BN recomputation), or with no active mask (--z-timing authors, whose forward
 * weights hold values at Z-dropped positions), every stored entry counts.
 *
 * Dense weight gradients: on mask-update steps (method_updates_at) RigL's grow score needs
 * dL/dW_eff at every position, so the layer's backward runs the dense kernels that step. */
#ifndef CIGL_SPARSE_H
#define CIGL_SPARSE_H
#include "cigl/layer.h"
#include "cigl/model.h"

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int rows, cols;         /* OC x K */
    size_t nnz, cap;
    int32_t *row_ptr;       /* rows + 1 */
    int32_t *col;           /* nnz: column j, ascending within a row */
    int32_t *used;          /* columns holding at least one entry, ascending */
    int n_used;
    size_t *row_off;        /* cols: scratch for the conv layers, where row j of the dense
                             * operand starts (a compact im2col row, or a tap of the padded
                             * image: sparse_conv_direct.c) */
} SparseMatrix;

/* Builds the pattern of mask (rows x cols bytes, nonzero = stored); NULL mask: every entry.
 * Reuses the arrays when they are large enough. */
int sparse_matrix_build(SparseMatrix *s, const uint8_t *mask, int rows, int cols);
void sparse_matrix_free(SparseMatrix *s);

/* ---- kernels (serial over the given ranges; callers split ranges over threads) -------------
 * w: the dense rows x cols weights (row-major); act: the matching active bytes or NULL (every
 * stored entry active). The dense operand indexed by the column j of an entry (B[j] in
 * sparse_mm and sparse_sddmm, C[j] in sparse_mm_t) starts at row_off[j] floats when row_off is
 * given (conv), else at j * ldb (ldc). */

/* C[i][c0:c1] = (acc ? C[i][c0:c1] : 0) + sum_{active k in row i} (w_ik scale) B[j_k][c0:c1]
 * (scale: CigL's 1 / keep, applied to the parameters in the kernel instead of writing effective
 * weights; w_ik * scale is the same float as the effective weight; 1 leaves w exact) */
void sparse_mm(const SparseMatrix *s, const float *w, float scale, const uint8_t *act,
               const size_t *row_off, int r0, int r1, const float *B, size_t ldb, size_t c0,
               size_t c1, float *C, size_t ldc, int acc);
/* C[j_k][c0:c1] += (w_ik scale) B[i][c0:c1] for the active entries of rows [r0, r1) */
void sparse_mm_t(const SparseMatrix *s, const float *w, float scale, const uint8_t *act,
                 const size_t *row_off, int r0, int r1, const float *B, size_t ldb, size_t c0,
                 size_t c1, float *C, size_t ldc);
/* g[k] = (acc ? g[k] : 0) + sum_{b < n} A[i][b] B[j_k][b] for the active entries k of rows
 * [r0, r1); inactive entries get 0 (acc: unchanged). */
void sparse_sddmm(const SparseMatrix *s, const uint8_t *act, const size_t *row_off, int r0,
                  int r1, const float *A, size_t lda, const float *B, size_t ldb, size_t n,
                  float *g, int acc);
/* Rows [*r0, *r1) of part t of T, balanced by stored entries (deterministic). */
void sparse_split_rows(const SparseMatrix *s, int t, int T, int *r0, int *r1);

/* ---- per-layer and per-model state -------------------------------------------------------- */

typedef enum { KERNELS_AUTO = 0, KERNELS_DENSE = 1, KERNELS_SPARSE = 2 } KernelsMode;

typedef struct SparseModel SparseModel;

typedef struct SparseLayer {
    SparseMatrix s;
    SparseModel *model;
    size_t w_off;           /* the weight tensor's offset in the parameter buffer */
    float *xt, *yt, *dxt;   /* linear: feature-major copies (max_batch x cols / rows / cols) */
    const float *xt_src;    /* linear: the input xt was made from by the last forward ... */
    int xt_n;               /* ... and its batch size */
    float *gpart;           /* conv: per-thread weight-gradient partials (parts x nnz) */
    size_t gpart_cap;
    int parts;
    int clean;              /* the gradient is zero outside the pattern (set after a sparse
                             * backward; cleared by a rebuild or a dense-gradient step) */
} SparseLayer;

struct SparseModel {
    uint8_t *kind;          /* per layer: 1 = sparse kernels (conv and linear only) */
    const uint8_t *active;  /* this training step's active mask (whole parameter buffer) ... */
    const float *step_weights; /* ... applied only when the layers read these weights */
    const float *step_source;  /* what the sparse layers read then instead, times step_scale
                                * (CigL: the parameters times 1 / keep, so its effective
                                * weights are never written at their positions) */
    float step_scale;
    int dense_wgrad;        /* this step needs dense weight gradients (mask update) */
    long version;           /* mask version the patterns were built from (-1: none) */
};

/* Parses "auto" | "dense" | "sparse"; -1 when unknown. */
int sparse_kernels_parse(const char *name);

/* The auto rule for one conv/linear layer at `density` (thresholds in sparse_rule.h; a conv
 * layer's depend on the selected dense conv backend, conv_backend.h). */
int sparse_auto_choice(const Layer *l, double density);

/* Chooses kernels per layer (mode; mask = the model's mask M over the whole parameter buffer,
 * NULL = dense) and builds the patterns. Any earlier choice is replaced; with no sparse layer
 * m->sparse stays NULL and the dense path runs untouched. */
int sparse_model_setup(Model *m, KernelsMode mode, const uint8_t *mask);
/* The same from a recorded choice ("dense,sparse,..." per prunable tensor, see
 * sparse_choice_format), for resumes and checkpoints. Refuses a string that does not fit. */
int sparse_model_setup_choice(Model *m, const char *choice, const uint8_t *mask);
void sparse_model_free(Model *m);

/* Before a training step's forward: rebuilds the patterns when `version` (the method's mask
 * update count) moved, and records the step's active mask, weights and dense-gradient need. */
int sparse_model_step(Model *m, const uint8_t *mask, long version, const uint8_t *active,
                      const float *step_weights, int dense_wgrad);
/* After sparse_model_step: during this step the sparse layers read `source` * scale instead of
 * the step's weights (it resets to those weights and 1). */
void sparse_model_step_source(Model *m, const float *source, float scale);
/* Rebuilds every sparse layer's pattern from mask now (after loading a mask). */
int sparse_model_rebuild(Model *m, const uint8_t *mask);

/* "dense" or "sparse": the kernels of layer i. */
const char *sparse_layer_kernel(const Model *m, int layer);
/* Writes the per-prunable-tensor choice as "dense,sparse,..." (tensor order); returns the
 * length, or -1 when buf is too small. */
int sparse_choice_format(const Model *m, char *buf, size_t len);
/* Parses such a string into per-layer choices (kind[n_layers], 1 = sparse); a single "dense" or
 * "sparse" applies to every layer; -1 when it does not name one choice per prunable tensor. */
int sparse_choice_parse(const Model *m, const char *choice, uint8_t *kind);

/* Layer entry points (layer_linear.c and layer_conv.c dispatch here when l->sparse is set). */
void sparse_linear_forward(Layer *l, const LayerCtx *ctx, const float *x, float *y);
void sparse_linear_backward(Layer *l, const LayerCtx *ctx, const float *x, const float *dy,
                            float *dx);
void sparse_conv_forward(Layer *l, const LayerCtx *ctx, const float *x, float *y);
void sparse_conv_backward(Layer *l, const LayerCtx *ctx, const float *x, const float *dy,
                          float *dx);
/* The step's active bytes for layer l's weights, or NULL (every stored entry): only while the
 * layers read the step's weights (a training step's forward and backward). */
const uint8_t *sparse_step_active(const Layer *l, const LayerCtx *ctx);
/* The weights sparse layer l reads (its weight tensor) and their scale, given ctx. */
const float *sparse_step_weights(const Layer *l, const LayerCtx *ctx, float *scale);
/* Whether layer l's backward should use the sparse kernels this step. */
int sparse_layer_backward_sparse(const Layer *l);

#endif
