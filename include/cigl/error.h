/* Error reporting: every failing function prints one line naming the problem and the fix,
 * then returns a non-zero status. Exit statuses follow the CLI contract. */
#ifndef CIGL_ERROR_H
#define CIGL_ERROR_H
#include <stdarg.h>
#include <stddef.h>

enum {
    CIGL_OK = 0,
    CIGL_ERR_RUNTIME = 1, /* I/O failure, out of memory, numerical fault */
    CIGL_ERR_USAGE = 2,   /* bad flag, bad number, bad or missing input file */
    /* A signal (SIGUSR1/SIGUSR2/SIGTERM/SIGINT) asked the run to stop: a checkpoint was
     * written and `--resume auto` continues it. 75 is EX_TEMPFAIL ("try again later"); job
     * scripts requeue on it. */
    CIGL_EXIT_REQUEUE = 75
};

/* Prints "cigl: <message>" on stderr and returns `status`, so callers can write
 * `return cigl_fail(CIGL_ERR_USAGE, "...")`. */
int cigl_fail(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* 1: every message is flushed at once, even where stderr is fully buffered (MPI ranks other
 * than 0 buffer it during set-up, whose errors rank 0 reports for all). */
void cigl_fail_flush(int on);
#ifdef __clang_analyzer__
/* For clang-tidy's path analysis (make check), which does not see error.c: the result is the
 * status, so `rc = p ? CIGL_OK : cigl_fail(...)` is known non-zero when p is NULL. */
#define cigl_fail(status, ...) (cigl_fail((status), __VA_ARGS__), (status))
#endif

/* cigl_fail for the refusals of one file: the message fmt/ap, formatted, is placed in `frame`,
 * whose %1$s is `path` and %2$s the message (a frame names the fix, e.g. "re-create it with
 * cigl convert"). Each file kind's one-line wrapper calls this with its frame. */
int cigl_failv(int status, const char *frame, const char *path, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

/* malloc/calloc that report the size and the fix instead of crashing later. */
void *cigl_malloc(size_t bytes, const char *what);
void *cigl_calloc(size_t count, size_t size, const char *what);

#endif
