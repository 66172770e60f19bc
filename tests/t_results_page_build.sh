#!/bin/sh
# jobs/results_page.sh rebuilds the results page from collected runs without retraining. On a
# copy of the committed demo runs: it succeeds, writes the part's report and the page, and
# names runs relative to jobs/results/runs (the same on every checkout), never by the path of
# the checkout it ran in; a relative CIGL still works after the script changes directory.
. tests/lib.sh
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
if [ ! -x "$BUILD/cigl" ] || [ ! -d jobs/results/runs/demo ]; then
    skip results_page_build "needs $BUILD/cigl and jobs/results/runs/demo"
    summary
    exit 0
fi
mkdir -p "$T/jobs/results/runs"
cp jobs/results_page.sh jobs/results_page.py "$T/jobs/"
cp -r jobs/results/runs/demo "$T/jobs/results/runs/"
CIGL=$BUILD/cigl "$T/jobs/results_page.sh" >"$T/log" 2>&1
rc=$?
check "exits_0" "[ $rc -eq 0 ] || { cat '$T/log'; false; }"
md=$T/jobs/results/report/demo/report.md
check "writes_the_part_report" "[ -s '$md' ]"
check "writes_the_page" "[ -s '$T/jobs/results/README.md' ]"
check "names_runs_relative_to_runs" "grep -q '^| demo/cigl-seed0 |' '$md'"
check "no_checkout_path_in_report" "[ -s '$md' ] && ! grep -q '$T' '$md'"
check "no_checkout_path_in_page" "[ -s '$T/jobs/results/README.md' ] && ! grep -q '$T' '$T/jobs/results/README.md'"
rm -rf "$T/jobs/results/runs"
CIGL=$BUILD/cigl "$T/jobs/results_page.sh" >"$T/log2" 2>&1
rc=$?
check "no_runs_is_one_line_and_fails" "[ $rc -ne 0 ] && [ \$(wc -l <'$T/log2') -eq 1 ] && grep -q 'collect runs first' '$T/log2'"
summary
