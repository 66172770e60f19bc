/* Converts the official binary CIFAR-10 and CIFAR-100 distributions into cigl's HDF5 schema.
 * CIFAR-10 (cifar-10-batches-bin/): data_batch_1..5.bin and test_batch.bin, records of
 * <1 label byte><3072 pixel bytes>; class names in batches.meta.txt.
 * CIFAR-100 (cifar-100-binary/): train.bin and test.bin, records of <coarse label byte>
 * <fine label byte><3072 pixel bytes>; the fine labels are used, names in
 * fine_label_names.txt. SRC is the official .tar.gz or the folder unpacked from it. Pixels are 1024 red, 1024 green, 1024 blue bytes, rows top to bottom:
 * exactly cigl's C x H x W layout. Every file is read and checked before anything is
 * written. */
#include "cigl/data.h"

#include "cigl/error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

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

/* Where the files come from: a folder, or the members of the official .tar.gz read into
 * memory (the archive holds nothing else of size: 184 MB for CIFAR-10). */
#define MAX_MEMBERS 8
typedef struct {
    char dir[4096];          /* folder mode */
    const char *archive;     /* archive mode */
    char *names[MAX_MEMBERS];
    uint8_t *data[MAX_MEMBERS];
    size_t size[MAX_MEMBERS];
    int n;
} Source;

static void source_free(Source *s)
{
    for (int i = 0; i < s->n; i++) {
        free(s->names[i]);
        free(s->data[i]);
    }
    s->n = 0;
}

static int wanted(const CifarKind *k, const char *base)
{
    if (!strcmp(base, k->test) || !strcmp(base, k->meta))
        return 1;
    for (int i = 0; i < k->n_train_files; i++)
        if (!strcmp(base, k->train[i]))
            return 1;
    return 0;
}

static size_t octal(const unsigned char *p, size_t len)
{
    size_t v = 0;
    for (size_t i = 0; i < len && p[i] >= '0' && p[i] <= '7'; i++)
        v = v * 8 + (size_t)(p[i] - '0');
    return v;
}

/* Reads the wanted members of a gzipped ustar archive (by base name, in any folder). */
static int read_archive(Source *s, const CifarKind *k)
{
    gzFile gz = gzopen(s->archive, "rb");
    if (!gz)
        return cigl_fail(CIGL_ERR_USAGE, "cannot open '%s'", s->archive);
    unsigned char h[512];
    int rc = CIGL_OK;
    for (;;) {
        int got = gzread(gz, h, 512);
        if (got == 0)
            break; /* end without the two zero blocks: tolerated, as tar does */
        if (got != 512) {
            rc = cigl_fail(CIGL_ERR_USAGE, "'%s' is truncated or not a .tar.gz (a header ends "
                           "early); download it again", s->archive);
            break;
        }
        int zero = 1;
        for (int i = 0; i < 512 && zero; i++)
            zero = h[i] == 0;
        if (zero)
            break;
        size_t size = octal(h + 124, 12), padded = (size + 511) / 512 * 512;
        char name[101];
        memcpy(name, h, 100);
        name[100] = 0;
        const char *base = strrchr(name, '/') ? strrchr(name, '/') + 1 : name;
        const int regular = h[156] == '0' || h[156] == 0;
        uint8_t *data = NULL;
        if (regular && wanted(k, base) && s->n < MAX_MEMBERS) {
            data = malloc(padded ? padded : 1);
            if (!data) {
                rc = cigl_fail(CIGL_ERR_RUNTIME, "out of memory reading '%s'", s->archive);
                break;
            }
            s->names[s->n] = strdup(base);
            s->data[s->n] = data;
            s->size[s->n++] = size;
            if (!s->names[s->n - 1]) {
                rc = cigl_fail(CIGL_ERR_RUNTIME, "out of memory reading '%s'", s->archive);
                break;
            }
        }
        for (size_t done = 0; done < padded;) { /* the member, or skip it */
            unsigned char skip[4096];
            unsigned part = padded - done > sizeof skip ? (unsigned)sizeof skip
                                                        : (unsigned)(padded - done);
            got = gzread(gz, data ? data + done : skip, part);
            if (got != (int)part) {
                rc = cigl_fail(CIGL_ERR_USAGE, "'%s' is truncated or corrupt (inside '%s'); "
                               "download it again", s->archive, name);
                break;
            }
            done += part;
        }
        if (rc)
            break;
    }
    gzclose(gz);
    return rc;
}

/* SRC may be the official .tar.gz, the folder holding the .bin files, or the folder the
 * archive was unpacked in. */
static int open_source(const char *src, const CifarKind *k, Source *s)
{
    memset(s, 0, sizeof *s);
    struct stat st;
    size_t len = strlen(src);
    if (stat(src, &st) == 0 && S_ISREG(st.st_mode) &&
        ((len > 7 && !strcmp(src + len - 7, ".tar.gz")) || (len > 4 && !strcmp(src + len - 4,
                                                                                ".tgz")))) {
        s->archive = src;
        return read_archive(s, k);
    }
    snprintf(s->dir, sizeof s->dir, "%s", src);
    if (is_file(s->dir, k->test))
        return CIGL_OK;
    snprintf(s->dir, sizeof s->dir, "%.3000s/%s", src, k->subdir);
    if (is_file(s->dir, k->test))
        return CIGL_OK;
    return cigl_fail(CIGL_ERR_USAGE, "cannot convert '%s': neither it nor '%s/%s' holds '%s', "
                     "and it is not a .tar.gz; pass the official binary archive (%s.tar.gz from "
                     "https://www.cs.toronto.edu/~kriz/cifar.html) or the folder unpacked from "
                     "it", src, src, k->subdir, k->test,
                     k->classes == 10 ? "cifar-10-binary" : "cifar-100-binary");
}

/* The bytes of file `name` (owned by the source in archive mode, by the caller otherwise),
 * and a label naming it in errors. */
static int source_get(Source *s, const char *name, uint8_t **data, size_t *size, int *owned,
                      char *label, size_t cap)
{
    *data = NULL;
    *owned = 0;
    if (s->archive) {
        snprintf(label, cap, "%s:%s", s->archive, name);
        for (int i = 0; i < s->n; i++)
            if (!strcmp(s->names[i], name)) {
                *data = s->data[i];
                *size = s->size[i];
                return CIGL_OK;
            }
        return cigl_fail(CIGL_ERR_USAGE, "'%s' holds no '%s'; is it the official binary "
                         "archive, complete?", s->archive, name);
    }
    snprintf(label, cap, "%.4000s/%s", s->dir, name);
    FILE *f = fopen(label, "rb");
    if (!f)
        return cigl_fail(CIGL_ERR_USAGE, "cannot read '%s': %s; the CIFAR folder is incomplete, "
                         "unpack the official archive again", label,
                         errno == ENOENT ? "no such file" : strerror(errno));
    struct stat st;
    int rc = fstat(fileno(f), &st) == 0 ? CIGL_OK : CIGL_ERR_RUNTIME;
    *size = rc ? 0 : (size_t)st.st_size;
    *data = rc ? NULL : malloc(*size ? *size : 1);
    if (!rc && (!*data || fread(*data, 1, *size, f) != *size))
        rc = cigl_fail(CIGL_ERR_RUNTIME, "cannot read '%s' (out of memory or I/O error)", label);
    fclose(f); /* read-only: nothing to lose */
    if (rc) {
        free(*data);
        *data = NULL;
    }
    *owned = !rc;
    return rc;
}

/* Appends the records of one batch file to `out` (grown as needed) after checking its size
 * and every label. */
static int read_batch(Source *src, const char *name, const CifarKind *k, Split *out,
                      size_t *count)
{
    char path[4200];
    uint8_t *bytes;
    size_t size;
    int owned;
    int rc = source_get(src, name, &bytes, &size, &owned, path, sizeof path);
    if (rc)
        return rc;
    const size_t rec = (size_t)k->label_bytes + CIFAR_PIXELS;
    if (size == 0 || size % rec != 0 || size / rec > CIFAR_MAX_RECORDS)
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
    for (size_t i = 0; i < n && !rc; i++) {
        const uint8_t *r = bytes + i * rec;
        if (k->label_bytes == 2 && r[0] >= 20)
            rc = cigl_fail(CIGL_ERR_USAGE, "'%s': record %zu has coarse label %u, expected "
                           "0..19; the file is corrupt", path, i, r[0]);
        int label = r[k->label_bytes - 1];
        if (!rc && label >= k->classes)
            rc = cigl_fail(CIGL_ERR_USAGE, "'%s': record %zu has label %d, expected 0..%d; the "
                           "file is corrupt or not CIFAR-%d", path, i, label, k->classes - 1,
                           k->classes);
        memcpy(out->images + (have + i) * CIFAR_PIXELS, r + k->label_bytes, CIFAR_PIXELS);
        out->labels[have + i] = label;
    }
    if (owned)
        free(bytes);
    if (!rc) {
        out->n = have + n;
        *count = n;
    }
    return rc;
}

/* One class name per non-empty line (trailing spaces and CR removed). */
static int read_names(Source *src, const CifarKind *k, char ***names)
{
    char path[4200];
    uint8_t *bytes;
    size_t size;
    int owned;
    *names = NULL;
    int rc = source_get(src, k->meta, &bytes, &size, &owned, path, sizeof path);
    if (rc)
        return rc;
    char **out = calloc((size_t)k->classes, sizeof *out);
    int n = 0;
    rc = out ? CIGL_OK : CIGL_ERR_RUNTIME;
    for (size_t at = 0; !rc && at < size;) {
        size_t end = at;
        while (end < size && bytes[end] != '\n')
            end++;
        size_t len = end - at;
        while (len && (bytes[at + len - 1] == '\r' || bytes[at + len - 1] == ' '))
            len--;
        if (len && n == k->classes) {
            n++;
            break;
        }
        if (len) {
            out[n] = strndup((const char *)bytes + at, len);
            rc = out[n++] ? CIGL_OK : CIGL_ERR_RUNTIME;
        }
        at = end + 1;
    }
    if (owned)
        free(bytes);
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
    Source source;
    int rc = open_source(src, k, &source);
    const char *where = source.archive ? source.archive : source.dir;
    Split train = {0}, test = {0};
    char **names = NULL;
    size_t counts[6] = {0}, test_count = 0;
    for (int i = 0; i < k->n_train_files && !rc; i++)
        rc = read_batch(&source, k->train[i], k, &train, &counts[i]);
    if (!rc)
        rc = read_batch(&source, k->test, k, &test, &test_count);
    /* A file cut at a record boundary passes the size check; the official files' counts
     * (CIFAR-10: six batches of 10,000; CIFAR-100: 50,000 and 10,000) do not. */
    for (int i = 0; i < k->n_train_files && !rc && classes == 10; i++)
        if (counts[i] != test_count)
            rc = cigl_fail(CIGL_ERR_USAGE, "'%s/%s' holds %zu records but '%s' holds %zu; every "
                           "CIFAR-10 batch has the same count (10,000): a file is truncated",
                           where, k->train[i], counts[i], k->test, test_count);
    if (!rc && classes == 100 && counts[0] != 5 * test_count)
        rc = cigl_fail(CIGL_ERR_USAGE, "'%s/train.bin' holds %zu records and 'test.bin' %zu; "
                       "CIFAR-100 has five times as many training records (50,000 and 10,000): "
                       "a file is truncated", where, counts[0], test_count);
    if (!rc)
        rc = read_names(&source, k, &names);
    if (!rc)
        rc = dataset_write(out_path, classes == 100 ? "cifar100" : "cifar10", 3, 32, 32,
                           classes, (const char *const *)names, &train, &test);
    if (!rc)
        printf("cigl: wrote '%s': %zu training and %zu test images, %d classes\n", out_path,
               train.n, test.n, classes);
    source_free(&source);
    for (int i = 0; names && i < classes; i++)
        free(names[i]);
    free(names);
    free(train.images);
    free(train.labels);
    free(test.images);
    free(test.labels);
    return rc;
}
