/* Stop requests: SIGUSR1, SIGUSR2 (SLURM's early warning before a time limit or preemption),
 * SIGTERM and SIGINT only set a flag; the training loop looks at it between steps, the ranks
 * agree, rank 0 writes a checkpoint and cigl exits with CIGL_EXIT_REQUEUE. Nothing else runs
 * in the handler, so a signal can never interrupt a checkpoint write half-way; repeated signals
 * change nothing, except a second SIGINT (Ctrl-C twice), which ends the process at once. */
#ifndef CIGL_SIGNALS_H
#define CIGL_SIGNALS_H

void stop_signals_install(void);

/* The first stop signal received (its number), or 0. */
int stop_signal_received(void);

/* Its name ("SIGUSR2", ...). */
const char *stop_signal_name(int sig);

/* Test hook: with CIGL_TEST_SIGNAL_AT_STEP=N in the environment, rank 0 sends itself SIGUSR2
 * once `step` steps are done, so the fault tests stop a run at a known step through the real
 * signal path. With CIGL_TEST_PAUSE_AT_STEP=N every rank waits after step N until a stop
 * signal arrives (at most 120 s): tests that signal a launcher from outside then never race a
 * run that finished first. The pause holds only a launch that starts from step 0 (`resumed`
 * 0: no checkpoint resumed), so a relaunch that resumes a checkpoint before step N runs
 * through. */
void stop_signal_test_hook(int rank, long step, int resumed);

#endif
