#!/usr/bin/python3
"""Independent reference for the layer-wise non-zero counts of docs/method.md.

Written from docs/method.md, not from src/method/sparsity.c:
  * target = round(density * total prunable weights), round half away from zero (C's lround).
    Python's round() rounds half to even, so it is not used: we take floor(x) and add 1 when
    x - floor(x) >= 0.5 (for x >= 0 this is lround; x - floor(x) is exact in doubles).
  * uniform: ideal count x_l = density * size_l.
  * ER / ERK: x_l = eps * r_l * size_l, r_l = sum(dims) / prod(dims), ERK over all the weight's
    dims (out, in, kh, kw for convolutions; out, in for linear), ER over out and in only. eps
    solves sum(x_l) = target; while eps * max(r_l) > 1 the layers whose r_l equals the maximum
    become dense (x_l = size_l) and eps is solved again over the rest.
  * integer counts: floor(x_l), the remainder one each to the largest x_l - floor(x_l), ties to
    the lower index.
  * a layer left at 0 is raised to 1; one weight each is taken back from layers with count > 1
    and the smallest fractional part (x_l - floor(x_l), the ideal count's), ties to the higher
    index. docs/method.md does not say what happens when there are more layers at 0 than such donors
    (every donor has given one): here, as src/sparsity.c does, each further weight comes from
    the highest-index layer with count > 1; when no layer has count > 1 (target < number of
    layers) the rest stay at 0.

Arithmetic: exact rationals (fractions.Fraction), the density read as the decimal it prints as
(repr: 0.1 -> 1/10), or as 1 - sparsity with the sparsity read that way (the program computes
density = 1 - sparsity in doubles: 0.09999999999999998 for 0.9). So the rounding and the tie
rules above apply to the numbers a user means, not to their rounding noise: at density 0.1 the
ideal counts 230.4 and 3686.4 tie (lower index first), and round(0.1 * 25) = 3. The floor(x + 1/2)
caveat for Python's round does not arise: x >= 0 is rounded as floor(x) + (x - floor(x) >= 1/2),
exactly. With --double (double=True) the same code runs on IEEE doubles in the natural order
(sums left to right, eps * r_l * size_l left to right), for comparison: --check counts the cases
where plain doubles would give other counts (ties ordered by rounding noise).

Usage:
  sparsity_reference.py DIST DENSITY [--double] < shapes.json   -> JSON list of counts
      shapes.json: a JSON list of weight shapes, e.g. [[300, 784], [16, 3, 3, 3]]
  sparsity_reference.py --check dump.json
      dump.json: {"cases": [{"name", "dist", "density", ["sparsity",] "shapes", "counts"}]}
      (written by build/tests/test_sparsity with CIGL_DUMP_COUNTS=path; "sparsity" when the
      density was computed as 1 - sparsity); compares every case exactly and prints
      "N passed, N failed" last; exit status 1 on any failure.
  sparsity_reference.py --selftest
"""
import json
import math
import sys
from fractions import Fraction


def lround_nonneg(x):
    """Round half away from zero for x >= 0 (float or Fraction), as an int."""
    f = math.floor(x)
    return int(f) + (1 if x - f >= Fraction(1, 2) else 0)


def prod(values):
    p = 1
    for v in values:
        p *= v
    return p


def density_value(density, sparsity, exact):
    """The density as an exact decimal Fraction, or as the program's double."""
    if sparsity is not None:
        return 1 - Fraction(repr(float(sparsity))) if exact else 1.0 - float(sparsity)
    return Fraction(repr(float(density))) if exact else float(density)


def ideal_counts(shapes, dist, d, exact):
    """The real-valued counts x_l (floats, or Fractions when exact) and the target, for the
    density d (a float, or a Fraction when exact)."""
    sizes = [prod(s) for s in shapes]
    total = sum(sizes)
    target = lround_nonneg(d * total)
    if dist == "uniform":
        return [d * s for s in sizes], target
    if dist not in ("er", "erk"):
        raise ValueError("unknown distribution %r" % dist)
    ratios = []
    for s in shapes:
        dims = list(s) if dist == "erk" else list(s[:2])
        ratios.append(Fraction(sum(dims), prod(dims)) if exact else sum(dims) / prod(dims))
    dense = [False] * len(shapes)
    while True:
        rest = [l for l in range(len(shapes)) if not dense[l]]
        if not rest:
            break
        budget = target - sum(sizes[l] for l in range(len(shapes)) if dense[l])
        weight = 0
        for l in rest:
            weight = weight + ratios[l] * sizes[l]
        eps = budget / weight
        rmax = max(ratios[l] for l in rest)
        if eps * rmax > 1:
            for l in rest:
                if ratios[l] == rmax:
                    dense[l] = True
            continue
        break
    x = []
    for l in range(len(shapes)):
        if dense[l]:
            x.append(Fraction(sizes[l]) if exact else float(sizes[l]))
        else:
            x.append(eps * ratios[l] * sizes[l])
    return x, target


def layer_counts(shapes, dist, density, double=False, sparsity=None):
    """Counts for density (or, when sparsity is given, 1 - sparsity)."""
    exact = not double
    shapes = [list(s) for s in shapes]
    n = len(shapes)
    sizes = [prod(s) for s in shapes]
    x, target = ideal_counts(shapes, dist, density_value(density, sparsity, exact), exact)
    floors = [int(math.floor(v)) for v in x]
    fracs = [v - math.floor(v) for v in x]
    counts = list(floors)
    remainder = target - sum(floors)
    if remainder < 0 or remainder > n:
        raise ValueError("remainder %d outside [0, %d]" % (remainder, n))
    by_largest_frac = sorted(range(n), key=lambda l: (-fracs[l], l))
    for l in by_largest_frac[:remainder]:
        counts[l] += 1
    # raise layers at 0 to 1, one weight back from each donor in donor order (see docstring)
    zeros = [l for l in range(n) if counts[l] == 0]
    donors = sorted((l for l in range(n) if counts[l] > 1), key=lambda l: (fracs[l], -l))
    for d in donors:
        if not zeros:
            break
        counts[zeros.pop(0)] = 1
        counts[d] -= 1
    # more layers at 0 than donors: not in docs/method.md; src/method/sparsity.c takes the weights,
    # one at a time, from the highest-index layer with count > 1
    while zeros:
        rich = [l for l in range(n) if counts[l] > 1]
        if not rich:
            break  # target < number of layers: some layers stay at 0
        counts[zeros.pop(0)] = 1
        counts[rich[-1]] -= 1
    for l in range(n):
        if counts[l] > sizes[l]:
            raise ValueError("layer %d: count %d > size %d" % (l, counts[l], sizes[l]))
    return counts


def check(path):
    with open(path) as f:
        dump = json.load(f)
    passed = failed = notes = 0
    for case in dump["cases"]:
        sparsity = case.get("sparsity")
        label = "%s %s %s" % (case["name"], case["dist"], "density=%r" % case["density"]
                              if sparsity is None else "sparsity=%r" % sparsity)
        try:
            want = layer_counts(case["shapes"], case["dist"], case["density"],
                                sparsity=sparsity)
        except ValueError as e:
            print("FAIL %s: reference refused: %s" % (label, e))
            failed += 1
            continue
        got = case["counts"]
        if got == want:
            passed += 1
        else:
            failed += 1
            diff = [(l, got[l], want[l]) for l in range(len(want))
                    if l >= len(got) or got[l] != want[l]]
            print("FAIL %s: %d layers differ (layer, C, reference): %s"
                  % (label, len(diff), diff[:10]))
        try:
            plain = layer_counts(case["shapes"], case["dist"], case["density"], double=True,
                                 sparsity=sparsity)
        except ValueError:
            plain = None
        if plain != want:
            notes += 1
    print("%d cases compared; plain double arithmetic would give other counts in %d of them"
          % (passed + failed, notes))
    return passed, failed


def selftest():
    """Hand-computed cases (arithmetic in the comments) for the reference itself."""
    cases = [
        # mlp ERK 0.1: sizes 235200, 30000, 1000, target 26620; r*size = 1084, 400, 110,
        # eps = 26620/1594 = 16.70, eps*r3 = 16.70*0.11 > 1 -> fc3 dense; eps = 25620/1484 =
        # 17.264, eps*r2 = 0.23 <= 1; x = 18714.340, 6905.660, 1000; remainder 1 -> fc2.
        ([[300, 784], [100, 300], [10, 100]], "erk", 0.1, [18714, 6906, 1000]),
        # ER = ERK for linear layers
        ([[300, 784], [100, 300], [10, 100]], "er", 0.1, [18714, 6906, 1000]),
        # uniform 0.15 on three layers of 10: x = 1.5 each, target = round(4.5) = 5 (half away
        # from zero; banker's rounding would give 4), remainder 2 -> layers 0 and 1 (ties low).
        ([[10, 1], [10, 1], [10, 1]], "uniform", 0.15, [2, 2, 1]),
        # uniform 0.001: x = 0.002, 1000 -> 0, 1000; the zero layer takes one from layer 1.
        ([[2, 1], [1000, 1000]], "uniform", 0.001, [1, 999]),
        # uniform 0.001, sizes 3, 10500, 5, 6170, 4: x = .003, 10.5, .005, 6.17, .004,
        # target round(16.682) = 17, floors sum 16, remainder -> layer 1 (11). Zeros 0, 2, 4;
        # donors by smallest frac: layer 3 (.17), layer 1 (.5); zero 4 then takes from the
        # highest-index layer with count > 1 (the unspecified case): layer 3 again.
        ([[3, 1], [1500, 7], [5, 1], [1234, 5], [2, 2]], "uniform", 0.001, [1, 10, 1, 4, 1]),
        # same with the donors' fractions swapped: sizes 3, 6170, 5, 10500, 4 -> x = .003, 6.17,
        # .005, 10.5, .004; layer 3 gets the remainder (11); donors: layer 1 (.17), layer 3
        # (.5); zero 4 then takes from layer 3 (highest index), not layer 1 again.
        ([[3, 1], [1234, 5], [5, 1], [1500, 7], [2, 2]], "uniform", 0.001, [1, 5, 1, 9, 1]),
        # target < layers: uniform 0.1 on four layers of 3 and one of 5: x = .3 x4, .5, target
        # round(1.7) = 2; remainder 2 -> layer 4 (.5), then layer 0 (.3, lowest index);
        # zeros 1, 2, 3 and no layer with count > 1: they stay at 0.
        ([[3, 1], [3, 1], [3, 1], [3, 1], [5, 1]], "uniform", 0.1, [1, 0, 0, 0, 1]),
        # ERK 0.5, r = 1.5 ([2,2,1,1]: 6/4) and 1.0 ([2,2]: 4/4) and 0.02 ([100,100]):
        # target 5004, eps = 5004/(6+4+200) = 23.8 -> the conv dense, eps = 5000/204 = 24.5 ->
        # [2,2] dense, eps = 4996/200 = 24.98, *0.02 = 0.4996 -> x = 4996.
        ([[2, 2, 1, 1], [2, 2], [100, 100]], "erk", 0.5, [4, 4, 4996]),
        # ER of the same: the conv's r is (2+2)/4 = 1 = the linear's: both dense at once.
        ([[2, 2, 1, 1], [2, 2], [100, 100]], "er", 0.5, [4, 4, 4996]),
    ]
    passed = failed = 0
    for shapes, dist, density, want in cases:
        got = layer_counts(shapes, dist, density)
        if got == want:
            passed += 1
        else:
            failed += 1
            print("FAIL selftest %s %s %r: got %s, want %s" % (shapes, dist, density, got, want))
    # sparsity 0.9 on sizes 15 and 10: density 1/10, target round(2.5) = 3 (in doubles
    # 1 - 0.9 = 0.09999999999999998 and 25 times that is 2.4999999999999996: 2); x = 1.5, 1:
    # floors 1, 1, remainder 1 to layer 0.
    got = layer_counts([[5, 3], [5, 2]], "uniform", None, sparsity=0.9)
    if got == [2, 1]:
        passed += 1
    else:
        failed += 1
        print("FAIL selftest sparsity 0.9 on sizes 15, 10: got %s, want [2, 1]" % got)
    return passed, failed


def main(argv):
    if len(argv) >= 2 and argv[1] == "--selftest":
        p, f = selftest()
        print("%d passed, %d failed" % (p, f))
        return 1 if f else 0
    if len(argv) == 3 and argv[1] == "--check":
        p1, f1 = selftest()
        p2, f2 = check(argv[2])
        print("%d passed, %d failed" % (p1 + p2, f1 + f2))
        return 1 if f1 + f2 else 0
    if len(argv) in (3, 4) and (len(argv) == 3 or argv[3] == "--double"):
        shapes = json.load(sys.stdin)
        print(json.dumps(layer_counts(shapes, argv[1], float(argv[2]), len(argv) == 4)))
        return 0
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
