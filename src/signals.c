#include "cigl/signals.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

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

void stop_signal_test_hook(int rank, long step)
{
    static long at = -1;
    if (at < 0) {
        const char *v = getenv("CIGL_TEST_SIGNAL_AT_STEP");
        at = v ? strtol(v, NULL, 10) : 0;
    }
    if (at > 0 && rank == 0 && step == at) raise(SIGUSR2);
}
