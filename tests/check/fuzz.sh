#!/bin/sh
# make check, stage 4: every libFuzzer target ($FUZZ_BUILD/fuzz/fuzz_*, ASan + UBSan) for
# FUZZ_SECONDS from its committed seed corpus (tests/fuzz/corpus/<target>/, read-only here:
# new inputs go to a scratch copy). A crash, sanitizer report, timeout (> 10 s for one input)
# or allocation over 2 GB fails the target; its input is kept in $FUZZ_BUILD/fuzz-artifacts/
# and belongs in tests/fuzz/crashes/<target>/ once fixed (replayed by make test from then on).
# Prints per target the executions and the corpus size reached.
. tests/lib.sh
FUZZ_BUILD=${FUZZ_BUILD:-build-fuzz}
SECONDS_EACH=${FUZZ_SECONDS:-45}
art="$FUZZ_BUILD/fuzz-artifacts"
mkdir -p "$art"
for src in tests/fuzz/fuzz_*.c; do
    name=$(basename "$src" .c); name=${name#fuzz_}
    bin=$FUZZ_BUILD/fuzz/fuzz_$name
    if [ ! -x "$bin" ] || [ "$bin" -ot "$src" ]; then bad "fuzz_${name}_built"; continue; fi
    work="$FUZZ_BUILD/fuzz-corpus/$name"
    rm -rf "$work" && mkdir -p "$work"
    log="$FUZZ_BUILD/fuzz-$name.log"
    # -close_fd_mask=3: cigl's one-line refusals would fill the log; libFuzzer keeps its own
    # output and the sanitizers' reports. -rss_limit_mb: also the single-allocation limit.
    "$bin" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 -close_fd_mask=3 \
        -print_final_stats=1 -artifact_prefix="$art/${name}-" "$work" "tests/fuzz/corpus/$name" \
        >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log")
    corp=$(grep -E '^#[0-9]+' "$log" | tail -n 1 | sed -n 's/.*corp: \([0-9]*\/[0-9a-zA-Z]*\).*/\1/p')
    cov=$(grep -E '^#[0-9]+' "$log" | tail -n 1 | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
    echo "  fuzz_$name: ${execs:-0} executions in ${SECONDS_EACH} s, corpus ${corp:-?} (inputs/bytes), coverage ${cov:-?} edges"
    check "fuzz_${name}_no_crash_in_${SECONDS_EACH}s" "[ $rc -eq 0 ]"
    [ $rc -eq 0 ] || { grep -E 'ERROR|SUMMARY|Test unit written|#[0-9]+ in ' "$log" | head -n 25; }
done
summary
