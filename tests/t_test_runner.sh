#!/bin/sh
# tests/run.sh itself, on stand-in test programs in a scratch BUILD directory: the closing
# line's counts (skips included), the name filter T, the quick tier QUICK=1 (no t_*.sh) and the
# per-test timeout TEST_TIMEOUT, whose kill counts as one failure with a TIMEOUT line.
. tests/lib.sh
B=$(mktemp -d)
trap 'rm -rf "$B"' EXIT
mkdir -p "$B/tests"
stand_in() { printf '#!/bin/sh\n%s\n' "$2" >"$B/tests/$1"; chmod +x "$B/tests/$1"; }
stand_in test_stub_pass 'echo "3 passed, 0 failed"'
stand_in test_stub_skip 'echo "SKIP two: no network"; echo "1 passed, 0 failed, 2 skipped"'
stand_in test_stub_slow 'sleep 60; echo "1 passed, 0 failed"'
stand_in test_stub_crash 'echo "half a line"; exit 3'
runner() { env BUILD="$B" "$@" sh tests/run.sh 2>&1; }

start=$(date +%s)
out=$(runner T=stub_ TEST_TIMEOUT=2); rc=$?
secs=$(( $(date +%s) - start ))
check totals_with_timeout_and_crash \
    "[ \"\$(echo \"\$out\" | tail -n 1)\" = '4 passed, 2 failed, 2 skipped' ] && [ $rc -ne 0 ]"
check timeout_line "echo \"\$out\" | grep -q 'TIMEOUT test_stub_slow: killed after 2s'"
check timeout_kills_early "[ $secs -lt 30 ]"
check skip_reason_shown "echo \"\$out\" | grep -q 'SKIP two: no network'"

out=$(runner T=stub_pass); rc=$?
check filter_one "[ \"\$(echo \"\$out\" | tail -n 1)\" = '3 passed, 0 failed, 0 skipped' ] \
    && [ $rc -eq 0 ] && ! echo \"\$out\" | grep -q stub_skip"
out=$(runner T=no_such_test); rc=$?
check filter_matches_nothing "[ $rc -ne 0 ] && echo \"\$out\" | grep -q \"no test name contains\""
# The quick tier leaves out the scripts: this script's own name then matches nothing.
out=$(runner T=t_test_runner QUICK=1); rc=$?
check quick_skips_scripts "[ $rc -ne 0 ] && echo \"\$out\" | grep -q \"no test name contains\""
summary
