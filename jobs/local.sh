#!/bin/bash
# Run a plan (jobs/plan.sh) or one run on a machine without SLURM: P runs at a time, each on
# RANKS MPI ranks (mpirun) x THREADS threads, through jobs/cigl.sbatch (the same script as the
# SLURM jobs). Finished runs (OUT/final.json) are skipped, interrupted ones resume from their
# newest checkpoint. Ctrl-C (or SIGTERM) asks every running run to checkpoint and stop; run the
# same command again to continue. A second Ctrl-C is passed on too (cigl finishes the
# checkpoint it is writing).
#
#   jobs/local.sh [-P SLOTS] [-n RANKS] [-c THREADS] [--logs DIR] PLAN_FILE
#   jobs/local.sh [-n RANKS] [-c THREADS] -- CIGL_TRAIN_ARGS...         # one run
#
# A plan line's own shape (`@tasks=T threads=C`, jobs/shape.sh) replaces -n and -c for it; a
# line that asks for more than one node is refused (jobs/submit.sh submits it to SLURM).
# Choose P x RANKS x THREADS <= the machine's cores. Per-run output: DIR/<run>.log (default
# DIR: logs/); each launch appends a line (host, cores, CPU, ranks, threads, exit status) to
# OUT/launches.jsonl, so every run records the machines that ran it.
set -u
slots=1; ranks=1; threads=1; logs=logs; plan=""; single=()
while [ $# -gt 0 ]; do
    case "$1" in
        -P) slots=$2; shift 2 ;;
        -n) ranks=$2; shift 2 ;;
        -c) threads=$2; shift 2 ;;
        --logs) logs=$2; shift 2 ;;
        --) shift; single=("$@"); break ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        -*) echo "local.sh: unknown option '$1'; see jobs/local.sh --help" >&2; exit 2 ;;
        *) plan=$1; shift ;;
    esac
done
for v in "$slots" "$ranks" "$threads"; do
    [ "$v" -ge 1 ] 2>/dev/null || { echo "local.sh: -P, -n and -c take positive integers" >&2; exit 2; }
done
here=$(cd "$(dirname "$0")" && pwd)
. "$here/shape.sh"
lines=()
if [ ${#single[@]} -gt 0 ]; then
    lines=("$(printf '%q ' "${single[@]}")")
elif [ -n "$plan" ]; then
    [ -f "$plan" ] || { echo "local.sh: plan file '$plan' not found" >&2; exit 2; }
    while IFS= read -r l; do lines+=("$l"); done < <(grep -v '^[[:space:]]*\(#\|$\)' "$plan")
else
    echo "local.sh: give a plan file or -- CIGL_TRAIN_ARGS (see jobs/local.sh --help)" >&2; exit 2
fi
[ $(( slots * ranks * threads )) -gt "$(nproc)" ] &&
    echo "local.sh: note: $slots x $ranks x $threads exceeds the $(nproc) cores here; runs will share cores"
mkdir -p "$logs"

out_of() { eval "set -- $1"; local o=""; while [ $# -gt 0 ]; do
    case "$1" in --out) o=${2:-}; shift ;; --out=*) o=${1#--out=} ;; esac; shift; done; echo "$o"; }

declare -A run_out=() run_log=()
stopping=0; done_n=0; skipped=0; stopped=0; failed=0; failed_list=""
stop() {
    [ "$stopping" = 0 ] && echo "local.sh: stopping: asking ${#run_out[@]} running run(s) to checkpoint"
    stopping=1
    for p in "${!run_out[@]}"; do kill -USR2 "$p" 2>/dev/null; done
}
trap stop INT TERM

reap() { # collect finished runs
    for p in "${!run_out[@]}"; do
        kill -0 "$p" 2>/dev/null && continue
        wait "$p"; rc=$?
        case $rc in
            0) done_n=$((done_n + 1)); echo "local.sh: finished ${run_out[$p]}" ;;
            75) stopped=$((stopped + 1)); echo "local.sh: checkpointed ${run_out[$p]}" ;;
            *) failed=$((failed + 1)); failed_list="$failed_list ${run_log[$p]}"
               echo "local.sh: FAILED (exit $rc) ${run_out[$p]}: see ${run_log[$p]}" ;;
        esac
        unset "run_out[$p]" "run_log[$p]"
    done
}

# The top level runs from main, which bash has read whole before it starts: editing this file
# while a plan runs (for hours) cannot change what the running copy does next.
main() {
    for l in "${lines[@]}"; do
        [ "$stopping" = 1 ] && break
        if ! plan_shape "$l"; then
            echo "local.sh: $shape_error in: $l" >&2; failed=$((failed + 1)); continue
        fi
        if [ "${shape_nodes:-1}" -gt 1 ]; then
            echo "local.sh: @nodes=$shape_nodes needs a cluster (jobs/submit.sh): $l" >&2
            failed=$((failed + 1)); continue
        fi
        l=$shape_rest; r=${shape_tasks:-$ranks}; c=${shape_threads:-$threads}
        out=$(out_of "$l")
        [ -n "$out" ] || { echo "local.sh: no --out in: $l" >&2; failed=$((failed + 1)); continue; }
        if [ -f "$out/final.json" ]; then skipped=$((skipped + 1)); continue; fi
        while [ ${#run_out[@]} -ge "$slots" ] && [ "$stopping" = 0 ]; do sleep 0.5; reap; done
        [ "$stopping" = 1 ] && break
        log=$logs/$(echo "$out" | sed 's|^\./||; s|/*$||; s|/|_|g').log
        eval "set -- $l"
        # own process group: a terminal's Ctrl-C reaches only this script, which turns it into
        # SIGUSR2 (mpirun would kill its ranks on SIGINT)
        CIGL_RANKS=$r CIGL_THREADS=$c setsid bash "$here/cigl.sbatch" "$@" >>"$log" 2>&1 &
        run_out[$!]=$out; run_log[$!]=$log
        echo "local.sh: started $out (pid $!, log $log)"
    done
    while [ ${#run_out[@]} -gt 0 ]; do sleep 0.5; reap; done

    echo "local.sh: $done_n finished, $skipped already finished (skipped), $stopped checkpointed, $failed failed"
    [ "$failed" -gt 0 ] && { echo "local.sh: failed runs' logs:$failed_list"; exit 1; }
    [ "$stopped" -gt 0 ] || [ "$stopping" = 1 ] && { echo "local.sh: run the same command again to continue"; exit 75; }
    exit 0
}
main
