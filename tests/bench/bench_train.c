/* bench_train: training-step throughput of cigl's models, this machine's sgemm peak, and the
 * share of that peak the conv and linear layers reach.
 *
 * For each model (input 1x28x28 unless --image, 10 classes unless --classes, random normalised
 * inputs and labels) one training step is model_forward (train mode) + softmax_xent +
 * model_backward + sgd_step (momentum 0.9, Nesterov, weight decay 5e-4): the dense core of
 * src/train.c's train_step (what method_forward_backward + sgd_step do for dense training),
 * without data loading. With --method the step is method_train_step instead, the whole method
 * (masks, random masks, the --kernels choice) as `cigl train` runs it, with no mask update
 * inside the timed steps. After warm-up, a block of steps lasting at least --min-time seconds is
 * timed --reps times; the median block time per step gives images/second. The step line also
 * carries the process's peak RSS, so one model and method per process gives its memory.
 *
 * The per-layer phase replays the same step with a clock around every layer's forward and
 * backward (model_forward_layer/model_backward_layer, the pieces of model_forward/backward),
 * medians over --reps replays. Conv and linear layers get GFLOP/s from their GEMM FLOPs:
 * forward 2*N*OC*OH*OW*C*k*k (linear 2*N*in*out); backward the weight-gradient GEMM of the same
 * size plus the input-gradient GEMM when the layer has an input gradient to produce. The conv
 * detail phase times each conv layer's pieces on the same shapes (im2col, the three sgemm calls,
 * col2im) so that GEMM time can be told apart from data movement.
 *
 * Every measurement is printed as one line "BENCH {json}" on stdout (tests/bench/run.sh reads
 * them); other lines are for people. */
#include "cigl/conv.h"
#include "cigl/conv_backend.h"
#include "cigl/loss.h"
#include "cigl/model.h"
#include "cigl/optim.h"
#include "cigl/rng.h"
#include "cigl/sparse.h"
#include "bench_common.h"
#include "bench_dense.h"

#include <cblas.h>
#ifdef CIGL_ONEDNN
#include <dnnl.h>
#endif
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define MAX_REPS 101

typedef struct {
    int threads, batch, reps, layer_reps;
    double min_time;        /* seconds per timed block of steps */
    char models[256];
    int do_peak, do_models, do_layers, do_detail;
    double peak_gflops;     /* given with --peak, or measured */
    int peak_sizes[4], n_peak_sizes;
    Shape image;            /* model input (--image CxHxW) */
    int classes;
    int warmup;             /* untimed steps before the timed blocks */
    char method[16];        /* --method: time method_train_step; "" = the dense core */
    double sparsity;
    char kernels[16];       /* --kernels, with --method */
} Opts;

static double minimum(const double *v, int n)
{
    double m = v[0];
    for (int i = 1; i < n; i++) m = v[i] < m ? v[i] : m;
    return m;
}

/* ---------------------------------------------------------------- sgemm peak */

static void fill_uniform(float *p, size_t n, uint64_t step)
{
    for (size_t i = 0; i < n; i++) p[i] = (float)rng_uniform(7, RNG_INIT, step, i) - 0.5f;
}

/* One n x n x n sgemm C = A B by the library named: OpenBLAS (what cigl's linear layers and
 * its own conv kernels call) or oneDNN's dnnl_sgemm (built with oneDNN; its AVX-512 kernels,
 * the instruction set oneDNN's convolutions use, where Debian's OpenBLAS runs its Haswell AVX2
 * kernel on this CPU). */
static void sgemm_by(int lib, int n, const float *a, const float *b, float *c)
{
#ifdef CIGL_ONEDNN
    if (lib == 1) {
        dnnl_sgemm('N', 'N', n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        return;
    }
#endif
    (void)lib;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
}

/* Median GFLOP/s of C = A B on n x n matrices, each rep timing enough calls to last ~0.15 s. */
static double bench_sgemm(int lib, int n, int reps, double *min_gflops_time)
{
    const size_t nn = (size_t)n * n;
    float *a = malloc(sizeof(float) * nn), *b = malloc(sizeof(float) * nn),
          *c = malloc(sizeof(float) * nn);
    if (!a || !b || !c) {
        fprintf(stderr, "bench_train: out of memory for sgemm %d\n", n);
        exit(1);
    }
    fill_uniform(a, nn, 1);
    fill_uniform(b, nn, 2);
    memset(c, 0, sizeof(float) * nn);
    double t0 = bench_now();
    sgemm_by(lib, n, a, b, c);
    const double one = bench_now() - t0;
    int calls = (int)ceil(0.15 / (one > 1e-6 ? one : 1e-6));
    if (calls < 1) calls = 1;
    double t[MAX_REPS];
    for (int r = 0; r < reps; r++) {
        t0 = bench_now();
        for (int i = 0; i < calls; i++) sgemm_by(lib, n, a, b, c);
        t[r] = (bench_now() - t0) / calls;
    }
    free(a);
    free(b);
    free(c);
    const double flop = 2.0 * n * (double)n * n;
    *min_gflops_time = flop / minimum(t, reps) * 1e-9;
    return flop / bench_median_of(t, reps) * 1e-9;
}

/* The GEMM peak the conv+linear share is measured against: the best median over sizes and
 * over the GEMM libraries in the build (oneDNN's convolutions run AVX-512 kernels, so against
 * OpenBLAS's AVX2 peak alone they showed more than 100%). */
static double measure_peak(const Opts *o)
{
    static const char *const libs[2] = {"openblas", "onednn"};
    double best = 0;
#ifdef CIGL_ONEDNN
    const int n_libs = 2;
#else
    const int n_libs = 1;
#endif
    for (int lib = 0; lib < n_libs; lib++)
        for (int i = 0; i < o->n_peak_sizes; i++) {
            double best_rep;
            const double g = bench_sgemm(lib, o->peak_sizes[i], o->reps, &best_rep);
            printf("  sgemm %-8s %5d x %-5d  median %7.1f GFLOP/s  (best rep %.1f)\n", libs[lib],
                   o->peak_sizes[i], o->peak_sizes[i], g, best_rep);
            printf("BENCH {\"kind\":\"sgemm\",\"lib\":\"%s\",\"n\":%d,\"threads\":%d,\"reps\":%d,"
                   "\"gflops\":%.2f,\"best_gflops\":%.2f}\n", libs[lib], o->peak_sizes[i],
                   o->threads, o->reps, g, best_rep);
            if (g > best) best = g;
        }
    printf("BENCH {\"kind\":\"peak\",\"threads\":%d,\"gflops\":%.2f}\n", o->threads, best);
    fflush(stdout);
    return best;
}

/* ---------------------------------------------------------------- models */

/* Timing of one step, split by layer. */
typedef struct {
    double *fwd, *bwd;      /* per layer */
    double loss, zero, sgd; /* softmax_xent; model_seed_backward (it zeroed every activation
                             * gradient before their first writers stored them); sgd_step */
} StepTimes;

/* model_forward + softmax_xent + model_backward with a clock around each piece, through the
 * per-layer calls those are made of (check_replay verifies that they agree). */
static void forward_backward_timed(DenseBench *b, StepTimes *st)
{
    Model *m = &b->m;
    const int n = b->n;
    const LayerCtx ctx = model_ctx(m, m->params, n, 1);
    double t0;
    for (int i = 0; i < m->n_layers; i++) {
        t0 = bench_now();
        model_forward_layer(m, &ctx, i, b->x);
        st->fwd[i] = bench_now() - t0;
    }
    const int last = m->n_layers - 1;
    t0 = bench_now();
    softmax_xent(m->act[last], b->y, n, m->classes, 0.0, 1.0f / (float)n, b->dlogits, NULL);
    st->loss = bench_now() - t0;
    t0 = bench_now();
    model_seed_backward(m, b->dlogits, n);
    st->zero = bench_now() - t0;
    for (int i = last; i >= 0; i--) {
        t0 = bench_now();
        model_backward_layer(m, &ctx, i, b->x);
        st->bwd[i] = bench_now() - t0;
    }
}

static void train_step_timed(DenseBench *b, StepTimes *st)
{
    forward_backward_timed(b, st);
    const double t0 = bench_now();
    sgd_step(&b->opt, b->m.params, b->m.grads, b->m.n_params, DENSE_BENCH_LR, NULL);
    st->sgd = bench_now() - t0;
}

/* The per-layer replay must compute what model_forward/model_backward compute (their pieces,
 * called one by one): same gradients, bit for bit, from the same parameters. Returns 0 if so. */
static int check_replay(DenseBench *b)
{
    Model *m = &b->m;
    const size_t np = m->n_params;
    float *g = malloc(sizeof(float) * np), *stats = malloc(sizeof(float) * (m->n_bn_stats + 1));
    double *f1 = malloc(sizeof(double) * m->n_layers), *b1 = malloc(sizeof(double) * m->n_layers);
    if (!g || !stats || !f1 || !b1) exit(1);
    memcpy(stats, m->bn_stats, sizeof(float) * m->n_bn_stats);
    const float *logits = model_forward(m, m->params, b->x, b->n, 1);
    softmax_xent(logits, b->y, b->n, m->classes, 0.0, 1.0f / (float)b->n, b->dlogits, NULL);
    model_backward(m, m->params, b->x, b->dlogits, b->n);
    memcpy(g, m->grads, sizeof(float) * np);
    memcpy(m->bn_stats, stats, sizeof(float) * m->n_bn_stats);
    StepTimes st = {f1, b1, 0, 0, 0};
    forward_backward_timed(b, &st);
    size_t bad = 0;
    for (size_t i = 0; i < np; i++) bad += memcmp(&g[i], &m->grads[i], sizeof(float)) != 0;
    if (bad)
        fprintf(stderr, "bench_train: %s: the per-layer replay's gradients differ from "
                "model_backward's in %zu of %zu entries; do model_forward/model_backward still "
                "call only their per-layer pieces (src/model.c)? "
                "Per-layer numbers are not trustworthy.\n", m->name, bad, np);
    free(g);
    free(stats);
    free(f1);
    free(b1);
    return bad != 0;
}

/* GEMM FLOPs of a conv or linear layer's forward and backward at batch n (0 for others). */
static void layer_flops(const Layer *l, int n, double *fwd, double *bwd)
{
    *fwd = *bwd = 0;
    if (l->kind == LAYER_CONV2D)
        *fwd = 2.0 * n * l->y.c * l->y.h * l->y.w * (double)l->x.c * l->k * l->k;
    else if (l->kind == LAYER_LINEAR)
        *fwd = 2.0 * n * (double)shape_numel(l->x) * l->out_features;
    else
        return;
    /* weight gradient, plus the input gradient unless the layer reads the model input */
    *bwd = *fwd * (l->in < 0 ? 1.0 : 2.0);
}

static const char *kind_label(LayerKind k)
{
    switch (k) {
    case LAYER_CONV2D: return "conv";
    case LAYER_LINEAR: return "linear";
    case LAYER_BATCHNORM: return "bn";
    case LAYER_RELU: return "relu";
    case LAYER_MAXPOOL: case LAYER_GLOBAL_AVGPOOL: return "pool";
    case LAYER_ADD: return "add";
    default: return "other";
    }
}

static const char *const kind_labels[] = {"conv", "linear", "bn", "relu", "pool", "add", "other"};
#define N_KIND_LABELS 7

static int kind_index(LayerKind k)
{
    const char *s = kind_label(k);
    for (int i = 0; i < N_KIND_LABELS; i++)
        if (!strcmp(s, kind_labels[i])) return i;
    return N_KIND_LABELS - 1;
}

/* Per-layer medians of --layer-reps instrumented steps, the conv+linear GFLOP/s they imply and
 * the time by layer kind, against the step time step_s measured without instrumentation. */
static void bench_layers(DenseBench *b, const Opts *o, double step_s)
{
    Model *m = &b->m;
    const int L = m->n_layers, R = o->layer_reps;
    double *fwd = calloc((size_t)L * R, sizeof(double)), *bwd = calloc((size_t)L * R, sizeof(double));
    double loss[MAX_REPS], zero[MAX_REPS], sgd[MAX_REPS], tot[MAX_REPS];
    if (!fwd || !bwd) exit(1);
    const int replay_ok = check_replay(b) == 0;
    double *f1 = malloc(sizeof(double) * L), *b1 = malloc(sizeof(double) * L);
    for (int r = 0; r < R; r++) {
        StepTimes st = {f1, b1, 0, 0, 0};
        train_step_timed(b, &st);
        double sum = st.loss + st.zero + st.sgd;
        for (int i = 0; i < L; i++) {
            fwd[(size_t)i * R + r] = f1[i];
            bwd[(size_t)i * R + r] = b1[i];
            sum += f1[i] + b1[i];
        }
        loss[r] = st.loss;
        zero[r] = st.zero;
        sgd[r] = st.sgd;
        tot[r] = sum;
    }
    double kind_ms[N_KIND_LABELS] = {0};
    double gf = 0, gt = 0, gff = 0, gft = 0, gbf = 0, gbt = 0;
    printf("  %-26s %-7s %-22s %9s %9s %8s %8s\n", "layer", "kind", "shape (in -> out)",
           "fwd ms", "bwd ms", "fwd GF/s", "bwd GF/s");
    for (int i = 0; i < L; i++) {
        const Layer *l = &m->layers[i];
        const double tf = bench_median_of(fwd + (size_t)i * R, R), tb = bench_median_of(bwd + (size_t)i * R, R);
        double ff, fb;
        layer_flops(l, b->n, &ff, &fb);
        kind_ms[kind_index(l->kind)] += 1e3 * (tf + tb);
        char shape[64];
        snprintf(shape, sizeof(shape), "%dx%dx%d->%dx%dx%d", l->x.c, l->x.h, l->x.w, l->y.c,
                 l->y.h, l->y.w);
        printf("BENCH {\"kind\":\"layer\",\"impl\":\"cigl\",\"model\":\"%s\",\"index\":%d,"
               "\"layer\":\"%s\",\"type\":\"%s\",\"shape\":\"%s\",\"k\":%d,\"stride\":%d,"
               "\"fwd_ms\":%.4f,\"bwd_ms\":%.4f,\"fwd_gflop\":%.5f,\"bwd_gflop\":%.5f}\n",
               m->name, i, l->name, l->ops->kind_name, shape, l->k, l->stride, 1e3 * tf,
               1e3 * tb, ff * 1e-9, fb * 1e-9);
        if (ff > 0) {
            gf += ff + fb;
            gt += tf + tb;
            gff += ff;
            gft += tf;
            gbf += fb;
            gbt += tb;
            printf("  %-26s %-7s %-22s %9.3f %9.3f %8.1f %8.1f\n", l->name, kind_label(l->kind),
                   shape, 1e3 * tf, 1e3 * tb, ff / tf * 1e-9, fb / tb * 1e-9);
        }
    }
    const double other_ms[3] = {1e3 * bench_median_of(loss, R), 1e3 * bench_median_of(zero, R), 1e3 * bench_median_of(sgd, R)};
    const double sum_ms = 1e3 * bench_median_of(tot, R);
    const double gflops = gf / gt * 1e-9;
    printf("BENCH {\"kind\":\"gemm_layers\",\"impl\":\"cigl\",\"model\":\"%s\",\"batch\":%d,"
           "\"replay_ok\":%d,\"threads\":%d,\"gflop\":%.4f,\"ms\":%.3f,\"gflops\":%.2f,\"fwd_gflops\":%.2f,"
           "\"bwd_gflops\":%.2f", m->name, b->n, replay_ok, o->threads, gf * 1e-9, gt * 1e3, gflops,
           gff / gft * 1e-9, gbf / gbt * 1e-9);
    if (o->peak_gflops > 0) printf(",\"peak_frac\":%.4f", gflops / o->peak_gflops);
    printf("}\n");
    printf("BENCH {\"kind\":\"breakdown\",\"impl\":\"cigl\",\"model\":\"%s\"", m->name);
    for (int k = 0; k < N_KIND_LABELS; k++) printf(",\"%s_ms\":%.3f", kind_labels[k], kind_ms[k]);
    printf(",\"loss_ms\":%.3f,\"zero_dact_ms\":%.3f,\"sgd_ms\":%.3f,\"sum_ms\":%.3f,"
           "\"step_ms\":%.3f}\n", other_ms[0], other_ms[1], other_ms[2], sum_ms, 1e3 * step_s);
    printf("  conv+linear: %.3f GFLOP per step in %.1f ms = %.1f GFLOP/s (fwd %.1f, bwd %.1f)",
           gf * 1e-9, gt * 1e3, gflops, gff / gft * 1e-9, gbf / gbt * 1e-9);
    if (o->peak_gflops > 0) printf(" = %.1f%% of sgemm peak", 100 * gflops / o->peak_gflops);
    printf("\n  time by kind (ms, fwd+bwd):");
    for (int k = 0; k < N_KIND_LABELS; k++)
        if (kind_ms[k] > 0) printf(" %s %.1f", kind_labels[k], kind_ms[k]);
    printf(" | loss %.2f, zero dact %.2f, sgd %.2f | sum %.1f vs step %.1f\n", other_ms[0],
           other_ms[1], other_ms[2], sum_ms, 1e3 * step_s);
    free(fwd);
    free(bwd);
    free(f1);
    free(b1);
}

/* Each conv layer's pieces on its own shapes, as src/layer_conv.c chunks them: im2col, the
 * forward GEMM, the weight-gradient and input-gradient GEMMs and col2im. What the layer time
 * has beyond these is layout copies (chunk <-> NCHW) and bias. */
static void bench_conv_detail(DenseBench *b, const Opts *o)
{
    Model *m = &b->m;
    const int R = o->layer_reps, n = b->n;
    size_t max_in = 0;
    for (int i = 0; i < m->n_layers; i++)
        if (m->layers[i].kind == LAYER_CONV2D && shape_numel(m->layers[i].x) > max_in)
            max_in = shape_numel(m->layers[i].x);
    float *dx = calloc((size_t)n * max_in, sizeof(float));
    if (!dx) exit(1);
    printf("  %-26s %6s %6s %6s | %8s %8s %8s %8s %8s | %6s %6s %6s\n", "conv detail (ms)", "M",
           "N", "K", "im2col", "gemm_fw", "gemm_dw", "gemm_dx", "col2im", "fw GF", "dw GF",
           "dx GF");
    for (int i = 0; i < m->n_layers; i++) {
        const Layer *l = &m->layers[i];
        if (l->kind != LAYER_CONV2D) continue;
        const float *x = l->in < 0 ? b->x : m->act[l->in];
        const float *w = m->params + l->weight_off;
        float *dw = m->grads + l->weight_off;
        const int oc = l->y.c, kk = l->x.c * l->k * l->k, has_dx = l->in >= 0;
        const size_t ohw = (size_t)l->y.h * l->y.w, in_numel = shape_numel(l->x);
        const int chunk = (int)conv_chunk(l, n, m->workspace_floats);
        double t[5][MAX_REPS];
        for (int r = 0; r < R; r++) {
            double acc[5] = {0}, t0;
            memset(dx, 0, sizeof(float) * (size_t)n * in_numel);
            for (int b0 = 0; b0 < n; b0 += chunk) {
                const int nb = n - b0 < chunk ? n - b0 : chunk;
                const int ncols = (int)((size_t)nb * ohw);
                float *col = m->workspace, *mat = col + (size_t)kk * ncols;
                t0 = bench_now();
                im2col(x + (size_t)b0 * in_numel, nb, l->x, l->k, l->stride, l->pad, l->y.h,
                       l->y.w, col);
                acc[0] += bench_now() - t0;
                t0 = bench_now();
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, oc, ncols, kk, 1.0f, w,
                            kk, col, ncols, 0.0f, mat, ncols);
                acc[1] += bench_now() - t0;
                t0 = bench_now();
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, oc, kk, ncols, 1.0f, mat,
                            ncols, col, ncols, 0.0f, dw, kk);
                acc[2] += bench_now() - t0;
                if (has_dx) {
                    t0 = bench_now();
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, kk, ncols, oc, 1.0f, w,
                                kk, mat, ncols, 0.0f, col, ncols);
                    acc[3] += bench_now() - t0;
                    t0 = bench_now();
                    col2im_add(col, nb, l->x, l->k, l->stride, l->pad, l->y.h, l->y.w,
                               dx + (size_t)b0 * in_numel);
                    acc[4] += bench_now() - t0;
                }
            }
            for (int k = 0; k < 5; k++) t[k][r] = acc[k];
        }
        double med[5];
        for (int k = 0; k < 5; k++) med[k] = bench_median_of(t[k], R);
        const double flop = 2.0 * n * oc * (double)ohw * kk;
        const long cols = (long)n * (long)ohw;
        printf("BENCH {\"kind\":\"conv_detail\",\"impl\":\"cigl\",\"model\":\"%s\",\"layer\":\"%s\","
               "\"oc\":%d,\"kk\":%d,\"cols\":%ld,\"chunk\":%d,\"im2col_ms\":%.4f,"
               "\"gemm_fwd_ms\":%.4f,\"gemm_dw_ms\":%.4f,\"gemm_dx_ms\":%.4f,\"col2im_ms\":%.4f,"
               "\"gflop\":%.5f}\n", m->name, l->name, oc, kk, cols, chunk, 1e3 * med[0],
               1e3 * med[1], 1e3 * med[2], 1e3 * med[3], 1e3 * med[4], flop * 1e-9);
        printf("  %-26s %6d %6ld %6d | %8.3f %8.3f %8.3f %8.3f %8.3f | %6.1f %6.1f ", l->name, oc,
               cols, kk, 1e3 * med[0], 1e3 * med[1], 1e3 * med[2], 1e3 * med[3], 1e3 * med[4],
               flop / med[1] * 1e-9, flop / med[2] * 1e-9);
        if (has_dx) printf("%6.1f\n", flop / med[3] * 1e-9);
        else printf("%6s\n", "-");
    }
    free(dx);
}

/* Peak resident memory of this process so far, MiB (Linux: ru_maxrss is in KiB). */
static double peak_rss_mib(void)
{
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) ? 0 : (double)ru.ru_maxrss / 1024.0;
}

/* The step being timed: the dense core (DenseBench), or a method's whole step (Bench). */
typedef struct {
    DenseBench *dense;
    Bench *method;
    long step;
} Stepper;

static double stepper_step(Stepper *st)
{
    if (st->dense) return dense_bench_step(st->dense);
    Bench *b = st->method;
    int correct;
    return method_train_step(&b->s, &b->m, &b->opt, b->x, b->y, b->batch, 1.0f / (float)b->batch,
                             DENSE_BENCH_LR, NULL, st->step++, b->dl, &correct);
}

/* Opens the method's model (update interval 10^6: no mask update among the timed steps) on the
 * --kernels choice; *sparse_layers counts the conv/linear layers on the sparse kernels. */
static int open_method(Bench *b, const char *name, const Opts *o, int *sparse_layers,
                       int *prunable)
{
    const int mode = sparse_kernels_parse(o->kernels);
    if (mode < 0) {
        fprintf(stderr, "bench_train: unknown --kernels '%s' (auto, dense, sparse)\n", o->kernels);
        return 1;
    }
    if (bench_open(b, name, o->image, o->classes, o->method, o->sparsity, o->batch, 1000000) ||
        sparse_model_setup(&b->m, (KernelsMode)mode, b->s.mask))
        return 1;
    char choice[4096];
    *sparse_layers = *prunable = 0;
    if (sparse_choice_format(&b->m, choice, sizeof choice) > 0) {
        char *save = NULL;
        for (char *k = strtok_r(choice, ",", &save); k; k = strtok_r(NULL, ",", &save)) {
            (*prunable)++;
            *sparse_layers += !strcmp(k, "sparse");
        }
    }
    return 0;
}

static int bench_model(const char *name, const Opts *o)
{
    DenseBench b;
    Bench mb;
    Stepper st = {NULL, NULL, 1};
    int sparse_layers = 0, prunable = 0;
    size_t n_params;
    if (o->method[0]) {
        if (open_method(&mb, name, o, &sparse_layers, &prunable)) {
            bench_close(&mb);
            return 1;
        }
        st.method = &mb;
        n_params = mb.m.n_params;
    } else {
        if (dense_bench_init(&b, name, o->image, o->classes, o->batch)) {
            dense_bench_free(&b);
            return 1;
        }
        st.dense = &b;
        n_params = b.m.n_params;
    }
    const char *method = o->method[0] ? o->method : "dense";
    const double sparsity = strcmp(method, "dense") ? o->sparsity : 0;
    printf("%s: %zu parameters, input %dx%dx%d, batch %d, %d threads, %s", name, n_params,
           o->image.c, o->image.h, o->image.w, o->batch, o->threads, method);
    if (sparsity > 0) printf(" %.2f, --kernels %s (%d of %d layers sparse)", sparsity, o->kernels,
                             sparse_layers, prunable);
    printf(", conv backend %s\n", conv_backend_name(conv_backend_get()));
    fflush(stdout);
    /* warm-up: first-touch of every buffer, OpenBLAS thread start-up, caches, oneDNN
     * primitives; the fastest warm-up step estimates the block length */
    double est = 0, t0;
    for (int w = 0; w < o->warmup; w++) {
        t0 = bench_now();
        stepper_step(&st);
        const double one = bench_now() - t0;
        if (w == 0 || one < est) est = one;
    }
    int steps = est > 0 ? (int)ceil(o->min_time / (est > 1e-6 ? est : 1e-6)) : 1;
    if (steps < 1) steps = 1;
    double t[MAX_REPS], loss = 0;
    for (int r = 0; r < o->reps; r++) {
        t0 = bench_now();
        for (int s = 0; s < steps; s++) loss = stepper_step(&st);
        t[r] = (bench_now() - t0) / steps;
    }
    const double med = bench_median_of(t, o->reps), best = minimum(t, o->reps), rss = peak_rss_mib();
    if (!isfinite(loss)) fprintf(stderr, "bench_train: %s: non-finite loss\n", name);
    printf("  step: median %.2f ms (best %.2f) over %d reps of %d steps = %.1f img/s; "
           "peak RSS %.0f MiB\n", 1e3 * med, 1e3 * best, o->reps, steps, o->batch / med, rss);
    printf("BENCH {\"kind\":\"step\",\"impl\":\"cigl\",\"model\":\"%s\",\"batch\":%d,"
           "\"threads\":%d,\"reps\":%d,\"steps_per_rep\":%d,\"median_ms\":%.4f,\"min_ms\":%.4f,"
           "\"img_per_s\":%.2f,\"loss\":%.5f,\"image\":\"%dx%dx%d\",\"classes\":%d,"
           "\"method\":\"%s\",\"sparsity\":%.4f,\"kernels\":\"%s\",\"sparse_layers\":%d,"
           "\"prunable_layers\":%d,\"conv_backend\":\"%s\",\"peak_rss_mib\":%.1f}\n", name,
           o->batch, o->threads, o->reps, steps, 1e3 * med, 1e3 * best, o->batch / med,
           loss / o->batch, o->image.c, o->image.h, o->image.w, o->classes, method, sparsity,
           o->method[0] ? o->kernels : "dense", sparse_layers, prunable,
           conv_backend_name(conv_backend_get()), rss);
    fflush(stdout);
    if (st.method) { /* the per-layer phases replay the dense core only */
        bench_close(&mb);
        return 0;
    }
    if (o->do_layers) bench_layers(&b, o, med);
    fflush(stdout);
    if (o->do_detail && o->do_layers) bench_conv_detail(&b, o);
    fflush(stdout);
    dense_bench_free(&b);
    return 0;
}

/* ---------------------------------------------------------------- command line */

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_train [--threads N] [--models a,b,...] [--reps R] [--batch B]\n"
            "                   [--min-time SECONDS] [--layer-reps R] [--peak GFLOPS]\n"
            "                   [--peak-sizes n,m] [--peak-only] [--no-peak] [--no-layers]\n"
            "                   [--no-detail] [--conv-backend own|onednn|auto]\n"
            "                   [--image CxHxW] [--classes K] [--warmup N]\n"
            "                   [--method NAME [--sparsity S] [--kernels auto|dense|sparse]]\n"
            "defaults: --threads 2 --models mlp,lenet5,resnet20 --reps 7 --batch 128\n"
            "          --min-time 0.3 --layer-reps 5 --peak-sizes 1024,2048\n"
            "          --image 1x28x28 --classes 10 --warmup 3 --sparsity 0.9 --kernels auto\n");
    exit(2);
}

static int parse_int(const char *s, int lo, int hi)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == 0 || *end || v < lo || v > hi) {
        fprintf(stderr, "bench_train: '%s' is not an integer in [%d, %d]\n", s, lo, hi);
        usage();
    }
    return (int)v;
}

int main(int argc, char **argv)
{
    Opts o = {.threads = 2, .batch = 128, .reps = 7, .layer_reps = 5, .min_time = 0.3,
              .do_peak = 1, .do_models = 1, .do_layers = 1, .do_detail = 1,
              .peak_sizes = {1024, 2048}, .n_peak_sizes = 2, .image = {1, 28, 28},
              .classes = 10, .warmup = 3, .sparsity = 0.9, .kernels = "auto"};
    snprintf(o.models, sizeof(o.models), "mlp,lenet5,resnet20");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEED_VALUE() do { if (!v) usage(); i++; } while (0)
        if (!strcmp(a, "--threads")) { NEED_VALUE(); o.threads = parse_int(v, 1, 1024); }
        else if (!strcmp(a, "--batch")) { NEED_VALUE(); o.batch = parse_int(v, 1, 65536); }
        else if (!strcmp(a, "--reps")) { NEED_VALUE(); o.reps = parse_int(v, 1, MAX_REPS); }
        else if (!strcmp(a, "--layer-reps")) { NEED_VALUE(); o.layer_reps = parse_int(v, 1, MAX_REPS); }
        else if (!strcmp(a, "--models")) {
            NEED_VALUE();
            if (strlen(v) >= sizeof(o.models)) usage();
            snprintf(o.models, sizeof(o.models), "%s", v);
        } else if (!strcmp(a, "--min-time")) {
            NEED_VALUE();
            o.min_time = atof(v);
            if (!(o.min_time >= 0 && o.min_time < 1e4)) usage();
        } else if (!strcmp(a, "--peak")) {
            NEED_VALUE();
            o.peak_gflops = atof(v);
            o.do_peak = 0;
        } else if (!strcmp(a, "--peak-sizes")) {
            NEED_VALUE();
            char buf[64], *save = NULL;
            snprintf(buf, sizeof(buf), "%s", v);
            o.n_peak_sizes = 0;
            for (char *s = strtok_r(buf, ",", &save); s && o.n_peak_sizes < 4;
                 s = strtok_r(NULL, ",", &save))
                o.peak_sizes[o.n_peak_sizes++] = parse_int(s, 16, 16384);
            if (!o.n_peak_sizes) usage();
        } else if (!strcmp(a, "--peak-only")) { o.do_models = 0; o.do_peak = 1; }
        else if (!strcmp(a, "--no-peak")) o.do_peak = 0;
        else if (!strcmp(a, "--no-layers")) o.do_layers = 0;
        else if (!strcmp(a, "--no-detail")) o.do_detail = 0;
        else if (!strcmp(a, "--classes")) { NEED_VALUE(); o.classes = parse_int(v, 2, 100000); }
        else if (!strcmp(a, "--warmup")) { NEED_VALUE(); o.warmup = parse_int(v, 0, 100); }
        else if (!strcmp(a, "--image")) {
            NEED_VALUE();
            if (sscanf(v, "%dx%dx%d", &o.image.c, &o.image.h, &o.image.w) != 3 ||
                o.image.c < 1 || o.image.c > 4 || o.image.h < 1 || o.image.w < 1 ||
                o.image.h > 4096 || o.image.w > 4096)
                usage();
        } else if (!strcmp(a, "--method")) {
            NEED_VALUE();
            if (strlen(v) >= sizeof(o.method)) usage();
            snprintf(o.method, sizeof(o.method), "%s", v);
        } else if (!strcmp(a, "--sparsity")) {
            NEED_VALUE();
            o.sparsity = atof(v);
            if (!(o.sparsity >= 0 && o.sparsity < 1)) usage();
        } else if (!strcmp(a, "--kernels")) {
            NEED_VALUE();
            if (strlen(v) >= sizeof(o.kernels)) usage();
            snprintf(o.kernels, sizeof(o.kernels), "%s", v);
        }
        else if (!strcmp(a, "--conv-backend")) { /* the per-layer split of either backend */
            NEED_VALUE();
            const int b = conv_backend_parse(v);
            if (b < 0 || conv_backend_set((ConvBackend)b)) usage();
        }
        else usage();
#undef NEED_VALUE
    }
    openblas_set_num_threads(o.threads);
    omp_set_num_threads(o.threads);
    printf("BENCH {\"kind\":\"env\",\"impl\":\"cigl\",\"threads\":%d,\"batch\":%d,\"reps\":%d,"
           "\"openblas_core\":\"%s\",\"openblas_config\":\"%s\"}\n", o.threads, o.batch, o.reps,
           openblas_get_corename(), openblas_get_config());
    printf("cigl bench: %d threads, OpenBLAS %s (%s)\n", o.threads, openblas_get_corename(),
           openblas_get_config());
    if (o.do_peak) o.peak_gflops = measure_peak(&o);
    if (!o.do_models) return 0;
    int failed = 0;
    char list[256], *save = NULL;
    snprintf(list, sizeof(list), "%s", o.models);
    for (char *name = strtok_r(list, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
        if (bench_model(name, &o)) {
            fprintf(stderr, "bench_train: cannot build model '%s'\n", name);
            failed = 1;
        }
    }
    return failed;
}
