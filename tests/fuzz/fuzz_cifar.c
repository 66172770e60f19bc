/* Fuzz target: the CIFAR-10/100 binary batch reader and class-name reader of `cigl convert
 * cifar10|cifar100` (datasets/convert_cifar.c). The first input byte picks CIFAR-10 or -100;
 * the rest is the batch file, then read again as the class-name file. The reader's functions
 * are static, so the converter's source is compiled into this target. */
#include "fuzz.h"

#include "../../datasets/convert_cifar.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    const CifarKind *k = data[0] & 1 ? &CIFAR100 : &CIFAR10;
    char path[64], name[32];
    int fd = fuzz_memfile(data + 1, size - 1, path, sizeof path);
    if (fd < 0) return 0;
    snprintf(name, sizeof name, "%d", fd);
    Split s;
    memset(&s, 0, sizeof s);
    size_t count = 0;
    Source src; /* folder mode: the files are read from /proc/self/fd */
    memset(&src, 0, sizeof src);
    snprintf(src.dir, sizeof src.dir, "/proc/self/fd");
    if (read_batch(&src, name, k, &s, &count) == CIGL_OK) {
        /* every label the reader accepted is a valid class */
        for (size_t i = 0; i < s.n; i++)
            if (s.labels[i] < 0 || s.labels[i] >= k->classes) __builtin_trap();
    }
    free(s.images);
    free(s.labels);
    /* the same bytes as the class-name file (fine_label_names.txt / batches.meta.txt) */
    CifarKind named = *k;
    named.meta = name;
    char **names = NULL;
    if (read_names(&src, &named, &names) == CIGL_OK) {
        for (int i = 0; i < k->classes; i++) free(names[i]);
        free(names);
    }
    close(fd);
    return 0;
}
