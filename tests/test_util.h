/* Helpers shared by the test programs (beside check.h's harness): capturing stderr to check
 * the one-line errors, and counting lines. Static functions: each test includes what it uses. */
#ifndef CIGL_TEST_UTIL_H
#define CIGL_TEST_UTIL_H
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

/* Redirects stderr to DIR/stderr.txt between capture_begin and capture_end. */
typedef struct {
    int saved;
    char path[128];
} Capture;

static inline void capture_begin(Capture *cap, const char *dir)
{
    snprintf(cap->path, sizeof cap->path, "%s/stderr.txt", dir);
    fflush(stderr);
    cap->saved = dup(2);
    int fd = open(cap->path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, 2);
    close(fd);
}

/* Restores stderr and returns what was written (at most size - 1 bytes) in buf. */
static inline void capture_end(Capture *cap, char *buf, size_t size)
{
    fflush(stderr);
    dup2(cap->saved, 2);
    close(cap->saved);
    buf[0] = 0;
    FILE *f = fopen(cap->path, "r");
    if (f) {
        size_t n = fread(buf, 1, size - 1, f);
        buf[n] = 0;
        fclose(f);
    }
    unlink(cap->path);
}

static inline int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

#endif
