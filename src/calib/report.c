/* `cigl report`: groups finished runs into experiments and prints mean ± std tables, the ECE
 * change against a baseline method with bootstrap intervals, and an SVG of accuracy and ECE
 * against sparsity. See include/cigl/report.h for the rules. */
#include "cigl/report.h"
#include "cigl/svg.h"

#include "cigl/config.h"
#include "cigl/error.h"
#include "cigl/h5io.h"
#include "cigl/json_read.h"
#include "cigl/method.h"
#include "cigl/rng.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { M_ACC, M_ECE, M_ECE10, M_NLL, M_BRIER, N_METRICS };
static const char *const metric_key[N_METRICS] = {"accuracy", "ece", "ece10", "nll", "brier"};
static const char *const metric_title[N_METRICS] = {"accuracy (%)", "ECE", "ECE10", "NLL",
                                                    "Brier"};
static const int metric_decimals[N_METRICS] = {2, 4, 4, 4, 4};

/* Where final.json keeps the test metrics: "<prefix>.<metric>" first, then "<flat><metric>". */
static const char *const plain_prefix[] = {"test", NULL};
static const char *const plain_flat = "test_";
static const char *const scaled_prefix[] = {"test_scaled", "test_temperature_scaled",
                                            "temperature_scaled.test", NULL};
static const char *const scaled_flat = "test_scaled_";

/* config.json members that do not define the experiment: the grouping keys themselves, and
 * how a run was carried out (threads, data mode, checkpoints, resuming) */
static const char *const ignored_setting[] = {
    "seed", "out", "threads", "eval-batch-size", "provenance", "config", "sparsity", "method",
    "model", "data-mode", "check-every", "checkpoint-every", "checkpoint-minutes",
    "keep", "resume", "overwrite", "dry-run", "kernels", NULL};

typedef struct {
    const char *dir;
    JsonValue *config, *final;
} RunDir;

typedef struct {
    int run;
    int scaled;
    const char *model, *method;
    double sparsity;
    long long seed, ranks;    /* ranks: final.json's (1 when absent) */
    double metric[N_METRICS]; /* NaN when absent; accuracy in % */
    int group;
} Entry;

typedef struct {
    int *member;              /* entry indices, by seed */
    size_t n, cap;
    char options[512];
    size_t base_len;          /* length of options before ", temperature-scaled" */
    int n_options;
    double mean[N_METRICS], sd[N_METRICS];
    size_t count[N_METRICS];
} Group;

typedef struct {
    const char *out_dir, *baseline;
    RunDir *runs;
    int n_runs;
    const char **unfinished;
    int n_unfinished;
    Entry *e;
    int n_e;
    const char **keys;        /* setting names, first-seen order */
    int n_keys;
    unsigned char *method_specific; /* per key */
    Group *g;
    int n_g;
    int *ref;                 /* per group: reference group index or -1 */
    JsonValue **defaults;     /* per run: cigl train's defaults for its method, resolved as
                               * config.json writes them (the mechanics options' auto) */
} Report;

/* ---- statistics ----------------------------------------------------------------------- */

void report_mean_std(const double *x, size_t n, double *mean, double *std)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += x[i];
    const double m = n ? s / (double)n : NAN;
    double ss = 0;
    for (size_t i = 0; i < n; i++) ss += (x[i] - m) * (x[i] - m);
    *mean = m;
    *std = n >= 2 ? sqrt(ss / (double)(n - 1)) : NAN;
}

static double relative_percent(double mean, double base) { return 100.0 * (mean - base) / base; }

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    if (isnan(x) || isnan(y)) return isnan(x) - isnan(y); /* NaN last */
    return x < y ? -1 : x > y;
}

/* numpy.percentile's default (linear) on sorted v[0..n) */
static double percentile(const double *v, size_t n, double q)
{
    const double pos = q * (double)(n - 1);
    const size_t i = (size_t)floor(pos);
    if (i + 1 >= n) return v[n - 1];
    const double f = pos - (double)i;
    return f == 0 ? v[i] : v[i] + f * (v[i + 1] - v[i]);
}

int report_relative_change(const double *x, size_t nx, const double *base, size_t nb,
                           int resamples, RelativeChange *out)
{
    if (!nx || !nb || resamples < 1)
        return cigl_fail(CIGL_ERR_USAGE, "relative change needs samples on both sides");
    if (nx > UINT32_MAX || nb > UINT32_MAX - nx)
        return cigl_fail(CIGL_ERR_USAGE, "too many seeds for the bootstrap");
    double mx, mb, sd;
    report_mean_std(x, nx, &mx, &sd);
    report_mean_std(base, nb, &mb, &sd);
    out->estimate = relative_percent(mx, mb);
    double *r = cigl_malloc(sizeof(double) * (size_t)resamples, "bootstrap resamples");
    if (!r) return CIGL_ERR_RUNTIME;
    for (int b = 0; b < resamples; b++) {
        double sx = 0, sb = 0;
        for (size_t i = 0; i < nx; i++)
            sx += x[rng_below(REPORT_BOOTSTRAP_SEED, REPORT_RNG_BOOTSTRAP, (uint64_t)b, i,
                              (uint32_t)nx)];
        for (size_t j = 0; j < nb; j++)
            sb += base[rng_below(REPORT_BOOTSTRAP_SEED, REPORT_RNG_BOOTSTRAP, (uint64_t)b, nx + j,
                                 (uint32_t)nb)];
        r[b] = relative_percent(sx / (double)nx, sb / (double)nb);
    }
    qsort(r, (size_t)resamples, sizeof(double), cmp_double);
    out->lo = percentile(r, (size_t)resamples, 0.025);
    out->hi = percentile(r, (size_t)resamples, 0.975);
    free(r);
    return CIGL_OK;
}

/* ---- reading runs --------------------------------------------------------------------- */

static int join(char *buf, size_t len, const char *dir, const char *name)
{
    const size_t d = strlen(dir);
    const int k = snprintf(buf, len, "%s%s%s", dir, d && dir[d - 1] == '/' ? "" : "/", name);
    return k < 0 || (size_t)k >= len
               ? cigl_fail(CIGL_ERR_USAGE, "report: path '%s/%s' is too long", dir, name)
               : CIGL_OK;
}

/* First present metric of `key` under the prefixes, then the flat name. */
static double read_metric(const JsonValue *final, const char *const *prefix, const char *flat,
                          const char *key)
{
    char path[128];
    for (; *prefix; prefix++) {
        snprintf(path, sizeof(path), "%s.%s", *prefix, key);
        const char *const paths[] = {path, NULL};
        double v;
        if (json_number(json_path_first(final, paths), &v)) return v;
    }
    snprintf(path, sizeof(path), "%s%s", flat, key);
    return json_path_number(final, path, NAN);
}

static int load_run(const char *dir, RunDir *r, int *finished)
{
    char path[CIGL_PATH_MAX], err[256];
    struct stat st;
    *finished = 0;
    if (stat(dir, &st) != 0)
        return cigl_fail(CIGL_ERR_USAGE, "report: run directory '%s': %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return cigl_fail(CIGL_ERR_USAGE, "report: '%s' is not a directory; pass run directories "
                         "written by 'cigl train --out'", dir);
    if (join(path, sizeof(path), dir, "config.json")) return CIGL_ERR_USAGE;
    if (access(path, F_OK) != 0)
        return cigl_fail(CIGL_ERR_USAGE, "report: %s: no such file, so '%s' is not a cigl run "
                         "directory; pass directories written by 'cigl train --out'", path, dir);
    r->config = json_parse_file(path, err, sizeof(err));
    if (!r->config)
        return cigl_fail(CIGL_ERR_USAGE, "report: %s: %s; fix the file or leave the run out",
                         path, err);
    if (json_type(r->config) != JSON_OBJECT)
        return cigl_fail(CIGL_ERR_USAGE, "report: %s: expected a JSON object, got %s", path,
                         json_type_name(json_type(r->config)));
    static const char *const need_string[] = {"model", "method"};
    for (int i = 0; i < 2; i++)
        if (!json_path_string(r->config, need_string[i], NULL))
            return cigl_fail(CIGL_ERR_USAGE, "report: %s: no \"%s\" string; is it a config.json "
                             "written by 'cigl train'?", path, need_string[i]);
    long long seed;
    if (!json_integer(json_get(r->config, "seed"), &seed))
        return cigl_fail(CIGL_ERR_USAGE, "report: %s: no integer \"seed\"; is it a config.json "
                         "written by 'cigl train'?", path);
    if (join(path, sizeof(path), dir, "final.json")) return CIGL_ERR_USAGE;
    if (access(path, F_OK) != 0) return CIGL_OK; /* unfinished */
    r->final = json_parse_file(path, err, sizeof(err));
    if (!r->final)
        return cigl_fail(CIGL_ERR_USAGE, "report: %s: %s; fix the file or leave the run out",
                         path, err);
    if (json_type(r->final) != JSON_OBJECT)
        return cigl_fail(CIGL_ERR_USAGE, "report: %s: expected a JSON object, got %s", path,
                         json_type_name(json_type(r->final)));
    if (isnan(read_metric(r->final, plain_prefix, plain_flat, "accuracy")))
        return cigl_fail(CIGL_ERR_USAGE, "report: %s: no test accuracy (\"test.accuracy\" or "
                         "\"test_accuracy\"); is it a final.json written by 'cigl train'?", path);
    *finished = 1;
    return CIGL_OK;
}

static int add_entry(Report *rp, int run, int scaled)
{
    const RunDir *r = &rp->runs[run];
    Entry *e = &rp->e[rp->n_e];
    memset(e, 0, sizeof(*e));
    e->run = run;
    e->scaled = scaled;
    e->model = json_path_string(r->config, "model", "");
    e->method = json_path_string(r->config, "method", "");
    e->seed = json_path_integer(r->config, "seed", 0);
    e->ranks = json_path_integer(r->final, "ranks", 1);
    e->sparsity = 0;
    if (strcmp(e->method, "dense") != 0)
        e->sparsity = json_path_number(r->final, "method.sparsity_target",
                                       json_path_number(r->config, "sparsity", 0));
    for (int m = 0; m < N_METRICS; m++)
        e->metric[m] = read_metric(r->final, scaled ? scaled_prefix : plain_prefix,
                                   scaled ? scaled_flat : plain_flat, metric_key[m]);
    if (scaled && isnan(e->metric[M_ACC])) return 0;
    e->metric[M_ACC] *= 100.0;
    e->group = -1;
    rp->n_e++;
    return 1;
}

/* ---- settings ------------------------------------------------------------------------- */

static int is_ignored(const char *key)
{
    for (int i = 0; ignored_setting[i]; i++)
        if (!strcmp(key, ignored_setting[i])) return 1;
    return 0;
}

static const char *base_name(const char *s)
{
    const char *b = strrchr(s, '/');
    return b ? b + 1 : s;
}

/* A run's setting; one its config.json lacks (written before the option existed) is the
 * default, which is what that run did. */
static const JsonValue *setting(const Report *rp, const Entry *e, int k)
{
    const JsonValue *v = json_get(rp->runs[e->run].config, rp->keys[k]);
    return v ? v : json_get(rp->defaults[e->run], rp->keys[k]);
}

/* "off": absent, null, false, 0, "", "none", "off" */
static int is_off(const JsonValue *v)
{
    double d;
    int b;
    const char *s = json_string_value(v);
    switch (json_type(v)) {
    case JSON_NULL: return 1;
    case JSON_BOOL: return json_boolean(v, &b) && !b;
    case JSON_NUMBER: return json_number(v, &d) && d == 0;
    case JSON_STRING: return !*s || !strcmp(s, "none") || !strcmp(s, "off");
    default: return 0;
    }
}

static int setting_equal(const Report *rp, int k, const JsonValue *a, const JsonValue *b)
{
    if (is_off(a) || is_off(b)) return is_off(a) && is_off(b);
    if (json_type(a) != json_type(b)) return 0;
    double x, y;
    int p, q;
    switch (json_type(a)) {
    case JSON_BOOL: return json_boolean(a, &p) && json_boolean(b, &q) && p == q;
    case JSON_NUMBER: return json_number(a, &x) && json_number(b, &y) && x == y;
    case JSON_STRING:
        if (!strcmp(rp->keys[k], "data"))
            return !strcmp(base_name(json_string_value(a)), base_name(json_string_value(b)));
        return json_string_length(a) == json_string_length(b) &&
               !memcmp(json_string_value(a), json_string_value(b), json_string_length(a));
    default: return 1;
    }
}

static int cmp_dir(const void *a, const void *b)
{
    return strcmp(((const RunDir *)a)->dir, ((const RunDir *)b)->dir);
}

/* The settings of every finished run, in config.json order (the runs are sorted by directory
 * name first, so the options columns do not depend on the argument order). */
static int collect_keys(Report *rp)
{
    int cap = 0;
    for (int r = 0; r < rp->n_runs; r++) {
        if (!rp->runs[r].final) continue;
        const JsonValue *c = rp->runs[r].config;
        for (size_t i = 0; i < json_object_count(c); i++) {
            const char *key = json_object_key(c, i);
            const JsonType t = json_type(json_object_value(c, i));
            if (is_ignored(key) || t == JSON_OBJECT || t == JSON_ARRAY) continue;
            int seen = 0;
            for (int k = 0; k < rp->n_keys && !seen; k++) seen = !strcmp(rp->keys[k], key);
            if (seen) continue;
            if (rp->n_keys == cap) {
                cap = cap ? 2 * cap : 64;
                const char **nk = realloc(rp->keys, sizeof(*nk) * (size_t)cap);
                if (!nk) return cigl_fail(CIGL_ERR_RUNTIME, "report: out of memory");
                rp->keys = nk;
            }
            rp->keys[rp->n_keys++] = key;
        }
    }
    /* the defaults, so that a group is labelled by what it changed (cigl without the random
     * mask as random-mask-rate=0, plain cigl with nothing) */
    /* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers, one per run */
    rp->defaults = cigl_calloc((size_t)rp->n_runs + 1, sizeof(*rp->defaults), "report defaults");
    if (!rp->defaults) return CIGL_ERR_RUNTIME;
    for (int r = 0; r < rp->n_runs; r++) {
        Config defaults;
        config_defaults(&defaults);
        const JsonValue *rc = rp->runs[r].config;
        const char *method = json_string_value(json_get(rc, "method"));
        if (method) snprintf(defaults.method, sizeof defaults.method, "%s", method);
        /* the default snapshot window follows the run's schedule (docs/method.md) */
        defaults.epochs = (int)json_path_number(rc, "epochs", defaults.epochs);
        defaults.update_end = json_path_number(rc, "update-end", defaults.update_end);
        defaults.average_start = json_path_number(rc, "average-start", defaults.average_start);
        method_resolve_mechanics(&defaults); /* an unknown method keeps the auto values */
        char *text = config_json_text(&defaults, 0), err[200];
        rp->defaults[r] = text ? json_parse(text, strlen(text), err, sizeof(err)) : NULL;
        free(text);
        if (!rp->defaults[r]) return cigl_fail(CIGL_ERR_RUNTIME, "report: out of memory");
    }
    rp->method_specific = cigl_calloc((size_t)rp->n_keys + 1, 1, "report settings");
    if (!rp->method_specific) return CIGL_ERR_RUNTIME;
    for (int k = 0; k < rp->n_keys; k++) {
        char name[128];
        snprintf(name, sizeof(name), "%s", rp->keys[k]);
        for (char *s = name; *s; s++) *s = *s == '-' ? '_' : *s;
        for (int r = 0; r < rp->n_runs && !rp->method_specific[k]; r++)
            rp->method_specific[k] = json_get(json_get(rp->runs[r].final, "method"), name) != NULL;
    }
    return CIGL_OK;
}

static int applies(const Report *rp, const Entry *e, int k)
{
    if (!rp->method_specific[k]) return 1;
    char name[128];
    snprintf(name, sizeof(name), "%s", rp->keys[k]);
    for (char *s = name; *s; s++) *s = *s == '-' ? '_' : *s;
    return json_get(json_get(rp->runs[e->run].final, "method"), name) != NULL;
}

static int same_experiment(const Report *rp, const Entry *a, const Entry *b)
{
    /* the rank count changes the results (the sum order of the allreduce) */
    if (strcmp(a->model, b->model) || strcmp(a->method, b->method) || a->scaled != b->scaled ||
        a->ranks != b->ranks || fabs(a->sparsity - b->sparsity) > 1e-9)
        return 0;
    for (int k = 0; k < rp->n_keys; k++)
        if (!setting_equal(rp, k, setting(rp, a, k), setting(rp, b, k))) return 0;
    return 1;
}

/* ---- grouping ------------------------------------------------------------------------- */

/* Table and legend order: the method table's (method.h); unknown methods after them. */
static int method_rank(const char *m)
{
    const MethodOps *o = method_find(m);
    if (o) return (int)(o - method_table);
    int n = 0;
    while (method_table[n].name) n++;
    return n;
}

static int group_cmp(const Report *rp, const Group *a, const Group *b)
{
    const Entry *x = &rp->e[a->member[0]], *y = &rp->e[b->member[0]];
    int c = strcmp(x->model, y->model);
    if (c) return c;
    if (fabs(x->sparsity - y->sparsity) > 1e-9) return x->sparsity < y->sparsity ? -1 : 1;
    const int rx = method_rank(x->method), ry = method_rank(y->method);
    if (rx != ry) return rx < ry ? -1 : 1;
    if ((c = strcmp(x->method, y->method))) return c;
    /* options, a temperature-scaled variant right after its unscaled group */
    const size_t n = a->base_len < b->base_len ? a->base_len : b->base_len;
    if ((c = strncmp(a->options, b->options, n))) return c;
    if (a->base_len != b->base_len) return a->base_len < b->base_len ? -1 : 1;
    if (x->scaled != y->scaled) return x->scaled - y->scaled;
    return strcmp(rp->runs[x->run].dir, rp->runs[y->run].dir);
}

/* Appends "text" to the options string, separated by ", ". */
static void add_option(Group *g, const char *text)
{
    const size_t k = strlen(g->options);
    snprintf(g->options + k, sizeof(g->options) - k, "%s%s", k ? ", " : "", text);
    g->n_options++;
}

static void describe(const Report *rp, Group *g)
{
    const Entry *e = &rp->e[g->member[0]];
    g->options[0] = 0;
    g->n_options = 0;
    for (int k = 0; k < rp->n_keys; k++) {
        if (!applies(rp, e, k)) continue;
        const JsonValue *v = setting(rp, e, k), *d0 = json_get(rp->defaults[e->run], rp->keys[k]);
        if (d0 ? setting_equal(rp, k, v, d0) : is_off(v)) continue;
        int varies = 0; /* among the groups it applies to */
        for (int h = 0; h < rp->n_g && !varies; h++) {
            const Entry *f = &rp->e[rp->g[h].member[0]];
            varies = applies(rp, f, k) && !setting_equal(rp, k, v, setting(rp, f, k));
        }
        if (!varies) continue;
        char text[160];
        double d;
        int on;
        if (json_type(v) == JSON_BOOL && json_boolean(v, &on))
            snprintf(text, sizeof(text), on ? "%s" : "%s=false", rp->keys[k]);
        else if (json_number(v, &d)) snprintf(text, sizeof(text), "%s=%g", rp->keys[k], d);
        else if (json_string_value(v))
            snprintf(text, sizeof(text), "%s=%s", rp->keys[k],
                     !strcmp(rp->keys[k], "data") ? base_name(json_string_value(v))
                                                  : json_string_value(v));
        else continue;
        add_option(g, text);
    }
    for (int h = 0; h < rp->n_g; h++)
        if (rp->e[rp->g[h].member[0]].ranks != e->ranks) {
            char text[40];
            snprintf(text, sizeof(text), "ranks=%lld", e->ranks);
            add_option(g, text);
            break;
        }
    g->base_len = strlen(g->options);
    if (e->scaled) add_option(g, "temperature-scaled");
}

/* The group's values of metric m that are present (in seed order) into out; their count. */
static size_t metric_values(const Report *rp, const Group *g, int m, double *out)
{
    size_t k = 0;
    for (size_t j = 0; j < g->n; j++)
        if (!isnan(rp->e[g->member[j]].metric[m])) out[k++] = rp->e[g->member[j]].metric[m];
    return k;
}

static int cmp_seed(const void *a, const void *b, const Report *rp)
{
    const Entry *x = &rp->e[*(const int *)a], *y = &rp->e[*(const int *)b];
    return x->seed < y->seed ? -1 : x->seed > y->seed;
}

static int build_groups(Report *rp)
{
    rp->g = cigl_calloc((size_t)rp->n_e + 1, sizeof(Group), "report groups");
    rp->ref = cigl_malloc(sizeof(int) * ((size_t)rp->n_e + 1), "report groups");
    if (!rp->g || !rp->ref) return CIGL_ERR_RUNTIME;
    for (int i = 0; i < rp->n_e; i++) {
        Entry *e = &rp->e[i];
        int gi = -1;
        for (int h = 0; h < rp->n_g && gi < 0; h++)
            if (same_experiment(rp, &rp->e[rp->g[h].member[0]], e)) gi = h;
        if (gi < 0) gi = rp->n_g++;
        Group *g = &rp->g[gi];
        if (g->n == g->cap) {
            const size_t cap = g->cap ? 2 * g->cap : 4;
            int *m = realloc(g->member, sizeof(int) * cap);
            if (!m) return cigl_fail(CIGL_ERR_RUNTIME, "report: out of memory");
            g->member = m;
            g->cap = cap;
        }
        for (size_t j = 0; j < g->n; j++) {
            const Entry *f = &rp->e[g->member[j]];
            if (f->seed == e->seed)
                return cigl_fail(CIGL_ERR_USAGE, "report: '%s' and '%s' are the same experiment "
                                 "with the same seed %lld; pass each run once",
                                 rp->runs[f->run].dir, rp->runs[e->run].dir, e->seed);
        }
        g->member[g->n++] = i;
        e->group = gi;
    }
    for (int h = 0; h < rp->n_g; h++) {
        Group *g = &rp->g[h];
        for (size_t a = 1; a < g->n; a++) /* insertion sort by seed (groups are small) */
            for (size_t b = a; b > 0 && cmp_seed(&g->member[b - 1], &g->member[b], rp) > 0; b--) {
                const int t = g->member[b];
                g->member[b] = g->member[b - 1];
                g->member[b - 1] = t;
            }
        describe(rp, g);
        for (int m = 0; m < N_METRICS; m++) {
            double v[64], *buf = g->n <= 64 ? v : cigl_malloc(sizeof(double) * g->n, "report");
            if (!buf) return CIGL_ERR_RUNTIME;
            g->count[m] = metric_values(rp, g, m, buf);
            report_mean_std(buf, g->count[m], &g->mean[m], &g->sd[m]);
            if (buf != v) free(buf);
        }
    }
    /* table order: insertion sort of group indices, then one permutation */
    int *idx = cigl_malloc(sizeof(int) * ((size_t)rp->n_g + 1), "report groups");
    Group *sorted = cigl_malloc(sizeof(Group) * ((size_t)rp->n_g + 1), "report groups");
    if (!idx || !sorted) {
        free(idx);
        free(sorted);
        return CIGL_ERR_RUNTIME;
    }
    for (int a = 0; a < rp->n_g; a++) {
        int b = a;
        for (; b > 0 && group_cmp(rp, &rp->g[idx[b - 1]], &rp->g[a]) > 0; b--) idx[b] = idx[b - 1];
        idx[b] = a;
    }
    for (int a = 0; a < rp->n_g; a++) sorted[a] = rp->g[idx[a]];
    memcpy(rp->g, sorted, sizeof(Group) * (size_t)rp->n_g);
    free(sorted);
    free(idx);
    for (int h = 0; h < rp->n_g; h++)
        for (size_t j = 0; j < rp->g[h].n; j++) rp->e[rp->g[h].member[j]].group = h;
    /* reference: the baseline group at the same model and sparsity, not temperature-scaled,
     * with the fewest options (first in table order on a tie) */
    for (int h = 0; h < rp->n_g; h++) {
        const Entry *x = &rp->e[rp->g[h].member[0]];
        rp->ref[h] = -1;
        for (int c = 0; c < rp->n_g; c++) {
            const Entry *y = &rp->e[rp->g[c].member[0]];
            if (strcmp(y->method, rp->baseline) || y->scaled || strcmp(x->model, y->model) ||
                fabs(x->sparsity - y->sparsity) > 1e-9)
                continue;
            if (rp->ref[h] < 0 || rp->g[c].n_options < rp->g[rp->ref[h]].n_options) rp->ref[h] = c;
        }
    }
    return CIGL_OK;
}

/* ---- markdown ------------------------------------------------------------------------- */

static void md_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '|' || *s == '\\') fputc('\\', f);
        fputc(*s == '\n' ? ' ' : *s, f);
    }
}

static void md_stat(FILE *f, const Group *g, int m)
{
    const int d = metric_decimals[m];
    if (!g->count[m]) {
        fputs(" n/a |", f);
        return;
    }
    if (g->count[m] >= 2) fprintf(f, " %.*f ± %.*f", d, g->mean[m], d, g->sd[m]);
    else fprintf(f, " %.*f ± —", d, g->mean[m]);
    if (g->count[m] < g->n) fprintf(f, " (%zu of %zu)", g->count[m], g->n);
    fputs(" |", f);
}

static void md_group_head(FILE *f, const Report *rp, const Group *g)
{
    const Entry *e = &rp->e[g->member[0]];
    fputs("| ", f);
    md_text(f, e->model);
    fputs(" | ", f);
    md_text(f, e->method);
    fputs(" | ", f);
    md_text(f, g->options[0] ? g->options : "—");
    fprintf(f, " | %g |", e->sparsity);
}

/* ---- throughput and scaling ----------------------------------------------------------- */

typedef struct {
    const char *model, *method, *data;
    double sparsity, ips;
    long long ranks, threads, batch;
} Perf;

static Perf perf_of(const Report *rp, int r)
{
    const RunDir *d = &rp->runs[r];
    Perf p;
    p.model = json_path_string(d->config, "model", "");
    p.method = json_path_string(d->config, "method", "");
    p.data = base_name(json_path_string(d->config, "data", ""));
    p.sparsity = strcmp(p.method, "dense") ? json_path_number(d->config, "sparsity", 0) : 0;
    p.ips = json_path_number(d->final, "train_images_per_second", NAN);
    p.ranks = json_path_integer(d->final, "ranks", 1);
    p.threads = json_path_integer(d->config, "threads", 1);
    p.batch = json_path_integer(d->config, "batch-size", 0);
    return p;
}

/* The same work per step at another rank count: strong scaling keeps the global batch, weak
 * scaling the batch per rank. */
static int same_series(const Perf *a, const Perf *b, int weak)
{
    if (strcmp(a->model, b->model) || strcmp(a->method, b->method) || strcmp(a->data, b->data) ||
        fabs(a->sparsity - b->sparsity) > 1e-9 || a->threads != b->threads)
        return 0;
    return weak ? a->batch * b->ranks == b->batch * a->ranks : a->batch == b->batch;
}

/* Efficiency of run r against the run of its series with the fewest ranks (the first in
 * directory order on a tie): (img/s / base img/s) / (ranks / base ranks). NaN: no series;
 * 1 for the base itself when the series has another run. */
double report_scaling_efficiency(double ips, long long ranks, double base_ips,
                                 long long base_ranks)
{
    if (!(ips > 0) || !(base_ips > 0) || ranks < 1 || base_ranks < 1) return NAN;
    return (ips / base_ips) / ((double)ranks / (double)base_ranks);
}

static double series_efficiency(const Report *rp, int r, int weak)
{
    const Perf p = perf_of(rp, r);
    int base = -1, others = 0;
    for (int j = 0; j < rp->n_runs; j++) {
        if (!rp->runs[j].final) continue;
        const Perf q = perf_of(rp, j);
        if (!(q.ips > 0) || !same_series(&p, &q, weak)) continue;
        if (q.ranks != p.ranks) others = 1;
        if (base < 0 || q.ranks < perf_of(rp, base).ranks) base = j;
    }
    if (!others || base < 0) return NAN;
    const Perf b = perf_of(rp, base);
    return report_scaling_efficiency(p.ips, p.ranks, b.ips, b.ranks);
}

static void md_percent(FILE *f, double v)
{
    if (isnan(v)) fputs(" — |", f);
    else fprintf(f, " %.0f |", 100 * v);
}

static int write_scaling(const Report *rp, FILE *f)
{
    int rows = 0;
    for (int r = 0; r < rp->n_runs; r++) {
        if (!rp->runs[r].final) continue;
        const Perf p = perf_of(rp, r);
        if (!(p.ips > 0)) continue;
        if (!rows++) {
            fputs("\n## Throughput and scaling\n\nTraining images per second of each run; "
                  "scaling efficiency = (img/s ÷ base img/s) ÷ (ranks ÷ base ranks), the base "
                  "being the run with the fewest ranks and otherwise the same model, method, "
                  "sparsity, data and threads per rank: with the same global batch (strong) or "
                  "the same batch per rank (weak).\n\n", f);
            fputs("| run | model | method | sparsity | ranks | threads | batch | img/s "
                  "| strong eff. (%) | weak eff. (%) |\n", f);
            fputs("|---|---|---|---:|---:|---:|---:|---:|---:|---:|\n", f);
        }
        fputs("| ", f);
        md_text(f, rp->runs[r].dir);
        fputs(" | ", f);
        md_text(f, p.model);
        fputs(" | ", f);
        md_text(f, p.method);
        fprintf(f, " | %g | %lld | %lld | %lld | %.1f |", p.sparsity, p.ranks, p.threads,
                p.batch, p.ips);
        md_percent(f, series_efficiency(rp, r, 0));
        md_percent(f, series_efficiency(rp, r, 1));
        fputc('\n', f);
    }
    return ferror(f) ? CIGL_ERR_RUNTIME : CIGL_OK;
}

static int write_markdown(const Report *rp, FILE *f, int with_plot)
{
    int n_runs = 0;
    for (int r = 0; r < rp->n_runs; r++) n_runs += rp->runs[r].final != NULL;
    fprintf(f, "# cigl report\n\n");
    fprintf(f, "%d finished run%s in %d group%s", n_runs, n_runs == 1 ? "" : "s", rp->n_g,
            rp->n_g == 1 ? "" : "s");
    if (rp->n_unfinished) fprintf(f, " (%d unfinished skipped)", rp->n_unfinished);
    fprintf(f, ". Test metrics as mean ± sample standard deviation over seeds (— with one "
            "seed); accuracy in %%, ECE with 15 bins, ECE10 with 10 (the authors' convention), "
            "NLL in nats, Brier summed over classes.\n\n");
    fputs("| model | method | options | sparsity | seeds |", f);
    for (int m = 0; m < N_METRICS; m++) fprintf(f, " %s |", metric_title[m]);
    fputs("\n|---|---|---|---:|---:|", f);
    for (int m = 0; m < N_METRICS; m++) fputs("---:|", f);
    fputc('\n', f);
    for (int h = 0; h < rp->n_g; h++) {
        const Group *g = &rp->g[h];
        md_group_head(f, rp, g);
        fprintf(f, " %zu |", g->n);
        for (int m = 0; m < N_METRICS; m++) md_stat(f, g, m);
        fputc('\n', f);
    }

    fprintf(f, "\n## ECE relative to %s\n\n", rp->baseline);
    int rows = 0;
    for (int h = 0; h < rp->n_g; h++) {
        const int c = rp->ref[h];
        if (c < 0 || c == h || !rp->g[h].count[M_ECE] || !rp->g[c].count[M_ECE]) continue;
        if (!rows++) {
            fprintf(f, "100 × (mean ECE − mean %s ECE) / mean %s ECE at the same model and "
                    "sparsity, with a 95%% percentile bootstrap interval (%d resamples of the "
                    "seeds, within each group independently).\n\n", rp->baseline, rp->baseline,
                    REPORT_BOOTSTRAP_RESAMPLES);
            fprintf(f, "| model | method | options | sparsity | seeds | %s options | %s seeds "
                    "| ECE change (%%) | 95%% interval (%%) |\n", rp->baseline, rp->baseline);
            fputs("|---|---|---|---:|---:|---|---:|---:|---|\n", f);
        }
        const Group *g = &rp->g[h], *b = &rp->g[c];
        double *x = cigl_malloc(sizeof(double) * (g->n + b->n), "report");
        if (!x) return CIGL_ERR_RUNTIME;
        double *y = x + g->n;
        const size_t nx = metric_values(rp, g, M_ECE, x), ny = metric_values(rp, b, M_ECE, y);
        md_group_head(f, rp, g);
        fprintf(f, " %zu | ", nx);
        md_text(f, b->options[0] ? b->options : "—");
        fprintf(f, " | %zu |", ny);
        RelativeChange rc;
        int bad = 0;
        if (b->mean[M_ECE] == 0)
            fputs(" n/a (baseline ECE is 0) | |\n", f);
        else if (!(bad = report_relative_change(x, nx, y, ny, REPORT_BOOTSTRAP_RESAMPLES, &rc)))
            fprintf(f, " %+.1f | [%+.1f, %+.1f] |\n", rc.estimate, rc.lo, rc.hi);
        free(x);
        if (bad) return CIGL_ERR_RUNTIME;
    }
    if (!rows)
        fprintf(f, "No group has a %s group (with ECE) at the same model and sparsity to compare "
                "with.\n", rp->baseline);
    if (write_scaling(rp, f)) return CIGL_ERR_RUNTIME;
    if (rp->n_unfinished) {
        fputs("\n## Unfinished runs (no final.json), skipped\n\n", f);
        for (int i = 0; i < rp->n_unfinished; i++) {
            fputs("- ", f);
            md_text(f, rp->unfinished[i]);
            fputc('\n', f);
        }
    }
    if (with_plot)
        fputs("\n![Test accuracy and ECE against sparsity, per method](sparsity.svg)\n", f);
    return ferror(f) ? CIGL_ERR_RUNTIME : CIGL_OK;
}

/* ---- SVG ------------------------------------------------------------------------------ */

#define PW 360.0   /* panel plot area */
#define PH 250.0
#define ML 75.0    /* left margin (tick labels, axis label) */
#define MT 50.0    /* above a panel (title) */
#define MB 60.0    /* below a panel (ticks, axis label) */
#define GAP 40.0   /* between the panels */
#define TOP 40.0   /* figure title */

/* One series' polyline points ("x,y" pairs); points past it are left off the line. */
#define SVG_POINTS_MAX 4096

static const char *const palette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                      "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};


/* Tick step 1, 2 or 5 x 10^k giving about `target` intervals over [lo, hi]. */
static double nice_step(double range, int target)
{
    const double raw = range / target, mag = pow(10, floor(log10(raw))), r = raw / mag;
    return (r < 1.5 ? 1 : r < 3 ? 2 : r < 7 ? 5 : 10) * mag;
}

typedef struct {
    char label[600];
    const char *method, *options;
    size_t base_len;
    int scaled;
} Series;

static int series_of(const Report *rp, const Group *g, const Series *s, int n)
{
    const Entry *e = &rp->e[g->member[0]];
    for (int i = 0; i < n; i++)
        if (!strcmp(s[i].method, e->method) && !strcmp(s[i].options, g->options)) return i;
    return -1;
}

/* One panel: metric m of the groups of `model`, at categorical x positions. */
/* One point's error bar (two seeds or more) and marker, with its tooltip. */
static void svg_marker(FILE *f, const char *color, double x, double y, double ylo, double yhi,
                       double y0, const Group *g, int m, const char *label, double sparsity)
{
    if (g->count[m] >= 2) {
        const double ya = y0 + PH - (g->mean[m] - g->sd[m] - ylo) / (yhi - ylo) * PH;
        const double yb = y0 + PH - (g->mean[m] + g->sd[m] - ylo) / (yhi - ylo) * PH;
        fprintf(f, "<path class=\"errorbar\" stroke=\"%s\" d=\"M%.2f %.2fV%.2f"
                "M%.2f %.2fH%.2fM%.2f %.2fH%.2f\"/>\n", color, x, ya, yb, x - 4, ya,
                x + 4, x - 4, yb, x + 4);
    }
    fprintf(f, "<circle class=\"marker\" cx=\"%.2f\" cy=\"%.2f\" r=\"4\" fill=\"%s\">"
            "<title>", x, y, color);
    svg_text(f, label);
    fprintf(f, ", sparsity %g: %.*f", sparsity, metric_decimals[m], g->mean[m]);
    if (g->count[m] >= 2) fprintf(f, " ± %.*f", metric_decimals[m], g->sd[m]);
    fprintf(f, " (%zu seed%s)</title></circle>\n", g->count[m], g->count[m] == 1 ? "" : "s");
}

static void svg_panel(FILE *f, const Report *rp, const char *model, int m, double x0, double y0,
                      const double *xs, int nxs, const Series *series, int ns)
{
    const char *title = m == M_ACC ? "test accuracy (%)" : "test ECE (15 bins)";
    double lo = INFINITY, hi = -INFINITY;
    for (int h = 0; h < rp->n_g; h++) {
        const Group *g = &rp->g[h];
        if (strcmp(rp->e[g->member[0]].model, model) || !g->count[m]) continue;
        const double s = g->count[m] >= 2 ? g->sd[m] : 0;
        lo = fmin(lo, g->mean[m] - s);
        hi = fmax(hi, g->mean[m] + s);
    }
    fprintf(f, "<g class=\"panel\" data-metric=\"%s\" data-model=\"", metric_key[m]);
    svg_text(f, model);
    fputs("\">\n", f);
    fprintf(f, "<text class=\"title\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", x0 + PW / 2,
            y0 - 15);
    svg_text(f, model);
    fprintf(f, ": %s</text>\n", title);
    fprintf(f, "<rect class=\"frame\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"/>\n",
            x0, y0, PW, PH);
    if (!isfinite(lo)) {
        fprintf(f, "<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">no data"
                "</text>\n</g>\n", x0 + PW / 2, y0 + PH / 2);
        return;
    }
    const int nonnegative = lo >= 0;
    if (hi - lo < 1e-12 * fmax(1.0, fabs(hi))) {
        const double pad = fabs(hi) > 0 ? 0.05 * fabs(hi) : 0.01;
        lo -= pad;
        hi += pad;
    } else { /* keep points off the frame */
        const double pad = 0.05 * (hi - lo);
        lo -= pad;
        hi += pad;
    }
    if (nonnegative && lo < 0) lo = 0;
    const double step = nice_step(hi - lo, 5);
    const double ylo = floor(lo / step) * step, yhi = ceil(hi / step) * step;
    const int decimals = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
    /* y axis: ticks, grid lines, labels */
    const int nt = (int)floor((yhi - ylo) / step + 0.5);
    for (int t = 0; t <= nt; t++) {
        const double v = ylo + t * step, y = y0 + PH - (v - ylo) / (yhi - ylo) * PH;
        fprintf(f, "<line class=\"grid\" x1=\"%.1f\" y1=\"%.2f\" x2=\"%.1f\" y2=\"%.2f\"/>\n", x0,
                y, x0 + PW, y);
        fprintf(f, "<line class=\"axis\" x1=\"%.1f\" y1=\"%.2f\" x2=\"%.1f\" y2=\"%.2f\"/>\n",
                x0 - 5, y, x0, y);
        fprintf(f, "<text class=\"tick\" x=\"%.1f\" y=\"%.2f\" text-anchor=\"end\">%.*f</text>\n",
                x0 - 8, y + 4, decimals, fabs(v) < step * 1e-9 ? 0.0 : v);
    }
    fprintf(f, "<text class=\"label\" transform=\"translate(%.1f,%.1f) rotate(-90)\" "
            "text-anchor=\"middle\">%s</text>\n", x0 - ML + 18, y0 + PH / 2, title);
    /* x axis: one tick per sparsity present */
    for (int i = 0; i < nxs; i++) {
        const double x = x0 + (i + 0.5) / nxs * PW;
        fprintf(f, "<line class=\"axis\" x1=\"%.2f\" y1=\"%.1f\" x2=\"%.2f\" y2=\"%.1f\"/>\n", x,
                y0 + PH, x, y0 + PH + 5);
        fprintf(f, "<text class=\"tick\" x=\"%.2f\" y=\"%.1f\" text-anchor=\"middle\">%g</text>\n",
                x, y0 + PH + 19, xs[i]);
    }
    fprintf(f, "<text class=\"label\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">sparsity"
            "</text>\n", x0 + PW / 2, y0 + PH + 42);
    /* series: a polyline through the means, error bars, markers */
    for (int s = 0; s < ns; s++) {
        const char *color = palette[s % (int)(sizeof(palette) / sizeof(palette[0]))];
        const double dodge = (s - (ns - 1) / 2.0) * 4.0;
        char points[SVG_POINTS_MAX] = "";
        size_t used = 0;
        /* one walk over the groups: the line's points, and the error bars and markers, which
         * are drawn over the line, into a buffer written after it (straight to f, below the
         * line, when there is no memory for the buffer) */
        char *marks = NULL;
        size_t marks_len = 0;
        FILE *mf = open_memstream(&marks, &marks_len), *out = mf ? mf : f;
        for (int i = 0; i < nxs; i++)
            for (int h = 0; h < rp->n_g; h++) {
                const Group *g = &rp->g[h];
                const Entry *e = &rp->e[g->member[0]];
                if (strcmp(e->model, model) || fabs(e->sparsity - xs[i]) > 1e-9 ||
                    series_of(rp, g, series, ns) != s || !g->count[m])
                    continue;
                const double x = x0 + (i + 0.5) / nxs * PW + dodge;
                const double y = y0 + PH - (g->mean[m] - ylo) / (yhi - ylo) * PH;
                const int k = snprintf(points + used, sizeof(points) - used, "%s%.2f,%.2f",
                                       used ? " " : "", x, y);
                if (k > 0 && used + (size_t)k < sizeof(points)) used += (size_t)k;
                svg_marker(out, color, x, y, ylo, yhi, y0, g, m, series[s].label, xs[i]);
            }
        if (mf) fclose(mf);
        fprintf(f, "<polyline class=\"series\" data-series=\"");
        svg_text(f, series[s].label);
        fprintf(f, "\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"%s\"/>\n", color,
                points);
        if (marks) fwrite(marks, 1, marks_len, f);
        free(marks);
    }
    fputs("</g>\n", f);
}

static int cmp_sparsity(const void *a, const void *b) { return cmp_double(a, b); }

static int write_svg(const Report *rp, FILE *f)
{
    /* models, in table order; per model its sparsities and series */
    const char **models = cigl_malloc(sizeof(char *) * ((size_t)rp->n_g + 1), "plot");
    double *xs = cigl_malloc(sizeof(double) * ((size_t)rp->n_g + 1), "plot");
    Series *series = cigl_malloc(sizeof(Series) * ((size_t)rp->n_g + 1), "plot series");
    if (!models || !xs || !series) {
        free(models);
        free(xs);
        free(series);
        return CIGL_ERR_RUNTIME;
    }
    int nm = 0;
    for (int h = 0; h < rp->n_g; h++) {
        const char *mo = rp->e[rp->g[h].member[0]].model;
        if (!nm || strcmp(models[nm - 1], mo)) models[nm++] = mo;
    }
    /* legend column: wide enough for the longest label (about 7 px per character) */
    size_t longest = 0;
    for (int h = 0; h < rp->n_g; h++) {
        const Group *g = &rp->g[h];
        size_t chars = 0;
        for (const char *c = rp->e[g->member[0]].method; *c; c++) chars += (*c & 0xC0) != 0x80;
        for (const char *c = g->options; *c; c++) chars += (*c & 0xC0) != 0x80;
        longest = chars + 1 > longest ? chars + 1 : longest;
    }
    const double LW = 50 + 7.0 * (double)(longest > 12 ? longest : 12);
    const double row = MT + PH + MB;
    const double W = 2 * (ML + PW) + GAP + 20 + LW, H = TOP + (nm ? nm : 1) * row + 10;
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %.0f %.0f\" width=\"%.0f\" "
            "height=\"%.0f\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"12\">\n",
            W, H, W, H);
    fputs("<style>.frame{fill:none;stroke:#333}.axis{stroke:#333}.grid{stroke:#e5e5e5}"
          ".tick{fill:#333;font-size:11px}.label{fill:#111;font-size:13px}"
          ".title{fill:#111;font-size:14px;font-weight:bold}.errorbar{fill:none;stroke-width:1.5}"
          ".legend text{fill:#111}</style>\n", f);
    fprintf(f, "<rect x=\"0\" y=\"0\" width=\"%.0f\" height=\"%.0f\" fill=\"white\"/>\n", W, H);
    fprintf(f, "<text class=\"title\" x=\"%.1f\" y=\"24\" text-anchor=\"middle\">Test accuracy "
            "and ECE against sparsity (mean ± std over seeds)</text>\n", (2 * (ML + PW) + GAP) / 2);
    if (!nm)
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\">no finished runs</text>\n", ML, TOP + row / 2);
    for (int mi = 0; mi < nm; mi++) {
        const char *model = models[mi];
        int nxs = 0;
        int ns = 0;
        for (int h = 0; h < rp->n_g; h++) {
            const Group *g = &rp->g[h];
            const Entry *e = &rp->e[g->member[0]];
            if (strcmp(e->model, model)) continue;
            int seen = 0;
            for (int i = 0; i < nxs && !seen; i++) seen = fabs(xs[i] - e->sparsity) <= 1e-9;
            if (!seen) xs[nxs++] = e->sparsity;
            if (series_of(rp, g, series, ns) < 0) {
                Series *s = &series[ns++];
                s->method = e->method;
                s->options = g->options;
                s->scaled = e->scaled;
                s->base_len = g->base_len;
                snprintf(s->label, sizeof(s->label), "%s%s%s", e->method,
                         g->options[0] ? " " : "", g->options);
            }
        }
        /* series in method order (the groups are sorted by sparsity first) */
        for (int a = 1; a < ns; a++)
            for (int b = a; b > 0; b--) {
                const int ra = method_rank(series[b - 1].method), rb = method_rank(series[b].method);
                int c = ra != rb ? ra - rb : strcmp(series[b - 1].method, series[b].method);
                const Series *p = &series[b - 1], *q = &series[b];
                const size_t n = p->base_len < q->base_len ? p->base_len : q->base_len;
                if (!c) c = strncmp(p->options, q->options, n);
                if (!c) c = p->base_len != q->base_len ? (p->base_len < q->base_len ? -1 : 1) : 0;
                if (!c) c = p->scaled - q->scaled;
                if (c <= 0) break;
                const Series t = series[b];
                series[b] = series[b - 1];
                series[b - 1] = t;
            }
        qsort(xs, (size_t)nxs, sizeof(double), cmp_sparsity);
        const double y0 = TOP + mi * row + MT;
        svg_panel(f, rp, model, M_ACC, ML, y0, xs, nxs, series, ns);
        svg_panel(f, rp, model, M_ECE, 2 * ML + PW + GAP, y0, xs, nxs, series, ns);
        const double lx = 2 * (ML + PW) + GAP + 20;
        fputs("<g class=\"legend\">\n", f);
        for (int s = 0; s < ns; s++) {
            const char *color = palette[s % (int)(sizeof(palette) / sizeof(palette[0]))];
            const double ly = y0 + 10 + s * 20;
            fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                    "stroke-width=\"2\"/><circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"%s\"/>\n",
                    lx, ly, lx + 24, ly, color, lx + 12, ly, color);
            fprintf(f, "<text x=\"%.1f\" y=\"%.1f\">", lx + 32, ly + 4);
            svg_text(f, series[s].label);
            fputs("</text>\n", f);
        }
        fputs("</g>\n", f);
    }
    fputs("</svg>\n", f);
    free(series);
    free(xs);
    free(models);
    return ferror(f) ? CIGL_ERR_RUNTIME : CIGL_OK;
}

/* ---- files ---------------------------------------------------------------------------- */

static int make_dir(const char *dir)
{
    char tmp[CIGL_PATH_MAX];
    if (snprintf(tmp, sizeof(tmp), "%s", dir) >= (int)sizeof(tmp))
        return cigl_fail(CIGL_ERR_USAGE, "report: --out path too long");
    for (char *s = tmp + 1; *s; s++) { /* mkdir -p */
        if (*s != '/') continue;
        *s = 0;
        if (mkdir(tmp, 0777) && errno != EEXIST) break;
        *s = '/';
    }
    struct stat st;
    if ((mkdir(dir, 0777) && errno != EEXIST) || stat(dir, &st) || !S_ISDIR(st.st_mode))
        return cigl_fail(CIGL_ERR_USAGE, "report: cannot create --out directory '%s': %s", dir,
                         errno ? strerror(errno) : "not a directory");
    return CIGL_OK;
}

/* Writes DIR/name via a temporary file and rename. */
static int write_file(const Report *rp, const char *name, int svg)
{
    char path[CIGL_PATH_MAX], tmp[CIGL_PATH_MAX + 8];
    if (join(path, sizeof(path), rp->out_dir, name)) return CIGL_ERR_USAGE;
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return cigl_fail(CIGL_ERR_RUNTIME, "report: cannot write '%s': %s", tmp,
                             strerror(errno));
    int rc = svg ? write_svg(rp, f) : write_markdown(rp, f, 1);
    rc |= fclose(f) != 0;
    if (rc || rename(tmp, path) != 0) {
        unlink(tmp);
        return cigl_fail(CIGL_ERR_RUNTIME, "report: writing '%s' failed (disk full?)", path);
    }
    return CIGL_OK;
}

/* ---- command -------------------------------------------------------------------------- */

static const char usage_text[] =
    "usage: cigl report RUN_DIR... [--out DIR] [--baseline METHOD]\n"
    "\n"
    "Summarises finished runs (directories written by 'cigl train --out'): groups them by\n"
    "model, method, options and sparsity, and prints a markdown table of test accuracy, ECE,\n"
    "ECE10, NLL and Brier (mean ± std over seeds), then the ECE change relative to the baseline\n"
    "method at the same model and sparsity with a 95% bootstrap interval over seeds.\n"
    "Runs without final.json are listed as unfinished and skipped. Runs at different rank\n"
    "counts are separate groups; a last table gives each run's ranks, training images/s and\n"
    "strong and weak scaling efficiency against the same run with the fewest ranks.\n"
    "\n"
    "options:\n"
    "  --out DIR          also write DIR/report.md and DIR/sparsity.svg (accuracy and ECE\n"
    "                     against sparsity per method); DIR is created if needed\n"
    "  --baseline METHOD  method the ECE change is relative to (default: rigl)\n"
    "  --help             this text\n";

static void report_free(Report *rp)
{
    for (int r = 0; r < rp->n_runs; r++) {
        json_free(rp->runs[r].config);
        json_free(rp->runs[r].final);
    }
    for (int r = 0; rp->defaults && r < rp->n_runs; r++) json_free(rp->defaults[r]);
    free(rp->defaults);
    for (int h = 0; h < rp->n_g; h++) free(rp->g[h].member);
    free(rp->runs);
    free(rp->unfinished);
    free(rp->e);
    free(rp->keys);
    free(rp->method_specific);
    free(rp->g);
    free(rp->ref);
}

static int parse_args(Report *rp, int argc, char **argv, const char **dirs, int *n_dirs,
                      int *help)
{
    int options_done = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (options_done || a[0] != '-' || !a[1]) {
            dirs[(*n_dirs)++] = a;
            continue;
        }
        if (!strcmp(a, "--")) {
            options_done = 1;
            continue;
        }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            *help = 1;
            continue;
        }
        const char **target = NULL;
        size_t len = 0;
        if (!strncmp(a, "--out", 5) && (a[5] == 0 || a[5] == '=')) target = &rp->out_dir, len = 5;
        else if (!strncmp(a, "--baseline", 10) && (a[10] == 0 || a[10] == '='))
            target = &rp->baseline, len = 10;
        if (!target)
            return cigl_fail(CIGL_ERR_USAGE, "report: unknown option '%s'; expected --out DIR or "
                             "--baseline METHOD (see 'cigl report --help')", a);
        const char *v = a[len] == '=' ? a + len + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!v || !*v)
            return cigl_fail(CIGL_ERR_USAGE, "report: %.*s needs a value", (int)len, a);
        *target = v;
    }
    return CIGL_OK;
}

int report_run(int argc, char **argv, FILE *out)
{
    Report rp;
    memset(&rp, 0, sizeof(rp));
    rp.baseline = "rigl";
    const char **dirs = cigl_malloc(sizeof(char *) * (size_t)(argc > 0 ? argc : 1), "arguments");
    if (!dirs) return CIGL_ERR_RUNTIME;
    int n_dirs = 0, help = 0;
    int rc = parse_args(&rp, argc, argv, dirs, &n_dirs, &help);
    if (!rc && help) {
        fputs(usage_text, out);
        free(dirs);
        return CIGL_OK;
    }
    if (!rc && !n_dirs)
        rc = cigl_fail(CIGL_ERR_USAGE, "report: no run directories given; usage: cigl report "
                       "RUN_DIR... [--out DIR] [--baseline METHOD]");
    if (!rc) {
        rp.runs = cigl_calloc((size_t)n_dirs, sizeof(RunDir), "runs");
        rp.unfinished = cigl_calloc((size_t)n_dirs, sizeof(char *), "runs");
        rp.e = cigl_calloc(2 * (size_t)n_dirs, sizeof(Entry), "runs");
        if (!rp.runs || !rp.unfinished || !rp.e) rc = CIGL_ERR_RUNTIME;
    }
    for (int i = 0; !rc && i < n_dirs; i++) {
        RunDir *r = &rp.runs[rp.n_runs++];
        r->dir = dirs[i];
        int finished;
        rc = load_run(dirs[i], r, &finished);
        if (!rc && !finished) rp.unfinished[rp.n_unfinished++] = dirs[i];
    }
    if (!rc) qsort(rp.runs, (size_t)rp.n_runs, sizeof(RunDir), cmp_dir);
    for (int r = 0; !rc && r < rp.n_runs; r++) {
        if (!rp.runs[r].final) continue;
        add_entry(&rp, r, 0);
        add_entry(&rp, r, 1);
    }
    if (!rc) rc = collect_keys(&rp);
    if (!rc) rc = build_groups(&rp);
    if (!rc && rp.out_dir) rc = make_dir(rp.out_dir);
    if (!rc) rc = write_markdown(&rp, out, 0);
    if (!rc && rp.out_dir) rc = write_file(&rp, "report.md", 0);
    if (!rc && rp.out_dir) rc = write_file(&rp, "sparsity.svg", 1);
    report_free(&rp);
    free(dirs);
    return rc;
}

int report_main(int argc, char **argv)
{
    const int rc = report_run(argc, argv, stdout);
    fflush(stdout);
    return rc;
}
