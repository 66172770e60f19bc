#!/bin/sh
# MPI scaling (weak: per-rank batch fixed): images/s of `cigl train` for N = 1, 2, ... ranks
# with 1 thread per rank, scaling efficiency = throughput(N) / (N x throughput(1)), and the
# share of training time spent waiting on gradient communication. Medians of BENCH_MPI_REPS
# runs. Runs unchanged on a bigger machine: BENCH_MPI_RANKS="1 2 4 8 16".
BUILD=${BUILD:-build}
CIGL=$BUILD/cigl
DATA=$BUILD/data/fashion-mnist.h5
RANKS=${BENCH_MPI_RANKS:-"1 2"}
REPS=${BENCH_MPI_REPS:-3}
MODEL=${BENCH_MPI_MODEL:-resnet20}
PER_RANK=${BENCH_MPI_PER_RANK_BATCH:-32}
STEPS=${BENCH_MPI_STEPS:-20}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
[ -f "$DATA" ] || "$CIGL" convert fashion-mnist /usr/share/datasets/fashion-mnist "$DATA" >/dev/null || exit 1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
num() { sed -n "s/^  \"$2\": *\([-0-9.eE+]*\).*/\1/p" "$1" | head -n 1; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "# MPI weak scaling: $MODEL, per-rank batch $PER_RANK, 1 thread per rank, $STEPS steps, median of $REPS ($(nproc) cores)"
echo "| ranks | global batch | images/s | efficiency | communication wait |"
echo "|---:|---:|---:|---:|---:|"
base=""
for n in $RANKS; do
    : >"$T/ips"; : >"$T/wait"
    for r in $(seq "$REPS"); do
        rm -rf "$T/run"
        mpirun --bind-to core --map-by core -np "$n" --mca btl_vader_single_copy_mechanism none \
            "$CIGL" train --data "$DATA" --model "$MODEL" --batch-size $((PER_RANK * n)) \
            --max-steps "$STEPS" --epochs 1 --val-size 0 --threads 1 --out "$T/run" >/dev/null 2>&1 ||
            { echo "bench_mpi: $n ranks failed" >&2; continue; }
        ips=$(num "$T/run/final.json" train_images_per_second)
        secs=$(num "$T/run/final.json" train_seconds)
        wait=$(num "$T/run/final.json" communication_wait_seconds)
        echo "$ips" >>"$T/ips"
        awk -v w="$wait" -v s="$secs" 'BEGIN{print (s > 0 ? w / s : 0)}' >>"$T/wait"
    done
    ips=$(median <"$T/ips"); wait=$(median <"$T/wait")
    [ -z "$base" ] && base=$ips
    awk -v n="$n" -v b="$((PER_RANK * n))" -v i="$ips" -v base="$base" -v w="$wait" \
        'BEGIN{printf "| %d | %d | %.0f | %.3f | %.1f%% |\n", n, b, i, i / (n * base), 100 * w}'
done
