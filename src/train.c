/* `cigl train`: the single-process training loop. Everything is validated (options, dataset,
 * model) before the run directory is created, so bad input never leaves a half-written run. */
#include "cigl/train.h"

#include "cigl/error.h"
#include "cigl/json.h"
#include "cigl/method.h"
#include "cigl/model_io.h"
#include "cigl/optim.h"
#include "cigl/provenance.h"
#include "cigl/rng.h"

#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    Config cfg;
    Dataset ds;
    Model m;
    Sgd opt;
    MethodState ms;
    Schedule sched;
    uint32_t *train_idx, *val_idx, *order;
    size_t n_train, n_val;
    long steps_per_epoch, total_steps, step;
    float *x, *dlogits;
    int32_t *y;
    int argc;               /* the command line, recorded in config.json */
    char **argv;
} Trainer;

static double now_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void trainer_free(Trainer *t)
{
    dataset_free(&t->ds);
    model_free(&t->m);
    sgd_free(&t->opt);
    method_free(&t->ms);
    free(t->train_idx);
    free(t->val_idx);
    free(t->order);
    free(t->x);
    free(t->y);
    free(t->dlogits);
}

static int make_schedule(Trainer *t)
{
    const Config *c = &t->cfg;
    Schedule *s = &t->sched;
    memset(s, 0, sizeof(*s));
    s->base_lr = c->lr;
    s->gamma = c->gamma;
    s->step_every = c->step_every;
    s->warmup_steps = c->warmup_steps;
    s->total_steps = t->total_steps;
    if (!strcmp(c->schedule, "multistep")) {
        s->kind = SCHEDULE_MULTISTEP;
        s->n_milestones = config_milestones(c, s->milestones, SCHEDULE_MAX_MILESTONES);
    } else if (!strcmp(c->schedule, "step")) {
        s->kind = SCHEDULE_STEP;
    } else if (!strcmp(c->schedule, "cosine")) {
        s->kind = SCHEDULE_COSINE;
    } else {
        s->kind = SCHEDULE_CONSTANT;
    }
    return CIGL_OK;
}

/* Loads data and model, checks their fit; nothing is written yet. */
static int trainer_setup(Trainer *t)
{
    const Config *c = &t->cfg;
    int rc = dataset_load(c->data, &t->ds);
    if (rc) return rc;
    const size_t n_total = t->ds.train.n;
    rc = split_validation((uint64_t)c->seed, n_total, (size_t)c->val_size, &t->train_idx,
                          &t->val_idx);
    if (rc) return rc;
    t->n_val = (size_t)c->val_size;
    t->n_train = n_total - t->n_val;
    if (t->n_train < (size_t)c->batch_size)
        return cigl_fail(CIGL_ERR_USAGE, "--batch-size %d exceeds the %zu training samples; "
                         "use a smaller --batch-size or --val-size", c->batch_size, t->n_train);
    t->steps_per_epoch = (long)(t->n_train / (size_t)c->batch_size);
    t->total_steps = t->steps_per_epoch * c->epochs;
    rc = method_validate(c, t->total_steps, t->steps_per_epoch);
    if (rc) return rc;
    const int eval_batch = c->eval_batch_size ? c->eval_batch_size : c->batch_size;
    const int max_batch = eval_batch > c->batch_size ? eval_batch : c->batch_size;
    const Shape in = {t->ds.c, t->ds.h, t->ds.w};
    rc = model_build(&t->m, c->model, in, t->ds.classes, max_batch, (uint64_t)c->seed);
    if (rc) return rc;
    rc = sgd_init(&t->opt, &t->m, c->momentum, c->weight_decay, c->nesterov, c->decay_all);
    if (rc) return rc;
    rc = method_init(&t->ms, c, &t->m, t->total_steps, t->steps_per_epoch);
    if (rc) return rc;
    make_schedule(t);
    const size_t in_numel = shape_numel(in);
    t->x = cigl_malloc(sizeof(float) * in_numel * max_batch, "input batch");
    t->y = cigl_malloc(sizeof(int32_t) * max_batch, "label batch");
    t->dlogits = cigl_malloc(sizeof(float) * (size_t)t->ds.classes * max_batch, "logit gradients");
    t->order = cigl_malloc(sizeof(uint32_t) * t->n_train, "epoch order");
    if (!t->x || !t->y || !t->dlogits || !t->order) return CIGL_ERR_RUNTIME;
    return CIGL_OK;
}

static int path_join(char *buf, size_t len, const char *dir, const char *name)
{
    return snprintf(buf, len, "%s/%s", dir, name) >= (int)len
               ? cigl_fail(CIGL_ERR_USAGE, "--out path too long") : CIGL_OK;
}

static int make_run_dir(const char *out)
{
    char p[1100];
    if (path_join(p, sizeof(p), out, "config.json")) return CIGL_ERR_USAGE;
    if (access(p, F_OK) == 0)
        return cigl_fail(CIGL_ERR_USAGE, "--out '%s' already holds a run (config.json exists); "
                         "choose a new directory or remove the old run", out);
    char tmp[1024];
    snprintf(tmp, sizeof(tmp), "%s", out);
    for (char *s = tmp + 1; *s; s++) { /* mkdir -p */
        if (*s != '/') continue;
        *s = 0;
        if (mkdir(tmp, 0777) && errno != EEXIST) break;
        *s = '/';
    }
    if (mkdir(out, 0777) && errno != EEXIST)
        return cigl_fail(CIGL_ERR_USAGE, "cannot create --out '%s': %s", out, strerror(errno));
    return CIGL_OK;
}

/* Writes JSON via a temporary file and rename, so readers never see a partial file. */
typedef void (*JsonBody)(const Trainer *t, JsonWriter *w, const void *arg);

static int write_json_file(const Trainer *t, const char *name, JsonBody body, const void *arg)
{
    char path[1100], tmp[1200];
    if (path_join(path, sizeof(path), t->cfg.out, name)) return CIGL_ERR_USAGE;
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return cigl_fail(CIGL_ERR_RUNTIME, "cannot write '%s': %s", tmp, strerror(errno));
    JsonWriter w;
    json_begin(&w, f, 1);
    json_object_begin(&w, NULL);
    body(t, &w, arg);
    json_object_end(&w);
    json_end(&w);
    int bad = ferror(f) | (fflush(f) != 0) | (fsync(fileno(f)) != 0);
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path) != 0) {
        unlink(tmp);
        return cigl_fail(CIGL_ERR_RUNTIME, "writing '%s' failed (disk full?)", path);
    }
    return CIGL_OK;
}

static void config_body(const Trainer *t, JsonWriter *w, const void *arg)
{
    (void)arg;
    config_write_json(&t->cfg, w);
    provenance_write_json(w, t->argc, t->argv);
}

typedef struct {
    EvalResult test, val;
    double seconds;
    long steps;
} FinalResult;

static void final_body(const Trainer *t, JsonWriter *w, const void *arg)
{
    const FinalResult *r = arg;
    json_string(w, "model", t->cfg.model);
    json_int(w, "parameters", (long long)t->m.n_params);
    json_int(w, "steps", r->steps);
    json_int(w, "epochs", t->cfg.epochs);
    json_double(w, "train_seconds", r->seconds);
    json_double(w, "train_images_per_second",
                r->seconds > 0 ? (double)r->steps * t->cfg.batch_size / r->seconds : 0);
    json_int(w, "test_samples", r->test.n);
    json_double(w, "test_accuracy", r->test.n ? (double)r->test.correct / r->test.n : 0);
    json_double(w, "test_nll", r->test.n ? r->test.loss_sum / r->test.n : 0);
    if (r->val.n) {
        json_double(w, "val_accuracy", (double)r->val.correct / r->val.n);
        json_double(w, "val_nll", r->val.loss_sum / r->val.n);
    }
    method_write_json(&t->ms, &t->m, w);
    char machine[512];
    provenance_machine(machine, sizeof(machine));
    json_string(w, "machine", machine);
}

static int append_metrics(const Trainer *t, int epoch, double lr, double train_loss,
                          double train_acc, const EvalResult *val, double seconds)
{
    char path[1100];
    if (path_join(path, sizeof(path), t->cfg.out, "metrics.jsonl")) return CIGL_ERR_USAGE;
    FILE *f = fopen(path, "a");
    if (!f) return cigl_fail(CIGL_ERR_RUNTIME, "cannot append to '%s'", path);
    JsonWriter w;
    json_begin(&w, f, 0);
    json_object_begin(&w, NULL);
    json_int(&w, "epoch", epoch);
    json_int(&w, "step", t->step);
    json_double(&w, "lr", lr);
    json_double(&w, "train_loss", train_loss);
    json_double(&w, "train_acc", train_acc);
    json_double(&w, "val_acc", val->n ? (double)val->correct / val->n : NAN);
    json_double(&w, "val_nll", val->n ? val->loss_sum / val->n : NAN);
    json_double(&w, "seconds", seconds);
    json_object_end(&w);
    json_end(&w);
    return fclose(f) ? cigl_fail(CIGL_ERR_RUNTIME, "writing '%s' failed", path) : CIGL_OK;
}

static void progress(const Trainer *t, int epoch, long in_epoch, double loss, double acc,
                     double rate)
{
    const int width = 24, filled = (int)(width * in_epoch / t->steps_per_epoch);
    char bar[32];
    for (int i = 0; i < width; i++) bar[i] = i < filled ? '#' : '.';
    bar[width] = 0;
    fprintf(stderr, "\repoch %d/%d [%s] %ld/%ld loss %.4f acc %.2f%% %.0f img/s ", epoch + 1,
            t->cfg.epochs, bar, in_epoch, t->steps_per_epoch, loss, 100 * acc, rate);
    fflush(stderr);
}

/* One optimisation step on samples order[0..B). Returns the batch's loss sum. */
static double train_step(Trainer *t, const uint32_t *batch_idx, int epoch, int *correct)
{
    const Config *c = &t->cfg;
    const int B = c->batch_size;
    const Augment aug = {c->crop_pad, c->flip, (uint64_t)c->seed, (uint64_t)epoch};
    const int augment = c->crop_pad > 0 || c->flip;
    split_gather(&t->ds, &t->ds.train, batch_idx, B, augment ? &aug : NULL, t->x, t->y);
    return method_train_step(&t->ms, &t->m, &t->opt, t->x, t->y, B, 1.0f / (float)B,
                             schedule_lr(&t->sched, t->step), c->label_smoothing, t->step,
                             t->dlogits, correct);
}

static int train_loop(Trainer *t, FinalResult *r)
{
    const Config *c = &t->cfg;
    const int tty = isatty(STDERR_FILENO);
    const double t0 = now_seconds();
    for (int epoch = 0; epoch < c->epochs; epoch++) {
        const double e0 = now_seconds();
        rng_permutation((uint64_t)c->seed, RNG_DATA_ORDER, (uint64_t)epoch, t->order, t->n_train);
        for (size_t i = 0; i < t->n_train; i++) t->order[i] = t->train_idx[t->order[i]];
        double loss_sum = 0;
        long correct_sum = 0, seen = 0, in_epoch = 0;
        for (; in_epoch < t->steps_per_epoch; in_epoch++) {
            if (c->max_steps && t->step >= c->max_steps) break;
            int correct = 0;
            const double loss = train_step(t, t->order + in_epoch * c->batch_size, epoch, &correct);
            if (!isfinite(loss)) {
                if (tty) fputc('\n', stderr);
                return cigl_fail(CIGL_ERR_RUNTIME, "non-finite training loss at step %ld "
                                 "(epoch %d); lower --lr or check the data", t->step, epoch + 1);
            }
            t->step++;
            loss_sum += loss;
            correct_sum += correct;
            seen += c->batch_size;
            if (tty && (in_epoch % 10 == 0 || in_epoch + 1 == t->steps_per_epoch))
                progress(t, epoch, in_epoch + 1, loss_sum / seen, (double)correct_sum / seen,
                         seen / (now_seconds() - e0));
        }
        if (tty) fputc('\n', stderr);
        if (!seen) break;
        EvalResult val;
        evaluate(&t->m, &t->ds, &t->ds.train, t->val_idx, t->n_val, t->x, t->y, &val);
        const double secs = now_seconds() - e0;
        const double lr = schedule_lr(&t->sched, t->step - 1);
        fprintf(stderr, "epoch %d/%d: step %ld, lr %.4g, train loss %.4f, train acc %.2f%%, "
                "val acc %.2f%%, val nll %.4f, %.1f s (%.0f img/s)\n", epoch + 1, c->epochs,
                t->step, lr, loss_sum / seen, 100.0 * correct_sum / seen,
                val.n ? 100.0 * val.correct / val.n : NAN, val.n ? val.loss_sum / val.n : NAN,
                secs, seen / secs);
        int rc = append_metrics(t, epoch + 1, lr, loss_sum / seen, (double)correct_sum / seen,
                                &val, secs);
        if (rc) return rc;
        r->val = val;
        if (c->max_steps && t->step >= c->max_steps) break;
    }
    r->seconds = now_seconds() - t0;
    r->steps = t->step;
    return CIGL_OK;
}

/* The output model: CigL's averaged weights with BN statistics recomputed on the training
 * samples (not the validation ones); other methods' final weights. */
static int finalize_model(Trainer *t)
{
    int rc = method_finalize(&t->ms, &t->m);
    if (rc) return rc;
    if (t->ms.ops->averaging && !t->cfg.no_averaging && t->m.n_bn_stats)
        recompute_bn_statistics(&t->m, t->m.params, &t->ds, &t->ds.train, t->train_idx,
                                t->n_train, t->cfg.batch_size, t->x, t->y);
    return CIGL_OK;
}

static void evaluate_test(Trainer *t, EvalResult *r)
{
    const int members = method_test_members(&t->ms);
    if (members == 1) {
        evaluate(&t->m, &t->ds, &t->ds.test, NULL, t->ds.test.n, t->x, t->y, r);
        return;
    }
    uint32_t *all = cigl_malloc(sizeof(uint32_t) * t->ds.test.n, "test indices");
    if (!all) return;
    for (size_t i = 0; i < t->ds.test.n; i++) all[i] = (uint32_t)i;
    float *bn = cigl_malloc(sizeof(float) * (t->m.n_bn_stats + 1), "BN statistics");
    if (bn) memcpy(bn, t->m.bn_stats, sizeof(float) * t->m.n_bn_stats);
    evaluate_ensemble(&t->m, &t->ds, &t->ds.test, all, t->ds.test.n, t->x, t->y, members,
                      method_test_member, &t->ms, r);
    if (bn) memcpy(t->m.bn_stats, bn, sizeof(float) * t->m.n_bn_stats); /* members swap BN */
    free(bn);
    free(all);
}

static int write_results(Trainer *t, FinalResult *r)
{
    int rc = finalize_model(t);
    if (rc) return rc;
    evaluate_test(t, &r->test);
    char path[1100], *cfg_text = NULL;
    size_t cfg_len = 0;
    FILE *mem = open_memstream(&cfg_text, &cfg_len);
    if (!mem) return cigl_fail(CIGL_ERR_RUNTIME, "out of memory");
    JsonWriter w;
    json_begin(&w, mem, 1);
    json_object_begin(&w, NULL);
    config_body(t, &w, NULL);
    json_object_end(&w);
    json_end(&w);
    fclose(mem);
    const int keep_snapshots = t->ms.ops->averaging && t->cfg.no_averaging;
    const ModelFileExtras extras = {
        .config_json = cfg_text, .dataset_hash = t->ds.hash, .val_indices = t->val_idx,
        .n_val = t->n_val, .mask = t->ms.ops->sparse ? t->ms.mask : NULL,
        .method = t->cfg.method, .n_snapshots = keep_snapshots ? t->ms.n_snapshots : 0,
        .snapshots = t->ms.snapshots, .snapshot_bn = t->ms.snapshot_bn};
    path_join(path, sizeof(path), t->cfg.out, "final.h5");
    rc = model_save(&t->m, t->m.params, path, &extras);
    free(cfg_text);
    if (!rc) rc = write_json_file(t, "final.json", final_body, r);
    if (rc) return rc;
    printf("%s %s on %s: test accuracy %.2f%%, test NLL %.4f (%ld steps, %.1f s)\n",
           t->cfg.method, t->cfg.model, t->ds.name, 100.0 * r->test.correct / r->test.n,
           r->test.loss_sum / r->test.n, r->steps, r->seconds);
    return CIGL_OK;
}

int train_run(const Config *c, int argc, char **argv)
{
    int rc = config_validate(c);
    if (rc) return rc;
    openblas_set_num_threads(c->threads);
    omp_set_num_threads(c->threads);
    Trainer t;
    memset(&t, 0, sizeof(t));
    t.cfg = *c;
    t.argc = argc;
    t.argv = argv;
    rc = trainer_setup(&t);
    if (!rc) rc = make_run_dir(c->out);
    if (!rc) rc = write_json_file(&t, "config.json", config_body, NULL);
    FinalResult r;
    memset(&r, 0, sizeof(r));
    if (!rc) rc = train_loop(&t, &r);
    if (!rc) rc = write_results(&t, &r);
    trainer_free(&t);
    return rc;
}
