#!/bin/sh
# make check, stage 1: the tests against a build with AddressSanitizer + UndefinedBehaviorSanitizer
# (BUILD=build-asan, made by `make check`): every unit test binary and fuzz replay, and the
# shell tests in SANITIZE_TESTS (default below: training, MPI, checkpoints, data, methods,
# metrics and reports; `make check SANITIZE_TESTS=all` runs every tests/t_*.sh, ~3x the time).
# Left out by default: the job-script and SLURM tests (they exercise shell scripts and the
# scheduler, through the same binary), t_faults.sh (kills ranks on purpose), and
# and t_data_memory.sh (measures peak memory, which ASan's shadow memory and quarantine change).
# (t_sparse_e2e.sh was left out while its after-one-epoch comparison failed here: a ReLU that
# flips on rounding, explained in that test, which now compares after 100 steps.)
# Every sanitizer report is written to $BUILD/sanitizer-logs/ (log_path), whatever the test
# itself checks, and each report file counts as one failure: a test that only looks at its
# output files cannot hide a report. Prints the aggregate "N passed, N failed" last.
BUILD=${BUILD:-build-asan}
export BUILD
# idle OpenMP threads sleep (as in tests/run.sh): spinning ones slow a shared machine to a crawl
OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
export OMP_WAIT_POLICY
here=$(cd "$(dirname "$0")" && pwd)
logs="$PWD/$BUILD/sanitizer-logs"
rm -rf "$logs" && mkdir -p "$logs"
# halt_on_error: the first error ends the process. fast_unwind_on_malloc=0: full allocation
# stacks through Open MPI's frame-pointer-less code, so lsan.supp can match its frames.
# (No strict_string_checks: it demands a NUL within strndup's bound, which C does not.)
# max_allocation_size_mb + allocator_may_return_null: an allocation over 4 GB fails (NULL, which
# cigl reports as out of memory) as in the fuzzers, so a size taken from a header is caught.
export ASAN_OPTIONS="halt_on_error=1:abort_on_error=0:detect_leaks=1:fast_unwind_on_malloc=0:detect_stack_use_after_return=1:check_initialization_order=1:max_allocation_size_mb=4096:allocator_may_return_null=1:log_path=$logs/asan"
export LSAN_OPTIONS="suppressions=$here/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$logs/ubsan"
# Open MPI unloads its components before exit; keeping them loaded lets leak stacks name them.
export OMPI_MCA_mca_base_component_disable_dlclose=1
SANITIZE_TESTS=${SANITIZE_TESTS:-"t_train_e2e t_mpi t_checkpoint t_data t_methods_e2e t_report
    t_metrics_reference t_sparsity_reference t_philox_reference t_fuzz_replay t_sparse_e2e"}
if [ "$SANITIZE_TESTS" = all ]; then shells=$(ls tests/t_*.sh)
else shells=$(for t in $SANITIZE_TESTS; do echo "tests/$t.sh"; done); fi
. tests/summary.sh
p=0; f=0; s=0
mkdir -p "$BUILD/test-logs"
for src in tests/test_*.c; do # as run.sh: a unit test that did not build is a failure
    bin="$BUILD/tests/$(basename "$src" .c)"
    [ -x "$bin" ] || { printf '%-28s did not build\n' "$(basename "$bin")"; f=$((f + 1)); }
done
for t in "$BUILD"/tests/test_* $shells; do
    [ -x "$t" ] || continue
    log="$BUILD/test-logs/$(basename "$t").log"
    start=$(date +%s)
    "$t" >"$log" 2>&1
    rc=$?
    count_summary "$(tail -n 1 "$log")"
    tp=$sum_p; tf=$sum_f; ts=$sum_s
    [ -n "$tp" ] || { tp=0; tf=1; }
    [ "$rc" -ne 0 ] && [ "$tf" -eq 0 ] && tf=1
    p=$((p + tp)); f=$((f + tf)); s=$((s + ts))
    printf '%-28s %3d passed, %d failed, %d skipped  (%ds)\n' "$(basename "$t")" "$tp" "$tf" "$ts" \
        "$(( $(date +%s) - start ))"
    grep '^SKIP ' "$log" | sed 's/^/    /'
    [ "$tf" -eq 0 ] || sed 's/^/    | /' "$log" | tail -n 30
done
reports=0
for r in "$logs"/*; do
    [ -s "$r" ] || continue
    reports=$((reports + 1))
    echo "sanitizer report $(basename "$r"):"
    sed 's/^/    | /' "$r" | head -n 40
done
if [ "$reports" -eq 0 ]; then p=$((p + 1)); echo "ok   no sanitizer reports"
else f=$((f + reports)); echo "FAIL $reports sanitizer report(s)"; fi
echo "$p passed, $f failed, $s skipped"
[ "$f" -eq 0 ]
