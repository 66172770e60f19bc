#!/bin/bash
# Rebuilds jobs/results/README.md from the collected runs (jobs/results/runs/PART/*), without
# retraining: `cigl report` per part (tables, ECE change vs RigL with bootstrap intervals,
# sparsity plot) plus jobs/results_page.py (headline, progress, machines, versions).
set -u
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
results=$repo/jobs/results
CIGL=${CIGL:-$repo/build/cigl}
case $CIGL in /*) ;; */*) CIGL=$PWD/$CIGL ;; esac # it runs from jobs/results/runs below
# Run directories are given relative to jobs/results/runs, so the tables name runs the same
# on every checkout (long/mlp/rigl-s0.9-seed0), not by this machine's path.
cd "$results/runs" 2>/dev/null || { echo "results_page.sh: no $results/runs: collect runs first" >&2; exit 1; }
for part in reference breadth/mlp breadth/lenet5 wrn demo long/mlp long/lenet5; do
    dirs=$(find "$part" -mindepth 1 -maxdepth 1 -type d 2>/dev/null | sort)
    [ -n "$dirs" ] || continue
    mkdir -p "$results/report/$part"
    "$CIGL" report $dirs --out "$results/report/$part" >/dev/null ||
        { echo "results_page.sh: cigl report failed for $part" >&2; exit 1; }
done
cd "$repo" || exit 1
/usr/bin/python3 "$here/results_page.py" "$results"
