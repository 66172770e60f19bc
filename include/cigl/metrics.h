/* Calibration metrics (docs/metrics.md), temperature scaling, the reliability
 * diagram and the predictions file.
 *
 * Split as in torchmetrics: a stateful streaming accumulator (MetricsAcc: init, add batches,
 * merge, compute) and pure functions over it. Everything is double precision and computed from
 * the logits (double-precision log-softmax) or, for prediction ensembles, from the log of the
 * members' mean double-precision softmax, which the caller computes (metrics_add_log_probs).
 *
 * Conventions (p_i = softmax of sample i, K classes, N samples):
 *   confidence  c_i = max_k p_ik; prediction = argmax_k p_ik, ties to the lowest class index;
 *               correct a_i = [prediction == y_i]. "Sample index" = the order in which samples
 *               entered the accumulator (merge appends src after dst).
 *   accuracy    mean a_i.
 *   nll         mean of -ln p_i,y_i (natural log; +inf when some p_i,y_i underflows to 0).
 *   brier       mean over samples of sum_k (p_ik - [y_i == k])^2 (range 0..2, not divided by K).
 *   ece         15 equal-width bins, upper edge inclusive: bin m = max(1, ceil(15 * c)) in
 *               double (c = 0 and c = 1/15 are in bin 1, c = 1 in bin 15; clamped to 15 if a
 *               confidence rounds above 1); ece = sum_m |B_m|/N |acc(B_m) - conf(B_m)|.
 *   ece10       the authors' convention: 10 equal-width bins, lower edge inclusive,
 *               0-based m = min(9, floor(10 * c)) in double. (Equal logits over 10 classes give
 *               c = 0.09999999999999998 in double, hence bin 0, not 1.)
 *               A confidence exactly on an edge is binned by its last bit, so by the libm's
 *               exp/log: we use the C library's (glibc, correctly rounded in practice). numpy's
 *               vectorised exp/log on AVX-512 differ from it by one ulp for about a quarter of
 *               inputs (equal logits over 3 classes: c = 1/3 = 5/15 lands in bin 6, not 5), so
 *               tests/metrics_reference.py uses Python's math.exp/math.log elementwise.
 *   mce         max over non-empty 15-bins of |acc(B_m) - conf(B_m)|.
 *   adaptive_ece  samples sorted by confidence ascending (stable: ties by sample index), cut
 *               into 15 groups whose sizes are numpy.array_split's (the first N mod 15 groups
 *               have floor(N/15) + 1 samples, the rest floor(N/15); empty groups when N < 15
 *               contribute nothing); sum over groups of |G|/N |acc(G) - conf(G)|.
 *   classwise_ece  mean over ALL K classes (classes absent from the labels included) of the
 *               15-bin ECE of p_ik against [y_i == k], same bin rule (p = 0 is in bin 1).
 *   reliability per 15-bin: count, mean confidence, accuracy (NaN, written as null, if empty).
 *   selective prediction: samples sorted by confidence DESCENDING, ties by sample index
 *               ascending; coverage_accuracy[j] = accuracy of the first ceil(P_j N / 100)
 *               samples, P = 50, 80, 90 (ceil computed exactly in integers);
 *               aurc = (1/N) sum_{k=1..N} (errors among the first k) / k, the area under the
 *               risk-coverage curve (risk = error rate) as a right Riemann sum over
 *               coverage k/N: 0 when all are correct, 1 when all are wrong.
 *
 * Streaming and ranks: everything except adaptive_ece, the coverage accuracies and aurc is a
 * function of per-bin sums that are simply added (metrics_acc_sums exposes them as one flat
 * double array, so ranks can MPI_Allreduce(SUM) it in place). Those three need every sample's
 * (confidence, correct) pair: ranks must GATHER the pairs (metrics_acc_pairs, then
 * metrics_acc_set_pairs on the receiving rank), placed in global sample order (the test set's
 * order, not rank order, so that ties break the same whatever the rank count). metrics_compute
 * refuses an accumulator whose pair count differs from its summed sample count. Streaming over
 * batches and one pass over all samples give the same sums in the same order (identical
 * results); merged or reduced sums agree to rounding (~1e-16 relative). */
#ifndef CIGL_METRICS_H
#define CIGL_METRICS_H
#include "cigl/json.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define METRICS_BINS 15      /* ECE, MCE, classwise ECE, adaptive ECE groups, reliability */
#define METRICS_BINS10 10    /* ECE10 */
#define METRICS_COVERAGES 3  /* coverage_accuracy[] at 50, 80, 90 % */
#define METRICS_COVERAGE_PERCENTS {50, 80, 90}

typedef struct {
    int classes;
    size_t n_sums;          /* length of sums */
    double *sums;           /* reducible sums (add elementwise to combine) */
    double *conf;           /* per-sample confidence, in sample order */
    unsigned char *correct; /* per-sample correctness (0 or 1) */
    size_t n_pairs, cap_pairs;
    double *scratch;        /* K doubles: one sample's log-probabilities */
} MetricsAcc;

typedef struct {
    size_t n;
    int classes;
    double accuracy, nll, brier;
    double ece, ece10, mce, adaptive_ece, classwise_ece;
    double coverage_accuracy[METRICS_COVERAGES]; /* at METRICS_COVERAGE_PERCENTS */
    double aurc;
    size_t bin_count[METRICS_BINS];              /* reliability table, bin m at [m - 1] */
    double bin_confidence[METRICS_BINS], bin_accuracy[METRICS_BINS]; /* NaN when empty */
} Metrics;

/* 1-based 15-bin index of a confidence (upper edge inclusive) and 0-based 10-bin index. */
int metrics_bin15(double c);
int metrics_bin10(double c);

/* capacity_hint: the expected sample count (pairs storage is preallocated; it grows anyway). */
int metrics_init(MetricsAcc *acc, int classes, size_t capacity_hint);
void metrics_free(MetricsAcc *acc);

/* A batch of n samples, row-major n x classes. Validated before anything is accumulated: a
 * non-finite logit or a label outside [0, classes) returns CIGL_ERR_USAGE with a one-line error
 * naming the sample, and leaves the accumulator unchanged. */
int metrics_add_logits(MetricsAcc *acc, const float *logits, const int32_t *labels, int n);
/* The same on logits / T (in double; temperature scaling), T > 0 finite. */
int metrics_add_logits_temperature(MetricsAcc *acc, const float *logits, const int32_t *labels,
                                   int n, double T);
/* Log-probabilities (e.g. log of an ensemble's mean softmax): no NaN, no +inf (-inf allowed),
 * and each row's probabilities must sum to 1 within 1e-6. */
int metrics_add_log_probs(MetricsAcc *acc, const double *log_probs, const int32_t *labels,
                          int n);

/* dst += src (sums added, src's pairs appended after dst's). Classes must match. */
int metrics_acc_merge(MetricsAcc *dst, const MetricsAcc *src);
/* The reducible sums, in place: MPI_Allreduce(MPI_IN_PLACE, *ptr, *n, MPI_DOUBLE, MPI_SUM). */
void metrics_acc_sums(MetricsAcc *acc, double **ptr, size_t *n);
/* The per-sample pairs (to gather), and replacing them with the gathered ones. */
void metrics_acc_pairs(const MetricsAcc *acc, const double **conf, const unsigned char **correct,
                       size_t *n);
int metrics_acc_set_pairs(MetricsAcc *acc, const double *conf, const unsigned char *correct,
                          size_t n);

int metrics_compute(const MetricsAcc *acc, Metrics *out);
/* Functional one-shot form: init, add all, compute, free. */
int metrics_from_logits(const float *logits, const int32_t *labels, size_t n, int classes,
                        Metrics *out);

/* Writes the metrics as members of the JSON object the caller has open, including a
 * "conventions" object that names the bin rules and tie rules above. */
void metrics_write_json(const Metrics *m, JsonWriter *w);

/* Temperature scaling (src/calibration.c). Minimises the mean NLL of softmax(logits / T) over
 * log T in [-5, 5] (safeguarded Newton on the convex objective in 1/T, bisection fallback).
 * T = 1 is returned when no T lowers the NLL on these data, so the fitted NLL never exceeds
 * the NLL at T = 1. Deterministic whatever the thread count. */
int temperature_fit(const float *logits, const int32_t *labels, size_t n, int classes, double *T);
/* Mean NLL of softmax(logits / T). */
int temperature_nll(const float *logits, const int32_t *labels, size_t n, int classes, double T,
                    double *nll);

/* Reliability diagram (per-bin accuracy bars, the diagonal, the gap to the bin's mean
 * confidence shaded, counts above the bars) over a confidence histogram, as SVG (src/svg.c).
 * One <rect class="bar"> per non-empty bin. Returns CIGL_ERR_RUNTIME on a write error. */
int reliability_svg(const Metrics *m, FILE *f, const char *title);

/* HDF5 predictions file for independent checking (atomic write): float64 log_probs (n x K),
 * float32 logits (n x K) when logits != NULL, int32 labels (n); attributes classes, n. */
int predictions_write(const char *path, const double *log_probs, const float *logits,
                      const int32_t *labels, size_t n, int classes);

#endif
