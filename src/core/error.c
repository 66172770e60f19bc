#include "cigl/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#undef cigl_fail /* error.h's macro for the static analyser models callers, not this */

static int flush_each;

void cigl_fail_flush(int on) { flush_each = on; }

int cigl_fail(int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("cigl: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    if (flush_each) fflush(stderr);
    va_end(ap);
    return status;
}

/* Longer messages are cut: they are one line on a terminal. */
#define MESSAGE_MAX 512

int cigl_failv(int status, const char *frame, const char *path, const char *fmt, va_list ap)
{
    char what[MESSAGE_MAX];
    vsnprintf(what, sizeof what, fmt, ap);
    fputs("cigl: ", stderr);
    fprintf(stderr, frame, path, what);
    fputc('\n', stderr);
    return status;
}

void *cigl_malloc(size_t bytes, const char *what)
{
    void *p = malloc(bytes ? bytes : 1);
    if (!p)
        cigl_fail(CIGL_ERR_RUNTIME, "out of memory allocating %zu bytes for %s; use a smaller "
                  "--batch-size or model, or a node with more memory", bytes, what);
    return p;
}

void *cigl_calloc(size_t count, size_t size, const char *what)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p)
        cigl_fail(CIGL_ERR_RUNTIME, "out of memory allocating %zu x %zu bytes for %s; use a "
                  "smaller --batch-size or model, or a node with more memory", count, size, what);
    return p;
}
