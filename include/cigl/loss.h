/* The training losses (src/nn/loss.c). */
#ifndef CIGL_LOSS_H
#define CIGL_LOSS_H
#include <stdint.h>

/* Loss: softmax cross-entropy with label smoothing `eps` (targets (1-eps) one-hot + eps/K).
 * Returns the SUM over the n samples of the per-sample losses; writes
 * dlogits = scale * dL_sum/dlogits (scale = 1 / global batch size in training) when
 * dlogits != NULL. `correct` (may be NULL) receives the count of argmax hits. */
double softmax_xent(const float *logits, const int32_t *labels, int n, int classes,
                    double eps, float scale, float *dlogits, int *correct);

/* Mixup's loss: lambda * CE(labels) + (1 - lambda) * CE(labels2), each with smoothing eps
 * (the target is the same mixture of the two smoothed one-hot vectors). `correct` counts hits
 * against `labels`. */
double softmax_xent_mix(const float *logits, const int32_t *labels, const int32_t *labels2,
                        double lambda, int n, int classes, double eps, float scale,
                        float *dlogits, int *correct);

#endif
