#!/bin/bash
# One bounded session on a borrowed many-core machine that has no Open MPI, HDF5 or OpenBLAS
# (the bundle of jobs/bundle.sh brings them). In order, each part optional:
#   1. thread scaling: one rank, resnet20 RigL 95%, --kernels dense and sparse, training img/s
#      at each of DEVICE_THREAD_SCALING threads (a short --max-steps run each)
#   2. MPI weak scaling: resnet20 RigL 90%, 32 samples per rank per step, 1 thread per rank, at
#      each of DEVICE_SCALING rank counts
#   3. the grid: each PLAN through jobs/local.sh, DEVICE_THREADS threads per run and as many
#      runs at a time as the cores allow, stopped (checkpointed) DEVICE_MARGIN (60) seconds
#      before SECONDS_IN_ALL have passed since the script started: the grid gets whatever the
#      scaling parts left, so the packing below always runs inside the caller's time limit
# Everything worth keeping is packed into $OUT/device-NN.tgz.part (tar.gz split in 15 MiB
# pieces: the caller copies back few, flat files): the scaling logs and the runs' small files;
# unfinished runs keep their newest checkpoint, so `jobs/reproduce.sh` continues them anywhere.
#
#   OUT=/some/dir jobs/device.sh BUNDLE_DIR SECONDS_IN_ALL [PLAN...]
#   unpack here:  cat device-*.tgz.part | tar xz -C runs    (gives runs/reproduce/..., runs/scaling)
set -u
bundle=$1; deadline=$(( $(date +%s) + $2 - ${DEVICE_MARGIN:-60} )); shift 2
: "${OUT:?set OUT to the folder that is copied back}"
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
. "$bundle/env.sh"
cores=$(nproc)
threads=${DEVICE_THREADS:-1}
echo "device.sh: $(hostname), $cores cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
work=$(mktemp -d)
mkdir -p "$work/scaling" "$work/reproduce/data" "$repo/runs"
data=$work/reproduce/data/fashion-mnist.h5
"$CIGL" convert fashion-mnist "$bundle/data/fashion-mnist" "$data" >/dev/null || exit 1
rm -rf "$repo/runs/reproduce"
ln -sfn "$work/reproduce" "$repo/runs/reproduce"

img_per_s() { sed -n 's/.*(\([0-9.]*\) img\/s).*/\1/p' "$1" | tail -n 1; }

# --- 1. thread scaling of one rank ---------------------------------------------------------
for t in ${DEVICE_THREAD_SCALING-}; do
    [ "$t" -le "$cores" ] || continue
    for k in dense sparse; do
        o=$work/scaling/threads-$k-t$t
        timeout 120 "$CIGL" train --data "$data" --model resnet20 --method rigl --sparsity 0.95 \
            --kernels $k --epochs 1 --max-steps "${DEVICE_STEPS:-12}" --val-size 0 --threads "$t" \
            --out "$o" >"$o.log" 2>&1
        echo "device.sh: threads $k t=$t exit $?: $(img_per_s "$o.log") img/s"
        rm -rf "$o"
    done
done

# --- 2. MPI weak scaling --------------------------------------------------------------------
for n in ${DEVICE_SCALING-}; do
    [ "$n" -le "$cores" ] || continue
    o=$work/scaling/mpi-rigl-n$n
    timeout 120 mpirun -np "$n" $CIGL_MPIRUN_ARGS "$CIGL" train --data "$data" --model resnet20 \
        --method rigl --sparsity 0.9 --update-interval 10 --batch-size $((32 * n)) --epochs 1 \
        --max-steps 20 --val-size 0 --threads 1 --out "$o" >"$o.log" 2>&1
    echo "device.sh: mpi n=$n exit $?: $(img_per_s "$o.log") img/s"
    rm -rf "$o"
done

# --- 3. the grid ----------------------------------------------------------------------------
cd "$repo" || exit 1
for plan in "$@"; do
    left=$(( deadline - $(date +%s) ))
    [ "$left" -gt 10 ] || { echo "device.sh: no time left for $plan"; break; }
    timeout -s TERM "$left" jobs/local.sh -P $((cores / threads)) -c "$threads" \
        --logs "$work/reproduce/logs" "$plan"
    echo "device.sh: $plan: local.sh exit $?"
done

# --- pack: small files of finished runs, checkpoints of unfinished ones ----------------------
rm -rf "$work/reproduce/data"
find "$work/reproduce" -name final.h5 -delete
tar czf - -C "$work" reproduce scaling | split -b 15M -d - "$OUT/device-"
for f in "$OUT"/device-*; do mv "$f" "$f.tgz.part"; done
ls -l "$OUT"
