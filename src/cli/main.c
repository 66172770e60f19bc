/* The `cigl` command: train, convert, help. */
#include "cigl/model_compact.h"
#include "cigl/comm.h"
#include "cigl/config.h"
#include "cigl/data.h"
#include "cigl/error.h"
#include "cigl/report.h"
#include "cigl/train.h"
#include "cigl/version.h"

#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
    "cigl: sparse training that stays calibrated (CigL, RigL and baselines)\n"
    "\n"
    "usage:\n"
    "  cigl train --data FILE.h5 --model NAME --out DIR [options]   train a model\n"
    "  cigl eval --model DIR/final.h5 --data FILE.h5 --out DIR2      evaluate a model\n"
    "  cigl report RUN_DIR... [--out DIR]                            table and plots of runs\n"
    "  cigl compact DIR/final.h5 OUT.h5                              sparse (CSR) model file\n"
    "  cigl convert fashion-mnist|cifar10|cifar100 SRC OUT.h5        convert a dataset\n"
    "  cigl convert imagefolder SRC_DIR OUT.h5 [options]             (cigl convert --help)\n"
    "  cigl --help | cigl train --help | cigl --version\n"
    "\n"
    "Run 'cigl train --help' for every training option with its default.\n";

static int want_help(int argc, char **argv)
{
    for (int i = 0; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return 1;
    return 0;
}

static int cmd_train(int argc, char **argv)
{
    if (want_help(argc - 2, argv + 2)) {
        printf("usage: cigl train --data FILE.h5 --model NAME --out DIR [options]\n\n"
               "Writes DIR/config.json, DIR/metrics.jsonl (one line per epoch), "
               "DIR/final.json and DIR/final.h5.\n\noptions:\n");
        config_print_help(stdout, train_options);
        return 0;
    }
    Config c;
    config_defaults(&c);
    Comm *comm = comm_world(&argc, &argv);
    /* ranks other than 0 hold their messages back: setup errors are the same everywhere and
     * rank 0 says them once (train_run discards the copies; an error of one rank alone is
     * flushed at exit or abort) */
    if (comm->rank != 0) setvbuf(stderr, NULL, _IOFBF, 1 << 16);
    int rc = config_resolve_args(&c, argc - 2, argv + 2);
    if (rc && comm->rank != 0) __fpurge(stderr); /* every rank parsed the same options */
    if (!rc) rc = train_run(&c, comm, argc, argv);
    comm->finalize(comm);
    return rc;
}

/* libgomp reads OMP_WAIT_POLICY once, before main. Its default lets idle threads spin, which
 * on a shared or oversubscribed node (MPI ranks x threads, other jobs) starves the threads
 * doing work: measured 5x slower mlp training on 2 busy cores, and with two busy loops beside
 * it the mlp's 95%-sparse step took 1.0 ms passive, 2.9 ms with a short spin (GOMP_SPINCOUNT
 * 20000) and 3-10 ms with libgomp's default. Passive threads pay a futex wake-up per parallel
 * region instead, which the layers limit by running small loops on one thread (layer.h). So
 * unless the user chose a policy (a dedicated node gains from OMP_WAIT_POLICY=ACTIVE on tiny
 * models), cigl re-executes itself once with the passive one. */
static void prefer_passive_openmp(char **argv)
{
    if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT")) return;
    setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
    execv("/proc/self/exe", argv);
    /* exec failed (no /proc): carry on with the default policy */
}

int main(int argc, char **argv)
{
    prefer_passive_openmp(argv);
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "help")) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? CIGL_ERR_USAGE : 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("cigl %s\n", CIGL_GIT_COMMIT);
        return 0;
    }
    if (!strcmp(argv[1], "train")) return cmd_train(argc, argv);
    if (!strcmp(argv[1], "convert")) return convert_main(argc - 2, argv + 2);
    if (!strcmp(argv[1], "eval")) return eval_main(argc - 2, argv + 2);
    if (!strcmp(argv[1], "report")) return report_main(argc - 1, argv + 1);
    if (!strcmp(argv[1], "compact")) return compact_main(argc - 2, argv + 2);
    return cigl_fail(CIGL_ERR_USAGE, "unknown command '%s'; expected train, eval, report, "
                     "compact or convert (see 'cigl --help')", argv[1]);
}
