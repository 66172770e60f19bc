/* One background job at a time (include/cigl/worker.h): a mutex and a condition variable for
 * sleeping, and an atomic flag so that waiting for a job that has finished costs no lock and no
 * futex call (the random-mask helper is waited for every training step). */
#include "cigl/worker.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

struct Worker {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    WorkerJob job;          /* the posted job, NULL when none is waiting to start */
    void *arg;
    int quit, result;
    atomic_int busy;        /* a job is posted and not finished */
};

static void *worker_main(void *p)
{
    Worker *w = p;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->job && !w->quit) pthread_cond_wait(&w->cv, &w->mu);
        if (!w->job) break; /* quit, with nothing posted */
        WorkerJob job = w->job;
        w->job = NULL;
        pthread_mutex_unlock(&w->mu);
        const int rc = job(w->arg);
        pthread_mutex_lock(&w->mu);
        w->result = rc;
        atomic_store_explicit(&w->busy, 0, memory_order_release);
        pthread_cond_broadcast(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

Worker *worker_start(void)
{
    Worker *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    atomic_init(&w->busy, 0);
    if (pthread_create(&w->thread, NULL, worker_main, w)) {
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->cv);
        free(w);
        return NULL;
    }
    return w;
}

int worker_wait(Worker *w)
{
    /* acquire: the job's writes are visible once busy reads 0 */
    if (atomic_load_explicit(&w->busy, memory_order_acquire)) {
        pthread_mutex_lock(&w->mu);
        while (atomic_load_explicit(&w->busy, memory_order_acquire))
            pthread_cond_wait(&w->cv, &w->mu);
        pthread_mutex_unlock(&w->mu);
    }
    const int rc = w->result;
    w->result = 0;
    return rc;
}

int worker_busy(Worker *w) { return atomic_load_explicit(&w->busy, memory_order_acquire); }

void worker_post(Worker *w, WorkerJob job, void *arg)
{
    worker_wait(w);
    pthread_mutex_lock(&w->mu);
    w->job = job;
    w->arg = arg;
    atomic_store_explicit(&w->busy, 1, memory_order_relaxed);
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

void worker_stop(Worker *w)
{
    if (!w) return;
    worker_wait(w);
    pthread_mutex_lock(&w->mu);
    w->quit = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    free(w);
}
