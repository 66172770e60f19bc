#!/bin/sh
# Runs every test binary and every tests/t_*.sh script; each prints "N passed, N failed" last,
# or "N passed, N failed, N skipped" with a line "SKIP name: reason" per skipped check. A binary
# that crashes or prints no summary counts as one failure. Prints the aggregate last.
BUILD=${BUILD:-build}
export BUILD
# Idle OpenMP threads sleep instead of spinning, as the cigl command sets it (src/main.c): on a
# machine busy with other work, spinning test binaries ran 50x slower (test_methods 75 s vs 1 s).
OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
export OMP_WAIT_POLICY
. tests/summary.sh
passed=0; failed=0; skipped=0
mkdir -p "$BUILD/test-logs"
for src in tests/test_*.c; do
    bin="$BUILD/tests/$(basename "$src" .c)"
    if [ ! -x "$bin" ] || [ "$bin" -ot "$src" ] || [ "$bin" -ot "$BUILD/libcigl.a" ]; then
        printf '%-28s did not build\n' "$(basename "$bin")"
        failed=$((failed + 1))
        rm -f "$bin" # a stale binary must not run in its place
    fi
done
for t in "$BUILD"/tests/test_* tests/t_*.sh; do
    [ -x "$t" ] || continue
    case "$t" in *.log) continue ;; esac
    name=$(basename "$t")
    log="$BUILD/test-logs/$name.log"
    start=$(date +%s)
    "$t" >"$log" 2>&1
    rc=$?
    secs=$(( $(date +%s) - start ))
    summary=$(tail -n 1 "$log")
    count_summary "$summary"
    p=$sum_p; f=$sum_f; s=$sum_s
    if [ -z "$p" ]; then p=0; f=1; fi
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
    printf '%-28s %3d passed, %d failed, %d skipped  (%ds)\n' "$name" "$p" "$f" "$s" "$secs"
    grep '^SKIP ' "$log" | sed 's/^/    /'
    if [ "$f" -ne 0 ]; then sed 's/^/    | /' "$log" | tail -n 40; fi
done
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
