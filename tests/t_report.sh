#!/bin/sh
# `cigl report` output files: sparsity.svg is well-formed XML (Python's minidom) with a viewBox,
# two panels (accuracy, ECE) per model, one polyline per method series in each panel and a
# legend naming every series; report.md holds the table. The synthetic runs come from
# `test_report --svg DIR`, which lists the expected series in DIR/series.txt.
# And the `cigl report` command: its output, exit statuses and one-line errors.
BUILD=${BUILD:-build}
BIN=$BUILD/tests/test_report
CIGL=$BUILD/cigl
PY=/usr/bin/python3
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
passed=0; failed=0
ok() { passed=$((passed + 1)); echo "ok   $1"; }
bad() { failed=$((failed + 1)); echo "FAIL $1"; }

if [ ! -x "$BIN" ]; then
    echo "missing $BIN: run make $BIN"; echo "0 passed, 1 failed"; exit 1
fi
if "$BIN" --svg "$T"; then ok report_writes_files; else bad "report_writes_files (exit $?)"; fi
# A missing DIR is one line naming the fix and status 2, not a crash.
"$BIN" --svg "$T/missing/dir" >"$T/missing.out" 2>"$T/missing.err"
rc=$?
if [ "$rc" -eq 2 ] && [ "$(wc -l <"$T/missing.err")" -eq 1 ] &&
    grep -q "mkdir -p '$T/missing/dir'" "$T/missing.err"; then
    ok svg_missing_dir_one_line
else
    bad "svg_missing_dir_one_line (exit $rc)"
fi

if "$PY" - "$T/out/sparsity.svg" "$T/series.txt" <<'EOF'
import sys, xml.dom.minidom
svg_path, series_path = sys.argv[1], sys.argv[2]
doc = xml.dom.minidom.parse(svg_path)  # raises on malformed XML
root = doc.documentElement
assert root.tagName == "svg", root.tagName
assert root.getAttribute("xmlns") == "http://www.w3.org/2000/svg"
vb = root.getAttribute("viewBox").split()
assert len(vb) == 4 and float(vb[2]) > 0 and float(vb[3]) > 0, vb
series = [l.rstrip("\n") for l in open(series_path, encoding="utf-8") if l.strip()]
panels = [g for g in root.getElementsByTagName("g") if g.getAttribute("class") == "panel"]
metrics = sorted(p.getAttribute("data-metric") for p in panels)
assert metrics == ["accuracy", "ece"], metrics
for p in panels:
    lines = [l for l in p.getElementsByTagName("polyline") if l.getAttribute("class") == "series"]
    names = [l.getAttribute("data-series") for l in lines]
    assert len(lines) == len(series), (p.getAttribute("data-metric"), len(lines), len(series))
    assert sorted(names) == sorted(series), (names, series)
    for l in lines:
        pts = [tuple(map(float, xy.split(","))) for xy in l.getAttribute("points").split()]
        assert pts, l.getAttribute("data-series")
        assert all(0 <= x <= float(vb[2]) and 0 <= y <= float(vb[3]) for x, y in pts), pts
    ticks = [t for t in p.getElementsByTagName("text") if t.getAttribute("class") == "tick"]
    labels = [t for t in p.getElementsByTagName("text") if t.getAttribute("class") == "label"]
    assert len(ticks) >= 4 and len(labels) == 2, (len(ticks), len(labels))
legend = [g for g in root.getElementsByTagName("g") if g.getAttribute("class") == "legend"]
assert len(legend) == 1
texts = [t.firstChild.data for t in legend[0].getElementsByTagName("text")]
assert texts == series, (texts, series)
print("  %d series in each of %d panels" % (len(series), len(panels)))
EOF
then ok svg_well_formed_one_polyline_per_method; else bad svg_well_formed_one_polyline_per_method; fi

if grep -q '^| mlp | rigl | — | 0.9 | 3 | 82.00 ± 2.00 |' "$T/out/report.md" &&
   grep -q '^| mlp | cigl | — | 0.9 | 3 | — | 3 | -50.0 | \[' "$T/out/report.md" &&
   grep -q '(sparsity.svg)$' "$T/out/report.md"; then
    ok report_md_tables
else
    bad report_md_tables; cat "$T/out/report.md"
fi

# The CLI: `cigl report` (its help first: every check below needs the dispatch).
if [ -x "$CIGL" ] && "$CIGL" report --help >/dev/null 2>&1; then ok cli_report_help; else
    bad "cli_report_help ($CIGL report --help failed)"; fi
"$CIGL" report "$T"/runs/* >"$T/cli.md" 2>"$T/cli.err"; rc=$?
# stdout is report.md without its last two lines (blank, plot link)
if [ "$rc" -eq 0 ] && head -n -2 "$T/out/report.md" | cmp -s - "$T/cli.md"; then
    ok cli_report
else
    bad "cli_report (exit $rc)"; cat "$T/cli.err"
fi
expect_usage() { # name, expected text, args...
    name=$1; want=$2; shift 2
    "$CIGL" report "$@" >/dev/null 2>"$T/err.txt"; rc=$?
    lines=$(wc -l < "$T/err.txt")
    if [ "$rc" -eq 2 ] && [ "$lines" -eq 1 ] && grep -q -- "$want" "$T/err.txt"; then ok "$name"; else
        bad "$name (exit $rc, $lines lines)"; cat "$T/err.txt"; fi
}
mkdir -p "$T/notrun" "$T/broken"
printf '{"model": "mlp", "method": "rigl" "seed": 0}\n' > "$T/broken/config.json"
expect_usage cli_dir_without_config "notrun/config.json: no such file" "$T/notrun"
expect_usage cli_malformed_config "broken/config.json: expected ',' or '}' at 1:35" "$T/broken"
expect_usage cli_no_arguments "no run directories given"
expect_usage cli_unknown_option "unknown option '--nope'" "$T/runs/rigl_90_s0" --nope
# Throughput and scaling: runs at 1, 2 and 4 ranks. Strong: 1 and 2 ranks at batch 64
# (100 and 180 img/s: 90%); weak: 2 ranks at 128 and 4 at 256 against 1 rank at 64
# (190/2/100 = 95%, 360/4/100 = 90%). The rank counts make separate groups.
mkrun() { # dir ranks batch img/s
    mkdir -p "$T/scal/$1"
    printf '{"model": "mlp", "method": "rigl", "seed": 0, "sparsity": 0.9, "threads": 1,
        "batch-size": %s, "data": "/x/sub.h5"}\n' "$3" >"$T/scal/$1/config.json"
    printf '{"test": {"accuracy": 0.8, "ece": 0.05}, "ranks": %s,
        "train_images_per_second": %s}\n' "$2" "$4" >"$T/scal/$1/final.json"
}
mkrun n1 1 64 100; mkrun n2 2 64 180; mkrun w2 2 128 190; mkrun w4 4 256 360
"$CIGL" report "$T"/scal/* >"$T/scal.md" 2>"$T/scal.err"; rc=$?
if [ "$rc" -eq 0 ] && grep -q '^## Throughput and scaling' "$T/scal.md" &&
   grep -q 'scal/n1 | mlp | rigl | 0.9 | 1 | 1 | 64 | 100.0 | 100 | 100 |$' "$T/scal.md" &&
   grep -q 'scal/n2 | mlp | rigl | 0.9 | 2 | 1 | 64 | 180.0 | 90 | — |$' "$T/scal.md" &&
   grep -q 'scal/w2 | mlp | rigl | 0.9 | 2 | 1 | 128 | 190.0 | — | 95 |$' "$T/scal.md" &&
   grep -q 'scal/w4 | mlp | rigl | 0.9 | 4 | 1 | 256 | 360.0 | — | 90 |$' "$T/scal.md" &&
   grep -q '^| mlp | rigl | batch-size=256, ranks=4 | 0.9 | 1 |' "$T/scal.md"; then
    ok report_ranks_throughput_scaling
else
    bad "report_ranks_throughput_scaling (exit $rc)"; cat "$T/scal.md" "$T/scal.err"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
