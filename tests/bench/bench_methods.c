/* Time per training step of each sparse method relative to dense on the same model, in one
 * run (issue: sparse training methods). Also the cost of one mask update, amortised over the
 * default interval. Medians of several repetitions; random inputs (no dataset needed). */
#include "bench_common.h"
#include "cigl/method.h"
#include "cigl/rng.h"
#include "cigl/sparse.h"

#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Median seconds per step over `reps` blocks of `steps` steps; step indices avoid updates. */
static double time_steps(Bench *b, int reps, int steps)
{
    double t[32];
    long step = 1000; /* done = 1001.. : no multiple of 100 inside a block of < 99 steps */
    for (int r = 0; r < reps; r++) {
        const double t0 = bench_now();
        for (int i = 0; i < steps; i++) {
            int correct;
            method_train_step(&b->s, &b->m, &b->opt, b->x, b->y, b->batch, 1.0f / b->batch,
                              0.01, NULL, step + i, b->dl, &correct);
        }
        t[r] = (bench_now() - t0) / steps;
        step += 200;
    }
    qsort(t, (size_t)reps, sizeof(double), bench_cmp_double);
    return t[reps / 2];
}

int main(int argc, char **argv)
{
    int threads = 2, reps = 7, batch = 128;
    const char *models[] = {"mlp", "resnet20"};
    int first_model = 0, last_model = 1;
    const char *only = NULL; /* --method NAME: dense, rigl and that one (profiling) */
    const char *kernels = "dense"; /* --kernels: the masked dense path unless asked */
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        if (!strcmp(argv[i], "--reps")) reps = atoi(argv[i + 1]);
        if (!strcmp(argv[i], "--model")) { /* one of them only (profiling) */
            first_model = last_model = !strcmp(argv[i + 1], "resnet20");
        }
        if (!strcmp(argv[i], "--method")) only = argv[i + 1];
        if (!strcmp(argv[i], "--kernels")) kernels = argv[i + 1];
    }
    if (reps > 31) reps = 31;
    openblas_set_num_threads(threads);
    omp_set_num_threads(threads);
    const char *methods[] = {"dense", "static", "set", "rigl", "cigl", "rigl-wdp"};
    const int mode = sparse_kernels_parse(kernels);
    if (mode < 0) {
        fprintf(stderr, "bench_methods: unknown --kernels '%s' (auto, dense, sparse)\n", kernels);
        return 2;
    }
    printf("# method step time relative to dense, batch %d, %d threads, sparsity 0.9, --kernels "
           "%s, median of %d\n", batch, threads, kernels, reps);
    printf("%-9s %-9s %12s %10s\n", "model", "method", "ms/step", "vs dense");
    for (int mi = first_model; mi <= last_model; mi++) {
        const int steps = mi == 0 ? 40 : 4;
        double dense = 0, rigl = 0;
        for (int k = 0; k < 6; k++) {
            if (only && k > 0 && strcmp(methods[k], only) && strcmp(methods[k], "rigl")) continue;
            Bench b;
            if (bench_open(&b, models[mi], (Shape){1, 28, 28}, methods[k], 0.9, batch, 0)) return 1;
            /* dense is the baseline computed densely whatever the choice (its mask is all 1s) */
            if (sparse_model_setup(&b.m, k == 0 ? KERNELS_DENSE : (KernelsMode)mode, b.s.mask))
                return 1;
            time_steps(&b, 1, steps); /* warm-up */
            const double t = time_steps(&b, reps, steps);
            if (k == 0) dense = t;
            if (!strcmp(methods[k], "rigl")) rigl = t;
            printf("%-9s %-9s %12.3f %10.3f%s\n", models[mi], methods[k], 1e3 * t, t / dense,
                   !strcmp(methods[k], "cigl") && rigl > 0 ? "" : "");
            if (!strcmp(methods[k], "cigl"))
                printf("BENCH {\"model\":\"%s\",\"cigl_vs_rigl\":%.4f}\n", models[mi], t / rigl);
            if (!strcmp(methods[k], "rigl")) {
                /* one mask update (drop, grow, bookkeeping) against the step time */
                double u[32];
                for (int r = 0; r < reps; r++) {
                    int correct;
                    const double t1 = bench_now();
                    method_train_step(&b.s, &b.m, &b.opt, b.x, b.y, batch, 1.0f / batch, 0.01,
                                      NULL, 99 + 100 * r, b.dl, &correct); /* an update step */
                    u[r] = (bench_now() - t1) - t; /* minus the median ordinary step */
                }
                qsort(u, (size_t)reps, sizeof(double), bench_cmp_double);
                printf("%-9s %-9s %12.3f ms per mask update = %.3f%% of training time at "
                       "interval 100\n", models[mi], "update", 1e3 * u[reps / 2],
                       100 * u[reps / 2] / (100 * t));
            }
            printf("BENCH {\"model\":\"%s\",\"method\":\"%s\",\"ms_per_step\":%.4f,"
                   "\"vs_dense\":%.4f}\n", models[mi], methods[k], 1e3 * t, t / dense);
            bench_close(&b);
        }
    }
    return 0;
}
