/* The deterministic rule `--kernels auto` uses per conv/linear layer: sparse kernels when the
 * layer's density (stored weights / all weights, from the mask at start-up) is at most the
 * threshold for its kind. Never timed at start-up, so reruns and resumes choose the same
 * kernels. The thresholds are the crossovers measured by `make bench` (bench_sparse, see
 * tests/bench/README.md "Sparse kernels"), rounded down. */
#ifndef CIGL_SPARSE_RULE_H
#define CIGL_SPARSE_RULE_H

/* linear layers (batch 128, 2 threads): PLACEHOLDER until measured */
#define SPARSE_AUTO_LINEAR_MAX_DENSITY 0.20
/* conv layers: PLACEHOLDER until measured */
#define SPARSE_AUTO_CONV_MAX_DENSITY 0.20

#endif
