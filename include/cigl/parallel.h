/* Data parallelism on top of comm.h: how a global batch is sharded, gradient averaging in
 * buckets overlapped with backward, and cross-rank checks. */
#ifndef CIGL_PARALLEL_H
#define CIGL_PARALLEL_H
#include "cigl/comm.h"
#include "cigl/model.h"

/* Samples [*first, *first + *count) of a global batch of `batch` positions belong to rank
 * `rank` of `ranks`, micro-batch `micro` of `micros`: contiguous, balanced slices (sizes
 * differ by at most one), so every position belongs to exactly one (rank, micro). */
void shard_slice(size_t batch, int rank, int ranks, int micro, int micros, size_t *first,
                 size_t *count);

/* Refuses a global batch that does not split evenly into ranks x micro-batches, naming the
 * nearest valid sizes. */
int shard_check(int batch, int ranks, int micros);

/* Gradient averaging. Buckets of consecutive parameter tensors (in the order backward produces
 * them) are allreduced as soon as their last layer's backward has run. Only the positions with
 * mask 1 travel (masks are identical on every rank); at dense steps (mask updates) everything
 * travels. */
typedef struct {
    Comm *comm;
    const Model *m;
    int n_buckets;
    struct GradBucket *buckets;
    int dense;              /* this step sends dense gradients */
    int started;
    double wait_seconds;    /* time spent waiting on communication (for the benchmark) */
} GradSync;

/* The training loop's bucket budget: 1 Mi floats (4 MiB) per allreduce, few enough messages to
 * amortise latency and still several buckets to overlap with backward on the resnets. */
#define CIGL_GRAD_BUCKET_FLOATS ((size_t)1 << 20)

int grad_sync_init(GradSync *g, Comm *comm, const Model *m, size_t bucket_floats);
/* Bucket i's place in the model, for inspection: tensors [first_tensor, end_tensor), complete
 * after layer last_layer's backward, len floats. Buckets run from the last tensors to the first. */
typedef struct {
    int first_tensor, end_tensor, last_layer;
    size_t len;
} GradBucketSpan;
GradBucketSpan grad_sync_bucket(const GradSync *g, int i);
void grad_sync_free(GradSync *g);
/* Rebuilds the packed index lists after the masks changed (mask may be NULL: dense). */
int grad_sync_set_mask(GradSync *g, const uint8_t *mask);
/* Arms the model's backward hook for one step (dense: send every gradient). */
void grad_sync_begin(GradSync *g, Model *m, int dense);
/* After backward (or after accumulation, when the hook was not armed): completes every
 * bucket, so m->grads holds the sum over ranks. */
int grad_sync_finish(GradSync *g, Model *m);

/* FNV-1a over bytes, for cross-rank comparisons. */
uint64_t checksum_bytes(uint64_t h, const void *p, size_t n);
/* Compares a checksum across ranks; a mismatch prints one line naming `what` and `step`. */
int ranks_agree(Comm *comm, uint64_t sum, const char *what, long step);

#endif
