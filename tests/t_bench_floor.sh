#!/bin/sh
# The two measurements behind tests/bench/README.md's "The floor of the 95% step":
# sparse_floor.sh (the sparse step with kernels that do no arithmetic) and bench_kernels (the
# forward kernel alone against the GEMM peak). The floor patch must keep applying to the
# kernels as they change, or the experiment cannot be rerun; bench_kernels must run and
# report every case. Timings are not checked.
. tests/lib.sh
if git rev-parse --show-toplevel >/dev/null 2>&1; then
    check "patch_applies_to_the_kernels" "git apply --check tests/bench/sparse_floor.patch"
    check "patch_touches_the_three_kernels" \
        "[ \$(grep -c '^+ *if (getenv(\"CIGL_FLOOR\"))' tests/bench/sparse_floor.patch) -eq 3 ]"
    check "script_parses" "sh -n tests/bench/sparse_floor.sh"
else
    skip bench_floor_patch "not a git checkout: sparse_floor.sh builds from a git worktree"
fi

bin=$BUILD/bench/bench_kernels
if [ ! -x "$bin" ]; then # make test builds it: missing means it did not compile
    bad "bench_kernels_built ($bin missing: make $bin)"
    summary
    exit 0
fi
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
"$bin" --reps 1 --min-time 0.001 >"$T/out" 2>&1
rc=$?
check "bench_kernels_exits_0" "[ $rc -eq 0 ] || { cat '$T/out'; false; }"
# 3 shapes x 4 densities, each with GFLOP/s > 0, plus the peak and the probe
check "reports_every_case" \
    "[ \$(grep -c '^BENCH {\"kind\":\"kernel\",.*\"gflops\":[0-9]*[1-9]' '$T/out') -eq 12 ]"
check "reports_peak_and_probe" \
    "grep -q '\"kind\":\"kernel_peak\"' '$T/out' && grep -q '\"kind\":\"kernel_probe\"' '$T/out'"
"$bin" --reps 0 >"$T/bad" 2>&1
rc=$?
check "bad_reps_one_line_exit_2" "[ $rc -eq 2 ] && [ \$(wc -l <'$T/bad') -eq 1 ]"
summary
