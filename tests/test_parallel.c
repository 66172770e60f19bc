/* Data-parallel pieces that need no MPI: sharding covers every position of a global batch
 * exactly once, refused batch sizes name the nearest valid ones, and the one-process gradient
 * sync leaves gradients unchanged. (tests/t_mpi.sh runs the real thing under mpirun.) */
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

static void single_process_sync_is_identity(void)
{
    Model m;
    model_build(&m, "lenet5", (Shape){1, 28, 28}, 10, 2, 1);
    GradSync g;
    CHECK(grad_sync_init(&g, comm_single(), &m, 1000) == 0, "init");
    CHECK(g.n_buckets > 1, "expected several buckets, got %d", g.n_buckets);
    /* every tensor in exactly one bucket, buckets cover the buffer */
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
    const uint64_t h0 = 0xcbf29ce484222325ull;
    CHECK(checksum_bytes(h0, a, sizeof(a)) == checksum_bytes(h0, a, sizeof(a)), "stable");
    CHECK(checksum_bytes(h0, a, sizeof(a)) != checksum_bytes(h0, b, sizeof(b)), "one ulp apart");
    CHECK(ranks_agree(comm_single(), 42, "test", 0) == 0, "one rank agrees with itself");
}

int main(void)
{
    RUN(shards_cover_each_position_once);
    RUN(batch_size_checks);
    RUN(single_process_sync_is_identity);
    RUN(checksums_differ);
    return CHECK_SUMMARY();
}
