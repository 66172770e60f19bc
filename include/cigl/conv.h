/* Convolution helpers shared by the conv layer, the model's workspace sizing and the tests. */
#ifndef CIGL_CONV_H
#define CIGL_CONV_H
#include "cigl/layer.h"

/* Samples per GEMM chunk so that im2col columns plus the output matrix fit budget_floats. */
size_t conv_chunk(const Layer *l, int max_batch, size_t budget_floats);
/* Workspace this layer needs at max_batch under that budget. */
size_t conv_workspace_floats(const Layer *l, int max_batch, size_t budget_floats);

void im2col(const float *x, int nb, Shape in, int k, int s, int p, int oh, int ow, float *col);
void col2im_add(const float *col, int nb, Shape in, int k, int s, int p, int oh, int ow,
                float *dx);

#endif
