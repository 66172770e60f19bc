#!/bin/sh
# Runs every test binary and every tests/t_*.sh script; each prints "N passed, N failed" last,
# or "N passed, N failed, N skipped" with a line "SKIP name: reason" per skipped check. A binary
# that crashes or prints no summary counts as one failure. Prints the aggregate last.
# T=pattern runs only the tests whose name contains pattern (make test T=mpi); QUICK=1 runs the
# unit test binaries only (make test-quick). Each test runs under `timeout`: TEST_TIMEOUT
# seconds (default 1200, ten times the slowest suite on a loaded 2-core machine); a test that
# runs longer is killed and counts as one failure.
BUILD=${BUILD:-build}
export BUILD
T=${T:-}
QUICK=${QUICK:-}
TEST_TIMEOUT=${TEST_TIMEOUT:-1200}
# Idle OpenMP threads sleep instead of spinning, as the cigl command sets it (src/main.c): on a
# machine busy with other work, spinning test binaries ran 50x slower (test_methods 75 s vs 1 s).
OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
export OMP_WAIT_POLICY
. tests/summary.sh
passed=0; failed=0; skipped=0
mkdir -p "$BUILD/test-logs"
# selected NAME: true when NAME passes the T filter.
selected() { case "$1" in *"$T"*) return 0 ;; *) return 1 ;; esac; }
scripts=tests/t_*.sh
[ -n "$QUICK" ] && scripts=
for src in tests/test_*.c; do
    selected "$(basename "$src" .c)" || continue
    bin="$BUILD/tests/$(basename "$src" .c)"
    if [ ! -x "$bin" ] || [ "$bin" -ot "$src" ] || [ "$bin" -ot "$BUILD/libcigl.a" ]; then
        printf '%-28s did not build\n' "$(basename "$bin")"
        failed=$((failed + 1))
        rm -f "$bin" # a stale binary must not run in its place
    fi
done
for t in "$BUILD"/tests/test_* $scripts; do
    [ -x "$t" ] || continue
    case "$t" in *.log | *.d) continue ;; esac
    name=$(basename "$t")
    selected "$name" || continue
    log="$BUILD/test-logs/$name.log"
    start=$(date +%s)
    timeout -k 10 "$TEST_TIMEOUT" "$t" >"$log" 2>&1
    rc=$?
    secs=$(( $(date +%s) - start ))
    summary=$(tail -n 1 "$log")
    count_summary "$summary"
    p=$sum_p; f=$sum_f; s=$sum_s
    # timeout exits 124 (137 after the -k kill); the test's own counts are then incomplete.
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        echo "TIMEOUT $name: killed after ${TEST_TIMEOUT}s (raise TEST_TIMEOUT to allow more)" \
            >>"$log"
        p=${p:-0}; f=$((${f:-0} + 1)); s=${s:-0}
    fi
    if [ -z "$p" ]; then p=0; f=1; fi
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
    printf '%-28s %3d passed, %d failed, %d skipped  (%ds)\n' "$name" "$p" "$f" "$s" "$secs"
    grep '^SKIP \|^TIMEOUT ' "$log" | sed 's/^/    /'
    if [ "$f" -ne 0 ]; then sed 's/^/    | /' "$log" | tail -n 40; fi
done
if [ $((passed + failed + skipped)) -eq 0 ] && [ -n "$T" ]; then
    echo "no test name contains '$T'"; failed=1
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
