/* Private to the `cigl train` implementation (train.c, run_files.c). */
#ifndef CIGL_TRAINER_H
#define CIGL_TRAINER_H
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
} Trainer;

/* What the end of a run reports. */
typedef struct {
    Metrics test, test_scaled, val;
    int have_val, have_scaled;
    double temperature;
    double seconds, comm_wait_seconds;
    long steps;
} FinalResult;

int run_dir_create(const char *out);
int run_write_config(const Trainer *t);
int run_append_epoch(const Trainer *t, int epoch, double lr, double train_loss, double train_acc,
                     const Metrics *val, double seconds);
/* final.h5, final.json and reliability.svg. */
int run_write_final(const Trainer *t, const FinalResult *r);

#endif
