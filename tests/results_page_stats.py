"""The statistics behind jobs/results/README.md's paired study, against hand-computed cases
the paired t interval, the evidence rule for defaults, and one row of the defaults table built
from synthetic runs. Prints one line per check and "N passed, N failed" last."""
import math
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "jobs"))
import results_page as rp  # noqa: E402

passed = failed = 0


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print(f"ok   {name}")
    else:
        failed += 1
        print(f"FAIL {name} {detail}")


# 95% t interval of [1, 2, 3]: mean 2, sd 1, se 1/sqrt(3), t(0.975, 2 df) = 4.303
lo, hi = rp.paired_t_interval([1.0, 2.0, 3.0])
half = 4.303 / math.sqrt(3)
check("t_interval_three_seeds", abs(lo - (2 - half)) < 1e-9 and abs(hi - (2 + half)) < 1e-9,
      f"{lo} {hi}")
lo, hi = rp.paired_t_interval([0.5, -0.5])
check("t_interval_two_seeds_undecided", lo == float("-inf") and hi == float("inf"))
# five equal differences: zero spread, the interval is the point
lo, hi = rp.paired_t_interval([-0.1] * 5)
check("t_interval_no_spread", abs(lo + 0.1) < 1e-12 and abs(hi + 0.1) < 1e-12)

check("rule_cigl_wins", rp.rule_default(["cigl's (NLL)"], 3) == "cigl's")
check("rule_authors_win", rp.rule_default(["authors' (ECE15)"], 5) == "authors'")
check("rule_unresolved_goes_to_authors",
      rp.rule_default([], 3) == "authors' (cigl's does not win)")
check("rule_pending_below_three_seeds", rp.rule_default([], 2).startswith("pending"))
check("rule_split", rp.rule_default(["authors' (ECE15)", "cigl's (NLL)"], 5).startswith("split"))


def run(ece, nll, acc):
    return {"test": {"ece": ece, "ece10": ece, "nll": nll, "accuracy": acc}}


# the snapshot arm: ECE15 10% lower on each of 3 seeds with a little spread, NLL 1% higher on
# each (no spread: the t interval excludes 0 both ways)
base = {s: run(0.010 + 0.001 * s, 0.20, 0.92) for s in range(3)}
snap = {s: run((0.010 + 0.001 * s) * (0.90 + 0.001 * s), 0.202, 0.92) for s in range(3)}
rows = rp.defaults_evidence({"cigl": base, "cigl-snap": snap})
row = [r for r in rows if r.startswith("| snapshot window")]
cells = [c.strip() for c in row[0].strip("|").split("|")] if row else []
check("defaults_row_built", len(cells) == 7, str(cells))
if len(cells) == 7:
    # mean change of ECE15: sum(0.010+0.001s)(0.90+0.001s) / sum(0.010+0.001s) - 1
    num = sum((0.010 + 0.001 * s) * (0.90 + 0.001 * s) for s in range(3))
    want = 100 * (num / sum(0.010 + 0.001 * s for s in range(3)) - 1)
    check("defaults_row_ece_change", cells[3].startswith(f"**{want:+.1f}**"), cells[3])
    check("defaults_row_verdict", cells[5] == "authors' (ECE15), cigl's (NLL)", cells[5])
    check("defaults_row_rule", cells[6].startswith("split"), cells[6])



# The long-regime table (resnet20-long/step2): 3 seeds of RigL and CigL at 90%, CigL's ECE15
# 20% under RigL's on every seed (NLL too), RigL + TS at half RigL's ECE15, CigL + TS at 0.012;
# step-1 runs stay out of it.
def long_run(method, seed, ece, acc, ts_ece, conf_gap, step="step2", sparsity=0.9):
    rel = {"count": [0] * 14 + [100], "confidence": [None] * 14 + [acc + conf_gap],
           "accuracy": [None] * 14 + [acc]}
    return {"dir": os.path.join("x", "runs", "resnet20-long", step, f"{method}-{seed}"),
            "config": {"method": method, "seed": seed, "sparsity": sparsity, "epochs": 32},
            "final": {"test": {"ece": ece, "accuracy": acc, "reliability": rel, "nll": 10 * ece},
                      "test_temperature_scaled": {"ece": ts_ece}}}


long_runs = [long_run("rigl", k, 0.030 + 0.001 * k, 0.93, 0.015, 0.03) for k in range(3)]
long_runs += [long_run("cigl", k, 0.8 * (0.030 + 0.001 * k), 0.928, 0.012, 0.02) for k in range(3)]
long_runs += [long_run("rigl", 0, 0.5, 0.5, 0.5, 0.5, step="e32")]
table = rp.long_regime(long_runs)
cigl_row = [r for r in table if r.startswith("| CigL 0.9 |")]
rigl_row = [r for r in table if r.startswith("| RigL 0.9 |")]
check("long_table_rows", len(cigl_row) == 1 and len(rigl_row) == 1, "\n".join(table))
if cigl_row and rigl_row:
    c = [x.strip() for x in cigl_row[0].strip("|").split("|")]
    r = [x.strip() for x in rigl_row[0].strip("|").split("|")]
    check("long_table_seeds_and_rigl", r[1] == "3" and r[3] == "0.0310" and r[4] == "0.3100"
          and r[6] == "0.0150" and r[5] == "+0.0300", str(r))
    check("long_table_cigl_vs_rigl", c[8].startswith("**-20.0**") and c[7].startswith("-0.20")
          and c[9].startswith("-20.0 "), str(c))
    # CigL 0.0248 mean vs RigL + TS 0.015: +65.3%
    check("long_table_cigl_vs_ts", c[10].startswith(f"{100 * (0.0248 / 0.015 - 1):+.1f}"), str(c))
    # both temperature-scaled: 0.012 vs 0.015 on every seed, -20% with a point interval
    check("long_table_ts_vs_ts", c[6] == "0.0120" and c[11] == "-20.0 [-20.0, -20.0]", str(c))
with tempfile.TemporaryDirectory() as tmp:  # a diagram is linked only where its file exists
    drawn = dict(long_run("cigl", 0, 0.02, 0.93, 0.01, 0.01, sparsity=0.95),
                 dir=os.path.join(tmp, "runs", "resnet20-long", "step2", "cigl-s0.95-seed0"))
    os.makedirs(drawn["dir"])
    open(os.path.join(drawn["dir"], "reliability.svg"), "w").close()
    figs = [l for l in rp.long_regime(long_runs + [drawn]) if "reliability.svg" in l]
    check("long_table_links_existing_diagram_only", len(figs) == 1 and
          figs[0].count("](runs/") == 1 and
          "runs/resnet20-long/step2/cigl-s0.95-seed0/reliability.svg" in figs[0], str(figs))
# seed k: 0.8 (0.030 + 0.001 k) against 0.030 + 0.001 k, -20% on each of the 3 seeds
want = ("90%: -20.0 (seed 0), -20.0 (seed 1), -20.0 (seed 2), lower on 3 of 3, "
        "95% t interval of these changes [-20.0, -20.0]")
check("long_table_per_seed", any(l.startswith("CigL against RigL per seed") and want in l
                                 for l in table), "\n".join(table))
# a run trained without a validation split has no temperature: its cells say so, no crash
unscaled = [dict(r, final={k: v for k, v in r["final"].items() if k != "test_temperature_scaled"})
            if r["config"]["method"] == "cigl" else r for r in long_runs]
row = [l for l in rp.long_regime(unscaled) if l.startswith("| CigL 0.9 |")]
check("long_table_without_temperature", len(row) == 1 and row[0].count("no temperature") == 3
      and "**-20.0**" in row[0], str(row))
check("long_table_empty_says_so",
      any("No finished run yet" in l for l in rp.long_regime([long_runs[-1]])))
sched = rp.schedule_length(
    long_runs + [dict(long_run("rigl", 0, 0.01, 0.92, 0.01, 0.01, step="x"),
                      dir=os.path.join("x", "runs", "reference", "rigl-s0.9-seed0"),
                      config={"method": "rigl", "sparsity": 0.9, "model": "resnet20",
                              "epochs": 8})])
# the 32-epoch row is there, counting its one run and not the step-2 ones
check("schedule_length_leaves_out_step2",
      any("| 32 |" in l for l in sched) and
      all("| 32 |" not in l or "| 1 |" in l for l in sched), "\n".join(sched))

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
