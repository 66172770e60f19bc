# Waiting on jobs of the tests' private SLURM clusters (t_slurm_requeue.sh, t_slurm_multinode.sh).
# Source after tests/lib.sh; the caller defines left() (seconds left of its budget) and may set
# SLURM_IN to a command prefix that reaches slurmctld (a network namespace's exec function).
#
# Why not "until squeue prints nothing": a job being requeued passes through states that
# squeue's default filter hides (REQUEUED while its step completes), and a busy slurmctld can
# fail one query; either looked like "the job has left" and ended the wait before the restart
# (seen on a CI machine). A job is followed by its JobState from scontrol instead, and counted
# as ended only when every record (an array's tasks too) is final on two polls a second apart.
SLURM_IN=${SLURM_IN:-}
SLURM_TRACE=${SLURM_TRACE:-/dev/null}

# slurm_job_states JOB: the JobState of each record of JOB, one a line (none if unknown).
slurm_job_states() {
    $SLURM_IN scontrol -o show job "$1" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p'
}

# slurm_job_final JOB: true when JOB is known and every record is in a final state.
slurm_job_final() {
    local states
    states=$(slurm_job_states "$1")
    [ -n "$states" ] || return 1
    ! echo "$states" | grep -qvx 'COMPLETED\|FAILED\|CANCELLED\|TIMEOUT\|NODE_FAIL\|OUT_OF_MEMORY\|BOOT_FAIL\|DEADLINE\|PREEMPTED'
}

# slurm_follow JOB: until JOB has ended (true) or the budget is spent (false). A requeued job
# is started at once, not after SLURM's 2-minute BeginTime delay (cigl.sbatch gives its
# restarted step a new id, so the old step's PMIx socket is no obstacle). Each state change is
# appended to $SLURM_TRACE.
slurm_follow() {
    local line last=""
    while [ "$(left)" -gt 0 ]; do
        line=$($SLURM_IN squeue -h -j "$1" -o '%t %r' 2>/dev/null | head -n 1)
        [ "$line" != "$last" ] && echo "$(date +%T) job $1: ${line:-(not listed)}" >>"$SLURM_TRACE"
        last=$line
        case "$line" in "PD BeginTime"*)
            $SLURM_IN scontrol update JobId="$1" StartTime=now 2>/dev/null ;;
        esac
        if slurm_job_final "$1"; then
            sleep 1
            slurm_job_final "$1" && return 0
        fi
        sleep 0.3
    done
    return 1
}
