#!/bin/bash
# Write a sweep plan: one line per run, the `cigl train` arguments of that run (shell words),
# for every method x sparsity x seed. jobs/sweep.sbatch and jobs/local.sh run such a plan;
# a plan can also be written by hand (lines starting with # and blank lines are ignored).
#
#   jobs/plan.sh --root runs/grid --methods "dense rigl cigl" --sparsities "0.9 0.95" \
#       --seeds "0 1 2" --with cigl "--average-start 0.8 --average-every 100" \
#       -- --data data/fashion-mnist.h5 --model resnet20 --epochs 8 >plan.txt
#
# A method token is METHOD or LABEL=METHOD (e.g. rigl-ls=rigl with --with rigl-ls
# "--label-smoothing 0.1"); --with LABEL ARGS adds ARGS to that label's runs. Dense runs get no
# --sparsity and one run per seed. Run directories: ROOT/LABEL-sSPARSITY-seedN (ROOT/dense-seedN).
set -eu
root=runs/sweep; methods=""; sparsities=""; seeds=0
declare -A with=()
while [ $# -gt 0 ]; do
    case "$1" in
        --root) root=$2; shift 2 ;;
        --methods) methods=$2; shift 2 ;;
        --sparsities) sparsities=$2; shift 2 ;;
        --seeds) seeds=$2; shift 2 ;;
        --with) with[$2]="${with[$2]:-} $3"; shift 3 ;;
        --) shift; break ;;
        *) echo "plan.sh: unknown option '$1'; see the header of jobs/plan.sh" >&2; exit 2 ;;
    esac
done
[ -n "$methods" ] || { echo "plan.sh: --methods is required (e.g. --methods \"dense rigl cigl\")" >&2; exit 2; }
common=$(printf ' %q' "$@")
echo "# plan.sh --root $root --methods \"$methods\" --sparsities \"$sparsities\" --seeds \"$seeds\" --$common"
for tok in $methods; do
    label=${tok%%=*}; method=${tok#*=}
    for seed in $seeds; do
        if [ "$method" = dense ]; then
            echo "--method dense --seed $seed${with[$label]:-}$common --out $root/$label-seed$seed"
            continue
        fi
        [ -n "$sparsities" ] || { echo "plan.sh: --sparsities is required for $method" >&2; exit 2; }
        for s in $sparsities; do
            echo "--method $method --sparsity $s --seed $seed${with[$label]:-}$common --out $root/$label-s$s-seed$seed"
        done
    done
done
