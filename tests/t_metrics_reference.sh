#!/bin/sh
# Every calibration metric (and the fitted temperature) from the C library agrees to 1e-9 with
# the independent numpy implementation tests/metrics_reference.py, on random predictions files
# written by `test_metrics --reference`; the reliability SVG parses as XML with one bar per
# non-empty bin.
BUILD=${BUILD:-build}
BIN=$BUILD/tests/test_metrics
PY=/usr/bin/python3
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
if [ ! -x "$BIN" ]; then
    echo "missing $BIN: run make $BIN"; echo "0 passed, 1 failed"; exit 1
fi
if ! "$BIN" --reference "$T"; then
    echo "$BIN --reference failed"; echo "0 passed, 1 failed"; exit 1
fi
for f in "$T"/*.h5; do
    case=$(basename "$f" .h5)
    extra=""
    grep -q '"temperature"' "$T/$case.json" && extra="--fit-temperature"
    "$PY" tests/metrics_reference.py "$f" $extra >"$T/$case.ref.json" || echo "reference failed on $case"
    if [ -n "$extra" ]; then
        temp=$(sed -n 's/^  "temperature": *\([-0-9.eE+]*\).*/\1/p' "$T/$case.json")
        "$PY" tests/metrics_reference.py "$f" --temperature "$temp" >"$T/$case.ref_at_t.json" ||
            echo "reference failed on $case at T = $temp"
    fi
done
"$PY" - "$T" <<'EOF'
import glob, json, math, os, sys
import xml.dom.minidom

d = sys.argv[1]
passed = failed = 0
SCALARS = ["accuracy", "nll", "brier", "ece", "ece10", "mce", "adaptive_ece", "classwise_ece",
           "accuracy_at_coverage_50", "accuracy_at_coverage_80", "accuracy_at_coverage_90", "aurc"]

def close(a, b, tol=1e-9):
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= tol * max(1.0, abs(b))

def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print("FAIL %s %s" % (name, detail))

def compare(case, ours, ref):
    bad = []
    for key in SCALARS + ["n", "classes"]:
        if not close(ours.get(key), ref.get(key)):
            bad.append("%s: C %r, reference %r" % (key, ours.get(key), ref.get(key)))
        else:
            check("%s %s" % (case, key), True)
    for key in ("count", "confidence", "accuracy"):
        o, r = ours["reliability"][key], ref["reliability"][key]
        if len(o) != 15 or not all(close(x, y) for x, y in zip(o, r)):
            bad.append("reliability %s: C %r, reference %r" % (key, o, r))
        else:
            check("%s reliability %s" % (case, key), True)
    for b in bad:
        check(case, False, b)
    return not bad

cases = sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(d, "*.h5")))
check("eight reference cases", len(cases) == 8, str(cases))
for case in cases:
    ours = json.load(open(os.path.join(d, case + ".json")))
    ref = json.load(open(os.path.join(d, case + ".ref.json")))
    if "stored_log_probs_max_abs_diff" in ref:
        check(case + " stored log_probs", ref["stored_log_probs_max_abs_diff"] <= 1e-12,
              "differ from numpy's log-softmax by %g" % ref["stored_log_probs_max_abs_diff"])
    ok = compare(case, ours, ref)
    if "temperature" in ours:
        t_c, t_ref = ours["temperature"], ref["temperature"]
        check(case + " temperature", close(t_c, t_ref), "C %r, reference %r" % (t_c, t_ref))
        at_ref = json.load(open(os.path.join(d, case + ".ref_at_t.json")))
        ok = compare(case + " at T", ours["at_temperature"], at_ref) and ok
        ok = ok and close(t_c, t_ref)
        print("  %s: T = %.9f (reference %.9f), ECE %.4f -> %.4f" % (
            case, t_c, t_ref, ours["ece"], ours["at_temperature"]["ece"]))
    print("%s %s: N %d, K %d, accuracy %.4f, ECE %.4f, ECE10 %.4f, adaptive %.4f" % (
        "ok  " if ok else "FAIL", case, ours["n"], ours["classes"], ours["accuracy"],
        ours["ece"], ours["ece10"], ours["adaptive_ece"]))

for svg in sorted(glob.glob(os.path.join(d, "*.svg"))):
    case = os.path.basename(svg)[:-4]
    try:
        doc = xml.dom.minidom.parse(svg)
    except Exception as e:
        check(case + " svg parses", False, str(e))
        continue
    check(case + " svg parses", True)
    root = doc.documentElement
    check(case + " svg root", root.tagName == "svg" and root.getAttribute("viewBox") != "")
    bars = [r for r in doc.getElementsByTagName("rect") if r.getAttribute("class") == "bar"]
    counts = json.load(open(os.path.join(d, case + ".json")))["reliability"]["count"]
    nonempty = sum(1 for c in counts if c > 0)
    check(case + " svg bars", len(bars) == nonempty,
          "%d bars for %d non-empty bins" % (len(bars), nonempty))
    title = doc.getElementsByTagName("title")
    check(case + " svg title has the ECE", len(title) == 1 and "ECE" in title[0].firstChild.data)
print("%d passed, %d failed" % (passed, failed))
EOF
