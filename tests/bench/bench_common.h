/* What the benchmark programs share: a monotonic clock, medians, and one model with its method
 * state, optimiser and a random batch (no dataset needed). Header-only: each bench_*.c is built
 * as one program (Makefile: $(BUILD)/bench/%). */
#ifndef CIGL_BENCH_COMMON_H
#define CIGL_BENCH_COMMON_H

#include "cigl/method.h"
#include "cigl/rng.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static inline double bench_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static inline int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Sorts v and returns its median (the mean of the middle two for an even count). */
static inline double bench_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(double), bench_cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* The median of v[0..n) without reordering v (a sorted copy). */
static inline double bench_median_of(const double *v, int n)
{
    double *s = malloc(sizeof(double) * (size_t)n);
    if (!s) return v[0];
    memcpy(s, v, sizeof(double) * (size_t)n);
    const double m = bench_median(s, n);
    free(s);
    return m;
}

typedef struct {
    Model m;
    Sgd opt;
    MethodState s;
    float *x, *dl;
    int32_t *y;
    int batch;
    long step;
} Bench;

/* --draw-ahead for the methods that draw (bench_methods sets it; auto as the CLI) */
static const char *bench_draw_ahead = "auto";

/* A model of `method` at `sparsity` (ERK), SGD (momentum 0.9 Nesterov, wd 5e-4), CigL averaging
 * every 100 steps, a schedule of 100000 steps; update_interval 0 keeps the default (100).
 * Inputs of shape `in`, labels over `classes` classes. */
static inline int bench_open(Bench *b, const char *model, Shape in, int classes,
                             const char *method, double sparsity, int batch,
                             long update_interval)
{
    memset(b, 0, sizeof(*b));
    if (model_build(&b->m, model, in, classes, batch, 1)) return 1;
    Config c;
    config_defaults(&c);
    snprintf(c.method, sizeof(c.method), "%s", method);
    c.sparsity = sparsity;
    if (update_interval > 0) c.update_interval = update_interval;
    c.average_every = 100;
    c.threads = omp_get_max_threads(); /* as --threads sets them (the draw-ahead rule) */
    snprintf(c.draw_ahead, sizeof c.draw_ahead, "%s", bench_draw_ahead);
    sgd_init(&b->opt, &b->m, 0.9, 5e-4, 1, 0);
    if (method_init(&b->s, &c, &b->m, 100000, 1000)) return 1;
    b->batch = batch;
    const size_t numel = shape_numel(in);
    b->x = malloc(sizeof(float) * numel * (size_t)batch);
    b->dl = malloc(sizeof(float) * (size_t)classes * (size_t)batch);
    b->y = malloc(sizeof(int32_t) * (size_t)batch);
    if (!b->x || !b->dl || !b->y) return 1;
    for (size_t i = 0; i < numel * (size_t)batch; i++)
        b->x[i] = (float)rng_normal(1, RNG_AUGMENT, 0, i);
    for (int i = 0; i < batch; i++) b->y[i] = i % classes;
    return 0;
}

static inline void bench_close(Bench *b)
{
    method_free(&b->s);
    sgd_free(&b->opt);
    model_free(&b->m);
    free(b->x);
    free(b->dl);
    free(b->y);
}

#endif
