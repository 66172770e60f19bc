/* Batch normalisation over (N, H, W) per channel, PyTorch semantics: biased variance to
 * normalise, unbiased variance into the running estimate, momentum 0.1, eps 1e-5.
 *
 * One thread per channel, so every sum has a fixed order. Sums run in float over blocks of at
 * most SUM_BLOCK elements of a (sample, channel) plane, which the compiler vectorises (omp
 * simd), and the blocks are added in double: as accurate as a double running sum for these
 * lengths and several times faster than its one-element dependency chain. x_hat is recomputed
 * from x in backward (the same float expression, so the same bits) instead of being cached:
 * a write of the whole activation saved in forward, a read of x instead of the cache in
 * backward. A fused ReLU (layer.h) is applied on the output and on the incoming gradient. */
#include "cigl/layer.h"

#include "cigl/comm.h"

#include <math.h>
#include <stdlib.h>

enum { SUM_BLOCK = 1024 };

/* sum of x[0..len) */
static double sum_of(const float *restrict x, size_t len)
{
    double total = 0;
    for (size_t b = 0; b < len; b += SUM_BLOCK) {
        const size_t e = b + SUM_BLOCK < len ? b + SUM_BLOCK : len;
        float s = 0;
#pragma omp simd reduction(+ : s)
        for (size_t j = b; j < e; j++) s += x[j];
        total += s;
    }
    return total;
}

/* sum of (x - mean)^2 over x[0..len) */
static double squared_deviations(const float *restrict x, size_t len, float mean)
{
    double total = 0;
    for (size_t b = 0; b < len; b += SUM_BLOCK) {
        const size_t e = b + SUM_BLOCK < len ? b + SUM_BLOCK : len;
        float s = 0;
#pragma omp simd reduction(+ : s)
        for (size_t j = b; j < e; j++) {
            const float d = x[j] - mean;
            s += d * d;
        }
        total += s;
    }
    return total;
}

/* The two sums backward needs over one plane: sum(g) and sum(g * x_hat), with g = dy, or
 * dy where y > 0 under a fused ReLU, and x_hat = (x - mean) * inv_std. */
static void gradient_sums(const float *restrict x, const float *restrict y,
                          const float *restrict dy, size_t len, float mean, float inv_std,
                          int relu, double *sg, double *sgx)
{
    for (size_t b = 0; b < len; b += SUM_BLOCK) {
        const size_t e = b + SUM_BLOCK < len ? b + SUM_BLOCK : len;
        float s = 0, sx = 0;
        if (relu) {
#pragma omp simd reduction(+ : s, sx)
            for (size_t j = b; j < e; j++) {
                const float g = relu_grad(y[j], dy[j]);
                s += g;
                sx += g * ((x[j] - mean) * inv_std);
            }
        } else {
#pragma omp simd reduction(+ : s, sx)
            for (size_t j = b; j < e; j++) {
                s += dy[j];
                sx += dy[j] * ((x[j] - mean) * inv_std);
            }
        }
        *sg += s;
        *sgx += sx;
    }
}

/* Per-channel mean and inverse std of the batch (reduced over l->sync's ranks when set) into
 * l->cache2, and the running estimates' update. stats holds 2c + 1 doubles of scratch. */
static void batch_statistics(Layer *l, const LayerCtx *ctx, const float *x, double *stats)
{
    const int n = ctx->n, c = l->x.c;
    const size_t hw = (size_t)l->x.h * l->x.w;
    double *s1 = stats, *s2 = stats + c;
#pragma omp parallel for schedule(static)
    for (int ch = 0; ch < c; ch++) {
        double s = 0;
        for (int i = 0; i < n; i++) s += sum_of(x + ((size_t)i * c + ch) * hw, hw);
        s1[ch] = s;
    }
    s1[c] = (double)n * (double)hw; /* the element count rides along in the reduction */
    if (l->sync) l->sync->allreduce_double(l->sync, s1, (size_t)c + 1);
    const double m = s1[c];
    for (int ch = 0; ch < c; ch++) s1[ch] = m > 0 ? s1[ch] / m : 0.0; /* now the mean */
#pragma omp parallel for schedule(static)
    for (int ch = 0; ch < c; ch++) {
        double ss = 0;
        for (int i = 0; i < n; i++)
            ss += squared_deviations(x + ((size_t)i * c + ch) * hw, hw, (float)s1[ch]);
        s2[ch] = ss;
    }
    if (l->sync) l->sync->allreduce_double(l->sync, s2, (size_t)c);
    float *run_mean = ctx->bn_stats + l->stats_off, *run_var = run_mean + c;
    for (int ch = 0; ch < c; ch++) {
        const double var = m > 0 ? s2[ch] / m : 0.0;
        const double unbiased = m > 1 ? s2[ch] / (m - 1) : var;
        run_mean[ch] = (float)((1.0 - l->bn_momentum) * run_mean[ch] + l->bn_momentum * s1[ch]);
        run_var[ch] = (float)((1.0 - l->bn_momentum) * run_var[ch] + l->bn_momentum * unbiased);
        l->cache2[ch] = (float)(1.0 / sqrt(var + l->bn_eps));
        l->cache2[c + ch] = (float)s1[ch];
    }
}

/* The mean and inverse std that normalise channel ch: the batch's in training (computed by
 * forward), the running estimates' otherwise. */
static void running_norm(const Layer *l, const LayerCtx *ctx, int ch, float *mean,
                         float *inv_std)
{
    const float *run = ctx->bn_stats + l->stats_off;
    *mean = run[ch];
    *inv_std = (float)(1.0 / sqrt((double)run[l->x.c + ch] + l->bn_eps));
}

static void channel_norm(const Layer *l, const LayerCtx *ctx, int ch, float *mean, float *inv_std)
{
    if (!ctx->train) {
        running_norm(l, ctx, ch, mean, inv_std);
        return;
    }
    *mean = l->cache2[l->x.c + ch];
    *inv_std = l->cache2[ch];
}

/* y = g * ((x - mean) * inv_std) + b over count floats, then max(., 0) with a fused ReLU. */
static inline void bn_affine(const float *x, float *y, size_t count, float mean, float inv_std,
                             float g, float b, int relu)
{
    if (relu) {
#pragma omp simd
        for (size_t j = 0; j < count; j++) {
            const float v = g * ((x[j] - mean) * inv_std) + b;
            y[j] = v > 0.0f ? v : 0.0f;
        }
    } else {
#pragma omp simd
        for (size_t j = 0; j < count; j++) y[j] = g * ((x[j] - mean) * inv_std) + b;
    }
}

void bn_eval_plane(const Layer *bn, const LayerCtx *ctx, int ch, const float *src, size_t ld,
                   int rows, int cols, float *dst)
{
    float fm, fi;
    running_norm(bn, ctx, ch, &fm, &fi);
    const float g = ctx->weights[bn->weight_off + ch], b = ctx->weights[bn->bias_off + ch];
    for (int r = 0; r < rows; r++)
        bn_affine(src + (size_t)r * ld, dst + (size_t)r * cols, (size_t)cols, fm, fi, g, b,
                  bn->relu_fused);
}

static void bn_forward(Layer *l, const LayerCtx *ctx, const float *x, const float *x2, float *y)
{
    (void)x2;
    const int n = ctx->n, c = l->x.c, relu = l->relu_fused;
    const size_t hw = (size_t)l->x.h * l->x.w;
    const float *gamma = ctx->weights + l->weight_off, *beta = ctx->weights + l->bias_off;
    if (ctx->train) {
        double stats_small[2 * 64 + 1], *stats = stats_small;
        if (c > 64 && !(stats = malloc(sizeof(double) * (2 * (size_t)c + 1)))) return;
        batch_statistics(l, ctx, x, stats);
        if (stats != stats_small) free(stats);
    }
#pragma omp parallel for schedule(static)
    for (int ch = 0; ch < c; ch++) {
        float fm, fi;
        channel_norm(l, ctx, ch, &fm, &fi);
        for (int i = 0; i < n; i++) {
            const size_t off = ((size_t)i * c + ch) * hw;
            bn_affine(x + off, y + off, hw, fm, fi, gamma[ch], beta[ch], relu);
        }
    }
}

static void bn_backward(Layer *l, const LayerCtx *ctx, const float *x, const float *x2,
                        const float *y, const float *dy, float *dx, float *dx2)
{
    (void)x2; (void)dx2;
    const int n = ctx->n, c = l->x.c, relu = l->relu_fused, train = ctx->train;
    const size_t hw = (size_t)l->x.h * l->x.w, m = (size_t)n * hw;
    const float *gamma = ctx->weights + l->weight_off;
    float *dgamma = ctx->grads + l->weight_off, *dbeta = ctx->grads + l->bias_off;
#pragma omp parallel for schedule(static)
    for (int ch = 0; ch < c; ch++) {
        float fm, fi;
        channel_norm(l, ctx, ch, &fm, &fi);
        double sdy = 0, sdyxh = 0;
        for (int i = 0; i < n; i++) {
            const size_t off = ((size_t)i * c + ch) * hw;
            gradient_sums(x + off, y + off, dy + off, hw, fm, fi, relu, &sdy, &sdyxh);
        }
        dgamma[ch] = (float)sdyxh;
        dbeta[ch] = (float)sdy;
        if (!dx) continue;
        /* training: dx = gamma * inv_std / m * (m * g - sum(g) - x_hat * sum(g * x_hat));
         * running statistics are constants: dx = gamma * inv_std * g */
        const float k = train ? gamma[ch] * fi / (float)m : gamma[ch] * fi;
        const float fmf = train ? (float)m : 1.0f, a = train ? (float)sdy : 0.0f;
        const float bcoef = train ? (float)sdyxh : 0.0f;
        for (int i = 0; i < n; i++) {
            const size_t off = ((size_t)i * c + ch) * hw;
            const float *restrict xx = x + off, *restrict yy = y + off, *restrict dd = dy + off;
            float *restrict dxx = dx + off;
            /* the first writer stores (layer.h); separate loops, so a store never reads dx */
#define BN_DX(g) (k * (fmf * (g) - a - ((xx[j] - fm) * fi) * bcoef))
            /* clang-tidy compares omp simd loops as equal: these branches differ (= vs +=) */
            if (l->dx_first) { // NOLINT(bugprone-branch-clone)
                if (relu) {
#pragma omp simd
                    for (size_t j = 0; j < hw; j++) dxx[j] = BN_DX(relu_grad(yy[j], dd[j]));
                } else {
#pragma omp simd
                    for (size_t j = 0; j < hw; j++) dxx[j] = BN_DX(dd[j]);
                }
            } else {
                if (relu) {
#pragma omp simd
                    for (size_t j = 0; j < hw; j++) dxx[j] += BN_DX(relu_grad(yy[j], dd[j]));
                } else {
#pragma omp simd
                    for (size_t j = 0; j < hw; j++) dxx[j] += BN_DX(dd[j]);
                }
            }
#undef BN_DX
        }
    }
}

const LayerOps batchnorm_ops = {"batchnorm", bn_forward, bn_backward, 1, 1};
