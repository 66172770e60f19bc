#include "cigl/nonfinite.h"

#include <stdio.h>

int all_finite(const float *a, size_t n)
{
    float acc = 0.0f;
    for (size_t i = 0; i < n; i++) acc += a[i] * 0.0f;
    return acc == 0.0f;
}

void describe_nonfinite_forward(const Model *m, const float *x, int n, char *buf, size_t cap)
{
    if (!all_finite(x, shape_numel(m->input) * (size_t)n)) {
        snprintf(buf, cap, "the input batch");
        return;
    }
    for (int i = 0; i < m->n_layers; i++) {
        if (!m->act[i]) continue; /* a flatten: its source's floats (model.h) */
        const size_t numel = shape_numel(m->layers[i].y) * (size_t)n;
        if (!all_finite(m->act[i], numel)) {
            snprintf(buf, cap, "the output of layer '%s'", m->layers[i].name);
            return;
        }
    }
    snprintf(buf, cap, "the loss");
}

const char *first_nonfinite_gradient(const Model *m)
{
    for (int t = 0; t < m->n_tensors; t++) {
        const ParamTensor *pt = &m->tensors[t];
        if (!all_finite(m->grads + pt->off, pt->len)) return pt->name;
    }
    return NULL;
}
