/* When a pass is worth splitting over the OpenMP threads. */
#ifndef CIGL_THREADS_H
#define CIGL_THREADS_H

/* Passes over fewer floats than this run on one thread: waking a passive OpenMP thread
 * (src/main.c) costs tens of microseconds, more than such a pass (the mlp's 38K-float
 * activations take a few), while resnet20's 2M-float activations still split. Measured on the
 * mlp at 95% sparsity, passive threads: 1.38 -> 1.14-1.37 ms per step (0.8 ms with the other
 * fixes of that day, tests/bench/README.md). */
#define CIGL_PARALLEL_MIN_FLOATS (1L << 18)

#endif
