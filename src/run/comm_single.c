/* The one-process communicator: every collective is the identity. */
#include "cigl/comm.h"

#include <stdlib.h>
#include <string.h>

static int single_allreduce_float(Comm *c, float *buf, size_t n)
{
    (void)c; (void)buf; (void)n;
    return 0;
}

static int single_allreduce_double(Comm *c, double *buf, size_t n)
{
    (void)c; (void)buf; (void)n;
    return 0;
}

static int single_minmax(Comm *c, uint64_t value, uint64_t *min, uint64_t *max)
{
    (void)c;
    *min = *max = value;
    return 0;
}

static int single_broadcast(Comm *c, void *buf, size_t bytes, int root)
{
    (void)c; (void)buf; (void)bytes; (void)root;
    return 0;
}

static int single_gatherv(Comm *c, const void *buf, size_t bytes, void *all, const size_t *counts)
{
    (void)c; (void)counts;
    if (all != buf) memmove(all, buf, bytes);
    return 0;
}

static int single_iallreduce(Comm *c, float *buf, size_t n, CommRequest *r)
{
    (void)c; (void)buf; (void)n;
    r->impl = NULL;
    return 0;
}

static int single_test(Comm *c, CommRequest *r)
{
    (void)c; (void)r;
    return 1;
}

static int single_wait(Comm *c, CommRequest *r)
{
    (void)c; (void)r;
    return 0;
}

/* One process: there is no other rank to stop; the caller returns its error (comm.h). */
static void single_abort(Comm *c, int status)
{
    (void)c; (void)status;
}

static void single_finalize(Comm *c) { (void)c; }

Comm *comm_single(void)
{
    static Comm single = {0, 1, "single process", NULL, single_allreduce_float,
                          single_allreduce_double, single_minmax, single_broadcast,
                          single_gatherv, single_iallreduce, single_test, single_wait,
                          single_abort, single_finalize, 0.0};
    return &single;
}
