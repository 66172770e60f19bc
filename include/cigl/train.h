/* The two commands that run models: `cigl train` and `cigl eval`. */
#ifndef CIGL_TRAIN_H
#define CIGL_TRAIN_H
#include "cigl/comm.h"
#include "cigl/config.h"
#include "cigl/evaluate.h"

/* `cigl eval` (argv without "cigl eval"). */
int eval_main(int argc, char **argv);

/* Runs `cigl train` with a parsed configuration on every rank of `comm`; argv is recorded in
 * config.json. */
int train_run(const Config *c, Comm *comm, int argc, char **argv);

#endif
