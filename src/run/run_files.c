/* The files of a run directory: config.json, metrics.jsonl, final.json, final.h5,
 * reliability.svg. JSON and HDF5 files are written to a temporary name and renamed, so
 * readers never see a partial file. */
#include "trainer.h"

#include "cigl/error.h"
#include "cigl/h5io.h"
#include "cigl/model_io.h"
#include "cigl/provenance.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int path_join(char *buf, size_t len, const char *dir, const char *name)
{
    return snprintf(buf, len, "%s/%s", dir, name) >= (int)len
               ? cigl_fail(CIGL_ERR_USAGE, "--out path too long") : CIGL_OK;
}

/* Deletes the files a run writes (only those: --out may be a directory with other files). */
static void remove_run_files(const char *out)
{
    static const char *const names[] = {"config.json", "metrics.jsonl", "final.json",
                                        "final.h5", "reliability.svg", "requeue.json",
                                        NULL};
    char p[1200];
    for (int i = 0; names[i]; i++) {
        snprintf(p, sizeof(p), "%s/%s", out, names[i]);
        unlink(p);
    }
    snprintf(p, sizeof(p), "%s/checkpoints", out);
    DIR *d = opendir(p);
    if (!d) return;
    for (struct dirent *e; (e = readdir(d));) {
        if (strncmp(e->d_name, "step-", 5)) continue;
        char f[1500];
        snprintf(f, sizeof(f), "%s/%s", p, e->d_name);
        unlink(f);
    }
    closedir(d);
    rmdir(p);
}

int run_dir_create(const char *out, int replace)
{
    char p[1100];
    if (path_join(p, sizeof(p), out, "config.json")) return CIGL_ERR_USAGE;
    if (access(p, F_OK) == 0 && !replace)
        return cigl_fail(CIGL_ERR_USAGE, "--out '%s' already holds a run (config.json exists); "
                         "continue it with --resume auto, replace it with --overwrite, or "
                         "choose a new directory", out);
    if (replace) remove_run_files(out);
    char tmp[CIGL_PATH_MAX];
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

int run_truncate_metrics(const char *out, int epochs)
{
    char path[CIGL_PATH_MAX], tmp[CIGL_PATH_MAX + CIGL_TMP_SUFFIX_MAX];
    if (path_join(path, sizeof(path), out, "metrics.jsonl")) return CIGL_ERR_USAGE;
    FILE *in = fopen(path, "r");
    if (!in) return CIGL_OK; /* nothing logged yet */
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *o = fopen(tmp, "w");
    if (!o) {
        fclose(in);
        return cigl_fail(CIGL_ERR_RUNTIME, "cannot write '%s': %s", tmp, strerror(errno));
    }
    char line[4096];
    for (int kept = 0; kept < epochs && fgets(line, sizeof line, in); kept++) fputs(line, o);
    fclose(in);
    const int bad = (fflush(o) != 0) | (fsync(fileno(o)) != 0) | (fclose(o) != 0);
    if (bad || rename(tmp, path)) {
        unlink(tmp);
        return cigl_fail(CIGL_ERR_RUNTIME, "rewriting '%s' failed (disk full?)", path);
    }
    return CIGL_OK;
}

typedef void (*JsonBody)(const Trainer *t, JsonWriter *w, const void *arg);

/* Writes one JSON object to `f` through `body`. */
static void json_document(FILE *f, const Trainer *t, JsonBody body, const void *arg)
{
    JsonWriter w;
    json_begin(&w, f, 1);
    json_object_begin(&w, NULL);
    body(t, &w, arg);
    json_object_end(&w);
    json_end(&w);
}

static int write_json_file(const Trainer *t, const char *name, JsonBody body, const void *arg)
{
    char path[CIGL_PATH_MAX], tmp[CIGL_PATH_MAX + CIGL_TMP_SUFFIX_MAX];
    if (path_join(path, sizeof(path), t->cfg.out, name)) return CIGL_ERR_USAGE;
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return cigl_fail(CIGL_ERR_RUNTIME, "cannot write '%s': %s", tmp, strerror(errno));
    json_document(f, t, body, arg);
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
    provenance_write_json(w, t->argc, t->argv, t->comm->size > 1 || strcmp(t->comm->name, "single process") ? t->comm->name : NULL, t->comm->size);
}

int run_write_config(const Trainer *t) { return write_json_file(t, "config.json", config_body, NULL); }

static void final_body(const Trainer *t, JsonWriter *w, const void *arg)
{
    const FinalResult *r = arg;
    json_string(w, "model", t->cfg.model);
    json_string(w, "dataset", t->ds.name);
    json_int(w, "parameters", (long long)t->m.n_params);
    json_int(w, "steps", r->steps);
    json_int(w, "epochs", t->cfg.epochs);
    json_double(w, "train_seconds", r->seconds);
    json_double(w, "train_images_per_second",
                r->seconds > 0 ? (double)r->steps * t->cfg.batch_size / r->seconds : 0);
    json_int(w, "ranks", t->comm->size);
    json_string(w, "mpi", t->comm->name);
    json_double(w, "communication_wait_seconds", r->comm_wait_seconds);
    json_int(w, "skipped_steps", t->skipped_steps);
    /* flat headline numbers for quick greps; the full sets follow */
    json_double(w, "test_accuracy", r->test.accuracy);
    json_double(w, "test_nll", r->test.nll);
    json_double(w, "test_ece", r->test.ece);
    json_object_begin(w, "test");
    metrics_write_json(&r->test, w);
    json_object_end(w);
    if (r->have_val) {
        json_object_begin(w, "val");
        metrics_write_json(&r->val, w);
        json_object_end(w);
    }
    if (r->have_scaled) {
        json_double(w, "temperature", r->temperature);
        json_object_begin(w, "test_temperature_scaled");
        metrics_write_json(&r->test_scaled, w);
        json_object_end(w);
    }
    method_write_json(&t->ms, &t->m, w);
    char machine[512];
    provenance_machine(machine, sizeof(machine));
    json_string(w, "machine", machine);
}

/* The job scripts requeue a job only when this marker exists: a launcher's exit status mixes
 * every rank's (srun reports the highest, or 128 + a signal), so 75 alone cannot say that rank 0
 * finished the checkpoint (jobs/README.md, "Time limits and preemption"). */
static void requeue_body(const Trainer *t, JsonWriter *w, const void *arg)
{
    json_string(w, "reason", arg);
    json_int(w, "step", t->step);
    json_string(w, "checkpoint_dir", t->ckpt_dir);
    json_int(w, "ranks", t->comm->size);
    json_int(w, "exit", CIGL_EXIT_REQUEUE);
}

int run_write_requeue(const Trainer *t, const char *reason)
{
    return write_json_file(t, "requeue.json", requeue_body, reason);
}

int run_append_epoch(const Trainer *t, int epoch, double lr, double train_loss, double train_acc,
                     const Metrics *val, double seconds, long skipped_steps)
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
    json_double(&w, "val_acc", val ? val->accuracy : NAN);
    json_double(&w, "val_nll", val ? val->nll : NAN);
    json_double(&w, "val_ece", val ? val->ece : NAN);
    json_double(&w, "seconds", seconds);
    json_int(&w, "skipped_steps", skipped_steps);
    json_object_end(&w);
    json_end(&w);
    return fclose(f) ? cigl_fail(CIGL_ERR_RUNTIME, "writing '%s' failed", path) : CIGL_OK;
}

static int write_reliability(const Trainer *t, const Metrics *m)
{
    char path[CIGL_PATH_MAX], tmp[CIGL_PATH_MAX + CIGL_TMP_SUFFIX_MAX], title[160];
    if (path_join(path, sizeof(path), t->cfg.out, "reliability.svg")) return CIGL_ERR_USAGE;
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    snprintf(title, sizeof(title), "%s %s, sparsity %g: test", t->cfg.method, t->cfg.model,
             t->ms.ops->sparse ? t->cfg.sparsity : 0.0);
    FILE *f = fopen(tmp, "w");
    if (!f) return cigl_fail(CIGL_ERR_RUNTIME, "cannot write '%s'", tmp);
    int rc = reliability_svg(m, f, title);
    if (fclose(f) || rc || rename(tmp, path)) {
        unlink(tmp);
        return cigl_fail(CIGL_ERR_RUNTIME, "writing '%s' failed (disk full?)", path);
    }
    return CIGL_OK;
}

static int write_model_file(const Trainer *t)
{
    char path[1100], *cfg_text = NULL;
    size_t cfg_len = 0;
    FILE *mem = open_memstream(&cfg_text, &cfg_len);
    if (!mem) return cigl_fail(CIGL_ERR_RUNTIME, "out of memory");
    json_document(mem, t, config_body, NULL);
    fclose(mem);
    const int keep_snapshots = t->ms.ops->averaging && t->cfg.no_averaging;
    const ModelFileExtras extras = {
        .config_json = cfg_text, .dataset_hash = t->ds.hash, .val_indices = t->val_idx,
        .n_val = t->n_val, .mask = t->ms.ops->sparse ? t->ms.mask : NULL,
        .method = t->cfg.method, .n_snapshots = keep_snapshots ? t->ms.n_snapshots : 0,
        .snapshots = t->ms.snapshots, .snapshot_bn = t->ms.snapshot_bn, .cfg = &t->cfg,
        .total_steps = t->total_steps};
    path_join(path, sizeof(path), t->cfg.out, "final.h5");
    int rc = model_save(&t->m, t->m.params, path, &extras);
    free(cfg_text);
    return rc;
}

int run_write_final(const Trainer *t, const FinalResult *r)
{
    int rc = write_model_file(t);
    if (!rc) rc = write_reliability(t, &r->test);
    if (!rc) rc = write_json_file(t, "final.json", final_body, r);
    return rc;
}
