/* Every layer's forward and backward against an independent naive double-precision reference
 * and central finite differences of that reference (computed in double), plus the softmax
 * cross-entropy, the model plumbing (model_forward / model_backward) and whole-model float
 * gradient checks of LeNet-5 and ResNet-20.
 *
 * Layers are driven directly through layer_ops(kind)->forward/backward: a one-layer model is
 * built with model_init_empty / model_add_* / model_finalize (which allocates parameters, BN
 * statistics and the BN / max-pool caches sized for max_batch), and the test supplies x, y, dy,
 * dx and a convolution workspace of a size it chooses (so conv's chunked GEMM path can be forced
 * into several chunks). The scalar checked is L = sum_i r_i * y_i with fixed random r, so the
 * upstream gradient dy is r.
 *
 * Every backward call gets a dx pre-filled with random values: the layers ACCUMULATE into dx,
 * so what is compared with the finite differences is dx_after - dx_before. Parameter gradients
 * are pre-filled with a sentinel, since they are written, not accumulated. */
#include "check.h"
#include "cigl/conv.h"
#include "cigl/conv_backend.h"
#include "cigl/layer.h"
#include "cigl/loss.h"
#include "cigl/model.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------------
 * Deterministic pseudo-random numbers (a local 64-bit LCG, top 53 bits). */
static uint64_t lcg_state;

static void lcg_seed(uint64_t s) { lcg_state = s * 0x9E3779B97F4A7C15ULL + 1; }

static double lcg_uniform(void)
{
    lcg_state = lcg_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(lcg_state >> 11) * 0x1.0p-53;
}

static float urand(double lo, double hi) { return (float)(lo + (hi - lo) * lcg_uniform()); }

static size_t urand_below(size_t bound) { return (size_t)(lcg_uniform() * (double)bound); }

static void fill_uniform(float *v, size_t len, double lo, double hi)
{
    for (size_t i = 0; i < len; i++) v[i] = urand(lo, hi);
}

/* Uniform in [-hi, -lo] U [lo, hi]: away from the ReLU kink at 0. */
static void fill_away_from_zero(float *v, size_t len, double lo, double hi)
{
    for (size_t i = 0; i < len; i++) {
        const float a = urand(lo, hi);
        v[i] = lcg_uniform() < 0.5 ? -a : a;
    }
}

/* Each plane of `plane` values gets a random permutation of {-0.02 * plane/2 + 0.02 j}: all
 * values distinct, 0.02 apart (so no max-pool window has a tie or a near-tie), half of them
 * negative (so a padding treated as 0 instead of -inf would show). */
static void fill_distinct_planes(float *v, size_t planes, size_t plane)
{
    for (size_t p = 0; p < planes; p++) {
        float *q = v + p * plane;
        for (size_t j = 0; j < plane; j++) q[j] = (float)(0.02 * ((double)j - (double)plane / 2));
        for (size_t j = plane - 1; j > 0; j--) {
            const size_t k = urand_below(j + 1);
            const float t = q[j];
            q[j] = q[k];
            q[k] = t;
        }
    }
}

static void *xmalloc(size_t bytes)
{
    void *p = malloc(bytes ? bytes : 1);
    if (!p) {
        fprintf(stderr, "out of memory (%zu bytes)\n", bytes);
        exit(2);
    }
    return p;
}

static double *to_double(const float *v, size_t len)
{
    double *d = xmalloc(sizeof(double) * len);
    for (size_t i = 0; i < len; i++) d[i] = v[i];
    return d;
}

/* ---------------------------------------------------------------------------------------------
 * Error bookkeeping: per category, the largest absolute error and the largest fraction of the
 * tolerance used (|got - want| / (atol + rtol * |want|)); printed at the end. */
typedef struct {
    const char *name;
    double atol, rtol;
    double max_abs, max_frac;
    long compared;
} ErrStat;

static ErrStat st_fwd = {"forward vs double ref", 1e-5, 1e-5, 0, 0, 0};
static ErrStat st_grad = {"backward vs double FD", 1e-5, 1e-4, 0, 0, 0};
static ErrStat st_stats = {"BN running stats", 1e-6, 1e-5, 0, 0, 0};
static ErrStat st_xent = {"softmax_xent (loss, FD)", 1e-5, 1e-4, 0, 0, 0};
static ErrStat st_model = {"whole model directional FD", 1e-3, 2e-2, 0, 0, 0};

/* Compares got[i] with want[i]; records the statistics and reports the first few misses. */
static void compare(ErrStat *st, const char *what, size_t i, double got, double want)
{
    const double err = fabs(got - want), tol = st->atol + st->rtol * fabs(want);
    if (err > st->max_abs) st->max_abs = err;
    if (err / tol > st->max_frac) st->max_frac = err / tol;
    st->compared++;
    static int reported;
    if (!(err <= tol) && reported < 20) {
        reported++;
        CHECK(err <= tol, "%s [%zu]: got %.9g, expected %.9g (err %.3g, tol %.3g)", what, i,
              got, want, err, tol);
    } else if (!(err <= tol)) {
        check_case_failed = 1;
    }
}

/* ---------------------------------------------------------------------------------------------
 * Naive double-precision references. `w` is the whole parameter buffer in double, `stats` the
 * BN running statistics as they were before the forward pass under test. */
typedef struct {
    const Layer *l;
    int n, train;
    const double *w, *stats;
} RefCtx;

typedef void (*RefFn)(const RefCtx *rc, const double *x, const double *x2, double *y);

static void ref_linear(const RefCtx *rc, const double *x, const double *x2, double *y)
{
    (void)x2;
    const Layer *l = rc->l;
    const int in = (int)shape_numel(l->x), out = l->out_features;
    const double *W = rc->w + l->weight_off, *b = l->bias_len ? rc->w + l->bias_off : NULL;
    for (int i = 0; i < rc->n; i++)
        for (int o = 0; o < out; o++) {
            double s = b ? b[o] : 0.0;
            for (int j = 0; j < in; j++) s += W[(size_t)o * in + j] * x[(size_t)i * in + j];
            y[(size_t)i * out + o] = s;
        }
}

static void ref_conv(const RefCtx *rc, const double *x, const double *x2, double *y)
{
    (void)x2;
    const Layer *l = rc->l;
    const int C = l->x.c, H = l->x.h, Wd = l->x.w, OC = l->y.c, OH = l->y.h, OW = l->y.w;
    const int k = l->k, s = l->stride, p = l->pad;
    const double *W = rc->w + l->weight_off, *b = l->bias_len ? rc->w + l->bias_off : NULL;
    for (int i = 0; i < rc->n; i++)
        for (int o = 0; o < OC; o++)
            for (int oy = 0; oy < OH; oy++)
                for (int ox = 0; ox < OW; ox++) {
                    double acc = b ? b[o] : 0.0;
                    for (int c = 0; c < C; c++)
                        for (int kh = 0; kh < k; kh++) {
                            const int iy = oy * s - p + kh;
                            if (iy < 0 || iy >= H) continue;
                            for (int kw = 0; kw < k; kw++) {
                                const int ix = ox * s - p + kw;
                                if (ix < 0 || ix >= Wd) continue;
                                acc += W[(((size_t)o * C + c) * k + kh) * k + kw] *
                                       x[(((size_t)i * C + c) * H + iy) * Wd + ix];
                            }
                        }
                    y[(((size_t)i * OC + o) * OH + oy) * OW + ox] = acc;
                }
}

/* Per-channel batch mean and biased / unbiased variance. */
static void batch_moments(const Layer *l, int n, const double *x, int ch, double *mean,
                          double *var_biased, double *var_unbiased)
{
    const int C = l->x.c;
    const size_t hw = (size_t)l->x.h * l->x.w, m = (size_t)n * hw;
    double s = 0, ss = 0;
    for (int i = 0; i < n; i++)
        for (size_t j = 0; j < hw; j++) s += x[((size_t)i * C + ch) * hw + j];
    const double mu = s / (double)m;
    for (int i = 0; i < n; i++)
        for (size_t j = 0; j < hw; j++) {
            const double d = x[((size_t)i * C + ch) * hw + j] - mu;
            ss += d * d;
        }
    *mean = mu;
    *var_biased = ss / (double)m;
    *var_unbiased = m > 1 ? ss / (double)(m - 1) : ss / (double)m;
}

/* Train mode: batch statistics with the biased variance; eval mode: running statistics. */
static void ref_batchnorm(const RefCtx *rc, const double *x, const double *x2, double *y)
{
    (void)x2;
    const Layer *l = rc->l;
    const int C = l->x.c;
    const size_t hw = (size_t)l->x.h * l->x.w;
    const double *g = rc->w + l->weight_off, *b = rc->w + l->bias_off;
    for (int ch = 0; ch < C; ch++) {
        double mean, var, unb;
        if (rc->train) {
            batch_moments(l, rc->n, x, ch, &mean, &var, &unb);
        } else {
            mean = rc->stats[l->stats_off + ch];
            var = rc->stats[l->stats_off + C + ch];
        }
        const double inv = 1.0 / sqrt(var + (double)l->bn_eps);
        for (int i = 0; i < rc->n; i++)
            for (size_t j = 0; j < hw; j++) {
                const size_t o = ((size_t)i * C + ch) * hw + j;
                y[o] = g[ch] * (x[o] - mean) * inv + b[ch];
            }
    }
}

static void ref_relu(const RefCtx *rc, const double *x, const double *x2, double *y)
{
    (void)x2;
    const size_t len = (size_t)rc->n * shape_numel(rc->l->x);
    for (size_t i = 0; i < len; i++) y[i] = x[i] > 0 ? x[i] : 0;
}

/* Max over the in-bounds part of each window (padding never wins). */
static void ref_maxpool(const RefCtx *rc, const double *x, const double *x2, double *y)
{
    (void)x2;
    const Layer *l = rc->l;
    const int H = l->x.h, Wd = l->x.w, OH = l->y.h, OW = l->y.w, k = l->k, s = l->stride,
              p = l->pad;
    for (int pl = 0; pl < rc->n * l->x.c; pl++)
        for (int oy = 0; oy < OH; oy++)
            for (int ox = 0; ox < OW; ox++) {
                double best = -INFINITY;
                for (int ky = 0; ky < k; ky++)
                    for (int kx = 0; kx < k; kx++) {
                        const int iy = oy * s - p + ky, ix = ox * s - p + kx;
                        if (iy < 0 || iy >= H || ix < 0 || ix >= Wd) continue;
                        const double v = x[((size_t)pl * H + iy) * Wd + ix];
                        if (v > best) best = v;
                    }
                y[((size_t)pl * OH + oy) * OW + ox] = best;
            }
}

static void ref_gap(const RefCtx *rc, const double *x, const double *x2, double *y)
{
    (void)x2;
    const size_t hw = (size_t)rc->l->x.h * rc->l->x.w;
    for (int pl = 0; pl < rc->n * rc->l->x.c; pl++) {
        double s = 0;
        for (size_t j = 0; j < hw; j++) s += x[(size_t)pl * hw + j];
        y[pl] = s / (double)hw;
    }
}

static void ref_add(const RefCtx *rc, const double *x, const double *x2, double *y)
{
    const size_t len = (size_t)rc->n * shape_numel(rc->l->x);
    for (size_t i = 0; i < len; i++) y[i] = x[i] + x2[i];
}

static void ref_flatten(const RefCtx *rc, const double *x, const double *x2, double *y)
{
    (void)x2;
    const size_t len = (size_t)rc->n * shape_numel(rc->l->x);
    for (size_t i = 0; i < len; i++) y[i] = x[i];
}

/* L = sum r_i y_i of the reference. */
static double ref_loss(RefFn ref, const RefCtx *rc, const double *x, const double *x2,
                       const double *r, double *ybuf, size_t nout)
{
    ref(rc, x, x2, ybuf);
    double L = 0;
    for (size_t i = 0; i < nout; i++) L += r[i] * ybuf[i];
    return L;
}

#define FD_H 1e-6
#define FD_MAX_POINTS 600 /* per tensor; larger tensors are checked at random points */

/* Central differences of L w.r.t. v[0..len) (v is x, x2 or a slice of the double parameter
 * buffer) compared with got(i) = gradient from our backward. */
static void fd_check(const char *what, RefFn ref, const RefCtx *rc, double *xd, double *x2d,
                     double *v, size_t len, const double *r, double *ybuf, size_t nout,
                     const float *got, const float *before)
{
    const int all = len <= FD_MAX_POINTS;
    const size_t points = all ? len : FD_MAX_POINTS;
    for (size_t t = 0; t < points; t++) {
        const size_t i = all ? t : urand_below(len);
        const double orig = v[i];
        v[i] = orig + FD_H;
        const double lp = ref_loss(ref, rc, xd, x2d, r, ybuf, nout);
        v[i] = orig - FD_H;
        const double lm = ref_loss(ref, rc, xd, x2d, r, ybuf, nout);
        v[i] = orig;
        const double fd = (lp - lm) / (2 * FD_H);
        const double g = before ? (double)got[i] - (double)before[i] : (double)got[i];
        compare(&st_grad, what, i, g, fd);
    }
}

/* The context a layer sees in one pass (as model.c's make_ctx builds it, but with a workspace
 * of the test's choosing). */
static LayerCtx layer_ctx(Model *m, float *ws, size_t ws_floats, int n, int train)
{
    LayerCtx ctx = {.weights = m->params, .grads = m->grads, .bn_stats = m->bn_stats,
                    .workspace = ws, .workspace_floats = ws_floats, .n = n, .train = train,
                    .wgrad_scale = 1.0f};
    return ctx;
}

/* ---------------------------------------------------------------------------------------------
 * The generic one-layer check. x2 is used by LAYER_ADD only. ws_floats is the convolution
 * workspace handed to the layer (0: none). */
static void check_layer(const char *what, Model *m, int li, int n, int train, const float *x,
                        const float *x2, size_t ws_floats, RefFn ref)
{
    Layer *l = &m->layers[li];
    const size_t nin = (size_t)n * shape_numel(l->x), nout = (size_t)n * shape_numel(l->y);
    float *y = xmalloc(sizeof(float) * nout), *dy = xmalloc(sizeof(float) * nout);
    float *dx = xmalloc(sizeof(float) * nin), *dx0 = xmalloc(sizeof(float) * nin);
    float *dx2 = xmalloc(sizeof(float) * nin), *dx20 = xmalloc(sizeof(float) * nin);
    float *ws = xmalloc(sizeof(float) * (ws_floats ? ws_floats : 1));
    fill_uniform(dy, nout, -1, 1);
    fill_uniform(dx0, nin, -1, 1);
    fill_uniform(dx20, nin, -1, 1);
    memcpy(dx, dx0, sizeof(float) * nin);
    memcpy(dx2, dx20, sizeof(float) * nin);
    for (size_t i = 0; i < ws_floats; i++) ws[i] = NAN; /* the layer must not read stale scratch */

    double *xd = to_double(x, nin), *x2d = x2 ? to_double(x2, nin) : NULL;
    double *wd = to_double(m->params, m->n_params);
    double *sd = to_double(m->bn_stats, m->n_bn_stats ? m->n_bn_stats : 1);
    double *rd = to_double(dy, nout), *yd = xmalloc(sizeof(double) * nout);
    const RefCtx rc = {l, n, train, wd, sd};
    char name[160];

    /* forward */
    LayerCtx ctx = layer_ctx(m, ws, ws_floats, n, train);
    l->ops->forward(l, &ctx, x, x2, y);
    ref(&rc, xd, x2d, yd);
    snprintf(name, sizeof(name), "%s: y", what);
    for (size_t i = 0; i < nout; i++) compare(&st_fwd, name, i, y[i], yd[i]);

    /* BN in train mode: running mean and unbiased variance updated with momentum 0.1 */
    if (l->kind == LAYER_BATCHNORM && train) {
        const int C = l->x.c;
        snprintf(name, sizeof(name), "%s: running stats", what);
        for (int ch = 0; ch < C; ch++) {
            double mean, var, unb;
            batch_moments(l, n, xd, ch, &mean, &var, &unb);
            const size_t im = l->stats_off + ch, iv = l->stats_off + C + ch;
            compare(&st_stats, name, im, m->bn_stats[im], 0.9 * sd[im] + 0.1 * mean);
            compare(&st_stats, name, iv, m->bn_stats[iv], 0.9 * sd[iv] + 0.1 * unb);
        }
    }

    /* backward; parameter gradients must be overwritten, not accumulated */
    for (size_t i = 0; i < m->n_params; i++) m->grads[i] = 1000.0f;
    l->ops->backward(l, &ctx, x, x2, y, dy, dx, x2 ? dx2 : NULL);

    snprintf(name, sizeof(name), "%s: dx", what);
    fd_check(name, ref, &rc, xd, x2d, xd, nin, rd, yd, nout, dx, dx0);
    if (x2) {
        snprintf(name, sizeof(name), "%s: dx2", what);
        fd_check(name, ref, &rc, xd, x2d, x2d, nin, rd, yd, nout, dx2, dx20);
    }
    if (l->weight_len) {
        snprintf(name, sizeof(name), "%s: dweight", what);
        fd_check(name, ref, &rc, xd, x2d, wd + l->weight_off, l->weight_len, rd, yd, nout,
                 m->grads + l->weight_off, NULL);
    }
    if (l->bias_len) {
        snprintf(name, sizeof(name), "%s: dbias", what);
        fd_check(name, ref, &rc, xd, x2d, wd + l->bias_off, l->bias_len, rd, yd, nout,
                 m->grads + l->bias_off, NULL);
    }

    /* Again with dx = NULL (a layer fed by the model input): parameter gradients identical,
     * and backward twice gives bit-identical results (determinism). */
    if (m->n_params) {
        float *g1 = xmalloc(sizeof(float) * m->n_params);
        memcpy(g1, m->grads, sizeof(float) * m->n_params);
        for (size_t i = 0; i < m->n_params; i++) m->grads[i] = -1000.0f;
        l->ops->backward(l, &ctx, x, x2, y, dy, NULL, NULL);
        CHECK(!memcmp(g1, m->grads, sizeof(float) * m->n_params),
              "%s: parameter gradients differ with dx = NULL or between runs", what);
        free(g1);
    }
    float *dxb = xmalloc(sizeof(float) * nin), *dx2b = xmalloc(sizeof(float) * nin);
    memcpy(dxb, dx0, sizeof(float) * nin);
    memcpy(dx2b, dx20, sizeof(float) * nin);
    l->ops->backward(l, &ctx, x, x2, y, dy, dxb, x2 ? dx2b : NULL);
    CHECK(!memcmp(dx, dxb, sizeof(float) * nin), "%s: dx differs between two runs", what);
    if (x2) CHECK(!memcmp(dx2, dx2b, sizeof(float) * nin), "%s: dx2 differs", what);
    free(dxb);
    free(dx2b);

    free(y); free(dy); free(dx); free(dx0); free(dx2); free(dx20); free(ws);
    free(xd); free(x2d); free(wd); free(sd); free(rd); free(yd);
}

/* Parameters and BN statistics of a one-layer model: deterministic pseudo-random values. */
static void randomise_model(Model *m)
{
    for (int t = 0; t < m->n_tensors; t++) {
        const ParamTensor *pt = &m->tensors[t];
        float *p = m->params + pt->off;
        switch (pt->kind) {
        case PARAM_BN_GAMMA: fill_uniform(p, pt->len, 0.5, 1.5); break;
        case PARAM_BN_BETA: fill_uniform(p, pt->len, -0.5, 0.5); break;
        default: fill_uniform(p, pt->len, -0.5, 0.5); break;
        }
    }
    for (int i = 0; i < m->n_layers; i++) {
        const Layer *l = &m->layers[i];
        if (l->kind != LAYER_BATCHNORM) continue;
        fill_uniform(m->bn_stats + l->stats_off, l->x.c, -0.5, 0.5);
        fill_uniform(m->bn_stats + l->stats_off + l->x.c, l->x.c, 0.5, 1.5);
    }
}

static float *new_input(size_t len, double lo, double hi)
{
    float *x = xmalloc(sizeof(float) * len);
    fill_uniform(x, len, lo, hi);
    return x;
}

/* ---------------------------------------------------------------------------------------------
 * Linear */
static void linear_case(Shape in, int out, int bias, int n, uint64_t seed)
{
    lcg_seed(seed);
    Model m;
    model_init_empty(&m, "linear", in, out);
    model_add_linear(&m, "fc", -1, out, bias);
    CHECK(model_finalize(&m, n) == 0, "finalize");
    randomise_model(&m);
    float *x = new_input((size_t)n * shape_numel(in), -1, 1);
    char what[64];
    snprintf(what, sizeof(what), "linear %dx%dx%d->%d%s n%d", in.c, in.h, in.w, out,
             bias ? " +b" : "", n);
    check_layer(what, &m, 0, n, 1, x, NULL, 0, ref_linear);
    free(x);
    model_free(&m);
}

static void test_linear(void)
{
    linear_case((Shape){7, 1, 1}, 5, 1, 3, 1);
    linear_case((Shape){7, 1, 1}, 5, 0, 3, 2);
    linear_case((Shape){2, 3, 2}, 4, 1, 3, 3); /* a linear layer reads its input flattened */
    linear_case((Shape){1, 1, 1}, 1, 1, 1, 4);
    linear_case((Shape){33, 1, 1}, 17, 1, 5, 5);
}

/* ---------------------------------------------------------------------------------------------
 * Conv2d. chunk_samples: the workspace holds exactly that many samples' im2col columns plus
 * GEMM output (0: the whole batch), so n > chunk_samples runs several chunks. */
static void conv_case(int c, int h, int w, int oc, int k, int s, int p, int bias, int n,
                      int chunk_samples, uint64_t seed)
{
    lcg_seed(seed);
    Model m;
    const Shape in = {c, h, w};
    const int oh = conv_out_size(h, k, s, p), ow = conv_out_size(w, k, s, p);
    model_init_empty(&m, "conv", in, oc * oh * ow);
    model_add_conv(&m, "conv", -1, oc, k, s, p, bias);
    CHECK(model_finalize(&m, n) == 0, "finalize");
    randomise_model(&m);
    const Layer *l = &m.layers[0];
    CHECK(l->y.h == oh && l->y.w == ow && l->y.c == oc, "conv output shape");
    const size_t per_sample = ((size_t)c * k * k + oc) * oh * ow;
    const size_t ws = per_sample * (size_t)(chunk_samples ? chunk_samples : n);
    const size_t expect_chunk = chunk_samples && chunk_samples < n ? (size_t)chunk_samples : (size_t)n;
    CHECK(conv_chunk(l, n, ws) == expect_chunk, "conv_chunk %zu, expected %zu",
          conv_chunk(l, n, ws), expect_chunk);
    CHECK(conv_workspace_floats(l, n, ws) <= ws, "workspace sizing");
    float *x = new_input((size_t)n * shape_numel(in), -1, 1);
    char what[96];
    snprintf(what, sizeof(what), "conv %dx%dx%d->%d k%d s%d p%d%s n%d chunk%zu", c, h, w, oc, k,
             s, p, bias ? " +b" : "", n, expect_chunk);
    check_layer(what, &m, 0, n, 1, x, NULL, ws, ref_conv);
    free(x);
    model_free(&m);
}

static void test_conv(void)
{
    /*        c  h  w oc  k  s  p bias n chunk */
    conv_case(3, 7, 9, 4, 1, 1, 0, 1, 3, 0, 11);
    conv_case(3, 7, 9, 4, 1, 2, 0, 0, 3, 0, 12); /* 1x1 stride 2 (projection shortcut) */
    conv_case(2, 7, 9, 3, 1, 1, 1, 1, 3, 0, 13);
    conv_case(2, 7, 9, 3, 3, 1, 1, 1, 3, 0, 14);
    conv_case(2, 7, 9, 3, 3, 2, 1, 0, 3, 0, 15);
    conv_case(2, 7, 9, 3, 3, 1, 0, 1, 3, 0, 16);
    conv_case(2, 7, 9, 3, 3, 2, 0, 1, 3, 0, 17);
    conv_case(2, 6, 5, 3, 3, 1, 2, 0, 3, 0, 18);
    conv_case(2, 8, 7, 3, 5, 1, 2, 1, 3, 0, 19);
    conv_case(2, 9, 7, 3, 5, 2, 2, 0, 3, 0, 20);
    conv_case(1, 7, 9, 2, 5, 1, 0, 1, 3, 0, 21);
    conv_case(2, 7, 9, 3, 7, 1, 3, 0, 3, 0, 22);
    conv_case(3, 11, 13, 4, 7, 2, 3, 1, 3, 0, 23); /* ImageNet stem geometry */
    conv_case(2, 9, 7, 2, 7, 2, 3, 0, 2, 0, 24);
    conv_case(2, 7, 7, 3, 3, 1, 3, 1, 2, 0, 25); /* padding larger than needed */
    conv_case(2, 1, 1, 3, 3, 1, 1, 1, 3, 0, 26); /* 1x1 map, 3x3 kernel */
    conv_case(2, 5, 4, 3, 3, 3, 1, 1, 3, 0, 27); /* stride 3 */
    conv_case(2, 1, 1, 3, 1, 1, 0, 1, 3, 0, 28);
}

static void test_conv_chunked(void)
{
    conv_case(3, 7, 9, 4, 3, 1, 1, 1, 7, 0, 31); /* one chunk of 7 samples */
    conv_case(3, 7, 9, 4, 3, 1, 1, 1, 7, 3, 32); /* chunks 3, 3, 1 */
    conv_case(2, 9, 7, 5, 5, 2, 2, 0, 6, 2, 33); /* chunks 2, 2, 2 */
    conv_case(2, 9, 7, 5, 5, 2, 2, 1, 5, 1, 34); /* one sample at a time */
    conv_case(3, 11, 13, 4, 7, 2, 3, 1, 5, 4, 35); /* chunks 4, 1 */
    conv_case(4, 5, 5, 6, 1, 2, 0, 1, 8, 3, 36); /* 1x1 s2: chunks 3, 3, 2 */
}

/* Chunking must not change the results beyond float rounding, and the model-sized workspace
 * works with any n <= max_batch. */
static void test_conv_chunk_consistency(void)
{
    lcg_seed(41);
    const int n = 7;
    Model m;
    model_init_empty(&m, "conv", (Shape){3, 7, 9}, 0);
    model_add_conv(&m, "conv", -1, 4, 3, 1, 1, 1);
    CHECK(model_finalize(&m, n) == 0, "finalize");
    randomise_model(&m);
    Layer *l = &m.layers[0];
    const size_t per = ((size_t)3 * 9 + 4) * l->y.h * l->y.w;
    const size_t nin = (size_t)n * shape_numel(l->x), nout = (size_t)n * shape_numel(l->y);
    float *x = new_input(nin, -1, 1), *dy = new_input(nout, -1, 1);
    float *ws = xmalloc(sizeof(float) * per * n);
    float *y[3], *dx[3], *g[3];
    const int chunks[3] = {7, 3, 1};
    for (int v = 0; v < 3; v++) {
        y[v] = xmalloc(sizeof(float) * nout);
        dx[v] = calloc(nin, sizeof(float));
        g[v] = xmalloc(sizeof(float) * m.n_params);
        LayerCtx ctx = layer_ctx(&m, ws, per * chunks[v], n, 1);
        l->ops->forward(l, &ctx, x, NULL, y[v]);
        l->ops->backward(l, &ctx, x, NULL, y[v], dy, dx[v], NULL);
        memcpy(g[v], m.grads, sizeof(float) * m.n_params);
    }
    for (int v = 1; v < 3; v++) {
        for (size_t i = 0; i < nout; i++) compare(&st_fwd, "chunked y", i, y[v][i], y[0][i]);
        for (size_t i = 0; i < nin; i++) compare(&st_grad, "chunked dx", i, dx[v][i], dx[0][i]);
        for (size_t i = 0; i < m.n_params; i++) compare(&st_grad, "chunked dw", i, g[v][i], g[0][i]);
    }
    /* the model's own workspace, with a batch smaller than max_batch */
    {
        LayerCtx ctx = layer_ctx(&m, m.workspace, m.workspace_floats, 4, 1);
        float *y4 = xmalloc(sizeof(float) * nout);
        l->ops->forward(l, &ctx, x, NULL, y4);
        const size_t n4 = (size_t)4 * shape_numel(l->y);
        for (size_t i = 0; i < n4; i++) compare(&st_fwd, "model workspace n4 y", i, y4[i], y[0][i]);
        free(y4);
    }
    for (int v = 0; v < 3; v++) { free(y[v]); free(dx[v]); free(g[v]); }
    free(x); free(dy); free(ws);
    model_free(&m);
}

/* ---------------------------------------------------------------------------------------------
 * Batch norm */
static void bn_case(Shape in, int n, int train, uint64_t seed)
{
    lcg_seed(seed);
    Model m;
    model_init_empty(&m, "bn", in, (int)shape_numel(in));
    model_add_batchnorm(&m, "bn", -1);
    CHECK(model_finalize(&m, n) == 0, "finalize");
    randomise_model(&m);
    CHECK(fabsf(m.layers[0].bn_momentum - 0.1f) < 1e-7f && fabsf(m.layers[0].bn_eps - 1e-5f) < 1e-12f,
          "BN momentum %g eps %g", m.layers[0].bn_momentum, m.layers[0].bn_eps);
    /* non-zero mean, channel-dependent spread */
    const size_t hw = (size_t)in.h * in.w;
    float *x = new_input((size_t)n * shape_numel(in), -1, 2);
    for (int i = 0; i < n; i++)
        for (int c = 0; c < in.c; c++)
            for (size_t j = 0; j < hw; j++) x[((size_t)i * in.c + c) * hw + j] *= 0.5f + c;
    char what[64];
    snprintf(what, sizeof(what), "batchnorm %dx%dx%d n%d %s", in.c, in.h, in.w, n,
             train ? "train" : "eval");
    check_layer(what, &m, 0, n, train, x, NULL, 0, ref_batchnorm);
    free(x);
    model_free(&m);
}

static void test_batchnorm(void)
{
    bn_case((Shape){3, 5, 4}, 3, 1, 51);
    bn_case((Shape){4, 1, 1}, 5, 1, 52); /* BN after a 1x1 map: statistics over the batch only */
    bn_case((Shape){2, 3, 3}, 1, 1, 53); /* one sample */
    bn_case((Shape){3, 5, 4}, 3, 0, 54);
    bn_case((Shape){4, 1, 1}, 2, 0, 55);
}

/* Batch statistics against double sums over the same floats, with a mean 1700x the spread:
 * float data near 1000 keeps 6e-8 of relative precision, which sum(x^2) - n mean^2 would lose
 * (the variance is 3e-7 of the mean squared). The inverse std carries the check; the running
 * variance is 90% its old value, so it checks the batch part only loosely. */
static void test_batchnorm_statistics(void)
{
    const Shape in = {3, 6, 5};
    const int n = 4;
    const size_t hw = (size_t)in.h * in.w, total = (size_t)n * shape_numel(in);
    lcg_seed(57);
    Model m;
    model_init_empty(&m, "bn", in, (int)shape_numel(in));
    model_add_batchnorm(&m, "bn", -1);
    CHECK(model_finalize(&m, n) == 0, "finalize");
    randomise_model(&m);
    Layer *l = &m.layers[0];
    float *x = new_input(total, -1, 1), *y = malloc(sizeof(float) * total);
    for (size_t i = 0; i < total; i++) x[i] += 1000.0f;
    float *run = m.bn_stats + l->stats_off;
    float old[6];
    memcpy(old, run, sizeof(old));
    const LayerCtx ctx = layer_ctx(&m, NULL, 0, n, 1);
    l->ops->forward(l, &ctx, x, NULL, y);
    double worst = 0;
    for (int c = 0; c < in.c; c++) {
        double sum = 0, ss = 0;
        for (int i = 0; i < n; i++)
            for (size_t j = 0; j < hw; j++) sum += x[((size_t)i * in.c + c) * hw + j];
        const double cnt = (double)n * (double)hw, mean = sum / cnt;
        for (int i = 0; i < n; i++)
            for (size_t j = 0; j < hw; j++) {
                const double d = (double)x[((size_t)i * in.c + c) * hw + j] - mean;
                ss += d * d;
            }
        const double inv = 1.0 / sqrt(ss / cnt + (double)l->bn_eps);
        const double want_var = 0.9 * old[in.c + c] + 0.1 * ss / (cnt - 1);
        const double want_mean = 0.9 * old[c] + 0.1 * mean;
        worst = fmax(worst, fabs(run[c] - want_mean) / want_mean);
        worst = fmax(worst, fabs(l->cache2[c] - inv) / inv);
        worst = fmax(worst, fabs(l->cache2[in.c + c] - mean) / mean);
        worst = fmax(worst, fabs(run[in.c + c] - want_var) / want_var);
    }
    CHECK(worst < 2e-6, "batch statistics: worst relative error %g", worst);
    free(x);
    free(y);
    model_free(&m);
}

/* ---------------------------------------------------------------------------------------------
 * Element-wise layers and pools */
static void test_relu(void)
{
    lcg_seed(61);
    const Shape in = {2, 5, 3};
    const int n = 3;
    Model m;
    model_init_empty(&m, "relu", in, (int)shape_numel(in));
    model_add_relu(&m, "relu", -1);
    CHECK(model_finalize(&m, n) == 0, "finalize");
    float *x = xmalloc(sizeof(float) * n * shape_numel(in));
    fill_away_from_zero(x, (size_t)n * shape_numel(in), 0.05, 1.0);
    check_layer("relu", &m, 0, n, 1, x, NULL, 0, ref_relu);
    free(x);
    model_free(&m);
}

static void maxpool_case(Shape in, int k, int s, int p, int n, uint64_t seed)
{
    lcg_seed(seed);
    Model m;
    const int oh = conv_out_size(in.h, k, s, p), ow = conv_out_size(in.w, k, s, p);
    model_init_empty(&m, "maxpool", in, in.c * oh * ow);
    model_add_maxpool(&m, "pool", -1, k, s, p);
    CHECK(model_finalize(&m, n) == 0, "finalize");
    float *x = xmalloc(sizeof(float) * n * shape_numel(in));
    fill_distinct_planes(x, (size_t)n * in.c, (size_t)in.h * in.w);
    char what[64];
    snprintf(what, sizeof(what), "maxpool %dx%dx%d k%d s%d p%d n%d", in.c, in.h, in.w, k, s, p, n);
    check_layer(what, &m, 0, n, 1, x, NULL, 0, ref_maxpool);
    free(x);
    model_free(&m);
}

static void test_maxpool(void)
{
    maxpool_case((Shape){2, 6, 7}, 2, 2, 0, 3, 71); /* odd width: last column unused */
    maxpool_case((Shape){2, 7, 9}, 3, 2, 1, 3, 72); /* ResNet-50 stem pool */
    maxpool_case((Shape){2, 8, 8}, 3, 2, 1, 2, 73);
    maxpool_case((Shape){2, 5, 6}, 3, 1, 1, 3, 74); /* overlapping windows: dx accumulates */
    maxpool_case((Shape){1, 1, 1}, 3, 2, 1, 2, 75); /* one pixel, all padding around it */
}

static void test_global_avgpool(void)
{
    lcg_seed(81);
    const Shape in = {3, 5, 4};
    const int n = 3;
    Model m;
    model_init_empty(&m, "gap", in, in.c);
    model_add_global_avgpool(&m, "gap", -1);
    CHECK(model_finalize(&m, n) == 0, "finalize");
    float *x = new_input((size_t)n * shape_numel(in), -1, 1);
    check_layer("global_avgpool", &m, 0, n, 1, x, NULL, 0, ref_gap);
    free(x);
    model_free(&m);
}

static void test_add(void)
{
    lcg_seed(91);
    const Shape in = {2, 4, 3};
    const int n = 3;
    Model m;
    model_init_empty(&m, "add", in, (int)shape_numel(in));
    model_add_add(&m, "add", -1, -1);
    CHECK(model_finalize(&m, n) == 0, "finalize");
    float *x = new_input((size_t)n * shape_numel(in), -1, 1);
    float *x2 = new_input((size_t)n * shape_numel(in), -1, 1);
    check_layer("add", &m, 0, n, 1, x, x2, 0, ref_add);
    free(x);
    free(x2);
    model_free(&m);
}

static void test_flatten(void)
{
    lcg_seed(101);
    const Shape in = {2, 3, 4};
    const int n = 3;
    Model m;
    model_init_empty(&m, "flatten", in, (int)shape_numel(in));
    model_add_flatten(&m, "flatten", -1);
    CHECK(model_finalize(&m, n) == 0, "finalize");
    CHECK(m.layers[0].y.c == 24 && m.layers[0].y.h == 1 && m.layers[0].y.w == 1, "flatten shape");
    float *x = new_input((size_t)n * shape_numel(in), -1, 1);
    check_layer("flatten", &m, 0, n, 1, x, NULL, 0, ref_flatten);
    free(x);
    model_free(&m);
}

/* ---------------------------------------------------------------------------------------------
 * Softmax cross-entropy with label smoothing: targets (1 - eps) one-hot + eps / K. */
static double ref_xent(const double *z, const int32_t *labels, int n, int K, double eps)
{
    double total = 0;
    for (int i = 0; i < n; i++) {
        const double *zz = z + (size_t)i * K;
        double mx = zz[0];
        for (int k = 1; k < K; k++) mx = zz[k] > mx ? zz[k] : mx;
        double se = 0;
        for (int k = 0; k < K; k++) se += exp(zz[k] - mx);
        const double lse = mx + log(se);
        for (int k = 0; k < K; k++) {
            const double t = (k == labels[i] ? 1.0 - eps : 0.0) + eps / K;
            total -= t * (zz[k] - lse);
        }
    }
    return total;
}

static void xent_case(int n, int K, double eps, float scale, double spread, uint64_t seed)
{
    lcg_seed(seed);
    const size_t len = (size_t)n * K;
    float *z = new_input(len, -spread, spread), *dz = xmalloc(sizeof(float) * len);
    int32_t *labels = xmalloc(sizeof(int32_t) * n);
    int want_correct = 0;
    for (int i = 0; i < n; i++) {
        labels[i] = (int32_t)urand_below((size_t)K);
        if (i % 2 == 0) z[(size_t)i * K + labels[i]] += (float)spread; /* some hits */
        int arg = 0;
        for (int k = 1; k < K; k++)
            if (z[(size_t)i * K + k] > z[(size_t)i * K + arg]) arg = k;
        want_correct += arg == labels[i];
    }
    int correct = -1;
    const double loss = softmax_xent(z, labels, n, K, eps, scale, dz, &correct);
    double *zd = to_double(z, len);
    const double want = ref_xent(zd, labels, n, K, eps);
    char what[80];
    snprintf(what, sizeof(what), "xent n%d K%d eps%g scale%g spread%g", n, K, eps, scale, spread);
    compare(&st_xent, what, 0, loss, want);
    CHECK(fabs(loss - want) <= 1e-9 * fabs(want) + 1e-12, "%s: loss %.17g vs %.17g", what, loss, want);
    CHECK(correct == want_correct, "%s: correct %d, expected %d", what, correct, want_correct);
    for (size_t i = 0; i < len; i++) {
        const double orig = zd[i];
        zd[i] = orig + FD_H;
        const double lp = ref_xent(zd, labels, n, K, eps);
        zd[i] = orig - FD_H;
        const double lm = ref_xent(zd, labels, n, K, eps);
        zd[i] = orig;
        compare(&st_xent, what, i, dz[i], scale * (lp - lm) / (2 * FD_H));
    }
    /* optional outputs */
    const double loss2 = softmax_xent(z, labels, n, K, eps, scale, NULL, NULL);
    CHECK(loss2 == loss, "%s: loss without dlogits differs", what);
    free(z); free(dz); free(labels); free(zd);
}

static void test_softmax_xent(void)
{
    xent_case(5, 7, 0.0, 1.0f, 3, 111);
    xent_case(5, 7, 0.1, 1.0f, 3, 112);
    xent_case(4, 10, 0.1, 0.25f, 3, 113);
    xent_case(6, 3, 0.0, 1.0f / 6, 2, 114);
    xent_case(3, 10, 0.1, 1.0f, 40, 115); /* large logits: no overflow */
    xent_case(2, 2, 0.5, 1.0f, 1, 116);
}

/* ---------------------------------------------------------------------------------------------
 * The model plumbing: model_forward / model_backward on small graphs. The model input's own
 * gradient is never computed (a layer fed by input -1 gets dx = NULL), so to see dx the tested
 * layer is put behind an identity-like first layer: a flatten for linear, and for conv (whose
 * input must keep its c x h x w shape, which flatten would collapse) a ReLU fed with strictly
 * positive inputs, which is then the identity with derivative 1; the tested layer's input
 * gradient lands in m.dact[0]. */
static void plumbing_case(const char *what, int conv, uint64_t seed)
{
    lcg_seed(seed);
    const int max_batch = 4, n = 3;
    const Shape in = conv ? (Shape){2, 7, 6} : (Shape){2, 3, 2};
    const int oc = 3, k = 3, s = 2, p = 1;
    const int classes = conv ? oc * conv_out_size(in.h, k, s, p) * conv_out_size(in.w, k, s, p) : 5;
    Model m;
    model_init_empty(&m, what, in, classes);
    if (conv) {
        model_add_conv(&m, "conv", model_add_relu(&m, "relu", -1), oc, k, s, p, 1);
    } else {
        model_add_linear(&m, "fc", model_add_flatten(&m, "flatten", -1), classes, 1);
    }
    CHECK(model_finalize(&m, max_batch) == 0, "finalize");
    CHECK(shape_numel(m.layers[1].y) == (size_t)classes, "classes = output numel");
    randomise_model(&m);
    const size_t nin = (size_t)n * shape_numel(in), nout = (size_t)n * classes;
    float *x = new_input(nin, 0.1, 1.0), *r = new_input(nout, -1, 1);
    for (size_t i = 0; i < m.n_params; i++) m.grads[i] = 1000.0f;
    const float *y = model_forward(&m, m.params, x, n, 1);
    /* layer 0 (a flatten or ReLU of the model input) precedes every parameter: backward must
     * not spend a pass on its output gradient (needs_grad), so the marks stay. A flatten is a
     * view with no buffers at all (model.h): its reader reads the input itself. */
    const int view = m.layers[0].kind == LAYER_FLATTEN;
    CHECK(!view || (m.act[0] == NULL && m.dact[0] == NULL && model_view_source(&m, 0) == -1),
          "%s: the flatten has buffers of its own", what);
    if (!view)
        for (size_t i = 0; i < nin; i++) m.dact[0][i] = NAN;
    model_backward(&m, m.params, x, r, n);
    size_t written = 0;
    for (size_t i = 0; !view && i < nin; i++) written += !isnan(m.dact[0][i]);
    CHECK(!m.layers[0].needs_grad && m.layers[1].needs_grad && written == 0,
          "%s: %zu input-side gradients computed", what, written);

    const Layer *l = &m.layers[1];
    double *xd = to_double(x, nin), *wd = to_double(m.params, m.n_params);
    double *rd = to_double(r, nout), *yd = xmalloc(sizeof(double) * nout);
    RefCtx rc = {l, n, 1, wd, NULL};
    RefFn ref = conv ? ref_conv : ref_linear;
    ref(&rc, xd, NULL, yd);
    char name[96];
    snprintf(name, sizeof(name), "%s: logits", what);
    for (size_t i = 0; i < nout; i++) compare(&st_fwd, name, i, y[i], yd[i]);
    /* the input gradient it skipped is what the layer computes when asked */
    float *dx = xmalloc(sizeof(float) * nin);
    memset(dx, 0, sizeof(float) * nin);
    const LayerCtx ctx = model_ctx(&m, m.params, n, 1);
    float *saved = xmalloc(sizeof(float) * m.n_params);
    memcpy(saved, m.grads, sizeof(float) * m.n_params);
    m.layers[1].ops->backward(&m.layers[1], &ctx, view ? x : m.act[0], NULL, m.act[1], r, dx,
                              NULL);
    memcpy(m.grads, saved, sizeof(float) * m.n_params);
    snprintf(name, sizeof(name), "%s: dx of layer 1", what);
    fd_check(name, ref, &rc, xd, NULL, xd, nin, rd, yd, nout, dx, NULL);
    free(dx);
    free(saved);
    snprintf(name, sizeof(name), "%s: dweight", what);
    fd_check(name, ref, &rc, xd, NULL, wd + l->weight_off, l->weight_len, rd, yd, nout,
             m.grads + l->weight_off, NULL);
    snprintf(name, sizeof(name), "%s: dbias", what);
    fd_check(name, ref, &rc, xd, NULL, wd + l->bias_off, l->bias_len, rd, yd, nout,
             m.grads + l->bias_off, NULL);
    free(x); free(r); free(xd); free(wd); free(rd); free(yd);
    model_free(&m);
}

/* A flatten is a view except as the last layer (model.h), where its buffers hold the logits:
 * a linear layer then a flatten gives the linear layer's outputs, and a flatten of the input
 * ahead of it has no buffers. */
static void test_flatten_views(void)
{
    Model m;
    model_init_empty(&m, "views", (Shape){2, 3, 2}, 5);
    const int f0 = model_add_flatten(&m, "f0", -1);
    const int fc = model_add_linear(&m, "fc", f0, 5, 1);
    const int f1 = model_add_flatten(&m, "f1", fc);
    CHECK(model_finalize(&m, 2) == 0, "finalize");
    randomise_model(&m);
    float x[24];
    for (int i = 0; i < 24; i++) x[i] = 0.1f * (float)(i % 7) - 0.3f;
    const float *y = model_forward(&m, m.params, x, 2, 1);
    CHECK(!m.act[f0] && m.act[f1] && y == m.act[f1], "f0 a view, f1 (last) its own buffer");
    int same = 1;
    for (int i = 0; i < 10; i++) same &= y[i] == m.act[fc][i];
    CHECK(same, "the last flatten does not copy the logits");
    float dl[10] = {1, -1, 0.5f, 0, 2, -2, 1, 0, 0.25f, 3};
    model_backward(&m, m.params, x, dl, 2);
    double db = 0; /* the bias gradient of fc: the summed logit gradients */
    for (int i = 0; i < 2; i++) db += dl[i * 5];
    CHECK(m.grads[m.layers[fc].bias_off] == (float)db, "gradient through the last flatten");
    model_free(&m);
}

static void test_model_plumbing(void)
{
    plumbing_case("flatten+linear via model", 0, 121);
    plumbing_case("relu+conv via model", 1, 122);
}

/* ---------------------------------------------------------------------------------------------
 * Whole models: the gradient of the summed loss (softmax_xent, scale 1) from model_backward
 * against central differences in float through model_forward in train mode (BN uses batch
 * statistics, so the running-statistics updates of each forward pass do not matter).
 *
 * Per-coordinate float differences through these networks are noisy: a step of one weight moves
 * thousands of ReLU / max-pool inputs, some of which cross their kink, and a smaller step drowns
 * in float rounding (measured: with h = 1e-2 about 25% of coordinates miss a 2% tolerance, and
 * 2-5% still miss it at the best of h in 4e-3 .. 2.5e-4, although the differences converge to
 * the analytic value as h shrinks). So the main check is a directional derivative for EVERY
 * tensor along that tensor's normalised analytic gradient d = g / |g|: the difference quotient
 * must equal |g|. A misplaced, mis-scaled or missing gradient component makes the true
 * derivative along d differ from |g|, and the signal is |g| rather than one small component.
 * It is taken at the best of three steps (the kink error grows with h, the rounding error as
 * 1/h; a real error shows at every step). A sample of single coordinates across the tensors is
 * checked too, also at the best of three steps, and most of them must agree. */
#ifndef MODEL_DIR_H
#define MODEL_DIR_H 3e-4 /* and h/2, h/4 */
#endif
#define MODEL_COORD_PASS 0.75

static ErrStat st_coord = {"model coords (75% must pass)", 1e-3, 2e-2, 0, 0, 0};

static double model_loss(Model *m, const float *x, const int32_t *labels, int n)
{
    const float *z = model_forward(m, m->params, x, n, 1);
    return softmax_xent(z, labels, n, m->classes, 0.0, 1.0f, NULL, NULL);
}

static void whole_model_case(const char *name, Shape in, int classes, int n, int samples,
                             uint64_t seed)
{
    lcg_seed(seed);
    Model m;
    CHECK(model_build(&m, name, in, classes, n, seed) == 0, "model_build %s", name);
    if (check_case_failed) return;
    const size_t nin = (size_t)n * shape_numel(in), nlog = (size_t)n * classes;
    float *x = new_input(nin, -1, 1), *dz = xmalloc(sizeof(float) * nlog);
    int32_t *labels = xmalloc(sizeof(int32_t) * n);
    for (int i = 0; i < n; i++) labels[i] = (int32_t)urand_below((size_t)classes);
    /* non-trivial BN affine parameters and biases, so that their gradients are generic */
    for (int t = 0; t < m.n_tensors; t++) {
        const ParamTensor *pt = &m.tensors[t];
        if (pt->kind == PARAM_BN_GAMMA) fill_uniform(m.params + pt->off, pt->len, 0.7, 1.3);
        if (pt->kind == PARAM_BN_BETA || pt->kind == PARAM_BIAS)
            fill_uniform(m.params + pt->off, pt->len, -0.1, 0.1);
    }

    /* every activation-gradient buffer has exactly one first writer (layer.h: dx_first) */
    for (int i = 0; i < m.n_layers - 1; i++) {
        const Layer *li = &m.layers[i];
        if (!m.dact[i] || li->fused || !li->needs_grad) continue;
        int writers = 0;
        for (int j = i + 1; j < m.n_layers; j++) {
            const Layer *lj = &m.layers[j];
            int a = model_view_source(&m, lj->in), b = model_view_source(&m, lj->in2);
            while (a >= 0 && m.layers[a].fused) a = m.layers[a].in;
            while (b >= 0 && m.layers[b].fused) b = m.layers[b].in;
            writers += (lj->dx_first && a == i) + (lj->dx2_first && b == i);
        }
        CHECK(writers == 1, "%s: layer %s's gradient has %d first writers", name, li->name,
              writers);
    }

    /* gradient buffers whose live spans in backward do not meet are shared (model.h) */
    int owners = 0;
    for (int i = 0; i < m.n_layers; i++) owners += !m.layers[i].fused && m.dact[i] != NULL;
    CHECK(m.n_grad_slots > 1 && m.n_grad_slots < owners, "%s: %d gradient buffers for %d layers",
          name, m.n_grad_slots, owners);
    printf("  %s: %d gradient buffers for %d layers' output gradients\n", name, m.n_grad_slots,
           owners);

    /* analytic gradient, twice: bit-identical (the running statistics change in between,
     * which train mode does not read); before the second, every activation-gradient buffer
     * holds NaN: backward must write each before it reads it (no zeroing up front) */
    float *g[2], *zz[2];
    for (int run = 0; run < 2; run++) {
        const float *z = model_forward(&m, m.params, x, n, 1);
        zz[run] = xmalloc(sizeof(float) * nlog);
        memcpy(zz[run], z, sizeof(float) * nlog);
        softmax_xent(z, labels, n, classes, 0.0, 1.0f, dz, NULL);
        for (size_t i = 0; i < m.n_params; i++) m.grads[i] = NAN; /* overwritten, not summed */
        for (int i = 0; run == 1 && i < m.n_layers - 1; i++)
            if (m.dact[i] && !m.layers[i].fused)
                for (size_t j = 0; j < (size_t)n * shape_numel(m.layers[i].y); j++)
                    m.dact[i][j] = NAN;
        model_backward(&m, m.params, x, dz, n);
        g[run] = xmalloc(sizeof(float) * m.n_params);
        memcpy(g[run], m.grads, sizeof(float) * m.n_params);
    }
    CHECK(!memcmp(zz[0], zz[1], sizeof(float) * nlog), "%s: forward not deterministic", name);
    CHECK(!memcmp(g[0], g[1], sizeof(float) * m.n_params), "%s: backward not deterministic",
          name);
    for (size_t i = 0; i < m.n_params; i++)
        if (!isfinite(g[0][i])) {
            CHECK(isfinite(g[0][i]), "%s: gradient %zu not written", name, i);
            break;
        }

    /* directional derivative per tensor */
    char what[96];
    float *p0 = xmalloc(sizeof(float) * m.n_params);
    memcpy(p0, m.params, sizeof(float) * m.n_params);
    for (int t = 0; t < m.n_tensors; t++) {
        const ParamTensor *pt = &m.tensors[t];
        const float *gt = g[0] + pt->off;
        double norm = 0;
        for (size_t i = 0; i < pt->len; i++) norm += (double)gt[i] * gt[i];
        norm = sqrt(norm);
        CHECK(norm > 0, "%s: %s has an all-zero gradient", name, pt->name);
        if (!(norm > 0)) continue;
        /* L(p0 + h d) - L(p0 - h d) with d = g / |g|, over the step actually taken along d
         * after rounding the perturbed parameters to float; the best of three h */
        float *p = m.params + pt->off;
        double best = INFINITY, best_fd = 0;
        for (int k = 0; k < 3; k++) {
            double L[2], step = 0;
            for (int sgn = 0; sgn < 2; sgn++) {
                const double h = (sgn ? -1 : 1) * MODEL_DIR_H / (1 << k);
                for (size_t i = 0; i < pt->len; i++) {
                    p[i] = (float)(p0[pt->off + i] + h * gt[i] / norm);
                    step += (sgn ? -1.0 : 1.0) * (double)p[i] * gt[i] / norm;
                }
                L[sgn] = model_loss(&m, x, labels, n);
            }
            const double fd = (L[0] - L[1]) / step;
            if (fabs(fd - norm) < best) { best = fabs(fd - norm); best_fd = fd; }
        }
        memcpy(p, p0 + pt->off, sizeof(float) * pt->len);
        snprintf(what, sizeof(what), "%s: |grad %s| vs directional FD", name, pt->name);
        compare(&st_model, what, (size_t)t, norm, best_fd);
    }

    /* single coordinates, spread over the tensors */
    static const float hs[3] = {1e-3f, 5e-4f, 2.5e-4f};
    int passed = 0;
    for (int j = 0; j < samples; j++) {
        const ParamTensor *pt = &m.tensors[(size_t)j * m.n_tensors / samples];
        const size_t i = pt->off + urand_below(pt->len);
        double best = INFINITY, best_err = 0;
        for (int k = 0; k < 3; k++) {
            const float orig = m.params[i], h = hs[k];
            m.params[i] = orig + h;
            const double lp = model_loss(&m, x, labels, n);
            m.params[i] = orig - h;
            const double lm = model_loss(&m, x, labels, n);
            m.params[i] = orig;
            const double fd = (lp - lm) / ((double)(orig + h) - (double)(orig - h));
            const double err = fabs(g[0][i] - fd);
            const double frac = err / (st_coord.atol + st_coord.rtol * fabs(fd));
            if (frac < best) { best = frac; best_err = err; }
        }
        passed += best <= 1;
        st_coord.compared++;
        if (best_err > st_coord.max_abs) st_coord.max_abs = best_err;
        if (best > st_coord.max_frac) st_coord.max_frac = best;
    }
    CHECK(passed >= MODEL_COORD_PASS * samples, "%s: only %d of %d coordinates agree with FD",
          name, passed, samples);
    printf("  %s: %d tensors by directional FD, %d/%d sampled coordinates within tolerance\n",
           name, m.n_tensors, passed, samples);
    free(x); free(dz); free(labels); free(p0);
    for (int run = 0; run < 2; run++) { free(g[run]); free(zz[run]); }
    model_free(&m);
}

static void test_lenet5(void) { whole_model_case("lenet5", (Shape){1, 28, 28}, 10, 2, 20, 131); }

static void test_resnet20(void) { whole_model_case("resnet20", (Shape){3, 8, 8}, 10, 3, 24, 132); }

/* The conv checks and the whole ResNet-20 check again with dense convolutions on oneDNN
 * (--conv-backend onednn): the same references, finite differences and repeat-bit checks. */
static void test_conv_onednn(void)
{
    if (conv_backend_set(CONV_BACKEND_ONEDNN)) {
        SKIP_CASE("built without oneDNN (ONEDNN=0)");
    }
    test_conv();
    test_conv_chunked();
    test_resnet20();
    conv_backend_set(CONV_BACKEND_OWN);
}

/* ---------------------------------------------------------------------------------------------
 * ReLU fusion (layer.h): a graph with every kind of producer a ReLU can fuse into (BN and add,
 * which apply it in their own passes; conv and linear, where the model loop applies it in
 * place) and a ReLU that must not fuse (its producer has a second consumer). The fused model
 * must compute exactly what the unfused one does: outputs, every gradient, BN statistics. */
static int fusion_graph(Model *m, int unfused, int n)
{
    model_init_empty(m, "fusion", (Shape){3, 6, 6}, 5);
    m->unfused = unfused;
    const int r1 = model_add_relu(m, "r1", model_add_conv(m, "c1", -1, 4, 3, 1, 1, 1));
    const int b1 = model_add_batchnorm(m, "b1", model_add_conv(m, "c2", r1, 4, 3, 1, 1, 0));
    const int r2 = model_add_relu(m, "r2", b1);
    const int b2 = model_add_batchnorm(m, "b2", model_add_conv(m, "c3", r2, 4, 3, 1, 1, 0));
    const int r3 = model_add_relu(m, "r3", model_add_add(m, "a1", b2, r1));
    const int b3 = model_add_batchnorm(m, "b3", r3);
    const int a2 = model_add_add(m, "a2", model_add_relu(m, "r4", b3), b3); /* b3: 2 readers */
    int x = model_add_flatten(m, "flat", model_add_global_avgpool(m, "gap", a2));
    x = model_add_relu(m, "r5", model_add_linear(m, "fc1", x, 8, 1));
    model_add_linear(m, "fc2", x, 5, 1);
    return model_finalize(m, n);
}

static void test_relu_fusion(void)
{
    const int n = 4, classes = 5;
    Model m[2];
    for (int u = 0; u < 2; u++) CHECK(fusion_graph(&m[u], u, n) == 0, "finalize");
    int fused = 0, unfused_flags = 0;
    for (int i = 0; i < m[0].n_layers; i++) {
        fused += m[0].layers[i].fused;
        unfused_flags += m[1].layers[i].fused + m[1].layers[i].relu_fused;
        if (m[0].layers[i].fused) {
            CHECK(m[0].act[i] == m[0].act[m[0].layers[i].in], "fused layer %d has its own buffer", i);
            CHECK(m[0].layers[m[0].layers[i].in].relu_fused, "producer of %d not marked", i);
        }
    }
    CHECK(fused == 4, "%d ReLUs fused, expected 4 (r1, r2, r3, r5; not r4)", fused);
    CHECK(unfused_flags == 0, "the unfused model fused something");
    lcg_seed(71);
    randomise_model(&m[1]);
    memcpy(m[0].params, m[1].params, sizeof(float) * m[1].n_params);
    memcpy(m[0].bn_stats, m[1].bn_stats, sizeof(float) * m[1].n_bn_stats);
    const size_t nx = (size_t)n * shape_numel(m[0].input);
    float *x = new_input(nx, -1, 1), *dz = xmalloc(sizeof(float) * n * classes);
    int32_t labels[4] = {0, 3, 1, 4};
    float *logits[2], *eval[2], *grads[2];
    for (int u = 0; u < 2; u++) {
        const float *z = model_forward(&m[u], m[u].params, x, n, 1);
        logits[u] = xmalloc(sizeof(float) * n * classes);
        memcpy(logits[u], z, sizeof(float) * n * classes);
        softmax_xent(z, labels, n, classes, 0.0, 1.0f, dz, NULL);
        model_backward(&m[u], m[u].params, x, dz, n);
        grads[u] = xmalloc(sizeof(float) * m[u].n_params);
        memcpy(grads[u], m[u].grads, sizeof(float) * m[u].n_params);
        z = model_forward(&m[u], m[u].params, x, n, 0);
        eval[u] = xmalloc(sizeof(float) * n * classes);
        memcpy(eval[u], z, sizeof(float) * n * classes);
    }
    size_t diff = 0, nonzero = 0;
    for (int i = 0; i < n * classes; i++) diff += logits[0][i] != logits[1][i];
    CHECK(diff == 0, "training logits differ in %zu of %d", diff, n * classes);
    diff = 0;
    for (int i = 0; i < n * classes; i++) diff += eval[0][i] != eval[1][i];
    CHECK(diff == 0, "evaluation logits differ in %zu of %d", diff, n * classes);
    diff = 0;
    for (size_t i = 0; i < m[0].n_params; i++) {
        diff += grads[0][i] != grads[1][i];
        nonzero += grads[0][i] != 0.0f;
    }
    CHECK(diff == 0, "gradients differ in %zu of %zu", diff, m[0].n_params);
    CHECK(nonzero > m[0].n_params / 2, "only %zu of %zu gradients are non-zero", nonzero,
          m[0].n_params);
    CHECK(!memcmp(m[0].bn_stats, m[1].bn_stats, sizeof(float) * m[0].n_bn_stats),
          "BN running statistics differ");
    printf("  fused %d of 5 ReLUs; logits, %zu gradients (%zu non-zero), BN statistics equal\n",
           fused, m[0].n_params, nonzero);
    for (int u = 0; u < 2; u++) {
        free(logits[u]); free(eval[u]); free(grads[u]);
        model_free(&m[u]);
    }
    free(x); free(dz);
}

/* ------------------------------------------------------------------------------------------- */
static void print_stat(const ErrStat *st)
{
    printf("  %-26s %7ld compared, max |err| %.3g, max err/tol %.3f (atol %g, rtol %g)\n",
           st->name, st->compared, st->max_abs, st->max_frac, st->atol, st->rtol);
}

int main(void)
{
    RUN(test_linear);
    RUN(test_conv);
    RUN(test_conv_chunked);
    RUN(test_conv_chunk_consistency);
    RUN(test_batchnorm);
    RUN(test_batchnorm_statistics);
    RUN(test_relu);
    RUN(test_maxpool);
    RUN(test_global_avgpool);
    RUN(test_add);
    RUN(test_flatten);
    RUN(test_relu_fusion);
    RUN(test_softmax_xent);
    RUN(test_model_plumbing);
    RUN(test_flatten_views);
    RUN(test_lenet5);
    RUN(test_resnet20);
    RUN(test_conv_onednn);
    print_stat(&st_fwd);
    print_stat(&st_grad);
    print_stat(&st_stats);
    print_stat(&st_xent);
    print_stat(&st_model);
    print_stat(&st_coord);
    return CHECK_SUMMARY();
}
