#!/bin/sh
# Launch under SLURM, when a SLURM cluster answers (sinfo): `srun --mpi=pmix -n 2` gives one
# 2-rank run; plain `srun -n 2` (no MPI plugin) is refused with a clear error, exit 2. Without
# SLURM nothing runs and nothing is counted (the cluster test proper is the SLURM issue's).
. tests/lib.sh
if ! command -v srun >/dev/null || ! timeout 10 sinfo -h >/dev/null 2>&1; then
    echo "skipped: no SLURM cluster answers here (see ../shared/SLURM.md)"
    summary; exit 0
fi
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
need_data
"$PY" tests/make_subset.py "$DATA" "$T/sub.h5" 6000 1000 || bad make_subset
timeout 300 srun -n 2 --mpi=pmix "$CIGL" train --data "$T/sub.h5" --model mlp --method rigl \
    --sparsity 0.9 --batch-size 64 --epochs 1 --val-size 500 --threads 1 --check-every 5 \
    --out "$T/pmix" >"$T/pmix.log" 2>&1
check "srun_pmix_two_ranks" "grep -q '\"ranks\": 2' '$T/pmix/final.json'"
timeout 120 srun -n 2 "$CIGL" train --data "$T/sub.h5" --model mlp --out "$T/plain" >"$T/plain.log" 2>&1
rc=$?
check "srun_without_mpi_plugin_refused" "[ $rc -ne 0 ] && grep -q 'srun started independent processes' '$T/plain.log' && [ ! -e '$T/plain' ]"
summary
