#!/bin/sh
# Two "nodes" (network namespaces with their own hostname and /tmp, tests/netns_lib.sh) joined
# by a data link and a management link, Open MPI launched across them by mpirun's rsh agent,
# the ranks talking over TCP. Checks:
#  1. 2 ranks on two nodes give final.h5 bit-identical to 2 ranks on one node;
#  2. SIGUSR2 to mpirun: checkpoint, exit 75, the resumed run ends bit-identical;
#  3. SIGTERM to mpirun with a slow checkpoint write (CIGL_TEST_CHECKPOINT_STALL), ranks on one
#     node: with Open MPI's default odls_base_sigkill_timeout (1 s) no complete checkpoint
#     (control), with 20 s a complete one; resuming removes a leftover .tmp and ends
#     bit-identical. Ranks on two nodes: the remote rank never gets the SIGTERM;
#  4. SIGKILL to the remote rank ends the job in < 30 s naming the rank and node;
#  5. the data link cut: the watchdog (--comm-timeout 8) ends the job naming rank and peer in
#     < 40 s; with the watchdog off the job still hangs after that (control);
#  6. btl_tcp_if_include naming the decoy interface fails instead of training.
# Needs root and `ip netns`; otherwise every check is skipped with the reason.
. tests/lib.sh
. tests/netns_lib.sh
NAMES="ranks_on_two_hosts two_nodes_identical_to_one_node usr2_checkpoints_exit_75
usr2_resume_identical sigterm_default_sigkill_no_complete_checkpoint
sigterm_slow_checkpoint_complete resume_removes_tmp sigterm_resume_identical
sigterm_to_mpirun_misses_remote_rank remote_rank_killed_ends_job_under_30s
cut_link_watchdog_names_rank_and_peer cut_link_without_watchdog_hangs decoy_interface_fails"
why=$(netns_why)
command -v mpirun >/dev/null || why="mpirun missing (apt-get install openmpi-bin)"
if [ -n "$why" ]; then
    for n in $NAMES; do skip "$n" "$why"; done
    summary; exit $?
fi
# the shared run directory cannot be under /tmp: each node mounts its own tmpfs there
T=$(mktemp -d /var/tmp/cigl-multinode.XXXXXX)
cleanup() {
    netns_down
    [ -n "${CIGL_TEST_KEEP:-}" ] && echo "kept $T" || rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
t_start=$(date +%s)
if ! netns_up "$T"; then
    for n in $NAMES; do skip "$n" "$NN_WHY"; done
    summary; exit $?
fi
need_data
SUB=$T/sub.h5
"$PY" tests/make_subset.py "$DATA" "$SUB" 2000 400 || { bad make_subset; summary; exit 1; }
C=$(pwd)/$CIGL
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
# data over the veth, Open MPI's own channel over the management link (mpi/README.md)
NET="--mca btl_tcp_if_include $NN_IF --mca oob_tcp_if_include $NN_MGMT"
ACROSS="mpirun --mca plm_rsh_agent $NN_AGENT --host $(nn_name 1),$(nn_name 2) -np 2
    --bind-to none --mca btl tcp,self"
# a sparse mlp: weights and masks both travel; 31 steps per epoch
A="--data $SUB --model mlp --method rigl --sparsity 0.9 --update-interval 10 --batch-size 64
   --val-size 200 --threads 1 --check-every 5"
STEPS="--epochs 2 --max-steps 50"

same() { # run dirs: final.h5 identical in every weight and mask
    for g in /weights /masks; do
        h5diff "$1/final.h5" "$2/final.h5" $g $g >/dev/null 2>&1 || return 1
    done
}
# across ARGS...: a cigl run on both nodes, mpirun on node 1 (as a job's first node runs it)
across() { nn_exec 1 $ACROSS $NET "$@"; }
# the same in the background: `across_bg ... &` makes $! mpirun's pid
across_bg() { nn_spawn 1 $ACROSS $NET "$@"; }
cigl_pids() { # node: the pids of cigl ranks there (their comm is "exe" after the re-exec)
    for p in $(nn_pids "$1"); do
        case "$(tr '\0' '\n' <"/proc/$p/cmdline" 2>/dev/null | head -n 1)" in
            */cigl) echo "$p" ;;
        esac
    done
}
# after mpirun was killed: ranks and daemons it leaves behind would skew the next check
reap() {
    for n in 1 2; do
        for p in $(nn_pids $n); do
            [ "$p" = "$(cat "$NN_DIR/holder$n.pid")" ] || kill -KILL "$p" 2>/dev/null
        done
    done
    sleep 1
}
signal_mid_run() { # signal, pid, run dir: once the run has started (the ranks pause at step 20);
    # started=1 when it had (a control that passes because nothing ran would prove nothing)
    if wait_file "$3/config.json" 60; then started=1; else started=0; fi
    sleep 3
    kill "-$1" "$2"
}
wait_file() { # path, seconds: 0 once it exists
    i=0
    while [ $i -lt $(($2 * 5)) ]; do [ -e "$1" ] && return 0; sleep 0.2; i=$((i + 1)); done
    return 1
}
wait_gone() { # pid, seconds: 0 once it has ended
    i=0
    while [ $i -lt $(($2 * 5)) ]; do
        kill -0 "$1" 2>/dev/null || return 0; sleep 0.2; i=$((i + 1))
    done
    return 1
}
elapsed() { echo $(( $(date +%s) - $1 )); }

# 1. one node vs two
hosts=$(across hostname 2>&1 | sort | tr '\n' ' ')
check ranks_on_two_hosts "[ '$hosts' = '$(nn_name 1) $(nn_name 2) ' ]"
nn_exec 1 mpirun --host "$(nn_name 1):2" -np 2 --bind-to none \
    --mca btl_vader_single_copy_mechanism none "$C" train $A $STEPS --out "$T/one" \
    >"$T/one.log" 2>&1
across "$C" train $A $STEPS --out "$T/two" >"$T/two.log" 2>&1
check two_nodes_identical_to_one_node "[ -f '$T/one/final.h5' ] && same '$T/one' '$T/two'"

# 2. SIGUSR2 mid-run (the ranks pause after step 20 until a signal comes), then resume
CIGL_TEST_PAUSE_AT_STEP=20 across_bg -x CIGL_TEST_PAUSE_AT_STEP "$C" train $A $STEPS \
    --out "$T/usr2" >"$T/usr2.log" 2>&1 &
pid=$!
signal_mid_run USR2 $pid "$T/usr2"
wait_gone $pid 60 || { kill -KILL $pid; reap; }
wait $pid; rc=$?
check usr2_checkpoints_exit_75 "[ $rc = 75 ] && ls '$T/usr2/checkpoints/'step-*.h5 >/dev/null 2>&1"
across "$C" train $A $STEPS --resume auto --out "$T/usr2" >>"$T/usr2.log" 2>&1
check usr2_resume_identical "same '$T/one' '$T/usr2'"

# 3. SIGTERM to mpirun while a checkpoint write takes 6 s. On one node mpirun passes SIGTERM
#    on and SIGKILLs the ranks after odls_base_sigkill_timeout (default 1 s: no complete
#    checkpoint; 20 s: a complete one; mpirun waits out the whole timeout). Across nodes the
#    remote rank does not get it: no checkpoint, and that rank still runs.
term_run() { # sigkill timeout, run dir, hosts, seconds to wait: SIGTERM mid-run; sets rc
    CIGL_TEST_PAUSE_AT_STEP=20 CIGL_TEST_CHECKPOINT_STALL=6 nn_spawn 1 mpirun --host "$3" \
        -np 2 --bind-to none --mca plm_rsh_agent "$NN_AGENT" $NET \
        --mca btl_vader_single_copy_mechanism none --mca odls_base_sigkill_timeout "$1" \
        -x CIGL_TEST_PAUSE_AT_STEP -x CIGL_TEST_CHECKPOINT_STALL "$C" train $A $STEPS \
        --resume auto --out "$2" >>"$2.log" 2>&1 &
    pid=$!
    signal_mid_run TERM $pid "$2"
    remote_alive=0
    wait_gone $pid "$4" || {
        rc=hung
        if [ -n "$(cigl_pids 2)" ]; then remote_alive=1; echo "  (a rank still runs on $(nn_name 2))"; fi
        kill -KILL $pid; reap; return; }
    wait $pid; rc=$?
}
complete() { ls "$1/checkpoints/"step-*.h5 >/dev/null 2>&1; }
term_run 1 "$T/term" "$(nn_name 1):2" 60
check sigterm_default_sigkill_no_complete_checkpoint "[ $started = 1 ] && ! complete '$T/term'"
rm -rf "$T/term"
t0=$(date +%s)
term_run 20 "$T/term" "$(nn_name 1):2" 80
echo "  SIGTERM, one node, odls_base_sigkill_timeout 20: mpirun exit $rc after $(elapsed $t0) s"
# the ranks exit 75, but mpirun reports 1 after a SIGTERM (seen with Open MPI 4.1.4)
check sigterm_slow_checkpoint_complete "[ '$rc' != hung ] && complete '$T/term' &&
    grep -q 'stopped by SIGTERM.*exit status 75' '$T/term.log'"
# what a write cut short by SIGKILL leaves (the control above may die before it gets that far)
: >"$T/term/checkpoints/step-000000030.h5.tmp.4242"
across "$C" train $A $STEPS --resume auto --out "$T/term" >>"$T/term.log" 2>&1
check resume_removes_tmp "grep -q 'removed 1 incomplete checkpoint' '$T/term.log' &&
    ! ls '$T/term/checkpoints/'*.tmp.* >/dev/null 2>&1"
check sigterm_resume_identical "same '$T/one' '$T/term'"
term_run 20 "$T/term2" "$(nn_name 1),$(nn_name 2)" 30
echo "  SIGTERM, two nodes: mpirun after 30 s: $rc"
check sigterm_to_mpirun_misses_remote_rank "[ $started = 1 ] && ! complete '$T/term2' && [ '$rc' = hung ] &&
    [ $remote_alive = 1 ]"

# 4. the remote rank killed mid-run
LONG="--epochs 40"
across_bg "$C" train $A $LONG --out "$T/kill" >"$T/kill.log" 2>&1 &
pid=$!
wait_file "$T/kill/metrics.jsonl" 60
t0=$(date +%s); kill -KILL $(cigl_pids 2)
wait_gone $pid 60 || { kill -KILL $pid; reap; }
s=$(elapsed $t0)
echo "  remote rank killed: the job ended after $s s"
check remote_rank_killed_ends_job_under_30s \
    "[ $s -lt 30 ] && grep -q 'rank 1 .*on node $(nn_name 2)' '$T/kill.log'"

# 5. the data link cut; the management link (Open MPI's own channel) stays up
cut_run() { # comm timeout, run dir, bound: cut the link mid-run; sets s (seconds) or s=hung
    across_bg "$C" train $A $LONG --comm-timeout "$1" --out "$2" >"$2.log" 2>&1 &
    pid=$!
    if wait_file "$2/metrics.jsonl" 60; then started=1; else started=0; fi
    t0=$(date +%s); nn_link down
    if wait_gone $pid "$3"; then s=$(elapsed $t0); else
        s=hung; kill -KILL $pid; reap
    fi
    wait $pid 2>/dev/null
    nn_link up
}
cut_run 8 "$T/cut" 40
echo "  data link cut, --comm-timeout 8: the job ended after $s s"
grep 'no progress' "$T/cut.log" | sed 's/^/  | /'
check cut_link_watchdog_names_rank_and_peer \
    "[ '$s' != hung ] && grep -q 'rank [01] (host $NN_PREFIX-n[12]): no progress in a collective \
for .* peer rank [01] on host $NN_PREFIX-n[12]' '$T/cut.log'"
cut_run 0 "$T/hang" 25
echo "  data link cut, --comm-timeout 0: $s"
check cut_link_without_watchdog_hangs "[ $started = 1 ] && [ '$s' = hung ]"

# 6. the wrong interface for the data
t0=$(date +%s)
nn_exec 1 timeout 60 $ACROSS --mca btl_tcp_if_include "$NN_DECOY" --mca oob_tcp_if_include \
    "$NN_MGMT" "$C" train $A $STEPS --comm-timeout 15 --out "$T/decoy" >"$T/decoy.log" 2>&1
rc=$?
echo "  btl_tcp_if_include $NN_DECOY: exit $rc after $(elapsed $t0) s"
check decoy_interface_fails "[ $rc != 0 ] && [ $rc != 124 ] && [ ! -f '$T/decoy/final.json' ]"
grep -m 3 'cigl:\|unable\|reach' "$T/decoy.log" | sed 's/^/  | /'
echo "  $(elapsed $t_start) s"
summary
