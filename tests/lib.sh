# Shared by the tests/t_*.sh scripts: counters, checks and the summary line run.sh reads.
BUILD=${BUILD:-build}
CIGL=$BUILD/cigl
DATA=$BUILD/data/fashion-mnist.h5
PY=/usr/bin/python3
passed=0; failed=0; skipped=0
ok() { passed=$((passed + 1)); echo "ok   $1"; }
# A check that cannot run here (no root, no network namespaces, ...): counted, with its reason.
skip() { skipped=$((skipped + 1)); echo "SKIP $1: $2"; }
bad() { failed=$((failed + 1)); echo "FAIL $1"; }
check() { if eval "$2"; then ok "$1"; else bad "$1"; fi; }
summary() { echo "$passed passed, $failed failed, $skipped skipped"; [ "$failed" -eq 0 ]; }
# The real Fashion-MNIST, converted once per build directory.
need_data() {
    mkdir -p "$BUILD/data"
    [ -f "$DATA" ] || "$CIGL" convert fashion-mnist /usr/share/datasets/fashion-mnist "$DATA" >/dev/null
}
