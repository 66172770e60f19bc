/* A helper thread that runs one job at a time in the background (the next step's random mask,
 * the next batch's samples). The caller owns the job's data: it does not touch what a posted
 * job reads or writes until worker_wait has returned. */
#ifndef CIGL_WORKER_H
#define CIGL_WORKER_H

typedef struct Worker Worker;
typedef int (*WorkerJob)(void *arg);

/* Starts the thread; NULL when it cannot (the caller then does the work itself). */
Worker *worker_start(void);
/* Waits for the job in flight, then hands `job(arg)` to the thread and returns at once. */
void worker_post(Worker *w, WorkerJob job, void *arg);
/* Waits until no job is in flight; returns the last finished job's value (0: none since the
 * last wait). Without a lock or system call when the job is already done. */
int worker_wait(Worker *w);
/* Whether a job is in flight (without waiting). */
int worker_busy(Worker *w);
/* Waits for the job in flight and ends the thread; NULL is ignored. */
void worker_stop(Worker *w);

#endif
