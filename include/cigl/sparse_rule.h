/* The deterministic rule `--kernels auto` uses per conv/linear layer: sparse kernels when the
 * layer's density (stored weights / all weights, from the mask at start-up) is at most the
 * threshold for its kind. Never timed at start-up, so reruns and resumes choose the same
 * kernels. The thresholds are the crossovers measured by `make bench` (bench_sparse, see
 * tests/bench/README.md "Sparse kernels"), rounded down. */
#ifndef CIGL_SPARSE_RULE_H
#define CIGL_SPARSE_RULE_H

/* Linear layers: sparse at density <= 0.15 and at least 8192 weights. Measured (bench_sparse
 * --layers, batch 128, 2 threads, forward + backward, medians of 3, loaded 2-core EPYC,
 * 2026-11-28): mlp fc1 784x300 sparse/dense time 0.43-0.61 at density 0.05, 0.61-0.79 at 0.10,
 * 1.03-1.26 at 0.20; mlp fc2 300x100 0.55-0.80 at 0.10, 1.03-1.20 at 0.20; the 10-output
 * classifiers (1000 weights and fewer) are slower sparse at every density (x0.5-0.7). */
#define SPARSE_AUTO_LINEAR_MAX_DENSITY 0.15
#define SPARSE_AUTO_LINEAR_MIN_WEIGHTS 8192
/* Conv layers: sparse at density <= 0.2. Measured the same way: resnet20 3x3 convs sparse/dense
 * 0.5-0.85 at 0.20 and 0.7-1.06 at 0.30 (16 to 64 channels), 1x1 shortcuts about 0.8 at 0.20;
 * lenet5 conv2 0.83 at 0.20, 0.91 at 0.30; wrn-22-2 3x3 convs below 0.8 at 0.20. */
#define SPARSE_AUTO_CONV_MAX_DENSITY 0.20

#endif
