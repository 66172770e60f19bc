#!/bin/bash
# jobs/cigl.sbatch across two SLURM nodes: the namespace nodes cgs-n1 and cgs-n2 of
# tests/netns_lib.sh (10.78.0.1 and 10.78.0.2 on cgs0, a management link, a decoy interface,
# own hostnames and /tmp; CIGL_NET_IF and CIGL_OOB_IF must keep MPI off the decoy); a
# private munged on the host (its socket is a file, reachable from both), slurmctld and slurmd
# cgs-n1 in cgs-n1, slurmd cgs-n2 in cgs-n2, all files under one temp dir outside /tmp (the
# shared "file system"), SLURM_CONF pointing there. Checks:
#  1. `sbatch -N 2 -n 2` (srun --mpi=pmix, TCP between the nodes) ends with final.h5 identical
#     to a 2-rank run on one node (mpirun, shared memory);
#  2. `scancel --batch --signal=USR2` on a 2-node job: checkpoint, marker, requeue, exact resume;
#  3. a 1-node job on cgs-n1; cgs-n1 drained, USR2: the job restarts on cgs-n2 and ends exact;
#  4. every process of cgs-n2 killed (slurmd, slurmstepd, rank) during a 2-node job with a
#     periodic checkpoint: SLURM marks the node down and requeues the job (the time is
#     printed); slurmd cgs-n2 restarted, the job resumes from that checkpoint and ends exact.
# Needs root, ip netns, unshare, slurm-wlm and munge; each check is skipped with the reason
# otherwise. Everything made is removed on any exit.
. tests/lib.sh
. tests/netns_lib.sh
. tests/slurm_lib.sh
NN_PREFIX=cgs NN_NET=10.78
T=$(mktemp -d /var/tmp/cgs-slurm-mn.XXXXXX)
chmod 755 "$T"
HOME_DIR=$(pwd)
CIGL_ABS=$(cd "$(dirname "$CIGL")" && pwd)/$(basename "$CIGL")
t0=$(date +%s)
deadline=$(( t0 + ${CIGL_TEST_BUDGET:-420} ))
left() { echo $(( deadline - $(date +%s) )); }
CHECKS="two_node_identical_to_one_node usr2_requeue_checkpointed usr2_requeue_resumed_identical
    drained_node_job_resumes_on_other_node drained_resume_identical lost_node_detected_requeued
    lost_node_resumed_from_periodic_checkpoint lost_node_resumed_identical"

in1() { nn_exec 1 "$@"; }   # SLURM commands reach slurmctld from cgs-n1
SLURM_IN=in1 SLURM_TRACE=$T/states.txt
kill_node() { # every process of node N but the namespace's holder: a node lost at once
    local p h; h=$(cat "$NN_DIR/holder$1.pid" 2>/dev/null)
    for p in $(nn_pids "$1"); do [ "$p" = "$h" ] || kill -9 "$p" 2>/dev/null; done
}
cleanup() {
    if [ -f "$T/slurm.conf" ] && [ -f "$NN_DIR/holder1.pid" ]; then
        SLURM_CONF=$T/slurm.conf timeout 10 nn_exec 1 scancel --full --quiet --user root \
            2>/dev/null
        sleep 1
    fi
    for f in "$T"/slurmd-*.pid "$T/slurmctld.pid" "$T/munge/pid"; do
        [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null
    done
    sleep 0.5
    netns_down
    [ -f "$T/munge/pid" ] && kill -9 "$(cat "$T/munge/pid")" 2>/dev/null
    [ -n "${CIGL_TEST_KEEP:-}" ] && echo "kept $T" || rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
skip_all() { for c in $CHECKS; do skip "$c" "$1"; done; summary; exit $?; }

# --- what the test needs ---
why=$(netns_why); [ -z "$why" ] || skip_all "$why"
for c in munged munge slurmctld slurmd sbatch scontrol squeue scancel h5diff; do
    command -v $c >/dev/null || skip_all "$c is not installed (apt-get install slurm-wlm munge)"
done

# --- two namespace nodes ---
netns_up "$T" || skip_all "$NN_WHY"
disown -a   # the node holders: their end at teardown must not print after the summary line
# `ip netns exec` mounts a new /sys, without the cgroup file system slurmd looks for: each
# node gets a cgroup v1 layout (a tmpfs, the systemd and freezer hierarchies) in its own mount
# namespace
for n in 1 2; do
    nn_exec $n sh -c 'cg=/sys/fs/cgroup; mount -t tmpfs cgs-cgroup $cg &&
        mkdir $cg/systemd $cg/freezer && mount -t cgroup -o none,name=systemd cgroup $cg/systemd &&
        mount -t cgroup -o freezer cgroup $cg/freezer' 2>>"$T/cgroup.err" ||
        skip_all "cannot mount the cgroup file system in a node: $(head -c 200 "$T/cgroup.err")"
done

# --- munge, slurmctld, two slurmd ---
mkdir -p "$T/munge" "$T/state" "$T/log" && chmod 755 "$T/munge"
dd if=/dev/urandom of="$T/munge/key" bs=1024 count=1 2>/dev/null && chmod 600 "$T/munge/key"
munged --force --socket="$T/munge/sock" --pid-file="$T/munge/pid" --log-file="$T/munge/log" \
    --seed-file="$T/munge/seed" --key-file="$T/munge/key" 2>"$T/munge/err" ||
    skip_all "munged did not start: $(head -c 200 "$T/munge/err")"
P=$(( 42000 + RANDOM % 8000 ))
C=$(nproc)
cat >"$T/slurm.conf" <<EOF
ClusterName=cgsmn
SlurmctldHost=cgs-n1(10.78.0.1)
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
SlurmUser=root
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
SlurmdTimeout=6
SlurmctldTimeout=10
MessageTimeout=5
KillWait=3
MinJobAge=600
JobRequeue=1
SlurmctldPidFile=$T/slurmctld.pid
SlurmdPidFile=$T/slurmd-%n.pid
SlurmdSpoolDir=$T/spool-%n
StateSaveLocation=$T/state
SlurmctldLogFile=$T/log/slurmctld.log
SlurmdLogFile=$T/log/slurmd-%n.log
NodeName=cgs-n1 NodeAddr=10.78.0.1 CPUs=$C RealMemory=1000 State=UNKNOWN
NodeName=cgs-n2 NodeAddr=10.78.0.2 CPUs=$C RealMemory=1000 State=UNKNOWN
PartitionName=debug Nodes=cgs-n[1-2] Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF=$T/slurm.conf
start_slurmd() { nn_exec "$1" slurmd -N "cgs-n$1" -f "$SLURM_CONF" 2>>"$T/log/d-$1.err"; }
nn_exec 1 slurmctld -c -f "$SLURM_CONF" 2>"$T/log/ctld.err" ||
    skip_all "slurmctld did not start: $(tail -n 2 "$T/log/slurmctld.log" | head -c 300)"
start_slurmd 1 && start_slurmd 2 ||
    skip_all "slurmd did not start: $(cat "$T"/log/d-*.err | head -c 300)"
idle() { [ "$(in1 sinfo -h -N -n "$1" -o %t 2>/dev/null)" = idle ]; }
for i in $(seq 150); do idle cgs-n1 && idle cgs-n2 && break; sleep 0.2; done
idle cgs-n1 && idle cgs-n2 ||
    skip_all "the nodes did not become idle: $(in1 sinfo -N 2>&1 | tail -n 2 | tr '\n' ' ')"
echo "  two-node SLURM cluster up in $(( $(date +%s) - t0 )) s (port $P)"

# --- data and the runs ---
need_data
"$PY" tests/make_subset.py "$DATA" "$T/sub.h5" 700 200 || { bad make_subset; summary; exit 1; }
# resnet20 (BN) CigL: a mask update, snapshot averaging; 2 epochs of 19 steps (600 samples).
ARGS=(--data "$T/sub.h5" --model resnet20 --method cigl --sparsity 0.9 --batch-size 32
      --epochs 2 --val-size 100 --update-interval 10 --update-end 0.5 --average-start 0.5
      --average-every 5 --check-every 4)
export CIGL=$CIGL_ABS CIGL_HOME=$HOME_DIR OMPI_MCA_rmaps_base_oversubscribe=1

same_model() { # run dir: final.h5 identical to the reference in weights, masks and BN
    local g
    [ -f "$1/final.h5" ] || return 1
    for g in /weights /masks /bn; do
        h5diff "$T/ref/final.h5" "$1/final.h5" "$g" "$g" >/dev/null 2>&1 || return 1
    done
}
launch_field() { # run dir, line, field: a field of that launch in launches.jsonl
    sed -n "${2}p" "$1/launches.jsonl" 2>/dev/null | sed -n "s/.*\"$3\": \"*\([^,\"}]*\).*/\1/p"
}
wait_steps() { # run dir, n: until the run has written n epoch lines or a checkpoint
    while [ "$(left)" -gt 0 ]; do
        [ -s "$1/metrics.jsonl" ] && return 0
        [ -f "$1/final.json" ] && return 1
        sleep 0.2
    done
    return 1
}
submit() { # sbatch options... -- run dir: the job id
    local opts=() out
    while [ "$1" != -- ]; do opts+=("$1"); shift; done
    out=$2
    in1 sbatch --parsable "${opts[@]}" -o "$T/$(basename "$out")-%j.out" \
        "$HOME_DIR/jobs/cigl.sbatch" "${ARGS[@]}" --out "$out" 2>>"$T/sbatch.err"
}

# reference: one node, 2 ranks, shared memory (mpirun without SLURM)
CIGL_RANKS=2 timeout "$(left)" jobs/cigl.sbatch "${ARGS[@]}" --out "$T/ref" >"$T/ref.log" 2>&1
[ -f "$T/ref/final.h5" ] || { bad reference_run; tail -n 5 "$T/ref.log"; summary; exit 1; }
echo "  reference (1 node x 2 ranks): $(( $(date +%s) - t0 )) s"
export CIGL_NET_IF=$NN_IF CIGL_OOB_IF=$NN_MGMT   # data link and management link, not the decoy

# 1. two nodes, one rank each
jid=$(submit -N 2 -n 2 -c 1 -- "$T/two")
slurm_follow "$jid"
check two_node_identical_to_one_node "same_model '$T/two' &&
    grep -q '\"ranks\": 2' '$T/two/final.json' && grep -q srun '$T/two/launches.jsonl'"
[ -f "$T/two/final.json" ] || tail -n 15 "$T"/two-*.out
echo "  2 nodes: $(( $(date +%s) - t0 )) s"

# 2. USR2 to the batch shell of a 2-node job: checkpoint, marker, requeue, exact resume
jid=$(CIGL_TEST_PAUSE_AT_STEP=20 submit -N 2 -n 2 -c 1 -- "$T/usr2")
wait_steps "$T/usr2" && sleep 1 && in1 scancel --batch --signal=USR2 "$jid"
slurm_follow "$jid"
check usr2_requeue_checkpointed "[ \"\$(launch_field '$T/usr2' 1 exit)\" = 75 ] &&
    grep -q 'requeueing job $jid' '$T'/usr2-$jid.out"
check usr2_requeue_resumed_identical "[ \"\$(launch_field '$T/usr2' 2 restart)\" = 1 ] &&
    same_model '$T/usr2'"
echo "  USR2 requeue: $(( $(date +%s) - t0 )) s"

# 3. a 1-node job; its node drained; USR2: the job restarts on the other node
jid=$(CIGL_TEST_PAUSE_AT_STEP=20 submit -N 1 -n 2 -c 1 -- "$T/drain")
wait_steps "$T/drain" && sleep 1
first=$(in1 squeue -h -j "$jid" -o %N)
in1 scontrol update NodeName="$first" State=DRAIN Reason=cigl-test
in1 scancel --batch --signal=USR2 "$jid"
slurm_follow "$jid"
in1 scontrol update NodeName="$first" State=RESUME
check drained_node_job_resumes_on_other_node "[ -n '$first' ] &&
    [ \"\$(launch_field '$T/drain' 1 host)\" = '$first' ] &&
    [ -n \"\$(launch_field '$T/drain' 2 host)\" ] &&
    [ \"\$(launch_field '$T/drain' 2 host)\" != '$first' ] && [ -f '$T/drain/final.json' ]"
check drained_resume_identical "same_model '$T/drain'"
echo "  drain: $(( $(date +%s) - t0 )) s"

# 4. a lost node: every process of cgs-n2 killed once a periodic checkpoint exists (one at
#    the end of each epoch of 19 steps, and one every 0.3 s). The launch that starts from
#    step 0 holds at step 30 of 38, so however fast the kernels, a checkpoint exists and the
#    kill lands mid-run; the relaunch resumes from the newest checkpoint and runs through
#    (the pause holds only launches that start from step 0).
ARGS+=(--checkpoint-every 1 --checkpoint-minutes 0.005)
jid=$(CIGL_TEST_PAUSE_AT_STEP=30 submit -N 2 -n 2 -c 1 -- "$T/lost")
for i in $(seq 600); do
    ls "$T/lost/checkpoints/"step-*.h5 >/dev/null 2>&1 && break
    [ "$(left)" -gt 0 ] || break; sleep 0.1
done
lost_ok=0; st=""
if ls "$T/lost/checkpoints/"step-*.h5 >/dev/null 2>&1; then
    k0=$(date +%s%N)
    kill_node 2
    ck=$(ls "$T/lost/checkpoints/" | grep '^step-.*\.h5$' | sort -V | tail -n 1)
    while [ "$(left)" -gt 0 ]; do   # detected: the job is back in the queue
        st=$(in1 scontrol show job "$jid" 2>/dev/null)
        echo "$st" | grep -q 'Restarts=[1-9]' && break
        echo "$st" | grep -q 'JobState=\(FAILED\|COMPLETED\|CANCELLED\)' && break
        sleep 0.2
    done
    k1=$(date +%s%N)
    echo "  lost node: $(echo "$st" | grep -o 'JobState=[A-Z_]* Reason=[^ ]*') after" \
        "$(( (k1 - k0) / 1000000 )) ms; newest checkpoint then $ck;" \
        "cgs-n2: $(in1 sinfo -h -N -n cgs-n2 -o '%t %E')"
    # slurmd comes back without a reboot: the killed step's PMIx socket stays in the spool and
    # its /tmp/spmix_appdir_* in the node's /tmp (cigl.sbatch starts the next step with a new id)
    ls "$T/spool-cgs-n2" | grep pmix | sed 's/^/  left by the killed step: /'
    start_slurmd 2
    slurm_follow "$jid"
    lost_ok=1
fi
check lost_node_detected_requeued "[ $lost_ok = 1 ] &&
    echo \"\$st\" | grep -q 'Restarts=[1-9]'"
grep -h "resuming from" "$T"/lost-*.out 2>/dev/null | sed 's/^/  /'
check lost_node_resumed_from_periodic_checkpoint "[ -n '${ck:-}' ] &&
    grep -q \"resuming from '.*/checkpoints/step-\" '$T'/lost-$jid.out"
check lost_node_resumed_identical "same_model '$T/lost'"
echo "  $(( $(date +%s) - t0 )) s"
summary
