/* Sparse kernels against dense kernels on the same masked model (issue: truly sparse compute).
 *
 * Per model and sparsity: a RigL model (ERK masks, no mask update inside the timed steps), one
 * training step (method_train_step: forward, loss, backward, SGD) and one inference pass
 * (model_forward, eval mode) timed with --kernels dense, sparse and auto, interleaved
 * dense/sparse/auto within each repetition so that load from other processes hits all three;
 * medians of --reps blocks of at least --min-time seconds. With --layers, each conv and linear
 * layer of the models alone (forward + backward) at densities 0.5%..50%, dense vs sparse: the
 * crossover densities the auto rule's thresholds come from (include/cigl/sparse_rule.h).
 * --conv-backend picks the dense convolutions compared against (default auto: oneDNN when
 * built in, as `cigl train` resolves it), so "dense" is the dense path a user actually gets.
 * Every measurement is also a `BENCH {json}` line (kinds: sparse_env, sparse_step,
 * sparse_layer). --infer-only skips the training steps (to profile inference alone). Random
 * inputs; no dataset needed. */
#include "bench_common.h"
#include "cigl/conv_backend.h"
#include "cigl/method.h"
#include "cigl/model_compact.h"
#include "cigl/model_io.h"
#include "cigl/rng.h"
#include "cigl/sparse.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static Shape image; /* --image CxHxW: every model's input (default: per model below) */

static Shape model_input(const char *model)
{
    if (image.c) return image;
    return strcmp(model, "mlp") && strcmp(model, "lenet5") ? (Shape){3, 32, 32}
                                                            : (Shape){1, 28, 28};
}

/* "12.34 ms" or "n/a" (a mode or pass left untimed by --only / --infer-only: NAN) */
static const char *ms_text(double s, char *buf, size_t len)
{
    if (isnan(s)) snprintf(buf, len, "%8s   ", "n/a");
    else snprintf(buf, len, "%8.2f ms", 1e3 * s);
    return buf;
}

/* Seconds per call of one block: training steps (infer 0) or inference passes. */
static double time_block(Bench *b, int infer, double min_time)
{
    int iters = 0;
    const double t0 = bench_now();
    double t;
    do {
        if (infer) {
            model_forward(&b->m, b->m.params, b->x, b->batch, 0);
        } else {
            int correct;
            method_train_step(&b->s, &b->m, &b->opt, b->x, b->y, b->batch, 1.0f / b->batch, 0.01,
                              NULL, b->step++, b->dl, &correct);
        }
        iters++;
        t = bench_now() - t0;
    } while (t < min_time);
    return t / iters;
}

static size_t active_weights(const Bench *b)
{
    size_t a = 0;
    for (int t = 0; t < b->m.n_tensors; t++) {
        const ParamTensor *p = &b->m.tensors[t];
        if (!p->prunable) continue;
        for (size_t i = p->off; i < p->off + p->len; i++) a += b->s.mask[i];
    }
    return a;
}

static int only_mode = -1; /* --only dense|sparse|auto: time one kind (for profilers) */
static int sizes_only;     /* --sizes-only: model file sizes, no timing */
static int infer_only;     /* --infer-only: inference passes only (for profilers) */

static void bench_model(const char *model, const char *method, double sparsity, int batch,
                        int reps, double min_time)
{
    Bench b;
    /* update interval 10^6: no mask update inside the timed steps */
    if (bench_open(&b, model, model_input(model), 10, method, sparsity, batch, 1000000)) {
        fprintf(stderr, "bench_sparse: cannot build %s\n", model);
        exit(1);
    }
    static const KernelsMode modes[3] = {KERNELS_DENSE, KERNELS_SPARSE, KERNELS_AUTO};
    static const char *const names[3] = {"dense", "sparse", "auto"};
    double train[3][64], infer[3][64];
    char choice[3][512];
    for (int k = 0; k < 3 && !sizes_only; k++) { /* warm-up: two steps and one pass per mode */
        if (only_mode >= 0 && (int)modes[k] != only_mode) continue;
        sparse_model_setup(&b.m, modes[k], b.s.mask);
        sparse_choice_format(&b.m, choice[k], sizeof(choice[k]));
        if (!infer_only) {
            time_block(&b, 0, 0);
            time_block(&b, 0, 0);
        }
        time_block(&b, 1, 0);
    }
    if (reps > 64) reps = 64;
    for (int r = 0; r < reps && !sizes_only; r++)
        for (int k = 0; k < 3; k++) {
            if (only_mode >= 0 && (int)modes[k] != only_mode) {
                train[k][r] = infer[k][r] = NAN;
                continue;
            }
            sparse_model_setup(&b.m, modes[k], b.s.mask);
            train[k][r] = infer_only ? NAN : time_block(&b, 0, min_time);
            infer[k][r] = time_block(&b, 1, min_time);
        }
    double tm[3], im[3];
    for (int k = 0; k < 3; k++) {
        tm[k] = bench_median(train[k], reps);
        im[k] = bench_median(infer[k], reps);
    }
    /* the model file and its compact form (cigl compact), sizes in bytes */
    char dense_path[256], compact_path[256];
    const char *tmpdir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(dense_path, sizeof(dense_path), "%s/bench_sparse_%d.h5", tmpdir, (int)getpid());
    snprintf(compact_path, sizeof(compact_path), "%s/bench_sparse_%d_c.h5", tmpdir, (int)getpid());
    ModelFileExtras ex;
    memset(&ex, 0, sizeof(ex));
    ex.mask = b.s.mask;
    ex.method = method;
    ex.cfg = &b.s.cfg;
    ex.total_steps = 100000;
    long long dense_bytes = -1, compact_bytes = -1;
    if (model_save(&b.m, b.m.params, dense_path, &ex) ||
        model_compact(dense_path, compact_path, &dense_bytes, &compact_bytes))
        fprintf(stderr, "bench_sparse: writing the model files in %s failed\n", tmpdir);
    unlink(dense_path);
    unlink(compact_path);
    sparse_model_setup(&b.m, KERNELS_AUTO, b.s.mask);
    sparse_choice_format(&b.m, choice[2], sizeof(choice[2]));
    if (sizes_only) {
        printf("%-9s sparsity %.2f: final.h5 %lld bytes, compact %lld bytes (%.2f%%)\n", model,
               sparsity, dense_bytes, compact_bytes,
               dense_bytes > 0 ? 100.0 * (double)compact_bytes / (double)dense_bytes : 0.0);
        printf("BENCH {\"kind\":\"sparse_size\",\"model\":\"%s\",\"sparsity\":%.4f,"
               "\"dense_file_bytes\":%lld,\"compact_file_bytes\":%lld,\"auto_choice\":\"%s\"}\n",
               model, sparsity, dense_bytes, compact_bytes, choice[2]);
        bench_close(&b);
        return;
    }
    const size_t prunable = model_prunable_count(&b.m);
    const double measured = 1.0 - (double)active_weights(&b) / (double)prunable;
    char t[6][16];
    printf("%-9s sparsity %.2f (measured %.4f): train step dense %s, sparse %s (x%.2f), auto %s "
           "(x%.2f); inference dense %s, sparse %s (x%.2f), auto %s (x%.2f)\n", model, sparsity,
           measured, ms_text(tm[0], t[0], 16), ms_text(tm[1], t[1], 16), tm[0] / tm[1],
           ms_text(tm[2], t[2], 16), tm[0] / tm[2], ms_text(im[0], t[3], 16),
           ms_text(im[1], t[4], 16), im[0] / im[1], ms_text(im[2], t[5], 16), im[0] / im[2]);
    printf("%-9s sparsity %.2f: final.h5 %lld bytes, compact %lld bytes (%.2f%%); auto chose %s\n",
           model, sparsity, dense_bytes, compact_bytes,
           dense_bytes > 0 ? 100.0 * (double)compact_bytes / (double)dense_bytes : 0.0, choice[2]);
    printf("BENCH {\"kind\":\"sparse_step\",\"impl\":\"cigl\",\"model\":\"%s\",\"method\":\"%s\","
           "\"sparsity\":%.4f,\"sparsity_measured\":%.6f,\"batch\":%d,\"reps\":%d",
           model, method, sparsity, measured, batch, reps);
    for (int k = 0; k < 3; k++) { /* untimed: null */
        if (isnan(tm[k])) printf(",\"train_%s_ms\":null", names[k]);
        else printf(",\"train_%s_ms\":%.4f", names[k], 1e3 * tm[k]);
        if (isnan(im[k])) printf(",\"infer_%s_ms\":null", names[k]);
        else printf(",\"infer_%s_ms\":%.4f", names[k], 1e3 * im[k]);
    }
    printf(",\"dense_file_bytes\":%lld,\"compact_file_bytes\":%lld,\"auto_choice\":\"%s\"}\n",
           dense_bytes, compact_bytes, choice[2]);
    fflush(stdout);
    bench_close(&b);
}

/* One conv/linear layer alone: forward + backward (input gradient included), dense vs sparse
 * at a given density. */
static void bench_layer(const Model *src, int li, int batch, const double *dens, int nd,
                        int reps, double min_time)
{
    const Layer *L = &src->layers[li];
    Model m;
    model_init_empty(&m, "one", L->x, 10);
    if (L->kind == LAYER_CONV2D)
        model_add_conv(&m, L->name, -1, L->y.c, L->k, L->stride, L->pad, L->bias_len > 0);
    else
        model_add_linear(&m, L->name, -1, L->out_features, L->bias_len > 0);
    if (model_finalize(&m, batch)) exit(1);
    Layer *l = &m.layers[0];
    const size_t numel = shape_numel(l->x), onumel = shape_numel(l->y);
    float *x = malloc(sizeof(float) * numel * batch), *dy = malloc(sizeof(float) * onumel * batch);
    float *dx = malloc(sizeof(float) * numel * batch), *y = malloc(sizeof(float) * onumel * batch);
    uint8_t *mask = malloc(m.n_params);
    for (size_t i = 0; i < numel * batch; i++) x[i] = (float)rng_normal(2, RNG_AUGMENT, 0, i);
    for (size_t i = 0; i < onumel * batch; i++) dy[i] = (float)rng_normal(3, RNG_AUGMENT, 0, i);
    for (int d = 0; d < nd; d++) {
        memset(mask, 1, m.n_params);
        for (size_t i = 0; i < l->weight_len; i++) {
            const int on = rng_uniform(4, RNG_AUGMENT, (uint64_t)d, i) < dens[d];
            mask[l->weight_off + i] = (uint8_t)on;
            m.params[l->weight_off + i] = on ? 0.1f : 0.0f;
        }
        double t[2][64];
        for (int r = 0; r < reps && r < 64; r++)
            for (int k = 0; k < 2; k++) {
                sparse_model_setup(&m, k ? KERNELS_SPARSE : KERNELS_DENSE, mask);
                if (m.sparse) sparse_model_step(&m, mask, 0, NULL, NULL, 0);
                LayerCtx ctx = {.weights = m.params, .grads = m.grads, .bn_stats = m.bn_stats,
                                .workspace = m.workspace, .workspace_floats = m.workspace_floats,
                                .n = batch, .train = 1, .wgrad_scale = 1.0f,
                                .conv_slots = m.conv_slots};
                int iters = 0;
                const double t0 = bench_now();
                double el;
                do {
                    l->ops->forward(l, &ctx, x, NULL, y);
                    l->ops->backward(l, &ctx, x, NULL, y, dy, dx, NULL);
                    iters++;
                    el = bench_now() - t0;
                } while (el < min_time);
                t[k][r] = el / iters;
            }
        const int n = reps < 64 ? reps : 64;
        const double td = bench_median(t[0], n), ts = bench_median(t[1], n);
        printf("  %-22s %-26s density %.3f: dense %8.3f ms, sparse %8.3f ms (x%.2f)\n", L->name,
               "", dens[d], 1e3 * td, 1e3 * ts, td / ts);
        printf("BENCH {\"kind\":\"sparse_layer\",\"layer\":\"%s\",\"type\":\"%s\",\"in\":\"%dx%dx%d\","
               "\"out\":%d,\"k\":%d,\"stride\":%d,\"density\":%.4f,\"batch\":%d,\"dense_ms\":%.4f,"
               "\"sparse_ms\":%.4f}\n", L->name, L->kind == LAYER_CONV2D ? "conv2d" : "linear",
               l->x.c, l->x.h, l->x.w, L->kind == LAYER_CONV2D ? L->y.c : L->out_features, L->k,
               L->stride, dens[d], batch, 1e3 * td, 1e3 * ts);
        fflush(stdout);
    }
    sparse_model_free(&m);
    model_free(&m);
    free(x); free(dy); free(dx); free(y); free(mask);
}

int main(int argc, char **argv)
{
    int threads = 2, batch = 128, reps = 5, layers = 0;
    double min_time = 0.2;
    const char *models = "mlp,lenet5,resnet20,wrn-22-2", *sparsities = "0.8,0.9,0.95,0.99";
    const char *method = "rigl", *layer_models = "mlp,lenet5,resnet20", *backend = "auto";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--threads") && v) threads = atoi(argv[++i]);
        else if (!strcmp(a, "--batch") && v) batch = atoi(argv[++i]);
        else if (!strcmp(a, "--reps") && v) reps = atoi(argv[++i]);
        else if (!strcmp(a, "--min-time") && v) min_time = atof(argv[++i]);
        else if (!strcmp(a, "--models") && v) models = argv[++i];
        else if (!strcmp(a, "--sparsities") && v) sparsities = argv[++i];
        else if (!strcmp(a, "--method") && v) method = argv[++i];
        else if (!strcmp(a, "--layers")) layers = 1;
        else if (!strcmp(a, "--only") && v) only_mode = sparse_kernels_parse(argv[++i]);
        else if (!strcmp(a, "--sizes-only")) sizes_only = 1;
        else if (!strcmp(a, "--infer-only")) infer_only = 1;
        else if (!strcmp(a, "--image") && v) {
            if (sscanf(argv[++i], "%dx%dx%d", &image.c, &image.h, &image.w) != 3 || image.c < 1 ||
                image.h < 1 || image.w < 1) {
                fprintf(stderr, "bench_sparse: --image takes CxHxW, e.g. 1x28x28\n");
                return 2;
            }
        }
        else if (!strcmp(a, "--layer-models") && v) layer_models = argv[++i];
        else if (!strcmp(a, "--conv-backend") && v) backend = argv[++i];
        else {
            fprintf(stderr, "usage: bench_sparse [--threads N] [--batch B] [--reps R] "
                    "[--min-time S] [--models a,b] [--sparsities 0.8,0.9] [--method rigl] "
                    "[--layers] [--layer-models a,b] [--only dense|sparse|auto] [--sizes-only] "
                    "[--infer-only] [--image CxHxW] [--conv-backend auto|own|onednn]\n");
            return 2;
        }
    }
    const int b = conv_backend_parse(backend);
    if (b < 0 || conv_backend_set((ConvBackend)b)) {
        fprintf(stderr, "bench_sparse: --conv-backend '%s': expected auto, own or onednn (onednn "
                "needs a build with ONEDNN=1)\n", backend);
        return 2;
    }
    openblas_set_num_threads(threads);
    omp_set_num_threads(threads);
    printf("BENCH {\"kind\":\"sparse_env\",\"threads\":%d,\"batch\":%d,\"reps\":%d,"
           "\"min_time\":%g,\"method\":\"%s\",\"conv_backend\":\"%s\"}\n", threads, batch, reps,
           min_time, method, conv_backend_name(conv_backend_get()));
    char list[512];
    snprintf(list, sizeof(list), "%s", models);
    for (char *model = strtok(list, ","); model && strcmp(model, "none"); model = strtok(NULL, ",")) {
        char sp[256];
        snprintf(sp, sizeof(sp), "%s", sparsities);
        char *save = NULL;
        for (char *s = strtok_r(sp, ",", &save); s; s = strtok_r(NULL, ",", &save))
            bench_model(model, method, atof(s), batch, reps, min_time);
    }
    if (layers) {
        static const double dens[] = {0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5};
        char lm[256];
        snprintf(lm, sizeof(lm), "%s", layer_models);
        char *save = NULL;
        for (char *model = strtok_r(lm, ",", &save); model; model = strtok_r(NULL, ",", &save)) {
            Model m;
            if (model_build(&m, model, model_input(model), 10, 1, 1)) return 1;
            for (int i = 0; i < m.n_layers; i++) {
                const Layer *L = &m.layers[i];
                if (L->kind != LAYER_CONV2D && L->kind != LAYER_LINEAR) continue;
                /* one of each distinct shape */
                int seen = 0;
                for (int j = 0; j < i; j++) {
                    const Layer *J = &m.layers[j];
                    seen |= J->kind == L->kind && J->x.c == L->x.c && J->x.h == L->x.h &&
                            J->y.c == L->y.c && J->k == L->k && J->stride == L->stride;
                }
                if (!seen) bench_layer(&m, i, batch, dens, 8, reps < 3 ? reps : 3, min_time / 2);
            }
            model_free(&m);
        }
    }
    return 0;
}
