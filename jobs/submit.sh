#!/bin/bash
# Submit every line of a plan as its own SLURM job through jobs/cigl.sbatch, each with the
# shape its line asks for (`@nodes=N tasks=T threads=C`, jobs/shape.sh; lines without one get
# cigl.sbatch's defaults or the sbatch options given here). Finished runs (OUT/final.json) are
# skipped, so resubmitting the same plan submits only what is unfinished.
#
#   jobs/submit.sh [--dry-run] PLAN_FILE [-- SBATCH_OPTIONS...]
#   jobs/submit.sh plan.txt -- -t 12:00:00 --exclusive
#
# --dry-run prints the sbatch commands instead of running them. Prints one line per job:
# the job id (or the command) and the run directory.
set -u
dry=0; plan=""
while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) dry=1; shift ;;
        --) shift; break ;;
        -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
        -*) echo "submit.sh: unknown option '$1'; see jobs/submit.sh --help" >&2; exit 2 ;;
        *) plan=$1; shift ;;
    esac
done
extra=("$@")
[ -n "$plan" ] && [ -f "$plan" ] || { echo "submit.sh: plan file '$plan' not found" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
. "$here/shape.sh"
out_of() { eval "set -- $1"; local o=""; while [ $# -gt 0 ]; do
    case "$1" in --out) o=${2:-}; shift ;; --out=*) o=${1#--out=} ;; esac; shift; done; echo "$o"; }
n=0; bad=0; skipped=0
while IFS= read -r l; do
    if ! plan_shape "$l"; then
        echo "submit.sh: $shape_error in: $l" >&2; bad=$((bad + 1)); continue
    fi
    out=$(out_of "$shape_rest")
    [ -n "$out" ] || { echo "submit.sh: no --out in: $l" >&2; bad=$((bad + 1)); continue; }
    if [ -f "$out/final.json" ]; then skipped=$((skipped + 1)); continue; fi
    opts=()
    [ -n "$shape_nodes" ] && opts+=(-N "$shape_nodes")
    [ -n "$shape_tasks" ] && opts+=(-n "$shape_tasks")
    [ -n "$shape_threads" ] && opts+=(-c "$shape_threads")
    eval "set -- $shape_rest"
    cmd=(sbatch --parsable --job-name="cigl-$(basename "$out")" "${opts[@]}" "${extra[@]}"
         "$here/cigl.sbatch" "$@")
    if [ "$dry" = 1 ]; then
        printf '%q ' "${cmd[@]}"; echo
    else
        if ! jid=$("${cmd[@]}"); then
            echo "submit.sh: sbatch failed for $out" >&2; bad=$((bad + 1)); continue
        fi
        echo "$jid $out"
    fi
    n=$((n + 1))
done < <(grep -v '^[[:space:]]*\(#\|$\)' "$plan")
echo "submit.sh: $n submitted, $skipped finished (skipped), $bad refused" >&2
[ "$bad" -eq 0 ]
