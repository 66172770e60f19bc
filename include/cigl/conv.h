/* Convolution helpers shared by the conv layer, the model's workspace sizing and the tests. */
#ifndef CIGL_CONV_H
#define CIGL_CONV_H
#include "cigl/layer.h"

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

#endif
