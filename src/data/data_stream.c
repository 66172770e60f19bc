/* Streamed splits: a split's pixels stay in the file and each batch's samples are read on
 * demand, by a prefetch thread while the previous batch computes. Memory is one batch of
 * pixels, whatever the dataset's size.
 * Reads: cigl's files store pixels uncompressed, chunked along samples, so a sample is a run
 * of bytes at a fixed offset inside its chunk. The chunk's file address comes from HDF5
 * (H5Dget_chunk_info_by_coord, looked up once per chunk and remembered) and the bytes are
 * read with pread: exactly the sample, no chunk cache, no sieve buffer (HDF5 1.10 itself reads
 * a whole ~1 MiB chunk to return one 784-byte sample: measured 8x slower training). Runs of
 * consecutive samples in one chunk are one read. Files with compressed or differently
 * chunked images (made by other tools) are read with HDF5 hyperslab selections instead.
 * HDF5 is called from two threads; Debian's libhdf5 is built thread-safe (checked at open:
 * without it there is no thread and every read is synchronous). */
#include "data_internal.h"

#include "cigl/error.h"
#include "cigl/h5io.h"
#include "cigl/worker.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { IDLE, PENDING, DONE, FAILED };

struct SplitStream {
    hid_t file, dset, fspace;
    size_t sample;
    hsize_t dims[4];
    int fd;               /* direct reads: the file, else -1 (HDF5 hyperslab reads) */
    hsize_t per_chunk;    /* samples per chunk (contiguous layout: all of them) */
    uint64_t *chunk_addr; /* file address of each chunk, CHUNK_UNKNOWN until looked up */
    uint64_t base;        /* contiguous layout: address of sample 0 */
    char path[CIGL_PATH_MAX], split[8];
    Worker *prefetcher;   /* NULL: every read on the calling thread */
    int state;            /* of buf: IDLE, PENDING (the prefetcher reads into it), DONE, FAILED */
    uint32_t *idx;  /* the request buf holds (or will hold) */
    size_t n, cap;  /* samples requested, capacity of idx and buf in samples */
    uint8_t *buf;   /* n x sample pixels in request order */
};

#define CHUNK_UNKNOWN UINT64_MAX

/* File address of sample i (direct reads). */
static int sample_addr(SplitStream *ss, uint32_t i, uint64_t *addr)
{
    if (!ss->chunk_addr) {
        *addr = ss->base + (uint64_t)i * ss->sample;
        return 0;
    }
    const hsize_t c = i / ss->per_chunk;
    if (ss->chunk_addr[c] == CHUNK_UNKNOWN) {
        hsize_t offset[4] = {c * ss->per_chunk, 0, 0, 0};
        unsigned mask = 0;
        haddr_t a = HADDR_UNDEF;
        hsize_t size = 0;
        if (H5Dget_chunk_info_by_coord(ss->dset, offset, &mask, &a, &size) < 0 ||
            a == HADDR_UNDEF || mask != 0 || size != ss->per_chunk * ss->sample)
            return -1; /* an unwritten or filtered chunk: not a file cigl wrote */
        ss->chunk_addr[c] = a;
    }
    *addr = ss->chunk_addr[c] + (uint64_t)(i % ss->per_chunk) * ss->sample;
    return 0;
}

static int pread_all(int fd, uint8_t *dst, size_t len, uint64_t at)
{
    while (len > 0) {
        ssize_t got = pread(fd, dst, len, (off_t)at);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return -1;
        dst += got, len -= (size_t)got, at += (uint64_t)got;
    }
    return 0;
}

/* Reads samples idx[0..n) into dst. Runs of consecutive indices are one read each (within
 * one chunk for direct reads, one hyperslab otherwise). */
static int read_samples(SplitStream *ss, const uint32_t *idx, size_t n, uint8_t *dst)
{
    for (size_t i = 0; i < n;) {
        if (idx[i] >= ss->dims[0])
            return -1;
        size_t k = 1;
        while (i + k < n && idx[i + k] == idx[i] + k && idx[i + k] < ss->dims[0] &&
               (ss->fd < 0 || !ss->chunk_addr ||
                idx[i + k] / ss->per_chunk == idx[i] / ss->per_chunk))
            k++;
        if (ss->fd >= 0) {
            uint64_t at;
            if (sample_addr(ss, idx[i], &at) ||
                pread_all(ss->fd, dst + i * ss->sample, k * ss->sample, at))
                return -1;
            i += k;
            continue;
        }
        hsize_t start[4] = {idx[i], 0, 0, 0};
        hsize_t count[4] = {k, ss->dims[1], ss->dims[2], ss->dims[3]};
        /* the memory space has the selection's shape: HDF5 copies whole rows */
        hid_t ms = H5Screate_simple(4, count, NULL);
        int bad = ms < 0 ||
                  H5Sselect_hyperslab(ss->fspace, H5S_SELECT_SET, start, NULL, count, NULL) < 0 ||
                  H5Dread(ss->dset, H5T_NATIVE_UINT8, ms, ss->fspace, H5P_DEFAULT,
                          dst + i * ss->sample) < 0;
        if (ms >= 0)
            H5Sclose(ms);
        if (bad)
            return -1;
        i += k;
    }
    return 0;
}

/* Direct reads when the images are stored as cigl writes them: uncompressed, contiguous or
 * chunked along samples only. */
static void setup_direct(SplitStream *ss, const char *path)
{
    hid_t dcpl = H5Dget_create_plist(ss->dset);
    if (dcpl < 0)
        return;
    H5D_layout_t layout = H5Pget_layout(dcpl);
    hsize_t chunk[4] = {0, 0, 0, 0};
    int ok = H5Pget_nfilters(dcpl) == 0;
    if (ok && layout == H5D_CHUNKED)
        ok = H5Pget_chunk(dcpl, 4, chunk) == 4 && chunk[0] >= 1 && chunk[1] == ss->dims[1] &&
             chunk[2] == ss->dims[2] && chunk[3] == ss->dims[3];
    else if (ok && layout == H5D_CONTIGUOUS)
        ok = (ss->base = H5Dget_offset(ss->dset)) != HADDR_UNDEF;
    else
        ok = 0;
    H5Pclose(dcpl);
    if (ok && layout == H5D_CHUNKED) {
        ss->per_chunk = chunk[0];
        size_t n_chunks = (size_t)((ss->dims[0] + chunk[0] - 1) / chunk[0]);
        ss->chunk_addr = malloc(n_chunks * sizeof *ss->chunk_addr);
        ok = ss->chunk_addr != NULL;
        for (size_t c = 0; ok && c < n_chunks; c++)
            ss->chunk_addr[c] = CHUNK_UNKNOWN;
    }
    if (ok)
        ss->fd = open(path, O_RDONLY | O_CLOEXEC);
}

/* The prefetcher's job: the request in idx and n into buf. */
static int prefetch_job(void *arg)
{
    SplitStream *ss = arg;
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* HDF5's error stack is per thread */
    const int rc = read_samples(ss, ss->idx, ss->n, ss->buf);
    ss->state = rc ? FAILED : DONE;
    return rc;
}

int split_stream_open(SplitStream **out, const char *path, const char *split, size_t sample)
{
    *out = NULL;
    SplitStream *ss = cigl_calloc(1, sizeof *ss, "dataset stream");
    if (!ss)
        return CIGL_ERR_RUNTIME;
    ss->file = ss->dset = ss->fspace = -1;
    ss->fd = -1;
    ss->sample = sample;
    snprintf(ss->path, sizeof ss->path, "%s", path);
    snprintf(ss->split, sizeof ss->split, "%s", split);
    char name[32];
    snprintf(name, sizeof name, "%s/images", split);
    ss->file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    ss->dset = ss->file >= 0 ? H5Dopen2(ss->file, name, H5P_DEFAULT) : -1;
    ss->fspace = ss->dset >= 0 ? H5Dget_space(ss->dset) : -1;
    if (ss->fspace < 0 || H5Sget_simple_extent_dims(ss->fspace, ss->dims, NULL) != 4) {
        split_stream_close(ss);
        return cigl_fail(CIGL_ERR_RUNTIME, "cannot open '/%s' of dataset '%s' for streaming; "
                         "check that the file is readable", name, path);
    }
    setup_direct(ss, path);
    hbool_t safe = 0;
    H5is_library_threadsafe(&safe);
    ss->prefetcher = safe ? worker_start() : NULL;
    *out = ss;
    return CIGL_OK;
}

void split_stream_close(SplitStream *ss)
{
    if (!ss)
        return;
    worker_stop(ss->prefetcher);
    if (ss->fspace >= 0)
        H5Sclose(ss->fspace);
    if (ss->dset >= 0)
        H5Dclose(ss->dset);
    if (ss->file >= 0)
        H5Fclose(ss->file);
    if (ss->fd >= 0)
        close(ss->fd);
    free(ss->chunk_addr);
    free(ss->idx);
    free(ss->buf);
    free(ss);
}

/* With no read in flight (the prefetcher waited for): room for n samples. */
static int reserve(SplitStream *ss, size_t n)
{
    if (n <= ss->cap)
        return 0;
    uint32_t *idx = realloc(ss->idx, n * sizeof *idx);
    if (idx)
        ss->idx = idx;
    uint8_t *buf = idx ? realloc(ss->buf, n * ss->sample) : NULL;
    if (!buf)
        return -1;
    ss->buf = buf;
    ss->cap = n;
    return 0;
}

void split_stream_prefetch(SplitStream *ss, const uint32_t *idx, size_t first, size_t n)
{
    if (!ss->prefetcher || n == 0)
        return;
    worker_wait(ss->prefetcher); /* buf and idx are this thread's again */
    if (reserve(ss, n) == 0) {
        for (size_t i = 0; i < n; i++)
            ss->idx[i] = idx ? idx[first + i] : (uint32_t)(first + i);
        ss->n = n;
        ss->state = PENDING;
        worker_post(ss->prefetcher, prefetch_job, ss);
    } else {
        ss->state = IDLE; /* no memory now: split_stream_read will say so */
    }
}

const uint8_t *split_stream_read(SplitStream *ss, const uint32_t *idx, size_t n)
{
    if (ss->prefetcher)
        worker_wait(ss->prefetcher);
    int rc = 0;
    int hit = ss->state == DONE && ss->n == n && !memcmp(ss->idx, idx, n * sizeof *idx);
    if (!hit) {
        if (reserve(ss, n ? n : 1)) {
            rc = -2;
        } else {
            memcpy(ss->idx, idx, n * sizeof *idx);
            ss->n = n;
            rc = read_samples(ss, idx, n, ss->buf);
            ss->state = rc ? FAILED : DONE;
        }
    }
    if (rc == -2) {
        cigl_fail(CIGL_ERR_RUNTIME, "out of memory for a batch of %zu samples of '%s'", n,
                  ss->path);
        return NULL;
    }
    if (rc) {
        cigl_fail(CIGL_ERR_RUNTIME, "cannot read samples of '/%s/images' from dataset '%s': "
                  "HDF5 read failed; check that the file is complete and readable (disk or "
                  "network file system trouble?)", ss->split, ss->path);
        return NULL;
    }
    return ss->buf;
}
