/* Checkpoints of a training run and resuming from them: which checkpoint a run continues and
 * with which options, writing one at a step boundary, and sharing the restored state with
 * every rank. Rank 0 does all file work; the other ranks learn its answers by broadcast, so
 * the checkpoint directory need not be visible from every node. */
#include "trainer.h"

#include "cigl/error.h"
#include "cigl/json_read.h"
#include "cigl/method.h"
#include "cigl/sparse.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Options a resumed run may change: they say how the run is carried out, not what it
 * computes. A different --accumulate (like a different rank count) only reorders float sums;
 * a different --data must hold the same samples (the dataset hash is checked). */
static int may_change(const char *name)
{
    static const char *const names[] = {
        "data", "out", "threads", "max-steps", "eval-batch-size", "check-every", "accumulate",
        "checkpoint-every", "checkpoint-minutes", "keep", "resume", "overwrite", "config",
        "dry-run", "kernels", "data-mode", "draw-ahead", "comm-timeout", NULL};
    for (int i = 0; names[i]; i++)
        if (!strcmp(names[i], name)) return 1;
    return 0;
}

static void field_text(const OptionSpec *s, const Config *c, char *buf, size_t cap)
{
    const char *f = (const char *)c + s->offset;
    switch (s->type) {
    case OPT_STRING: snprintf(buf, cap, "'%s'", f); break;
    case OPT_INT: case OPT_FLAG: case OPT_FLAG_OFF: snprintf(buf, cap, "%d", *(const int *)f); break;
    case OPT_LONG: snprintf(buf, cap, "%ld", *(const long *)f); break;
    case OPT_LLONG: snprintf(buf, cap, "%lld", *(const long long *)f); break;
    case OPT_DOUBLE: snprintf(buf, cap, "%.17g", *(const double *)f); break;
    }
}

/* Whether --mechanics `label` asks for what the checkpoint recorded: the values it resolves to
 * for this run from scratch (every option it decides unset) are the recorded ones. So a plan
 * line that pins --mechanics legacy resumes a run that an older binary recorded as "cigl" with
 * the same values, and a label that would change them is refused like any other option. */
static int mechanics_label_only(const Config *base, const char *label)
{
    if (strcmp(label, "cigl") && strcmp(label, "authors") && strcmp(label, "legacy")) return 0;
    Config recorded = *base, fresh = *base;
    /* a loaded value counts as the run's own only where it differs from the default (given) */
    memset(fresh.loaded, 0, sizeof fresh.loaded);
    method_mechanics_forget(&fresh);
    snprintf(fresh.mechanics, sizeof fresh.mechanics, "%s", label);
    /* the recorded values are valid (their run resolved them) and so is the label */
    const int rc = method_resolve_mechanics(&recorded) || method_resolve_mechanics(&fresh);
    return !rc && method_mechanics_same(&recorded, &fresh);
}

/* The resumed run's options: the checkpoint's, with the given options that may change. A
 * given option that would change what the run computes is refused. */
static int merge_options(Config *c, const char *json, const char *path)
{
    char err[256], source[1200];
    snprintf(source, sizeof source, "options of checkpoint '%s'", path);
    JsonValue *root = json_parse(json, strlen(json), err, sizeof err);
    if (!root)
        return cigl_fail(CIGL_ERR_USAGE, "%s: %s; resume from another checkpoint", source, err);
    Config base;
    config_defaults(&base);
    int rc = config_apply_json(&base, root, source);
    if (!rc) config_mark_unversioned_legacy(&base, root); /* a checkpoint from before it */
    json_free(root);
    for (const OptionSpec *s = train_options; s->name && !rc; s++) {
        const size_t i = (size_t)(s - train_options);
        if (!c->given[i]) continue;
        char *dst = (char *)&base + s->offset;
        const char *src = (const char *)c + s->offset;
        if (may_change(s->name)) {
            memcpy(dst, src, s->size);
            base.given[i] = 1;
            continue;
        }
        const int same = s->type == OPT_STRING ? !strcmp(dst, src) : !memcmp(dst, src, s->size);
        if (!same && !strcmp(s->name, "mechanics") && mechanics_label_only(&base, src))
            continue; /* the checkpoint's recorded values decide; the label changes nothing */
        if (!same) {
            char want[600], have[600];
            field_text(s, c, want, sizeof want);
            field_text(s, &base, have, sizeof have);
            rc = cigl_fail(CIGL_ERR_USAGE, "--%s %s differs from the checkpoint's %s: a resumed "
                           "run keeps the options that decide what it computes (only --threads, "
                           "--data, --data-mode, --out, --max-steps, --accumulate and the "
                           "checkpoint options may change); drop it or start afresh with "
                           "--overwrite", s->name,
                           want, have);
        }
    }
    if (!rc) *c = base;
    return rc;
}

/* What rank 0 found, for every rank. */
typedef struct {
    int status, finished, found;
    size_t json_len;
    CheckpointInfo info;
    char path[1100];
} StartNote;

static int file_exists(const char *dir, const char *name)
{
    char p[1200];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return access(p, F_OK) == 0;
}

/* Rank 0: which checkpoint --resume means, and its header. */
static int inspect(const Trainer *t, StartNote *note, char **json)
{
    const Config *c = &t->cfg;
    if (!strcmp(c->resume, "auto")) {
        if (!c->out[0])
            return cigl_fail(CIGL_ERR_USAGE, "--resume auto needs --out DIR, the run to "
                             "continue");
        if (file_exists(c->out, "final.json")) {
            note->finished = 1;
            return CIGL_OK;
        }
        /* the run that wrote them is gone (this one resumes it): they would only fill the disk */
        const int partial = checkpoint_remove_partial(t->ckpt_dir);
        if (partial)
            fprintf(stderr, "cigl: removed %d incomplete checkpoint file(s) (*.tmp.*) of an "
                    "interrupted write in '%s'\n", partial, t->ckpt_dir);
        note->found = checkpoint_find_latest(t->ckpt_dir, note->path, sizeof note->path);
        if (!note->found) return CIGL_OK;
    } else {
        snprintf(note->path, sizeof note->path, "%s", c->resume);
        note->found = 1;
    }
    return checkpoint_read_info(note->path, &note->info, json);
}

static void set_checkpoint_dir(Trainer *t)
{
    snprintf(t->ckpt_dir, sizeof t->ckpt_dir, "%s/checkpoints", t->cfg.out);
}

int run_resolve_start(Trainer *t)
{
    Config *c = &t->cfg;
    Comm *comm = t->comm;
    set_checkpoint_dir(t);
    t->replace_run = c->overwrite;
    if (!c->resume[0]) return CIGL_OK;
    StartNote note;
    memset(&note, 0, sizeof note);
    char *json = NULL;
    if (comm->rank == 0) {
        note.status = inspect(t, &note, &json);
        note.json_len = json ? strlen(json) : 0;
    }
    if (comm->broadcast(comm, &note, sizeof note, 0)) return CIGL_ERR_RUNTIME;
    if (note.status) return note.status; /* rank 0 said why */
    if (note.finished) {
        t->finished = 1;
        return CIGL_OK;
    }
    if (!note.found) {
        if (comm->rank == 0 && file_exists(c->out, "config.json"))
            fprintf(stderr, "cigl: no checkpoint in '%s': starting the run in '%s' from step "
                    "0\n", t->ckpt_dir, c->out);
        t->replace_run = 1; /* an unfinished run without checkpoint has nothing to keep */
        return CIGL_OK;
    }
    if (comm->rank != 0) json = calloc(note.json_len + 1, 1);
    if (!json) return cigl_fail(CIGL_ERR_RUNTIME, "out of memory reading the checkpoint");
    int rc = comm->broadcast(comm, json, note.json_len + 1, 0) ? CIGL_ERR_RUNTIME : CIGL_OK;
    if (!rc) rc = merge_options(c, json, note.path);
    free(json);
    if (rc) return rc;
    t->start = note.info;
    snprintf(t->resume_path, sizeof t->resume_path, "%s", note.path);
    set_checkpoint_dir(t);
    return CIGL_OK;
}

int run_load_checkpoint(Trainer *t)
{
    if (!t->resume_path[0] || t->comm->rank != 0) return CIGL_OK;
    const CheckpointInfo *s = &t->start;
    const char *path = t->resume_path;
    if (s->dataset_hash != t->ds.hash)
        return cigl_fail(CIGL_ERR_USAGE, "checkpoint '%s' was trained on other data (dataset "
                         "hash %016llx; --data '%s' has %016llx); resume with the run's "
                         "dataset", path, (unsigned long long)s->dataset_hash, t->cfg.data,
                         (unsigned long long)t->ds.hash);
    if (s->step != (long)s->epoch * t->steps_per_epoch + s->in_epoch || s->epoch > t->cfg.epochs)
        return cigl_fail(CIGL_ERR_USAGE, "checkpoint '%s' is at step %ld (epoch %d, step %ld "
                         "of it), which does not fit %ld steps per epoch; resume with the run's "
                         "--batch-size, --val-size and dataset", path, s->step, s->epoch,
                         s->in_epoch, t->steps_per_epoch);
    CheckpointInfo read;
    int rc = checkpoint_read_state(path, &read, &t->m, &t->opt, &t->ms);
    if (rc) return rc;
    fprintf(stderr, "cigl: resuming from '%s' at step %ld (epoch %d, step %ld of %ld)\n", path,
            s->step, s->epoch + 1, s->in_epoch, t->steps_per_epoch);
    if (s->ranks != t->comm->size || s->accumulate != t->cfg.accumulate)
        fprintf(stderr, "cigl: the checkpoint ran on %d rank(s) x %d micro-batch(es), this run "
                "on %d x %d: the global batches are the same samples, but gradients are summed "
                "in another order, so the weights will match an uninterrupted run to float "
                "rounding, not bit for bit\n", s->ranks, s->accumulate, t->comm->size,
                t->cfg.accumulate);
    return CIGL_OK;
}

/* Rank 0's restored state to every rank. */
static int share_state(Trainer *t)
{
    Comm *comm = t->comm;
    Model *m = &t->m;
    MethodState *ms = &t->ms;
    const size_t np = m->n_params;
    long counters[3] = {ms->n_snapshots, ms->updates_done, ms->dense_grad_steps};
    method_forget_draws(ms); /* rank 0's masks arrive: see method_forget_draws */
    int rc = comm->broadcast(comm, m->params, sizeof(float) * np, 0);
    rc |= comm->broadcast(comm, t->opt.velocity, sizeof(float) * np, 0);
    rc |= comm->broadcast(comm, m->bn_stats, sizeof(float) * m->n_bn_stats, 0);
    rc |= comm->broadcast(comm, ms->mask, np, 0);
    rc |= comm->broadcast(comm, ms->active, np, 0);
    rc |= comm->broadcast(comm, ms->ever, np, 0);
    rc |= comm->broadcast(comm, ms->counts, sizeof(long) * (size_t)m->n_tensors, 0);
    rc |= comm->broadcast(comm, counters, sizeof counters, 0);
    rc |= comm->broadcast(comm, &ms->replaced_sum, sizeof ms->replaced_sum, 0);
    if (ms->avg) rc |= comm->broadcast(comm, ms->avg, sizeof(float) * np, 0);
    if (ms->held) rc |= comm->broadcast(comm, ms->held, sizeof(float) * np, 0);
    if (rc) return CIGL_ERR_RUNTIME;
    ms->n_snapshots = counters[0];
    ms->updates_done = counters[1];
    ms->dense_grad_steps = counters[2];
    const long kept = ms->cfg.no_averaging ? ms->n_snapshots : 0;
    if (kept > ms->snapshot_cap) { /* ranks other than 0 make room */
        /* NOLINTNEXTLINE(clang-analyzer-optin.portability.UnixAPI): np = n_params >= 1 */
        float *w = realloc(ms->snapshots, sizeof(float) * np * (size_t)kept);
        if (w) ms->snapshots = w;
        float *b = realloc(ms->snapshot_bn, sizeof(float) * (m->n_bn_stats + 1) * (size_t)kept);
        if (b) ms->snapshot_bn = b;
        if (!w || !b) {
            cigl_fail(CIGL_ERR_RUNTIME, "out of memory restoring snapshots");
            comm->abort(comm, CIGL_ERR_RUNTIME); /* the others wait in the broadcast */
            return CIGL_ERR_RUNTIME;
        }
        ms->snapshot_cap = kept;
    }
    if (kept && (comm->broadcast(comm, ms->snapshots, sizeof(float) * np * (size_t)kept, 0) ||
                 comm->broadcast(comm, ms->snapshot_bn,
                                 sizeof(float) * (m->n_bn_stats + 1) * (size_t)kept, 0)))
        return CIGL_ERR_RUNTIME;
    return CIGL_OK;
}

int run_share_checkpoint(Trainer *t)
{
    if (!t->resume_path[0]) return CIGL_OK;
    if (t->comm->size > 1 && share_state(t)) return CIGL_ERR_RUNTIME;
    /* the kernels the checkpoint ran with (rules may change between versions), unless
     * --kernels says otherwise; patterns rebuilt from the restored mask either way */
    const uint8_t *mask = t->ms.ops->sparse ? t->ms.mask : NULL;
    const KernelsMode mode = (KernelsMode)sparse_kernels_parse(t->cfg.kernels);
    const int rc = config_given(&t->cfg, "kernels")
                       ? sparse_model_setup(&t->m, mode, mask)
                       : sparse_model_setup_choice(&t->m, t->start.kernels, mask);
    if (rc) return rc;
    t->step = t->start.step;
    t->skipped_steps = t->start.skipped_steps;
    t->ms.masks_changed = 0;
    return grad_sync_set_mask(&t->sync, t->ms.ops->sparse ? t->ms.mask : NULL);
}

static int write_one(Trainer *t, const CheckpointInfo *info)
{
    if (mkdir(t->ckpt_dir, 0777) && errno != EEXIST)
        return cigl_fail(CIGL_ERR_RUNTIME, "cannot create '%s': %s", t->ckpt_dir,
                         strerror(errno));
    char *json = config_json_text(&t->cfg, 0);
    if (!json) return cigl_fail(CIGL_ERR_RUNTIME, "out of memory writing a checkpoint");
    char name[64], path[1200];
    checkpoint_name(name, sizeof name, info->step);
    snprintf(path, sizeof path, "%s/%s", t->ckpt_dir, name);
    int rc = checkpoint_write(path, info, json, &t->m, &t->opt, &t->ms);
    free(json);
    if (!rc) checkpoint_rotate(t->ckpt_dir, t->cfg.keep);
    return rc;
}

int run_checkpoint(Trainer *t, int epoch, long in_epoch, const double sums[2], long seen,
                   double train_seconds, int required)
{
    Comm *comm = t->comm;
    double total[2] = {sums[0], sums[1]};
    if (comm->size > 1 && comm->allreduce_double(comm, total, 2)) return CIGL_ERR_RUNTIME;
    int rc = CIGL_OK;
    if (comm->rank == 0) {
        CheckpointInfo info;
        memset(&info, 0, sizeof info);
        info.step = t->step;
        info.epoch = epoch;
        info.in_epoch = in_epoch;
        info.epoch_seen = seen;
        info.epoch_loss = total[0];
        info.epoch_hits = total[1];
        info.skipped_steps = t->skipped_steps;
        info.epoch_skipped = in_epoch ? t->epoch_skipped : 0;
        info.ranks = comm->size;
        info.accumulate = t->cfg.accumulate;
        info.train_seconds = train_seconds;
        info.dataset_hash = t->ds.hash;
        snprintf(info.model, sizeof info.model, "%s", t->cfg.model);
        snprintf(info.method, sizeof info.method, "%s", t->cfg.method);
        if (sparse_choice_format(&t->m, info.kernels, sizeof info.kernels) < 0)
            snprintf(info.kernels, sizeof info.kernels, "dense");
        rc = write_one(t, &info);
        if (rc && !required) {
            fprintf(stderr, "cigl: warning: training goes on without this checkpoint\n");
            rc = CIGL_OK;
        }
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        t->last_checkpoint = (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
    }
    if (comm->size > 1) { /* every rank learns whether a required checkpoint exists */
        double failed = rc ? 1.0 : 0.0;
        if (comm->allreduce_double(comm, &failed, 1)) return CIGL_ERR_RUNTIME;
        if (failed > 0 && !rc) rc = CIGL_ERR_RUNTIME;
    }
    return rc;
}
