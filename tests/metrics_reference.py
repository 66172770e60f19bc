#!/usr/bin/python3
"""Independent reference for cigl's calibration metrics, written from docs/metrics.md ("The
metrics") with numpy, not from the C code.

    metrics_reference.py PREDICTIONS.h5 [--temperature T] [--fit-temperature]

Reads `log_probs` (N x K float64), optional `logits` (N x K float32) and `labels` (N int32). When
logits are present the metrics are computed from their float64 log-softmax (divided by T with
--temperature), otherwise from the stored log-probabilities. Prints one JSON object.
"""
import argparse
import json
import math

import h5py
import numpy as np

NBINS = 15
NBINS10 = 10

# numpy's vectorised exp and log are not correctly rounded on AVX-512 machines (about a quarter
# of the results differ from libm by one ulp), which moves confidences that sit exactly on a bin
# edge (equal logits over 3 classes: c = 1/3 = 5/15) into the next bin. The metrics therefore
# use libm's exp and log elementwise, as C code does.
_exp = np.frompyfunc(math.exp, 1, 1)
_log = np.frompyfunc(math.log, 1, 1)


def exp(a):
    return _exp(a).astype(np.float64)


def log(a):
    return _log(a).astype(np.float64)


def log_softmax(z, fast=False):
    z = np.asarray(z, dtype=np.float64)
    zmax = z.max(axis=1, keepdims=True)
    if fast:
        return z - zmax - np.log(np.exp(z - zmax).sum(axis=1, keepdims=True))
    return z - zmax - log(exp(z - zmax).sum(axis=1, keepdims=True))


def bins15(c):
    """1-based, upper edge inclusive: max(1, ceil(15 c)) in double."""
    return np.maximum(1, np.ceil(15.0 * c)).astype(np.int64)


def bins10(c):
    """0-based, lower edge inclusive: min(9, floor(10 c)) in double."""
    return np.minimum(9, np.floor(10.0 * c)).astype(np.int64)


def binned_gaps(conf, hit, which, labels):
    """[(count, mean confidence, mean hit)] for each bin label in `labels` (None if empty)."""
    out = []
    for b in labels:
        sel = which == b
        n = int(sel.sum())
        out.append((n, float(conf[sel].mean()), float(hit[sel].mean())) if n else (0, None, None))
    return out


def expected_error(conf, hit, which, labels):
    total = len(conf)
    return sum(n / total * abs(a - c) for n, c, a in binned_gaps(conf, hit, which, labels) if n)


def metrics(logp, y):
    n, k = logp.shape
    rows = np.arange(n)
    p = exp(logp)
    pred = np.argmax(logp, axis=1)  # first maximum on ties
    conf = exp(logp[rows, pred])
    right = (pred == y).astype(np.float64)
    onehot = np.zeros((n, k))
    onehot[rows, y] = 1.0

    out = {"n": n, "classes": k}
    out["accuracy"] = float(right.mean())
    out["nll"] = float(-logp[rows, y].mean())
    out["brier"] = float(((p - onehot) ** 2).sum(axis=1).mean())

    b15 = bins15(conf)
    table = binned_gaps(conf, right, b15, range(1, NBINS + 1))
    out["ece"] = expected_error(conf, right, b15, range(1, NBINS + 1))
    out["ece10"] = expected_error(conf, right, bins10(conf), range(NBINS10))
    out["mce"] = max(abs(a - c) for cnt, c, a in table if cnt)

    order = np.argsort(conf, kind="stable")
    aece = 0.0
    for g in np.array_split(order, NBINS):
        if len(g):
            aece += len(g) / n * abs(right[g].mean() - conf[g].mean())
    out["adaptive_ece"] = aece

    out["classwise_ece"] = float(np.mean([
        expected_error(p[:, j], (y == j).astype(np.float64), bins15(p[:, j]),
                       range(1, NBINS + 1)) for j in range(k)]))

    desc = np.argsort(-conf, kind="stable")  # confidence descending, ties by index ascending
    right_desc = right[desc]
    for pct in (50, 80, 90):
        keep = -(-pct * n // 100)  # ceil(pct n / 100) in integers
        out["accuracy_at_coverage_%d" % pct] = float(right_desc[:keep].mean())
    errors = np.cumsum(1.0 - right_desc)
    out["aurc"] = float(np.mean(errors / np.arange(1, n + 1)))

    out["reliability"] = {
        "count": [cnt for cnt, _, _ in table],
        "confidence": [c for _, c, _ in table],
        "accuracy": [a for _, _, a in table],
    }
    return out


def mean_nll(z, y, t):
    logp = log_softmax(z / t, fast=True)
    return float(-logp[np.arange(len(y)), y].mean())


def fit_temperature(z, y):
    """argmin over log T in [-5, 5] of the mean NLL of softmax(z / T), by bisection on the sign
    of d NLL / d log T = mean(z_y - E_p[z]) / T (the NLL is unimodal in log T). T = 1 when the
    minimiser is no better than T = 1."""
    z = np.asarray(z, dtype=np.float64)
    rows = np.arange(len(y))

    def slope_sign(u):
        t = math.exp(u)
        p = np.exp(log_softmax(z / t, fast=True))  # the root needs no last-ulp exactness
        return np.mean(z[rows, y] - (p * z).sum(axis=1))

    lo, hi = -5.0, 5.0
    if slope_sign(lo) >= 0:
        u = lo
    elif slope_sign(hi) <= 0:
        u = hi
    else:
        for _ in range(200):
            mid = 0.5 * (lo + hi)
            if mid in (lo, hi):
                break
            if slope_sign(mid) > 0:
                hi = mid
            else:
                lo = mid
        u = 0.5 * (lo + hi)
    t = math.exp(u)
    return t if mean_nll(z, y, t) < mean_nll(z, y, 1.0) else 1.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("predictions")
    ap.add_argument("--temperature", type=float)
    ap.add_argument("--fit-temperature", action="store_true")
    args = ap.parse_args()
    with h5py.File(args.predictions, "r") as f:
        stored = f["log_probs"][...]
        y = f["labels"][...].astype(np.int64)
        z = f["logits"][...].astype(np.float64) if "logits" in f else None
    out = {}
    if z is not None:
        out["stored_log_probs_max_abs_diff"] = float(np.max(np.abs(log_softmax(z) - stored)))
        logp = log_softmax(z / args.temperature) if args.temperature else log_softmax(z)
    else:
        logp = stored
    out.update(metrics(logp, y))
    if args.fit_temperature:
        out["temperature"] = fit_temperature(z, y)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
