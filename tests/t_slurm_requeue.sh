#!/bin/bash
# jobs/cigl.sbatch end to end: a run interrupted by the early-warning signal checkpoints, is
# requeued, resumes by itself and ends with the same weights, masks and BN statistics (h5diff)
# as an uninterrupted run with the same rank count (2).
#  1. reference: uninterrupted, 2 ranks, through jobs/cigl.sbatch without SLURM (mpirun);
#  2. the same script without SLURM, SIGUSR2 mid-run (as jobs/local.sh sends on Ctrl-C): exit 75,
#     rerun, resumed, identical;
#  3. a private single-node SLURM cluster (own munged, slurmctld, slurmd on random ports, every
#     file under a temp dir, SLURM_CONF pointing there): plain `srun -n 2` (no MPI plugin)
#     refused with exit 2; sbatch -n 2, `scancel --batch
#     --signal=USR2` mid-run, the script requeues the job, SLURM restarts it
#     (SLURM_RESTART_COUNT 1), it resumes and finishes identical;
#  4. a plain scancel: checkpointed, not requeued;
#  5. a 2-task job array over a plan (jobs/sweep.sbatch): the finished run skipped, a new one run.
# If slurm/munge are missing or the daemons do not start, parts 3-5 are skipped and the reason
# printed (parts 1-2 still test the script with mpirun).
# Every wait is bounded; the daemons are stopped by their pid files on any exit.
. tests/lib.sh
. tests/slurm_lib.sh
T=$(mktemp -d /tmp/cigl-slurm-test.XXXXXX)
SLURM_TRACE=$T/states.txt
chmod 755 "$T"
HOME_DIR=$(pwd)
CIGL_ABS=$(cd "$(dirname "$CIGL")" && pwd)/$(basename "$CIGL")
t0=$(date +%s)
deadline=$(( t0 + ${CIGL_TEST_BUDGET:-300} ))   # every wait is bounded: 5 minutes in all (2.5 idle)
left() { echo $(( deadline - $(date +%s) )); }

stop_cluster() {
    [ -f "$T/slurm.conf" ] || return 0
    SLURM_CONF=$T/slurm.conf timeout 10 scancel --full --quiet --user "$(id -un)" 2>/dev/null
    for i in $(seq 50); do   # let the job steps end before their slurmd goes
        [ -z "$(SLURM_CONF=$T/slurm.conf timeout 5 squeue -h 2>/dev/null)" ] && break; sleep 0.2
    done
    for f in "$T/slurmd.pid" "$T/slurmctld.pid" "$T/munge/pid"; do
        [ -f "$f" ] || continue
        p=$(cat "$f"); kill "$p" 2>/dev/null
        for i in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$p" 2>/dev/null && kill -9 "$p" 2>/dev/null
    done
}
cleanup() { stop_cluster; [ -n "${CIGL_TEST_KEEP:-}" ] && echo "kept $T" || rm -rf "$T"; }
trap cleanup EXIT
trap 'exit 1' INT TERM

need_data
"$PY" tests/make_subset.py "$DATA" "$T/sub.h5" 700 200 || { bad make_subset; summary; exit 1; }
# resnet20 (BN), cigl (random mask, a mask update at step 10, snapshots averaged from step 19
# every 5): every kind of state must resume. 2 epochs of 19 steps (600 samples, batch 32), ~2 s
# each on 2 idle cores (8 s on the loaded ones); the signal goes 1 s after epoch 1 ends, so
# mid-epoch 2, between snapshots.
ARGS=(--data "$T/sub.h5" --model resnet20 --method cigl --sparsity 0.9 --batch-size 32
      --epochs 2 --val-size 100 --update-interval 10 --update-end 0.5 --average-start 0.5
      --average-every 5 --check-every 4)
export CIGL=$CIGL_ABS CIGL_HOME=$HOME_DIR OMPI_MCA_rmaps_base_oversubscribe=1

same_model() { # run dir: final.h5 identical to the reference in weights, masks and BN
    for g in /weights /masks /bn; do
        h5diff "$T/ref/final.h5" "$1/final.h5" "$g" "$g" >/dev/null 2>&1 || return 1
    done
}
wait_epoch() { # run dir: until metrics.jsonl has a line (bounded), then 1 s more
    while [ "$(left)" -gt 0 ]; do
        [ -s "$1/metrics.jsonl" ] && { sleep 1; return 0; }
        [ -f "$1/final.json" ] && return 1
        sleep 0.2
    done
    return 1
}
launch_exit() { # run dir, line: the exit status recorded by that launch in launches.jsonl
    sed -n "${2}p" "$1/launches.jsonl" 2>/dev/null | sed -n 's/.*"exit": \([0-9]*\).*/\1/p'
}

# 1. reference
CIGL_RANKS=2 timeout "$(left)" jobs/cigl.sbatch "${ARGS[@]}" --out "$T/ref" >"$T/ref.log" 2>&1
check "reference_run_finished" "[ -f '$T/ref/final.json' ] && [ -f '$T/ref/final.h5' ]"

# 2. without SLURM: SIGUSR2 to the script mid-run, exit 75, rerun resumes. The script runs in
#    its own process group (as jobs/local.sh starts it) so that a stuck run can be ended whole.
#    Test hook: the ranks wait after step 20 (the first of epoch 2) until the signal arrives
#    (at most 120 s), so that on a fast machine the run cannot finish before it; the resumed
#    run starts after step 20 and never waits.
CIGL_TEST_PAUSE_AT_STEP=20 CIGL_RANKS=2 setsid jobs/cigl.sbatch "${ARGS[@]}" --out "$T/local" \
    >"$T/local.log" 2>&1 &
pid=$!
wait_epoch "$T/local" && kill -USR2 $pid
while kill -0 $pid 2>/dev/null && [ "$(left)" -gt 0 ]; do sleep 0.2; done
kill -0 $pid 2>/dev/null && { echo "  local run stuck: ending it"; kill -KILL -- -$pid; }
wait $pid; rc=$?
check "local_signal_checkpoints_and_exits_75" "[ $rc -eq 75 ] && ls '$T/local/checkpoints/'step-*.h5 >/dev/null 2>&1 && [ ! -f '$T/local/final.json' ]"
CIGL_RANKS=2 timeout "$(left)" jobs/cigl.sbatch "${ARGS[@]}" --out "$T/local" >>"$T/local.log" 2>&1
check "local_rerun_resumes_and_finishes" "[ -f '$T/local/final.json' ] && [ \"\$(launch_exit '$T/local' 2)\" = 0 ]"
check "local_resumed_identical_to_uninterrupted" "same_model '$T/local'"
CIGL_RANKS=2 timeout 30 jobs/cigl.sbatch "${ARGS[@]}" --out "$T/local" >"$T/again.log" 2>&1
check "finished_run_skipped" "grep -q 'finished' '$T/again.log' && [ \$(wc -l <'$T/local/launches.jsonl') -eq 2 ]"

# 3. SLURM
why=""
for c in munged munge slurmctld slurmd sbatch scontrol squeue scancel; do
    command -v $c >/dev/null || { why="$c is not installed (apt-get install slurm-wlm munge)"; break; }
done
start_cluster() {
    mkdir -p "$T/munge" "$T/spool" "$T/state" "$T/log" && chmod 755 "$T/munge"
    # a private munge key and daemon: nothing in /etc or /run is touched
    dd if=/dev/urandom of="$T/munge/key" bs=1024 count=1 2>/dev/null && chmod 600 "$T/munge/key"
    munged --force --socket="$T/munge/sock" --pid-file="$T/munge/pid" --log-file="$T/munge/log" \
        --seed-file="$T/munge/seed" --key-file="$T/munge/key" 2>"$T/munge/err" ||
        { why="munged did not start: $(head -c 200 "$T/munge/err")"; return 1; }
    munge -S "$T/munge/sock" -n | unmunge -S "$T/munge/sock" >/dev/null 2>&1 ||
        { why="munge does not answer on its socket"; return 1; }
    H=$(hostname -s); P=$(( 20000 + RANDOM % 20000 ))
    cat >"$T/slurm.conf" <<EOF
ClusterName=cigltest
SlurmctldHost=$H(127.0.0.1)
SlurmctldPort=$P
SlurmdPort=$((P + 1))
AuthType=auth/munge
AuthInfo=socket=$T/munge/sock
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SchedulerParameters=bf_interval=1
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
SlurmUser=$(id -un)
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
KillWait=5
MinJobAge=600
SlurmctldPidFile=$T/slurmctld.pid
SlurmdPidFile=$T/slurmd.pid
SlurmdSpoolDir=$T/spool
StateSaveLocation=$T/state
SlurmctldLogFile=$T/log/slurmctld.log
SlurmdLogFile=$T/log/slurmd.log
NodeName=$H NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=1000 State=UNKNOWN
PartitionName=debug Nodes=$H Default=YES MaxTime=INFINITE State=UP
EOF
    export SLURM_CONF=$T/slurm.conf
    slurmctld -c -f "$SLURM_CONF" 2>"$T/log/ctld.err" || { why="slurmctld did not start: $(tail -n 2 "$T/log/"slurmctld* | head -c 300)"; return 1; }
    slurmd -f "$SLURM_CONF" 2>"$T/log/d.err" || { why="slurmd did not start: $(tail -n 2 "$T/log/"slurmd* | head -c 300)"; return 1; }
    for i in $(seq 100); do
        timeout 5 sinfo -h -o %t 2>/dev/null | grep -q idle && return 0
        sleep 0.2
    done
    why="the node did not become idle in 20 s: $(tail -n 3 "$T/log/slurmd.log" 2>/dev/null | head -c 300)"
    return 1
}
# the checks below need the cluster: each is counted as skipped, with the reason, without it
SLURM_CHECKS="srun_without_mpi_plugin_refused sbatch_accepted slurm_signal_checkpointed_exit_75
 slurm_job_requeued_restart_count_1 slurm_requeued_job_resumed_and_finished
 slurm_launcher_is_srun_pmix slurm_resumed_identical_to_uninterrupted
 scancel_checkpoints_but_does_not_requeue sweep_array_skips_finished_run sweep_array_runs_new_run"
if [ -n "$why" ] || ! start_cluster; then
    for c in $SLURM_CHECKS; do skip "$c" "SLURM part: $why"; done
    summary; exit $?
fi
echo "  private SLURM cluster up (port $P, $(sinfo --version))"
# plain srun (no MPI plugin) starts independent one-rank processes: cigl must refuse, exit 2,
# naming srun --mpi=pmix, before it writes anything
timeout 60 srun -n 2 -c 1 "$CIGL" train --data "$T/sub.h5" --model mlp --max-steps 2 \
    --out "$T/plain" >"$T/plain.log" 2>&1
rc=$?
check "srun_without_mpi_plugin_refused" "[ $rc -ne 0 ] &&
    grep -q 'srun started independent processes' '$T/plain.log' && [ ! -e '$T/plain' ]"
jid=$(CIGL_TEST_PAUSE_AT_STEP=20 sbatch --parsable -n 2 -c 1 -o "$T/slurm-%j.out" jobs/cigl.sbatch "${ARGS[@]}" --out "$T/slurm" 2>"$T/sbatch.err")
check "sbatch_accepted" "[ -n '$jid' ]"
if [ -n "$jid" ]; then
    wait_epoch "$T/slurm" && scancel --batch --signal=USR2 "$jid"
    slurm_follow "$jid"
    log=$T/slurm-$jid.out
    echo "  job $jid: $(grep -c 'restart' "$log" 2>/dev/null) launches; states: $(grep "job $jid:" "$SLURM_TRACE" | cut -d' ' -f4- | paste -sd'|')"
    check "slurm_signal_checkpointed_exit_75" "[ \"\$(launch_exit '$T/slurm' 1)\" = 75 ] && grep -q 'requeueing job $jid' '$log'"
    check "slurm_job_requeued_restart_count_1" "grep -q 'job $jid restart 1' '$log' && grep -q '\"restart\": 1' '$T/slurm/launches.jsonl'"
    check "slurm_requeued_job_resumed_and_finished" "[ -f '$T/slurm/final.json' ] && [ \"\$(launch_exit '$T/slurm' 2)\" = 0 ]"
    check "slurm_launcher_is_srun_pmix" "grep -q '\"launcher\": \"srun\"' '$T/slurm/launches.jsonl'"
    check "slurm_resumed_identical_to_uninterrupted" "same_model '$T/slurm'"
    if [ ! -f "$T/slurm/final.json" ]; then
        tail -n 20 "$log"; cat "$SLURM_TRACE"; scontrol show job "$jid" 2>&1 | head -n 12
        tail -n 15 "$T/log/slurmctld.log"
    fi
fi

# 4. a plain scancel: the ranks checkpoint on SIGTERM, but the job is not requeued
jid=$(CIGL_TEST_PAUSE_AT_STEP=20 sbatch --parsable -n 2 -c 1 -o "$T/cancel-%j.out" jobs/cigl.sbatch "${ARGS[@]}" --out "$T/cancel" 2>/dev/null)
if [ -n "$jid" ] && wait_epoch "$T/cancel"; then
    scancel "$jid"
    slurm_follow "$jid"
fi
check "scancel_checkpoints_but_does_not_requeue" "grep -q 'not requeued' '$T/cancel-$jid.out' && scontrol show job '$jid' | grep -q 'Restarts=0' && ls '$T/cancel/checkpoints/'step-*.h5 >/dev/null 2>&1"

# 5. a job array over a plan (jobs/sweep.sbatch): task 0 is the finished run above (skipped),
#    task 1 a short new run
{ echo "# two runs"; printf '%q ' "${ARGS[@]}" --out "$T/slurm"; echo
  echo "--data '$T/sub.h5' --model mlp --method rigl --max-steps 10 --val-size 100 --out '$T/sweep1'"; } >"$T/plan.txt"
aid=$(sbatch --parsable --array=0-1%2 -n 1 -c 1 -o "$T/sweep-%A_%a.out" jobs/sweep.sbatch "$T/plan.txt" 2>"$T/sbatch2.err")
[ -n "$aid" ] && slurm_follow "$aid"
check "sweep_array_skips_finished_run" "grep -q 'is finished' '$T/sweep-${aid}_0.out' && [ \$(wc -l <'$T/slurm/launches.jsonl') -eq 2 ]"
check "sweep_array_runs_new_run" "[ -f '$T/sweep1/final.json' ] && grep -q '\"slurm_job\"' '$T/sweep1/launches.jsonl'"
[ -f "$T/sweep1/final.json" ] || cat "$T/sbatch2.err" "$T"/sweep-*.out 2>/dev/null | tail -n 10
echo "  $(( $(date +%s) - t0 )) s"
summary
