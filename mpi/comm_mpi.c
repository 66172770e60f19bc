/* The communication interface over MPI (Open MPI). MPI_THREAD_FUNNELED: only the main thread
 * calls MPI; OpenMP threads do compute only. Errors return (MPI_ERRORS_RETURN) so cigl can
 * print one line and abort every rank cleanly instead of hanging.
 *
 * Every collective is nonblocking and completed by poll(), the watchdog: a peer that is gone
 * without a word (a cut link, a frozen node) makes MPI wait forever, since TCP notices nothing
 * while no packet arrives. After Comm.timeout seconds in one collective the rank names what it
 * waited for and calls MPI_Abort (mpi/README.md, "Watchdog"). Each call reduces in the same
 * order whatever the timeout, so results do not depend on it. */
#include "cigl/comm.h"
#include "cigl/error.h"

#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* MPI counts are int: large buffers travel in pieces of at most this many elements. */
#define PIECE ((size_t)1 << 30)

static int check(int rc, const char *what)
{
    if (rc == MPI_SUCCESS) return 0;
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    return cigl_fail(CIGL_ERR_RUNTIME, "MPI %s failed: %s", what, msg);
}

/* Every rank's host name (gathered at start), to name the peers in the watchdog's message. */
static char (*hosts)[MPI_MAX_PROCESSOR_NAME];

static double seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void no_progress(Comm *c, const char *what, double waited)
{
    char peers[512] = "";
    size_t len = 0;
    int named = 0;
    for (int r = 0; r < c->size && len < sizeof peers - 64; r++) {
        if (r == c->rank) continue;
        if (named == 4) {
            snprintf(peers + len, sizeof peers - len, ", ... (%d peers)", c->size - 1);
            break;
        }
        len += (size_t)snprintf(peers + len, sizeof peers - len, "%speer rank %d on host %s",
                                named++ ? ", " : "", r, hosts ? hosts[r] : "?");
    }
    fprintf(stderr, "cigl: rank %d (host %s): no progress in a collective for %.0f s (waiting on "
            "%s with %s); aborting (--comm-timeout %.0f: a lost node or link, or a peer stuck "
            "outside MPI)\n", c->rank, hosts ? hosts[c->rank] : "?", waited, what, peers,
            c->timeout);
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
    exit(1); /* MPI_Abort does not return; if it did, this rank still must not go on */
}

/* Completes a request: MPI_Test in a loop (which also drives Open MPI's progress), yielding the
 * core after the first millisecond so that an oversubscribed node is not starved. */
static int watch(Comm *c, MPI_Request *req, const char *what)
{
    if (c->timeout <= 0) return check(MPI_Wait(req, MPI_STATUS_IGNORE), what);
    const double t0 = seconds();
    for (long i = 0;; i++) {
        int done = 0;
        const int rc = MPI_Test(req, &done, MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS) return check(rc, what);
        if (done) return 0;
        if (i < 1000) continue;
        const double waited = seconds() - t0;
        if (waited > c->timeout) no_progress(c, what, waited);
        if (waited > 1e-3) nanosleep(&(struct timespec){0, 50000L}, NULL);
    }
}


/* NOLINTBEGIN(clang-analyzer-optin.mpi.MPI-Checker): every request below is completed by
 * watch(), through MPI_Test or MPI_Wait, which the checker does not follow into it. */

/* Every rank's host name, gathered by the first collective of the run (every rank makes the
 * same first call), once the trainer has set the timeout: a data link that does not work hangs
 * this first exchange too. */
static int gather_hosts(Comm *c)
{
    static int done;
    if (done || c->size == 1) return 0;
    done = 1;
    char (*h)[MPI_MAX_PROCESSOR_NAME] = calloc((size_t)c->size, sizeof *h);
    if (!h) return 0;
    int len = 0;
    MPI_Get_processor_name(h[c->rank], &len);
    MPI_Request req;
    if (check(MPI_Iallgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, h, MPI_MAX_PROCESSOR_NAME,
                             MPI_CHAR, MPI_COMM_WORLD, &req), "allgather") ||
        watch(c, &req, "the exchange of host names")) {
        free(h);
        return CIGL_ERR_RUNTIME;
    }
    hosts = h;
    return 0;
}

/* A sum (or min/max) over all ranks, in place, watched. */
static int allreduce(Comm *c, void *buf, int k, MPI_Datatype type, MPI_Op op, const char *what)
{
    MPI_Request req;
    if (gather_hosts(c) ||
        check(MPI_Iallreduce(MPI_IN_PLACE, buf, k, type, op, MPI_COMM_WORLD, &req), what))
        return CIGL_ERR_RUNTIME;
    return watch(c, &req, what) ? CIGL_ERR_RUNTIME : 0;
}

static int mpi_allreduce_float(Comm *c, float *buf, size_t n)
{
    for (size_t off = 0; off < n; off += PIECE) {
        const int k = (int)(n - off < PIECE ? n - off : PIECE);
        if (allreduce(c, buf + off, k, MPI_FLOAT, MPI_SUM, "an allreduce of floats"))
            return CIGL_ERR_RUNTIME;
    }
    return 0;
}

static int mpi_allreduce_double(Comm *c, double *buf, size_t n)
{
    for (size_t off = 0; off < n; off += PIECE) {
        const int k = (int)(n - off < PIECE ? n - off : PIECE);
        if (allreduce(c, buf + off, k, MPI_DOUBLE, MPI_SUM, "an allreduce of doubles"))
            return CIGL_ERR_RUNTIME;
    }
    return 0;
}

static int mpi_minmax(Comm *c, uint64_t value, uint64_t *min, uint64_t *max)
{
    *min = *max = value;
    if (allreduce(c, min, 1, MPI_UINT64_T, MPI_MIN, "a min/max check") ||
        allreduce(c, max, 1, MPI_UINT64_T, MPI_MAX, "a min/max check"))
        return CIGL_ERR_RUNTIME;
    return 0;
}

static int mpi_broadcast(Comm *c, void *buf, size_t bytes, int root)
{
    if (gather_hosts(c)) return CIGL_ERR_RUNTIME;
    for (size_t off = 0; off < bytes; off += PIECE) {
        const int k = (int)(bytes - off < PIECE ? bytes - off : PIECE);
        MPI_Request req;
        if (check(MPI_Ibcast((char *)buf + off, k, MPI_BYTE, root, MPI_COMM_WORLD, &req),
                  "broadcast") || watch(c, &req, "a broadcast"))
            return CIGL_ERR_RUNTIME;
    }
    return 0;
}

/* NOLINTEND(clang-analyzer-optin.mpi.MPI-Checker) */

static int mpi_gatherv(Comm *c, const void *buf, size_t bytes, void *all, const size_t *counts)
{
    if (gather_hosts(c)) return CIGL_ERR_RUNTIME;
    int *cnt = NULL, *disp = NULL;
    if (c->rank == 0) {
        cnt = malloc(sizeof(int) * c->size);
        disp = malloc(sizeof(int) * c->size);
        if (!cnt || !disp) {
            free(cnt);
            free(disp);
            return cigl_fail(CIGL_ERR_RUNTIME, "out of memory gathering results");
        }
        size_t total = 0;
        for (int r = 0; r < c->size; r++) {
            if (counts[r] > INT_MAX || total > INT_MAX) {
                free(cnt);
                free(disp);
                return cigl_fail(CIGL_ERR_RUNTIME, "gather of %zu bytes exceeds MPI's int "
                                 "counts; evaluate a smaller split", total + counts[r]);
            }
            cnt[r] = (int)counts[r];
            disp[r] = (int)total;
            total += counts[r];
        }
    }
    MPI_Request req;
    int rc = check(MPI_Igatherv(buf, (int)bytes, MPI_BYTE, all, cnt, disp, MPI_BYTE, 0,
                                MPI_COMM_WORLD, &req), "gather");
    if (!rc) rc = watch(c, &req, "a gather of predictions");
    free(cnt);
    free(disp);
    return rc ? CIGL_ERR_RUNTIME : 0;
}

static int mpi_iallreduce(Comm *c, float *buf, size_t n, CommRequest *r)
{
    if (n > INT_MAX) return cigl_fail(CIGL_ERR_RUNTIME, "gradient bucket too large");
    if (gather_hosts(c)) return CIGL_ERR_RUNTIME;
    MPI_Request *req = malloc(sizeof(MPI_Request));
    if (!req) return cigl_fail(CIGL_ERR_RUNTIME, "out of memory");
    if (check(MPI_Iallreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, req),
              "iallreduce")) {
        free(req);
        return CIGL_ERR_RUNTIME;
    }
    r->impl = req;
    return 0;
}

static int mpi_test(Comm *c, CommRequest *r)
{
    (void)c;
    if (!r->impl) return 1;
    int done = 0;
    MPI_Test((MPI_Request *)r->impl, &done, MPI_STATUS_IGNORE);
    return done;
}

static int mpi_wait(Comm *c, CommRequest *r)
{
    if (!r->impl) return 0;
    const int rc = watch(c, (MPI_Request *)r->impl, "a gradient allreduce");
    free(r->impl);
    r->impl = NULL;
    return rc ? CIGL_ERR_RUNTIME : 0;
}

static void mpi_abort(Comm *c, int status)
{
    (void)c;
    fflush(stdout);
    fflush(stderr);
    if (c->size > 1) MPI_Abort(MPI_COMM_WORLD, status);
    MPI_Finalize();
    exit(status);
}

static void mpi_finalize(Comm *c)
{
    (void)c;
    MPI_Finalize();
}

Comm *comm_world(int *argc, char ***argv)
{
    static Comm world; /* the process's one MPI communicator, set up once here */
    static char version[MPI_MAX_LIBRARY_VERSION_STRING];
    /* srun without an MPI plugin starts independent tasks with no PMI to wire them up, and
     * Open MPI would abort inside MPI_Init with a cryptic message; stay single so the trainer
     * can refuse with a clear one (SLURM_NTASKS > 1 but one rank). */
    const char *ntasks = getenv("SLURM_NTASKS");
    if (ntasks && strtol(ntasks, NULL, 10) > 1 && !getenv("PMIX_RANK") && !getenv("PMI_RANK") &&
        !getenv("OMPI_COMM_WORLD_SIZE"))
        return comm_single();
    int provided = 0;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return comm_single();
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &world.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world.size);
    int len = 0;
    MPI_Get_library_version(version, &len);
    version[strcspn(version, ",\n")] = 0;
    world.name = version;
    world.allreduce_float = mpi_allreduce_float;
    world.allreduce_double = mpi_allreduce_double;
    world.allreduce_u64_minmax = mpi_minmax;
    world.broadcast = mpi_broadcast;
    world.gatherv = mpi_gatherv;
    world.iallreduce_float = mpi_iallreduce;
    world.test = mpi_test;
    world.wait = mpi_wait;
    world.abort = mpi_abort;
    world.finalize = mpi_finalize;
    return &world;
}
