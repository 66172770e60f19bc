#!/bin/sh
# make check, stage 1: every unit test and shell test (tests/run.sh) against a build with
# AddressSanitizer + UndefinedBehaviorSanitizer (BUILD=build-asan, made by `make check`).
# Every sanitizer report is written to $BUILD/sanitizer-logs/ (log_path), whatever the test
# itself checks, and each report file counts as one failure: a test that only looks at its
# output files cannot hide a report. Prints the aggregate "N passed, N failed" last.
BUILD=${BUILD:-build-asan}
export BUILD
here=$(cd "$(dirname "$0")" && pwd)
logs="$PWD/$BUILD/sanitizer-logs"
rm -rf "$logs" && mkdir -p "$logs"
# halt_on_error: the first error ends the process. fast_unwind_on_malloc=0: full allocation
# stacks through Open MPI's frame-pointer-less code, so lsan.supp can match its frames.
# max_allocation_size_mb + allocator_may_return_null: an allocation over 4 GB fails (NULL, which
# cigl reports as out of memory) as in the fuzzers, so a size taken from a header is caught.
export ASAN_OPTIONS="halt_on_error=1:abort_on_error=0:detect_leaks=1:fast_unwind_on_malloc=0:detect_stack_use_after_return=1:check_initialization_order=1:strict_string_checks=1:max_allocation_size_mb=4096:allocator_may_return_null=1:log_path=$logs/asan"
export LSAN_OPTIONS="suppressions=$here/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$logs/ubsan"
# Open MPI unloads its components before exit; keeping them loaded lets leak stacks name them.
export OMPI_MCA_mca_base_component_disable_dlclose=1
out=$(tests/run.sh)
rc=$?
echo "$out" | sed '$d'
p=$(echo "$out" | tail -n 1 | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p')
f=$(echo "$out" | tail -n 1 | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p')
[ -n "$p" ] || { p=0; f=1; }
[ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
reports=0
for r in "$logs"/*; do
    [ -s "$r" ] || continue
    reports=$((reports + 1))
    echo "sanitizer report $(basename "$r"):"
    sed 's/^/    | /' "$r" | head -n 40
done
if [ "$reports" -eq 0 ]; then p=$((p + 1)); echo "ok   no sanitizer reports"
else f=$((f + reports)); echo "FAIL $reports sanitizer report(s)"; fi
echo "$p passed, $f failed"
[ "$f" -eq 0 ]
