#!/bin/sh
# The floor of a sparse step: how fast could the 95% step be if the sparse kernels did no
# arithmetic at all? Builds bench_sparse twice from this checkout's HEAD in a temporary
# worktree, once as is and once with sparse_floor.patch (sparse_mm, sparse_mm_t and
# sparse_sddmm return at once when CIGL_FLOOR is set, after zeroing what they would have
# written), and alternates the two. Everything else of the step (padding, copies, batch norm,
# adds, ReLUs, the dense layers, the optimiser) still runs, so "floor" is the step without the
# sparse kernels' own work: an upper bound on what faster kernels alone can give.
#
# usage: tests/bench/sparse_floor.sh [pairs] [sparsity] [model]   (defaults 3, 0.95, resnet20)
# The log goes to stdout; pause background runs first (tests/bench/README.md).
set -eu
pairs=${1:-3}
sparsity=${2:-0.95}
model=${3:-resnet20}
root=$(git rev-parse --show-toplevel)
dir=$(mktemp -d /tmp/cigl-floor.XXXXXX)
trap 'git -C "$root" worktree remove --force "$dir/src" >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT INT TERM
git -C "$root" worktree add --detach "$dir/src" HEAD >/dev/null 2>&1
git -C "$dir/src" apply "$root/tests/bench/sparse_floor.patch"
make -C "$dir/src" -s BUILD="$dir/build" "$dir/build/bench/bench_sparse" >/dev/null
echo "sparse_floor: commit $(git -C "$root" rev-parse --short HEAD), $model at $sparsity, 2 threads, $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg)"
i=0
while [ "$i" -lt "$pairs" ]; do
    for floor in 0 1; do
        printf 'pair %d floor %d: ' "$i" "$floor"
        if [ "$floor" = 1 ]; then export CIGL_FLOOR=1; else unset CIGL_FLOOR || true; fi
        "$dir/build/bench/bench_sparse" --threads 2 --models "$model" --sparsities "$sparsity" \
            --reps 3 --min-time 1 | grep -o 'train step.*'
    done
    i=$((i + 1))
done
echo "sparse_floor: done $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg)"
