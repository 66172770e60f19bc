#!/bin/sh
# tests/bench/bench_imagenet.sh works end to end, at tiny settings (resnet20 at 3x32x32, batch 2,
# one rep, a folder of a few small JPEGs): every row of its tables is there with numbers > 0,
# and the table is appended to latest.md. Its timings are not checked. Needs the benchmark
# programs (make test builds them with the tests).
. tests/lib.sh
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
if [ ! -x "$BUILD/bench/bench_train" ] || [ ! -x "$BUILD/bench/bench_data" ]; then
    # make test builds both: missing means they did not compile
    bad "bench_programs_built (make $BUILD/bench/bench_train $BUILD/bench/bench_data)"
    summary
    exit 0
fi

out=$(BENCH_IMAGENET=0 tests/bench/bench_imagenet.sh)
check "skipped_when_BENCH_IMAGENET_0" "[ '$out' = 'skipped: BENCH_IMAGENET=0' ]"

echo "earlier table" >"$T/latest.md"
BENCH_THREADS=2 BENCH_IMAGENET_OUT=$T BENCH_IMAGENET_MODEL=resnet20 BENCH_IMAGENET_IMAGE=3x32x32 \
    BENCH_IMAGENET_CLASSES=10 BENCH_IMAGENET_BATCH=2 BENCH_IMAGENET_REPS=1 \
    BENCH_IMAGENET_STEPS=2 BENCH_IMAGENET_SOURCE=48x40 BENCH_IMAGENET_SPARSITIES=0.9 \
    BENCH_IMAGENET_BACKENDS="own onednn" tests/bench/bench_imagenet.sh >"$T/log" 2>&1
rc=$?
check "exits_0" "[ $rc -eq 0 ] || { tail -n 20 '$T/log'; false; }"
md=$T/imagenet.md
check "writes_the_table" "grep -q '^## ImageNet scale: resnet20 at 3x32x32, 10 classes' '$md'"
check "records_machine_and_load" "grep -q 'CPU: .*loadavg before: [0-9.]* [0-9.]* [0-9.]*, after: [0-9.]*' '$md'"

# row NAME COLUMN: the value in that column (1 = the name) of the table row starting with NAME
row() { awk -F'|' -v n="$1" -v c="$2" '{ x = $2; gsub(/^ +| +$/, "", x) } x == n { v = $(c + 1); gsub(/ /, "", v); print v; exit }' "$md"; }
positive() { awk -v v="$(row "$1" "$2")" 'BEGIN { exit !(v + 0 > 0) }'; }
# img/s (column 4) and peak RSS (column 8) of each training row
for r in "cigl dense (own)" "cigl RigL 90%" "cigl CigL 90%"; do
    name=$(echo "$r" | tr -c 'A-Za-z0-9\n' '_')
    check "row_${name}img_per_s_positive" "positive '$r' 4"
    check "row_${name}peak_rss_positive" "positive '$r' 8"
done
# the oneDNN row is there exactly when the build links oneDNN (ONEDNN=1, the default), whatever
# its run did: a failing oneDNN run must fail the check, not remove the row silently
if ldd "$BUILD/bench/bench_train" | grep -q libdnnl; then
    check "row_cigl_dense_onednn_positive" "positive 'cigl dense (onednn)' 4"
else
    check "onednn_row_left_out_without_onednn" "! grep -q 'cigl dense (onednn)' '$md'"
fi
check "sparse_rows_use_the_sparse_kernels" "[ \"\$(row 'cigl RigL 90%' 3 | cut -d/ -f1)\" -gt 0 ]"
if "$PY" -c 'import torch' 2>/dev/null; then
    check "row_torch_dense_positive" "positive 'torch dense' 4 && positive 'torch dense' 8"
else
    skip "row_torch_dense_positive" "python3-torch not installed"
fi
# data path: column 2 is img/s
for r in "cigl convert imagefolder (JPEG decode + resize, 2 threads)" \
    "reader alone, in memory (random resized crop, flip, normalise)" \
    "reader alone, streamed from the file" \
    "cigl train resnet20, --data-mode memory, 2 steps" \
    "cigl train resnet20, --data-mode stream, 2 steps"; do
    name=$(echo "$r" | cut -d, -f1-2 | tr -c 'A-Za-z0-9\n' '_')
    check "data_${name}_img_per_s_positive" "positive '$r' 2"
done
check "appends_to_latest_md" "head -n 1 '$T/latest.md' | grep -q 'earlier table' && grep -q '^## ImageNet scale' '$T/latest.md'"
if "$PY" -c 'import torch' 2>/dev/null; then
    check "no_na_cells" "! grep -q 'n/a' '$md'"
else
    skip "no_na_cells" "python3-torch not installed: its row reads n/a"
fi
summary
