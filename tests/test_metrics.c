/* Calibration metrics against hand-computed cases, streaming vs one-shot, merging, bad input,
 * temperature scaling, the reliability SVG and the predictions file.
 *
 * `test_metrics --reference DIR` instead writes random cases (DIR/<case>.h5 predictions files
 * and DIR/<case>.json metrics, DIR/<case>.svg) for tests/t_metrics_reference.sh, which checks
 * them against the independent tests/metrics_reference.py. */
#include "check.h"

#include "cigl/error.h"
#include "cigl/metrics.h"
#include "cigl/rng.h"

#include <hdf5.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TEST_PURPOSE 1000u /* our own Philox stream, unrelated to training's purposes */

/* ---------------------------------------------------------------- helpers */

/* Adds rows of probabilities (as their logs) one sample per call (streaming, batch size 1). */
static int add_probs(MetricsAcc *acc, const double *p, const int32_t *y, int n, int K)
{
    double *lp = malloc(sizeof(double) * (size_t)K);
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        for (int k = 0; k < K; k++) lp[k] = log(p[i * K + k]);
        rc = metrics_add_log_probs(acc, lp, y + i, 1);
    }
    free(lp);
    return rc;
}

static Metrics metrics_of_probs(const double *p, const int32_t *y, int n, int K)
{
    MetricsAcc acc;
    Metrics m;
    memset(&m, 0, sizeof(m));
    CHECK(metrics_init(&acc, K, 0) == 0, "init");
    CHECK(add_probs(&acc, p, y, n, K) == 0, "add");
    CHECK(metrics_compute(&acc, &m) == 0, "compute");
    metrics_free(&acc);
    return m;
}

static Metrics metrics_of_logits(const float *z, const int32_t *y, int n, int K)
{
    Metrics m;
    memset(&m, 0, sizeof(m));
    CHECK(metrics_from_logits(z, y, (size_t)n, K, &m) == 0, "metrics_from_logits");
    return m;
}

/* Every field within tol (NaN equals NaN). */
static void check_same_metrics(const Metrics *a, const Metrics *b, double tol, const char *what)
{
    CHECK(a->n == b->n && a->classes == b->classes, "%s: n/classes", what);
    const double x[] = {a->accuracy, a->nll, a->brier, a->ece, a->ece10, a->mce, a->adaptive_ece,
                        a->classwise_ece, a->coverage_accuracy[0], a->coverage_accuracy[1],
                        a->coverage_accuracy[2], a->aurc};
    const double y[] = {b->accuracy, b->nll, b->brier, b->ece, b->ece10, b->mce, b->adaptive_ece,
                        b->classwise_ece, b->coverage_accuracy[0], b->coverage_accuracy[1],
                        b->coverage_accuracy[2], b->aurc};
    for (size_t j = 0; j < sizeof(x) / sizeof(x[0]); j++)
        CHECK(fabs(x[j] - y[j]) <= tol, "%s: field %zu: %.17g vs %.17g", what, j, x[j], y[j]);
    for (int m = 0; m < METRICS_BINS; m++) {
        CHECK(a->bin_count[m] == b->bin_count[m], "%s: bin %d count", what, m + 1);
        CHECK((isnan(a->bin_accuracy[m]) && isnan(b->bin_accuracy[m])) ||
                  fabs(a->bin_accuracy[m] - b->bin_accuracy[m]) <= tol,
              "%s: bin %d accuracy", what, m + 1);
        CHECK((isnan(a->bin_confidence[m]) && isnan(b->bin_confidence[m])) ||
                  fabs(a->bin_confidence[m] - b->bin_confidence[m]) <= tol,
              "%s: bin %d confidence", what, m + 1);
    }
}

/* Random logits: scale * N(0, 1), labels the argmax with probability p_right, else uniform. */
static void random_case(uint64_t seed, int n, int K, double scale, double p_right, float *z,
                        int32_t *y)
{
    for (int i = 0; i < n; i++) {
        int arg = 0;
        for (int k = 0; k < K; k++) {
            z[(size_t)i * K + k] =
                (float)(scale * rng_normal(seed, TEST_PURPOSE, 1, (uint64_t)i * K + k));
            if (z[(size_t)i * K + k] > z[(size_t)i * K + arg]) arg = k;
        }
        y[i] = rng_uniform(seed, TEST_PURPOSE, 2, (uint64_t)i) < p_right
                   ? arg
                   : (int32_t)rng_below(seed, TEST_PURPOSE, 3, (uint64_t)i, (uint32_t)K);
    }
}

/* ---------------------------------------------------------------- bin rules */

static void bin_rules_at_edges(void)
{
    /* 15 bins, upper edge inclusive, m = max(1, ceil(15 c)) in double. In double,
     * 15 * (1.0/15) == 1.0 exactly, 15 * (2.0/15) == 2.0, 15 * (14.0/15) == 14.0 (checked with
     * Python), so k/15 sits in bin k; the next double above it goes to bin k + 1. */
    CHECK(metrics_bin15(0.0) == 1, "c = 0 -> bin 1, got %d", metrics_bin15(0.0));
    CHECK(metrics_bin15(1.0 / 15) == 1, "1/15 -> 1, got %d", metrics_bin15(1.0 / 15));
    CHECK(metrics_bin15(nextafter(1.0 / 15, 1.0)) == 2, "1/15 + ulp -> 2");
    CHECK(metrics_bin15(nextafter(1.0 / 15, 0.0)) == 1, "1/15 - ulp -> 1");
    CHECK(metrics_bin15(2.0 / 15) == 2, "2/15 -> 2, got %d", metrics_bin15(2.0 / 15));
    CHECK(metrics_bin15(nextafter(2.0 / 15, 1.0)) == 3, "2/15 + ulp -> 3");
    CHECK(metrics_bin15(14.0 / 15) == 14, "14/15 -> 14");
    CHECK(metrics_bin15(nextafter(14.0 / 15, 1.0)) == 15, "14/15 + ulp -> 15");
    CHECK(metrics_bin15(0.5) == 8, "0.5: ceil(7.5) = 8");
    CHECK(metrics_bin15(1.0) == 15, "c = 1 -> bin 15");
    CHECK(metrics_bin15(nextafter(1.0, 2.0)) == 15, "c rounding above 1 is clamped to 15");
    /* 10 bins, lower edge inclusive, m = min(9, floor(10 c)), 0-based: 10 * 0.1 == 1.0 in
     * double (0.1 is 0.1000000000000000055..., the product rounds to 1), so 0.1 -> bin 1;
     * 0.1 + 0.2 = 0.30000000000000004 -> 10c = 3.0000000000000004 -> bin 3. */
    CHECK(metrics_bin10(0.0) == 0, "0 -> 0");
    CHECK(metrics_bin10(0.1) == 1, "0.1 -> 1, got %d", metrics_bin10(0.1));
    CHECK(metrics_bin10(nextafter(0.1, 0.0)) == 0, "0.1 - ulp -> 0");
    CHECK(metrics_bin10(0.2) == 2, "0.2 -> 2");
    CHECK(metrics_bin10(0.1 + 0.2) == 3, "0.30000000000000004 -> 3");
    CHECK(metrics_bin10(0.95) == 9, "0.95 -> 9");
    CHECK(metrics_bin10(1.0) == 9, "1 -> 9 (min with 9)");
}

/* Equal logits over K classes: c = exp(-ln K) computed in double, then binned by the formula.
 * With glibc: K = 2 -> 0.5 (bin15 8, bin10 5), K = 5 -> 0.2 (15c = 3.0000000000000004 rounds to
 * 3.0: bin15 3; bin10 2), K = 15 -> exactly 1.0/15 (bin15 1), K = 10 -> 0.09999999999999998,
 * just below 0.1 (bin15 2; bin10 0, not 1). The expected bin is computed docs/metrics.md's way from
 * the same double, so the test holds whatever libm rounds to. */
static void equal_logits_bins(void)
{
    const int Ks[] = {2, 5, 10, 15};
    const int hand15[] = {8, 3, 2, 1};
    const int hand10[] = {5, 2, 0, 0};
    for (int t = 0; t < 4; t++) {
        const int K = Ks[t];
        float z[15] = {0};
        int32_t y = 0;
        const double c = exp(-log((double)K));
        int expect15 = (int)ceil(15.0 * c);
        if (expect15 < 1) expect15 = 1;
        int expect10 = (int)floor(10.0 * c);
        if (expect10 > 9) expect10 = 9;
        CHECK(expect15 == hand15[t] && expect10 == hand10[t],
              "K=%d: libm gives c = %.17g (bins %d, %d): update the hand values", K, c,
              expect15, expect10);
        Metrics m = metrics_of_logits(z, &y, 1, K);
        CHECK(m.bin_count[expect15 - 1] == 1, "K=%d: sample in 15-bin %d", K, expect15);
        CHECK(m.bin_confidence[expect15 - 1] == c, "K=%d: confidence %.17g", K, c);
        CHECK(metrics_bin10(c) == expect10, "K=%d: 10-bin", K);
        CHECK_CLOSE(m.nll, log((double)K), 1e-15, 0, "nll = ln K");
        /* Brier: (1 - 1/K)^2 + (K - 1)/K^2 = 1 - 1/K */
        CHECK_CLOSE(m.brier, 1.0 - 1.0 / K, 1e-15, 0, "brier = 1 - 1/K");
    }
    /* ECE10 sees the K = 10 edge: sample A equal logits (c_A = 0.09999999999999998, bin10 0,
     * right: y = 0), sample B logits (0, 0.01, 0...) (c_B = e^0.01 / (e^0.01 + 9) = 0.1008...,
     * bin10 1, wrong: y = 0). Separate 10-bins: ECE10 = (|1 - c_A| + |0 - c_B|) / 2; both in
     * 15-bin 2 (15c = 1.5, 1.51): ECE = |1 - c_A - c_B| / 2. */
    float z[20] = {0};
    z[11] = 0.01f;
    int32_t y[2] = {0, 0};
    Metrics m = metrics_of_logits(z, y, 2, 10);
    const double cA = exp(-log(10.0)), cB = exp(0.01f) / (exp(0.01f) + 9);
    CHECK(m.bin_count[1] == 2, "both in 15-bin 2");
    CHECK_CLOSE(m.ece10, (1 - cA + cB) / 2, 1e-15, 0, "ece10 separate bins");
    CHECK_CLOSE(m.ece, fabs(1 - cA - cB) / 2, 1e-15, 0, "ece one bin");
}

/* ---------------------------------------------------------------- hand-computed cases */

/* Six samples, three classes (probabilities chosen off every bin edge):
 *   s0 (0.71 0.19 0.10) y0: c .71 right, 15-bin 11 (10.65), 10-bin 7
 *   s1 (0.11 0.73 0.16) y2: c .73 wrong, 15-bin 11 (10.95), 10-bin 7
 *   s2 (0.52 0.31 0.17) y0: c .52 right, 15-bin 8 (7.8),    10-bin 5
 *   s3 (0.21 0.17 0.62) y2: c .62 right, 15-bin 10 (9.3),   10-bin 6
 *   s4 (0.93 0.04 0.03) y1: c .93 wrong, 15-bin 14 (13.95), 10-bin 9
 *   s5 (0.23 0.19 0.58) y1: c .58 wrong, 15-bin 9 (8.7),    10-bin 5 */
static void hand_six_samples(void)
{
    const double p[] = {0.71, 0.19, 0.10, 0.11, 0.73, 0.16, 0.52, 0.31, 0.17,
                        0.21, 0.17, 0.62, 0.93, 0.04, 0.03, 0.23, 0.19, 0.58};
    const int32_t y[] = {0, 2, 0, 2, 1, 1};
    Metrics m = metrics_of_probs(p, y, 6, 3);
    CHECK(m.n == 6 && m.classes == 3, "n, classes");
    CHECK_CLOSE(m.accuracy, 0.5, 1e-15, 0, "accuracy 3/6");
    CHECK_CLOSE(m.nll, -(log(.71) + log(.16) + log(.52) + log(.62) + log(.04) + log(.19)) / 6,
                1e-14, 0, "nll");
    /* Brier per sample: .0841+.0361+.01 = .1302; .0121+.5329+.7056 = 1.2506;
     * .2304+.0961+.0289 = .3554; .0441+.0289+.1444 = .2174; .8649+.9216+.0009 = 1.7874;
     * .0529+.6561+.3364 = 1.0454. Sum 4.7864, mean 0.79773333... */
    CHECK_CLOSE(m.brier, 4.7864 / 6, 1e-14, 0, "brier");
    /* ECE: bin 11 {s0, s1}: acc .5, conf .72, 2 x .22 = .44; bin 8: .48; bin 10: .38;
     * bin 14: .93; bin 9: .58. (.44 + .48 + .38 + .93 + .58) / 6 = 2.81 / 6 */
    CHECK_CLOSE(m.ece, 2.81 / 6, 1e-14, 0, "ece");
    /* ECE10: bin 7 {s0, s1}: .44; bin 5 {s2 (.52, right), s5 (.58, wrong)}: acc .5, conf .55,
     * 2 x .05 = .1; bin 6: .38; bin 9: .93. 1.85 / 6 */
    CHECK_CLOSE(m.ece10, 1.85 / 6, 1e-14, 0, "ece10");
    CHECK_CLOSE(m.mce, 0.93, 1e-14, 0, "mce: bin 14");
    /* Adaptive: N = 6 < 15, array_split gives six groups of 1: mean |a - c| =
     * (.29 + .73 + .48 + .38 + .93 + .58) / 6 = 3.39 / 6 */
    CHECK_CLOSE(m.adaptive_ece, 3.39 / 6, 1e-14, 0, "adaptive ece");
    /* Classwise. class 0: p .71(1) b11, .11(0) b2, .52(1) b8, .21(0) b4, .93(0) b14, .23(0) b4:
     * .29 + .11 + .48 + |0 - .44| + .93 = 2.25. class 1: .19(0) b3, .73(0) b11, .31(0) b5,
     * .17(0) b3, .04(1) b1, .19(1) b3: bin 3 |1 - .55| = .45, + .73 + .31 + .96 = 2.45.
     * class 2: .10(0) b2, .16(1) b3, .17(0) b3, .62(1) b10, .03(0) b1, .58(0) b9: .1 +
     * |1 - .33| + .38 + .03 + .58 = 1.76. Mean of (x / 6): 6.46 / 18 */
    CHECK_CLOSE(m.classwise_ece, 6.46 / 18, 1e-14, 0, "classwise ece");
    /* Selective order: s4 (w) s1 (w) s0 (r) s3 (r) s5 (w) s2 (r).
     * 50%: ceil(3) = 3 -> 1/3; 80%: ceil(4.8) = 5 -> 2/5; 90%: ceil(5.4) = 6 -> 3/6.
     * AURC: errors/k = 1/1, 2/2, 2/3, 2/4, 3/5, 3/6 -> mean. */
    CHECK_CLOSE(m.coverage_accuracy[0], 1.0 / 3, 1e-15, 0, "acc@50");
    CHECK_CLOSE(m.coverage_accuracy[1], 0.4, 1e-15, 0, "acc@80");
    CHECK_CLOSE(m.coverage_accuracy[2], 0.5, 1e-15, 0, "acc@90");
    CHECK_CLOSE(m.aurc, (1 + 1 + 2.0 / 3 + 0.5 + 0.6 + 0.5) / 6, 1e-15, 0, "aurc");
    /* Reliability table. */
    CHECK(m.bin_count[10] == 2 && m.bin_count[7] == 1 && m.bin_count[9] == 1 &&
              m.bin_count[13] == 1 && m.bin_count[8] == 1,
          "bin counts");
    CHECK_CLOSE(m.bin_confidence[10], 0.72, 1e-14, 0, "bin 11 confidence");
    CHECK_CLOSE(m.bin_accuracy[10], 0.5, 0, 0, "bin 11 accuracy");
    CHECK(m.bin_accuracy[13] == 0.0 && m.bin_accuracy[7] == 1.0, "bin 14 / 8 accuracy");
    CHECK(isnan(m.bin_accuracy[0]) && isnan(m.bin_confidence[14]) && m.bin_count[0] == 0,
          "empty bins are NaN");
}

/* Two samples, class 2 never a label, both right:
 *   s0 (.62 .28 .10) y0: c .62 bin 10; s1 (.22 .68 .10) y1: c .68 bin 11 (10.2). */
static void all_right_one_class_absent(void)
{
    const double p[] = {0.62, 0.28, 0.10, 0.22, 0.68, 0.10};
    const int32_t y[] = {0, 1};
    Metrics m = metrics_of_probs(p, y, 2, 3);
    CHECK_CLOSE(m.accuracy, 1.0, 0, 0, "accuracy");
    CHECK_CLOSE(m.ece, (0.38 + 0.32) / 2, 1e-14, 0, "ece .35");
    CHECK_CLOSE(m.mce, 0.38, 1e-14, 0, "mce");
    /* Brier: .1444 + .0784 + .01 = .2328; .0484 + .1024 + .01 = .1608 -> .3936 / 2 */
    CHECK_CLOSE(m.brier, 0.3936 / 2, 1e-14, 0, "brier");
    CHECK_CLOSE(m.nll, -(log(0.62) + log(0.68)) / 2, 1e-14, 0, "nll");
    /* Classwise: class 0: .62(1) b10 -> .38, .22(0) b4 -> .22: .3; class 1: .28(0) b5 -> .28,
     * .68(1) b11 -> .32: .3; class 2 (absent, still counted): .1, .1 both b2 (1.5),
     * |0 - .2| / 2 = .1. Mean (.3 + .3 + .1) / 3. */
    CHECK_CLOSE(m.classwise_ece, 0.7 / 3, 1e-14, 0, "classwise ece includes the absent class");
    CHECK(m.coverage_accuracy[0] == 1.0 && m.coverage_accuracy[2] == 1.0 && m.aurc == 0.0,
          "selective: all right");
}

/* One sample, logits (0, -1000): p = (1, 0) exactly in double (exp(-1000) underflows to 0), so
 * c = 1 (bin 15) and p_1 = 0 falls in classwise bin 1. */
static void single_sample_right_and_wrong(void)
{
    const float z[2] = {0.0f, -1000.0f};
    int32_t y = 0;
    Metrics m = metrics_of_logits(z, &y, 1, 2);
    CHECK(m.bin_count[14] == 1 && m.bin_confidence[14] == 1.0, "c = 1 in bin 15");
    CHECK(m.accuracy == 1 && m.nll == 0 && m.brier == 0 && m.ece == 0 && m.ece10 == 0 &&
              m.mce == 0 && m.adaptive_ece == 0 && m.classwise_ece == 0 && m.aurc == 0,
          "perfect sample: all zero");
    CHECK(m.coverage_accuracy[0] == 1 && m.coverage_accuracy[2] == 1, "ceil(0.5) = 1 kept");
    /* All wrong: y = 1. accuracy 0, NLL = -ln p_1 = 1000 (log-softmax of -1000 is -1000),
     * Brier (1 - 0)^2 + (0 - 1)^2 = 2, ECE = MCE = adaptive = |0 - 1| = 1, classwise: class 0
     * p 1 bin 15 target 0 -> 1; class 1 p 0 bin 1 target 1 -> 1: mean 1; AURC 1/1. */
    y = 1;
    m = metrics_of_logits(z, &y, 1, 2);
    CHECK(m.accuracy == 0, "accuracy 0");
    CHECK_CLOSE(m.nll, 1000.0, 1e-12, 0, "nll 1000");
    CHECK_CLOSE(m.brier, 2.0, 0, 0, "brier 2");
    CHECK(m.ece == 1 && m.ece10 == 1 && m.mce == 1 && m.adaptive_ece == 1 &&
              m.classwise_ece == 1 && m.aurc == 1 && m.coverage_accuracy[1] == 0,
          "all wrong: ece %g ece10 %g mce %g aece %g cw %g aurc %g", m.ece, m.ece10, m.mce,
          m.adaptive_ece, m.classwise_ece, m.aurc);
}

/* 17 samples, all with logits (0, 0): c = 0.5 for all (a 17-way tie), prediction class 0.
 * Labels 0 1 0 0 then 1 x 13, so right: samples 0, 2, 3.
 * Adaptive: array_split(17, 15) -> sizes 2, 2, then 13 x 1; ties by index ascending give
 * groups {0,1} (gap |1 - 1| = 0), {2,3} (|2 - 1| = 1), then 13 singles each |0 - .5| = .5:
 * (0 + 1 + 6.5) / 17. (Ties by index descending would give {16,15}: 1, {14,13}: 1, 8.5 / 17.)
 * Selective: ties by index ascending keep 0, 1, 2, ...: acc@50 keeps ceil(8.5) = 9 -> 3/9;
 * acc@80 ceil(13.6) = 14 -> 3/14; acc@90 ceil(15.3) = 16 -> 3/16.
 * AURC: errors among the first k: 0, 1, 1, 1, then k - 3 for k >= 4:
 * (0 + 1/2 + 1/3 + 1/4 + sum_{k=5..17} (k - 3)/k) / 17. */
static void ties_adaptive_and_selective(void)
{
    float z[34] = {0};
    int32_t y[17];
    for (int i = 0; i < 17; i++) y[i] = (i == 0 || i == 2 || i == 3) ? 0 : 1;
    MetricsAcc acc;
    Metrics m;
    CHECK(metrics_init(&acc, 2, 4) == 0, "init"); /* capacity hint below N: must grow */
    for (int i = 0; i < 17; i += 5)
        CHECK(metrics_add_logits(&acc, z + 2 * i, y + i, i + 5 <= 17 ? 5 : 17 - i) == 0, "add");
    CHECK(metrics_compute(&acc, &m) == 0, "compute");
    metrics_free(&acc);
    CHECK_CLOSE(m.adaptive_ece, 7.5 / 17, 1e-15, 0, "adaptive ece, ties by index");
    CHECK_CLOSE(m.coverage_accuracy[0], 3.0 / 9, 1e-15, 0, "acc@50");
    CHECK_CLOSE(m.coverage_accuracy[1], 3.0 / 14, 1e-15, 0, "acc@80");
    CHECK_CLOSE(m.coverage_accuracy[2], 3.0 / 16, 1e-15, 0, "acc@90");
    double aurc = 0.5 + 1.0 / 3 + 0.25;
    for (int k = 5; k <= 17; k++) aurc += (k - 3.0) / k;
    CHECK_CLOSE(m.aurc, aurc / 17, 1e-15, 0, "aurc");
    /* 15-bin: all in bin 8 (ceil(7.5)): ECE = |3/17 - .5| */
    CHECK_CLOSE(m.ece, fabs(3.0 / 17 - 0.5), 1e-15, 0, "ece");
    CHECK(m.bin_count[7] == 17, "all in bin 8");
}

/* ---------------------------------------------------------------- streaming, merge */

#define SN 5000
#define SK 10

static void streaming_equals_one_shot(void)
{
    float *z = malloc(sizeof(float) * SN * SK);
    int32_t *y = malloc(sizeof(int32_t) * SN);
    random_case(11, SN, SK, 3.0, 0.6, z, y);
    Metrics once = metrics_of_logits(z, y, SN, SK), streamed;
    MetricsAcc acc;
    CHECK(metrics_init(&acc, SK, 16) == 0, "init");
    const int sizes[] = {1, 0, 7, 128, 3, 1000, 77};
    int i = 0, s = 0;
    while (i < SN) {
        const int want = sizes[s++ % 7], b = want < SN - i ? want : SN - i;
        CHECK(metrics_add_logits(&acc, z + (size_t)i * SK, y + i, b) == 0, "add at %d", i);
        i += b;
    }
    CHECK(metrics_compute(&acc, &streamed) == 0, "compute");
    check_same_metrics(&streamed, &once, 1e-12, "streamed vs one-shot");
    CHECK(once.accuracy > 0.5 && once.accuracy < 0.8 && once.ece > 0.05,
          "the random case is a plausible overconfident one: acc %g ece %g", once.accuracy,
          once.ece);
    metrics_free(&acc);
    free(z);
    free(y);
}

static void merge_and_flat_sums(void)
{
    float *z = malloc(sizeof(float) * SN * SK);
    int32_t *y = malloc(sizeof(int32_t) * SN);
    random_case(12, SN, SK, 2.0, 0.7, z, y);
    Metrics once = metrics_of_logits(z, y, SN, SK), merged, reduced;
    /* three "ranks" with uneven shards */
    const int cut[4] = {0, 1234, 1235, SN};
    MetricsAcc part[3];
    for (int r = 0; r < 3; r++) {
        CHECK(metrics_init(&part[r], SK, 0) == 0, "init");
        CHECK(metrics_add_logits(&part[r], z + (size_t)cut[r] * SK, y + cut[r],
                                 cut[r + 1] - cut[r]) == 0,
              "add");
    }
    MetricsAcc all;
    CHECK(metrics_init(&all, SK, 0) == 0, "init");
    for (int r = 0; r < 3; r++) CHECK(metrics_acc_merge(&all, &part[r]) == 0, "merge");
    CHECK(metrics_compute(&all, &merged) == 0, "compute merged");
    check_same_metrics(&merged, &once, 1e-12, "merged vs one-shot");
    metrics_free(&all);

    /* What MPI will do: allreduce the flat sums, gather the pairs in rank order. */
    double *sum0, *sumr;
    size_t n0, nr;
    metrics_acc_sums(&part[0], &sum0, &n0);
    CHECK(n0 == 4 + 3 * 15 + 3 * 10 + (size_t)SK * 15 * 2, "flat sums length %zu", n0);
    size_t total = 0;
    for (int r = 0; r < 3; r++) total += (size_t)(cut[r + 1] - cut[r]);
    double *conf = malloc(sizeof(double) * total);
    unsigned char *correct = malloc(total);
    size_t at = 0;
    for (int r = 0; r < 3; r++) {
        const double *c;
        const unsigned char *a;
        size_t n;
        metrics_acc_pairs(&part[r], &c, &a, &n);
        memcpy(conf + at, c, sizeof(double) * n);
        memcpy(correct + at, a, n);
        at += n;
        if (r == 0) continue;
        metrics_acc_sums(&part[r], &sumr, &nr);
        for (size_t j = 0; j < n0; j++) sum0[j] += sumr[j];
    }
    CHECK(metrics_compute(&part[0], &reduced) == CIGL_ERR_USAGE,
          "summed counts with rank 0's pairs only must be refused");
    CHECK(metrics_acc_set_pairs(&part[0], conf, correct, at) == 0, "set pairs");
    CHECK(metrics_compute(&part[0], &reduced) == 0, "compute reduced");
    check_same_metrics(&reduced, &once, 1e-12, "allreduce + gather vs one-shot");

    MetricsAcc other;
    CHECK(metrics_init(&other, SK + 1, 0) == 0, "init");
    CHECK(metrics_acc_merge(&other, &part[1]) == CIGL_ERR_USAGE, "class mismatch refused");
    CHECK(metrics_acc_merge(&part[1], &part[1]) == CIGL_ERR_USAGE, "self merge refused");
    metrics_free(&other);
    for (int r = 0; r < 3; r++) metrics_free(&part[r]);
    free(conf);
    free(correct);
    free(z);
    free(y);
}

/* ---------------------------------------------------------------- bad input */

static void bad_input_is_refused(void)
{
    MetricsAcc acc;
    Metrics m;
    CHECK(metrics_init(&acc, 1, 0) == CIGL_ERR_USAGE, "one class refused");
    CHECK(metrics_init(&acc, 3, 0) == 0, "init");
    CHECK(metrics_compute(&acc, &m) == CIGL_ERR_USAGE, "no samples refused");
    float z[6] = {1, 2, 3, 0, 0, 0};
    int32_t y[2] = {0, 1};
    CHECK(metrics_add_logits(&acc, z, y, 2) == 0, "good batch");
    z[4] = NAN;
    CHECK(metrics_add_logits(&acc, z, y, 2) == CIGL_ERR_USAGE, "NaN logit refused");
    z[4] = INFINITY;
    CHECK(metrics_add_logits(&acc, z, y, 2) == CIGL_ERR_USAGE, "inf logit refused");
    z[4] = -INFINITY;
    CHECK(metrics_add_logits(&acc, z, y, 2) == CIGL_ERR_USAGE, "-inf logit refused");
    z[4] = 0;
    y[1] = 3;
    CHECK(metrics_add_logits(&acc, z, y, 2) == CIGL_ERR_USAGE, "label = classes refused");
    y[1] = -1;
    CHECK(metrics_add_logits(&acc, z, y, 2) == CIGL_ERR_USAGE, "negative label refused");
    y[1] = 1;
    CHECK(metrics_add_logits(&acc, z, y, -1) == CIGL_ERR_USAGE, "negative n refused");
    CHECK(metrics_add_logits_temperature(&acc, z, y, 2, 0.0) == CIGL_ERR_USAGE, "T = 0");
    double lp[3] = {log(0.5), log(0.25), NAN};
    CHECK(metrics_add_log_probs(&acc, lp, y, 1) == CIGL_ERR_USAGE, "NaN log-prob refused");
    lp[2] = log(0.5);
    CHECK(metrics_add_log_probs(&acc, lp, y, 1) == CIGL_ERR_USAGE, "sum 1.25 refused");
    lp[2] = log(0.25);
    lp[1] = -INFINITY;
    lp[0] = log(0.75);
    const int32_t label1 = 1;
    CHECK(metrics_add_log_probs(&acc, lp, &label1, 1) == 0, "-inf log-prob accepted");
    /* nothing from the refused batches was added: 2 + 1 samples */
    CHECK(metrics_compute(&acc, &m) == 0 && m.n == 3, "refused batches left no trace: n %zu",
          m.n);
    CHECK(isinf(m.nll), "p_y = 0 gives an infinite NLL");
    metrics_free(&acc);
    CHECK(metrics_from_logits(z, y, 2, 3, &m) == 0, "functional form");
    CHECK(predictions_write("/nonexistent-dir/p.h5", lp, NULL, y, 1, 3) != 0, "bad path");
}

/* ---------------------------------------------------------------- temperature scaling */

/* True logits u ~ 3 N(0, 1) over 10 classes, labels drawn from softmax(u). The fitter sees
 * z = u * T_true, so softmax(z / T) is the true distribution at T = T_true, where the expected
 * NLL (a proper score) is minimal; with N = 100000 the sample optimum is within ~0.5%. */
static void temperature_recovers_true_value(void)
{
    const size_t n = 100000;
    const int K = 10;
    float *z = malloc(sizeof(float) * n * K);
    double *u = malloc(sizeof(double) * K);
    int32_t *y = malloc(sizeof(int32_t) * n);
    const double Ts[] = {0.5, 2.0};
    for (int t = 0; t < 2; t++) {
        for (size_t i = 0; i < n; i++) {
            double zmax = -INFINITY, s = 0.0;
            for (int k = 0; k < K; k++) {
                u[k] = 3.0 * rng_normal(21, TEST_PURPOSE, 4, i * K + k);
                if (u[k] > zmax) zmax = u[k];
            }
            for (int k = 0; k < K; k++) s += exp(u[k] - zmax);
            double r = rng_uniform(21, TEST_PURPOSE, 5, i) * s, cum = 0.0;
            y[i] = K - 1;
            for (int k = 0; k < K; k++) {
                cum += exp(u[k] - zmax);
                if (r < cum) {
                    y[i] = k;
                    break;
                }
            }
            for (int k = 0; k < K; k++) z[i * K + k] = (float)(u[k] * Ts[t]);
        }
        double T = 0.0, nll_fit, nll_1;
        CHECK(temperature_fit(z, y, n, K, &T) == 0, "fit");
        CHECK(fabs(T / Ts[t] - 1.0) < 0.02, "T_true %g: fitted %.6f", Ts[t], T);
        printf("  T_true %g: fitted T %.6f\n", Ts[t], T);
        CHECK(temperature_nll(z, y, n, K, T, &nll_fit) == 0, "nll");
        CHECK(temperature_nll(z, y, n, K, 1.0, &nll_1) == 0, "nll");
        CHECK(nll_fit <= nll_1, "fit must not raise the NLL: %.17g > %.17g", nll_fit, nll_1);
        /* a local minimum: 0.1% either side is worse */
        double up, down;
        temperature_nll(z, y, n, K, T * 1.001, &up);
        temperature_nll(z, y, n, K, T / 1.001, &down);
        CHECK(nll_fit < up && nll_fit < down, "minimum: %.17g %.17g %.17g", down, nll_fit, up);
        /* metrics at T agree with the metrics of the rescaled logits */
        MetricsAcc acc;
        Metrics at, before;
        metrics_init(&acc, K, n);
        CHECK(metrics_add_logits_temperature(&acc, z, y, (int)n, T) == 0, "add at T");
        metrics_compute(&acc, &at);
        metrics_free(&acc);
        before = metrics_of_logits(z, y, (int)n, K);
        CHECK_CLOSE(at.nll, nll_fit, 1e-12, 0, "metrics NLL at T = fitted NLL");
        CHECK(at.ece < before.ece && at.ece < 0.01, "calibrated: ECE %g -> %g", before.ece,
              at.ece);
    }
    free(z);
    free(u);
    free(y);
}

static void temperature_edge_cases(void)
{
    /* Equal logits: the NLL is ln K for every T; nothing better than T = 1. */
    float z[8] = {0};
    int32_t y[2] = {0, 3};
    double T = 0.0;
    CHECK(temperature_fit(z, y, 2, 4, &T) == 0 && T == 1.0, "flat logits -> T = 1, got %g", T);
    /* Right with large margins: the NLL falls as T falls; the bound e^-5 stops it. */
    float zr[4] = {5, 0, 0, 5};
    int32_t yr[2] = {0, 1};
    CHECK(temperature_fit(zr, yr, 2, 2, &T) == 0, "fit");
    CHECK(fabs(T - exp(-5.0)) < 1e-12, "lower bound e^-5, got %.17g", T);
    /* Wrong with large margins: T grows to the bound e^5. */
    int32_t yw[2] = {1, 0};
    CHECK(temperature_fit(zr, yw, 2, 2, &T) == 0, "fit");
    CHECK(fabs(T - exp(5.0)) < 1e-9, "upper bound e^5, got %.17g", T);
    /* One right, one wrong, same margin m = 1: NLL(b) = (ln(1 + e^-b) + ln(1 + e^b)) / 2,
     * minimal at b = 0, i.e. T -> infinity: the bound e^5. */
    float zm[4] = {1, 0, 1, 0};
    int32_t ym[2] = {0, 1};
    CHECK(temperature_fit(zm, ym, 2, 2, &T) == 0 && fabs(T - exp(5.0)) < 1e-9, "T %g", T);
    /* Two of three right with margin ln 2: NLL(b) = (2 ln(1 + 2^-b) + ln(1 + 2^b)) / 3;
     * dNLL/db = 0 at 2^b = 2, i.e. b = 1: T = 1 (p = 2/3 matches the 2/3 accuracy). The margin
     * is float(ln 2), which puts the optimum at 1 + 2.7e-9: too close to 1 for the NLL to tell
     * them apart, so T = 1 is an equally right answer. */
    const float l2 = (float)log(2.0);
    float z3[6] = {l2, 0, l2, 0, l2, 0};
    int32_t y3[3] = {0, 0, 1};
    CHECK(temperature_fit(z3, y3, 3, 2, &T) == 0, "fit");
    CHECK(fabs(T - 1.0) < 1e-8, "T = 1, got %.17g", T);
    y3[0] = -1;
    CHECK(temperature_fit(z3, y3, 3, 2, &T) == CIGL_ERR_USAGE, "bad label refused");
    y3[0] = 0;
    z3[3] = NAN;
    CHECK(temperature_fit(z3, y3, 3, 2, &T) == CIGL_ERR_USAGE && T == 1.0, "NaN refused");
    CHECK(temperature_fit(z3, y3, 0, 2, &T) == CIGL_ERR_USAGE, "no samples refused");

    /* The same T, to the bit, whatever the thread count (fixed chunks, summed in order). */
    float *zr5 = malloc(sizeof(float) * SN * SK);
    int32_t *yr5 = malloc(sizeof(int32_t) * SN);
    random_case(14, SN, SK, 3.0, 0.7, zr5, yr5);
    const int threads = omp_get_max_threads();
    double T1 = 0, T3 = 0;
    omp_set_num_threads(1);
    CHECK(temperature_fit(zr5, yr5, SN, SK, &T1) == 0, "fit, 1 thread");
    omp_set_num_threads(3);
    CHECK(temperature_fit(zr5, yr5, SN, SK, &T3) == 0, "fit, 3 threads");
    omp_set_num_threads(threads);
    CHECK(T1 == T3 && T1 != 1.0, "1 thread %.17g, 3 threads %.17g", T1, T3);
    free(zr5);
    free(yr5);
}

/* ---------------------------------------------------------------- outputs */

static int count_substr(const char *s, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(s, needle); p; p = strstr(p + 1, needle)) n++;
    return n;
}

static void svg_has_one_bar_per_nonempty_bin(void)
{
    float *z = malloc(sizeof(float) * SN * SK);
    int32_t *y = malloc(sizeof(int32_t) * SN);
    random_case(13, SN, SK, 2.5, 0.6, z, y);
    const int sizes[] = {SN, 1, 6};
    for (int t = 0; t < 3; t++) {
        Metrics m = metrics_of_logits(z, y, sizes[t], SK);
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        CHECK(reliability_svg(&m, f, "WRN-22-2 <RigL> & \"CigL\"") == 0, "svg");
        fclose(f);
        int nonempty = 0;
        for (int b = 0; b < METRICS_BINS; b++) nonempty += m.bin_count[b] > 0;
        CHECK(count_substr(buf, "class=\"bar\"") == nonempty, "N=%d: %d bars for %d bins",
              sizes[t], count_substr(buf, "class=\"bar\""), nonempty);
        CHECK(count_substr(buf, "class=\"hist\"") == nonempty, "histogram bars");
        CHECK(strstr(buf, "viewBox=") && strstr(buf, "&lt;RigL&gt; &amp; &quot;CigL&quot;") &&
                  !strstr(buf, "<RigL>") && strstr(buf, "ECE ") && strstr(buf, "</svg>"),
              "escaped title, ECE, closed");
        free(buf);
    }
    free(z);
    free(y);
}

static void json_names_conventions(void)
{
    const double p[] = {0.71, 0.19, 0.10, 0.11, 0.73, 0.16};
    const int32_t y[] = {0, 2};
    Metrics m = metrics_of_probs(p, y, 2, 3);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    JsonWriter w;
    json_begin(&w, f, 0);
    json_object_begin(&w, NULL);
    metrics_write_json(&m, &w);
    json_object_end(&w);
    json_end(&w);
    fclose(f);
    CHECK(strstr(buf, "\"ece_bins\":15") && strstr(buf, "\"ece10_bins\":10") &&
              strstr(buf, "upper edge inclusive") && strstr(buf, "lower edge inclusive") &&
              strstr(buf, "\"accuracy_at_coverage_90\":") && strstr(buf, "\"aurc\":") &&
              strstr(buf, "\"count\":[0,0,0,0,0,0,0,0,0,0,2,0,0,0,0]") &&
              strstr(buf, "\"confidence\":[null,"),
          "json: %s", buf);
    free(buf);
}

static void predictions_file_round_trip(void)
{
    char path[] = "/tmp/cigl_test_predictions_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp");
    close(fd);
    const float z[6] = {1, 2, 3, -1, 0, 0.5f};
    double lp[6];
    for (int i = 0; i < 2; i++) {
        double m = fmax(fmax(z[3 * i], z[3 * i + 1]), z[3 * i + 2]), s = 0;
        for (int k = 0; k < 3; k++) s += exp(z[3 * i + k] - m);
        for (int k = 0; k < 3; k++) lp[3 * i + k] = z[3 * i + k] - m - log(s);
    }
    const int32_t y[2] = {2, 0};
    CHECK(predictions_write(path, lp, z, y, 2, 3) == 0, "write");
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    double lp2[6] = {0};
    float z2[6] = {0};
    int32_t y2[2] = {0};
    hid_t d = H5Dopen2(file, "log_probs", H5P_DEFAULT);
    CHECK(H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, lp2) >= 0, "read");
    hid_t sp = H5Dget_space(d);
    hsize_t dims[2] = {0, 0};
    H5Sget_simple_extent_dims(sp, dims, NULL);
    CHECK(dims[0] == 2 && dims[1] == 3, "log_probs is 2 x 3");
    hid_t t = H5Dget_type(d);
    CHECK(H5Tget_size(t) == 8 && H5Tget_class(t) == H5T_FLOAT, "float64");
    H5Tclose(t);
    H5Sclose(sp);
    H5Dclose(d);
    d = H5Dopen2(file, "logits", H5P_DEFAULT);
    CHECK(H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, z2) >= 0, "read");
    t = H5Dget_type(d);
    CHECK(H5Tget_size(t) == 4, "float32");
    H5Tclose(t);
    H5Dclose(d);
    d = H5Dopen2(file, "labels", H5P_DEFAULT);
    CHECK(H5Dread(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, y2) >= 0, "read");
    H5Dclose(d);
    H5Fclose(file);
    CHECK(!memcmp(lp, lp2, sizeof lp) && !memcmp(z, z2, sizeof z) && !memcmp(y, y2, sizeof y),
          "round trip");
    int32_t bad[2] = {3, 0};
    CHECK(predictions_write(path, lp, NULL, bad, 2, 3) == CIGL_ERR_USAGE, "bad label refused");
    unlink(path);
}

/* ---------------------------------------------------------------- reference cases */

static int write_case(const char *dir, const char *name, const double *lp, const float *z,
                      const int32_t *y, int n, int K, int fit_temperature, int svg)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.h5", dir, name);
    int rc = predictions_write(path, lp, z, y, (size_t)n, K);
    if (rc) return rc;
    MetricsAcc acc;
    Metrics m;
    if ((rc = metrics_init(&acc, K, (size_t)n))) return rc;
    rc = z ? metrics_add_logits(&acc, z, y, n) : metrics_add_log_probs(&acc, lp, y, n);
    if (!rc) rc = metrics_compute(&acc, &m);
    metrics_free(&acc);
    if (rc) return rc;
    snprintf(path, sizeof path, "%s/%s.json", dir, name);
    FILE *f = fopen(path, "w");
    if (!f) return cigl_fail(CIGL_ERR_RUNTIME, "cannot write %s", path);
    JsonWriter w;
    json_begin(&w, f, 1);
    json_object_begin(&w, NULL);
    metrics_write_json(&m, &w);
    if (fit_temperature) {
        double T;
        Metrics at;
        rc = temperature_fit(z, y, (size_t)n, K, &T);
        if (!rc) rc = metrics_init(&acc, K, (size_t)n);
        if (!rc) {
            rc = metrics_add_logits_temperature(&acc, z, y, n, T);
            if (!rc) rc = metrics_compute(&acc, &at);
            metrics_free(&acc);
        }
        if (!rc) {
            json_double(&w, "temperature", T);
            json_object_begin(&w, "at_temperature");
            metrics_write_json(&at, &w);
            json_object_end(&w);
        }
    }
    json_object_end(&w);
    json_end(&w);
    if (fclose(f) != 0 && !rc) rc = cigl_fail(CIGL_ERR_RUNTIME, "cannot write %s", path);
    if (!rc && svg) {
        snprintf(path, sizeof path, "%s/%s.svg", dir, name);
        f = fopen(path, "w");
        if (!f) return cigl_fail(CIGL_ERR_RUNTIME, "cannot write %s", path);
        rc = reliability_svg(&m, f, name);
        fclose(f);
    }
    return rc;
}

static void log_softmax_rows(const float *z, double *lp, int n, int K)
{
    for (int i = 0; i < n; i++) {
        const float *r = z + (size_t)i * K;
        double m = r[0], s = 0.0;
        for (int k = 1; k < K; k++) m = fmax(m, r[k]);
        for (int k = 0; k < K; k++) s += exp(r[k] - m);
        for (int k = 0; k < K; k++) lp[(size_t)i * K + k] = (r[k] - m) - log(s);
    }
}

static int logits_case(const char *dir, const char *name, uint64_t seed, int n, int K,
                       double scale, double p_right, int pool, int fit, int svg)
{
    float *z = malloc(sizeof(float) * (size_t)n * K);
    double *lp = malloc(sizeof(double) * (size_t)n * K);
    int32_t *y = malloc(sizeof(int32_t) * (size_t)n);
    random_case(seed, n, K, scale, p_right, z, y);
    if (pool) /* rows repeated from a pool of `pool` distinct rows: exact confidence ties */
        for (int i = pool; i < n; i++) {
            const uint32_t src = rng_below(seed, TEST_PURPOSE, 6, (uint64_t)i, (uint32_t)pool);
            memcpy(z + (size_t)i * K, z + (size_t)src * K, sizeof(float) * K);
        }
    log_softmax_rows(z, lp, n, K);
    int rc = write_case(dir, name, lp, z, y, n, K, fit, svg);
    free(z);
    free(lp);
    free(y);
    return rc;
}

/* An ensemble of `members` logit sets: log of the members' mean double softmax. */
static int ensemble_case(const char *dir, const char *name, uint64_t seed, int n, int K,
                         int members)
{
    float *z = malloc(sizeof(float) * (size_t)n * K);
    double *lp = malloc(sizeof(double) * (size_t)n * K);
    double *mean = calloc((size_t)n * K, sizeof(double));
    int32_t *y = malloc(sizeof(int32_t) * (size_t)n);
    random_case(seed, n, K, 2.0, 0.6, z, y);
    for (int e = 0; e < members; e++) {
        float *ze = malloc(sizeof(float) * (size_t)n * K);
        for (size_t j = 0; j < (size_t)n * K; j++)
            ze[j] = z[j] + (float)(1.5 * rng_normal(seed, TEST_PURPOSE, 10 + e, j));
        log_softmax_rows(ze, lp, n, K);
        for (size_t j = 0; j < (size_t)n * K; j++) mean[j] += exp(lp[j]);
        free(ze);
    }
    for (size_t j = 0; j < (size_t)n * K; j++) lp[j] = log(mean[j] / members);
    int rc = write_case(dir, name, lp, NULL, y, n, K, 0, 0);
    free(z);
    free(lp);
    free(mean);
    free(y);
    return rc;
}

/* Confidences exactly on bin edges: rows with t equal maximal logits and the rest at -1000
 * (probability 0): t = 10: c = 0.09999999999999998 (10-bin 0); t = 5: c = 0.2, the upper edge
 * of 15-bin 3 (shared with t = 6, c = 1/6) and the lower edge of 10-bin 2 (shared with t = 4,
 * c = 0.25); t = 2: c = 0.5 (10-bin 5, 15-bin 8); t = 1: c = 1 (15-bin 15), and p = 0 in
 * classwise bin 1; t = 3: c = 1/3 = 5/15 exactly in double. Random labels. */
static int edges_case(const char *dir, const char *name, uint64_t seed, int n)
{
    const int K = 10, ties[7] = {10, 6, 5, 4, 3, 2, 1};
    float *z = malloc(sizeof(float) * (size_t)n * K);
    double *lp = malloc(sizeof(double) * (size_t)n * K);
    int32_t *y = malloc(sizeof(int32_t) * (size_t)n);
    for (int i = 0; i < n; i++) {
        const int t = ties[rng_below(seed, TEST_PURPOSE, 7, (uint64_t)i, 7)];
        const float top = (float)rng_normal(seed, TEST_PURPOSE, 8, (uint64_t)i);
        for (int k = 0; k < K; k++) z[(size_t)i * K + k] = k < t ? top : -1000.0f;
        y[i] = (int32_t)rng_below(seed, TEST_PURPOSE, 9, (uint64_t)i, (uint32_t)K);
    }
    log_softmax_rows(z, lp, n, K);
    int rc = write_case(dir, name, lp, z, y, n, K, 0, 0);
    free(z);
    free(lp);
    free(y);
    return rc;
}

static int write_reference_cases(const char *dir)
{
    int rc = logits_case(dir, "k10_random", 31, 10000, 10, 3.0, 0.6, 0, 1, 1);
    if (!rc) rc = logits_case(dir, "k100_n1237", 32, 1237, 100, 2.0, 0.5, 0, 1, 0);
    if (!rc) rc = logits_case(dir, "k3_n7", 33, 7, 3, 1.0, 0.5, 0, 0, 0);
    if (!rc) rc = logits_case(dir, "k4_pool_ties", 34, 2000, 4, 1.5, 0.5, 6, 0, 0);
    if (!rc) rc = logits_case(dir, "k2_saturated", 35, 500, 2, 300.0, 0.8, 0, 0, 0);
    if (!rc) rc = logits_case(dir, "k10_n1", 36, 1, 10, 1.0, 1.0, 0, 0, 0);
    if (!rc) rc = ensemble_case(dir, "k10_ensemble", 37, 3000, 10, 5);
    if (!rc) rc = edges_case(dir, "k10_bin_edges", 38, 700);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "--reference")) return write_reference_cases(argv[2]);
    RUN(bin_rules_at_edges);
    RUN(equal_logits_bins);
    RUN(hand_six_samples);
    RUN(all_right_one_class_absent);
    RUN(single_sample_right_and_wrong);
    RUN(ties_adaptive_and_selective);
    RUN(streaming_equals_one_shot);
    RUN(merge_and_flat_sums);
    RUN(bad_input_is_refused);
    RUN(temperature_recovers_true_value);
    RUN(temperature_edge_cases);
    RUN(svg_has_one_bar_per_nonempty_bin);
    RUN(json_names_conventions);
    RUN(predictions_file_round_trip);
    return CHECK_SUMMARY();
}
