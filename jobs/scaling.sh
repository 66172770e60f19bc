#!/bin/bash
# The same run at 1, 2, 4, ... nodes: writes a plan with one shaped line per node count
# (`@nodes=N tasks=N*R threads=C`, jobs/shape.sh) and submits it with jobs/submit.sh.
#   strong: the same global --batch-size at every node count (ROOT/strong-nN)
#   weak:   --batch-size times N, the same per-rank batch (ROOT/weak-nN)
# `cigl report ROOT/*` then lists each run's ranks, images/s and scaling efficiency.
#
#   jobs/scaling.sh [--nodes "1 2 4 8"] [--tasks-per-node R] [--threads C] \
#       [--mode strong|weak|both] [--root runs/scaling] [--sbatch "OPTIONS"] \
#       [--plan FILE] [--dry-run] -- CIGL_TRAIN_ARGS (without --out)
#
# Keep the runs short (--max-steps) and equal in steps: images/s covers the training steps
# only. --plan FILE only writes the plan (for jobs/local.sh or a later submit).
set -eu
nodes="1 2 4"; tpn=1; threads=""; mode=strong; root=runs/scaling; sb=""; plan=""; dry=""
while [ $# -gt 0 ]; do
    case "$1" in
        --nodes) nodes=$2; shift 2 ;;
        --tasks-per-node) tpn=$2; shift 2 ;;
        --threads) threads=$2; shift 2 ;;
        --mode) mode=$2; shift 2 ;;
        --root) root=$2; shift 2 ;;
        --sbatch) sb=$2; shift 2 ;;
        --plan) plan=$2; shift 2 ;;
        --dry-run) dry=--dry-run; shift ;;
        --) shift; break ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) echo "scaling.sh: unknown option '$1'; see jobs/scaling.sh --help" >&2; exit 2 ;;
    esac
done
case "$mode" in strong) modes=strong ;; weak) modes=weak ;; both) modes="strong weak" ;;
    *) echo "scaling.sh: --mode is strong, weak or both" >&2; exit 2 ;; esac
# the base --batch-size (cigl's default 128 when absent), taken out of the arguments
batch=128; args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --batch-size) batch=$2; shift 2 ;;
        --batch-size=*) batch=${1#--batch-size=}; shift ;;
        --out|--out=*) echo "scaling.sh: give --root, not --out" >&2; exit 2 ;;
        *) args+=("$1"); shift ;;
    esac
done
[ ${#args[@]} -gt 0 ] || { echo "scaling.sh: no cigl train arguments after --" >&2; exit 2; }
common=$(printf ' %q' "${args[@]}")
tmp=${plan:-$(mktemp)}
{
    echo "# jobs/scaling.sh --nodes \"$nodes\" --tasks-per-node $tpn --mode $mode"
    for m in $modes; do
        for n in $nodes; do
            b=$batch; [ "$m" = weak ] && b=$((batch * n))
            shape="@nodes=$n tasks=$((n * tpn))${threads:+ threads=$threads}"
            echo "$shape$common --batch-size $b --out $(printf %q "$root/$m-n$n")"
        done
    done
} >"$tmp"
if [ -n "$plan" ]; then echo "scaling.sh: wrote $plan"; exit 0; fi
read -r -a sbatch_opts <<<"$sb"
here=$(cd "$(dirname "$0")" && pwd)
rc=0; "$here/submit.sh" $dry "$tmp" -- "${sbatch_opts[@]}" || rc=$?
rm -f "$tmp"
exit $rc
