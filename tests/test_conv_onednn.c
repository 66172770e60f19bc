/* --conv-backend onednn against the own kernels (include/cigl/conv_backend.h) on the model
 * zoo's conv geometries at realistic sizes: forward, input gradient (accumulated into a
 * pre-filled dx) and weight gradient (with a wgrad_scale other than 1), for 3x3 stride 1 and 2,
 * 1x1 stride 2 projections, the 1-channel stem, a 7x7 stride-2 stem, odd batch sizes and a
 * bias. The finite-difference checks of both backends are in test_layers_fd.
 *
 * Determinism: every oneDNN pass is repeated and must give the same bits, at 1 and 2 threads,
 * and a whole resnet20 training step (forward, backward, SGD) run twice from the same state must
 * too. A build without oneDNN (ONEDNN=0) skips everything. */
#include "check.h"
#include "cigl/conv_backend.h"
#include "cigl/loss.h"
#include "cigl/model.h"
#include "cigl/optim.h"
#include "cigl/rng.h"

#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static float *filled(size_t n, uint64_t seed, float scale)
{
    float *p = malloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) p[i] = scale * (float)rng_normal(seed, RNG_AUGMENT, 0, i);
    return p;
}

/* max |a - b| / (max |b| + tiny) over n floats */
static double rel_err(const float *a, const float *b, size_t n)
{
    double e = 0, m = 1e-30;
    for (size_t i = 0; i < n; i++) {
        const double d = fabs((double)a[i] - b[i]);
        e = d > e ? d : e;
        m = fabs((double)b[i]) > m ? fabs((double)b[i]) : m;
    }
    return e / m;
}

typedef struct {
    float *y, *dx, *dw, *db;
} Pass;

/* forward + backward of layer 0 with backend be; dx starts as dx0 (backward adds to it) */
static Pass run_pass(Model *m, ConvBackend be, const float *x, const float *dy, const float *dx0,
                     int n)
{
    Layer *l = &m->layers[0];
    const size_t nin = (size_t)n * shape_numel(l->x), nout = (size_t)n * shape_numel(l->y);
    Pass p = {malloc(sizeof(float) * nout), malloc(sizeof(float) * nin),
              malloc(sizeof(float) * l->weight_len), malloc(sizeof(float) * (l->bias_len + 1))};
    conv_backend_set(be);
    LayerCtx ctx = model_ctx(m, m->params, n, 1);
    ctx.wgrad_scale = 0.5f;
    l->ops->forward(l, &ctx, x, NULL, p.y);
    memcpy(p.dx, dx0, sizeof(float) * nin);
    memset(m->grads, 0x7f, sizeof(float) * m->n_params); /* written, not accumulated */
    l->ops->backward(l, &ctx, x, NULL, p.y, dy, p.dx, NULL);
    memcpy(p.dw, m->grads + l->weight_off, sizeof(float) * l->weight_len);
    if (l->bias_len) memcpy(p.db, m->grads + l->bias_off, sizeof(float) * l->bias_len);
    conv_backend_set(CONV_BACKEND_OWN);
    return p;
}

static void pass_free(Pass *p)
{
    free(p->y);
    free(p->dx);
    free(p->dw);
    free(p->db);
}

static void conv_compare(int c, int h, int oc, int k, int s, int p, int bias, int n)
{
    Model m;
    model_init_empty(&m, "conv", (Shape){c, h, h}, 10);
    model_add_conv(&m, "conv", -1, oc, k, s, p, bias);
    CHECK(model_finalize(&m, n) == 0, "finalize");
    const Layer *l = &m.layers[0];
    const size_t nin = (size_t)n * shape_numel(l->x), nout = (size_t)n * shape_numel(l->y);
    float *w = filled(m.n_params, 3, 0.2f);
    memcpy(m.params, w, sizeof(float) * m.n_params);
    float *x = filled(nin, 4, 1.0f), *dy = filled(nout, 5, 1.0f), *dx0 = filled(nin, 6, 1.0f);
    Pass own = run_pass(&m, CONV_BACKEND_OWN, x, dy, dx0, n);
    for (int t = 1; t <= 2; t++) {
        omp_set_num_threads(t);
        Pass a = run_pass(&m, CONV_BACKEND_ONEDNN, x, dy, dx0, n);
        Pass b = run_pass(&m, CONV_BACKEND_ONEDNN, x, dy, dx0, n);
        char what[96];
        snprintf(what, sizeof what, "c%d %dx%d oc%d k%d s%d p%d%s n%d, %d thread(s)", c, h, h,
                 oc, k, s, p, bias ? " +b" : "", n, t);
        CHECK(rel_err(a.y, own.y, nout) < 1e-5, "%s: y differs by %.3g", what,
              rel_err(a.y, own.y, nout));
        CHECK(rel_err(a.dx, own.dx, nin) < 1e-5, "%s: dx differs by %.3g", what,
              rel_err(a.dx, own.dx, nin));
        CHECK(rel_err(a.dw, own.dw, l->weight_len) < 1e-5, "%s: dW differs by %.3g", what,
              rel_err(a.dw, own.dw, l->weight_len));
        if (bias) CHECK(!memcmp(a.db, own.db, sizeof(float) * l->bias_len), "%s: db", what);
        CHECK(!memcmp(a.y, b.y, sizeof(float) * nout) &&
              !memcmp(a.dx, b.dx, sizeof(float) * nin) &&
              !memcmp(a.dw, b.dw, sizeof(float) * l->weight_len), "%s: not repeatable", what);
        pass_free(&a);
        pass_free(&b);
    }
    omp_set_num_threads(2);
    pass_free(&own);
    free(w); free(x); free(dy); free(dx0);
    model_free(&m);
}

static void test_geometries(void)
{
    conv_compare(16, 28, 16, 3, 1, 1, 0, 8);  /* resnet20 layer1 */
    conv_compare(16, 28, 32, 3, 2, 1, 0, 5);  /* stride-2 3x3, odd batch */
    conv_compare(16, 28, 32, 1, 2, 0, 0, 5);  /* 1x1 stride-2 projection */
    conv_compare(64, 7, 64, 3, 1, 1, 0, 7);   /* layer3 */
    conv_compare(1, 28, 16, 3, 1, 1, 0, 6);   /* 1-channel stem */
    conv_compare(3, 32, 8, 7, 2, 3, 1, 3);    /* ImageNet-style stem with a bias */
    conv_compare(8, 9, 12, 3, 1, 0, 1, 4);    /* no padding, bias */
    conv_compare(64, 8, 128, 1, 1, 0, 0, 3);  /* 1x1 stride 1 (bottleneck) */
}

/* A resnet20 training step from the same parameters twice: identical bits. */
static void test_model_step_repeatable(void)
{
    const int n = 16;
    Model m;
    Sgd opt;
    CHECK(model_build(&m, "resnet20", (Shape){1, 28, 28}, 10, n, 7) == 0, "build");
    CHECK(sgd_init(&opt, &m, 0.9, 5e-4, 1, 0) == 0, "sgd");
    float *x = filled((size_t)n * 784, 8, 1.0f), *dl = malloc(sizeof(float) * n * 10);
    int32_t y[16];
    for (int i = 0; i < n; i++) y[i] = i % 10;
    float *p0 = malloc(sizeof(float) * m.n_params), *p1 = malloc(sizeof(float) * m.n_params);
    memcpy(p0, m.params, sizeof(float) * m.n_params);
    conv_backend_set(CONV_BACKEND_ONEDNN);
    for (int run = 0; run < 2; run++) {
        memcpy(m.params, p0, sizeof(float) * m.n_params);
        sgd_free(&opt);
        sgd_init(&opt, &m, 0.9, 5e-4, 1, 0);
        for (int step = 0; step < 2; step++) {
            const float *logits = model_forward(&m, m.params, x, n, 1);
            softmax_xent(logits, y, n, 10, 0.0, 1.0f / n, dl, NULL);
            model_backward(&m, m.params, x, dl, n);
            sgd_step(&opt, m.params, m.grads, m.n_params, 0.1, NULL);
        }
        if (run == 0) memcpy(p1, m.params, sizeof(float) * m.n_params);
    }
    conv_backend_set(CONV_BACKEND_OWN);
    CHECK(!memcmp(p1, m.params, sizeof(float) * m.n_params), "two runs differ");
    free(x); free(dl); free(p0); free(p1);
    sgd_free(&opt);
    model_free(&m);
}

int main(void)
{
    if (!conv_backend_onednn_built()) {
        printf("SKIP test_conv_onednn: built without oneDNN (ONEDNN=0)\n");
        printf("0 passed, 0 failed, 1 skipped\n");
        return 0;
    }
    omp_set_num_threads(2);
    RUN(test_geometries);
    RUN(test_model_step_repeatable);
    conv_onednn_release();
    return CHECK_SUMMARY();
}
