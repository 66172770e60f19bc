/* Temperature scaling: one scalar T > 0 minimising the mean NLL of softmax(z / T).
 *
 * With b = 1/T and w_k = z_k - max_j z_j, one sample's NLL is
 *   f(b) = b (z_max - z_y) + ln sum_k exp(b w_k),
 *   f'(b) = (z_max - z_y) + E_p[w],   f''(b) = Var_p(w) >= 0   (p = softmax(b z)),
 * so the mean NLL is convex in b and its minimiser is the root of the increasing f'. We search
 * u = ln b = -ln T in [-5, 5] with Newton steps in b, kept inside a sign bracket and replaced
 * by bisection in u when they leave it. Sums are taken per fixed chunk of samples and the
 * chunks added in order, so the result does not depend on the OpenMP thread count. */
#include "cigl/metrics.h"

#include "cigl/error.h"

#include <math.h>
#include <stdlib.h>

#define CHUNK 1024
#define LOG_T_BOUND 5.0

typedef struct {
    const float *logits;
    const int32_t *labels;
    size_t n;
    int classes;
    size_t chunks;
    double *part; /* 3 per chunk */
} Problem;

/* Mean NLL, and its first and second derivatives with respect to b = 1/T. */
static void objective(const Problem *pb, double b, double *f, double *g, double *h)
{
    const int K = pb->classes;
#pragma omp parallel for schedule(static)
    for (long c = 0; c < (long)pb->chunks; c++) {
        const size_t i0 = (size_t)c * CHUNK, i1 = i0 + CHUNK < pb->n ? i0 + CHUNK : pb->n;
        double sf = 0.0, sg = 0.0, sh = 0.0;
        for (size_t i = i0; i < i1; i++) {
            const float *z = pb->logits + i * (size_t)K;
            double zmax = z[0];
            for (int k = 1; k < K; k++)
                if (z[k] > zmax) zmax = z[k];
            double s0 = 0.0, s1 = 0.0, s2 = 0.0;
            for (int k = 0; k < K; k++) {
                const double w = (double)z[k] - zmax, e = exp(b * w);
                s0 += e;
                s1 += e * w;
                s2 += e * w * w;
            }
            const double margin = zmax - (double)z[pb->labels[i]];
            const double ew = s1 / s0, var = s2 / s0 - ew * ew;
            sf += b * margin + log(s0);
            sg += margin + ew;
            sh += var > 0.0 ? var : 0.0;
        }
        pb->part[3 * c] = sf;
        pb->part[3 * c + 1] = sg;
        pb->part[3 * c + 2] = sh;
    }
    double sf = 0.0, sg = 0.0, sh = 0.0;
    for (size_t c = 0; c < pb->chunks; c++) {
        sf += pb->part[3 * c];
        sg += pb->part[3 * c + 1];
        sh += pb->part[3 * c + 2];
    }
    *f = sf / (double)pb->n;
    if (g) *g = sg / (double)pb->n;
    if (h) *h = sh / (double)pb->n;
}

static int problem_init(Problem *pb, const float *logits, const int32_t *labels, size_t n,
                        int classes)
{
    pb->part = NULL;
    if (classes < 2)
        return cigl_fail(CIGL_ERR_USAGE, "temperature: expected classes to be >= 2, got %d",
                         classes);
    if (n == 0)
        return cigl_fail(CIGL_ERR_USAGE, "temperature: expected at least one sample, got 0");
    for (size_t i = 0; i < n; i++) {
        if (labels[i] < 0 || labels[i] >= classes)
            return cigl_fail(CIGL_ERR_USAGE, "temperature: expected the label of sample %zu to "
                             "be a class in [0, %d), got %d", i, classes, (int)labels[i]);
        for (int k = 0; k < classes; k++)
            if (!isfinite(logits[i * (size_t)classes + k]))
                return cigl_fail(CIGL_ERR_USAGE, "temperature: expected the logits of sample "
                                 "%zu (class %d) to be finite, got %g", i, k,
                                 (double)logits[i * (size_t)classes + k]);
    }
    pb->logits = logits;
    pb->labels = labels;
    pb->n = n;
    pb->classes = classes;
    pb->chunks = (n + CHUNK - 1) / CHUNK;
    pb->part = cigl_malloc(sizeof(double) * 3 * pb->chunks, "temperature scaling sums");
    return pb->part ? CIGL_OK : CIGL_ERR_RUNTIME;
}

int temperature_nll(const float *logits, const int32_t *labels, size_t n, int classes, double T,
                    double *nll)
{
    if (!(T > 0.0) || !isfinite(T))
        return cigl_fail(CIGL_ERR_USAGE, "temperature: expected T to be finite and > 0, got %g",
                         T);
    Problem pb;
    int rc = problem_init(&pb, logits, labels, n, classes);
    if (rc) return rc;
    objective(&pb, 1.0 / T, nll, NULL, NULL);
    free(pb.part);
    return CIGL_OK;
}

int temperature_fit(const float *logits, const int32_t *labels, size_t n, int classes, double *T)
{
    *T = 1.0;
    Problem pb;
    int rc = problem_init(&pb, logits, labels, n, classes);
    if (rc) return rc;
    double f1, f, g, h;
    objective(&pb, 1.0, &f1, NULL, NULL);
    double lo = -LOG_T_BOUND, hi = LOG_T_BOUND, u;
    objective(&pb, exp(lo), &f, &g, &h);
    if (g >= 0.0) {
        u = lo; /* increasing over the whole range: the largest T */
    } else {
        objective(&pb, exp(hi), &f, &g, &h);
        if (g <= 0.0) {
            u = hi; /* decreasing over the whole range: the smallest T */
        } else {
            u = 0.0;
            objective(&pb, 1.0, &f, &g, &h);
            for (int it = 0; it < 200 && g != 0.0; it++) {
                if (g > 0.0) hi = u;
                else lo = u;
                const double b = exp(u), step = h > 0.0 ? g / h : 0.0;
                double next = 0.5 * (lo + hi);
                if (h > 0.0 && b - step > exp(lo) && b - step < exp(hi)) next = log(b - step);
                const double moved = fabs(next - u);
                u = next;
                objective(&pb, exp(u), &f, &g, &h);
                if (moved < 1e-13 || hi - lo < 1e-13) break;
            }
        }
    }
    objective(&pb, exp(u), &f, NULL, NULL);
    free(pb.part);
    if (f < f1) *T = exp(-u);
    return CIGL_OK;
}
