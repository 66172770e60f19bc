/* Private to the `cigl train` implementation (train.c, run_files.c). */
#ifndef CIGL_TRAINER_H
#define CIGL_TRAINER_H
#include "cigl/checkpoint.h"
#include "cigl/comm.h"
#include "cigl/json.h"
#include "cigl/parallel.h"
#include "cigl/method.h"
#include "cigl/metrics.h"
#include "cigl/optim.h"
#include "cigl/train.h"

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
    float *x, *dlogits, *x_mix; /* x_mix: mixup's mixed batch */
    int32_t *y, *y_mix;     /* y_mix: mixup partners' labels */
    uint32_t *pairs;        /* mixup partner permutation */
    Comm *comm;
    GradSync sync;
    float *gacc;            /* gradient accumulator over micro-batches (--accumulate) */
    int argc;               /* the command line, recorded in config.json */
    char **argv;
    /* checkpoints and resuming */
    char ckpt_dir[1100];    /* OUT/checkpoints */
    char resume_path[1100]; /* the checkpoint this run continues ("": a fresh run) */
    CheckpointInfo start;   /* where the loop starts: all zero for a fresh run */
    int replace_run;        /* --out may hold an unfinished run without checkpoint: replace it */
    int finished;           /* --resume auto found final.json: nothing to do */
    double last_checkpoint; /* rank 0's clock at the last checkpoint (--checkpoint-minutes) */
    int stop_signal;        /* agreed at the last step: a rank received this stop signal */
    int checkpoint_due;     /* agreed at the last step: rank 0's timer asks for a checkpoint */
    /* non-finite values (--on-nonfinite) */
    int nonfinite;          /* the last step was refused: a NaN or infinity somewhere */
    char fault[160];        /* where this rank saw it first ("the output of layer 'fc1'") */
    long skipped_steps, epoch_skipped, consecutive_skips;
    long test_nan_step;     /* test hook CIGL_TEST_NAN_AT_STEP: rank 0 poisons that step's input */
} Trainer;

/* What the end of a run reports. */
typedef struct {
    Metrics test, test_scaled, val;
    int have_val, have_scaled;
    double temperature;
    double seconds, comm_wait_seconds;
    long steps;
} FinalResult;

/* Creates --out; refuses one holding a run unless `replace` (then the run's files go). */
int run_dir_create(const char *out, int replace);
/* Keeps the first `epochs` lines of metrics.jsonl (a resumed run rewrites the rest). */
int run_truncate_metrics(const char *out, int epochs);

/* Checkpoints and resuming (run_checkpoint.c). Resolution: --resume auto|PATH (the
 * checkpoint's options, with the allowed command-line changes), finished runs. Every rank
 * learns rank 0's answer. */
int run_resolve_start(Trainer *t);
/* Rank 0 reads the checkpoint's state into the built model (setup phase, may fail). */
int run_load_checkpoint(Trainer *t);
/* Collective: every rank gets rank 0's restored state. */
int run_share_checkpoint(Trainer *t);
/* Collective: rank 0 writes a checkpoint of the position (epoch, in_epoch) with this rank's
 * running sums of the epoch; `required`: a failed write is an error (else a warning). */
int run_checkpoint(Trainer *t, int epoch, long in_epoch, const double sums[2], long seen,
                   double train_seconds, int required);
int run_write_config(const Trainer *t);
int run_append_epoch(const Trainer *t, int epoch, double lr, double train_loss, double train_acc,
                     const Metrics *val, double seconds, long skipped_steps);
/* Rank 0, after the checkpoint of a stop signal: OUT/requeue.json, the job scripts' cue. */
int run_write_requeue(const Trainer *t, const char *reason);
/* final.h5, final.json and reliability.svg. */
int run_write_final(const Trainer *t, const FinalResult *r);

#endif
