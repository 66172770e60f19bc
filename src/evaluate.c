#include "cigl/train.h"

#include "cigl/error.h"
#include "cigl/rng.h"

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
