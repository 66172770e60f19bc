/* The deterministic rule `--kernels auto` uses per conv/linear layer: sparse kernels when the
 * layer's density (stored weights / all weights, from the mask at start-up) is at most the
 * threshold for its kind. Never timed at start-up, so reruns and resumes choose the same
 * kernels. The thresholds are the crossovers measured by `make bench` (bench_sparse, see
 * tests/bench/README.md "Sparse kernels"), rounded down. */
#ifndef CIGL_SPARSE_RULE_H
#define CIGL_SPARSE_RULE_H

/* Measured with bench_sparse --layers (one layer's forward + backward, batch 128, 2 threads,
 * medians of 3; 2026-11-28) on two machines, and the thresholds set where sparse wins on both:
 * A = the 2-core AMD EPYC (Zen 4) this project is developed on, shared and loaded (noisy),
 * B = 2 pinned cores of an idle 16-core Intel Xeon (cigl statically linked).
 * Linear layers: sparse at density <= 0.15 and at least 8192 weights. mlp fc1 784x300
 * dense/sparse time at density 0.10: A 1.6, B 2.3; at 0.20: A 0.8-1.0, B 1.2; at 0.30: A 0.6,
 * B 0.7. mlp fc2 300x100 at 0.10: A 1.2-1.6, B 4.3; at 0.20: A 0.8-1.0. The 10-output
 * classifiers (1280 weights and fewer) lose on A at every density (x0.5-0.7), win on B below
 * 0.2: dense. */
#define SPARSE_AUTO_LINEAR_MAX_DENSITY 0.15
#define SPARSE_AUTO_LINEAR_MIN_WEIGHTS 8192
/* Conv layers: sparse at density <= 0.2. resnet20, lenet5 and wrn-22-2 convs dense/sparse time
 * at density 0.20: A 1.2-1.9 (3x3), 1.2 (1x1), B 2.4-4.8; at 0.30: A 0.94-1.5, B 1.7-3.9; at
 * 0.50: A 0.6-1.1, B 1.1-2.7. */
#define SPARSE_AUTO_CONV_MAX_DENSITY 0.20

#endif
