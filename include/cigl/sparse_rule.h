/* The deterministic rule `--kernels auto` uses per conv/linear layer: sparse kernels when the
 * layer's density (stored weights / all weights, from the mask at start-up) is at most the
 * threshold for its kind and shape. Never timed at start-up, so reruns and resumes choose the
 * same kernels (the choice is also recorded in checkpoints and model files). The thresholds
 * come from the crossovers measured by `make bench` (bench_sparse --layers, see
 * tests/bench/README.md "Sparse kernels"; the own kernels' set is rounded down to a measured
 * density where sparse won, the oneDNN set is set from whole training steps, below). A conv
 * layer's dense alternative is whichever dense backend is selected (conv_backend.h), so conv
 * layers have one set of thresholds per backend. */
#ifndef CIGL_SPARSE_RULE_H
#define CIGL_SPARSE_RULE_H

/* Measured 2026-11-29 on the idle 2-core AMD EPYC (Zen 4) this project is developed on, with the
 * direct (padded-plane) sparse convolution, OMP_WAIT_POLICY=PASSIVE as the CLI runs: one
 * layer's forward + backward, batch 128, 2 threads, medians of 3, dense time / sparse time.
 *
 * Linear layers (re-measured after the feature-major hand-off, serial small layers and the
 * row-blocked transposes, log tests/bench/sparse_results/epyc_linear_layers_2026-11-29.log):
 * sparse at density <= 0.12 and at least 8192 weights. mlp fc1 784x300: 2.4-3.0 at 0.05,
 * 1.35-1.84 at 0.10, 0.71-1.03 at 0.20; mlp fc2 300x100: 2.1-3.0 at 0.10, 1.2-1.9 at 0.20;
 * lenet5's fc layers cross later. One layer alone still pays both transposes, which a chain
 * of linear layers skips, so the rule errs towards dense. The 10-output classifiers (1280
 * weights and fewer) lose at every density (0.43-0.96): dense. */
#define SPARSE_AUTO_LINEAR_MAX_DENSITY 0.12
#define SPARSE_AUTO_LINEAR_MIN_WEIGHTS 8192

/* Conv layers: the crossover rises with the output plane (OH x OW), over which every stored
 * weight does one axpy or dot product.
 *   plane >= 1024 (32x32): sparse at density <= 0.4. resnet20 layer1 3x3 at 0.5: 1.40, stem
 *     1.06; wrn-22-2 block1 conv1 1.05, conv2 0.94 at 0.5 and 1.50 at 0.3.
 *   plane >= 256 (16x16, lenet5's 28x28): <= 0.3. resnet20 layer2 3x3 at 0.3: 1.19 (0.72 at
 *     0.5), its stride-2 conv 1.10; wrn-22-2 block2 1.02-1.07; lenet5 conv1 1.47.
 *   smaller planes (8x8, lenet5's 10x10): <= 0.15. resnet20 layer3 3x3 at 0.2: 1.12 (0.83 at
 *     0.3); wrn-22-2 block3 conv2 (128 channels) 1.66 at 0.1, 0.86 at 0.2; lenet5 conv2 1.70
 *     at 0.2. */
#define SPARSE_AUTO_CONV_LARGE_PLANE 1024
#define SPARSE_AUTO_CONV_LARGE_MAX_DENSITY 0.4
#define SPARSE_AUTO_CONV_MEDIUM_PLANE 256
#define SPARSE_AUTO_CONV_MEDIUM_MAX_DENSITY 0.3
#define SPARSE_AUTO_CONV_SMALL_MAX_DENSITY 0.15

/* Conv layers against oneDNN's dense convolutions (--conv-backend onednn, what `cigl train`
 * resolves auto to when built in), which are about twice as fast as the own kernels on these
 * shapes: the crossovers fall and depend on the sparse path's layout. Measured 2026-12-06 on
 * the same machine (noisier than the idle run: another run paused, sgemm peak 179 GFLOP/s),
 * same settings, resnet20 / wrn-22-2 / lenet5 layers, log
 * tests/bench/sparse_results/epyc_onednn_layers_2026-12-06.log:
 *   stride-1 k > 1 (the direct path), where one layer alone understates the sparse kernels:
 *   in a whole step `--kernels sparse` beat dense at 90% ERK (resnet20 on 3x32x32 1.04-1.08x
 *   training, 1.79x inference; wrn-22-2 1.00-1.07x, 1.41x; make bench 2026-12-06 20:01 UTC),
 *   where these layers sit at densities 0.28 / 0.13 / 0.06 (32x32 / 16x16 / 8x8), and lost at
 *   80% (0.72x and 0.64x training; 0.59 / 0.27 / 0.13). The thresholds are the isolated
 *   crossovers moved up to include the 90% densities, and the plane tiers start at 28x28 and
 *   14x14 so that Fashion-MNIST's 28 / 14 / 7 planes fall in the tiers of CIFAR's 32 / 16 / 8
 *   (whole steps of resnet20 on 1x28x28 in tests/bench/sparse_results/
 *   epyc_onednn_auto_2026-12-06.log):
 *     plane >= 784: <= 0.3. resnet20 layer1 3x3 (32x32) 1.33 at 0.2, 1.08 at 0.3, 0.74 at 0.5;
 *       wrn-22-2 block1 conv1 1.32 / 0.96, conv2 1.21 / 0.90 (at 0.2 / 0.3); the 3-channel
 *       stems win to 0.5.
 *     plane >= 196: <= 0.15. resnet20 layer2 3x3 (16x16) 1.47 at 0.1, 0.83 at 0.2; wrn-22-2
 *       block2 conv2 1.32 / 0.74; lenet5's 28x28 conv1 wins to 0.5.
 *     smaller: <= 0.1. resnet20 layer3 3x3 (8x8) 1.78 at 0.05, 1.05 at 0.1; wrn-22-2 block3
 *       conv2 1.59 / 0.90; lenet5 conv2 (10x10) 1.19 at 0.3.
 *   strided k > 1 (im2col of the used columns, nearly all of them at these densities):
 *     plane >= 196: <= 0.02. resnet20 layer2.0.conv1 1.35 at 0.02, 0.72 at 0.05 (wrn-22-2
 *       block2.0.conv1 1.21 at 0.05, 0.98 at 0.1).
 *     smaller: <= 0.05. resnet20 layer3.0.conv1 1.16 at 0.05, 0.80 at 0.1; wrn-22-2
 *       block3.0.conv1 1.36 / 1.01.
 *   1x1 (shortcuts, any stride): <= 0.3. resnet20 1.37 at 0.5 (16x16), 1.39 at 0.3 and 0.90
 *     at 0.5 (8x8); wrn-22-2 1.32-1.55 at 0.3, 0.91-1.12 at 0.5. */
#define SPARSE_AUTO_ONEDNN_LARGE_PLANE 784
#define SPARSE_AUTO_ONEDNN_MEDIUM_PLANE 196
#define SPARSE_AUTO_ONEDNN_LARGE_MAX_DENSITY 0.3
#define SPARSE_AUTO_ONEDNN_MEDIUM_MAX_DENSITY 0.15
#define SPARSE_AUTO_ONEDNN_SMALL_MAX_DENSITY 0.1
#define SPARSE_AUTO_ONEDNN_STRIDED_MEDIUM_MAX_DENSITY 0.02
#define SPARSE_AUTO_ONEDNN_STRIDED_SMALL_MAX_DENSITY 0.05
#define SPARSE_AUTO_ONEDNN_POINTWISE_MAX_DENSITY 0.3

#endif
