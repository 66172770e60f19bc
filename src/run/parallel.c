#include "cigl/parallel.h"

#include "cigl/error.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

void shard_slice(size_t batch, int rank, int ranks, int micro, int micros, size_t *first,
                 size_t *count)
{
    const size_t r0 = batch * (size_t)rank / (size_t)ranks;
    const size_t r1 = batch * (size_t)(rank + 1) / (size_t)ranks;
    const size_t n = r1 - r0;
    const size_t m0 = n * (size_t)micro / (size_t)micros;
    const size_t m1 = n * (size_t)(micro + 1) / (size_t)micros;
    *first = r0 + m0;
    *count = m1 - m0;
}

int shard_check(int batch, int ranks, int micros)
{
    const int unit = ranks * micros;
    if (batch % unit == 0) return CIGL_OK;
    const int below = batch / unit * unit, above = below + unit;
    if (below > 0)
        return cigl_fail(CIGL_ERR_USAGE, "--batch-size %d does not split into %d rank(s) x %d "
                         "micro-batch(es); use %d or %d", batch, ranks, micros, below, above);
    return cigl_fail(CIGL_ERR_USAGE, "--batch-size %d is smaller than %d rank(s) x %d "
                     "micro-batch(es); use %d or more", batch, ranks, micros, above);
}

struct GradBucket {
    int first_tensor, end_tensor;   /* tensors [first, end) */
    int last_layer;                 /* the bucket is complete after this layer's backward */
    uint32_t *packed_idx;           /* active positions (mask 1) */
    size_t n_packed;
    float *buf;                     /* packed values, sized for the dense case */
    size_t len;                     /* dense size */
    CommRequest req;
    int in_flight;
};

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Backward runs layers last to first, and tensors are laid out first to last, so buckets are
 * cut walking the tensors backwards; a bucket is complete once its lowest layer has run. */
int grad_sync_init(GradSync *g, Comm *comm, const Model *m, size_t bucket_floats)
{
    memset(g, 0, sizeof(*g));
    g->comm = comm;
    g->m = m;
    g->buckets = calloc((size_t)m->n_tensors + 1, sizeof(struct GradBucket));
    if (!g->buckets) return cigl_fail(CIGL_ERR_RUNTIME, "out of memory for gradient buckets");
    int end = m->n_tensors;
    while (end > 0) {
        struct GradBucket *b = &g->buckets[g->n_buckets++];
        b->end_tensor = end;
        int first = end - 1;
        size_t len = m->tensors[first].len;
        /* grow while under budget, keeping each layer's tensors together */
        while (first > 0 && (len + m->tensors[first - 1].len <= bucket_floats ||
                             m->tensors[first - 1].layer == m->tensors[first].layer)) {
            first--;
            len += m->tensors[first].len;
        }
        b->first_tensor = first;
        b->last_layer = m->tensors[first].layer;
        b->len = len;
        b->buf = malloc(sizeof(float) * len);
        b->packed_idx = malloc(sizeof(uint32_t) * len);
        if (!b->buf || !b->packed_idx) return cigl_fail(CIGL_ERR_RUNTIME, "out of memory");
        end = first;
    }
    return grad_sync_set_mask(g, NULL);
}

GradBucketSpan grad_sync_bucket(const GradSync *g, int i)
{
    const struct GradBucket *b = &g->buckets[i];
    return (GradBucketSpan){b->first_tensor, b->end_tensor, b->last_layer, b->len};
}

void grad_sync_free(GradSync *g)
{
    for (int i = 0; i < g->n_buckets; i++) {
        free(g->buckets[i].buf);
        free(g->buckets[i].packed_idx);
    }
    free(g->buckets);
    memset(g, 0, sizeof(*g));
}

int grad_sync_set_mask(GradSync *g, const uint8_t *mask)
{
    if (g->comm->size == 1) return CIGL_OK; /* nothing travels */
    for (int i = 0; i < g->n_buckets; i++) {
        struct GradBucket *b = &g->buckets[i];
        size_t n = 0;
        for (int t = b->first_tensor; t < b->end_tensor; t++) {
            const ParamTensor *pt = &g->m->tensors[t];
            for (size_t j = pt->off; j < pt->off + pt->len; j++)
                if (!mask || mask[j]) b->packed_idx[n++] = (uint32_t)j;
        }
        b->n_packed = n;
    }
    return CIGL_OK;
}

static void start_bucket(GradSync *g, struct GradBucket *b, const float *grads)
{
    const ParamTensor *t0 = &g->m->tensors[b->first_tensor];
    size_t n;
    if (g->dense) {
        memcpy(b->buf, grads + t0->off, sizeof(float) * b->len);
        n = b->len;
    } else {
        for (size_t k = 0; k < b->n_packed; k++) b->buf[k] = grads[b->packed_idx[k]];
        n = b->n_packed;
    }
    if (g->comm->iallreduce_float(g->comm, b->buf, n, &b->req) == 0) b->in_flight = 1;
}

static void after_layer(void *ctx, int layer)
{
    GradSync *g = ctx;
    for (int i = 0; i < g->n_buckets; i++) {
        struct GradBucket *b = &g->buckets[i];
        if (b->last_layer == layer && !b->in_flight) start_bucket(g, b, g->m->grads);
        else if (b->in_flight) g->comm->test(g->comm, &b->req); /* let MPI progress */
    }
}

void grad_sync_begin(GradSync *g, Model *m, int dense)
{
    g->dense = dense;
    g->started = 1;
    if (g->comm->size > 1) {
        m->backward_hook = after_layer;
        m->backward_hook_ctx = g;
    }
}

int grad_sync_finish(GradSync *g, Model *m)
{
    m->backward_hook = NULL;
    m->backward_hook_ctx = NULL;
    if (g->comm->size == 1) return CIGL_OK;
    const double t0 = now();
    int rc = CIGL_OK;
    for (int i = 0; i < g->n_buckets; i++) {
        struct GradBucket *b = &g->buckets[i];
        if (!b->in_flight) start_bucket(g, b, m->grads); /* hook not armed (accumulation) */
        if (g->comm->wait(g->comm, &b->req)) rc = CIGL_ERR_RUNTIME;
        b->in_flight = 0;
        const ParamTensor *t0p = &m->tensors[b->first_tensor];
        if (g->dense)
            memcpy(m->grads + t0p->off, b->buf, sizeof(float) * b->len);
        else
            for (size_t k = 0; k < b->n_packed; k++) m->grads[b->packed_idx[k]] = b->buf[k];
    }
    g->wait_seconds += now() - t0;
    return rc;
}

uint64_t checksum_bytes(uint64_t h, const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++) {
        h ^= c[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

int ranks_agree(Comm *comm, uint64_t sum, const char *what, long step)
{
    uint64_t lo, hi;
    if (comm->allreduce_u64_minmax(comm, sum, &lo, &hi)) return CIGL_ERR_RUNTIME;
    if (lo == hi) return CIGL_OK;
    return cigl_fail(CIGL_ERR_RUNTIME, "ranks disagree on %s at step %ld (checksums %016llx vs "
                     "%016llx): the replicas diverged; check that every rank runs the same "
                     "binary and data", what, step, (unsigned long long)lo,
                     (unsigned long long)hi);
}
