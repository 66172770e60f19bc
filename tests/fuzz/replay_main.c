/* Runs a fuzz target once on each file given (or each file of each folder given), without
 * libFuzzer: the seed corpus and every input that once crashed (tests/fuzz/crashes/<target>/)
 * are replayed by make test and, under the sanitizers, by make check. A crash ends the
 * process (run.sh counts it as a failure); otherwise prints "N passed, 0 failed". */
#include "fuzz.h"

#include <dirent.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>

static int passed, failed;

static void run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        printf("FAIL cannot read %s\n", path);
        failed++;
        return;
    }
    size_t cap = 1 << 16, n = 0;
    uint8_t *buf = malloc(cap);
    size_t k;
    while (buf && (k = fread(buf + n, 1, cap - n, f)) > 0) {
        n += k;
        if (n == cap) {
            uint8_t *b = realloc(buf, cap * 2);
            if (!b) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = b;
            cap *= 2;
        }
    }
    fclose(f);
    if (!buf) {
        printf("FAIL out of memory reading %s\n", path);
        failed++;
        return;
    }
    LLVMFuzzerTestOneInput(buf, n); /* a crash or sanitizer report ends the process here */
    free(buf);
    printf("ok   %s (%zu bytes)\n", path, n);
    passed++;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void run_path(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) return; /* an absent crash folder: nothing crashed yet */
    if (!S_ISDIR(st.st_mode)) {
        run_file(path);
        return;
    }
    DIR *d = opendir(path);
    if (!d) return;
    char **names = NULL;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char **nn = realloc(names, (n + 1) * sizeof *names);
        if (!nn) break;
        names = nn;
        size_t len = strlen(path) + strlen(e->d_name) + 2;
        if (!(names[n] = malloc(len))) break;
        snprintf(names[n++], len, "%s/%s", path, e->d_name);
    }
    closedir(d);
    if (names) qsort(names, n, sizeof *names, by_name);
    for (size_t i = 0; i < n; i++) {
        run_file(names[i]);
        free(names[i]);
    }
    free(names);
}

int main(int argc, char **argv)
{
#if !defined(__SANITIZE_ADDRESS__)
    /* As libFuzzer's malloc limit does: an allocation sized by a header rather than by the
     * data fails here (under ASan, make check sets max_allocation_size_mb instead). */
    struct rlimit lim = {(rlim_t)4 << 30, (rlim_t)4 << 30};
    setrlimit(RLIMIT_AS, &lim);
#endif
    for (int i = 1; i < argc; i++) run_path(argv[i]);
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
