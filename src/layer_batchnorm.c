/* Batch normalisation over (N, H, W) per channel, PyTorch semantics: biased variance to
 * normalise, unbiased variance into the running estimate, momentum 0.1, eps 1e-5. Sums are
 * taken in double per channel (one thread per channel, so the order is fixed). */
#include "cigl/layer.h"

#include "cigl/comm.h"

#include <math.h>
#include <stdlib.h>

/* Per-channel mean and inverse std of the batch (reduced over l->sync's ranks when set), and
 * the running estimates' update. stats holds 2c + 1 doubles of scratch. */
static void batch_statistics(Layer *l, const LayerCtx *ctx, const float *x, double *stats)
{
    const int n = ctx->n, c = l->x.c;
    const size_t hw = (size_t)l->x.h * l->x.w;
    double *s1 = stats, *s2 = stats + c;
#pragma omp parallel for schedule(static)
    for (int ch = 0; ch < c; ch++) {
        double s = 0;
        for (int i = 0; i < n; i++) {
            const float *xx = x + ((size_t)i * c + ch) * hw;
            for (size_t j = 0; j < hw; j++) s += xx[j];
        }
        s1[ch] = s;
    }
    s1[c] = (double)n * (double)hw; /* the element count rides along in the reduction */
    if (l->sync) l->sync->allreduce_double(l->sync, s1, (size_t)c + 1);
    const double m = s1[c];
    for (int ch = 0; ch < c; ch++) s1[ch] = m > 0 ? s1[ch] / m : 0.0; /* now the mean */
#pragma omp parallel for schedule(static)
    for (int ch = 0; ch < c; ch++) {
        double ss = 0;
        const double mean = s1[ch];
        for (int i = 0; i < n; i++) {
            const float *xx = x + ((size_t)i * c + ch) * hw;
            for (size_t j = 0; j < hw; j++) {
                const double d = xx[j] - mean;
                ss += d * d;
            }
        }
        s2[ch] = ss;
    }
    if (l->sync) l->sync->allreduce_double(l->sync, s2, (size_t)c);
    float *run_mean = ctx->bn_stats + l->stats_off, *run_var = run_mean + c;
    for (int ch = 0; ch < c; ch++) {
        const double var = m > 0 ? s2[ch] / m : 0.0;
        const double unbiased = m > 1 ? s2[ch] / (m - 1) : var;
        run_mean[ch] = (float)((1.0 - l->bn_momentum) * run_mean[ch] + l->bn_momentum * s1[ch]);
        run_var[ch] = (float)((1.0 - l->bn_momentum) * run_var[ch] + l->bn_momentum * unbiased);
        s2[ch] = 1.0 / sqrt(var + l->bn_eps); /* now the inverse std */
        l->cache2[ch] = (float)s2[ch];
    }
}

static void bn_forward(Layer *l, const LayerCtx *ctx, const float *x, const float *x2, float *y)
{
    (void)x2;
    const int n = ctx->n, c = l->x.c;
    const size_t hw = (size_t)l->x.h * l->x.w;
    const float *gamma = ctx->weights + l->weight_off, *beta = ctx->weights + l->bias_off;
    const float *run_mean = ctx->bn_stats + l->stats_off, *run_var = run_mean + c;
    const int train = ctx->train;
    double stats_small[2 * 64 + 1], *stats = stats_small;
    if (train && c > 64 && !(stats = malloc(sizeof(double) * (2 * (size_t)c + 1)))) return;
    if (train) batch_statistics(l, ctx, x, stats);
#pragma omp parallel for schedule(static)
    for (int ch = 0; ch < c; ch++) {
        const double mean = train ? stats[ch] : run_mean[ch];
        const double inv_std = train ? stats[c + ch] : 1.0 / sqrt((double)run_var[ch] + l->bn_eps);
        const float fm = (float)mean, fi = (float)inv_std, g = gamma[ch], b = beta[ch];
        for (int i = 0; i < n; i++) {
            const size_t off = ((size_t)i * c + ch) * hw;
            const float *xx = x + off;
            float *yy = y + off;
            if (train) {
                float *xh = l->cache + off;
                for (size_t j = 0; j < hw; j++) {
                    xh[j] = (xx[j] - fm) * fi;
                    yy[j] = g * xh[j] + b;
                }
            } else {
                for (size_t j = 0; j < hw; j++) yy[j] = g * (xx[j] - fm) * fi + b;
            }
        }
    }
    if (stats != stats_small) free(stats);
}

static void bn_backward(Layer *l, const LayerCtx *ctx, const float *x, const float *x2,
                        const float *y, const float *dy, float *dx, float *dx2)
{
    (void)x2; (void)y; (void)dx2;
    const int n = ctx->n, c = l->x.c;
    const size_t hw = (size_t)l->x.h * l->x.w, m = (size_t)n * hw;
    const float *gamma = ctx->weights + l->weight_off;
    const float *run_var = ctx->bn_stats + l->stats_off + c;
    float *dgamma = ctx->grads + l->weight_off, *dbeta = ctx->grads + l->bias_off;
    const int train = ctx->train;
#pragma omp parallel for schedule(static)
    for (int ch = 0; ch < c; ch++) {
        double sdy = 0, sdyxh = 0;
        for (int i = 0; i < n; i++) {
            const size_t off = ((size_t)i * c + ch) * hw;
            for (size_t j = 0; j < hw; j++) {
                double xh = train ? l->cache[off + j]
                                  : (x[off + j] - ctx->bn_stats[l->stats_off + ch]) /
                                        sqrt((double)run_var[ch] + l->bn_eps);
                sdy += dy[off + j];
                sdyxh += dy[off + j] * xh;
            }
        }
        dgamma[ch] = (float)sdyxh;
        dbeta[ch] = (float)sdy;
        if (!dx) continue;
        if (train) {
            /* dx = gamma * inv_std / m * (m * dy - sum(dy) - x_hat * sum(dy * x_hat)) */
            const float k = gamma[ch] * l->cache2[ch] / (float)m;
            const float a = (float)sdy, bcoef = (float)sdyxh;
            for (int i = 0; i < n; i++) {
                const size_t off = ((size_t)i * c + ch) * hw;
                for (size_t j = 0; j < hw; j++)
                    dx[off + j] += k * ((float)m * dy[off + j] - a - l->cache[off + j] * bcoef);
            }
        } else {
            const float k = gamma[ch] / (float)sqrt((double)run_var[ch] + l->bn_eps);
            for (int i = 0; i < n; i++) {
                const size_t off = ((size_t)i * c + ch) * hw;
                for (size_t j = 0; j < hw; j++) dx[off + j] += k * dy[off + j];
            }
        }
    }
}

const LayerOps batchnorm_ops = {"batchnorm", bn_forward, bn_backward};
