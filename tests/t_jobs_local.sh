#!/bin/bash
# jobs/plan.sh writes one line per method x sparsity x seed (dense without --sparsity);
# jobs/local.sh runs a plan with 2 slots, SIGTERM (as Ctrl-C) makes the running runs checkpoint
# (exit 75), the same command then finishes them from their checkpoints, and a third call skips
# everything; each launch is recorded in OUT/launches.jsonl with the machine, a launch killed
# outright too, and a launch goes on unchanged when its script is edited under it.
. tests/lib.sh
T=$(mktemp -d /tmp/cigl-local-test.XXXXXX)
trap 'rm -rf "$T"' EXIT
export CIGL=$(cd "$(dirname "$CIGL")" && pwd)/$(basename "$CIGL")

jobs/plan.sh --root "$T/grid" --methods "dense rigl cigl rigl-ls=rigl" --sparsities "0.9 0.95" \
    --seeds "0 1" --with cigl "--update-end 0.5 --average-start 0.5 --average-every 10" \
    --with rigl-ls "--label-smoothing 0.1" -- --data "$T/sub.h5" --model lenet5 >"$T/plan.txt"
runs=$(grep -cv '^#' "$T/plan.txt")
check "plan_has_2_dense_plus_12_sparse_runs" "[ $runs -eq 14 ]"
check "plan_dense_without_sparsity" "! grep -- '--method dense' '$T/plan.txt' | grep -q sparsity"
check "plan_label_args_and_out" "grep -q -- '--method rigl --sparsity 0.95 --seed 1 --label-smoothing 0.1 .* --out $T/grid/rigl-ls-s0.95-seed1' '$T/plan.txt'"

need_data
"$PY" tests/make_subset.py "$DATA" "$T/sub.h5" 1600 200 || { bad make_subset; summary; exit 1; }
# two runs of the plan, 6 short epochs each (~0.3 s each on an idle core)
grep -e "--method dense --seed 0" -e "--method cigl --sparsity 0.9 --seed 0" "$T/plan.txt" |
    sed 's/$/ --epochs 6 --val-size 100 --batch-size 32/' >"$T/two.txt"
# Each run of the first launch waits after step 30 (of 282) until the stop signal arrives
# (test hook, at most 120 s): the signal lands mid-run on a machine of any speed.
CIGL_TEST_PAUSE_AT_STEP=30 jobs/local.sh -P 2 -n 1 -c 1 --logs "$T/logs" "$T/two.txt" \
    >"$T/first.log" 2>&1 &
pid=$!
for i in $(seq 600); do [ "$(ls "$T"/grid/*/config.json 2>/dev/null | wc -l)" -eq 2 ] && break; sleep 0.1; done
sleep 0.5
kill -TERM $pid
wait $pid; rc=$?
cat "$T/first.log" | sed 's/^/  /'
check "interrupted_plan_exits_75" "[ $rc -eq 75 ] && grep -q 'checkpointed' '$T/first.log'"
check "interrupted_runs_left_checkpoints" "ls '$T'/grid/*/checkpoints/step-*.h5 >/dev/null 2>&1"
timeout 300 jobs/local.sh -P 2 --logs "$T/logs" "$T/two.txt" >"$T/second.log" 2>&1; rc=$?
check "rerun_finishes_both" "[ $rc -eq 0 ] && [ -f '$T/grid/dense-seed0/final.json' ] && [ -f '$T/grid/cigl-s0.9-seed0/final.json' ]"
check "rerun_resumed_from_checkpoint" "grep -q 'resuming from' '$T'/logs/*.log"
timeout 60 jobs/local.sh -P 2 --logs "$T/logs" "$T/two.txt" >"$T/third.log" 2>&1; rc=$?
check "finished_runs_skipped" "[ $rc -eq 0 ] && grep -q '0 finished, 2 already finished' '$T/third.log'"
check "launches_record_machine" "grep -q '\"host\": \"$(hostname)\", \"nproc\": $(nproc)' '$T/grid/dense-seed0/launches.jsonl'"

# A launch killed outright (SIGKILL to its process group: a lost node, the end of a session)
# still leaves its line, "end" and "exit" null; the launch that finishes the run adds its own.
# dense_run OUT: the plan's dense line with its --out replaced, in args; wait_started OUT: until
# that run has written its config (its launch is then paused at step 30)
dense_run() {
    eval "set -- $(grep -e "--method dense --seed 0" "$T/two.txt" | sed "s|$T/grid/dense-seed0|$1|")"
    args=("$@")
}
wait_started() {
    for i in $(seq 600); do [ -f "$1/config.json" ] && break; sleep 0.1; done
    sleep 0.5
}
dense_run "$T/killed"; set -- "${args[@]}"
CIGL_TEST_PAUSE_AT_STEP=30 setsid jobs/cigl.sbatch "$@" >"$T/killed.log" 2>&1 &
pid=$!
wait_started "$T/killed"
kill -KILL -- -"$pid"
wait "$pid" 2>/dev/null
check "killed_launch_leaves_open_line" "[ \$(wc -l <'$T/killed/launches.jsonl') -eq 1 ] && grep -q '\"end\": null, .*\"exit\": null}' '$T/killed/launches.jsonl'"
timeout 300 jobs/cigl.sbatch "$@" >"$T/killed2.log" 2>&1; rc=$?
check "next_launch_adds_its_line" "[ $rc -eq 0 ] && [ \$(wc -l <'$T/killed/launches.jsonl') -eq 2 ] && sed -n 1p '$T/killed/launches.jsonl' | grep -q '\"exit\": null}' && sed -n 2p '$T/killed/launches.jsonl' | grep -q '\"end\": \"[0-9T:Z-]*\", .*\"exit\": 0}'"

# Editing cigl.sbatch while a launch runs it (hours, from the checkout) must not change what
# that launch does: 40 lines are put in front of a copy of the script while its launch is
# paused, and the launch still checkpoints on the stop signal and exits 75.
mkdir -p "$T/edited" && cp -r jobs "$T/edited/jobs"
dense_run "$T/edited/run"; set -- "${args[@]}"
CIGL_TEST_PAUSE_AT_STEP=30 "$T/edited/jobs/cigl.sbatch" "$@" >"$T/edited.log" 2>&1 &
pid=$!
wait_started "$T/edited/run"
{ for i in $(seq 40); do echo "echo edited-line-$i; exit 3"; done; cat jobs/cigl.sbatch; } \
    >"$T/edited/jobs/cigl.sbatch"
kill -USR2 "$pid"
wait "$pid"; rc=$?
sed 's/^/  /' "$T/edited.log"
check "script_edited_mid_run_keeps_running" "[ $rc -eq 75 ] && grep -q 'checkpointed; run the same command again' '$T/edited.log' && ! grep -q edited-line '$T/edited.log'"
summary
