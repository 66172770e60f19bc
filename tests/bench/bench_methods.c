/* Time per training step of each sparse method relative to dense on the same model, in one
 * run (issue: sparse training methods). Also the cost of one mask update, amortised over the
 * default interval. The methods take turns within each repetition; ratios are medians of the
 * per-repetition ratios. Random inputs (no dataset needed). */
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

/* Seconds per step of one block of `steps` steps starting at *step (indices avoid updates:
 * blocks start 200 apart at 1000, so no multiple of 100 falls inside a block of < 99 steps). */
static double time_block(Bench *b, int steps, long *step)
{
    const double t0 = bench_now();
    for (int i = 0; i < steps; i++) {
        int correct;
        method_train_step(&b->s, &b->m, &b->opt, b->x, b->y, b->batch, 1.0f / b->batch, 0.01,
                          NULL, *step + i, b->dl, &correct);
    }
    *step += 200;
    return (bench_now() - t0) / steps;
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
        if (!strcmp(argv[i], "--draw-ahead")) bench_draw_ahead = argv[i + 1];
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
           "%s, --draw-ahead %s, median of %d\n", batch, threads, kernels, bench_draw_ahead, reps);
    printf("%-9s %-9s %12s %10s\n", "model", "method", "ms/step", "vs dense");
    enum { N_METHODS = 6 };
    for (int mi = first_model; mi <= last_model; mi++) {
        const int steps = mi == 0 ? 40 : 4;
        Bench b[N_METHODS];
        int on[N_METHODS] = {0};
        long step[N_METHODS];
        double t[N_METHODS][32], vs_dense[N_METHODS][32], vs_rigl[32];
        const int rigl = 3, cigl = 4;
        for (int k = 0; k < N_METHODS; k++) {
            on[k] = !only || k == 0 || k == rigl || !strcmp(methods[k], only);
            if (!on[k]) continue;
            if (bench_open(&b[k], models[mi], (Shape){1, 28, 28}, 10, methods[k], 0.9, batch, 0))
                return 1;
            /* dense is the baseline computed densely whatever the choice (its mask is all 1s) */
            if (sparse_model_setup(&b[k].m, k == 0 ? KERNELS_DENSE : (KernelsMode)mode,
                                   b[k].s.mask))
                return 1;
            step[k] = 1000;
            time_block(&b[k], steps, &step[k]); /* warm-up */
        }
        /* the methods take turns within every repetition, so that load from other processes
         * hits them alike; ratios are taken within a repetition, then their median */
        for (int r = 0; r < reps; r++) {
            for (int k = 0; k < N_METHODS; k++)
                if (on[k]) t[k][r] = time_block(&b[k], steps, &step[k]);
            for (int k = 0; k < N_METHODS; k++) vs_dense[k][r] = on[k] ? t[k][r] / t[0][r] : 0;
            vs_rigl[r] = on[cigl] ? t[cigl][r] / t[rigl][r] : 0;
        }
        double med[N_METHODS];
        for (int k = 0; k < N_METHODS; k++) {
            if (!on[k]) continue;
            med[k] = bench_median(t[k], reps);
            const double rel = bench_median(vs_dense[k], reps);
            printf("%-9s %-9s %12.3f %10.3f\n", models[mi], methods[k], 1e3 * med[k], rel);
            printf("BENCH {\"model\":\"%s\",\"method\":\"%s\",\"ms_per_step\":%.4f,"
                   "\"vs_dense\":%.4f}\n", models[mi], methods[k], 1e3 * med[k], rel);
        }
        if (on[cigl]) {
            const double cr = bench_median(vs_rigl, reps);
            printf("%-9s %-9s %12s %10.3f (median of the per-repetition ratios)\n", models[mi],
                   "cigl/rigl", "", cr);
            printf("BENCH {\"model\":\"%s\",\"cigl_vs_rigl\":%.4f}\n", models[mi], cr);
        }
        /* one mask update (drop, grow, bookkeeping) against the median ordinary step */
        double u[32];
        for (int r = 0; r < reps; r++) {
            int correct;
            const double t1 = bench_now();
            method_train_step(&b[rigl].s, &b[rigl].m, &b[rigl].opt, b[rigl].x, b[rigl].y, batch,
                              1.0f / batch, 0.01, NULL, 99 + 100 * r, b[rigl].dl,
                              &correct); /* an update step */
            u[r] = (bench_now() - t1) - med[rigl];
        }
        const double um = bench_median(u, reps);
        printf("%-9s %-9s %12.3f ms per mask update = %.3f%% of training time at interval 100\n",
               models[mi], "update", 1e3 * um, 100 * um / (100 * med[rigl]));
        for (int k = 0; k < N_METHODS; k++)
            if (on[k]) bench_close(&b[k]);
    }
    return 0;
}
