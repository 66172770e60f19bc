/* Shared by the method tests (test_methods, test_mechanics): the options of a short run in
 * which everything happens within a few dozen steps, and its seeded batches. */
#ifndef CIGL_METHOD_TEST_H
#define CIGL_METHOD_TEST_H
#include "cigl/config.h"
#include "cigl/rng.h"

#include <stdint.h>
#include <stdio.h>

enum { BATCH = 8, STEPS = 24 };

/* Updates every 3 steps to 60% with drop fraction 0.5, snapshots every 2 steps from 70%, and
 * random-mask and dropout rates of 0.3, so that drops happen often in a short test. */
static inline Config method_test_config(const char *method, double sparsity)
{
    Config c;
    config_defaults(&c);
    snprintf(c.method, sizeof(c.method), "%s", method);
    c.sparsity = sparsity;
    c.update_interval = 3;
    c.update_end = 0.6;
    c.drop_fraction = 0.5;
    c.average_start = 0.7;
    c.average_every = 2;
    c.random_mask_rate = 0.3;
    c.dropout_rate = 0.3;
    c.seed = 11;
    return c;
}

/* BATCH normal inputs of numel values and labels below `classes`, fixed by the step. */
static inline void method_test_batch(float *x, int32_t *y, size_t numel, int classes,
                                     uint64_t step)
{
    for (size_t i = 0; i < numel * BATCH; i++) x[i] = (float)rng_normal(99, RNG_AUGMENT, step, i);
    for (int i = 0; i < BATCH; i++) y[i] = (int32_t)rng_below(99, RNG_MIXUP, step, i, classes);
}
#endif
