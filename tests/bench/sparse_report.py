#!/usr/bin/python3
"""Table and SVG plot of the sparse-kernel benchmark (tests/bench/bench_sparse.sh).

Reads "BENCH {json}" lines (kinds sparse_step from bench_sparse, masked_step from
torch_bench.py --masked) from the files given, writes a markdown table to --md and a plot of
the speedup of sparse compute (--kernels sparse and auto) over our dense kernels against
sparsity, training and inference side by side, to --svg. With several lines for the same model
and sparsity (repeated runs), the per-run ratios are kept and their median is reported."""
import argparse
import json
import statistics
import sys


def load(paths):
    cigl, torch, sizes = {}, {}, {}
    for p in paths:
        with open(p) as f:
            for line in f:
                if not line.startswith("BENCH "):
                    continue
                d = json.loads(line[6:])
                key = (d.get("model"), round(float(d.get("sparsity", 0)), 4))
                if d.get("kind") == "sparse_step":
                    cigl.setdefault(key, []).append(d)
                elif d.get("kind") == "masked_step":
                    torch.setdefault(key, []).append(d)
                elif d.get("kind") == "sparse_size":
                    sizes[key] = d
    return cigl, torch, sizes


def med(v):
    v = [x for x in v if x is not None]
    return statistics.median(v) if v else None


def fmt(v, f="%.2f"):
    return "n/a" if v is None else f % v


def rows(cigl, torch, sizes):
    out, files = [], sizes
    for key in sorted(cigl, key=lambda k: (["mlp", "lenet5", "resnet20", "wrn-22-2"].index(k[0])
                                           if k[0] in ["mlp", "lenet5", "resnet20", "wrn-22-2"]
                                           else 9, k[1])):
        runs, t = cigl[key], torch.get(key, [])
        choice = runs[-1].get("auto_choice", "").split(",")
        r = {"model": key[0], "sparsity": key[1],
             "auto": "%d of %d" % (choice.count("sparse"), len(choice))}
        for m in ("dense", "sparse", "auto"):
            r["train_" + m] = med([d["train_%s_ms" % m] for d in runs])
            r["infer_" + m] = med([d["infer_%s_ms" % m] for d in runs])
        # ratios within each run, then the median over runs
        r["train_x"] = med([d["train_dense_ms"] / d["train_sparse_ms"] for d in runs])
        r["train_auto_x"] = med([d["train_dense_ms"] / d["train_auto_ms"] for d in runs])
        r["infer_x"] = med([d["infer_dense_ms"] / d["infer_sparse_ms"] for d in runs])
        r["infer_auto_x"] = med([d["infer_dense_ms"] / d["infer_auto_ms"] for d in runs])
        # PyTorch under each OpenMP wait setting it was run with (bench_sparse.sh), its best:
        # passive threads suit its mlp, a short spin its convolutions
        waits = sorted({d.get("omp_wait", "default") for d in t})
        r["torch_train"] = min((med([d["train_ms"] for d in t if d.get("omp_wait", "default") == w])
                                for w in waits), default=None)
        r["torch_infer"] = min((med([d["infer_ms"] for d in t if d.get("omp_wait", "default") == w])
                                for w in waits), default=None)
        best_train = min(r["train_sparse"], r["train_auto"])
        best_infer = min(r["infer_sparse"], r["infer_auto"])
        r["train_vs_torch"] = r["torch_train"] / best_train if r["torch_train"] else None
        r["infer_vs_torch"] = r["torch_infer"] / best_infer if r["torch_infer"] else None
        sizes = [d["compact_file_bytes"] / d["dense_file_bytes"] for d in runs
                 if d.get("dense_file_bytes", -1) > 0 and d.get("compact_file_bytes", -1) > 0]
        if key in files:  # sizes from a later build's --sizes-only run win (deterministic)
            d = files[key]
            sizes = [d["compact_file_bytes"] / d["dense_file_bytes"]]
        r["compact"] = med(sizes)
        r["runs"] = len(runs)
        out.append(r)
    return out


def table(rs):
    lines = ["| model | sparsity | auto: sparse layers | train ms dense / sparse / auto | train speedup "
             "sparse (auto) | torch masked train ms | train vs torch | inference ms dense / "
             "sparse / auto | inference speedup sparse (auto) | torch inference ms | inference "
             "vs torch | compact file |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rs:
        lines.append("| %s | %.2f | %s | %s / %s / %s | **%s** (%s) | %s | %s | %s / %s / %s | "
                     "**%s** (%s) | %s | %s | %s |" % (
                         r["model"], r["sparsity"], r["auto"], fmt(r["train_dense"], "%.1f"),
                         fmt(r["train_sparse"], "%.1f"), fmt(r["train_auto"], "%.1f"),
                         fmt(r["train_x"]), fmt(r["train_auto_x"]),
                         fmt(r["torch_train"], "%.1f"), fmt(r["train_vs_torch"]),
                         fmt(r["infer_dense"], "%.2f"), fmt(r["infer_sparse"], "%.2f"),
                         fmt(r["infer_auto"], "%.2f"), fmt(r["infer_x"]),
                         fmt(r["infer_auto_x"]), fmt(r["torch_infer"], "%.2f"),
                         fmt(r["infer_vs_torch"]),
                         "n/a" if r["compact"] is None else "%.1f%%" % (100 * r["compact"])))
    return "\n".join(lines) + "\n"


def svg(rs):
    models = []
    for r in rs:
        if r["model"] not in models:
            models.append(r["model"])
    colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b"]
    sp = sorted({r["sparsity"] for r in rs})
    W, H, pw, ph, top, left = 900, 380, 360, 250, 50, 70
    ymax = max([1.0] + [r[k] for r in rs for k in ("train_x", "infer_x", "train_auto_x",
                                                    "infer_auto_x") if r[k]])
    ymax = float(int(ymax) + 1)
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
           'font-family="sans-serif" font-size="12">' % (W, H),
           '<rect width="100%" height="100%" fill="white"/>']

    def xpos(i, x0):
        return x0 + (pw * (i + 0.5) / len(sp))

    def ypos(v):
        return top + ph - ph * v / ymax

    for p, (key, akey, title) in enumerate((("train_x", "train_auto_x", "training step"),
                                            ("infer_x", "infer_auto_x", "inference"))):
        x0 = left + p * (pw + 80)
        out.append('<text x="%.1f" y="30" text-anchor="middle" font-weight="bold">%s: dense '
                   'time / sparse time</text>' % (x0 + pw / 2, title))
        out.append('<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#444"/>'
                   % (x0, top, pw, ph))
        for v in range(0, int(ymax) + 1):
            y = ypos(v)
            out.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="%s"/>'
                       % (x0, y, x0 + pw, y, "#888" if v == 1 else "#ddd"))
            out.append('<text x="%d" y="%.1f" text-anchor="end">%dx</text>' % (x0 - 5, y + 4, v))
        for i, s in enumerate(sp):
            out.append('<text x="%.1f" y="%d" text-anchor="middle">%g%%</text>'
                       % (xpos(i, x0), top + ph + 18, 100 * s))
        out.append('<text x="%.1f" y="%d" text-anchor="middle">sparsity</text>'
                   % (x0 + pw / 2, top + ph + 36))
        for mi, m in enumerate(models):
            c = colors[mi % len(colors)]
            for k, dash in ((key, ""), (akey, ' stroke-dasharray="5,4"')):
                pts = [(xpos(sp.index(r["sparsity"]), x0), ypos(r[k])) for r in rs
                       if r["model"] == m and r[k]]
                if pts:
                    out.append('<polyline fill="none" stroke="%s" stroke-width="2"%s points="%s"/>'
                               % (c, dash, " ".join("%.1f,%.1f" % q for q in pts)))
                for q in pts:
                    out.append('<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>' % (q[0], q[1], c))
    ly = top + ph + 56
    for mi, m in enumerate(models):
        c = colors[mi % len(colors)]
        x = left + mi * 130
        out.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"/>'
                   % (x, ly, x + 24, ly, c))
        out.append('<text x="%d" y="%d">%s</text>' % (x + 30, ly + 4, m))
    out.append('<text x="%d" y="%d">solid: --kernels sparse, dashed: --kernels auto; batch 128, '
               '2 threads; medians of per-run ratios</text>' % (left, ly + 22))
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("logs", nargs="+")
    ap.add_argument("--md", required=True)
    ap.add_argument("--svg", required=True)
    a = ap.parse_args()
    cigl, torch, sizes = load(a.logs)
    if not cigl:
        print("sparse_report: no sparse_step lines in " + " ".join(a.logs), file=sys.stderr)
        return 1
    rs = rows(cigl, torch, sizes)
    with open(a.md, "w") as f:
        f.write(table(rs))
    with open(a.svg, "w") as f:
        f.write(svg(rs))
    sys.stdout.write(table(rs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
