#!/bin/sh
# Replays every fuzz target (tests/fuzz/fuzz_*.c, built without libFuzzer as
# $BUILD/fuzz/replay_*) on its seed corpus and on every input that once crashed it
# (tests/fuzz/crashes/<target>/): each must be handled without a crash (under make check, also
# without a sanitizer report).
. tests/lib.sh
for src in tests/fuzz/fuzz_*.c; do
    name=$(basename "$src" .c); name=${name#fuzz_}
    bin=$BUILD/fuzz/replay_$name
    if [ ! -x "$bin" ]; then bad "fuzz_${name}_replay_built"; continue; fi
    out=$("$bin" "tests/fuzz/corpus/$name" "tests/fuzz/crashes/$name" 2>/dev/null)
    rc=$?
    n=$(echo "$out" | tail -n 1 | sed -n 's/^\([0-9]*\) passed, 0 failed$/\1/p')
    crashes=$(ls "tests/fuzz/crashes/$name" 2>/dev/null | wc -l)
    check "fuzz_${name}_replays_${n:-0}_inputs_(${crashes}_past_crashes)" "[ $rc -eq 0 ] && [ \"${n:-0}\" -gt 0 ]"
done
summary
