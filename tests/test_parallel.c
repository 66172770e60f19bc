/* Data-parallel pieces that need no MPI: sharding covers every position of a global batch
 * exactly once, refused batch sizes name the nearest valid ones, gradient buckets hold every
 * tensor exactly once within their budget, and the one-process gradient sync leaves gradients
 * unchanged. (tests/t_mpi.sh runs the real thing under mpirun.) */
#include "check.h"
#include "cigl/parallel.h"

#include <stdlib.h>
#include <string.h>

static void shards_cover_each_position_once(void)
{
    const size_t batches[] = {1, 7, 64, 128, 129, 1000};
    const int ranks[] = {1, 2, 3, 4, 8, 16};
    const int micros[] = {1, 2, 3, 4};
    for (size_t bi = 0; bi < 6; bi++)
        for (int ri = 0; ri < 6; ri++)
            for (int mi = 0; mi < 4; mi++) {
                const size_t B = batches[bi];
                int *seen = calloc(B, sizeof(int));
                size_t expect_next = 0, biggest = 0, smallest = (size_t)-1;
                for (int r = 0; r < ranks[ri]; r++)
                    for (int k = 0; k < micros[mi]; k++) {
                        size_t first, count;
                        shard_slice(B, r, ranks[ri], k, micros[mi], &first, &count);
                        CHECK(first == expect_next, "B %zu N %d K %d: slice (%d,%d) starts at "
                              "%zu, expected %zu", B, ranks[ri], micros[mi], r, k, first,
                              expect_next);
                        for (size_t i = first; i < first + count && i < B; i++) seen[i]++;
                        expect_next = first + count;
                        if (count > biggest) biggest = count;
                        if (count < smallest) smallest = count;
                    }
                int bad = 0;
                for (size_t i = 0; i < B; i++) bad += seen[i] != 1;
                CHECK(bad == 0 && expect_next == B, "B %zu N %d K %d: %d positions not seen "
                      "exactly once", B, ranks[ri], micros[mi], bad);
                /* per-rank totals are balanced (micro-batches of a rank within one too) */
                CHECK(biggest - smallest <= 2, "unbalanced slices %zu..%zu", smallest, biggest);
                free(seen);
            }
}

static void batch_size_checks(void)
{
    CHECK(shard_check(64, 2, 1) == 0, "64 over 2");
    CHECK(shard_check(64, 4, 2) == 0, "64 over 4 x 2");
    CHECK(shard_check(63, 2, 1) == 2, "63 over 2 accepted");
    CHECK(shard_check(3, 4, 1) == 2, "3 over 4 accepted");
    CHECK(shard_check(96, 16, 4) == 2, "96 over 16 x 4 accepted");
}

/* The buckets grad_sync_init cuts: each tensor in exactly one bucket, buckets contiguous from
 * the last tensor down (backward's order), a layer's tensors never split, a bucket over budget
 * only through its lowest layer (kept whole), full (the next tensor down would not have fitted)
 * and complete at its lowest layer. */
static void check_buckets(const char *model, Shape in, size_t budget, int min_buckets)
{
    Model m;
    CHECK(model_build(&m, model, in, 10, 2, 1) == 0, "%s builds", model);
    GradSync g;
    CHECK(grad_sync_init(&g, comm_single(), &m, budget) == 0, "init");
    CHECK(g.n_buckets >= min_buckets, "%s budget %zu: %d buckets, expected >= %d", model,
          budget, g.n_buckets, min_buckets);
    int *owner = calloc((size_t)m.n_tensors, sizeof(int));
    int *layer_bucket = malloc(sizeof(int) * (size_t)(m.n_layers + 1));
    for (int l = 0; l <= m.n_layers; l++) layer_bucket[l] = -1;
    int expect_end = m.n_tensors, split = 0, over = 0, wrong_last = 0;
    for (int i = 0; i < g.n_buckets; i++) {
        const GradBucketSpan b = grad_sync_bucket(&g, i);
        CHECK(b.end_tensor == expect_end && b.first_tensor < b.end_tensor, "%s bucket %d: "
              "tensors [%d,%d), expected to end at %d", model, i, b.first_tensor, b.end_tensor,
              expect_end);
        expect_end = b.first_tensor;
        size_t len = 0, above_lowest = 0;
        for (int t = b.first_tensor; t < b.end_tensor && t >= 0; t++) {
            const ParamTensor *pt = &m.tensors[t];
            owner[t]++;
            len += pt->len;
            if (pt->layer != m.tensors[b.first_tensor].layer) above_lowest += pt->len;
            if (layer_bucket[pt->layer] >= 0 && layer_bucket[pt->layer] != i) split++;
            layer_bucket[pt->layer] = i;
        }
        over += len != b.len || above_lowest > budget;
        if (b.first_tensor > 0) over += len + m.tensors[b.first_tensor - 1].len <= budget;
        wrong_last += b.last_layer != m.tensors[b.first_tensor].layer;
    }
    int not_once = 0;
    for (int t = 0; t < m.n_tensors; t++) not_once += owner[t] != 1;
    CHECK(not_once == 0 && expect_end == 0, "%s: %d tensors not in exactly one bucket", model,
          not_once);
    CHECK(split == 0, "%s: %d tensors of a layer in another bucket", model, split);
    CHECK(over == 0, "%s: %d buckets over budget %zu, not full or with a wrong length", model, over,
          budget);
    CHECK(wrong_last == 0, "%s: %d buckets complete at the wrong layer", model, wrong_last);
    free(owner);
    free(layer_bucket);
    grad_sync_free(&g);
    model_free(&m);
}

static void buckets_hold_each_tensor_once(void)
{
    check_buckets("lenet5", (Shape){1, 28, 28}, 1000, 3);
    check_buckets("lenet5", (Shape){1, 28, 28}, 1, 3); /* every layer alone over budget */
    check_buckets("resnet20", (Shape){3, 32, 32}, 20000, 5);
    check_buckets("mlp", (Shape){1, 28, 28}, CIGL_GRAD_BUCKET_FLOATS, 1);
}

static void single_process_sync_is_identity(void)
{
    Model m;
    model_build(&m, "lenet5", (Shape){1, 28, 28}, 10, 2, 1);
    GradSync g;
    CHECK(grad_sync_init(&g, comm_single(), &m, 1000) == 0, "init");
    for (size_t i = 0; i < m.n_params; i++) m.grads[i] = (float)i;
    grad_sync_begin(&g, &m, 0);
    CHECK(grad_sync_finish(&g, &m) == 0, "finish");
    int changed = 0;
    for (size_t i = 0; i < m.n_params; i++) changed += m.grads[i] != (float)i;
    CHECK(!changed, "%d gradients changed", changed);
    CHECK(m.backward_hook == NULL, "hook left armed");
    grad_sync_free(&g);
    model_free(&m);
}

static void checksums_differ(void)
{
    const float a[3] = {1, 2, 3}, b[3] = {1, 2, 3.0000002f};
    const uint64_t h0 = CIGL_CHECKSUM_SEED;
    /* FNV-1a 64's published vector for "a", and {1, 2, 3} as little-endian floats (computed
     * independently in Python) */
    CHECK(checksum_bytes(h0, "a", 1) == 0xaf63dc4c8601ec8cull, "FNV-1a of \"a\"");
    CHECK(checksum_bytes(h0, a, sizeof(a)) == 0x1de40d89811fe258ull, "FNV-1a of {1, 2, 3}");
    CHECK(checksum_bytes(h0, a, sizeof(a)) != checksum_bytes(h0, b, sizeof(b)), "one ulp apart");
    CHECK(ranks_agree(comm_single(), 42, "test", 0) == 0, "one rank agrees with itself");
}

/* The one-process abort has no other rank to stop: it returns (the library never exits), and
 * this test goes on to print its summary. */
static void single_abort_returns(void)
{
    Comm *c = comm_single();
    c->abort(c, 3);
    CHECK(c->size == 1 && c->rank == 0, "comm_single changed by abort");
}

int main(void)
{
    RUN(shards_cover_each_position_once);
    RUN(batch_size_checks);
    RUN(buckets_hold_each_tensor_once);
    RUN(single_process_sync_is_identity);
    RUN(checksums_differ);
    RUN(single_abort_returns);
    return CHECK_SUMMARY();
}
