#!/bin/sh
# `make demo`: convert Fashion-MNIST to HDF5, train RigL and CigL briefly on 2 MPI ranks, print
# the accuracy / ECE table and write the reliability diagrams.
set -e
BUILD=${BUILD:-build}
SRC=${FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}
DATA=$BUILD/data/fashion-mnist.h5
OUT=$BUILD/demo
mkdir -p "$BUILD/data"
if [ ! -f "$DATA" ]; then
    echo "== converting Fashion-MNIST from $SRC to $DATA"
    "$BUILD/cigl" convert fashion-mnist "$SRC" "$DATA"
fi
rm -rf "$OUT"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
if command -v mpirun >/dev/null; then
    LAUNCH="mpirun -np 2 --bind-to none --mca btl_vader_single_copy_mechanism none"
    echo "== 2 MPI ranks x 1 thread"
else
    LAUNCH=""
    echo "== mpirun not found: training on 1 process"
fi
COMMON="--data $DATA --model mlp --sparsity 0.9 --epochs 3 --update-end 0.4 --batch-size 128 \
--lr 0.1 --nesterov --weight-decay 5e-4 --threads 1"
echo "== RigL, mlp (LeNet-300-100), 90% sparse, 3 epochs"
$LAUNCH "$BUILD/cigl" train $COMMON --method rigl --out "$OUT/rigl"
echo "== CigL, same, random mask rate 0.01, weights averaged every 100 steps from half-way"
$LAUNCH "$BUILD/cigl" train $COMMON --method cigl --average-start 0.5 --average-every 100 \
    --out "$OUT/cigl"
echo
"$BUILD/cigl" report "$OUT/rigl" "$OUT/cigl" --out "$OUT"
echo
echo "reliability diagrams: $OUT/rigl/reliability.svg $OUT/cigl/reliability.svg"
echo "report: $OUT/report.md, accuracy/ECE vs sparsity: $OUT/sparsity.svg"
