#!/bin/sh
# `make demo` shows what it claims: at its seed RigL is over-confident on the test set (mean
# confidence above accuracy by at least 2 points), CigL's ECE is lower than RigL's by at least
# 15% at an accuracy within 1.5 points, and the printout names the change and the diagrams.
# About a minute of training on 2 ranks.
. tests/lib.sh
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
DEMO_OUT=$T/demo sh tests/demo.sh >"$T/demo.log" 2>&1
st=$?
check "demo_exits_0" "[ $st = 0 ] && [ -f '$T/demo/rigl/final.json' ] && [ -f '$T/demo/cigl/final.json' ]"
# ECE, accuracy and the over-confidence gap (mean confidence - accuracy, from the bins)
stats() { "$PY" - "$1/final.json" <<'PYEOF'
import json, sys
t = json.load(open(sys.argv[1]))["test"]
r = t["reliability"]
n = sum(r["count"])
gap = sum(c * (cf - a) for c, cf, a in zip(r["count"], r["confidence"], r["accuracy"]) if c) / n
print(t["ece"], t["accuracy"], gap)
PYEOF
}
set -- $(stats "$T/demo/rigl") $(stats "$T/demo/cigl")
echo "  rigl: ECE $1 accuracy $2 gap $3; cigl: ECE $4 accuracy $5 gap $6"
check "rigl_over_confident" "awk 'BEGIN { exit !($3 >= 0.02) }'"
check "cigl_ece_15_percent_lower" "awk 'BEGIN { exit !($4 <= 0.85 * $1) }'"
check "cigl_accuracy_within_1.5_points" "awk 'BEGIN { exit !($5 >= $2 - 0.015) }'"
check "prints_change_and_diagrams" "grep -q '^CigL vs RigL on the test set: ECE .*(-[0-9]*%)' '$T/demo.log' && grep -q 'reliability diagrams: .*rigl/reliability.svg' '$T/demo.log'"
summary
