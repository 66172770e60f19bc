#include "cigl/evaluate.h"

#include "cigl/error.h"
#include "cigl/parallel.h"
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

void predictions_free(Predictions *p)
{
    free(p->logits);
    free(p->log_probs);
    free(p->labels);
    memset(p, 0, sizeof(*p));
}

/* log-softmax of one row in double */
static void log_softmax_row(const float *z, int K, double *out)
{
    double mx = z[0], se = 0;
    for (int c = 1; c < K; c++) mx = z[c] > mx ? z[c] : mx;
    for (int c = 0; c < K; c++) se += exp((double)z[c] - mx);
    const double lse = mx + log(se);
    for (int c = 0; c < K; c++) out[c] = (double)z[c] - lse;
}

int predict(Model *m, const Dataset *ds, const Split *s, const uint32_t *idx, size_t n,
            float *xbuf, int32_t *ybuf, int members, EnsembleMember member, void *ctx,
            Predictions *p)
{
    memset(p, 0, sizeof(*p));
    const int K = m->classes, B = m->max_batch, single = members <= 1 || !member;
    p->n = n;
    p->classes = K;
    p->log_probs = cigl_malloc(sizeof(double) * n * K, "predictions");
    p->labels = cigl_malloc(sizeof(int32_t) * (n ? n : 1), "labels");
    if (single) p->logits = cigl_malloc(sizeof(float) * n * K, "logits");
    double *row = cigl_malloc(sizeof(double) * K, "log-probabilities");
    uint32_t *batch_idx = cigl_malloc(sizeof(uint32_t) * B, "batch indices");
    if (!p->log_probs || !p->labels || (single && !p->logits) || !row || !batch_idx) {
        free(row);
        free(batch_idx);
        predictions_free(p);
        return CIGL_ERR_RUNTIME;
    }
    for (size_t b0 = 0; b0 < n; b0 += (size_t)B) {
        const int nb = (int)(n - b0 < (size_t)B ? n - b0 : (size_t)B);
        for (int i = 0; i < nb; i++) batch_idx[i] = idx ? idx[b0 + i] : (uint32_t)(b0 + i);
        if (split_gather(ds, s, batch_idx, nb, NULL, xbuf, ybuf)) {
            free(row);
            free(batch_idx);
            predictions_free(p);
            return CIGL_ERR_RUNTIME;
        }
        /* a streamed split reads the next batch while this one computes */
        const size_t rest = n - b0 > (size_t)B ? n - b0 - (size_t)B : 0;
        split_prefetch_range(ds, s, idx, b0 + (size_t)B, rest < (size_t)B ? rest : (size_t)B);
        memcpy(p->labels + b0, ybuf, sizeof(int32_t) * nb);
        double *lp = p->log_probs + b0 * K;
        if (single) {
            const float *logits = model_forward(m, m->params, xbuf, nb, 0);
            memcpy(p->logits + b0 * K, logits, sizeof(float) * nb * K);
            for (int i = 0; i < nb; i++) log_softmax_row(logits + (size_t)i * K, K, lp + (size_t)i * K);
            continue;
        }
        memset(lp, 0, sizeof(double) * nb * K); /* mean probabilities first */
        for (int k = 0; k < members; k++) {
            const float *logits = model_forward(m, member(ctx, k, m), xbuf, nb, 0);
            for (int i = 0; i < nb; i++) {
                log_softmax_row(logits + (size_t)i * K, K, row);
                for (int c = 0; c < K; c++) lp[(size_t)i * K + c] += exp(row[c]) / members;
            }
        }
        for (size_t j = 0; j < (size_t)nb * K; j++) lp[j] = log(lp[j]);
    }
    free(row);
    free(batch_idx);
    return CIGL_OK;
}

int predictions_metrics(const Predictions *p, double temperature, Metrics *out)
{
    MetricsAcc acc;
    int rc = metrics_init(&acc, p->classes, p->n);
    if (rc) return rc;
    for (size_t b0 = 0; b0 < p->n && !rc; b0 += 4096) {
        const int nb = (int)(p->n - b0 < 4096 ? p->n - b0 : 4096);
        const size_t off = b0 * (size_t)p->classes;
        if (p->logits && temperature != 1.0)
            rc = metrics_add_logits_temperature(&acc, p->logits + off, p->labels + b0, nb,
                                                temperature);
        else if (p->logits)
            rc = metrics_add_logits(&acc, p->logits + off, p->labels + b0, nb);
        else
            rc = metrics_add_log_probs(&acc, p->log_probs + off, p->labels + b0, nb);
    }
    if (!rc) rc = metrics_compute(&acc, out);
    metrics_free(&acc);
    return rc;
}

int predictions_gather(Comm *comm, const Predictions *local, size_t n_total, Predictions *all)
{
    memset(all, 0, sizeof(*all));
    const int K = local->classes, lead = comm->rank == 0, with_logits = local->logits != NULL;
    if (comm->size == 1) { /* hand the buffers over */
        *all = *local;
        memset((Predictions *)local, 0, sizeof(*local));
        return CIGL_OK;
    }
    size_t *counts = NULL;
    if (lead) {
        all->n = n_total;
        all->classes = K;
        all->log_probs = cigl_malloc(sizeof(double) * n_total * K, "predictions");
        all->labels = cigl_malloc(sizeof(int32_t) * (n_total ? n_total : 1), "labels");
        if (with_logits) all->logits = cigl_malloc(sizeof(float) * n_total * K, "logits");
        counts = cigl_malloc(sizeof(size_t) * comm->size, "gather counts");
        if (!all->log_probs || !all->labels || (with_logits && !all->logits) || !counts) {
            free(counts);
            predictions_free(all);
            comm->abort(comm, CIGL_ERR_RUNTIME); /* the other ranks wait in the gather */
            return CIGL_ERR_RUNTIME;
        }
    }
    /* each rank's slice size, as shard_slice gives it */
    int rc = CIGL_OK;
    const size_t unit[3] = {sizeof(double) * K, sizeof(int32_t), sizeof(float) * K};
    void *dst[3] = {all->log_probs, all->labels, all->logits};
    const void *src[3] = {local->log_probs, local->labels, local->logits};
    for (int part = 0; part < (with_logits ? 3 : 2) && !rc; part++) {
        if (lead)
            for (int r = 0; r < comm->size; r++)
                counts[r] = (n_total * (size_t)(r + 1) / comm->size -
                             n_total * (size_t)r / comm->size) * unit[part];
        rc = comm->gatherv(comm, src[part], local->n * unit[part], dst[part], counts);
    }
    free(counts);
    return rc;
}

int recompute_bn_statistics(Model *m, const float *weights, const Dataset *ds, const Split *s,
                            const uint32_t *idx, size_t n, int batch, Comm *comm, float *xbuf,
                            int32_t *ybuf)
{
    float *saved = cigl_malloc(sizeof(float) * m->n_layers, "BN momenta");
    if (!saved) return CIGL_ERR_RUNTIME;
    for (int i = 0; i < m->n_layers; i++) {
        Layer *l = &m->layers[i];
        saved[i] = l->bn_momentum;
        if (l->kind != LAYER_BATCHNORM) continue;
        l->sync = comm->size > 1 ? comm : NULL;
        for (int c = 0; c < l->x.c; c++) {
            m->bn_stats[l->stats_off + c] = 0.0f;
            m->bn_stats[l->stats_off + l->x.c + c] = 1.0f;
        }
    }
    /* A momentum of nb / (seen + nb) turns BN's running update into the weighted average. */
    size_t seen = 0;
    int rc = CIGL_OK;
    for (size_t b0 = 0; b0 < n; b0 += (size_t)batch) {
        const size_t nb = n - b0 < (size_t)batch ? n - b0 : (size_t)batch;
        for (int i = 0; i < m->n_layers; i++)
            m->layers[i].bn_momentum = (float)((double)nb / (double)(seen + nb));
        size_t first, count;
        shard_slice(nb, comm->rank, comm->size, 0, 1, &first, &count);
        /* callers pass batch <= ranks x the model's batch (the trainer: batch-size /
         * accumulate), so one rank's slice fits the activation buffers */
        rc = split_gather(ds, s, idx + b0 + first, count, NULL, xbuf, ybuf);
        if (rc) {
            if (comm->size > 1) comm->abort(comm, rc); /* the others wait in BN's reduction */
            break;
        }
        model_forward(m, weights, xbuf, (int)count, 1);
        seen += nb;
    }
    for (int i = 0; i < m->n_layers; i++) {
        m->layers[i].bn_momentum = saved[i];
        m->layers[i].sync = NULL;
    }
    free(saved);
    return rc;
}
