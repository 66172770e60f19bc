/* Finding where a NaN or infinity appeared, so that the error names the step and the layer
 * instead of just "the loss is NaN". */
#ifndef CIGL_NONFINITE_H
#define CIGL_NONFINITE_H
#include "cigl/model.h"

/* 1 when every value of a[0..n) is finite. One vectorisable pass (x * 0 is NaN exactly when
 * x is NaN or infinite). */
int all_finite(const float *a, size_t n);

/* After a forward pass over n samples of x with a non-finite loss: describes the first place
 * with a non-finite value ("the input batch", "the output of layer 'fc1'", or "the loss") into
 * buf. */
void describe_nonfinite_forward(const Model *m, const float *x, int n, char *buf, size_t cap);

/* The first parameter tensor whose gradient holds a non-finite value, or NULL. */
const char *first_nonfinite_gradient(const Model *m);

#endif
