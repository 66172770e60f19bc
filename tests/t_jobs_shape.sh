#!/bin/bash
# Job scripts without a cluster: plan-line shapes (jobs/shape.sh) in submit.sh --dry-run,
# scaling.sh's plan and local.sh; cigl.sbatch's staging by content hash; the requeue marker.
. tests/lib.sh
T=$(mktemp -d /tmp/cigl-shape-test.XXXXXX)
trap 'rm -rf "$T"' EXIT
export CIGL=$(cd "$(dirname "$CIGL")" && pwd)/$(basename "$CIGL") CIGL_HOME=$(pwd)
need_data
"$PY" tests/make_subset.py "$DATA" "$T/sub.h5" 300 100 || { bad make_subset; summary; exit 1; }

. jobs/shape.sh
plan_shape "@nodes=2 tasks=4 threads=3 --out 'a b'"
check "shape_parsed" "[ '$shape_nodes $shape_tasks $shape_threads' = '2 4 3' ] &&
    [ \"\$shape_rest\" = \"--out 'a b'\" ]"
check "shape_malformed_refused" "! plan_shape '@nodes=0 --out x' && ! plan_shape '@gpus=1 --out x'"

{ echo "@nodes=2 tasks=2 threads=1 --data d.h5 --out $T/p2"; echo "--data d.h5 --out $T/p1"; } \
    >"$T/plan.txt"
jobs/submit.sh --dry-run "$T/plan.txt" -- -t 10 >"$T/dry.txt" 2>&1
check "submit_dry_run_shapes" \
    "grep -q -- '-N 2 -n 2 -c 1 -t 10 .*cigl.sbatch --data d.h5 --out $T/p2' '$T/dry.txt' &&
     grep -q -- '--job-name=cigl-p1 -t 10 .*--out $T/p1' '$T/dry.txt'"

jobs/scaling.sh --plan "$T/scal.txt" --nodes "1 2 4" --threads 2 --mode both --root "$T/s" -- \
    --data d.h5 --model mlp --batch-size 32 >/dev/null
check "scaling_plan_strong_and_weak" \
    "grep -q '^@nodes=4 tasks=4 threads=2 .*--batch-size 32 --out $T/s/strong-n4' '$T/scal.txt' &&
     grep -q '^@nodes=4 tasks=4 threads=2 .*--batch-size 128 --out $T/s/weak-n4' '$T/scal.txt'"

# local.sh: a line's own tasks replace -n; a 2-node line is refused
R=(--data "$T/sub.h5" --model mlp --method rigl --sparsity 0.9 --batch-size 32 --max-steps 6
   --val-size 50)
{ echo "@tasks=2 threads=1 $(printf '%q ' "${R[@]}") --out $T/l2"
  echo "@nodes=2 $(printf '%q ' "${R[@]}") --out $T/l3"; } >"$T/lplan.txt"
timeout 300 jobs/local.sh -n 1 --logs "$T/logs" "$T/lplan.txt" >"$T/local.out" 2>&1; rc=$?
check "local_shape_sets_ranks" "[ $rc -eq 1 ] && grep -q '\"ranks\": 2' '$T/l2/final.json' &&
    grep -q 'needs a cluster' '$T/local.out' && [ ! -e '$T/l3' ]"

# staging: copied once, reused while the content hash matches, copied again after an in-place
# change of the same size
cp "$T/sub.h5" "$T/src.h5"
S=(--data "$T/src.h5" --model mlp --method rigl --sparsity 0.9 --max-steps 2 --val-size 50)
CIGL_STAGE_DIR=$T/stage timeout 120 jobs/cigl.sbatch "${S[@]}" --out "$T/st1" >"$T/st1.log" 2>&1
CIGL_STAGE_DIR=$T/stage timeout 120 jobs/cigl.sbatch "${S[@]}" --out "$T/st2" >"$T/st2.log" 2>&1
printf 'X' | dd of="$T/src.h5" bs=1 seek=$(( $(stat -c %s "$T/src.h5") - 1 )) conv=notrunc \
    2>/dev/null
CIGL_STAGE_DIR=$T/stage timeout 120 jobs/cigl.sbatch "${S[@]}" --out "$T/st3" >"$T/st3.log" 2>&1
check "stage_copies_then_reuses" "grep -q 'staged $T/src.h5' '$T/st1.log' &&
    grep -q 'is current' '$T/st2.log' && [ -f '$T/st2/final.json' ]"
check "stage_recopies_on_same_size_change" "grep -q 'staged $T/src.h5' '$T/st3.log' &&
    cmp -s '$T/src.h5' '$T/stage/cigl-stage/src.h5'"

# the requeue marker: written by rank 0 on a stop signal, removed by the next launch
CIGL_TEST_SIGNAL_AT_STEP=2 timeout 120 jobs/cigl.sbatch "${R[@]}" --checkpoint-every 1 \
    --out "$T/mk" >"$T/mk.log" 2>&1; rc=$?
check "marker_written_on_stop" \
    "[ $rc -eq 75 ] && grep -q '\"reason\": \"SIGUSR2\"' '$T/mk/requeue.json'"
timeout 120 jobs/cigl.sbatch "${R[@]}" --out "$T/mk" >>"$T/mk.log" 2>&1; rc=$?
check "marker_gone_after_resume" \
    "[ $rc -eq 0 ] && [ ! -e '$T/mk/requeue.json' ] && [ -f '$T/mk/final.json' ]"
summary
