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
# (or array task) is started 2-3 s after it is seen waiting, not after SLURM's 2-minute
# BeginTime delay (cigl.sbatch gives its restarted step a new id, so the old step's PMIx
# socket is no obstacle). Not at once: slurmd revokes the job's old credential, in whole
# seconds, when the requeue ends the first launch, and refuses a new launch whose credential
# dates from that same second ("Job credential revoked", seen on a CI machine). Each update
# resets the record's reason and delay, so it is sent once, and again only if the record
# still waits 15 s later (a relaunch that failed and was requeued again; sooner would keep
# moving a start the scheduler has not yet reached). Each state change of the first record
# is appended to $SLURM_TRACE.
slurm_follow() {
    local lines line last="" rec now next=0
    while [ "$(left)" -gt 0 ]; do
        lines=$($SLURM_IN squeue -h -j "$1" -o '%i %t %r' 2>/dev/null)
        line=$(echo "$lines" | head -n 1 | cut -s -d' ' -f2-)
        [ "$line" != "$last" ] && echo "$(date +%T) job $1: ${line:-(not listed)}" >>"$SLURM_TRACE"
        last=$line
        rec=$(echo "$lines" | awk '$2 == "PD" && $3 == "BeginTime" { print $1; exit }')
        now=$(date +%s)
        if [ -n "$rec" ] && [ "$now" -ge "$next" ]; then
            $SLURM_IN scontrol update JobId="$rec" \
                StartTime="$(date -d "@$((now + 3))" +%Y-%m-%dT%H:%M:%S)" 2>/dev/null
            next=$((now + 15))
        fi
        if slurm_job_final "$1"; then
            sleep 1
            slurm_job_final "$1" && return 0
        fi
        sleep 0.3
    done
    return 1
}
