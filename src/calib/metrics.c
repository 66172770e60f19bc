/* Calibration metrics: streaming accumulator, compute, JSON, predictions file. Conventions are
 * documented in include/cigl/metrics.h. */
#include "cigl/metrics.h"

#include "cigl/error.h"
#include "cigl/h5io.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Layout of the reducible sums. A bin block is [count[B], confidence sum[B], correct sum[B]];
 * the classwise block is, per class k and 15-bin m, [sum of p_ik, sum of [y_i == k]]. */
enum {
    S_N = 0,
    S_CORRECT,
    S_NLL,
    S_BRIER,
    S_BIN15,
    S_BIN10 = S_BIN15 + 3 * METRICS_BINS,
    S_CLASSWISE = S_BIN10 + 3 * METRICS_BINS10
};

static const int coverage_percents[METRICS_COVERAGES] = METRICS_COVERAGE_PERCENTS;

int metrics_bin15(double c)
{
    const double t = ceil(15.0 * c);
    if (!(t >= 1.0)) return 1;
    return t >= (double)METRICS_BINS ? METRICS_BINS : (int)t;
}

int metrics_bin10(double c)
{
    const double t = floor(10.0 * c);
    if (!(t >= 0.0)) return 0;
    return t >= (double)(METRICS_BINS10 - 1) ? METRICS_BINS10 - 1 : (int)t;
}

int metrics_init(MetricsAcc *acc, int classes, size_t capacity_hint)
{
    memset(acc, 0, sizeof(*acc));
    if (classes < 2)
        return cigl_fail(CIGL_ERR_USAGE, "metrics: expected classes to be >= 2, got %d",
                         classes);
    acc->classes = classes;
    acc->n_sums = (size_t)S_CLASSWISE + (size_t)classes * METRICS_BINS * 2;
    acc->sums = cigl_calloc(acc->n_sums, sizeof(double), "metrics sums");
    acc->scratch = cigl_malloc(sizeof(double) * (size_t)classes, "metrics scratch");
    acc->cap_pairs = capacity_hint ? capacity_hint : 1024;
    acc->conf = cigl_malloc(sizeof(double) * acc->cap_pairs, "metrics confidences");
    acc->correct = cigl_malloc(acc->cap_pairs, "metrics correctness flags");
    if (!acc->sums || !acc->scratch || !acc->conf || !acc->correct) {
        metrics_free(acc);
        return CIGL_ERR_RUNTIME;
    }
    return CIGL_OK;
}

void metrics_free(MetricsAcc *acc)
{
    free(acc->sums);
    free(acc->scratch);
    free(acc->conf);
    free(acc->correct);
    memset(acc, 0, sizeof(*acc));
}

static int reserve_pairs(MetricsAcc *acc, size_t extra)
{
    if (acc->n_pairs + extra <= acc->cap_pairs) return CIGL_OK;
    size_t cap = acc->cap_pairs ? acc->cap_pairs : 1024;
    while (cap < acc->n_pairs + extra) cap *= 2;
    double *conf = realloc(acc->conf, sizeof(double) * cap);
    if (conf) acc->conf = conf;
    unsigned char *correct = conf ? realloc(acc->correct, cap) : NULL;
    if (correct) acc->correct = correct;
    if (!conf || !correct)
        return cigl_fail(CIGL_ERR_RUNTIME, "out of memory growing the metrics accumulator to "
                         "%zu samples; evaluate fewer samples at once", cap);
    acc->cap_pairs = cap;
    return CIGL_OK;
}

/* Adds one sample given its K log-probabilities. */
static void accumulate(MetricsAcc *acc, const double *logp, int y)
{
    const int K = acc->classes;
    double *s = acc->sums;
    int arg = 0;
    for (int k = 1; k < K; k++)
        if (logp[k] > logp[arg]) arg = k; /* ties: the lowest index */
    const double c = exp(logp[arg]);
    const int correct = arg == y;
    double brier = 0.0;
    double *cw = s + S_CLASSWISE;
    for (int k = 0; k < K; k++) {
        const double p = exp(logp[k]), hit = k == y ? 1.0 : 0.0;
        brier += (p - hit) * (p - hit);
        double *cell = cw + ((size_t)k * METRICS_BINS + (size_t)(metrics_bin15(p) - 1)) * 2;
        cell[0] += p;
        cell[1] += hit;
    }
    s[S_N] += 1.0;
    s[S_CORRECT] += correct;
    s[S_NLL] -= logp[y];
    s[S_BRIER] += brier;
    const int m15 = metrics_bin15(c) - 1, m10 = metrics_bin10(c);
    s[S_BIN15 + m15] += 1.0;
    s[S_BIN15 + METRICS_BINS + m15] += c;
    s[S_BIN15 + 2 * METRICS_BINS + m15] += correct;
    s[S_BIN10 + m10] += 1.0;
    s[S_BIN10 + METRICS_BINS10 + m10] += c;
    s[S_BIN10 + 2 * METRICS_BINS10 + m10] += correct;
    acc->conf[acc->n_pairs] = c;
    acc->correct[acc->n_pairs] = (unsigned char)correct;
    acc->n_pairs++;
}

static int check_batch(MetricsAcc *acc, const int32_t *labels, int n)
{
    if (!acc->sums)
        return cigl_fail(CIGL_ERR_USAGE, "metrics: expected an initialised accumulator, got "
                         "one without metrics_init");
    if (n < 0) return cigl_fail(CIGL_ERR_USAGE, "metrics: expected n to be >= 0, got %d", n);
    for (int i = 0; i < n; i++)
        if (labels[i] < 0 || labels[i] >= acc->classes)
            return cigl_fail(CIGL_ERR_USAGE, "metrics: expected the label of sample %zu (batch "
                             "index %d) to be a class in [0, %d), got %d",
                             acc->n_pairs + (size_t)i, i, acc->classes, (int)labels[i]);
    return reserve_pairs(acc, (size_t)n);
}

int metrics_add_logits_temperature(MetricsAcc *acc, const float *logits, const int32_t *labels,
                                   int n, double T)
{
    if (!(T > 0.0) || !isfinite(T))
        return cigl_fail(CIGL_ERR_USAGE, "metrics: expected the temperature to be finite and "
                         "> 0, got %g", T);
    int rc = check_batch(acc, labels, n);
    if (rc) return rc;
    const int K = acc->classes;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < K; k++)
            if (!isfinite(logits[(size_t)i * K + k]))
                return cigl_fail(CIGL_ERR_USAGE, "metrics: expected the logits of sample %zu "
                                 "(batch index %d, class %d) to be finite, got %g",
                                 acc->n_pairs + (size_t)i, i, k,
                                 (double)logits[(size_t)i * K + k]);
    double *logp = acc->scratch;
    for (int i = 0; i < n; i++) {
        const float *z = logits + (size_t)i * K;
        double zmax = -INFINITY;
        for (int k = 0; k < K; k++) {
            logp[k] = T == 1.0 ? (double)z[k] : (double)z[k] / T;
            if (logp[k] > zmax) zmax = logp[k];
        }
        double sum = 0.0;
        for (int k = 0; k < K; k++) sum += exp(logp[k] - zmax);
        const double lse = log(sum);
        for (int k = 0; k < K; k++) logp[k] = (logp[k] - zmax) - lse;
        accumulate(acc, logp, labels[i]);
    }
    return CIGL_OK;
}

int metrics_add_logits(MetricsAcc *acc, const float *logits, const int32_t *labels, int n)
{
    return metrics_add_logits_temperature(acc, logits, labels, n, 1.0);
}

int metrics_add_log_probs(MetricsAcc *acc, const double *log_probs, const int32_t *labels, int n)
{
    int rc = check_batch(acc, labels, n);
    if (rc) return rc;
    const int K = acc->classes;
    for (int i = 0; i < n; i++) {
        const double *lp = log_probs + (size_t)i * K;
        double total = 0.0;
        for (int k = 0; k < K; k++) {
            if (isnan(lp[k]) || lp[k] == INFINITY)
                return cigl_fail(CIGL_ERR_USAGE, "metrics: expected the log-probabilities of "
                                 "sample %zu (batch index %d, class %d) to be a number or "
                                 "-inf, got %g", acc->n_pairs + (size_t)i, i, k, lp[k]);
            total += exp(lp[k]);
        }
        if (!(fabs(total - 1.0) <= 1e-6))
            return cigl_fail(CIGL_ERR_USAGE, "metrics: expected the probabilities of sample %zu "
                             "(batch index %d) to sum to 1 within 1e-6, got %.17g",
                             acc->n_pairs + (size_t)i, i, total);
    }
    for (int i = 0; i < n; i++) accumulate(acc, log_probs + (size_t)i * K, labels[i]);
    return CIGL_OK;
}

int metrics_acc_merge(MetricsAcc *dst, const MetricsAcc *src)
{
    if (dst == src)
        return cigl_fail(CIGL_ERR_USAGE, "metrics: expected two distinct accumulators to "
                         "merge, got the same one twice");
    if (!dst->sums || !src->sums || dst->classes != src->classes)
        return cigl_fail(CIGL_ERR_USAGE, "metrics: expected accumulators with the same class "
                         "count to merge, got %d and %d", dst->classes, src->classes);
    int rc = reserve_pairs(dst, src->n_pairs);
    if (rc) return rc;
    for (size_t j = 0; j < dst->n_sums; j++) dst->sums[j] += src->sums[j];
    memcpy(dst->conf + dst->n_pairs, src->conf, sizeof(double) * src->n_pairs);
    memcpy(dst->correct + dst->n_pairs, src->correct, src->n_pairs);
    dst->n_pairs += src->n_pairs;
    return CIGL_OK;
}

void metrics_acc_sums(MetricsAcc *acc, double **ptr, size_t *n)
{
    *ptr = acc->sums;
    *n = acc->n_sums;
}

void metrics_acc_pairs(const MetricsAcc *acc, const double **conf, const unsigned char **correct,
                       size_t *n)
{
    *conf = acc->conf;
    *correct = acc->correct;
    *n = acc->n_pairs;
}

int metrics_acc_set_pairs(MetricsAcc *acc, const double *conf, const unsigned char *correct,
                          size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!(conf[i] >= 0.0 && conf[i] <= 1.0 + 1e-12))
            return cigl_fail(CIGL_ERR_USAGE, "metrics: expected the confidence of gathered "
                             "sample %zu to be in [0, 1], got %g", i, conf[i]);
        if (correct[i] > 1)
            return cigl_fail(CIGL_ERR_USAGE, "metrics: expected the correctness flag of "
                             "gathered sample %zu to be 0 or 1, got %d", i, correct[i]);
    }
    acc->n_pairs = 0;
    int rc = reserve_pairs(acc, n);
    if (rc) return rc;
    memcpy(acc->conf, conf, sizeof(double) * n);
    memcpy(acc->correct, correct, n);
    acc->n_pairs = n;
    return CIGL_OK;
}

typedef struct {
    double c;
    size_t i;
    unsigned char a;
} Pair;

static int cmp_pair_ascending(const void *pa, const void *pb)
{
    const Pair *a = pa, *b = pb;
    if (a->c != b->c) return a->c < b->c ? -1 : 1;
    return (a->i > b->i) - (a->i < b->i);
}

/* adaptive ECE, coverage accuracies and AURC from the pairs. */
static int compute_from_pairs(const MetricsAcc *acc, Metrics *out)
{
    const size_t N = acc->n_pairs;
    Pair *p = cigl_malloc(sizeof(Pair) * N, "metrics sort buffer");
    unsigned char *by_conf_desc = cigl_malloc(N, "metrics sort buffer");
    if (!p || !by_conf_desc) {
        free(p);
        free(by_conf_desc);
        return CIGL_ERR_RUNTIME;
    }
    for (size_t i = 0; i < N; i++) p[i] = (Pair){acc->conf[i], i, acc->correct[i]};
    qsort(p, N, sizeof(Pair), cmp_pair_ascending); /* confidence ascending, ties by index */

    /* Adaptive ECE: numpy.array_split sizes, the first N % 15 groups one larger. */
    const size_t q = N / METRICS_BINS, r = N % METRICS_BINS;
    double aece = 0.0;
    size_t start = 0;
    for (size_t g = 0; g < METRICS_BINS; g++) {
        const size_t size = q + (g < r ? 1 : 0);
        double sc = 0.0, sa = 0.0;
        for (size_t j = start; j < start + size; j++) {
            sc += p[j].c;
            sa += p[j].a;
        }
        aece += fabs(sa - sc); /* |G| |acc - conf| */
        start += size;
    }
    out->adaptive_ece = aece / (double)N;

    /* Confidence descending, ties by index ascending: walk the ascending order backwards one
     * run of equal confidences at a time, each run forwards. */
    size_t w = 0, end = N;
    while (end > 0) {
        size_t s = end - 1;
        while (s > 0 && p[s - 1].c == p[end - 1].c) s--;
        for (size_t j = s; j < end; j++) by_conf_desc[w++] = p[j].a;
        end = s;
    }
    size_t errors = 0, correct = 0;
    double aurc = 0.0;
    size_t keep[METRICS_COVERAGES];
    for (int j = 0; j < METRICS_COVERAGES; j++)
        keep[j] = ((size_t)coverage_percents[j] * N + 99) / 100; /* ceil(P N / 100) */
    for (size_t k = 1; k <= N; k++) {
        correct += by_conf_desc[k - 1];
        errors += !by_conf_desc[k - 1];
        aurc += (double)errors / (double)k;
        for (int j = 0; j < METRICS_COVERAGES; j++)
            if (keep[j] == k) out->coverage_accuracy[j] = (double)correct / (double)k;
    }
    out->aurc = aurc / (double)N;
    free(p);
    free(by_conf_desc);
    return CIGL_OK;
}

int metrics_compute(const MetricsAcc *acc, Metrics *out)
{
    memset(out, 0, sizeof(*out));
    if (!acc->sums)
        return cigl_fail(CIGL_ERR_USAGE, "metrics: expected an initialised accumulator, got "
                         "one without metrics_init");
    const double *s = acc->sums;
    const double N = s[S_N];
    if (!(N >= 1.0))
        return cigl_fail(CIGL_ERR_USAGE, "metrics: expected at least one sample, got %.0f", N);
    if ((double)acc->n_pairs != N)
        return cigl_fail(CIGL_ERR_USAGE, "metrics: expected as many (confidence, correct) pairs "
                         "as summed samples (%.0f), got %zu; gather every rank's pairs with "
                         "metrics_acc_pairs / metrics_acc_set_pairs", N, acc->n_pairs);
    const int K = acc->classes;
    out->n = acc->n_pairs;
    out->classes = K;
    out->accuracy = s[S_CORRECT] / N;
    out->nll = s[S_NLL] / N;
    out->brier = s[S_BRIER] / N;

    const double *cnt = s + S_BIN15, *conf = cnt + METRICS_BINS, *hit = conf + METRICS_BINS;
    double ece = 0.0, mce = 0.0;
    for (int m = 0; m < METRICS_BINS; m++) {
        out->bin_count[m] = (size_t)cnt[m];
        if (cnt[m] > 0) {
            out->bin_confidence[m] = conf[m] / cnt[m];
            out->bin_accuracy[m] = hit[m] / cnt[m];
            ece += fabs(hit[m] - conf[m]); /* |B_m| |acc - conf| */
            const double gap = fabs(out->bin_accuracy[m] - out->bin_confidence[m]);
            if (gap > mce) mce = gap;
        } else {
            out->bin_confidence[m] = NAN;
            out->bin_accuracy[m] = NAN;
        }
    }
    out->ece = ece / N;
    out->mce = mce;

    const double *cnt10 = s + S_BIN10, *conf10 = cnt10 + METRICS_BINS10,
                 *hit10 = conf10 + METRICS_BINS10;
    double ece10 = 0.0;
    for (int m = 0; m < METRICS_BINS10; m++)
        if (cnt10[m] > 0) ece10 += fabs(hit10[m] - conf10[m]);
    out->ece10 = ece10 / N;

    double cw = 0.0;
    for (int k = 0; k < K; k++) {
        const double *cell = s + S_CLASSWISE + (size_t)k * METRICS_BINS * 2;
        double ece_k = 0.0;
        for (size_t m = 0; m < METRICS_BINS; m++) ece_k += fabs(cell[2 * m + 1] - cell[2 * m]);
        cw += ece_k / N;
    }
    out->classwise_ece = cw / K;
    return compute_from_pairs(acc, out);
}

int metrics_from_logits(const float *logits, const int32_t *labels, size_t n, int classes,
                        Metrics *out)
{
    MetricsAcc acc;
    int rc = metrics_init(&acc, classes, n);
    /* batches, so that the int batch size of metrics_add_logits never overflows */
    const size_t step = 1u << 20;
    for (size_t i = 0; !rc && i < n; i += step) {
        const int nb = (int)(n - i < step ? n - i : step);
        rc = metrics_add_logits(&acc, logits + i * (size_t)classes, labels + i, nb);
    }
    if (!rc) rc = metrics_compute(&acc, out);
    metrics_free(&acc);
    return rc;
}

static void write_doubles(JsonWriter *w, const char *key, const double *v, int n)
{
    json_array_begin(w, key);
    for (int i = 0; i < n; i++) json_double(w, NULL, v[i]);
    json_array_end(w);
}

void metrics_write_json(const Metrics *m, JsonWriter *w)
{
    json_int(w, "n", (long long)m->n);
    json_int(w, "classes", m->classes);
    json_double(w, "accuracy", m->accuracy);
    json_double(w, "nll", m->nll);
    json_double(w, "brier", m->brier);
    json_double(w, "ece", m->ece);
    json_double(w, "ece10", m->ece10);
    json_double(w, "mce", m->mce);
    json_double(w, "adaptive_ece", m->adaptive_ece);
    json_double(w, "classwise_ece", m->classwise_ece);
    for (int j = 0; j < METRICS_COVERAGES; j++) {
        char key[40];
        snprintf(key, sizeof(key), "accuracy_at_coverage_%d", coverage_percents[j]);
        json_double(w, key, m->coverage_accuracy[j]);
    }
    json_double(w, "aurc", m->aurc);
    json_object_begin(w, "reliability");
    json_int(w, "bins", METRICS_BINS);
    json_array_begin(w, "count");
    for (int b = 0; b < METRICS_BINS; b++) json_int(w, NULL, (long long)m->bin_count[b]);
    json_array_end(w);
    write_doubles(w, "confidence", m->bin_confidence, METRICS_BINS);
    write_doubles(w, "accuracy", m->bin_accuracy, METRICS_BINS);
    json_object_end(w);
    json_object_begin(w, "conventions");
    json_string(w, "confidence", "max softmax probability, from the double-precision "
                "log-softmax of the logits (ensembles: log of the members' mean softmax)");
    json_string(w, "argmax_ties", "lowest class index");
    json_int(w, "ece_bins", METRICS_BINS);
    json_string(w, "ece_binning", "equal-width, upper edge inclusive: bin m = max(1, "
                "ceil(15 c)) in double, 1-based");
    json_int(w, "ece10_bins", METRICS_BINS10);
    json_string(w, "ece10_binning", "equal-width, lower edge inclusive (authors' convention): "
                "bin m = min(9, floor(10 c)) in double, 0-based");
    json_string(w, "mce", "max over non-empty 15-bins of |accuracy - mean confidence|");
    json_string(w, "adaptive_ece", "15 groups, sizes as numpy.array_split, of the samples "
                "sorted by confidence ascending, ties by sample index; gap weighted by size");
    json_string(w, "classwise_ece", "mean over all classes (absent ones included) of the "
                "15-bin ECE of p_k against [y == k]; p = 0 in bin 1");
    json_string(w, "nll", "mean of -ln p_y");
    json_string(w, "brier", "mean over samples of sum over classes of (p_k - [y == k])^2");
    json_string(w, "selective_order", "confidence descending, ties by sample index ascending");
    json_string(w, "accuracy_at_coverage", "accuracy of the first ceil(P N / 100) samples in "
                "selective order");
    json_string(w, "aurc", "mean over k = 1..N of the error rate among the k most confident "
                "samples");
    json_string(w, "reliability", "per 15-bin: count, mean confidence, accuracy (null when "
                "empty)");
    json_object_end(w);
}

int predictions_write(const char *path, const double *log_probs, const float *logits,
                      const int32_t *labels, size_t n, int classes)
{
    if (classes < 2)
        return cigl_fail(CIGL_ERR_USAGE, "predictions: expected classes to be >= 2, got %d",
                         classes);
    if (n == 0)
        return cigl_fail(CIGL_ERR_USAGE, "predictions: expected at least one sample, got 0");
    for (size_t i = 0; i < n; i++)
        if (labels[i] < 0 || labels[i] >= classes)
            return cigl_fail(CIGL_ERR_USAGE, "predictions: expected the label of sample %zu to "
                             "be a class in [0, %d), got %d", i, classes, (int)labels[i]);
    H5Atomic a;
    int rc = h5_atomic_create(&a, path);
    if (rc) return rc;
    const hsize_t dims[2] = {(hsize_t)n, (hsize_t)classes};
    rc = h5_write(a.file, "log_probs", H5T_NATIVE_DOUBLE, log_probs, 2, dims);
    if (!rc && logits) rc = h5_write(a.file, "logits", H5T_NATIVE_FLOAT, logits, 2, dims);
    if (!rc) rc = h5_write(a.file, "labels", H5T_NATIVE_INT32, labels, 1, dims);
    if (!rc) rc = h5_attr_int(a.file, "classes", classes);
    if (!rc) rc = h5_attr_int(a.file, "n", (long long)n);
    if (!rc) rc = h5_attr_string(a.file, "format", "cigl predictions 1");
    if (rc) {
        h5_atomic_abort(&a);
        return rc;
    }
    return h5_atomic_commit(&a);
}
