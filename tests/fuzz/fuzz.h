/* Shared by the fuzz targets (tests/fuzz/fuzz_*.c): each defines LLVMFuzzerTestOneInput and
 * is linked either with libFuzzer (clang -fsanitize=fuzzer: make fuzz) or with replay_main.c
 * (any compiler: make test / make check replay the seed corpus and every past crash).
 *
 * Readers that take a path get the input as an in-memory file: a memfd, named
 * /proc/self/fd/N, which open, stat, fopen, gzopen and HDF5 all accept. */
#ifndef CIGL_FUZZ_H
#define CIGL_FUZZ_H
#define _GNU_SOURCE
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Writes data into a new memfd and its path into path; returns the fd (close it) or -1. */
static inline int fuzz_memfile(const void *data, size_t size, char *path, size_t cap)
{
    int fd = memfd_create("cigl-fuzz", 0);
    if (fd < 0) return -1;
    const uint8_t *p = data;
    while (size > 0) {
        ssize_t k = write(fd, p, size);
        if (k <= 0) {
            close(fd);
            return -1;
        }
        p += k;
        size -= (size_t)k;
    }
    snprintf(path, cap, "/proc/self/fd/%d", fd);
    return fd;
}

/* For readers that resolve the path (HDF5 calls realpath, which a memfd has none of): writes
 * data to a file in /dev/shm (memory, like the memfd) or, without it, /tmp; path gets its
 * name. Returns 0 or -1. Remove it with unlink(path). */
static inline int fuzz_shmfile(const void *data, size_t size, char *path, size_t cap)
{
    snprintf(path, cap, "%s/cigl-fuzz-%d", access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp",
             (int)getpid());
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t k = fwrite(data, 1, size, f);
    if (fclose(f) != 0 || k != size) {
        unlink(path);
        return -1;
    }
    return 0;
}

/* Consumes the input front to back; reads past the end give zeros. */
typedef struct {
    const uint8_t *p;
    size_t n;
} FuzzIn;

static inline uint8_t fuzz_u8(FuzzIn *in)
{
    if (!in->n) return 0;
    in->n--;
    return *in->p++;
}

static inline uint32_t fuzz_u32(FuzzIn *in)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v = v << 8 | fuzz_u8(in);
    return v;
}

#endif
