/* Converts the official binary CIFAR-10 and CIFAR-100 distributions into cigl's HDF5 schema.
 * CIFAR-10 (cifar-10-batches-bin/): data_batch_1..5.bin and test_batch.bin, records of
 * <1 label byte><3072 pixel bytes>; class names in batches.meta.txt.
 * CIFAR-100 (cifar-100-binary/): train.bin and test.bin, records of <coarse label byte>
 * <fine label byte><3072 pixel bytes>; the fine labels are used, names in
 * fine_label_names.txt. Pixels are 1024 red, 1024 green, 1024 blue bytes, rows top to bottom:
 * exactly cigl's C x H x W layout. Every file is read and checked before anything is
 * written. */
#include "cigl/data.h"

#include "cigl/error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CIFAR_PIXELS 3072
#define CIFAR_MAX_RECORDS 1000000u /* far above the 60,000 of the real sets */

typedef struct {
    int classes, label_bytes;          /* 10, 1 or 100, 2 */
    const char *subdir, *meta;         /* folder the archive unpacks to, class-name file */
    const char *train[5], *test;       /* batch files */
    int n_train_files;
} CifarKind;

static const CifarKind CIFAR10 = {10, 1, "cifar-10-batches-bin", "batches.meta.txt",
                                  {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                                   "data_batch_4.bin", "data_batch_5.bin"},
                                  "test_batch.bin", 5};
static const CifarKind CIFAR100 = {100, 2, "cifar-100-binary", "fine_label_names.txt",
                                   {"train.bin", NULL, NULL, NULL, NULL}, "test.bin", 1};

static int is_file(const char *dir, const char *name)
{
    char path[4096];
    struct stat st;
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path)
        return 0;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* SRC may be the folder holding the .bin files or the folder the archive was unpacked in. */
static int find_dir(const char *src, const CifarKind *k, char *dir, size_t cap)
{
    snprintf(dir, cap, "%s", src);
    if (is_file(dir, k->test))
        return CIGL_OK;
    snprintf(dir, cap, "%s/%s", src, k->subdir);
    if (is_file(dir, k->test))
        return CIGL_OK;
    return cigl_fail(CIGL_ERR_USAGE, "cannot convert '%s': neither it nor '%s/%s' holds '%s'; "
                     "pass the folder unpacked from the official binary archive (%s.tar.gz "
                     "from https://www.cs.toronto.edu/~kriz/cifar.html)", src, src, k->subdir,
                     k->test, k->classes == 10 ? "cifar-10-binary" : "cifar-100-binary");
}

/* Appends the records of one batch file to `out` (grown as needed) after checking its size
 * and every label. */
static int read_batch(const char *dir, const char *name, const CifarKind *k, Split *out,
                      size_t *count)
{
    char path[4200];
    snprintf(path, sizeof path, "%.4000s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return cigl_fail(CIGL_ERR_USAGE, "cannot read '%s': %s; the CIFAR folder is incomplete, "
                         "unpack the official archive again", path,
                         errno == ENOENT ? "no such file" : strerror(errno));
    const size_t rec = (size_t)k->label_bytes + CIFAR_PIXELS;
    struct stat st;
    int rc = fstat(fileno(f), &st) == 0 ? CIGL_OK : CIGL_ERR_RUNTIME;
    size_t size = rc ? 0 : (size_t)st.st_size;
    if (!rc && (size == 0 || size % rec != 0 || size / rec > CIFAR_MAX_RECORDS))
        rc = cigl_fail(CIGL_ERR_USAGE, "'%s' has %zu bytes, not a whole number of %zu-byte "
                       "records (%d label byte%s + 3072 pixels); the file is truncated or not a "
                       "CIFAR-%d binary batch", path, size, rec, k->label_bytes,
                       k->label_bytes > 1 ? "s" : "", k->classes);
    size_t n = rc ? 0 : size / rec, have = out->n;
    uint8_t *images = rc ? NULL : realloc(out->images, (have + n) * CIFAR_PIXELS);
    if (images)
        out->images = images;
    int32_t *labels = images ? realloc(out->labels, (have + n) * sizeof(int32_t)) : NULL;
    if (labels)
        out->labels = labels;
    if (!rc && (!images || !labels))
        rc = cigl_fail(CIGL_ERR_RUNTIME, "out of memory reading '%s'", path);
    uint8_t buf[2 + CIFAR_PIXELS];
    for (size_t i = 0; i < n && !rc; i++) {
        if (fread(buf, 1, rec, f) != rec) {
            rc = cigl_fail(CIGL_ERR_USAGE, "cannot read '%s': it ended early (record %zu); the "
                           "file is truncated", path, i);
            break;
        }
        if (k->label_bytes == 2 && buf[0] >= 20)
            rc = cigl_fail(CIGL_ERR_USAGE, "'%s': record %zu has coarse label %u, expected "
                           "0..19; the file is corrupt", path, i, buf[0]);
        int label = buf[k->label_bytes - 1];
        if (!rc && label >= k->classes)
            rc = cigl_fail(CIGL_ERR_USAGE, "'%s': record %zu has label %d, expected 0..%d; the "
                           "file is corrupt or not CIFAR-%d", path, i, label, k->classes - 1,
                           k->classes);
        memcpy(out->images + (have + i) * CIFAR_PIXELS, buf + k->label_bytes, CIFAR_PIXELS);
        out->labels[have + i] = label;
    }
    fclose(f); /* read-only: nothing to lose */
    if (!rc) {
        out->n = have + n;
        *count = n;
    }
    return rc;
}

/* One class name per non-empty line (trailing spaces and CR removed). */
static int read_names(const char *dir, const CifarKind *k, char ***names)
{
    char path[4200], line[256];
    snprintf(path, sizeof path, "%.4000s/%s", dir, k->meta);
    FILE *f = fopen(path, "r");
    if (!f)
        return cigl_fail(CIGL_ERR_USAGE, "cannot read '%s' (the class names): %s; unpack the "
                         "official archive again", path,
                         errno == ENOENT ? "no such file" : strerror(errno));
    char **out = calloc((size_t)k->classes, sizeof *out);
    int n = 0, rc = out ? CIGL_OK : CIGL_ERR_RUNTIME;
    while (!rc && fgets(line, sizeof line, f)) {
        size_t len = strlen(line);
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r' || line[len - 1] == ' '))
            line[--len] = 0;
        if (!len)
            continue;
        if (n == k->classes) {
            n++;
            break;
        }
        out[n] = strdup(line);
        rc = out[n++] ? CIGL_OK : CIGL_ERR_RUNTIME;
    }
    fclose(f);
    if (!rc && n != k->classes)
        rc = cigl_fail(CIGL_ERR_USAGE, "'%s' must hold %d class names, one per line; found %s%d",
                       path, k->classes, n > k->classes ? "more than " : "", n - (n > k->classes));
    if (rc && out) {
        for (int i = 0; i < k->classes; i++)
            free(out[i]);
        free(out);
        out = NULL;
    }
    *names = out;
    return rc;
}

int convert_cifar(const char *src, const char *out_path, int classes)
{
    const CifarKind *k = classes == 100 ? &CIFAR100 : &CIFAR10;
    char dir[4096];
    int rc = find_dir(src, k, dir, sizeof dir);
    Split train = {0}, test = {0};
    char **names = NULL;
    size_t counts[6] = {0}, test_count = 0;
    for (int i = 0; i < k->n_train_files && !rc; i++)
        rc = read_batch(dir, k->train[i], k, &train, &counts[i]);
    if (!rc)
        rc = read_batch(dir, k->test, k, &test, &test_count);
    /* A file cut at a record boundary passes the size check; the official files' counts
     * (CIFAR-10: six batches of 10,000; CIFAR-100: 50,000 and 10,000) do not. */
    for (int i = 0; i < k->n_train_files && !rc && classes == 10; i++)
        if (counts[i] != test_count)
            rc = cigl_fail(CIGL_ERR_USAGE, "'%s/%s' holds %zu records but '%s' holds %zu; every "
                           "CIFAR-10 batch has the same count (10,000): a file is truncated",
                           dir, k->train[i], counts[i], k->test, test_count);
    if (!rc && classes == 100 && counts[0] != 5 * test_count)
        rc = cigl_fail(CIGL_ERR_USAGE, "'%s/train.bin' holds %zu records and 'test.bin' %zu; "
                       "CIFAR-100 has five times as many training records (50,000 and 10,000): "
                       "a file is truncated", dir, counts[0], test_count);
    if (!rc)
        rc = read_names(dir, k, &names);
    if (!rc)
        rc = dataset_write(out_path, classes == 100 ? "cifar100" : "cifar10", 3, 32, 32,
                           classes, (const char *const *)names, &train, &test);
    if (!rc)
        printf("cigl: wrote '%s': %zu training and %zu test images, %d classes\n", out_path,
               train.n, test.n, classes);
    for (int i = 0; names && i < classes; i++)
        free(names[i]);
    free(names);
    free(train.images);
    free(train.labels);
    free(test.images);
    free(test.labels);
    return rc;
}
