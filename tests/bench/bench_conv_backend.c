/* Dense training step with the conv backends side by side (--conv-backend, conv_backend.h):
 * cigl's own kernels, oneDNN, and PyTorch (tests/bench/torch_bench.py, same model, batch and
 * threads), as ratios.
 *
 * One step is bench_train's (tests/bench/README.md): model_forward (train mode) +
 * softmax_xent + model_backward + sgd_step on random 1x28x28 inputs, batch 128. Every round
 * times --reps pairs of blocks (each at least --min-time of steps), own and onednn back to back
 * in one process, which one first alternating, then runs torch_bench.py once. onednn/own is
 * the median of all pairs' ratios: on a shared machine a neighbour's load comes and goes within
 * seconds, and a pair's two blocks see nearly the same. The torch ratios compare each round's
 * medians (torch cannot share the process) and are summarised by their median over rounds,
 * so they are noisier. The load average is printed with every round.
 *
 * PyTorch runs with GOMP_SPINCOUNT=20000 (its faster setting for convolutions, README's "OpenMP
 * wait settings"); cigl with the caller's OMP_WAIT_POLICY (run.sh: PASSIVE, as the CLI).
 * Without python3-torch, or with --no-torch, the torch columns are n/a.
 *
 * Flags: --models a,b (resnet20) --threads N (2) --batch B (128) --rounds R (5) --reps R (5)
 * --min-time S (0.3) --no-torch. Lines "BENCH {json}" (kinds conv_backend_round,
 * conv_backend) carry every number. */
#include "cigl/conv_backend.h"
#include "cigl/loss.h"
#include "cigl/model.h"
#include "cigl/optim.h"
#include "cigl/rng.h"
#include "bench_common.h"
#include "bench_dense.h"

#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { MAX_REPS = 32, MAX_ROUNDS = 32 };

typedef struct {
    int threads, batch, rounds, reps, torch;
    double min_time;
    char models[256];
} Opts;

static void loadavg(char *buf, size_t cap)
{
    FILE *f = fopen("/proc/loadavg", "r");
    buf[0] = 0;
    if (f) {
        if (!fgets(buf, (int)cap, f)) buf[0] = 0;
        fclose(f);
    }
    buf[strcspn(buf, "\n")] = 0;
}

/* One block of steps lasting at least o->min_time on backend be: ms per step. */
static double block_ms(DenseBench *b, const Opts *o, ConvBackend be)
{
    conv_backend_set(be);
    int steps = 0;
    const double t0 = bench_now();
    double t;
    do {
        dense_bench_step(b);
        steps++;
    } while ((t = bench_now() - t0) < o->min_time);
    return 1e3 * t / steps;
}

/* o->reps pairs of blocks, own and onednn back to back (which goes first alternates), so that
 * each pair's ratio sees the same load: medians of own's and onednn's blocks into *own and
 * *dnn, the pairs' ratios (onednn / own) appended to ratios[*nr]. */
static void time_pairs(DenseBench *b, const Opts *o, int round, double *own, double *dnn,
                       double *ratios, int *nr)
{
    double a[MAX_REPS], d[MAX_REPS];
    for (int r = 0; r < o->reps; r++) {
        if ((round + r) % 2 == 0) {
            a[r] = block_ms(b, o, CONV_BACKEND_OWN);
            d[r] = block_ms(b, o, CONV_BACKEND_ONEDNN);
        } else {
            d[r] = block_ms(b, o, CONV_BACKEND_ONEDNN);
            a[r] = block_ms(b, o, CONV_BACKEND_OWN);
        }
        ratios[(*nr)++] = d[r] / a[r];
    }
    *own = bench_median_of(a, o->reps);
    *dnn = bench_median_of(d, o->reps);
}

/* One run of torch_bench.py for the model: its median step (ms), or -1. */
static double time_torch(const char *model, const Opts *o)
{
    const char *py = getenv("BENCH_PYTHON") ? getenv("BENCH_PYTHON") : "/usr/bin/python3";
    char cmd[1024], line[4096];
    snprintf(cmd, sizeof cmd, "env -u OMP_WAIT_POLICY GOMP_SPINCOUNT=20000 %s "
             "tests/bench/torch_bench.py --models %s --threads %d --reps %d --batch %d 2>&1",
             py, model, o->threads, o->reps, o->batch);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    double ms = -1;
    while (fgets(line, sizeof line, p)) {
        const char *k = strstr(line, "\"median_ms\":");
        if (!strncmp(line, "BENCH ", 6) && strstr(line, "\"kind\":\"step\"") && k)
            ms = strtod(k + 12, NULL);
    }
    pclose(p);
    return ms;
}

static int bench_model(const char *name, const Opts *o)
{
    DenseBench b;
    if (dense_bench_init(&b, name, (Shape){1, 28, 28}, 10, o->batch)) {
        fprintf(stderr, "bench_conv_backend: cannot build model %s\n", name);
        return 1;
    }
    double own[MAX_ROUNDS], dnn[MAX_ROUNDS], tor[MAX_ROUNDS], pairs[MAX_ROUNDS * MAX_REPS];
    double r_dnn_tor[MAX_ROUNDS], r_own_tor[MAX_ROUNDS];
    int nt = 0, np = 0;
    /* primitives and workspaces of both backends are created outside the clock */
    block_ms(&b, o, CONV_BACKEND_OWN);
    block_ms(&b, o, CONV_BACKEND_ONEDNN);
    for (int r = 0; r < o->rounds; r++) {
        const int np0 = np;
        time_pairs(&b, o, r, &own[r], &dnn[r], pairs, &np);
        tor[r] = o->torch ? time_torch(name, o) : -1;
        if (tor[r] > 0) {
            r_dnn_tor[nt] = dnn[r] / tor[r];
            r_own_tor[nt++] = own[r] / tor[r];
        }
        char la[128];
        loadavg(la, sizeof la);
        printf("  round %d: own %.1f ms, onednn %.1f ms, torch %.1f ms; onednn/own %.3f (load %s)\n",
               r + 1, own[r], dnn[r], tor[r], bench_median_of(pairs + np0, np - np0), la);
        printf("BENCH {\"kind\":\"conv_backend_round\",\"model\":\"%s\",\"round\":%d,"
               "\"own_ms\":%.3f,\"onednn_ms\":%.3f,\"torch_ms\":%.3f,\"load\":\"%s\"}\n",
               name, r + 1, own[r], dnn[r], tor[r], la);
        fflush(stdout);
    }
    const double m_own = bench_median_of(own, o->rounds), m_dnn = bench_median_of(dnn, o->rounds);
    const double q = bench_median_of(pairs, np);
    const double qt = nt ? bench_median_of(r_dnn_tor, nt) : -1, qo = nt ? bench_median_of(r_own_tor, nt) : -1;
    const double m_tor = nt ? bench_median_of(tor, o->rounds) : -1; /* -1s sort first when some failed */
    printf("%s: own %.1f ms, onednn %.1f ms, torch %.1f ms per step (medians of %d rounds); "
           "onednn/own %.3f, onednn/torch %.3f, own/torch %.3f (medians of per-round ratios)\n",
           name, m_own, m_dnn, m_tor, o->rounds, q, qt, qo);
    printf("BENCH {\"kind\":\"conv_backend\",\"model\":\"%s\",\"threads\":%d,\"batch\":%d,"
           "\"rounds\":%d,\"own_ms\":%.3f,\"onednn_ms\":%.3f,\"torch_ms\":%.3f,"
           "\"onednn_over_own\":%.4f,\"onednn_over_torch\":%.4f,\"own_over_torch\":%.4f}\n",
           name, o->threads, o->batch, o->rounds, m_own, m_dnn, m_tor, q, qt, qo);
    dense_bench_free(&b);
    return 0;
}

static int parse_int(const char *s, int lo, int hi)
{
    char *end;
    const long v = strtol(s, &end, 10);
    if (*end || v < lo || v > hi) {
        fprintf(stderr, "bench_conv_backend: '%s' is not an integer in [%d, %d]\n", s, lo, hi);
        exit(2);
    }
    return (int)v;
}

int main(int argc, char **argv)
{
    Opts o = {.threads = 2, .batch = 128, .rounds = 5, .reps = 5, .torch = 1, .min_time = 0.3};
    snprintf(o.models, sizeof o.models, "resnet20");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--no-torch")) {
            o.torch = 0;
            continue;
        }
        if (!v) {
            fprintf(stderr, "usage: bench_conv_backend [--models a,b] [--threads N] [--batch B] "
                    "[--rounds R] [--reps R] [--min-time S] [--no-torch]\n");
            return 2;
        }
        i++;
        if (!strcmp(a, "--models")) snprintf(o.models, sizeof o.models, "%s", v);
        else if (!strcmp(a, "--threads")) o.threads = parse_int(v, 1, 1024);
        else if (!strcmp(a, "--batch")) o.batch = parse_int(v, 1, 65536);
        else if (!strcmp(a, "--rounds")) o.rounds = parse_int(v, 1, MAX_ROUNDS);
        else if (!strcmp(a, "--reps")) o.reps = parse_int(v, 1, MAX_REPS);
        else if (!strcmp(a, "--min-time")) o.min_time = atof(v);
        else {
            fprintf(stderr, "bench_conv_backend: unknown option %s\n", a);
            return 2;
        }
    }
    if (!conv_backend_onednn_built()) {
        printf("bench_conv_backend: skipped: built without oneDNN (ONEDNN=0)\n");
        return 0;
    }
    openblas_set_num_threads(o.threads);
    omp_set_num_threads(o.threads);
    char la[128];
    loadavg(la, sizeof la);
    printf("conv backends, %d threads, batch %d, OMP_WAIT_POLICY=%s; load before: %s\n", o.threads,
           o.batch, getenv("OMP_WAIT_POLICY") ? getenv("OMP_WAIT_POLICY") : "(unset)", la);
    int rc = 0;
    for (char *s = strtok(o.models, ","); s; s = strtok(NULL, ",")) rc |= bench_model(s, &o);
    loadavg(la, sizeof la);
    printf("load after: %s\n", la);
    conv_onednn_release();
    return rc;
}
