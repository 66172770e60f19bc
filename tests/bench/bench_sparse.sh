#!/bin/sh
# Sparse kernels vs our dense kernels vs PyTorch's masked training (issue: truly sparse compute).
# For every model and sparsity: bench_sparse (cigl --kernels dense / sparse / auto, training
# step and inference, compact file size) and torch_bench.py --masked, interleaved in
# BENCH_SPARSE_ROUNDS rounds so that load from other processes hits both; then the table
# ($BUILD/bench/sparse.md) and the plot ($BUILD/bench/sparse.svg) via sparse_report.py, which
# reports medians of the per-round ratios. Environment: BENCH_THREADS (2), BENCH_BATCH (128),
# BENCH_SPARSE_MODELS (mlp,lenet5,resnet20,wrn-22-2), BENCH_SPARSITIES (0.8,0.9,0.95,0.99),
# BENCH_SPARSE_REPS (3), BENCH_SPARSE_ROUNDS (2), BENCH_PYTHON (/usr/bin/python3), TORCH_WAITS.
BUILD=${BUILD:-build}
THREADS=${BENCH_THREADS:-2}
BATCH=${BENCH_BATCH:-128}
MODELS=${BENCH_SPARSE_MODELS:-mlp,lenet5,resnet20,wrn-22-2}
SPARSITIES=${BENCH_SPARSITIES:-0.8,0.9,0.95,0.99}
REPS=${BENCH_SPARSE_REPS:-3}
ROUNDS=${BENCH_SPARSE_ROUNDS:-2}
PY=${BENCH_PYTHON:-/usr/bin/python3}
# cigl runs as its CLI does (src/main.c: OMP_WAIT_POLICY=PASSIVE unless the caller set a
# policy); PyTorch under each of TORCH_WAITS and the report keeps its faster setting per model
# (measured: passive suits its mlp, 2.8 vs 7.0 ms; a short spin its resnet20, 270 vs 334 ms).
if [ -z "${OMP_WAIT_POLICY:-}${GOMP_SPINCOUNT:-}" ]; then OMP_WAIT_POLICY=PASSIVE; export OMP_WAIT_POLICY; fi
TORCH_WAITS=${TORCH_WAITS:-"OMP_WAIT_POLICY=PASSIVE GOMP_SPINCOUNT=20000"}
here=$(dirname "$0")
out=$BUILD/bench
bin=$out/bench_sparse
raw=$out/sparse_raw.log
[ -x "$bin" ] || { echo "bench_sparse.sh: $bin missing; run 'make bench'" >&2; exit 1; }
: >"$raw" || exit 1
status=0
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)" | tee -a "$raw"
round=1
while [ "$round" -le "$ROUNDS" ]; do
    for model in $(echo "$MODELS" | tr ',' ' '); do
        echo "== $model (round $round of $ROUNDS)"
        "$bin" --models "$model" --sparsities "$SPARSITIES" --threads "$THREADS" --batch "$BATCH" \
            --reps "$REPS" --min-time 0.2 >"$raw.tmp" 2>&1 || { echo "bench_sparse $model failed"; status=1; }
        grep -v '^BENCH ' "$raw.tmp"; cat "$raw.tmp" >>"$raw"
        if [ -x "$PY" ]; then
            for wait in $TORCH_WAITS; do
                env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT "$wait" "$PY" "$here/torch_bench.py" \
                    --models "$model" --masked "$SPARSITIES" --threads "$THREADS" --batch "$BATCH" \
                    --reps "$REPS" --min-time 0.2 >"$raw.tmp" 2>&1 || status=1
                grep -v '^BENCH ' "$raw.tmp" | sed "s/^/[$wait] /"; cat "$raw.tmp" >>"$raw"
            done
        fi
    done
    round=$((round + 1))
done
rm -f "$raw.tmp"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)" | tee -a "$raw"
if [ -x "$PY" ]; then
    "$PY" "$here/sparse_report.py" "$raw" --md "$out/sparse.md" --svg "$out/sparse.svg" || status=1
else
    echo "bench_sparse.sh: $PY missing: no table or plot (raw lines in $raw)"
fi
exit $status
