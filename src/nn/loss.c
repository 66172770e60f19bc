/* Softmax cross-entropy with label smoothing, computed in double per sample. */
#include "cigl/layer.h"
#include "cigl/loss.h"

#include <math.h>

double softmax_xent(const float *logits, const int32_t *labels, int n, int classes,
                    double eps, float scale, float *dlogits, int *correct)
{
    return softmax_xent_mix(logits, labels, NULL, 1.0, n, classes, eps, scale, dlogits, correct);
}

double softmax_xent_mix(const float *logits, const int32_t *labels, const int32_t *labels2,
                        double lambda, int n, int classes, double eps, float scale,
                        float *dlogits, int *correct)
{
    double total = 0;
    int hits = 0;
    const double off = eps / classes, on = 1.0 - eps + off;
    for (int i = 0; i < n; i++) {
        const float *z = logits + (size_t)i * classes;
        int arg = 0;
        for (int k = 1; k < classes; k++)
            if (z[k] > z[arg]) arg = k;
        hits += arg == labels[i];
        double mx = z[arg], se = 0;
        for (int k = 0; k < classes; k++) se += exp((double)z[k] - mx);
        const double lse = mx + log(se);
        double loss = 0;
        for (int k = 0; k < classes; k++) {
            double t = k == labels[i] ? on : off;
            if (labels2) t = lambda * t + (1.0 - lambda) * (k == labels2[i] ? on : off);
            const double logp = (double)z[k] - lse;
            if (t != 0) loss -= t * logp;
            if (dlogits) dlogits[(size_t)i * classes + k] = (float)(scale * (exp(logp) - t));
        }
        total += loss;
    }
    if (correct) *correct = hits;
    return total;
}
