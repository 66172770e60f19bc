#!/bin/sh
# `make demo`: convert Fashion-MNIST to HDF5, train briefly, print the result.
# Grows with the project: later it trains RigL and CigL on 2 MPI ranks and prints the
# accuracy / ECE table with reliability diagrams.
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
echo "== training mlp (LeNet-300-100) for 1 epoch on 2 threads"
"$BUILD/cigl" train --data "$DATA" --model mlp --epochs 1 --batch-size 128 --lr 0.1 \
    --nesterov --weight-decay 5e-4 --threads 2 --out "$OUT/mlp"
echo "== training lenet5 for 1 epoch on 2 threads"
"$BUILD/cigl" train --data "$DATA" --model lenet5 --epochs 1 --batch-size 128 --lr 0.1 \
    --nesterov --weight-decay 5e-4 --threads 2 --out "$OUT/lenet5"
echo "== results (final.json)"
for r in mlp lenet5; do
    printf '%-8s ' "$r"
    grep -E '"test_(accuracy|nll)"' "$OUT/$r/final.json" | tr -d ' \n,'; echo
done
echo "run directories: $OUT/mlp, $OUT/lenet5"
