#include "cigl/signals.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static volatile sig_atomic_t received;

static void on_stop(int sig)
{
    /* A second Ctrl-C means "now": checkpoints are written atomically, so dying here loses
     * nothing but the time since the last one. Other repeats (SLURM, mpirun) change nothing. */
    if (received == SIGINT && sig == SIGINT) {
        signal(SIGINT, SIG_DFL);
        raise(SIGINT);
    }
    if (!received) received = sig;
}

void stop_signals_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART; /* reads and writes in progress carry on */
    const int sigs[] = {SIGUSR1, SIGUSR2, SIGTERM, SIGINT};
    for (int i = 0; i < 4; i++) sigaction(sigs[i], &sa, NULL);
}

int stop_signal_received(void) { return received; }

const char *stop_signal_name(int sig)
{
    switch (sig) {
    case SIGUSR1: return "SIGUSR1";
    case SIGUSR2: return "SIGUSR2";
    case SIGTERM: return "SIGTERM";
    case SIGINT: return "SIGINT";
    default: return "a signal";
    }
}

static long env_step(const char *name)
{
    const char *v = getenv(name);
    return v ? strtol(v, NULL, 10) : 0;
}

void stop_signal_test_hook(int rank, long step, int resumed)
{
    static long signal_at = -1, pause_at = -1;
    if (signal_at < 0) {
        signal_at = env_step("CIGL_TEST_SIGNAL_AT_STEP");
        pause_at = env_step("CIGL_TEST_PAUSE_AT_STEP");
    }
    if (signal_at > 0 && rank == 0 && step == signal_at) raise(SIGUSR2);
    if (pause_at > 0 && step == pause_at && !resumed) {
        /* wait for a stop signal from outside (bounded: 120 s), so that a test's signal
         * always lands mid-run however fast the machine is */
        for (int i = 0; i < 1200 && !received; i++) nanosleep(&(struct timespec){0, 100000000L}, NULL);
    }
}
