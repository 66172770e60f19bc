/* One dense training step of a model on a fixed synthetic batch, as src/run/train.c takes it
 * without data loading: shared by bench_train (per-layer split, GEMM peak) and
 * bench_conv_backend (own vs oneDNN vs PyTorch). */
#ifndef CIGL_BENCH_DENSE_H
#define CIGL_BENCH_DENSE_H
#include "cigl/layer.h"
#include "cigl/loss.h"
#include "cigl/model.h"
#include "cigl/optim.h"
#include "cigl/rng.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    Model m;
    Sgd opt;
    float *x, *dlogits;
    int32_t *y;
    int n;
} DenseBench;

/* A model on random inputs of shape `in` with labels over `classes` classes. */
static inline int dense_bench_init(DenseBench *b, const char *name, Shape in, int classes,
                                   int batch)
{
    memset(b, 0, sizeof(*b));
    if (model_build(&b->m, name, in, classes, batch, 1)) return -1;
    if (sgd_init(&b->opt, &b->m, 0.9, 5e-4, 1, 0)) return -1;
    b->n = batch;
    const size_t numel = shape_numel(in) * (size_t)batch;
    b->x = malloc(sizeof(float) * numel);
    b->dlogits = malloc(sizeof(float) * (size_t)batch * (size_t)classes);
    b->y = malloc(sizeof(int32_t) * (size_t)batch);
    if (!b->x || !b->dlogits || !b->y) return -1;
    /* normalised pixels: zero mean, unit variance; labels uniform over the classes */
    for (size_t i = 0; i < numel; i++) b->x[i] = (float)rng_normal(11, RNG_AUGMENT, 0, i);
    for (int i = 0; i < batch; i++)
        b->y[i] = (int32_t)rng_below(11, RNG_DATA_ORDER, 0, i, (uint32_t)classes);
    return 0;
}

static inline void dense_bench_free(DenseBench *b)
{
    model_free(&b->m);
    sgd_free(&b->opt);
    free(b->x);
    free(b->dlogits);
    free(b->y);
}

#define DENSE_BENCH_LR 0.01

/* One step: forward, loss, backward and the SGD update; returns the loss. */
static inline double dense_bench_step(DenseBench *b)
{
    Model *m = &b->m;
    const float *logits = model_forward(m, m->params, b->x, b->n, 1);
    const double loss = softmax_xent(logits, b->y, b->n, m->classes, 0.0, 1.0f / (float)b->n,
                                     b->dlogits, NULL);
    model_backward(m, m->params, b->x, b->dlogits, b->n);
    sgd_step(&b->opt, m->params, m->grads, m->n_params, DENSE_BENCH_LR, NULL);
    return loss;
}
#endif
