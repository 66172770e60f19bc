/* `cigl eval`: evaluates a trained model file on a dataset split and writes metrics.json,
 * reliability.svg and predictions.h5, so that every metric can be recomputed independently. */
#include "cigl/config.h"
#include "cigl/conv_backend.h"
#include "cigl/error.h"
#include "cigl/method.h"
#include "cigl/metrics.h"
#include "cigl/model_io.h"
#include "cigl/sparse.h"
#include "cigl/train.h"

#include <cblas.h>
#include <errno.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    char model[512], data[512], out[512], split[8];
    int temperature_scaling, mc_samples, batch_size, threads;
    char kernels[8], conv_backend[8];
} EvalConfig;

#define EOPT(name, type, field, def, lo, hi, help) \
    {name, type, offsetof(EvalConfig, field), sizeof(((EvalConfig *)0)->field), def, lo, hi, help}

static const OptionSpec eval_options[] = {
    EOPT("model", OPT_STRING, model, NULL, 0, 0, "model file (a run's final.h5)"),
    EOPT("data", OPT_STRING, data, NULL, 0, 0, "dataset file (cigl convert)"),
    EOPT("out", OPT_STRING, out, NULL, 0, 0, "output directory"),
    EOPT("split", OPT_STRING, split, "test", 0, 0,
         "test | val (the held-out training samples recorded in the model) | train"),
    EOPT("temperature-scaling", OPT_FLAG, temperature_scaling, "0", 0, 1,
         "fit a temperature on the model's validation split, report metrics before and after"),
    EOPT("mc-samples", OPT_INT, mc_samples, "0", 0, 100000,
         "{test-dropout} models: dropout samples (0: as trained)"),
    EOPT("batch-size", OPT_INT, batch_size, "256", 1, 65536, "evaluation batch size"),
    EOPT("threads", OPT_INT, threads, "1", 1, 1024, "threads"),
    EOPT("kernels", OPT_STRING, kernels, "model", 0, 0,
         "conv/linear kernels: model (as the training run recorded in the file; auto for older "
         "files) | auto (by density and shape) | dense | sparse"),
    EOPT("conv-backend", OPT_STRING, conv_backend, "auto", 0, 0,
         "dense convolutions: auto (onednn when built with it) | own | onednn"),
    {NULL, OPT_FLAG, 0, 0, NULL, 0, 0, NULL},
};

typedef struct {
    EvalConfig cfg;
    Dataset ds;
    Model m;
    MethodState ms;
    ModelFileInfo info;
    uint32_t *idx;
    size_t n;
    const Split *split;
    float *x;
    int32_t *y;
} Evaluation;

static void evaluation_free(Evaluation *e)
{
    dataset_free(&e->ds);
    method_free(&e->ms);
    model_free(&e->m);
    free(e->info.val_indices);
    free(e->idx);
    free(e->x);
    free(e->y);
}

/* Indices of the requested split: the test split, the model's validation indices, or the
 * training samples that were not held out. */
static int select_split(Evaluation *e)
{
    const EvalConfig *c = &e->cfg;
    const int same_data = e->info.dataset_hash == e->ds.hash;
    if ((strcmp(c->split, "test") || c->temperature_scaling) && !same_data)
        return cigl_fail(CIGL_ERR_USAGE, "dataset '%s' is not the one the model was trained on "
                         "(hash %016llx, model has %016llx); --split val|train and "
                         "--temperature-scaling need the training dataset", c->data,
                         (unsigned long long)e->ds.hash,
                         (unsigned long long)e->info.dataset_hash);
    if (!strcmp(c->split, "test")) {
        e->split = &e->ds.test;
        e->n = e->ds.test.n;
        e->idx = NULL;
        return CIGL_OK;
    }
    e->split = &e->ds.train;
    if (!strcmp(c->split, "val")) {
        if (!e->info.n_val)
            return cigl_fail(CIGL_ERR_USAGE, "the model was trained with --val-size 0: it has "
                             "no validation split; use --split test");
        e->n = e->info.n_val;
        e->idx = cigl_malloc(sizeof(uint32_t) * e->n, "indices");
        if (!e->idx) return CIGL_ERR_RUNTIME;
        memcpy(e->idx, e->info.val_indices, sizeof(uint32_t) * e->n);
        return CIGL_OK;
    }
    if (strcmp(c->split, "train"))
        return cigl_fail(CIGL_ERR_USAGE, "--split '%s': expected test, val or train", c->split);
    uint8_t *held = calloc(e->ds.train.n, 1);
    e->idx = cigl_malloc(sizeof(uint32_t) * e->ds.train.n, "indices");
    if (!held || !e->idx) {
        free(held);
        return CIGL_ERR_RUNTIME;
    }
    for (size_t i = 0; i < e->info.n_val; i++)
        if (e->info.val_indices[i] < e->ds.train.n) held[e->info.val_indices[i]] = 1;
    e->n = 0;
    for (size_t i = 0; i < e->ds.train.n; i++)
        if (!held[i]) e->idx[e->n++] = (uint32_t)i;
    free(held);
    return CIGL_OK;
}

static int setup(Evaluation *e)
{
    const EvalConfig *c = &e->cfg;
    int rc = conv_backend_select(e->cfg.conv_backend, sizeof e->cfg.conv_backend);
    if (!rc) rc = dataset_load(c->data, &e->ds);
    if (!rc) rc = model_load(c->model, c->batch_size, &e->m, &e->ms, &e->info);
    const int from_file = !strcmp(c->kernels, "model");
    if (!rc && !from_file && sparse_kernels_parse(c->kernels) < 0)
        rc = cigl_fail(CIGL_ERR_USAGE, "unknown --kernels '%s'; expected model, auto, dense or "
                       "sparse", c->kernels);
    /* the kernels training used, as recorded in the file (older files: the auto rule on the
     * same mask densities, against this run's dense conv backend) */
    if (!rc && from_file && e->info.kernels[0])
        rc = sparse_model_setup_choice(&e->m, e->info.kernels, e->ms.mask);
    else if (!rc)
        rc = sparse_model_setup(&e->m, from_file ? KERNELS_AUTO
                                                 : (KernelsMode)sparse_kernels_parse(c->kernels),
                                e->ms.mask);
    if (rc) return rc;
    if (e->info.input.c != e->ds.c || e->info.input.h != e->ds.h || e->info.input.w != e->ds.w ||
        e->info.classes != e->ds.classes)
        return cigl_fail(CIGL_ERR_USAGE, "model '%s' takes %dx%dx%d inputs and %d classes but "
                         "dataset '%s' has %dx%dx%d and %d; evaluate it on the dataset it was "
                         "trained for", c->model, e->info.input.c, e->info.input.h,
                         e->info.input.w, e->info.classes, c->data, e->ds.c, e->ds.h, e->ds.w,
                         e->ds.classes);
    if (c->mc_samples) {
        if (!e->ms.ops->test_dropout) {
            char who[256];
            return cigl_fail(CIGL_ERR_USAGE, "--mc-samples applies to %s models; this one is "
                             "'%s'", method_group_list(METHODS_TEST_DROPOUT, ", ", " and ", who,
                                                       sizeof who), e->info.cfg.method);
        }
        e->ms.cfg.mc_samples = c->mc_samples;
    }
    if (c->temperature_scaling && method_test_members(&e->ms) > 1)
        return cigl_fail(CIGL_ERR_USAGE, "--temperature-scaling needs a single model's logits; "
                         "'%s' predicts with an ensemble", e->info.cfg.method);
    if (c->temperature_scaling && !e->info.n_val)
        return cigl_fail(CIGL_ERR_USAGE, "--temperature-scaling needs the validation split, but "
                         "the model was trained with --val-size 0");
    rc = select_split(e);
    if (rc) return rc;
    e->x = cigl_malloc(sizeof(float) * shape_numel(e->m.input) * c->batch_size, "input batch");
    e->y = cigl_malloc(sizeof(int32_t) * c->batch_size, "labels");
    return e->x && e->y ? CIGL_OK : CIGL_ERR_RUNTIME;
}

static int write_outputs(const Evaluation *e, const Predictions *p, const Metrics *plain,
                         const Metrics *scaled, double T)
{
    const EvalConfig *c = &e->cfg;
    char path[1100], tmp[1200];
    snprintf(path, sizeof(path), "%s/predictions.h5", c->out);
    int rc = predictions_write(path, p->log_probs, p->logits, p->labels, p->n, p->classes);
    if (rc) return rc;
    snprintf(path, sizeof(path), "%s/metrics.json", c->out);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return cigl_fail(CIGL_ERR_RUNTIME, "cannot write '%s'", tmp);
    JsonWriter w;
    json_begin(&w, f, 1);
    json_object_begin(&w, NULL);
    json_string(&w, "model_file", c->model);
    json_string(&w, "model", e->info.cfg.model);
    json_string(&w, "method", e->info.cfg.method);
    json_string(&w, "data", c->data);
    json_string(&w, "split", c->split);
    json_int(&w, "ensemble_members", method_test_members(&e->ms));
    char kernels[1024];
    if (sparse_choice_format(&e->m, kernels, sizeof(kernels)) >= 0)
        json_string(&w, "kernels", kernels);
    json_object_begin(&w, "metrics");
    metrics_write_json(plain, &w);
    json_object_end(&w);
    if (scaled) {
        json_double(&w, "temperature", T);
        json_object_begin(&w, "metrics_temperature_scaled");
        metrics_write_json(scaled, &w);
        json_object_end(&w);
    }
    json_object_end(&w);
    json_end(&w);
    const int bad = fclose(f) != 0;
    if (bad || rename(tmp, path)) return cigl_fail(CIGL_ERR_RUNTIME, "writing '%s' failed", path);
    snprintf(path, sizeof(path), "%s/reliability.svg", c->out);
    f = fopen(path, "w");
    if (!f) return cigl_fail(CIGL_ERR_RUNTIME, "cannot write '%s'", path);
    char title[200];
    snprintf(title, sizeof(title), "%s %s: %s split%s", e->info.cfg.method, e->info.cfg.model,
             c->split, scaled ? ", temperature scaled" : "");
    rc = reliability_svg(scaled ? scaled : plain, f, title);
    return fclose(f) || rc ? cigl_fail(CIGL_ERR_RUNTIME, "writing '%s' failed", path) : CIGL_OK;
}

static int run(Evaluation *e)
{
    const EvalConfig *c = &e->cfg;
    Predictions p, val;
    memset(&val, 0, sizeof(val));
    int rc = predict(&e->m, &e->ds, e->split, e->idx, e->n, e->x, e->y,
                     method_test_members(&e->ms), method_test_member, &e->ms, &p);
    if (rc) return rc;
    Metrics plain, scaled;
    memset(&scaled, 0, sizeof(scaled)); /* read only with --temperature-scaling */
    double T = 1.0;
    rc = predictions_metrics(&p, 1.0, &plain);
    if (!rc && c->temperature_scaling) {
        rc = predict(&e->m, &e->ds, &e->ds.train, e->info.val_indices, e->info.n_val, e->x, e->y,
                     1, NULL, NULL, &val);
        if (!rc) rc = temperature_fit(val.logits, val.labels, val.n, val.classes, &T);
        if (!rc) rc = predictions_metrics(&p, T, &scaled);
    }
    if (!rc && mkdir(c->out, 0777) && errno != EEXIST)
        rc = cigl_fail(CIGL_ERR_USAGE, "cannot create --out '%s': %s", c->out, strerror(errno));
    if (!rc) rc = write_outputs(e, &p, &plain, c->temperature_scaling ? &scaled : NULL, T);
    if (!rc) {
        printf("%s %s, %s split (%zu samples): accuracy %.2f%%, NLL %.4f, ECE %.4f", e->info.cfg.method,
               e->info.cfg.model, c->split, p.n, 100 * plain.accuracy, plain.nll, plain.ece);
        if (c->temperature_scaling)
            printf("; temperature %.4f: NLL %.4f, ECE %.4f", T, scaled.nll, scaled.ece);
        printf("\n");
    }
    predictions_free(&p);
    predictions_free(&val);
    return rc;
}

int eval_main(int argc, char **argv)
{
    for (int i = 0; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: cigl eval --model DIR/final.h5 --data FILE.h5 --out DIR2 [options]\n\n"
                   "Writes DIR2/metrics.json, DIR2/reliability.svg and DIR2/predictions.h5.\n\n"
                   "options:\n");
            config_print_help(stdout, eval_options);
            return 0;
        }
    Evaluation e;
    memset(&e, 0, sizeof(e));
    options_defaults(eval_options, &e.cfg);
    int rc = options_parse(eval_options, &e.cfg, NULL, "eval", argc, argv);
    for (const OptionSpec *s = eval_options; !rc && s->name; s++)
        if (!s->def && !((const char *)&e.cfg + s->offset)[0])
            rc = cigl_fail(CIGL_ERR_USAGE, "--%s is required (%s)", s->name, s->help);
    if (rc) return rc;
    openblas_set_num_threads(e.cfg.threads);
    omp_set_num_threads(e.cfg.threads);
    rc = setup(&e);
    if (!rc) rc = run(&e);
    evaluation_free(&e);
    return rc;
}
