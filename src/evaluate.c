#include "cigl/train.h"

#include "cigl/error.h"
#include "cigl/rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

int split_validation(uint64_t seed, size_t n_total, size_t n_val, uint32_t **train_idx,
                     uint32_t **val_idx)
{
    if (n_val >= n_total)
        return cigl_fail(CIGL_ERR_USAGE, "--val-size %zu leaves no training samples (the "
                         "training split has %zu); use a smaller --val-size", n_val, n_total);
    uint32_t *perm = cigl_malloc(sizeof(uint32_t) * n_total, "validation split");
    *val_idx = cigl_malloc(sizeof(uint32_t) * (n_val ? n_val : 1), "validation indices");
    *train_idx = cigl_malloc(sizeof(uint32_t) * (n_total - n_val), "training indices");
    if (!perm || !*val_idx || !*train_idx) {
        free(perm);
        free(*val_idx);
        free(*train_idx);
        return CIGL_ERR_RUNTIME;
    }
    rng_permutation(seed, RNG_VAL_SPLIT, 0, perm, n_total);
    memcpy(*val_idx, perm, sizeof(uint32_t) * n_val);
    memcpy(*train_idx, perm + n_val, sizeof(uint32_t) * (n_total - n_val));
    free(perm);
    qsort(*val_idx, n_val, sizeof(uint32_t), cmp_u32);
    qsort(*train_idx, n_total - n_val, sizeof(uint32_t), cmp_u32);
    return CIGL_OK;
}

void evaluate(Model *m, const Dataset *ds, const Split *s, const uint32_t *idx, size_t n,
              float *xbuf, int32_t *ybuf, EvalResult *r)
{
    memset(r, 0, sizeof(*r));
    uint32_t *all = NULL;
    if (!idx) { /* the whole split */
        all = cigl_malloc(sizeof(uint32_t) * n, "evaluation indices");
        if (!all) return;
        for (size_t i = 0; i < n; i++) all[i] = (uint32_t)i;
        idx = all;
    }
    for (size_t b0 = 0; b0 < n; b0 += (size_t)m->max_batch) {
        const int nb = (int)(n - b0 < (size_t)m->max_batch ? n - b0 : (size_t)m->max_batch);
        split_gather(ds, s, idx + b0, nb, NULL, xbuf, ybuf);
        const float *logits = model_forward(m, m->params, xbuf, nb, 0);
        int correct = 0;
        r->loss_sum += softmax_xent(logits, ybuf, nb, m->classes, 0.0, 1.0f, NULL, &correct);
        r->correct += correct;
        r->n += nb;
    }
    free(all);
}

void evaluate_ensemble(Model *m, const Dataset *ds, const Split *s, const uint32_t *idx,
                       size_t n, float *xbuf, int32_t *ybuf, int members, EnsembleMember member,
                       void *ctx, EvalResult *r)
{
    memset(r, 0, sizeof(*r));
    const int K = m->classes, B = m->max_batch;
    double *mean = cigl_malloc(sizeof(double) * (size_t)B * K, "ensemble probabilities");
    if (!mean) return;
    for (size_t b0 = 0; b0 < n; b0 += (size_t)B) {
        const int nb = (int)(n - b0 < (size_t)B ? n - b0 : (size_t)B);
        split_gather(ds, s, idx + b0, nb, NULL, xbuf, ybuf);
        memset(mean, 0, sizeof(double) * (size_t)nb * K);
        for (int k = 0; k < members; k++) {
            const float *weights = member(ctx, k, m);
            const float *logits = model_forward(m, weights, xbuf, nb, 0);
            for (int i = 0; i < nb; i++) {
                const float *z = logits + (size_t)i * K;
                double mx = z[0], se = 0;
                for (int c = 1; c < K; c++) mx = z[c] > mx ? z[c] : mx;
                for (int c = 0; c < K; c++) se += exp((double)z[c] - mx);
                for (int c = 0; c < K; c++)
                    mean[(size_t)i * K + c] += exp((double)z[c] - mx) / se / members;
            }
        }
        for (int i = 0; i < nb; i++) {
            const double *p = mean + (size_t)i * K;
            int arg = 0;
            for (int c = 1; c < K; c++) arg = p[c] > p[arg] ? c : arg;
            r->correct += arg == ybuf[i];
            r->loss_sum -= log(p[ybuf[i]]);
        }
        r->n += nb;
    }
    free(mean);
}

void recompute_bn_statistics(Model *m, const float *weights, const Dataset *ds, const Split *s,
                             const uint32_t *idx, size_t n, int batch, float *xbuf,
                             int32_t *ybuf)
{
    float *saved = cigl_malloc(sizeof(float) * m->n_layers, "BN momenta");
    if (!saved) return;
    for (int i = 0; i < m->n_layers; i++) {
        Layer *l = &m->layers[i];
        saved[i] = l->bn_momentum;
        if (l->kind != LAYER_BATCHNORM) continue;
        for (int c = 0; c < l->x.c; c++) {
            m->bn_stats[l->stats_off + c] = 0.0f;
            m->bn_stats[l->stats_off + l->x.c + c] = 1.0f;
        }
    }
    /* A momentum of nb / (seen + nb) turns BN's running update into the weighted average. */
    size_t seen = 0;
    for (size_t b0 = 0; b0 < n; b0 += (size_t)batch) {
        const int nb = (int)(n - b0 < (size_t)batch ? n - b0 : (size_t)batch);
        for (int i = 0; i < m->n_layers; i++)
            m->layers[i].bn_momentum = (float)((double)nb / (double)(seen + (size_t)nb));
        split_gather(ds, s, idx + b0, nb, NULL, xbuf, ybuf);
        model_forward(m, weights, xbuf, nb, 1);
        seen += (size_t)nb;
    }
    for (int i = 0; i < m->n_layers; i++) m->layers[i].bn_momentum = saved[i];
    free(saved);
}
