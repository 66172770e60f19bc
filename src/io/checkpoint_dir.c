/* The checkpoint directory of a run: finding the newest good checkpoint and rotating old ones.
 * Only names of the form step-NNNNNNNNN.h5 count: temporary files of an interrupted write
 * (step-....h5.tmp.PID) are never taken for checkpoints. */
#include "cigl/checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The step in a checkpoint file name, or -1. */
static long step_of(const char *name)
{
    /* strtol rather than sscanf's %ld, which is undefined for an out-of-range number */
    if (strncmp(name, "step-", 5) != 0) return -1;
    char *end;
    errno = 0;
    long step = strtol(name + 5, &end, 10);
    if (end == name + 5 || errno || strcmp(end, ".h5") != 0 || step < 0) return -1;
    return step;
}

static int by_step_desc(const void *a, const void *b)
{
    const long x = *(const long *)a, y = *(const long *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* Steps of the checkpoints in dir, newest first; *n of them (malloc'ed, NULL when none). */
static long *list_steps(const char *dir, size_t *n)
{
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) return NULL;
    size_t cap = 0;
    long *steps = NULL;
    for (struct dirent *e; (e = readdir(d));) {
        const long s = step_of(e->d_name);
        if (s < 0) continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            long *grown = realloc(steps, sizeof(long) * cap);
            if (!grown) break;
            steps = grown;
        }
        steps[(*n)++] = s;
    }
    closedir(d);
    if (*n) qsort(steps, *n, sizeof(long), by_step_desc);
    return steps;
}

static void path_of(char *buf, size_t cap, const char *dir, long step)
{
    char name[64];
    checkpoint_name(name, sizeof name, step);
    snprintf(buf, cap, "%s/%s", dir, name);
}

int checkpoint_find_latest(const char *dir, char *path, size_t cap)
{
    size_t n;
    long *steps = list_steps(dir, &n);
    int found = 0;
    for (size_t i = 0; i < n && !found; i++) {
        path_of(path, cap, dir, steps[i]);
        found = checkpoint_verify(path) == 0;
        if (!found && i + 1 < n)
            fprintf(stderr, "cigl: trying the previous checkpoint instead\n");
    }
    free(steps);
    return found;
}

void checkpoint_rotate(const char *dir, int keep)
{
    size_t n;
    long *steps = list_steps(dir, &n);
    char path[1200];
    for (size_t i = (size_t)(keep < 1 ? 1 : keep); i < n; i++) {
        path_of(path, sizeof path, dir, steps[i]);
        unlink(path);
    }
    free(steps);
}

int checkpoint_remove_partial(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    char path[1200];
    for (struct dirent *e; (e = readdir(d));) {
        const char *tmp = strstr(e->d_name, ".h5.tmp.");
        if (strncmp(e->d_name, "step-", 5) != 0 || !tmp) continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (unlink(path) == 0) n++;
    }
    closedir(d);
    return n;
}
