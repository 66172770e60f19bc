#!/bin/sh
# Our layer-wise counts (uniform / ER / ERK, every model and hand-made shape lists) equal those
# of the independent Python reference tests/sparsity_reference.py, exactly.
BUILD=${BUILD:-build}
dump=$(mktemp "${TMPDIR:-/tmp}/cigl-counts.XXXXXX") || { echo "0 passed, 1 failed"; exit 1; }
trap 'rm -f "$dump"' EXIT
if ! CIGL_DUMP_COUNTS="$dump" "$BUILD/tests/test_sparsity"; then
    echo "$BUILD/tests/test_sparsity could not dump the counts"
    echo "0 passed, 1 failed"
    exit 1
fi
/usr/bin/python3 tests/sparsity_reference.py --check "$dump"
