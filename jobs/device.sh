#!/bin/bash
# One bounded session on a borrowed many-core machine that has no Open MPI, HDF5 or OpenBLAS
# (the bundle of jobs/bundle.sh brings them): MPI weak scaling of resnet20, then as much of a
# grid plan as fits, 1 thread per run, every core busy. Results land in $OUT (copied back by
# the caller): scaling/*.json and the runs' small files; unfinished runs keep their newest
# checkpoint, so `jobs/reproduce.sh` continues them anywhere.
#
#   OUT=/some/dir jobs/device.sh BUNDLE_DIR SECONDS_FOR_THE_GRID [PLAN...]
# DEVICE_SCALING="1 2 4" chooses the rank counts of the scaling runs ("": none).
set -u
bundle=$1; budget=$2; shift 2
: "${OUT:?set OUT to the folder that is copied back}"
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
. "$bundle/env.sh"
cores=$(nproc)
echo "device.sh: $(hostname), $cores cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
mkdir -p "$OUT/scaling" "$OUT/reproduce/data" "$repo/runs"
data=$OUT/reproduce/data/fashion-mnist.h5
"$CIGL" convert fashion-mnist "$bundle/data/fashion-mnist" "$data" || exit 1
ln -sfn "$OUT/reproduce" "$repo/runs/reproduce"

# --- weak scaling: 32 samples per rank per step, resnet20, dense and RigL 90% ---------------
for n in ${DEVICE_SCALING-1 2 4 8 16}; do
    [ "$n" -le "$cores" ] || continue
    for m in dense rigl; do
        sp=""; [ $m = rigl ] && sp="--sparsity 0.9 --update-interval 10"
        s=$(date +%s.%N)
        timeout 120 mpirun -np $n $CIGL_MPIRUN_ARGS "$CIGL" train --data "$data" --model resnet20 \
            --method $m $sp --batch-size $((32 * n)) --epochs 1 --max-steps 40 --val-size 0 \
            --threads 1 --out "$OUT/scaling/$m-n$n" >"$OUT/scaling/$m-n$n.log" 2>&1
        echo "device.sh: scaling $m n=$n exit $? in $(echo "$(date +%s.%N) - $s" | bc) s"
        rm -f "$OUT/scaling/$m-n$n/final.h5"
    done
done

# --- the grid: plans in order, every core one 1-thread run, until the budget is spent --------
cd "$repo" || exit 1
for plan in "$@"; do
    timeout -s TERM "$budget" jobs/local.sh -P "$cores" -c 1 --logs "$OUT/logs" "$plan"
    echo "device.sh: $plan: local.sh exit $?"
done
# only small files come back: drop the dataset and the model files of finished runs (final.json
# has the numbers); unfinished runs keep their checkpoint
rm -rf "$OUT/reproduce/data"
find "$OUT/reproduce" -name final.h5 -delete
du -sh "$OUT"
