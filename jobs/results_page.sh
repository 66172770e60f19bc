#!/bin/bash
# Rebuilds jobs/results/README.md from the collected runs (jobs/results/runs/PART/*), without
# retraining: `cigl report` per part (tables, ECE change vs RigL with bootstrap intervals,
# sparsity plot) plus jobs/results_page.py (headline, progress, machines, versions).
set -u
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
results=$repo/jobs/results
CIGL=${CIGL:-$repo/build/cigl}
for part in reference breadth/mlp breadth/lenet5 wrn demo long/mlp long/lenet5; do
    dirs=$(find "$results/runs/$part" -mindepth 1 -maxdepth 1 -type d 2>/dev/null | sort)
    [ -n "$dirs" ] || continue
    mkdir -p "$results/report/$part"
    "$CIGL" report $dirs --out "$results/report/$part" >/dev/null ||
        { echo "results_page.sh: cigl report failed for $part" >&2; exit 1; }
done
/usr/bin/python3 "$here/results_page.py" "$results"
