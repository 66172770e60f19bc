/* Batch normalisation over (N, H, W) per channel, PyTorch semantics: biased variance to
 * normalise, unbiased variance into the running estimate, momentum 0.1, eps 1e-5. Sums are
 * taken in double per channel (one thread per channel, so the order is fixed). */
#include "cigl/layer.h"

#include <math.h>

static void bn_forward(Layer *l, const LayerCtx *ctx, const float *x, const float *x2, float *y)
{
    (void)x2;
    const int n = ctx->n, c = l->x.c;
    const size_t hw = (size_t)l->x.h * l->x.w, m = (size_t)n * hw;
    const float *gamma = ctx->weights + l->weight_off, *beta = ctx->weights + l->bias_off;
    float *run_mean = ctx->bn_stats + l->stats_off, *run_var = run_mean + c;
    const int train = ctx->train;
#pragma omp parallel for schedule(static)
    for (int ch = 0; ch < c; ch++) {
        double mean, inv_std;
        if (train) {
            double s = 0, ss = 0;
            for (int i = 0; i < n; i++) {
                const float *xx = x + ((size_t)i * c + ch) * hw;
                for (size_t j = 0; j < hw; j++) s += xx[j];
            }
            mean = s / (double)m;
            for (int i = 0; i < n; i++) {
                const float *xx = x + ((size_t)i * c + ch) * hw;
                for (size_t j = 0; j < hw; j++) {
                    double d = xx[j] - mean;
                    ss += d * d;
                }
            }
            double var = ss / (double)m;
            inv_std = 1.0 / sqrt(var + l->bn_eps);
            double unbiased = m > 1 ? ss / (double)(m - 1) : var;
            run_mean[ch] = (float)((1.0 - l->bn_momentum) * run_mean[ch] + l->bn_momentum * mean);
            run_var[ch] = (float)((1.0 - l->bn_momentum) * run_var[ch] + l->bn_momentum * unbiased);
            l->cache2[ch] = (float)inv_std;
        } else {
            mean = run_mean[ch];
            inv_std = 1.0 / sqrt((double)run_var[ch] + l->bn_eps);
        }
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
