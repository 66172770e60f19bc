#!/usr/bin/python3
"""Writes jobs/results/README.md from the collected runs and `cigl report`'s per-part reports.

    results_page.py RESULTS_DIR

The headline compares CigL with RigL on the reference subset (resnet20) at 90% and 95%
sparsity: relative ECE change with a 95% percentile bootstrap interval over seeds (computed here
independently of `cigl report`), and the accuracy difference in points. It states what was
measured, including where CigL does not beat RigL and how many runs are still missing.
"""
import json
import os
import random
import sys

PARTS = [
    ("reference", "Reference subset: resnet20 on Fashion-MNIST",
     "dense, RigL and CigL at 90% and 95% sparsity, 3 seeds, 8 epochs (PLAN.md)."),
    ("breadth/mlp", "Breadth: mlp",
     "every method and baseline at 80/90/95/99% sparsity (PLAN.md)."),
    ("breadth/lenet5", "Breadth: lenet5",
     "every method and baseline at 80/90/95/99% sparsity (PLAN.md)."),
    ("wrn", "wrn-22-2 at 95%", "RigL and CigL, one seed."),
    ("long/mlp", "Longer training: mlp, 40 epochs",
     "dense, RigL, CigL (random mask rate 0.01 and 0.1) at 90% and 95%, 3 seeds, 5x the "
     "recipe's epochs (PLAN.md)."),
    ("long/lenet5", "Longer training: lenet5, 40 epochs",
     "dense, RigL, CigL (random mask rate 0.01 and 0.1) at 80% and 90%, 3 seeds, 5x the "
     "recipe's epochs (PLAN.md)."),
]


def load_runs(root):
    runs = []
    for dirpath, _, files in os.walk(root):
        if "final.json" not in files or "config.json" not in files:
            continue
        with open(os.path.join(dirpath, "final.json")) as f:
            final = json.load(f)
        with open(os.path.join(dirpath, "config.json")) as f:
            config = json.load(f)
        launches = []
        lp = os.path.join(dirpath, "launches.jsonl")
        if os.path.exists(lp):
            with open(lp) as f:
                launches = [json.loads(l) for l in f if l.strip()]
        runs.append({"dir": dirpath, "final": final, "config": config, "launches": launches})
    return runs


def plain(run, method):
    """A run of `method` with the recipe's options (no ablation or baseline options)."""
    c = run["config"]
    return (c.get("method") == method and not c.get("no-averaging") and
            c.get("label-smoothing", 0) == 0 and c.get("mixup", 0) == 0 and
            (method != "cigl" or c.get("random-mask-rate", 0.01) == RECIPE_RATE))


RECIPE_RATE = 0.01  # CigL's random mask rate in the recipe (the authors' code)
PAPER_RATE = 0.1    # the paper text's rate (breadth variant cigl-p0.1)


def cigl_at_rate(run, rate):
    c = run["config"]
    return (c.get("method") == "cigl" and not c.get("no-averaging") and
            c.get("random-mask-rate") == rate)


def mean(xs):
    return sum(xs) / len(xs)


def bootstrap_change(a, b, n=10000, seed=0):
    """Percentile interval of 100 (mean(a) - mean(b)) / mean(b), seeds resampled per group."""
    rng = random.Random(seed)
    vals = []
    for _ in range(n):
        ra = [rng.choice(a) for _ in a]
        rb = [rng.choice(b) for _ in b]
        vals.append(100 * (mean(ra) - mean(rb)) / mean(rb))
    vals.sort()
    return vals[int(0.025 * n)], vals[int(0.975 * n) - 1]


def headline(runs):
    ref = [r for r in runs if r["config"].get("model") == "resnet20"]
    lines = []
    verdicts = []
    for s in (0.9, 0.95):
        rig = [r["final"] for r in ref if plain(r, "rigl") and r["config"]["sparsity"] == s]
        cig = [r["final"] for r in ref if plain(r, "cigl") and r["config"]["sparsity"] == s]
        if not rig or not cig:
            lines.append(f"- {int(s * 100)}% sparsity: not measured yet ({len(rig)} RigL and "
                         f"{len(cig)} CigL runs finished of 3 each).")
            verdicts.append(None)
            continue
        er = [f["test_ece"] for f in rig]
        ec = [f["test_ece"] for f in cig]
        ar = mean([f["test_accuracy"] for f in rig])
        ac = mean([f["test_accuracy"] for f in cig])
        change = 100 * (mean(ec) - mean(er)) / mean(er)
        lo, hi = bootstrap_change(ec, er) if len(ec) > 1 or len(er) > 1 else (change, change)
        met = change <= -30 and (ac - ar) * 100 >= -0.3
        verdicts.append(met)
        lines.append(
            f"- {int(s * 100)}% sparsity: CigL's test ECE {mean(ec):.4f} vs RigL's {mean(er):.4f}"
            f", a change of **{change:+.1f}%** (95% bootstrap interval [{lo:+.1f}, {hi:+.1f}]); "
            f"accuracy {100 * ac:.2f}% vs {100 * ar:.2f}% ({100 * (ac - ar):+.2f} points); "
            f"seeds: {len(cig)} CigL, {len(rig)} RigL. Target (ECE at least 30% lower, accuracy "
            f"within 0.3 points): **{'met' if met else 'not met'}**.")
    return lines, verdicts


def overconfidence(final):
    """Mean confidence minus accuracy on the test set (> 0: over-confident), from the
    reliability bins that final.json stores."""
    rel = final["test"]["reliability"]
    n = sum(rel["count"])
    gap = sum(c * (cf - ac) for c, cf, ac in zip(rel["count"], rel["confidence"], rel["accuracy"])
              if c)
    return gap / n if n else 0.0


COLLAPSED = 0.2  # test accuracy at most twice chance (10 classes): the run did not train


def part_runs(runs, part):
    key = os.sep + "runs" + os.sep + part + os.sep
    return [r for r in runs if key in r["dir"] + os.sep]


def summary(runs, title, models, sparsities):
    """CigL against RigL (and dense) per model and sparsity, with collapsed runs named."""
    if not runs:
        return [f"## {title}\n", "No finished run yet.\n"]
    out = [f"## {title}\n",
           "Per model and sparsity: mean test accuracy and ECE over seeds of RigL and CigL (the "
           "recipe's options), CigL's ECE change relative to RigL with a 95% bootstrap interval, "
           "and the over-confidence gap (mean confidence minus accuracy; > 0 is over-confident). "
           f"A run whose test accuracy is at most {COLLAPSED:.0%} (twice chance) did not train; "
           "its near-zero ECE means nothing, so such groups are marked and not compared.\n",
           "| model | sparsity | RigL acc (%) | CigL acc (%) | RigL ECE | CigL ECE | ECE change (%) "
           "| RigL gap | CigL gap | CigL P=0.1: acc (%), ECE change (%) | collapsed runs |",
           "|---|---:|---:|---:|---:|---:|---|---:|---:|---|---|"]
    def change(eces, base):  # ECE change against base in %, with its bootstrap interval
        c = 100 * (mean(eces) - mean(base)) / mean(base)
        lo, hi = bootstrap_change(eces, base)
        return f"{c:+.1f} [{lo:+.1f}, {hi:+.1f}]"

    for model in models:
        mine = [r for r in runs if r["config"].get("model") == model]
        dense = [r["final"] for r in mine if plain(r, "dense")]
        if dense:
            out.append(f"| {model} | dense | {100 * mean([f['test_accuracy'] for f in dense]):.2f}"
                       f" | | {mean([f['test_ece'] for f in dense]):.4f} | | | "
                       f"{mean([overconfidence(f) for f in dense]):+.4f} | | | |")
        for s in sparsities:
            rig = [r for r in mine if plain(r, "rigl") and r["config"]["sparsity"] == s]
            cig = [r for r in mine if plain(r, "cigl") and r["config"]["sparsity"] == s]
            if not rig or not cig:
                continue
            hi_rate = [r for r in mine if cigl_at_rate(r, PAPER_RATE) and
                       r["config"]["sparsity"] == s]
            dead = [r for r in rig + cig + hi_rate if r["final"]["test_accuracy"] <= COLLAPSED]
            fr = [r["final"] for r in rig]
            fc = [r["final"] for r in cig]
            er = [f["test_ece"] for f in fr]
            ec = [f["test_ece"] for f in fc]
            vs_rigl = "collapsed: not compared" if dead else change(ec, er)
            p01 = "collapsed: not compared" if dead else "not run yet"
            if hi_rate and not dead:
                p01 = (f"{100 * mean([r['final']['test_accuracy'] for r in hi_rate]):.2f}, "
                       f"{change([r['final']['test_ece'] for r in hi_rate], er)} "
                       f"({len(hi_rate)} seeds)")
            out.append(
                f"| {model} | {s:g} | {100 * mean([f['test_accuracy'] for f in fr]):.2f} | "
                f"{100 * mean([f['test_accuracy'] for f in fc]):.2f} | {mean(er):.4f} | "
                f"{mean(ec):.4f} | {vs_rigl} | {mean([overconfidence(f) for f in fr]):+.4f} | "
                f"{mean([overconfidence(f) for f in fc]):+.4f} | {p01} | {len(dead) or ''} |")
    collapsed = sorted(f"{r['config']['model']}/{os.path.basename(r['dir'])}" for r in runs
                       if r["config"].get("model") in models
                       and r["final"]["test_accuracy"] <= COLLAPSED)
    if collapsed:
        out.append("\nRuns that did not train (test accuracy at most twice chance), in every "
                   "method: " + ", ".join(f"`{d}`" for d in collapsed) + ".")
    out.append("")
    return out


def planned(results):
    counts = {}
    for part in ("reference", "breadth", "wrn", "long"):
        p = os.path.join(results, "plans", part + ".txt")
        if os.path.exists(p):
            with open(p) as f:
                counts[part] = sum(1 for l in f if l.strip() and not l.startswith("#"))
    return counts


def machines(runs):
    seen = {}
    for r in runs:
        for l in r["launches"]:
            key = (l.get("host", "?"), l.get("nproc", "?"), l.get("cpu", "?"))
            seen[key] = seen.get(key, 0) + 1
        if not r["launches"]:
            key = (r["final"].get("machine", "?"), "", "")
            seen[key] = seen.get(key, 0) + 1
    return seen


def main():
    results = sys.argv[1]
    runs = load_runs(os.path.join(results, "runs"))
    plan = planned(results)
    out = []
    out.append("# Results: does CigL keep sparse models calibrated? (cigl on Fashion-MNIST)\n")
    out.append("Made by `make reproduce` (`jobs/reproduce.sh`, then `jobs/results_page.sh`, which "
               "runs `cigl report` on the collected runs); the plan, its recipe and its "
               "core-hours are in [PLAN.md](PLAN.md). Every run's `final.json`, `config.json`, "
               "`metrics.jsonl` and `launches.jsonl` are committed under `runs/`, so this page "
               "rebuilds without retraining (`jobs/results_page.sh`). No hyper-parameter was "
               "tuned: the recipe is the CigL authors' defaults, fixed before any run; the "
               "validation split (5000 training samples) is used only for temperature scaling.\n")
    out.append("## Headline (resnet20, reference subset)\n")
    lines, _ = headline(runs)
    out.extend(lines)
    out.append("\nThese resnet20 runs are 8 epochs long; so are the breadth runs, where every model "
               "came out nearly calibrated. The 40-epoch part (\"What longer training shows\", "
               "below) is the over-confident regime the paper is about.")
    done = {}
    for r in runs:
        part = os.path.relpath(r["dir"], os.path.join(results, "runs")).split(os.sep)[0]
        done[part] = done.get(part, 0) + 1
    out.append("\nProgress: " + ", ".join(
        f"{part} {done.get(part, 0)}/{n} runs" for part, n in plan.items()) + ".\n")
    out.extend(summary(part_runs(runs, "breadth"), "What the breadth part shows (8 epochs)",
                       ("mlp", "lenet5"), (0.8, 0.9, 0.95, 0.99)))
    out.extend(summary(part_runs(runs, "long"), "What longer training shows (40 epochs)",
                       ("mlp", "lenet5"), (0.8, 0.9, 0.95)))
    for part, title, what in PARTS:
        rep = os.path.join(results, "report", part, "report.md")
        if not os.path.exists(rep):
            out.append(f"## {title}\n\nNo finished run yet: {what}\n")
            continue
        with open(rep) as f:
            body = f.read().split("\n", 1)[1]  # drop report.md's own title
        body = body.replace("](sparsity.svg)", f"](report/{part}/sparsity.svg)")
        body = body.replace("\n## ", "\n### ")
        out.append(f"## {title}\n\n{what}\n{body}")
        if part == "reference":
            figs = []
            for label in ("dense-seed0", "rigl-s0.95-seed0", "cigl-s0.95-seed0"):
                svg = os.path.join("runs", "reference", label, "reliability.svg")
                if os.path.exists(os.path.join(results, svg)):
                    figs.append(f"![{label}]({svg})")
            if figs:
                out.append("Reliability diagrams (test set, seed 0): dense, RigL 95%, CigL 95%\n\n"
                           + " ".join(figs) + "\n")
    out.append("## How these were made\n")
    commits = sorted({r["config"].get("provenance", {}).get("git_commit", "?") for r in runs})
    out.append("- Command: `make reproduce` (reference part; `jobs/reproduce.sh --part breadth`, "
               "`--part long` and `--part wrn` for the others), resumable and skipping finished runs.")
    out.append(f"- cigl commits that produced the runs: {', '.join(commits) or 'none yet'}.")
    for key, what in (("compiler", "gcc"), ("build_flags", "build flags"),
                      ("openblas_config", "OpenBLAS"), ("hdf5_version", "HDF5"),
                      ("mpi_version", "MPI")):
        vals = sorted({str(r["config"].get("provenance", {}).get(key, "?")) for r in runs})
        out.append(f"- {what}: {', '.join(vals)}.")
    for (host, cores, cpu), n in sorted(machines(runs).items()):
        out.append(f"- Machine: {host}{', ' + str(cores) + ' cores' if cores else ''}"
                   f"{', ' + cpu if cpu else ''}: {n} launch(es).")
    with open(os.path.join(results, "README.md"), "w") as f:
        f.write("\n".join(out) + "\n")
    print(f"results_page.py: {len(runs)} runs; wrote {os.path.join(results, 'README.md')}")


if __name__ == "__main__":
    main()
