/* When a pass is worth splitting over the OpenMP threads. */
#ifndef CIGL_THREADS_H
#define CIGL_THREADS_H

/* Passes over fewer floats than this run on one thread: waking a passive OpenMP thread
 * (src/main.c) costs tens of microseconds, more than such a pass (the mlp's 38K-float
 * activations take a few), while resnet20's 2M-float activations still split. Measured on the
 * mlp at 95% sparsity, passive threads: 1.38 -> 1.14-1.37 ms per step (0.8 ms with the other
 * fixes of that day, tests/bench/README.md). */
#define CIGL_PARALLEL_MIN_FLOATS (1L << 18)

/* `for (long i = 0; i < total; i++) { BODY }` as `omp parallel for simd` when total reaches
 * CIGL_PARALLEL_MIN_FLOATS, else as `omp simd` on this thread. Not an `if` clause: a region
 * whose if clause is false still enters libgomp and ends with a futex system call (seen with
 * strace -k: 21 per mlp training step, 2-3 us each on the project's VM). BODY may hold commas. */
#define CIGL_ELEMENTWISE(i, total, ...)                                                         \
    do {                                                                                       \
        const long cigl_total_ = (total);                                                      \
        if (cigl_total_ >= CIGL_PARALLEL_MIN_FLOATS) {                                         \
            _Pragma("omp parallel for simd schedule(static)")                                  \
            for (long i = 0; i < cigl_total_; i++) { __VA_ARGS__ }                             \
        } else {                                                                               \
            _Pragma("omp simd")                                                                \
            for (long i = 0; i < cigl_total_; i++) { __VA_ARGS__ }                             \
        }                                                                                      \
    } while (0)

/* Runs BODY in an `omp parallel` region when cond holds, else once on this thread without
 * entering OpenMP at all (same reason as above). BODY splits its work by omp_get_thread_num()
 * of omp_get_num_threads(), which are 0 of 1 outside a region, so one body serves both. */
#define CIGL_PARALLEL_IF(cond, ...)                                                             \
    do {                                                                                       \
        if (cond) {                                                                            \
            _Pragma("omp parallel") { __VA_ARGS__; }                                           \
        } else {                                                                               \
            __VA_ARGS__;                                                                       \
        }                                                                                      \
    } while (0)

#endif
