/* `cigl report RUN_DIR... [--out DIR] [--baseline METHOD]`: summarises finished runs.
 *
 * Each RUN_DIR must hold config.json (else: error, exit 2); one without final.json is listed as
 * unfinished and skipped. Runs are grouped into experiments by model, method, sparsity (the
 * method's sparsity_target in final.json; 0 for dense) and every other setting in config.json
 * except those that do not change the experiment (seed, out, threads, eval-batch-size,
 * provenance, config; data compares by file name). A setting absent from a run (older binary)
 * equals an "off" value: 0, false, null, "", "none" or "off". When final.json also holds
 * temperature-scaled test metrics, the run contributes a second entry, option
 * "temperature-scaled". A group's options column names the settings that differ between groups
 * (only those that apply to its method: a setting recorded in final.json's "method" object
 * applies to the runs whose object has it), omitting off values. The same seed twice in one
 * group is an error.
 *
 * Output (stdout, and DIR/report.md with DIR/sparsity.svg when --out is given):
 *   - a markdown table per group: test accuracy (%), ECE (15 bins), ECE10, NLL and Brier as
 *     mean ± sample standard deviation (n - 1) over seeds, "—" for the deviation when n = 1;
 *   - the ECE change relative to the baseline method (default rigl) at the same model and
 *     sparsity: 100 (mean ECE - mean baseline ECE) / mean baseline ECE, with a 95% percentile
 *     bootstrap interval (see report_relative_change). The reference is the baseline group
 *     that is not temperature-scaled and has the fewest options (first in table order on a
 *     tie);
 *   - sparsity.svg: per model, accuracy and ECE against sparsity (a categorical axis: the
 *     sparsities present, evenly spaced; dense runs at 0), one polyline with markers per
 *     method and options, mean with ± std error bars.
 * Metrics are read by dotted path with fallbacks, so both final.json layouts work:
 * "test.ece" (metrics_write_json) before "test_ece" (flat). */
#ifndef CIGL_REPORT_H
#define CIGL_REPORT_H
#include <stddef.h>
#include <stdio.h>

#define REPORT_BOOTSTRAP_RESAMPLES 10000

/* argv[0] is "report"; the rest are run directories and options. Returns the exit status
 * (0; CIGL_ERR_USAGE for bad arguments or input, after one line on stderr; CIGL_ERR_RUNTIME
 * when DIR cannot be written). */
int report_main(int argc, char **argv);
/* The same with the markdown written to `out` instead of stdout. */
int report_run(int argc, char **argv, FILE *out);

/* Mean and sample standard deviation (n - 1; NaN when n < 2). */
void report_mean_std(const double *x, size_t n, double *mean, double *std);

/* Relative change of the mean of x against the mean of base, in percent,
 * 100 (mean(x) - mean(base)) / mean(base), and its 95% bootstrap interval: x and base are
 * resampled independently with replacement (resample r draws x's i-th element as
 * rng_below(REPORT_BOOTSTRAP_SEED, REPORT_RNG_BOOTSTRAP, r, i, nx), base's j-th as index
 * nx + j of the same stream), `resamples` times; lo and hi are the 2.5th and 97.5th
 * percentiles of the resampled changes, linearly interpolated between order statistics
 * (numpy's default). Deterministic; lo = hi = estimate when nx = nb = 1. nx, nb >= 1. */
typedef struct {
    double estimate, lo, hi;
} RelativeChange;

#define REPORT_BOOTSTRAP_SEED 20240915u
#define REPORT_RNG_BOOTSTRAP 101u /* Philox purpose: outside rng.h's training purposes */

int report_relative_change(const double *x, size_t nx, const double *base, size_t nb,
                           int resamples, RelativeChange *out);

/* Scaling efficiency of a run (ips images/s on `ranks` ranks) against a base run:
 * (ips / base_ips) / (ranks / base_ranks); NaN when a rate or a rank count is not positive.
 * Strong scaling: the base has the same global batch; weak: the same batch per rank. */
double report_scaling_efficiency(double ips, long long ranks, double base_ips,
                                 long long base_ranks);

#endif
