#!/bin/sh
# tests/bench/sparse_floor.sh measures the sparse step with kernels that do no arithmetic
# (tests/bench/README.md, "The floor of the 95% step"). Its patch must keep applying to the
# kernels as they change, or the experiment cannot be rerun; the timings are not checked.
. tests/lib.sh
if ! git rev-parse --show-toplevel >/dev/null 2>&1; then
    skip bench_floor "not a git checkout: sparse_floor.sh builds from a git worktree"
    summary
    exit 0
fi
check "patch_applies_to_the_kernels" "git apply --check tests/bench/sparse_floor.patch"
check "patch_touches_the_three_kernels" \
    "[ \$(grep -c '^+ *if (getenv(\"CIGL_FLOOR\"))' tests/bench/sparse_floor.patch) -eq 3 ]"
check "script_parses" "sh -n tests/bench/sparse_floor.sh"
summary
