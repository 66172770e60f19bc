/* The communication interface of data-parallel training. The trainer and the library only see
 * this table; mpi/comm_mpi.c implements it over MPI, comm_single() is the one-process version
 * (unit tests, builds without MPI). All collectives are blocking except the gradient buckets. */
#ifndef CIGL_COMM_H
#define CIGL_COMM_H
#include <stddef.h>
#include <stdint.h>

typedef struct Comm Comm;

/* A non-blocking sum-allreduce in flight. */
typedef struct {
    void *impl;
} CommRequest;

struct Comm {
    int rank, size;
    const char *name;       /* "single" or the MPI library version */
    void *impl;
    int (*allreduce_float)(Comm *c, float *buf, size_t n);      /* in place, sum */
    int (*allreduce_double)(Comm *c, double *buf, size_t n);    /* in place, sum */
    int (*allreduce_u64_minmax)(Comm *c, uint64_t value, uint64_t *min, uint64_t *max);
    int (*broadcast)(Comm *c, void *buf, size_t bytes, int root);
    /* Rank 0 receives every rank's `bytes` bytes in rank order into `all`. */
    int (*gatherv)(Comm *c, const void *buf, size_t bytes, void *all, const size_t *counts);
    int (*iallreduce_float)(Comm *c, float *buf, size_t n, CommRequest *r);
    int (*test)(Comm *c, CommRequest *r);                       /* progress; 1 when done */
    int (*wait)(Comm *c, CommRequest *r);
    /* Ends every rank: a clean MPI_Abort after rank `rank` printed its one-line error, where
     * other ranks would wait for this one. One process: returns, and the caller returns its
     * error as usual. */
    void (*abort)(Comm *c, int status);
    void (*finalize)(Comm *c);
    /* Watchdog (--comm-timeout): a rank that waits this many seconds in one collective prints
     * what it waited for and aborts the job; 0 waits forever. Set by the trainer. */
    double timeout;
};

/* The one-process communicator (every collective is the identity). */
Comm *comm_single(void);

/* The process's communicator: MPI when cigl was built with it and started under a launcher
 * (or as a singleton), else comm_single(). Initialises MPI on the first call. */
Comm *comm_world(int *argc, char ***argv);

#endif
