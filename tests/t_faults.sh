#!/bin/bash
# Faults that lose nothing (docs/checkpoints.md): non-finite values (--on-nonfinite stop|skip), a
# SIGKILLed rank (the others must not hang; resume is exact), SIGTERM to the ranks and SIGUSR2
# to mpirun (checkpoint, exit 75, exact resume), Ctrl-C twice.
. tests/lib.sh
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
MPIRUN="mpirun -np 2 --bind-to none --mca btl_vader_single_copy_mechanism none"
need_data
"$PY" tests/make_subset.py "$DATA" "$T/sub.h5" 6000 1000 || bad make_subset
A="--data $T/sub.h5 --model mlp --epochs 3 --val-size 1000 --threads 1 --method rigl --update-interval 10"
L="--data $T/sub.h5 --model lenet5 --epochs 3 --val-size 1000 --threads 1 --method cigl --update-interval 10 --average-every 5"
same_final() {
    for g in /weights /bn /masks; do h5diff "$1/final.h5" "$2/final.h5" $g $g >/dev/null || return 1; done
}
seconds_since() { echo "$(date +%s) - $1" | bc; }

# --- a NaN in the input of step 50: stop names step and layer, keeps the checkpoint ---------
"$CIGL" train $A --out "$T/ref" >/dev/null 2>&1
CIGL_TEST_NAN_AT_STEP=50 "$CIGL" train $A --out "$T/nan" --checkpoint-every 1 >"$T/nan.log" 2>&1
st=$?
check "nonfinite_stops_with_status_1" "[ $st = 1 ] && [ ! -f '$T/nan/final.json' ]"
check "nonfinite_message_names_step_and_layer" "[ \$(wc -l <'$T/nan.log' | tr -d ' ') -ge 1 ] && grep -q \"non-finite value at step 50 (epoch 2) in the gradient of 'fc1.weight'.*--on-nonfinite skip\" '$T/nan.log'"
"$CIGL" train $A --out "$T/nan" --resume auto >"$T/nan2.log" 2>&1
check "nonfinite_last_checkpoint_kept_and_resumes_exactly" "grep -q 'step-000000040.h5' '$T/nan2.log' && same_final '$T/ref' '$T/nan'"
# a diverging run (lr 1e5): stopped within a few steps, naming where the overflow appeared
"$CIGL" train $A --out "$T/nan_fw" --lr 1e5 >"$T/nan_fw.log" 2>&1
check "diverging_lr_stopped_naming_a_layer" "grep -q \"non-finite value at step [0-9]* (epoch 1) in the \\(output of layer\\|gradient of\\) '\" '$T/nan_fw.log'"

# --- --on-nonfinite skip: the batch is skipped, counted, training goes on ---------------------
CIGL_TEST_NAN_AT_STEP=25 "$CIGL" train $A --out "$T/skip" --on-nonfinite skip >"$T/skip.log" 2>&1
st=$?
check "skip_finishes" "[ $st = 0 ] && [ -f '$T/skip/final.json' ]"
check "skip_counted_in_final_json" "grep -q '\"skipped_steps\": 1,' '$T/skip/final.json'"
check "skip_counted_in_epoch_1_only" "head -n 1 '$T/skip/metrics.jsonl' | grep -q '\"skipped_steps\":1}' && sed -n 2p '$T/skip/metrics.jsonl' | grep -q '\"skipped_steps\":0}'"
check "skip_says_which_step" "grep -q 'step 25 skipped: non-finite value in the gradient of' '$T/skip.log'"
"$CIGL" train $A --out "$T/badpol" --on-nonfinite ignore >"$T/badpol.log" 2>&1
st=$?
check "unknown_policy_refused" "[ $st = 2 ] && grep -q 'expected stop or skip' '$T/badpol.log'"

# --- 2 ranks: a NaN on rank 0 stops both (no hang), the message names the rank ---------------
s=$(date +%s)
$MPIRUN -x CIGL_TEST_NAN_AT_STEP=30 "$CIGL" train $L --out "$T/mnan" >"$T/mnan.log" 2>&1
st=$?
check "mpi_nonfinite_both_ranks_stop" "[ $st != 0 ] && [ \$(seconds_since $s) -lt 60 ] && grep -q 'rank 0: non-finite value at step 30' '$T/mnan.log'"

# --- SIGKILL of one rank: the other exits within a bounded time; resume is exact -------------
$MPIRUN "$CIGL" train $L --out "$T/lref" >/dev/null 2>&1
$MPIRUN "$CIGL" train $L --out "$T/kill" --checkpoint-every 1 >"$T/kill.log" 2>&1 &
mp=$!
for i in $(seq 1 300); do [ -f "$T/kill/checkpoints/step-000000040.h5" ] && break; sleep 0.1; done
victim=$(pgrep -f "^[^ ]*cigl train .*--out $T/kill " | tail -n 1) # a rank, not mpirun
s=$(date +%s)
kill -9 $victim
wait $mp
st=$?
took=$(seconds_since $s)
echo "  SIGKILL of one rank: mpirun exited with $st after ${took} s"
check "sigkill_one_rank_others_exit_within_30s" "[ -n '$victim' ] && [ $st != 0 ] && [ $took -lt 30 ] && ! pgrep -f '^[^ ]*cigl train .*--out $T/kill ' >/dev/null"
$MPIRUN "$CIGL" train $L --out "$T/kill" --resume auto >"$T/kill2.log" 2>&1
check "after_sigkill_resume_exact" "grep -q 'resuming from' '$T/kill2.log' && same_final '$T/lref' '$T/kill'"

# --- SIGTERM to the ranks (SLURM at a time limit, an administrator): checkpoint, exit 75 -------
$MPIRUN "$CIGL" train $L --out "$T/term" >"$T/term.log" 2>&1 &
mp=$!
for i in $(seq 1 300); do grep -q '^epoch 1/3' "$T/term.log" && break; sleep 0.1; done
s=$(date +%s)
pkill -TERM -f "^[^ ]*cigl train .*--out $T/term\$" # the ranks only, not mpirun
wait $mp
st=$?
took=$(seconds_since $s)
echo "  SIGTERM to the ranks: exit $st after ${took} s"
check "sigterm_checkpoints_and_exits_75" "[ $st = 75 ] && [ $took -lt 30 ] && grep -q 'stopped by SIGTERM' '$T/term.log'"
$MPIRUN "$CIGL" train $L --out "$T/term" --resume auto >/dev/null 2>&1
check "after_sigterm_resume_exact" "same_final '$T/lref' '$T/term'"

# --- SIGUSR2 to mpirun (what the sbatch script forwards): mpirun passes it on -----------------
$MPIRUN "$CIGL" train $L --out "$T/usr2" >"$T/usr2.log" 2>&1 &
mp=$!
for i in $(seq 1 300); do grep -q '^epoch 1/3' "$T/usr2.log" && break; sleep 0.1; done
kill -USR2 $mp
wait $mp
st=$?
check "sigusr2_to_mpirun_checkpoints_exit_75" "[ $st = 75 ] && grep -q 'stopped by SIGUSR2' '$T/usr2.log'"
$MPIRUN "$CIGL" train $L --out "$T/usr2" --resume auto >/dev/null 2>&1
check "after_sigusr2_resume_exact" "same_final '$T/lref' '$T/usr2'"

# --- Ctrl-C twice ends the process at once ----------------------------------------------------
CIGL_TEST_CHECKPOINT_STALL=30 "$CIGL" train $A --out "$T/int" --checkpoint-every 1 >"$T/int.log" 2>&1 &
p=$!
for i in $(seq 1 300); do ls "$T/int/checkpoints" 2>/dev/null | grep -q tmp && break; sleep 0.1; done
kill -INT $p; sleep 0.3; s=$(date +%s); kill -INT $p
wait $p
st=$?
check "second_sigint_ends_at_once" "[ $st = 130 ] && [ \$(seconds_since $s) -lt 5 ] && [ ! -f '$T/int/checkpoints/step-000000040.h5' ]"

summary
