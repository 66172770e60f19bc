#!/bin/sh
# make check: the four checking stages after make test (docs/testing.md). Each stage
# prints its own lines and "N passed, N failed"; this prints their aggregate last.
# Measured on the 2-core development machine (shared with other jobs, load ~8 at the time):
#   sanitize: ASan + UBSan build ~3 min; unit tests ~3.5 min; t_train_e2e 134 s and t_mpi 87 s
#             at low load (5.5 and 7.5 min at load 8), t_checkpoint ~7 min at load 8
#   valgrind: convert 3 s, 10-step CigL training 19 s, eval 5 s
#   analyze:  clang-tidy 291 s (2 processes), cppcheck 10 s
#   fuzz:     clang libFuzzer build ~2 min, then 7 targets x FUZZ_SECONDS (30 s in CI)
BUILD=${BUILD:-build}
export BUILD ASAN_BUILD FUZZ_BUILD FUZZ_SECONDS
. tests/summary.sh
passed=0; failed=0; skipped=0
stage() { # name, script, build directory for its tests
    name=$1; script=$2; dir=$3
    start=$(date +%s)
    echo "== check: $name"
    out=$(BUILD=$dir "$script" 2>&1)
    rc=$?
    echo "$out" | sed '$d'
    count_summary "$(echo "$out" | tail -n 1)"
    p=$sum_p; f=$sum_f; s=$sum_s
    [ -n "$p" ] || { p=0; f=1; echo "$(echo "$out" | tail -n 1)"; }
    [ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
    passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
    echo "== $name: $p passed, $f failed, $s skipped ($(( $(date +%s) - start )) s)"
}
stage sanitize tests/check/sanitize.sh "${ASAN_BUILD:-build-asan}"
stage valgrind tests/check/valgrind.sh "$BUILD"
stage analyze tests/check/analyze.sh "$BUILD"
stage fuzz tests/check/fuzz.sh "$BUILD"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
