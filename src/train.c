/* `cigl train`: the single-process training loop. Everything is validated (options, dataset,
 * model) before the run directory is created, so bad input never leaves a half-written run. */
#include "trainer.h"

#include "cigl/error.h"
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
    free(t->x_mix);
    free(t->y_mix);
    free(t->pairs);
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
    if (c->mixup > 0) {
        t->x_mix = cigl_malloc(sizeof(float) * in_numel * c->batch_size, "mixup batch");
        t->y_mix = cigl_malloc(sizeof(int32_t) * c->batch_size, "mixup labels");
        t->pairs = cigl_malloc(sizeof(uint32_t) * c->batch_size, "mixup pairs");
        if (!t->x_mix || !t->y_mix || !t->pairs) return CIGL_ERR_RUNTIME;
    }
    return CIGL_OK;
}

/* Predictions of the output model on samples of a split with the method's predictor: the
 * parameters, an MC-dropout ensemble, or CigL's snapshot ensemble without averaging. */
static int predict_with_method(Trainer *t, const Split *s, const uint32_t *idx, size_t n,
                               Predictions *p)
{
    float *bn = cigl_malloc(sizeof(float) * (t->m.n_bn_stats + 1), "BN statistics");
    if (!bn) return CIGL_ERR_RUNTIME;
    memcpy(bn, t->m.bn_stats, sizeof(float) * t->m.n_bn_stats);
    const int rc = predict(&t->m, &t->ds, s, idx, n, t->x, t->y, method_test_members(&t->ms),
                           method_test_member, &t->ms, p);
    memcpy(t->m.bn_stats, bn, sizeof(float) * t->m.n_bn_stats); /* members may swap BN */
    free(bn);
    return rc;
}

/* Metrics of the current parameters (the per-epoch validation: no ensembles, no averaging). */
static int evaluate_split(Trainer *t, const Split *s, const uint32_t *idx, size_t n, Metrics *out)
{
    Predictions p;
    int rc = predict(&t->m, &t->ds, s, idx, n, t->x, t->y, 1, NULL, NULL, &p);
    if (!rc) rc = predictions_metrics(&p, 1.0, out);
    predictions_free(&p);
    return rc;
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
    LossTargets targets = {c->label_smoothing, NULL, 1.0};
    const float *x = t->x;
    if (c->mixup > 0) { /* pairs and lambda drawn per global step */
        const double lambda = rng_beta_symmetric((uint64_t)c->seed, RNG_MIXUP, (uint64_t)t->step,
                                                 c->mixup);
        rng_permutation((uint64_t)c->seed, RNG_MIXUP_PAIRS, (uint64_t)t->step, t->pairs,
                        (size_t)B);
        const size_t numel = shape_numel(t->m.input);
        for (int i = 0; i < B; i++) {
            const float *a = t->x + (size_t)i * numel, *b = t->x + (size_t)t->pairs[i] * numel;
            float *o = t->x_mix + (size_t)i * numel;
            for (size_t j = 0; j < numel; j++)
                o[j] = (float)(lambda * a[j] + (1.0 - lambda) * b[j]);
            t->y_mix[i] = t->y[t->pairs[i]];
        }
        targets.mix_labels = t->y_mix;
        targets.mix_lambda = lambda;
        x = t->x_mix;
    }
    return method_train_step(&t->ms, &t->m, &t->opt, x, t->y, B, 1.0f / (float)B,
                             schedule_lr(&t->sched, t->step), &targets, t->step, t->dlogits,
                             correct);
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
        Metrics val;
        memset(&val, 0, sizeof(val));
        int rc = t->n_val ? evaluate_split(t, &t->ds.train, t->val_idx, t->n_val, &val) : 0;
        if (rc) return rc;
        const double secs = now_seconds() - e0;
        const double lr = schedule_lr(&t->sched, t->step - 1);
        fprintf(stderr, "epoch %d/%d: step %ld, lr %.4g, train loss %.4f, train acc %.2f%%, "
                "val acc %.2f%%, val nll %.4f, val ECE %.4f, %.1f s (%.0f img/s)\n",
                epoch + 1, c->epochs, t->step, lr, loss_sum / seen, 100.0 * correct_sum / seen,
                t->n_val ? 100 * val.accuracy : NAN, t->n_val ? val.nll : NAN,
                t->n_val ? val.ece : NAN, secs, seen / secs);
        rc = run_append_epoch(t, epoch + 1, lr, loss_sum / seen, (double)correct_sum / seen,
                              t->n_val ? &val : NULL, secs);
        if (rc) return rc;
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

/* Test metrics with the method's predictor, and temperature scaling fitted on the validation
 * split (single models only: an ensemble has no logits to scale). */
static int evaluate_final(Trainer *t, FinalResult *r)
{
    Predictions test;
    int rc = predict_with_method(t, &t->ds.test, NULL, t->ds.test.n, &test);
    if (rc) return rc;
    rc = predictions_metrics(&test, 1.0, &r->test);
    r->temperature = 1.0;
    if (!rc && t->n_val) {
        Predictions val;
        rc = predict_with_method(t, &t->ds.train, t->val_idx, t->n_val, &val);
        if (!rc) rc = predictions_metrics(&val, 1.0, &r->val);
        r->have_val = !rc;
        if (!rc && val.logits && test.logits) {
            rc = temperature_fit(val.logits, val.labels, val.n, val.classes, &r->temperature);
            if (!rc) rc = predictions_metrics(&test, r->temperature, &r->test_scaled);
            r->have_scaled = !rc;
        }
        predictions_free(&val);
    }
    predictions_free(&test);
    return rc;
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
    if (!rc) rc = run_dir_create(c->out);
    if (!rc) rc = run_write_config(&t);
    FinalResult r;
    memset(&r, 0, sizeof(r));
    if (!rc) rc = train_loop(&t, &r);
    if (!rc) rc = finalize_model(&t);
    if (!rc) rc = evaluate_final(&t, &r);
    if (!rc) rc = run_write_final(&t, &r);
    if (!rc)
        printf("%s %s on %s: test accuracy %.2f%%, NLL %.4f, ECE %.4f (%ld steps, %.1f s)\n",
               c->method, c->model, t.ds.name, 100 * r.test.accuracy, r.test.nll, r.test.ece,
               r.steps, r.seconds);
    trainer_free(&t);
    return rc;
}
